import { describe, expect, it } from "vitest";
import { isMac, isTalkKey, keysOf, shortcutOf, type KeyLike } from "./shortcuts";

const press = (over: Partial<KeyLike>): KeyLike => ({ key: "", code: "", ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...over });

describe("shortcutOf", () => {
  it("takes Ctrl+D and Ctrl+E elsewhere, ⌘+D and ⌘+E on a Mac", () => {
    expect(shortcutOf(press({ key: "d", code: "KeyD", ctrlKey: true }), false)).toBe("mic");
    expect(shortcutOf(press({ key: "e", code: "KeyE", ctrlKey: true }), false)).toBe("camera");
    expect(shortcutOf(press({ key: "d", code: "KeyD", metaKey: true }), true)).toBe("mic");
    expect(shortcutOf(press({ key: "e", code: "KeyE", metaKey: true }), true)).toBe("camera");
    // The other platform's key does nothing.
    expect(shortcutOf(press({ key: "d", code: "KeyD", metaKey: true }), false)).toBeNull();
    expect(shortcutOf(press({ key: "d", code: "KeyD", ctrlKey: true }), true)).toBeNull();
  });

  it("reads the key's place, so a Korean layout works as an English one", () => {
    expect(shortcutOf(press({ key: "ㅇ", code: "KeyD", ctrlKey: true }), false)).toBe("mic");
    expect(shortcutOf(press({ key: "ㄷ", code: "KeyE", ctrlKey: true }), false)).toBe("camera");
  });

  it("leaves other combinations to the browser", () => {
    expect(shortcutOf(press({ key: "D", code: "KeyD", ctrlKey: true, shiftKey: true }), false)).toBeNull();
    expect(shortcutOf(press({ key: "d", code: "KeyD", ctrlKey: true, altKey: true }), false)).toBeNull();
    expect(shortcutOf(press({ key: "d", code: "KeyD" }), false)).toBeNull();
    expect(shortcutOf(press({ key: "c", code: "KeyC", ctrlKey: true }), false)).toBeNull();
  });

  it("opens the list with ?, not with a modifier", () => {
    expect(shortcutOf(press({ key: "?", code: "Slash", shiftKey: true }), false)).toBe("help");
    expect(shortcutOf(press({ key: "?", code: "Slash", shiftKey: true, ctrlKey: true }), false)).toBeNull();
  });
});

describe("isTalkKey", () => {
  it("is Space alone", () => {
    expect(isTalkKey(press({ key: " ", code: "Space" }))).toBe(true);
    expect(isTalkKey(press({ key: " ", code: "Space", ctrlKey: true }))).toBe(false);
    expect(isTalkKey(press({ key: " ", code: "Space", shiftKey: true }))).toBe(false);
    expect(isTalkKey(press({ key: "Enter", code: "Enter" }))).toBe(false);
  });
});

describe("keysOf and isMac", () => {
  it("writes the keys as the platform does", () => {
    expect(keysOf("mic", false)).toBe("Ctrl+D");
    expect(keysOf("camera", true)).toBe("⌘+E");
    expect(isMac("MacIntel")).toBe(true);
    expect(isMac("iPhone")).toBe(true);
    expect(isMac("Linux x86_64")).toBe(false);
    expect(isMac("Win32")).toBe(false);
  });
});
