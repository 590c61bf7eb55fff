// What the admin page says about a state and about its actions, as plain values (totals, text
// keys), so that it can be checked without a page.
import type { Key, Params } from "../i18n";
import type { ProtocolError } from "../protocol";
import type { AdminState, ClosedRoom, MediaStats, RedisLink } from "./api";

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

/** A bitrate as people read it: kbit/s below a megabit, Mbit/s above. */
export function rate(bitsPerSecond: number | null): string {
  if (bitsPerSecond === null) return "–";
  if (bitsPerSecond < 1_000_000) return `${Math.round(bitsPerSecond / 1000)} kbit/s`;
  return `${(bitsPerSecond / 1_000_000).toFixed(1)} Mbit/s`;
}

/**
 * One participant's media through the media server, in three lines: what they send (each video
 * layer with its height and rate), what they receive (video streams, the layers, the rate, the
 * worst loss), and how their connection goes (UDP or TCP) with its bandwidth estimate.
 */
export function mediaTexts(media: MediaStats): Text[] {
  const layers = media.published
    .filter((t) => t.kind === "video")
    .flatMap((t) => t.layers)
    .map((l) => [l.rid, l.height ? `${l.height}p` : null, rate(l.bitrate)].filter(Boolean).join(" "));
  const video = media.receiving.filter((r) => r.kind === "video");
  const sending = video.filter((r) => r.sending);
  const received = media.receiving.reduce((sum, r) => sum + (r.bitrate ?? 0), 0);
  const loss = Math.max(0, ...media.receiving.map((r) => r.loss ?? 0));
  const shown = [...new Set(sending.map((r) => r.layer ?? "–"))].join(", ") || "–";
  return [
    { key: "admin.mediaSends", params: { rate: rate(media.publishing), layers: layers.join(" · ") || "–" } },
    {
      key: "admin.mediaReceives",
      params: { count: sending.length, of: video.length, layers: shown, rate: rate(received), loss: `${Math.round(loss * 100)}%` },
    },
    !media.connected
      ? { key: "admin.mediaConnecting" }
      : media.transport === "relay"
        ? { key: "admin.mediaEstimateRelayed", params: { rate: rate(media.estimate) } }
        : { key: "admin.mediaEstimate", params: { transport: media.transport?.toUpperCase() ?? "–", rate: rate(media.estimate) } },
  ];
}
