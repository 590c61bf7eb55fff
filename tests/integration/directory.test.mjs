// The directory under load: bursts of joins and leaves are coalesced into few pushes (directory
// for the Noom lobby, room_change for seed sockets), and the last push is exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ack,
  ackArgs,
  connect,
  connectMany,
  connectNoom,
  disconnectAll,
  received,
  waitForDirectory,
  waitForRoomList,
  useServer,
} from "../support/clients.mjs";

const CLIENTS = 200;
const MAX_PUSHES = 30;

// Hundreds of clients connect at once from this one address: past the default rate of new
// connections an address may open (hostile.test.mjs tests that limit).
const server = useServer({ args: ["--directory-interval-ms", "100", "--connection-rate-per-address", "0"] });

const pad = (i) => String(i).padStart(3, "0");
const byCountThenName = (a, b) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A Noom socket in the lobby of an empty server. */
async function lobbyWatcher() {
  const lobby = await connectNoom(server.url, { label: "lobby" });
  assert.deepEqual(await ack(lobby, "directory:get", {}), { rooms: [], total: 0 });
  return lobby;
}

async function connectInBatches(n, options) {
  const sockets = [];
  for (let i = 0; i < n; i += 50) sockets.push(...(await connectMany(server.url, Math.min(50, n - i), options)));
  return sockets;
}

test(`${CLIENTS} clients entering distinct rooms at once: few pushes, exact final directory`, { timeout: 60000 }, async (t) => {
  const lobby = await lobbyWatcher();
  const seedWatcher = await connect(server.url, { label: "seed watcher" });
  const lobbyMark = received(lobby, "directory").length;

  const singles = await connectInBatches(CLIENTS, { labelPrefix: "single" });
  const pairs = await connectInBatches(6, { labelPrefix: "pair" });
  const names = singles.map((_, i) => `burst-${pad(i)}`);
  const pairNames = ["zz-pair-0", "zz-pair-1", "zz-pair-2"];

  // Everyone enters at once, half with the seed event and half with the Noom one.
  const answers = await Promise.all([
    ...singles.map((s, i) =>
      i % 2 === 0 ? ack(s, "room:join", { room: names[i] }) : ackArgs(s, "enter_room", names[i]),
    ),
    ...pairs.map((s, i) => ackArgs(s, "enter_room", pairNames[i % 3])),
  ]);
  for (const answer of answers) assert.ok(!answer?.error, JSON.stringify(answer));

  const all = [
    ...names.map((name) => ({ name, count: 1, inCall: 0 })),
    ...pairNames.map((name) => ({ name, count: 2, inCall: 0 })),
  ].sort(byCountThenName);
  const want = { rooms: all.slice(0, 100), total: CLIENTS + 3 };
  assert.deepEqual(want.rooms.slice(0, 3).map((r) => r.name), pairNames, "larger rooms first");

  await waitForDirectory(lobby, want, { timeout: 10000 });
  await waitForRoomList(seedWatcher, [...names, ...pairNames], { timeout: 10000 });
  assert.deepEqual(await ack(lobby, "directory:get", {}), want);

  const directoryPushes = received(lobby, "directory").length - lobbyMark;
  const roomChanges = received(seedWatcher, "room_change").length;
  t.diagnostic(`${directoryPushes} directory pushes and ${roomChanges} room_change for ${CLIENTS + 6} joins`);
  assert.ok(directoryPushes < MAX_PUSHES, `${directoryPushes} directory pushes for ${CLIENTS + 6} joins`);
  assert.ok(roomChanges < MAX_PUSHES, `${roomChanges} room_change for ${CLIENTS + 6} joins`);
  // Every push is a real change from the one before.
  const dirs = received(lobby, "directory").map(([d]) => JSON.stringify(d));
  for (let i = 1; i < dirs.length; i++) assert.notEqual(dirs[i], dirs[i - 1], "a directory push without a change");
  const lists = received(seedWatcher, "room_change").map(([l]) => JSON.stringify([...l].sort()));
  for (let i = 1; i < lists.length; i++) assert.notEqual(lists[i], lists[i - 1], "a room_change without a change");

  // Everyone leaves at once: again few pushes, and the last one is empty.
  const leaveMark = { lobby: received(lobby, "directory").length, seed: received(seedWatcher, "room_change").length };
  for (const s of [...singles, ...pairs]) s.disconnect();
  await waitForDirectory(lobby, { rooms: [], total: 0 }, { timeout: 10000 });
  await waitForRoomList(seedWatcher, [], { timeout: 10000 });
  assert.ok(received(lobby, "directory").length - leaveMark.lobby < MAX_PUSHES);
  assert.ok(received(seedWatcher, "room_change").length - leaveMark.seed < MAX_PUSHES);
});

test("the directory says how many are in each public room's call, and follows them joining and leaving it", { timeout: 30000 }, async () => {
  const lobby = await lobbyWatcher();
  const [ann, bob] = await Promise.all(["Ann", "Bob"].map((nickname) => connectNoom(server.url, { label: nickname })));
  try {
    for (const [socket, nickname] of [[ann, "Ann"], [bob, "Bob"]]) {
      const joined = await ack(socket, "room:join", { room: "standup", nickname });
      assert.ok(!joined.error, JSON.stringify(joined));
    }
    await waitForDirectory(lobby, { rooms: [{ name: "standup", count: 2, inCall: 0 }], total: 1 });
    for (const socket of [ann, bob]) {
      const answer = await ack(socket, "call:join", { room: "standup" });
      assert.ok(!answer.error, JSON.stringify(answer));
    }
    await waitForDirectory(lobby, { rooms: [{ name: "standup", count: 2, inCall: 2 }], total: 1 });
    const left = await ack(ann, "call:leave", { room: "standup" });
    assert.ok(!left.error, JSON.stringify(left));
    await waitForDirectory(lobby, { rooms: [{ name: "standup", count: 2, inCall: 1 }], total: 1 });
    assert.deepEqual(await ack(lobby, "directory:get", {}), { rooms: [{ name: "standup", count: 2, inCall: 1 }], total: 1 });
    // An unlisted room's call is nobody's business.
    const cy = await connectNoom(server.url, { label: "Cy" });
    const entered = await ack(cy, "room:join", { room: "private", nickname: "Cy", unlisted: true });
    assert.ok(!entered.error, JSON.stringify(entered));
    const called = await ack(cy, "call:join", { room: entered.room.name });
    assert.ok(!called.error, JSON.stringify(called));
    assert.deepEqual(await ack(lobby, "directory:get", {}), { rooms: [{ name: "standup", count: 2, inCall: 1 }], total: 1 });
    cy.disconnect();
  } finally {
    ann.disconnect();
    bob.disconnect();
  }
  await waitForDirectory(lobby, { rooms: [], total: 0 });
  lobby.disconnect();
});

test("a burst of joins into one room changes the room list once", { timeout: 30000 }, async () => {
  const seedWatcher = await connect(server.url, { label: "seed watcher" });
  const lobby = await lobbyWatcher();
  const crowd = await connectInBatches(50, { labelPrefix: "crowd" });
  await Promise.all(crowd.map((s) => ackArgs(s, "enter_room", "crowded")));
  await waitForDirectory(lobby, { rooms: [{ name: "crowded", count: 50, inCall: 0 }], total: 1 });
  await waitForRoomList(seedWatcher, ["crowded"]);

  // A later change is the next room_change: none came for the 49 who joined an existing room.
  await connect(server.url).then((s) => ackArgs(s, "enter_room", "another"));
  await waitForRoomList(seedWatcher, ["another", "crowded"]);
  // The test before this one emptied the list: that push may still reach a watcher just connected.
  const lists = received(seedWatcher, "room_change").map(([rooms]) => rooms);
  const ours = lists.slice(lists.findIndex((rooms) => rooms.includes("crowded")));
  assert.deepEqual(ours, [["crowded"], ["another", "crowded"]], JSON.stringify(lists));
});
