// The Noom wire protocol as the client sees it: event names, payload types, and checks that
// turn untrusted server payloads into typed values (no DOM, no socket).

export const PROTOCOL = "noom/1";

export const Events = {
  join: "room:join",
  leave: "room:leave",
  send: "chat:send",
  rename: "user:rename",
  directoryGet: "directory:get",
  directory: "directory",
  joined: "participant:joined",
  left: "participant:left",
  updated: "participant:updated",
  message: "chat:message",
} as const;

export type Participant = { id: string; nickname: string };
export type RoomInfo = { name: string; unlisted: boolean; count: number };
export type ChatMessage = {
  id: string;
  room: string;
  sender: Participant;
  text: string;
  ts: number;
};
export type DirectoryRoom = { name: string; count: number };
export type Directory = { rooms: DirectoryRoom[]; total: number };

export type JoinAck = {
  room: RoomInfo;
  self: Participant;
  participants: Participant[];
  history: ChatMessage[];
};
export type LeaveAck = { left: string[] };
export type SendAck = { message: ChatMessage };
export type RenameAck = { nickname: string };

export type ParticipantEvent = { room: string; participant: Participant; count: number };
export type ParticipantUpdate = { room: string; participant: Participant };

/** Error codes the server documents, plus two the client produces itself. */
export const KNOWN_ERROR_CODES = [
  "bad_request",
  "invalid_nickname",
  "invalid_room",
  "invalid_message",
  "not_in_room",
  "rate_limited",
  "too_many_rooms",
  "overloaded",
  "disconnected",
  "timeout",
] as const;
export type KnownErrorCode = (typeof KNOWN_ERROR_CODES)[number];

export type ProtocolError = { code: string; message: string };

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isKnownErrorCode(code: string): code is KnownErrorCode {
  return (KNOWN_ERROR_CODES as readonly string[]).includes(code);
}

export function isParticipant(v: unknown): v is Participant {
  return isObj(v) && typeof v.id === "string" && typeof v.nickname === "string";
}

export function isRoomInfo(v: unknown): v is RoomInfo {
  return (
    isObj(v) && typeof v.name === "string" && typeof v.unlisted === "boolean" && typeof v.count === "number"
  );
}

export function isChatMessage(v: unknown): v is ChatMessage {
  return (
    isObj(v) &&
    typeof v.id === "string" &&
    typeof v.room === "string" &&
    isParticipant(v.sender) &&
    typeof v.text === "string" &&
    typeof v.ts === "number"
  );
}

export function isDirectory(v: unknown): v is Directory {
  return (
    isObj(v) &&
    typeof v.total === "number" &&
    Array.isArray(v.rooms) &&
    v.rooms.every((r) => isObj(r) && typeof r.name === "string" && typeof r.count === "number")
  );
}

export function isJoinAck(v: unknown): v is JoinAck {
  return (
    isObj(v) &&
    isRoomInfo(v.room) &&
    isParticipant(v.self) &&
    Array.isArray(v.participants) &&
    v.participants.every(isParticipant) &&
    Array.isArray(v.history) &&
    v.history.every(isChatMessage)
  );
}

export function isLeaveAck(v: unknown): v is LeaveAck {
  return isObj(v) && Array.isArray(v.left) && v.left.every((r) => typeof r === "string");
}

export function isSendAck(v: unknown): v is SendAck {
  return isObj(v) && isChatMessage(v.message);
}

export function isRenameAck(v: unknown): v is RenameAck {
  return isObj(v) && typeof v.nickname === "string";
}

export function isParticipantEvent(v: unknown): v is ParticipantEvent {
  return isObj(v) && typeof v.room === "string" && isParticipant(v.participant) && typeof v.count === "number";
}

export function isParticipantUpdate(v: unknown): v is ParticipantUpdate {
  return isObj(v) && typeof v.room === "string" && isParticipant(v.participant);
}

/**
 * Reads an acknowledgement: `{ error: { code, message } }` becomes a failure, a value that
 * passes `check` a success, anything else a `bad_response` failure.
 */
export function parseAck<T>(ack: unknown, check: (v: unknown) => v is T): Result<T> {
  if (isObj(ack) && "error" in ack) {
    const e = ack.error;
    if (isObj(e)) {
      return {
        ok: false,
        error: {
          code: typeof e.code === "string" ? e.code : "unknown",
          message: typeof e.message === "string" ? e.message : "",
        },
      };
    }
    return { ok: false, error: { code: "unknown", message: String(e) } };
  }
  if (check(ack)) return { ok: true, value: ack };
  return { ok: false, error: { code: "bad_response", message: "unexpected answer from the server" } };
}
