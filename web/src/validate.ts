// Client-side checks that mirror the server's limits, so that most bad input is caught before
// it is sent (the server stays the judge: its answer is what counts).

// The server's limits (src/validate.rs and src/requests.rs; a server test checks these against
// them). Inputs get them as `maxlength`.
export const LIMITS = {
  nickname: 32,
  room: 64,
  message: 2000,
  password: 128,
} as const;

// Unicode White_Space, the set the server trims (JavaScript's trim differs slightly: it keeps
// U+0085 and removes U+FEFF).
const WS = "\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const LEADING_WS = new RegExp(`^[${WS}]+`, "u");
const TRAILING_WS = new RegExp(`[${WS}]+$`, "u");
const ONLY_WS = new RegExp(`^[${WS}]*$`, "u");

// Control characters (Unicode category Cc).
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/u;
const CONTROL_BUT_LF_TAB = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/u;

export type Check = { ok: true; value: string } | { ok: false; code: "invalid_nickname" | "invalid_room" | "invalid_message" };

/** Length in Unicode scalar values (what the server counts), not UTF-16 units. */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export function trimName(text: string): string {
  return text.replace(LEADING_WS, "").replace(TRAILING_WS, "");
}

export function isBlank(text: string): boolean {
  return ONLY_WS.test(text);
}

// What the server takes out of names (invisible characters that make one name look like another
// or turn the text around it), but a zero-width joiner between two pictographs (👩‍💻).
const INVISIBLE =
  /[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}]/u;
const PICTOGRAPH = /[\u2600-\u27BF\u{1F000}-\u{1FAFF}]/u;

/** A name as the server keeps it: invisible characters out, composed (NFC). */
export function normaliseName(raw: string): string {
  const chars = [...raw];
  const kept = chars.filter((c, i) => {
    const joinsPictographs =
      c === "\u200D" && i > 0 && PICTOGRAPH.test(chars[i - 1] ?? "") && PICTOGRAPH.test(chars[i + 1] ?? "");
    return joinsPictographs || !INVISIBLE.test(c);
  });
  return kept.join("").normalize("NFC");
}

function checkName(raw: string, max: number, code: "invalid_nickname" | "invalid_room"): Check {
  const value = trimName(normaliseName(raw));
  const n = charCount(value);
  if (n < 1 || n > max || CONTROL.test(value)) return { ok: false, code };
  return { ok: true, value };
}

/** A nickname: 1–32 characters after trimming, no control characters. Gives the trimmed name. */
export function checkNickname(raw: string): Check {
  return checkName(raw, LIMITS.nickname, "invalid_nickname");
}

/** A room name: 1–64 characters after trimming, no control characters. Gives the trimmed name. */
export function checkRoomName(raw: string): Check {
  return checkName(raw, LIMITS.room, "invalid_room");
}

/**
 * A chat message: 1–2,000 characters, not only white space, no control characters but line
 * feed and tab. Gives the text unchanged (the server keeps it as sent).
 */
export function checkMessage(text: string): Check {
  const n = charCount(text);
  if (n < 1 || n > LIMITS.message || isBlank(text) || CONTROL_BUT_LF_TAB.test(text)) {
    return { ok: false, code: "invalid_message" };
  }
  return { ok: true, value: text };
}

/** What is wrong with a field's text, in plain words for the person typing it. */
export type Problem =
  | { kind: "required" }
  | { kind: "tooLong"; max: number; count: number }
  | { kind: "invisible" };

/**
 * A name field's problem: empty (when a name is required), too long, or holding characters that
 * cannot be seen (tabs, line breaks and other control characters).
 */
export function nameProblem(raw: string, max: number, required: boolean): Problem | null {
  const value = trimName(normaliseName(raw));
  const count = charCount(value);
  if (count === 0) return required ? { kind: "required" } : null;
  if (count > max) return { kind: "tooLong", max, count };
  if (CONTROL.test(value)) return { kind: "invisible" };
  return null;
}

/** A message's problem. An empty one or one of spaces alone is no problem: it is not sent. */
export function messageProblem(text: string): Problem | null {
  const count = charCount(text);
  if (count > LIMITS.message) return { kind: "tooLong", max: LIMITS.message, count };
  if (CONTROL_BUT_LF_TAB.test(text)) return { kind: "invisible" };
  return null;
}
