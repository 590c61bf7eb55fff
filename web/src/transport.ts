// How a call's media travels, as the call session sees it: it publishes our tracks, receives
// everyone else's with who they belong to, and leaves. The session (phases, devices, tiles,
// speaking) talks to nothing else of the media path. Three stand behind this interface: the
// media server's (sfu.ts: one connection to the server, many remote tracks), the same with two
// people talking directly while they are two (pair.ts), and the mesh (mesh.ts: one connection to
// each person).
import type { ConnectionLabel } from "./peer";
import type { Signal } from "./protocol";

/** What we send: a microphone, a camera or a screen (or nothing of a kind). */
export type LocalTracks = {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  /** The video is a shared screen: kept sharp rather than scaled down. */
  screen: boolean;
};

/** What a transport tells the session about the others. */
export type TransportEvents = {
  /** Media from someone the session may not have a tile for yet is about to arrive. */
  arriving(id: string): void;
  /** Someone's media: a stream whose tracks come and go as they send them. */
  stream(id: string, stream: MediaStream): void;
  /** How the media path to someone stands, for their tile. */
  connection(id: string, label: ConnectionLabel): void;
  /** How well someone's media arrives, for their tile; `self`: how well ours goes out. */
  quality?(id: string | "self", quality: Quality): void;
};

/** How well media arrives: nearly all of it, some lost, or little or none. */
export type Quality = "good" | "fair" | "poor";

/** How often a connection's figures are read for the quality shown on tiles. */
export const QUALITY_EVERY_MS = 2000;

/** Quality from what was lost of what was sent over a while (`received` and `lost` packets). */
export function qualityOf(received: number, lost: number): Quality {
  const total = received + lost;
  if (received === 0) return "poor";
  const share = lost / total;
  if (share >= 0.1) return "poor";
  return share >= 0.02 ? "fair" : "good";
}

export interface CallTransport {
  /** The call was joined with these others already in it, and these ICE servers. */
  joined(config: RTCConfiguration, others: readonly string[]): void;
  /** Someone is in the call (`justJoined`: they have just come in). */
  present(id: string, justJoined: boolean): void;
  /** Someone is out of the call, or out of the room: nothing more of theirs arrives. */
  gone(id: string): void;
  /** A signal of this call's, from the server. */
  signal(sig: Signal): void;
  /** What we send, from now on. */
  publish(tracks: LocalTracks): void;
  /** Fresh ICE servers (TURN credentials) for every connection. */
  renewIce(config: RTCConfiguration): void;
  /** How loud someone is as received, 0 to 1. */
  audioLevel(id: string): number;
  /** Everyone media is exchanged with, or about to be. */
  remotes(): string[];
  /** Out of the call: every connection closed. */
  close(): void;
}
