import { describe, expect, it } from "vitest";
import {
  ADJECTIVE_COUNT,
  ANIMAL_COUNT,
  chooseNickname,
  hueOf,
  isolated,
  nameKey,
  tellApart,
  makeNameSeed,
  nameFromSeed,
  parseNameSeed,
  serializeNameSeed,
} from "./names";
import { checkNickname } from "./validate";

function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

describe("default nicknames", () => {
  it("reads like 'Quiet Otter 42'", () => {
    expect(nameFromSeed({ adjective: 0, animal: 0, number: 42 }, "en")).toBe("Quiet Otter 42");
    expect(nameFromSeed({ adjective: 0, animal: 0, number: 42 }, "ko")).toBe("조용한 수달 42");
  });
  it("uses the random source across the whole range", () => {
    expect(makeNameSeed(sequence(0, 0, 0))).toEqual({ adjective: 0, animal: 0, number: 10 });
    expect(makeNameSeed(sequence(0.999999, 0.999999, 0.999999))).toEqual({
      adjective: ADJECTIVE_COUNT - 1,
      animal: ANIMAL_COUNT - 1,
      number: 99,
    });
  });
  it("stays within bounds even if the source returns 1", () => {
    const seed = makeNameSeed(() => 1);
    expect(seed.adjective).toBe(ADJECTIVE_COUNT - 1);
    expect(seed.number).toBe(99);
  });
  it("always makes a valid nickname, in both languages", () => {
    for (let a = 0; a < ADJECTIVE_COUNT; a++) {
      for (let b = 0; b < ANIMAL_COUNT; b++) {
        for (const lang of ["en", "ko"] as const) {
          const name = nameFromSeed({ adjective: a, animal: b, number: 99 }, lang);
          expect(checkNickname(name).ok, name).toBe(true);
          expect(name).toMatch(/^\S.* \S.* \d\d$/u);
        }
      }
    }
  });
  it("round-trips through storage", () => {
    const seed = { adjective: 3, animal: 7, number: 55 };
    expect(parseNameSeed(serializeNameSeed(seed))).toEqual(seed);
  });
  it("rejects stored values it did not make", () => {
    expect(parseNameSeed(null)).toBeNull();
    expect(parseNameSeed("")).toBeNull();
    expect(parseNameSeed("Quiet Otter 42")).toBeNull();
    expect(parseNameSeed(`${ADJECTIVE_COUNT}.0.42`)).toBeNull();
    expect(parseNameSeed(`0.${ANIMAL_COUNT}.42`)).toBeNull();
    expect(parseNameSeed("0.0.9")).toBeNull();
    expect(parseNameSeed("0.0.100")).toBeNull();
  });
});

describe("chooseNickname", () => {
  it("uses what was typed, trimmed", () => {
    expect(chooseNickname("  Mina ", "Quiet Otter 42")).toBe("Mina");
  });
  it("falls back to the default when empty or blank", () => {
    expect(chooseNickname("", "Quiet Otter 42")).toBe("Quiet Otter 42");
    expect(chooseNickname(" \u3000 ", "Quiet Otter 42")).toBe("Quiet Otter 42");
  });
});

describe("telling names apart", () => {
  it("reads look-alike names as one", () => {
    expect(nameKey("Alice")).toBe(nameKey("аlice")); // a Cyrillic а
    expect(nameKey("Zoë")).toBe(nameKey("zoe"));
    expect(nameKey("ＡＬＩＣＥ")).toBe(nameKey("alice")); // full width
    expect(nameKey("Alice")).not.toBe(nameKey("Alicia"));
  });

  it("tags only the names that read alike", () => {
    const labels = tellApart([
      { id: "k3FzQ", nickname: "Alice" },
      { id: "p9XwR", nickname: "Аlice" },
      { id: "m2AbC", nickname: "Bob" },
    ]);
    expect(labels.get("k3FzQ")).toBe("Alice (k3Fz)");
    expect(labels.get("p9XwR")).toBe("Аlice (p9Xw)");
    expect(labels.get("m2AbC")).toBe("Bob");
  });

  it("isolates names put into sentences", () => {
    expect(isolated({ name: "\u202Eevil", count: 2 })).toEqual({ name: "\u2068\u202Eevil\u2069", count: 2 });
  });
});

describe("hueOf", () => {
  it("gives a person the same hue everywhere, and people different ones", () => {
    expect(hueOf("abc")).toBe(hueOf("abc"));
    const hues = new Set(["k3Fz01", "k3Fz02", "x9", "Q", "0123456789abcdef"].map(hueOf));
    expect(hues.size).toBe(5);
    for (const hue of hues) expect(hue >= 0 && hue < 360).toBe(true);
  });
});
