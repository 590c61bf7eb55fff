// Turning protocol values into text for people: times, error messages, message keys.
import { translate, type Lang } from "./i18n";
import { isKnownErrorCode, type ChatMessage, type ProtocolError } from "./protocol";

/** "14:05" or "오후 2:05": the hour and minute of a server timestamp in the reader's language. */
export function formatTime(ts: number, lang: Lang, timeZone?: string): string {
  const options: Intl.DateTimeFormatOptions = { hour: "2-digit", minute: "2-digit" };
  if (timeZone) options.timeZone = timeZone;
  return new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", options).format(new Date(ts));
}

/** The full date and time, for a tooltip. */
export function formatDateTime(ts: number, lang: Lang, timeZone?: string): string {
  const options: Intl.DateTimeFormatOptions = { dateStyle: "medium", timeStyle: "medium" };
  if (timeZone) options.timeZone = timeZone;
  return new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", options).format(new Date(ts));
}

/** An error for people: the translated text for a known code, else the server's own message. */
export function errorText(error: ProtocolError, lang: Lang): string {
  if (isKnownErrorCode(error.code)) return translate(lang, `error.${error.code}`);
  return translate(lang, "error.unknown", { message: error.message || error.code });
}

/** A key that tells messages apart, even across a server restart that reuses ids. */
export function messageKey(message: Pick<ChatMessage, "id" | "ts">): string {
  return `${message.id}@${message.ts}`;
}

/** The first character of a name, upper-cased, for a round badge ("?" for a blank name). */
export function initial(name: string): string {
  const first = Array.from(name.trim())[0];
  return first === undefined ? "?" : first.toLocaleUpperCase();
}

/** A running time as a call's clock shows it: "4:05", or "1:02:09" past an hour. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}
