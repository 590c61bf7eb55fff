import { describe, expect, it } from "vitest";
import type { ChatMessage, JoinAck } from "./protocol";
import { RoomState } from "./roomState";

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
    expect(s.renamed({ id: "a", nickname: "Anna" })).toBe("Ann");
    expect(s.find("a")?.nickname).toBe("Anna");
    expect(s.renamed({ id: "a", nickname: "Anna" })).toBeNull();
    expect(s.renamed({ id: "new", nickname: "Newcomer" })).toBeNull();
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
});
