import { describe, expect, it } from "vitest";
import {
  isChatMessage,
  isDirectory,
  isJoinAck,
  isKnownErrorCode,
  isParticipantEvent,
  isSendAck,
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
  });
  it("refuses malformed ones", () => {
    expect(isChatMessage({ ...message, ts: "5" })).toBe(false);
    expect(isChatMessage(null)).toBe(false);
    expect(isDirectory({ rooms: [{ name: "a" }], total: 1 })).toBe(false);
    expect(isDirectory([])).toBe(false);
    expect(isJoinAck({ room: { name: "r" } })).toBe(false);
    expect(isParticipantEvent({ room: "r", participant: { id: 1, nickname: "n" }, count: 1 })).toBe(false);
  });
  it("knows the documented error codes", () => {
    expect(isKnownErrorCode("too_many_rooms")).toBe(true);
    expect(isKnownErrorCode("nope")).toBe(false);
  });
});
