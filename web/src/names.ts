// Readable default nicknames such as "Quiet Otter 42" (or "조용한 수달 42"), made from a small
// seed so that the same default reads naturally in either language; and how people are told
// apart: names that read alike get a tag, and everyone a colour of their own.
import type { Lang, Params } from "./i18n";
import { trimName } from "./validate";

const ADJECTIVES: Record<Lang, readonly string[]> = {
  en: [
    "Quiet", "Brave", "Sunny", "Clever", "Gentle", "Lucky", "Swift", "Happy",
    "Calm", "Bold", "Curious", "Merry", "Witty", "Cosy", "Bright", "Kind",
  ],
  ko: [
    "조용한", "용감한", "화창한", "영리한", "다정한", "운 좋은", "날쌘", "행복한",
    "차분한", "대담한", "궁금한", "명랑한", "재치 있는", "포근한", "밝은", "친절한",
  ],
};

const ANIMALS: Record<Lang, readonly string[]> = {
  en: [
    "Otter", "Fox", "Panda", "Owl", "Koala", "Tiger", "Dolphin", "Rabbit",
    "Penguin", "Badger", "Heron", "Lynx", "Seal", "Hedgehog", "Falcon", "Squirrel",
  ],
  ko: [
    "수달", "여우", "판다", "부엉이", "코알라", "호랑이", "돌고래", "토끼",
    "펭귄", "오소리", "왜가리", "스라소니", "물개", "고슴도치", "매", "다람쥐",
  ],
};

export const ADJECTIVE_COUNT = ADJECTIVES.en.length;
export const ANIMAL_COUNT = ANIMALS.en.length;
export const NUMBER_MIN = 10;
export const NUMBER_MAX = 99;

/** Which adjective, which animal, which number. */
export type NameSeed = { adjective: number; animal: number; number: number };

/** A random seed; `random` returns numbers in [0, 1) like Math.random. */
export function makeNameSeed(random: () => number = Math.random): NameSeed {
  const pick = (n: number) => Math.min(n - 1, Math.floor(random() * n));
  return {
    adjective: pick(ADJECTIVE_COUNT),
    animal: pick(ANIMAL_COUNT),
    number: NUMBER_MIN + pick(NUMBER_MAX - NUMBER_MIN + 1),
  };
}

export function nameFromSeed(seed: NameSeed, lang: Lang): string {
  const adjective = ADJECTIVES[lang][seed.adjective] ?? ADJECTIVES.en[0];
  const animal = ANIMALS[lang][seed.animal] ?? ANIMALS.en[0];
  return `${adjective} ${animal} ${seed.number}`;
}

export function serializeNameSeed(seed: NameSeed): string {
  return `${seed.adjective}.${seed.animal}.${seed.number}`;
}

/** Reads a stored seed back; null if it is missing or not one this module made. */
export function parseNameSeed(text: string | null | undefined): NameSeed | null {
  if (typeof text !== "string") return null;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const seed = { adjective: Number(m[1]), animal: Number(m[2]), number: Number(m[3]) };
  if (
    seed.adjective >= ADJECTIVE_COUNT ||
    seed.animal >= ANIMAL_COUNT ||
    seed.number < NUMBER_MIN ||
    seed.number > NUMBER_MAX
  ) {
    return null;
  }
  return seed;
}

/** The nickname to use: what the person typed (trimmed), or else the default. */
export function chooseNickname(typed: string, fallback: string): string {
  const t = trimName(typed);
  return t === "" ? fallback : t;
}

/**
 * Letters of other scripts drawn like Latin ones: an "Alice" spelled with a Cyrillic "А" is
 * another name to the server but the same to a reader.
 */
const LOOKALIKES: Record<string, string> = {
  а: "a", в: "b", е: "e", ё: "e", к: "k", м: "m", н: "h", о: "o", р: "p", с: "c", т: "t", у: "y", х: "x",
  і: "i", ї: "i", ј: "j", ѕ: "s", ԁ: "d", ԛ: "q", ԝ: "w", һ: "h", ӏ: "l",
  α: "a", β: "b", ε: "e", η: "n", ι: "i", κ: "k", ν: "v", ο: "o", ρ: "p", τ: "t", υ: "u", χ: "x", γ: "y",
  "0": "o", "1": "l", ı: "i", ſ: "s",
};

/**
 * Parameters with their text isolated (U+2068 … U+2069), so that a name written right to left
 * stays within itself and does not turn the sentence around it.
 */
export function isolated(params?: Params): Params | undefined {
  if (!params) return params;
  const out: Params = {};
  for (const [key, value] of Object.entries(params)) out[key] = typeof value === "string" ? `\u2068${value}\u2069` : value;
  return out;
}

/** A name as a reader tells names apart: case, accents, width and look-alike letters ignored. */
export function nameKey(name: string): string {
  const folded = name.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  let key = "";
  for (const c of folded) key += LOOKALIKES[c] ?? c;
  return key.replace(/\s+/gu, " ").trim();
}

/**
 * What to call each person where everyone is listed: their nickname, with a short tag of their
 * id where another present person's name reads the same ("Alice (k3Fz)").
 */
export function tellApart(people: readonly { id: string; nickname: string }[]): Map<string, string> {
  const byKey = new Map<string, number>();
  for (const p of people) byKey.set(nameKey(p.nickname), (byKey.get(nameKey(p.nickname)) ?? 0) + 1);
  const labels = new Map<string, string>();
  for (const p of people) {
    const alike = (byKey.get(nameKey(p.nickname)) ?? 0) > 1;
    labels.set(p.id, alike ? `${p.nickname} (${p.id.slice(0, 4)})` : p.nickname);
  }
  return labels;
}

/** A hue (0–359) for a person, the same on every page: it tells apart people whose names read
 * the same, beside the letter of their avatar. */
export function hueOf(id: string): number {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % 360;
}
