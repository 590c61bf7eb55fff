// What a chat line shows beyond its plain text: the web addresses in it, which become links, and
// whether it goes on its sender's group of lines (one name and avatar for several lines, as every
// chat app draws them). Pure, so that hostile text can be tried against it in unit tests.

/** A piece of a message: plain text, or a web address to link. */
export type TextPart = { text: string } | { text: string; href: string };

/** Lines of one sender this close together share one heading. */
export const GROUP_WITHIN_MS = 5 * 60_000;

/** Where an address may start: `http://` or `https://`, not inside a word ("xhttp://"). */
const ADDRESS_START = /(^|[^\p{L}\p{N}_])(https?:\/\/)/giu;
/** What ends an address: space, or a character a URL never holds unescaped. */
const ADDRESS_END = /[\s<>"`{}|\\^\u00a0\u2000-\u200f\u2028-\u202f\u2060-\u206f\ufeff]/u;
/** Punctuation that ends a sentence rather than an address ("see https://a.example."). */
const TRAILING = /^[.,;:!?'’”»)\]]$/u;
/** The longest address made a link; longer text stays text. */
const MAX_ADDRESS = 2048;

/**
 * Splits a message into text and links. Only `http:` and `https:` addresses with a host become
 * links, and the link goes where the text says (the address as the browser parses it): nothing
 * else, `javascript:` least of all, is ever a link.
 */
export function linkParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let done = 0;
  ADDRESS_START.lastIndex = 0;
  for (let match = ADDRESS_START.exec(text); match; match = ADDRESS_START.exec(text)) {
    const start = match.index + (match[1]?.length ?? 0);
    if (start < done) continue;
    let end = start + (match[2]?.length ?? 0);
    while (end < text.length && !ADDRESS_END.test(text[end] ?? " ")) end++;
    let candidate = text.slice(start, end);
    candidate = trimTrailing(candidate);
    ADDRESS_START.lastIndex = start + Math.max(candidate.length, 1);
    const href = webAddress(candidate);
    if (!href) continue;
    if (start > done) parts.push({ text: text.slice(done, start) });
    parts.push({ text: candidate, href });
    done = start + candidate.length;
  }
  if (done < text.length) parts.push({ text: text.slice(done) });
  return parts;
}

/** Drops sentence punctuation after an address; a closing bracket stays if the address opened one
 * ("https://en.wikipedia.org/wiki/Rust_(programming_language)"). */
function trimTrailing(candidate: string): string {
  const open = { ")": count(candidate, "("), "]": count(candidate, "[") };
  const close = { ")": count(candidate, ")"), "]": count(candidate, "]") };
  let end = candidate.length;
  while (end > 0 && TRAILING.test(candidate[end - 1] ?? "")) {
    const last = candidate[end - 1];
    if (last === ")" || last === "]") {
      if (open[last] >= close[last]) break;
      close[last]--;
    }
    end--;
  }
  return candidate.slice(0, end);
}

function count(text: string, char: string): number {
  let n = 0;
  for (const c of text) if (c === char) n++;
  return n;
}

/** The address to link to, or null when `candidate` is not an http(s) address with a host. */
function webAddress(candidate: string): string | null {
  // "https:///x" is parsed as the host "x": the text would not say where the link goes.
  if (candidate.length > MAX_ADDRESS || !/^https?:\/\/[^/\\]/i.test(candidate)) return null;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.hostname || url.username || url.password) return null;
  return url.href;
}

/** A chat line as grouping sees it. */
export type LineOf = { sender: string; ts: number };

/** Whether `next` goes on `prev`'s group: the same sender, soon after. */
export function continuesGroup(prev: LineOf | null, next: LineOf): boolean {
  return prev !== null && prev.sender === next.sender && next.ts >= prev.ts && next.ts - prev.ts < GROUP_WITHIN_MS;
}
