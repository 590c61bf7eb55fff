import { describe, expect, it } from "vitest";
import { allKeys, fill, isLang, particleRo, pickLanguage, rawTable, translate } from "./i18n";
import { KNOWN_ERROR_CODES } from "./protocol";

describe("pickLanguage", () => {
  it("follows a Korean browser", () => {
    expect(pickLanguage(null, "ko")).toBe("ko");
    expect(pickLanguage(null, "ko-KR")).toBe("ko");
    expect(pickLanguage(undefined, "KO-kr")).toBe("ko");
  });
  it("falls back to English for other browsers", () => {
    expect(pickLanguage(null, "en-US")).toBe("en");
    expect(pickLanguage(null, "fr")).toBe("en");
    expect(pickLanguage(null, "")).toBe("en");
    expect(pickLanguage(null, undefined)).toBe("en");
    expect(pickLanguage(null, "kok")).toBe("ko"); // any ko* tag counts, as specified
  });
  it("prefers a stored choice", () => {
    expect(pickLanguage("en", "ko-KR")).toBe("en");
    expect(pickLanguage("ko", "en-US")).toBe("ko");
  });
  it("ignores a stored value that is not a language", () => {
    expect(pickLanguage("de", "ko")).toBe("ko");
    expect(pickLanguage("", "en")).toBe("en");
  });
  it("recognises languages", () => {
    expect(isLang("en")).toBe(true);
    expect(isLang("ko")).toBe(true);
    expect(isLang("EN")).toBe(false);
    expect(isLang(null)).toBe(false);
  });
});

describe("tables", () => {
  it("Korean has every English key, none empty", () => {
    const ko = rawTable("ko");
    const en = rawTable("en");
    for (const key of allKeys()) {
      expect(en[key], key).toBeTruthy();
      expect(ko[key], key).toBeTruthy();
    }
    expect(Object.keys(ko).sort()).toEqual(Object.keys(en).sort());
  });
  it("both languages use the same placeholders", () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)(?::\w+)?\}/g)].map((m) => m[1]).sort();
    for (const key of allKeys()) {
      expect(names(rawTable("ko")[key]), key).toEqual(names(rawTable("en")[key]));
    }
  });
  it("has a text for every error code", () => {
    for (const code of KNOWN_ERROR_CODES) {
      expect(allKeys()).toContain(`error.${code}`);
    }
  });
});

describe("translate", () => {
  it("fills placeholders", () => {
    expect(translate("en", "sys.joined", { name: "Mina" })).toBe("Mina joined");
    expect(translate("ko", "sys.joined", { name: "Mina" })).toBe("Mina 님이 들어왔어요");
    expect(translate("en", "sys.renamed", { old: "A", new: "B" })).toBe("A is now B");
  });
  it("chooses the Korean particle from the name", () => {
    expect(translate("ko", "sys.selfRenamed", { name: "민수" })).toBe("이제 민수로 불려요");
    expect(translate("ko", "sys.selfRenamed", { name: "지민" })).toBe("이제 지민으로 불려요");
    expect(translate("ko", "sys.selfRenamed", { name: "하늘" })).toBe("이제 하늘로 불려요");
    expect(translate("ko", "sys.selfRenamed", { name: "Otter 42" })).toBe("이제 Otter 42(으)로 불려요");
  });
  it("does not treat user text as placeholders", () => {
    expect(translate("en", "sys.joined", { name: "{name}" })).toBe("{name} joined");
    expect(translate("en", "sys.renamed", { old: "{new}", new: "x" })).toBe("{new} is now x");
  });
});

describe("fill", () => {
  it("leaves unknown placeholders alone", () => {
    expect(fill("a {b} c", {})).toBe("a {b} c");
  });
  it("accepts numbers", () => {
    expect(fill("{n} rooms", { n: 3 })).toBe("3 rooms");
  });
});

describe("particleRo", () => {
  it("follows the final consonant", () => {
    expect(particleRo("서울")).toBe("로");
    expect(particleRo("부산")).toBe("으로");
    expect(particleRo("바다")).toBe("로");
    expect(particleRo("")).toBe("(으)로");
    expect(particleRo("Bob")).toBe("(으)로");
  });
});
