// The Noom wire protocol as the client sees it: event names, payload types, and checks that
// turn untrusted server payloads into typed values (no DOM, no socket).

export const PROTOCOL = "noom/1";

// The same names as the server's src/events.rs (a test there holds the two together).
export const Events = {
  session: "session",
  join: "room:join",
  leave: "room:leave",
  send: "chat:send",
  rename: "user:rename",
  directoryGet: "directory:get",
  directory: "directory",
  joined: "participant:joined",
  left: "participant:left",
  updated: "participant:updated",
  participantsUpdated: "participants:updated",
  message: "chat:message",
  restarting: "server:restarting",
  disconnected: "server:disconnected",
  roomClosed: "room:closed",
  callJoin: "call:join",
  callMedia: "call:media",
  callLeave: "call:leave",
  signal: "rtc:signal",
  iceRenewed: "call:ice",
  sfuJoin: "sfu:join",
  sfuAnswer: "sfu:answer",
  sfuView: "sfu:view",
  sfuOffer: "sfu:offer",
  sfuSpeakers: "sfu:speakers",
  sfuLayers: "sfu:layers",
  sfuClosed: "sfu:closed",
  sfuMoved: "sfu:moved",
  roomHost: "room:host",
  roomLock: "room:lock",
  roomRemove: "room:remove",
  roomEnd: "room:end",
  roomHand: "room:hand",
  callMute: "call:mute",
  callAsk: "call:ask",
  roomUpdated: "room:updated",
  callAsked: "call:asked",
  roomWaitingRoom: "room:waiting-room",
  roomAdmit: "room:admit",
  roomWaiting: "room:waiting",
  roomAdmitted: "room:admitted",
  roomRefused: "room:refused",
  roomReact: "room:react",
  roomReaction: "room:reaction",
  roomPassword: "room:password",
} as const;

/** The reactions there are, as the server knows them (src/requests.rs), with their names' keys. */
export const REACTIONS = [
  ["👍", "reaction.thumbsUp"],
  ["👏", "reaction.clap"],
  ["😂", "reaction.laugh"],
  ["❤️", "reaction.heart"],
  ["🎉", "reaction.party"],
  ["😮", "reaction.surprised"],
] as const;

/** What someone in a call sends: microphone, camera, screen. */
export type Media = { audio: boolean; video: boolean; screen: boolean };
/**
 * `call` is there while they are in the room's call (absent, or null, otherwise); `host` when they
 * host the room, `hand` (when it went up) while their hand is raised, `muted` while a host has
 * them muted.
 */
export type Participant = {
  id: string;
  nickname: string;
  call?: Media | null;
  host?: boolean;
  hand?: number | null;
  muted?: boolean;
};
/** `locked` and `waitingRoom` are absent from servers without meeting controls. */
export type RoomInfo = {
  name: string;
  unlisted: boolean;
  count: number;
  locked?: boolean;
  waitingRoom?: boolean;
  password?: boolean;
};
/** Someone waiting for a host to let them in, since then (ms since the epoch). */
export type Waiter = { id: string; nickname: string; since: number };
/** The answer to `room:join` for a room whose newcomers wait for a host. */
export type JoinWaiting = { waiting: { room: string } };
/** To hosts: who waits to enter. */
export type RoomWaiting = { room: string; waiting: Waiter[] };
/** To one waiting: a host's answer, or why they wait no more. */
export type RoomAdmitted = { room: string };
export type RoomRefused = { room: string; reason: string };
/** Someone reacted. */
export type RoomReaction = { room: string; from: string; emoji: string };
export type ChatMessage = {
  id: string;
  room: string;
  sender: Participant;
  text: string;
  ts: number;
};
/** A public room in the lobby; `inCall`: how many are in its call (0 when none is going; an older
 * server leaves it out). */
export type DirectoryRoom = { name: string; count: number; inCall?: number };
export type Directory = { rooms: DirectoryRoom[]; total: number };

export type JoinAck = {
  room: RoomInfo;
  self: Participant;
  participants: Participant[];
  history: ChatMessage[];
  /** How many people the room's call may hold (absent from servers without calls). */
  callLimit?: number;
  /** While a call is going: when it began (ms since the epoch, the server's clock). */
  callSince?: number;
  /** The room's host key, to its opener who asked for one. */
  hostKey?: string;
};
export type LeaveAck = { left: string[] };
export type SendAck = { message: ChatMessage };
export type RenameAck = { nickname: string };

export type ParticipantEvent = { room: string; participant: Participant; count: number };
export type ParticipantUpdate = { room: string; participant: Participant };
/** A large call's media-state changes, several at once, of the people this client shows. */
export type ParticipantsUpdate = { room: string; participants: Participant[] };
/** Someone closed a room this client was in; the server has already put it back in the lobby. */
export type RoomClosed = { room: string; reason: string };
/** A host locked or unlocked the room. */
export type RoomUpdated = { room: RoomInfo };
/** What a host asks of this client in a call. */
export type Ask = "unmute" | "stop-camera" | "stop-screen";
export type CallAsked = { room: string; ask: Ask };
/** A host's control done: the room as it now is (a lock), how many it reached (mute, end). */
export type ControlAck = { room?: RoomInfo; count?: number };
/** The server is about to close this connection and wants it to stay closed. */
export type ServerDisconnected = { reason: string };

export type SessionDescription = { type: "offer" | "answer" | "pranswer" | "rollback"; sdp: string };
export type Candidate = {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
};
export type IceServer = { urls: string[]; username?: string; credential?: string };

/** New TURN credentials for a call one is in, before the old ones expire. */
export type IceRenewed = { room: string; iceServers: IceServer[] };
export type CallJoinAck = {
  participants: Participant[];
  iceServers: IceServer[];
  iceTransportPolicy: "all" | "relay";
  limit: number;
  /** How the media travels: through the server's media server, or browser to browser (absent: mesh). */
  via?: "sfu" | "mesh";
  /** With `sfu`: a call of two talks browser to browser while the server stands by (absent: server). */
  pairs?: "direct" | "server";
};
/** The media server's answer to our offer (`sfu:join`). */
export type SfuAnswer = { sdp: string };
/** The media server offers us the tracks that came or went; we answer with `sfu:answer`. */
export type SfuOffer = { room: string; sdp: string };
/** Who speaks in the call, loudest first. */
export type SfuSpeakers = { room: string; speakers: string[] };
/** The layers of our camera (rids) someone receives: the others are paused. */
export type SfuLayers = { room: string; active: string[] };
/** The media server lost our connection: we are out of the call. */
export type SfuClosed = { room: string };
export type CallMediaAck = { participant: Participant };
export type EmptyAck = Record<string, never>;
/** A signal from one peer: exactly one of `description` and `candidate` (null: end of candidates). */
export type Signal = {
  room: string;
  from: string;
  description?: SessionDescription;
  candidate?: Candidate | null;
};

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
  "not_in_call",
  "peer_unavailable",
  "call_full",
  "invalid_signal",
  "forbidden",
  "room_locked",
  "barred",
  "waiting_room",
  "password_required",
  "wrong_password",
  "bad_host_key",
  "disconnected",
  "timeout",
] as const;
export type KnownErrorCode = (typeof KNOWN_ERROR_CODES)[number];

export type ProtocolError = { code: string; message: string };

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isKnownErrorCode(code: string): code is KnownErrorCode {
  return (KNOWN_ERROR_CODES as readonly string[]).includes(code);
}

export function isMedia(v: unknown): v is Media {
  return isObj(v) && typeof v.audio === "boolean" && typeof v.video === "boolean" && typeof v.screen === "boolean";
}

export function isParticipant(v: unknown): v is Participant {
  return (
    isObj(v) &&
    typeof v.id === "string" &&
    typeof v.nickname === "string" &&
    (v.call === undefined || v.call === null || isMedia(v.call)) &&
    (v.host === undefined || typeof v.host === "boolean") &&
    (v.hand === undefined || v.hand === null || typeof v.hand === "number") &&
    (v.muted === undefined || typeof v.muted === "boolean")
  );
}

export function isRoomInfo(v: unknown): v is RoomInfo {
  return (
    isObj(v) &&
    typeof v.name === "string" &&
    typeof v.unlisted === "boolean" &&
    typeof v.count === "number" &&
    (v.locked === undefined || typeof v.locked === "boolean") &&
    (v.waitingRoom === undefined || typeof v.waitingRoom === "boolean") &&
    (v.password === undefined || typeof v.password === "boolean")
  );
}

export function isJoinWaiting(v: unknown): v is JoinWaiting {
  return isObj(v) && isObj(v.waiting) && typeof v.waiting.room === "string";
}

/** `room:join`'s answer: in, or waiting. */
export function isJoinOrWaiting(v: unknown): v is JoinAck | JoinWaiting {
  return isJoinAck(v) || isJoinWaiting(v);
}

export function isWaiter(v: unknown): v is Waiter {
  return isObj(v) && typeof v.id === "string" && typeof v.nickname === "string" && typeof v.since === "number";
}

export function isRoomWaiting(v: unknown): v is RoomWaiting {
  return isObj(v) && typeof v.room === "string" && Array.isArray(v.waiting) && v.waiting.every(isWaiter);
}

export function isRoomAdmitted(v: unknown): v is RoomAdmitted {
  return isObj(v) && typeof v.room === "string";
}

export function isRoomReaction(v: unknown): v is RoomReaction {
  return isObj(v) && typeof v.room === "string" && typeof v.from === "string" && typeof v.emoji === "string";
}

export function isRoomRefused(v: unknown): v is RoomRefused {
  return isObj(v) && typeof v.room === "string" && typeof v.reason === "string";
}

export function isRoomUpdated(v: unknown): v is RoomUpdated {
  return isObj(v) && isRoomInfo(v.room);
}

const ASKS: readonly string[] = ["unmute", "stop-camera", "stop-screen"];

export function isCallAsked(v: unknown): v is CallAsked {
  return isObj(v) && typeof v.room === "string" && typeof v.ask === "string" && ASKS.includes(v.ask);
}

export function isControlAck(v: unknown): v is ControlAck {
  return isObj(v) && (v.room === undefined || isRoomInfo(v.room)) && (v.count === undefined || typeof v.count === "number");
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
    v.rooms.every(
      (r) => isObj(r) && typeof r.name === "string" && typeof r.count === "number" && (r.inCall === undefined || typeof r.inCall === "number"),
    )
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
    v.history.every(isChatMessage) &&
    (v.callLimit === undefined || typeof v.callLimit === "number") &&
    (v.callSince === undefined || typeof v.callSince === "number") &&
    (v.hostKey === undefined || typeof v.hostKey === "string")
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

export function isParticipantsUpdate(v: unknown): v is ParticipantsUpdate {
  return isObj(v) && typeof v.room === "string" && Array.isArray(v.participants) && v.participants.every(isParticipant);
}

// The reason is kept as any string: the server has acted already, so a reason this client does
// not know yet must still be taken in (and told in general words).
export function isRoomClosed(v: unknown): v is RoomClosed {
  return isObj(v) && typeof v.room === "string" && typeof v.reason === "string";
}

export function isServerDisconnected(v: unknown): v is ServerDisconnected {
  return isObj(v) && typeof v.reason === "string";
}

const DESCRIPTION_TYPES = ["offer", "answer", "pranswer", "rollback"];

export function isSessionDescription(v: unknown): v is SessionDescription {
  return isObj(v) && typeof v.type === "string" && DESCRIPTION_TYPES.includes(v.type) && typeof v.sdp === "string";
}

function isOptional(v: unknown, type: "string" | "number"): boolean {
  return v === undefined || v === null || typeof v === type;
}

export function isCandidate(v: unknown): v is Candidate {
  return (
    isObj(v) &&
    typeof v.candidate === "string" &&
    isOptional(v.sdpMid, "string") &&
    isOptional(v.sdpMLineIndex, "number") &&
    isOptional(v.usernameFragment, "string")
  );
}

export function isIceServer(v: unknown): v is IceServer {
  return (
    isObj(v) &&
    Array.isArray(v.urls) &&
    v.urls.every((u) => typeof u === "string") &&
    (v.username === undefined || typeof v.username === "string") &&
    (v.credential === undefined || typeof v.credential === "string")
  );
}

export function isIceRenewed(v: unknown): v is IceRenewed {
  return isObj(v) && typeof v.room === "string" && Array.isArray(v.iceServers) && v.iceServers.every(isIceServer);
}

export function isCallJoinAck(v: unknown): v is CallJoinAck {
  return (
    isObj(v) &&
    Array.isArray(v.participants) &&
    v.participants.every(isParticipant) &&
    Array.isArray(v.iceServers) &&
    v.iceServers.every(isIceServer) &&
    (v.iceTransportPolicy === "all" || v.iceTransportPolicy === "relay") &&
    typeof v.limit === "number" &&
    (v.via === undefined || v.via === "sfu" || v.via === "mesh") &&
    (v.pairs === undefined || v.pairs === "direct" || v.pairs === "server")
  );
}

export function isSfuAnswer(v: unknown): v is SfuAnswer {
  return isObj(v) && typeof v.sdp === "string";
}

export function isSfuOffer(v: unknown): v is SfuOffer {
  return isObj(v) && typeof v.room === "string" && typeof v.sdp === "string";
}

export function isSfuSpeakers(v: unknown): v is SfuSpeakers {
  return (
    isObj(v) && typeof v.room === "string" && Array.isArray(v.speakers) && v.speakers.every((s) => typeof s === "string")
  );
}

export function isSfuLayers(v: unknown): v is SfuLayers {
  return isObj(v) && typeof v.room === "string" && Array.isArray(v.active) && v.active.every((r) => typeof r === "string");
}

export function isSfuClosed(v: unknown): v is SfuClosed {
  return isObj(v) && typeof v.room === "string";
}

export function isCallMediaAck(v: unknown): v is CallMediaAck {
  return isObj(v) && isParticipant(v.participant);
}

export function isEmptyAck(v: unknown): v is EmptyAck {
  return isObj(v);
}

export function isSignal(v: unknown): v is Signal {
  if (!isObj(v) || typeof v.room !== "string" || typeof v.from !== "string") return false;
  const hasDescription = v.description !== undefined && v.description !== null;
  const hasCandidate = "candidate" in v && v.candidate !== undefined;
  if (hasDescription === hasCandidate) return false;
  if (hasDescription) return isSessionDescription(v.description);
  return v.candidate === null || isCandidate(v.candidate);
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
