import { describe, expect, it } from "vitest";
import { errorText, formatDuration, formatTime, initial, messageKey } from "./format";

describe("formatTime", () => {
  const ts = Date.UTC(2024, 0, 2, 14, 5, 0);
  it("gives hours and minutes", () => {
    expect(formatTime(ts, "en", "UTC")).toBe("14:05");
  });
  it("formats for Korean too (the words depend on the runtime's locale data)", () => {
    const text = formatTime(ts, "ko", "UTC");
    expect(text).toMatch(/(오후|PM) ?0?2:05|14:05/);
  });
});

describe("errorText", () => {
  it("translates known codes", () => {
    expect(errorText({ code: "invalid_room", message: "room name must be 1 to 64 characters" }, "en")).toBe(
      "A room name must be 1 to 64 characters, with no tabs or line breaks.",
    );
    expect(errorText({ code: "rate_limited", message: "slow down" }, "ko")).toContain("잠시 후");
  });
  it("falls back to the server's message for unknown codes", () => {
    expect(errorText({ code: "teapot", message: "I am a teapot" }, "en")).toBe(
      "Something went wrong: I am a teapot",
    );
    expect(errorText({ code: "teapot", message: "" }, "en")).toBe("Something went wrong: teapot");
  });
});

describe("messageKey", () => {
  it("tells messages apart by id and time", () => {
    expect(messageKey({ id: "7", ts: 1 })).not.toBe(messageKey({ id: "7", ts: 2 }));
    expect(messageKey({ id: "7", ts: 1 })).toBe(messageKey({ id: "7", ts: 1 }));
  });
});

describe("initial", () => {
  it("takes the first character", () => {
    expect(initial("otter")).toBe("O");
    expect(initial("  수달")).toBe("수");
    expect(initial("😀 x")).toBe("😀");
    expect(initial("")).toBe("?");
  });
});

describe("formatDuration", () => {
  it("shows minutes and seconds, and hours past an hour; never below zero", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(65_400)).toBe("1:05");
    expect(formatDuration(3_600_000 + 2 * 60_000 + 9_000)).toBe("1:02:09");
    expect(formatDuration(-5_000)).toBe("0:00");
  });
});
