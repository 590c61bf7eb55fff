import { describe, expect, it } from "vitest";
import type { ChatMessage, JoinAck, Participant } from "./protocol";
import { callChange, DEFAULT_CALL_LIMIT, DEPARTED_KEPT, RoomState, sameMedia } from "./roomState";

function ack(): JoinAck {
  return {
    room: { name: "lobby-talk", unlisted: false, count: 2 },
    self: { id: "me", nickname: "Mina" },
    participants: [
      { id: "a", nickname: "Ann" },
      { id: "me", nickname: "Mina" },
    ],
    history: [],
  };
}

function msg(id: string, senderId: string, ts = 1): ChatMessage {
  return { id, room: "lobby-talk", sender: { id: senderId, nickname: "x" }, text: "hi", ts };
}

describe("RoomState", () => {
  it("starts from the join answer", () => {
    const s = new RoomState(ack());
    expect(s.name).toBe("lobby-talk");
    expect(s.count).toBe(2);
    expect(s.participants.map((p) => p.id)).toEqual(["a", "me"]);
    expect(s.isSelf("me")).toBe(true);
    expect(s.isSelf("a")).toBe(false);
  });

  it("adds arrivals at the end, once", () => {
    const s = new RoomState(ack());
    expect(s.joined({ id: "b", nickname: "Bo" }, 3)).toBe(true);
    expect(s.count).toBe(3);
    expect(s.participants.map((p) => p.nickname)).toEqual(["Ann", "Mina", "Bo"]);
    expect(s.joined({ id: "b", nickname: "Bora" }, 3)).toBe(false);
    expect(s.participants.map((p) => p.nickname)).toEqual(["Ann", "Mina", "Bora"]);
  });

  it("removes departures and reports their listed name", () => {
    const s = new RoomState(ack());
    const gone = s.left({ id: "a", nickname: "Ann (stale)" }, 1);
    expect(gone?.nickname).toBe("Ann");
    expect(s.count).toBe(1);
    expect(s.participants.map((p) => p.id)).toEqual(["me"]);
  });

  it("never shows its former self: a page back on another node is counted twice until the old one leaves", () => {
    const s = new RoomState(ack());
    const again: JoinAck = {
      ...ack(),
      room: { name: "lobby-talk", unlisted: false, count: 3 },
      self: { id: "me2", nickname: "Mina" },
      participants: [
        { id: "a", nickname: "Ann" },
        { id: "me", nickname: "Mina", call: { audio: true, video: true, screen: false } },
        { id: "me2", nickname: "Mina" },
      ],
    };
    s.refresh(again);
    expect(s.participants.map((p) => p.id)).toEqual(["a", "me2"]);
    expect(s.count).toBe(2);
    expect(s.label("me2", "Mina")).toBe("Mina");
    expect(s.updated({ id: "me", nickname: "Mina", call: { audio: true, video: false, screen: false } }).call).toBeNull();
    s.replacePeople(again.participants);
    expect(s.inCall()).toEqual([]);
    expect(s.joined({ id: "b", nickname: "Bo" }, 4)).toBe(true);
    expect(s.count).toBe(3);
    expect(s.left({ id: "me", nickname: "Mina" }, 3)).toBeNull();
    expect(s.count).toBe(3);
    expect(s.participants.map((p) => p.id)).toEqual(["a", "me2", "b"]);
  });

  it("remembers who left until they come back, so that their media still on its way makes no tile", () => {
    const s = new RoomState(ack());
    expect(s.hasLeft("a")).toBe(false);
    s.left({ id: "a", nickname: "Ann" }, 1);
    expect(s.hasLeft("a")).toBe(true);
    expect(s.hasLeft("me")).toBe(false);
    s.joined({ id: "a", nickname: "Ann" }, 2);
    expect(s.hasLeft("a")).toBe(false);
  });

  it("remembers only the latest departures, however many leave", () => {
    const s = new RoomState(ack());
    for (let i = 0; i < DEPARTED_KEPT + 10; i++) s.left({ id: `p${i}`, nickname: "Ann" }, 1);
    expect(s.hasLeft("p0")).toBe(false);
    expect(s.hasLeft("p9")).toBe(false);
    expect(s.hasLeft("p10")).toBe(true);
    expect(s.hasLeft(`p${DEPARTED_KEPT + 9}`)).toBe(true);
    // Leaving again makes a departure the latest.
    s.left({ id: "p10", nickname: "Ann" }, 1);
    s.left({ id: "late", nickname: "Bo" }, 1);
    expect(s.hasLeft("p10")).toBe(true);
    expect(s.hasLeft("p11")).toBe(false);
  });

  it("takes a departure it never listed as nothing to tell, but keeps the server's count", () => {
    const s = new RoomState(ack());
    expect(s.left({ id: "zz", nickname: "Ghost" }, 5)).toBeNull();
    expect(s.count).toBe(5);
    expect(s.participants.map((p) => p.id)).toEqual(["a", "me"]);
  });

  it("takes the count from the server, not from its list", () => {
    const s = new RoomState(ack());
    s.joined({ id: "a", nickname: "Ann" }, 7);
    expect(s.count).toBe(7);
    expect(s.participants).toHaveLength(2);
  });

  it("follows renames and returns the old name", () => {
    const s = new RoomState(ack());
    expect(s.updated({ id: "a", nickname: "Anna" }).oldName).toBe("Ann");
    expect(s.find("a")?.nickname).toBe("Anna");
    expect(s.updated({ id: "a", nickname: "Anna" }).oldName).toBeNull();
    expect(s.updated({ id: "new", nickname: "Newcomer" }).oldName).toBeNull();
    expect(s.find("new")?.nickname).toBe("Newcomer");
  });

  it("renames itself in the list too", () => {
    const s = new RoomState(ack());
    expect(s.renameSelf("Minah")).toBe("Mina");
    expect(s.self.nickname).toBe("Minah");
    expect(s.find("me")?.nickname).toBe("Minah");
  });

  it("remembers shown messages", () => {
    const s = new RoomState(ack());
    expect(s.remember(msg("1", "a"))).toBe(true);
    expect(s.remember(msg("1", "a"))).toBe(false);
    expect(s.remember(msg("1", "a", 2))).toBe(true);
  });

  it("replaces its list but still knows what it showed after a new connection", () => {
    const s = new RoomState(ack());
    s.joined({ id: "b", nickname: "Bo" }, 3);
    expect(s.remember(msg("1", "a"))).toBe(true);
    const again = ack();
    again.self = { id: "me2", nickname: "Mina" };
    again.participants = [
      { id: "a", nickname: "Ann" },
      { id: "me2", nickname: "Mina" },
    ];
    again.history = [msg("1", "a"), msg("2", "a")];
    s.refresh(again);
    expect(s.participants.map((p) => p.id)).toEqual(["a", "me2"]);
    expect(s.count).toBe(2);
    expect(again.history.map((m) => s.remember(m))).toEqual([false, true]);
  });

  it("keeps knowing its own messages after a new connection", () => {
    const s = new RoomState(ack());
    expect(s.isOwn(msg("1", "me"))).toBe(true);
    const again = ack();
    again.self = { id: "me2", nickname: "Mina" };
    again.participants = [{ id: "me2", nickname: "Mina" }];
    again.room.count = 1;
    s.refresh(again);
    expect(s.isSelf("me2")).toBe(true);
    expect(s.isOwn(msg("1", "me"))).toBe(true);
    expect(s.isOwn(msg("2", "me2"))).toBe(true);
    expect(s.isOwn(msg("3", "a"))).toBe(false);
    expect(s.count).toBe(1);
    expect(s.participants.map((p) => p.id)).toEqual(["me2"]);
  });

  it("knows the call limit, with the documented default", () => {
    expect(new RoomState(ack()).callLimit).toBe(DEFAULT_CALL_LIMIT);
    expect(new RoomState({ ...ack(), callLimit: 3 }).callLimit).toBe(3);
  });

  it("follows who is in the call and their media", () => {
    const s = new RoomState(ack());
    const on = { audio: true, video: true, screen: false };
    expect(s.updated({ id: "a", nickname: "Ann", call: on })).toMatchObject({ oldName: null, call: "joined" });
    expect(s.inCall().map((p) => p.id)).toEqual(["a"]);
    expect(s.updated({ id: "a", nickname: "Ann", call: { ...on, audio: false } }).call).toBe("media");
    expect(s.find("a")?.call?.audio).toBe(false);
    expect(s.updated({ id: "a", nickname: "Ann", call: { ...on, audio: false } }).call).toBeNull();
    const renamed = s.updated({ id: "a", nickname: "Anna", call: { ...on, audio: false } });
    expect(renamed).toMatchObject({ oldName: "Ann", call: null });
    expect(s.updated({ id: "a", nickname: "Anna" }).call).toBe("left");
    expect(s.find("a")?.call).toBeUndefined();
    expect(s.updated({ id: "a", nickname: "Anna", call: null }).call).toBeNull();
  });

  it("keeps its own call state in its entry too", () => {
    const s = new RoomState(ack());
    const media = { audio: false, video: true, screen: false };
    s.setSelfCall(media);
    expect(s.self.call).toEqual(media);
    expect(s.find("me")?.call).toEqual(media);
    s.setSelfCall(null);
    expect(s.self.call).toBeUndefined();
    expect(s.inCall()).toEqual([]);
  });

  it("takes the list from a call:join answer", () => {
    const s = new RoomState(ack());
    const media = { audio: true, video: true, screen: false };
    s.replacePeople([
      { id: "a", nickname: "Ann", call: media },
      { id: "me", nickname: "Mina", call: media },
      { id: "c", nickname: "Cy" },
    ]);
    expect(s.inCall().map((p) => p.id)).toEqual(["a", "me"]);
    expect(s.self.call).toEqual(media);
    media.audio = false; // the state keeps its own copy
    expect(s.find("a")?.call?.audio).toBe(true);
  });
});

describe("media state", () => {
  const m = (audio: boolean, video: boolean, screen = false) => ({ audio, video, screen });
  it("compares", () => {
    expect(sameMedia(m(true, false), m(true, false))).toBe(true);
    expect(sameMedia(m(true, false), m(true, true))).toBe(false);
    expect(sameMedia(m(true, false), m(true, false, true))).toBe(false);
    expect(sameMedia(null, undefined)).toBe(true);
    expect(sameMedia(m(false, false), null)).toBe(false);
  });
  it("names the change", () => {
    expect(callChange(undefined, m(false, false))).toBe("joined");
    expect(callChange(m(true, true), null)).toBe("left");
    expect(callChange(m(true, true), m(false, true))).toBe("media");
    expect(callChange(m(true, true), m(true, true))).toBeNull();
    expect(callChange(null, undefined)).toBeNull();
  });
});

describe("RoomState, running a meeting", () => {
  const ack = (self: Participant, participants: Participant[]): JoinAck => ({
    room: { name: "r", unlisted: false, count: participants.length, locked: true },
    self,
    participants,
    history: [],
  });

  it("knows who hosts, whose hand is up in order, and whom a host muted", () => {
    const me = { id: "me", nickname: "Me" };
    const s = new RoomState(ack(me, [{ id: "h", nickname: "Hana", host: true }, me, { id: "b", nickname: "Bo" }]));
    expect(s.locked).toBe(true);
    expect(s.isHost).toBe(false);
    expect(s.updated({ id: "b", nickname: "Bo", hand: 20 }).meeting).toEqual({ host: null, hand: "raised", muted: null });
    s.updated({ id: "h", nickname: "Hana", host: true, hand: 10 });
    expect(s.hands().map((p) => p.id)).toEqual(["h", "b"]);
    const mine = s.updated({ id: "me", nickname: "Me", host: true, muted: true }).meeting;
    expect(mine).toEqual({ host: "gained", hand: null, muted: "muted" });
    expect(s.isHost).toBe(true);
    expect(s.self.muted).toBe(true);
    expect(s.updated({ id: "b", nickname: "Bo" }).meeting.hand).toBe("lowered");
    expect(s.hands().map((p) => p.id)).toEqual(["h"]);
  });
});

describe("callSince", () => {
  it("keeps the start the join answer gave while a call goes on, and starts anew after it ends", () => {
    const ack = (callSince?: number) => ({
      room: { name: "r", unlisted: false, count: 2 },
      self: { id: "a", nickname: "A" },
      participants: [
        { id: "a", nickname: "A" },
        { id: "b", nickname: "B", call: { audio: true, video: true, screen: false } },
      ],
      history: [],
      ...(callSince === undefined ? {} : { callSince }),
    });
    const room = new RoomState(ack(1_000));
    expect(room.callSince(50_000)).toBe(1_000);
    room.updated({ id: "b", nickname: "B" });
    expect(room.callSince(60_000)).toBeNull();
    room.updated({ id: "a", nickname: "A", call: { audio: true, video: false, screen: false } });
    expect(room.callSince(70_000)).toBe(70_000);
    expect(room.callSince(80_000)).toBe(70_000);
    // An older server says nothing: the call counts from when this page saw it.
    expect(new RoomState(ack()).callSince(5)).toBe(5);
  });
});
