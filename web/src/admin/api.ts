// The admin API as the admin page sees it: the answers' types and the checks that turn untrusted
// JSON into them (no DOM), and the requests, which carry the token as a Bearer header and resolve
// to a Result (never throw).
import { isMedia, isObj, parseAck, type Media, type ProtocolError, type Result } from "../protocol";

/** This node's link to the others: "off" when it runs alone. */
export type RedisLink = "off" | "up" | "down";
export type AdminNode = { id: string; self: boolean; people: number };
/** A layer of a published track: rid (null without simulcast), bits a second, picture height. */
export type LayerStats = { rid: string | null; bitrate: number | null; height: number | null };
/** What one receives of someone's track through the media server. */
export type ReceivingStats = {
  from: string;
  kind: "audio" | "video";
  layer: string | null;
  sending: boolean;
  bitrate: number | null;
  loss: number | null;
};
/** One participant's media through the media server (rates in bits a second). */
export type MediaStats = {
  connected: boolean;
  /**
   * How its media reaches the server, once connected: over UDP, over TCP where the network drops
   * UDP, or through a TURN server's relay.
   */
  transport: "udp" | "tcp" | "relay" | null;
  estimate: number | null;
  publishing: number | null;
  published: { kind: "audio" | "video"; layers: LayerStats[] }[];
  receiving: ReceivingStats[];
};
/** `call` is there while they are in the room's call; `media` while it goes through the media server. */
export type AdminParticipant = { id: string; nickname: string; node: string; call?: Media | null; media?: MediaStats };
export type AdminRoom = {
  name: string;
  unlisted: boolean;
  count: number;
  inCall: number;
  participants: AdminParticipant[];
};
export type AdminState = {
  /** Changes whenever anything below does; the long-poll waits for it to move on. */
  version: number;
  node: string;
  redis: RedisLink;
  connections: number;
  nodes: AdminNode[];
  rooms: AdminRoom[];
};
export type ClosedRoom = { room: string; people: number };
export type DisconnectedPerson = { id: string; node: string };

/** The server holds a long-poll for up to 25 s; past this, the request counts as lost. */
export const LONG_POLL_TIMEOUT_MS = 35_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/** The pause between two state requests, so that a busy server is not asked in a tight loop. */
export const POLL_PAUSE_MS = 500;
const MAX_RETRY_MS = 5_000;

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

export function isAdminNode(v: unknown): v is AdminNode {
  return isObj(v) && typeof v.id === "string" && typeof v.self === "boolean" && isCount(v.people);
}

export function isAdminParticipant(v: unknown): v is AdminParticipant {
  return (
    isObj(v) &&
    typeof v.id === "string" &&
    typeof v.nickname === "string" &&
    typeof v.node === "string" &&
    (v.call === undefined || v.call === null || isMedia(v.call)) &&
    (v.media === undefined || isMediaStats(v.media))
  );
}

const isRate = (v: unknown) => v === null || typeof v === "number";

export function isMediaStats(v: unknown): v is MediaStats {
  return (
    isObj(v) &&
    typeof v.connected === "boolean" &&
    (v.transport === null || v.transport === "udp" || v.transport === "tcp" || v.transport === "relay") &&
    isRate(v.estimate) &&
    isRate(v.publishing) &&
    Array.isArray(v.published) &&
    v.published.every(
      (t) =>
        isObj(t) &&
        (t.kind === "audio" || t.kind === "video") &&
        Array.isArray(t.layers) &&
        t.layers.every((l) => isObj(l) && (l.rid === null || typeof l.rid === "string") && isRate(l.bitrate) && isRate(l.height)),
    ) &&
    Array.isArray(v.receiving) &&
    v.receiving.every(
      (r) =>
        isObj(r) &&
        typeof r.from === "string" &&
        (r.kind === "audio" || r.kind === "video") &&
        (r.layer === null || typeof r.layer === "string") &&
        typeof r.sending === "boolean" &&
        isRate(r.bitrate) &&
        isRate(r.loss),
    )
  );
}

export function isAdminRoom(v: unknown): v is AdminRoom {
  return (
    isObj(v) &&
    typeof v.name === "string" &&
    typeof v.unlisted === "boolean" &&
    isCount(v.count) &&
    isCount(v.inCall) &&
    Array.isArray(v.participants) &&
    v.participants.every(isAdminParticipant)
  );
}

export function isAdminState(v: unknown): v is AdminState {
  return (
    isObj(v) &&
    typeof v.version === "number" &&
    typeof v.node === "string" &&
    (v.redis === "off" || v.redis === "up" || v.redis === "down") &&
    isCount(v.connections) &&
    Array.isArray(v.nodes) &&
    v.nodes.every(isAdminNode) &&
    Array.isArray(v.rooms) &&
    v.rooms.every(isAdminRoom)
  );
}

export function isClosedRoom(v: unknown): v is ClosedRoom {
  return isObj(v) && typeof v.room === "string" && isCount(v.people);
}

export function isDisconnectedPerson(v: unknown): v is DisconnectedPerson {
  return isObj(v) && typeof v.id === "string" && typeof v.node === "string";
}

/**
 * Reads an answer: the API's `{ error: { code, message } }` becomes a failure, a success whose
 * body passes `check` a value; an error page without the API's JSON (a proxy's, say) is told by
 * its status alone.
 */
export function readAnswer<T>(status: number, body: unknown, check: (v: unknown) => v is T): Result<T> {
  const result = parseAck(body, check);
  if (status >= 200 && status < 300) return result;
  if (!result.ok && result.error.code !== "bad_response") return result;
  return failure(statusCode(status), `HTTP ${status}`);
}

function statusCode(status: number): string {
  if (status === 401) return "unauthorized";
  if (status === 404) return "not_found";
  return `http_${status}`;
}

/** How long to wait before trying again after `failures` failures in a row: 1 s, 2 s, 4 s, then 5 s. */
export function retryDelay(failures: number): number {
  return Math.min(1000 * 2 ** Math.max(failures - 1, 0), MAX_RETRY_MS);
}

function failure(code: string, message: string): { ok: false; error: ProtocolError } {
  return { ok: false, error: { code, message } };
}

type RequestOptions = { body?: object; timeoutMs?: number; signal?: AbortSignal };

/** The admin API under one token. */
export class AdminApi {
  constructor(private readonly token: string) {}

  /**
   * The current state; with `after` (the version last seen) the server answers only once the
   * state has moved on from it, or when it has waited long enough.
   */
  state(after: number | null, signal?: AbortSignal): Promise<Result<AdminState>> {
    const query = after === null ? "" : `?after=${encodeURIComponent(String(after))}`;
    const timeoutMs = after === null ? REQUEST_TIMEOUT_MS : LONG_POLL_TIMEOUT_MS;
    return this.request("GET", `/admin/api/state${query}`, isAdminState, { timeoutMs, signal });
  }

  /** Closes a room: everyone in it goes back to the lobby. */
  closeRoom(room: string): Promise<Result<ClosedRoom>> {
    return this.request("POST", "/admin/api/close-room", isClosedRoom, { body: { room } });
  }

  /** Disconnects one socket, which is told not to come back by itself. */
  disconnect(id: string): Promise<Result<DisconnectedPerson>> {
    return this.request("POST", "/admin/api/disconnect", isDisconnectedPerson, { body: { id } });
  }

  private async request<T>(
    method: "GET" | "POST",
    path: string,
    check: (v: unknown) => v is T,
    options: RequestOptions = {},
  ): Promise<Result<T>> {
    const controller = new AbortController();
    const timer = window.setTimeout(() => controller.abort(), options.timeoutMs ?? REQUEST_TIMEOUT_MS);
    const stop = () => controller.abort();
    options.signal?.addEventListener("abort", stop);
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (options.body) headers["Content-Type"] = "application/json";
    try {
      const response = await fetch(path, {
        method,
        headers,
        body: options.body ? JSON.stringify(options.body) : undefined,
        signal: controller.signal,
        cache: "no-store",
      });
      let body: unknown = null;
      try {
        body = await response.json();
      } catch {
        // Not JSON: the status tells what happened.
      }
      return readAnswer(response.status, body, check);
    } catch (error) {
      if (options.signal?.aborted) return failure("aborted", "request cancelled");
      if (controller.signal.aborted) return failure("timeout", "the server did not answer in time");
      return failure("network", error instanceof Error ? error.message : String(error));
    } finally {
      window.clearTimeout(timer);
      options.signal?.removeEventListener("abort", stop);
    }
  }
}
