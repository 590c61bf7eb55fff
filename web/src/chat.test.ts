import { describe, expect, it } from "vitest";
import { continuesGroup, GROUP_WITHIN_MS, linkParts } from "./chat";

const links = (text: string) => linkParts(text).filter((p) => "href" in p);

describe("linkParts", () => {
  it("makes http and https addresses links, and keeps the text around them", () => {
    expect(linkParts("see https://example.com/a?b=1#c now")).toEqual([
      { text: "see " },
      { text: "https://example.com/a?b=1#c", href: "https://example.com/a?b=1#c" },
      { text: " now" },
    ]);
    expect(links("HTTP://Example.COM and http://localhost:3000/r/x")).toEqual([
      { text: "HTTP://Example.COM", href: "http://example.com/" },
      { text: "http://localhost:3000/r/x", href: "http://localhost:3000/r/x" },
    ]);
  });

  it("puts the pieces back together as the text was", () => {
    for (const text of ["a https://x.example b", "https://x.example", "(https://x.example)", "no links", "", "https://a.example,https://b.example"]) {
      expect(linkParts(text).map((p) => p.text).join("")).toBe(text);
    }
  });

  it("leaves out punctuation that ends the sentence, but keeps brackets the address opened", () => {
    expect(links("go to https://a.example/x.")).toEqual([{ text: "https://a.example/x", href: "https://a.example/x" }]);
    expect(links("(see https://a.example/x), then")).toEqual([{ text: "https://a.example/x", href: "https://a.example/x" }]);
    expect(links("https://en.wikipedia.org/wiki/Rust_(programming_language)!")).toEqual([
      { text: "https://en.wikipedia.org/wiki/Rust_(programming_language)", href: "https://en.wikipedia.org/wiki/Rust_(programming_language)" },
    ]);
    expect(links("“https://a.example/q?x=1”")).toEqual([{ text: "https://a.example/q?x=1", href: "https://a.example/q?x=1" }]);
  });

  it("never links anything but http and https with a host", () => {
    for (const text of [
      "javascript:alert(1)",
      "JaVaScRiPt:alert(document.cookie)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox",
      "file:///etc/passwd",
      "ftp://example.com",
      "mailto:a@example.com",
      "http://",
      "https:///path-only",
      "xhttps://example.com",
      "https//example.com",
      "www.example.com",
      "https://user:secret@example.com/",
      `https://${"a".repeat(3000)}.example`,
    ]) {
      expect(links(text), text).toEqual([]);
    }
  });

  it("ends an address where a quote, an angle bracket or a space would let it break out of a link", () => {
    expect(links('https://a.example/"onmouseover="alert(1)')).toEqual([{ text: "https://a.example/", href: "https://a.example/" }]);
    expect(links("https://a.example/<script>")).toEqual([{ text: "https://a.example/", href: "https://a.example/" }]);
    expect(links("https://a.example/\u202eevil")).toEqual([{ text: "https://a.example/", href: "https://a.example/" }]);
    expect(links("https://javascript:alert(1)@x")).toEqual([]);
  });

  it("links the address the text shows: an address inside another stays part of it", () => {
    expect(links("https://a.example/?next=https://b.example")).toEqual([
      { text: "https://a.example/?next=https://b.example", href: "https://a.example/?next=https://b.example" },
    ]);
  });

  it("finds addresses in Korean text and after any punctuation", () => {
    expect(links("여기 https://a.example/ko 봐요")).toEqual([{ text: "https://a.example/ko", href: "https://a.example/ko" }]);
    expect(links("링크:https://a.example")).toEqual([{ text: "https://a.example", href: "https://a.example/" }]);
  });

  it("takes long hostile text whole", () => {
    expect(links("https://".repeat(20_000) + "(".repeat(20_000))).toEqual([]);
    expect(links("https://a.example/" + ")".repeat(50_000))).toEqual([{ text: "https://a.example/", href: "https://a.example/" }]);
    expect(links("https://a.example ".repeat(10_000))).toHaveLength(10_000);
  });
});

describe("continuesGroup", () => {
  it("groups lines of one sender close together, and nothing else", () => {
    const first = { sender: "a", ts: 1_000 };
    expect(continuesGroup(null, first)).toBe(false);
    expect(continuesGroup(first, { sender: "a", ts: 2_000 })).toBe(true);
    expect(continuesGroup(first, { sender: "b", ts: 2_000 })).toBe(false);
    expect(continuesGroup(first, { sender: "a", ts: 1_000 + GROUP_WITHIN_MS })).toBe(false);
    // History shown after a newer line: a heading of its own.
    expect(continuesGroup(first, { sender: "a", ts: 500 })).toBe(false);
  });
});
