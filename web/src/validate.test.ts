import { describe, expect, it } from "vitest";
import { charCount, checkMessage, checkNickname, checkRoomName, isBlank, LIMITS, messageProblem, nameProblem, normaliseName, trimName } from "./validate";

describe("charCount", () => {
  it("counts Unicode scalar values, not UTF-16 units", () => {
    expect(charCount("abc")).toBe(3);
    expect(charCount("한국어")).toBe(3);
    expect(charCount("😀😀")).toBe(2);
    expect("😀😀".length).toBe(4);
  });
});

describe("trimName", () => {
  it("trims Unicode white space on both ends", () => {
    expect(trimName("  a b  ")).toBe("a b");
    expect(trimName("\u3000이름\u00a0")).toBe("이름");
    expect(trimName("\t\n x \r")).toBe("x");
    expect(trimName("\u0085x\u0085")).toBe("x");
  });
  it("keeps what is not white space", () => {
    expect(trimName("\ufeffx")).toBe("\ufeffx");
  });
});

describe("checkNickname", () => {
  it("accepts 1 to 32 characters and gives them trimmed", () => {
    expect(checkNickname(" Mina ")).toEqual({ ok: true, value: "Mina" });
    expect(checkNickname("a".repeat(32)).ok).toBe(true);
    expect(checkNickname("😀".repeat(32)).ok).toBe(true);
    expect(checkNickname(`  ${"b".repeat(32)}  `).ok).toBe(true);
  });
  it("refuses empty, too long or control characters", () => {
    expect(checkNickname("")).toEqual({ ok: false, code: "invalid_nickname" });
    expect(checkNickname("   ").ok).toBe(false);
    expect(checkNickname("a".repeat(33)).ok).toBe(false);
    expect(checkNickname("a\u0007b").ok).toBe(false);
    expect(checkNickname("a\nb").ok).toBe(false);
    expect(checkNickname("a\u009fb").ok).toBe(false);
  });
  it("allows markup-looking text (it is shown as text)", () => {
    expect(checkNickname("<img src=x onerror=alert(1)>").ok).toBe(true);
  });
});

describe("checkRoomName", () => {
  it("accepts 1 to 64 characters", () => {
    expect(checkRoomName(" lobby-talk ")).toEqual({ ok: true, value: "lobby-talk" });
    expect(checkRoomName("x".repeat(LIMITS.room)).ok).toBe(true);
    expect(checkRoomName("a/b?c#d%20").ok).toBe(true);
  });
  it("refuses the rest", () => {
    expect(checkRoomName("")).toEqual({ ok: false, code: "invalid_room" });
    expect(checkRoomName("x".repeat(65)).ok).toBe(false);
    expect(checkRoomName("a\tb").ok).toBe(false);
  });
});

describe("checkMessage", () => {
  it("keeps the text as sent", () => {
    expect(checkMessage("  hi  ")).toEqual({ ok: true, value: "  hi  " });
    expect(checkMessage("line 1\nline 2\tend").ok).toBe(true);
    expect(checkMessage("x".repeat(2000)).ok).toBe(true);
    expect(checkMessage("😀".repeat(2000)).ok).toBe(true);
  });
  it("refuses empty, blank, too long or control characters", () => {
    expect(checkMessage("")).toEqual({ ok: false, code: "invalid_message" });
    expect(checkMessage(" \n\t ").ok).toBe(false);
    expect(checkMessage("x".repeat(2001)).ok).toBe(false);
    expect(checkMessage("a\rb").ok).toBe(false);
    expect(checkMessage("a\u0000b").ok).toBe(false);
    expect(checkMessage("a\u001bb").ok).toBe(false);
  });
});

describe("isBlank", () => {
  it("knows white space", () => {
    expect(isBlank("")).toBe(true);
    expect(isBlank(" \u3000\n")).toBe(true);
    expect(isBlank(" a ")).toBe(false);
  });
});

describe("names as the server keeps them", () => {
  it("loses invisible characters and takes one spelling", () => {
    expect(normaliseName("Ali\u200Bce")).toBe("Alice");
    expect(normaliseName("\u202EecilA")).toBe("ecilA");
    expect(normaliseName("Zoe\u0308")).toBe("Zo\u00EB");
    expect(normaliseName("👩\u200D💻 Dev")).toBe("👩\u200D💻 Dev");
    expect(normaliseName("한\u3164글")).toBe("한글");
    expect(checkNickname("\u200B\u200B")).toEqual({ ok: false, code: "invalid_nickname" });
    expect(checkNickname(" Ali\u200Bce ")).toEqual({ ok: true, value: "Alice" });
  });
});

describe("nameProblem and messageProblem", () => {
  it("say what is wrong, one thing at a time", () => {
    expect(nameProblem("", 32, true)).toEqual({ kind: "required" });
    expect(nameProblem("   ", 32, false)).toBeNull();
    expect(nameProblem("a".repeat(33), 32, true)).toEqual({ kind: "tooLong", max: 32, count: 33 });
    expect(nameProblem("가".repeat(32), 32, true)).toBeNull();
    expect(nameProblem("tab\there", 32, true)).toEqual({ kind: "invisible" });
    expect(nameProblem("  Ann  ", 32, true)).toBeNull();
    expect(messageProblem("x".repeat(2001))).toEqual({ kind: "tooLong", max: 2000, count: 2001 });
    expect(messageProblem("😀".repeat(2000))).toBeNull();
    expect(messageProblem("line\nand\ttab")).toBeNull();
    expect(messageProblem("bell\u0007")).toEqual({ kind: "invisible" });
    expect(messageProblem("   ")).toBeNull();
  });
});
