// The seed's call stage: `join_room`, then `offer`, `answer` and `ice` relayed to the other seed
// sockets of the room, as the original one-to-one call front end uses them, with the checks the
// original lacked.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ack,
  ackArgs,
  connect,
  expectError,
  expectNothing,
  noomClient,
  pause,
  received,
  roomName,
  seedClient,
  syncedRoomList,
  waitFor,
  waitForRoomList,
  useServer,
} from "../support/clients.mjs";

const server = useServer({ args: ["--directory-interval-ms", "100"] });

const SDP = "v=0\r\no=- 7614219274584779017 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n";
const CANDIDATE = {
  candidate: "candidate:3885250869 1 udp 2122260223 192.0.2.7 61665 typ host generation 0 ufrag EsAw network-id 1",
  sdpMid: "0",
  sdpMLineIndex: 0,
  usernameFragment: "EsAw",
};
const SIGNALS = ["offer", "answer", "ice"];

/**
 * A seed socket of the call stage: names itself, then enters `room` with `join_room` as the
 * original did (no callback); a chat line with a callback confirms it is in.
 */
async function caller(url, nickname, room) {
  const socket = await connect(url, { label: `seed ${nickname}` });
  socket.emit("nickname", nickname);
  socket.emit("join_room", room);
  assert.deepEqual(await ackArgs(socket, "new_message", "in", room), [], `${nickname} is in ${room}`);
  return socket;
}

describe("join_room", () => {
  test("enters the room: seed room-mates get welcome, Noom ones participant:joined, the room is listed", async () => {
    const { watcher, base } = await syncedRoomList(server.url);
    const room = roomName("seedcall");
    const first = await caller(server.url, "First", room);
    await waitForRoomList(watcher, [base, room]);

    const { socket: nora } = await noomClient(server.url, "Nora", room);
    assert.deepEqual(await waitFor(first, "welcome"), ["Nora", 2]);

    const second = await caller(server.url, "Second", room);
    assert.deepEqual(await waitFor(first, "welcome"), ["Second", 3]);
    const [joined] = await waitFor(nora, "participant:joined");
    assert.deepEqual(joined, { room, participant: { id: joined.participant.id, nickname: "Second" }, count: 3 });
    assert.deepEqual(await waitFor(nora, "chat:message", { where: (m) => m.sender.id === joined.participant.id }).then(([m]) => m.text), "in");
    assert.deepEqual(received(second, "welcome"), [], "the entrant is not welcomed");
  });

  test("with a callback: done() with no argument, and the errors of enter_room", async () => {
    const room = roomName();
    const socket = await connect(server.url);
    assert.deepEqual(await ackArgs(socket, "join_room", room), []);
    assert.deepEqual(await ackArgs(socket, "join_room", room), [], "again: only done()");
    await expectError(socket, "invalid_room", "join_room", "   ");
    await expectError(socket, "invalid_room", "join_room", "r".repeat(65));
    await expectError(socket, "bad_request", "join_room", 5);
  });
});

describe("relay", () => {
  /** Room `room` with three seed callers and a Noom pair in its call; `other` with two seed callers. */
  async function setting() {
    const room = roomName("call");
    const other = roomName("other");
    const one = await caller(server.url, "One", room);
    const two = await caller(server.url, "Two", room);
    const three = await caller(server.url, "Three", room);
    const { socket: nora } = await noomClient(server.url, "Nora", room);
    const { socket: noel } = await noomClient(server.url, "Noel", room);
    await ack(nora, "call:join", { room });
    await ack(noel, "call:join", { room });
    const far = await caller(server.url, "Far", other);
    const farther = await caller(server.url, "Farther", other);
    return { room, other, one, two, three, nora, noel, far, farther };
  }

  test("offer, answer and ice reach the other seed sockets of the room, rebuilt from their known fields", async () => {
    const { room, one, two, three, nora, noel, far, farther } = await setting();

    one.emit("offer", { type: "offer", sdp: SDP, extra: "dropped", nested: { a: 1 } }, room);
    for (const s of [two, three]) assert.deepEqual(await waitFor(s, "offer"), [{ type: "offer", sdp: SDP }]);

    two.emit("answer", { type: "answer", sdp: SDP, sdpExtra: 1 }, room);
    for (const s of [one, three]) assert.deepEqual(await waitFor(s, "answer"), [{ type: "answer", sdp: SDP }]);

    one.emit("ice", { ...CANDIDATE, foreign: "x", address: "192.0.2.7" }, room);
    for (const s of [two, three]) assert.deepEqual(await waitFor(s, "ice"), [CANDIDATE]);

    // The end of candidates.
    two.emit("ice", null, room);
    for (const s of [one, three]) assert.deepEqual(await waitFor(s, "ice"), [null]);

    // Not the sender, not another room, not Noom sockets (not even as rtc:signal).
    await pause();
    assert.deepEqual(received(one, "offer"), []);
    assert.deepEqual(received(two, "answer"), []);
    assert.deepEqual(received(one, "ice").length + received(two, "ice").length, 2, "each got the other's ice only");
    for (const s of [two, three]) assert.equal(received(s, "offer").length, 1);
    await expectNothing([far, farther], SIGNALS, { wait: 0 });
    await expectNothing([nora, noel], [...SIGNALS, "rtc:signal"], { wait: 0 });
  });

  test("a seed socket in two rooms signals only the room it names", async () => {
    const a = roomName();
    const b = roomName();
    const both = await seedClient(server.url, "Both", [a, b]);
    const inA = await caller(server.url, "InA", a);
    const inB = await caller(server.url, "InB", b);
    both.emit("offer", { type: "offer", sdp: SDP }, b);
    assert.deepEqual(await waitFor(inB, "offer"), [{ type: "offer", sdp: SDP }]);
    await expectNothing(inA, SIGNALS);
  });

  test("Noom signals never reach seed sockets", async () => {
    const { room, one, two, nora, noel } = await setting();
    assert.deepEqual(await ack(nora, "rtc:signal", { room, to: noel.person, description: { type: "offer", sdp: SDP } }), {});
    assert.deepEqual((await waitFor(noel, "rtc:signal"))[0].description, { type: "offer", sdp: SDP });
    await expectNothing([one, two], [...SIGNALS, "rtc:signal"]);
  });

  test("many candidates arrive in the order sent", async () => {
    const room = roomName();
    const one = await caller(server.url, "One", room);
    const two = await caller(server.url, "Two", room);
    const lines = Array.from({ length: 100 }, (_, i) => `candidate:${i} 1 udp 2122260223 192.0.2.7 ${20000 + i} typ host`);
    for (const candidate of lines) one.emit("ice", { candidate, sdpMid: "0", sdpMLineIndex: 0 }, room);
    one.emit("ice", null, room);
    await waitFor(two, "ice", { where: (c) => c === null });
    assert.deepEqual(received(two, "ice").map(([c]) => c?.candidate ?? null), [...lines, null]);
  });
});

describe("checks", () => {
  test("from a socket not in the room nothing is relayed; with a callback: not_in_room", async () => {
    const room = roomName();
    const one = await caller(server.url, "One", room);
    const two = await caller(server.url, "Two", room);
    const outsider = await caller(server.url, "Outsider", roomName());
    const lobby = await connect(server.url);

    for (const sender of [outsider, lobby]) {
      sender.emit("offer", { type: "offer", sdp: SDP }, room);
      sender.emit("answer", { type: "answer", sdp: SDP }, room);
      sender.emit("ice", CANDIDATE, room);
      sender.emit("ice", null, room);
      await expectError(sender, "not_in_room", "offer", { type: "offer", sdp: SDP }, room);
      await expectError(sender, "not_in_room", "answer", { type: "answer", sdp: SDP }, room);
      await expectError(sender, "not_in_room", "ice", CANDIDATE, room);
      await expectError(sender, "not_in_room", "ice", null, room);
    }
    await expectNothing([one, two], SIGNALS);
  });

  test("bad descriptions and candidates: dropped; with a callback: invalid_signal", async () => {
    const room = roomName();
    const one = await caller(server.url, "One", room);
    const two = await caller(server.url, "Two", room);
    const { socket: nora } = await noomClient(server.url, "Nora", room);

    const bad = [
      ["offer", "v=0"],
      ["offer", { type: "bogus", sdp: SDP }],
      ["offer", { type: "offer" }],
      ["offer", { type: "offer", sdp: 42 }],
      ["offer", null],
      ["offer", [SDP]],
      ["offer", { type: "offer", sdp: "a".repeat(65_537) }],
      ["offer", { type: "offer", sdp: "é".repeat(32_769) }], // 65,538 bytes
      ["answer", { sdp: SDP }],
      ["answer", 7],
      ["ice", "candidate:1 1 udp 1 192.0.2.7 1 typ host"],
      ["ice", { candidate: 5 }],
      ["ice", { sdpMid: "0" }],
      ["ice", { ...CANDIDATE, sdpMLineIndex: 70_000 }],
      ["ice", { ...CANDIDATE, sdpMLineIndex: -1 }],
      ["ice", { ...CANDIDATE, sdpMid: 0 }],
      ["ice", { candidate: "x".repeat(2_100) }],
      ["ice", [CANDIDATE]],
    ];
    for (const [event, value] of bad) {
      one.emit(event, value, room);
      await expectError(one, "invalid_signal", event, value, room);
    }
    await expectNothing([two, nora], [...SIGNALS, "rtc:signal"]);
    assert.ok(one.connected);

    // The largest allowed description still goes through.
    const largest = { type: "offer", sdp: "a".repeat(65_536) };
    one.emit("offer", largest, room);
    assert.deepEqual(await waitFor(two, "offer"), [largest]);
  });
});
