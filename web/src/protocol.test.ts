import { describe, expect, it } from "vitest";
import {
  isCallJoinAck,
  isChatMessage,
  isParticipant,
  isSignal,
  isDirectory,
  isJoinAck,
  isKnownErrorCode,
  isParticipantEvent,
  isParticipantsUpdate,
  isRoomClosed,
  isSendAck,
  isServerDisconnected,
  parseAck,
} from "./protocol";

const message = { id: "1", room: "r", sender: { id: "s", nickname: "n" }, text: "t", ts: 5 };

describe("parseAck", () => {
  it("reads an error answer", () => {
    const res = parseAck(
      { error: { code: "invalid_room", message: "room name must be 1 to 64 characters" } },
      isSendAck,
    );
    expect(res).toEqual({
      ok: false,
      error: { code: "invalid_room", message: "room name must be 1 to 64 characters" },
    });
  });
  it("reads a success answer", () => {
    expect(parseAck({ message }, isSendAck)).toEqual({ ok: true, value: { message } });
  });
  it("turns an unexpected answer into a failure", () => {
    const res = parseAck(undefined, isSendAck);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.code).toBe("bad_response");
    expect(parseAck({ error: "boom" }, isSendAck).ok).toBe(false);
  });
});

describe("payload checks", () => {
  it("accepts well-formed payloads", () => {
    expect(isChatMessage(message)).toBe(true);
    expect(isDirectory({ rooms: [{ name: "a", count: 2 }], total: 1 })).toBe(true);
    expect(isDirectory({ rooms: [], total: 0 })).toBe(true);
    expect(
      isJoinAck({
        room: { name: "r", unlisted: false, count: 1 },
        self: { id: "s", nickname: "n" },
        participants: [{ id: "s", nickname: "n" }],
        history: [message],
      }),
    ).toBe(true);
    expect(isParticipantEvent({ room: "r", participant: { id: "s", nickname: "n" }, count: 1 })).toBe(true);
    const inCall = { id: "s", nickname: "n", call: { audio: false, video: true, screen: false } };
    expect(isParticipantsUpdate({ room: "r", participants: [inCall, { id: "t", nickname: "m" }] })).toBe(true);
    expect(isParticipantsUpdate({ room: "r", participants: [] })).toBe(true);
  });
  it("refuses malformed ones", () => {
    expect(isChatMessage({ ...message, ts: "5" })).toBe(false);
    expect(isChatMessage(null)).toBe(false);
    expect(isDirectory({ rooms: [{ name: "a" }], total: 1 })).toBe(false);
    expect(isDirectory([])).toBe(false);
    expect(isJoinAck({ room: { name: "r" } })).toBe(false);
    expect(isParticipantEvent({ room: "r", participant: { id: 1, nickname: "n" }, count: 1 })).toBe(false);
    expect(isParticipantsUpdate({ room: "r", participants: [{ id: 1, nickname: "n" }] })).toBe(false);
    expect(isParticipantsUpdate({ room: "r", participant: { id: "s", nickname: "n" } })).toBe(false);
  });
  it("knows the documented error codes", () => {
    expect(isKnownErrorCode("too_many_rooms")).toBe(true);
    expect(isKnownErrorCode("nope")).toBe(false);
  });
});

describe("call payloads", () => {
  const media = { audio: true, video: false, screen: false };
  it("reads a participant's call state", () => {
    expect(isParticipant({ id: "s", nickname: "n", call: media })).toBe(true);
    expect(isParticipant({ id: "s", nickname: "n", call: null })).toBe(true);
    expect(isParticipant({ id: "s", nickname: "n", call: { audio: true } })).toBe(false);
  });
  it("accepts a join answer with or without callLimit", () => {
    const base = {
      room: { name: "r", unlisted: false, count: 1 },
      self: { id: "s", nickname: "n" },
      participants: [{ id: "s", nickname: "n" }],
      history: [],
    };
    expect(isJoinAck({ ...base, callLimit: 6 })).toBe(true);
    expect(isJoinAck(base)).toBe(true);
    expect(isJoinAck({ ...base, callLimit: "6" })).toBe(false);
  });
  it("reads a call:join answer", () => {
    const answer = {
      participants: [{ id: "s", nickname: "n", call: media }],
      iceServers: [{ urls: ["stun:stun.example.org:3478"] }, { urls: ["turn:t"], username: "u", credential: "c" }],
      iceTransportPolicy: "all",
      limit: 6,
    };
    expect(isCallJoinAck(answer)).toBe(true);
    expect(isCallJoinAck({ ...answer, iceServers: [] })).toBe(true);
    expect(isCallJoinAck({ ...answer, iceTransportPolicy: "none" })).toBe(false);
    expect(isCallJoinAck({ ...answer, iceServers: [{ urls: "stun:x" }] })).toBe(false);
  });
  it("reads signals: one description or one candidate", () => {
    const description = { type: "offer", sdp: "v=0" };
    const candidate = { candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    expect(isSignal({ room: "r", from: "a", description })).toBe(true);
    expect(isSignal({ room: "r", from: "a", candidate })).toBe(true);
    expect(isSignal({ room: "r", from: "a", candidate: null })).toBe(true);
    expect(isSignal({ room: "r", from: "a" })).toBe(false);
    expect(isSignal({ room: "r", from: "a", description, candidate })).toBe(false);
    expect(isSignal({ room: "r", from: "a", description: { type: "nope", sdp: "" } })).toBe(false);
    expect(isSignal({ room: "r", from: "a", candidate: { candidate: 5 } })).toBe(false);
  });
});

describe("admin pushes", () => {
  it("reads room:closed", () => {
    expect(isRoomClosed({ room: "standup", reason: "admin" })).toBe(true);
    // A reason this client does not know yet is still taken in: the room is closed all the same.
    expect(isRoomClosed({ room: "standup", reason: "maintenance" })).toBe(true);
    expect(isRoomClosed({ room: "standup" })).toBe(false);
    expect(isRoomClosed({ reason: "admin" })).toBe(false);
    expect(isRoomClosed({ room: 5, reason: "admin" })).toBe(false);
    expect(isRoomClosed(["standup", "admin"])).toBe(false);
    expect(isRoomClosed(null)).toBe(false);
  });
  it("reads server:disconnected", () => {
    expect(isServerDisconnected({ reason: "admin" })).toBe(true);
    expect(isServerDisconnected({})).toBe(false);
    expect(isServerDisconnected({ reason: null })).toBe(false);
    expect(isServerDisconnected("admin")).toBe(false);
    expect(isServerDisconnected(undefined)).toBe(false);
  });
});
