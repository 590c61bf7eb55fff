// What the admin page says about a state and about its actions, as plain values (totals, text
// keys), so that it can be checked without a page.
import type { Key, Params } from "../i18n";
import type { ProtocolError } from "../protocol";
import type { AdminState, ClosedRoom, RedisLink } from "./api";

/** A text in the current language, kept as its key so that it follows a language switch. */
export type Text = { key: Key; params?: Params };

export type Summary = { rooms: number; people: number; inCall: number };

/** Rooms, and people in at least one room and in at least one call (each person once). */
export function summarize(state: AdminState): Summary {
  const people = new Set<string>();
  const inCall = new Set<string>();
  for (const room of state.rooms) {
    for (const p of room.participants) {
      people.add(p.id);
      if (p.call) inCall.add(p.id);
    }
  }
  return { rooms: state.rooms.length, people: people.size, inCall: inCall.size };
}

const REDIS_KEYS: Record<RedisLink, Key> = {
  off: "admin.redisOff",
  up: "admin.redisUp",
  down: "admin.redisDown",
};

export function redisText(link: RedisLink): Text {
  return { key: REDIS_KEYS[link] };
}

/** The nickname of whoever has this socket id, for messages; the id itself if they are gone. */
export function nameOf(state: AdminState | null, id: string): string {
  for (const room of state?.rooms ?? []) {
    const found = room.participants.find((p) => p.id === id);
    if (found) return found.nickname;
  }
  return id;
}

export function closedText(closed: ClosedRoom): Text {
  if (closed.people === 1) return { key: "admin.closedOne", params: { room: closed.room } };
  return { key: "admin.closed", params: { room: closed.room, people: closed.people } };
}

export function failedText(error: ProtocolError): Text {
  return { key: "admin.failed", params: { message: error.message || error.code } };
}

/** What the sign-in form says when a token was refused or could not be tried. */
export function signInErrorText(error: ProtocolError): Text {
  if (error.code === "unauthorized") return { key: "admin.wrongToken" };
  if (error.code === "network" || error.code === "timeout") return { key: "admin.unreachable" };
  return failedText(error);
}
