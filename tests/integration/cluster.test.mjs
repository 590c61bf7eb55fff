// Three Noom nodes sharing rooms through one Redis (`--redis-url`), with clients spread over them:
// what each user sees is what it would see with everyone on one server. Rooms, counts and
// participant lists, chat and history, the directory and the seed's events, renames and call media
// state, `rtc:signal` and the seed's relays, and the call size limit all span the nodes.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { startServer } from "../support/server.mjs";
import { expectDirectory, expectRoomList, healthz, useCluster, waitUntil } from "../support/cluster.mjs";
import { ack, ackArgs, assertError, connect, connectNoom, disconnect, disconnectAll, expectError, expectNothing,
  noomClient, participant, hosting, pause, received, roomName, seedClient, unlistedName, waitFor } from "../support/clients.mjs";
import { AUDIO_OFFER, CANDIDATE, mediaPortOf, OFF, SDP } from "../support/signals.mjs";

// Calls of 2, so that the limit is easy to reach with one user on each of three nodes; a generous
// chat rate (these tests are not about it); quick directory pushes.
const CALL_SIZE = 2;
const cluster = useCluster(3, {
  args: ["--call-size", String(CALL_SIZE), "--directory-interval-ms", "100", "--chat-burst", "100", "--chat-rate", "100"],
  cleanup: disconnectAll,
});

/** The URL of node `label` ("A", "B" or "C"). */
const at = (label) => {
  const node = cluster.nodes.find((n) => n.label === label);
  assert.ok(node, `no node ${label}`);
  return node.url;
};

/** How long something done on one node may take to show on another. */
const CROSS = 5000;
/** How long leftovers of an earlier test (rooms emptied on other nodes) may take to go. */
const SETTLE = 10000;

const media = (audio, video, screen = false) => ({ audio, video, screen });
const withCall = (socket, nickname, call) => ({ ...participant(socket, nickname), call });

/** A Noom client on node `label`, in `room` when given; resolves with `{ socket, joined }`. */
const noomAt = (label, nickname, room, options = {}) =>
  noomClient(at(label), nickname, room, { label: `noom ${nickname}@${label}`, ...options });

/** A seed client on node `label`, in `rooms`; resolves with the socket. */
const seedAt = (label, nickname, rooms = []) => seedClient(at(label), nickname, rooms, { label: `seed ${nickname}@${label}` });

/** `call:join`s and asserts it was let in; resolves with the answer. */
async function joinCall(socket, room, callMedia) {
  const answer = await ack(socket, "call:join", callMedia === undefined ? { room } : { room, media: callMedia });
  assert.ok(answer && !answer.error, `${socket.inbox.label}: call:join ${room}: ${JSON.stringify(answer)}`);
  return answer;
}

/** Noom lobby watchers, one on each node, once every node's directory is empty (earlier tests' rooms gone). */
async function emptyLobbies() {
  const watchers = [];
  for (const label of ["A", "B", "C"]) {
    const watcher = await connectNoom(at(label), { label: `lobby@${label}` });
    await expectDirectory(watcher, { rooms: [], total: 0 }, { timeout: SETTLE });
    watchers.push(watcher);
  }
  return watchers;
}

/** Noom lobby watchers, one on each node (whatever the directory holds). */
function lobbyWatchers() {
  return Promise.all(["A", "B", "C"].map((label) => connectNoom(at(label), { label: `lobby@${label}` })));
}

/**
 * Waits until each watcher's latest `directory` lists public `room` with `count` people: the nodes
 * have taken in every entry and departure so far. Nodes copy each other's changes as they come;
 * tests that are not about people acting at once on several nodes wait for this before someone on
 * another node looks at the room.
 */
async function nodesShow(watchers, room, count) {
  for (const watcher of watchers) {
    await waitUntil(() => received(watcher, "directory").at(-1)?.[0].rooms.some((r) => r.name === room && r.count === count), {
      timeout: CROSS,
      what: `${watcher.inbox.label} showing ${room} with ${count} (last: ${JSON.stringify(received(watcher, "directory").at(-1)?.[0])})`,
    });
  }
}

/**
 * People entering `room` one after another, each once every node shows the one before in it (so
 * every node knows who came in what order). `people` are `[label, nickname]` for Noom clients and
 * `[label, nickname, "seed"]` for seed ones; resolves with their sockets, in that order.
 */
async function enterInTurn(room, people) {
  const watchers = await lobbyWatchers();
  const sockets = [];
  for (const [label, nickname, kind] of people) {
    sockets.push(kind === "seed" ? await seedAt(label, nickname, room) : (await noomAt(label, nickname, room)).socket);
    await nodesShow(watchers, room, sockets.length);
  }
  return sockets;
}

describe("/healthz", () => {
  test("every node of the cluster answers 200 with JSON saying its Redis link is up", async () => {
    for (const node of cluster.nodes) {
      const h = await healthz(node.url);
      assert.equal(h.status, 200, `node ${node.label}: ${h.status} ${h.text}`);
      assert.match(h.contentType, /application\/json/, `node ${node.label}: content-type ${h.contentType}`);
      assert.deepEqual(h.json, { status: "ok", redis: "up" }, `node ${node.label}: ${h.text}`);
    }
  });

  test("a node without --redis-url says redis is off", async () => {
    const alone = await startServer();
    try {
      const h = await healthz(alone.url);
      assert.equal(h.status, 200, h.text);
      assert.match(h.contentType, /application\/json/, `content-type ${h.contentType}`);
      assert.deepEqual(h.json, { status: "ok", redis: "off" }, h.text);
    } finally {
      await alone.stop();
    }
  });
});

describe("directory and room_change", () => {
  test("every node shows the same public rooms with the same counts, whoever is on which node", async () => {
    const lobbies = await emptyLobbies();
    const seedWatchers = [];
    for (const label of ["A", "B", "C"]) seedWatchers.push(await connect(at(label), { label: `seed watcher@${label}` }));
    // room_change is not sent on connection: Guest connects before the rooms are made.
    const guest = await connect(at("B"), { label: "seed Guest@B" });

    const r1 = roomName("dir-one");
    const r2 = roomName("dir-two");
    const hidden = unlistedName("dir-hidden");
    const { socket: alice } = await noomAt("A", "Alice", r1);
    const bob = await seedAt("B", "Bob", r1);
    const { socket: cara } = await noomAt("C", "Cara", r1);
    const dan = await seedAt("C", "Dan", r2);
    await noomAt("B", "Dora", r2);
    // An unlisted room with people on two nodes stays unlisted everywhere.
    await noomAt("A", "Hidden", hidden, { unlisted: true });
    // The link reaches Guest a moment later (entering at the very moment is tested below).
    await pause();
    guest.emit("nickname", "Guest");
    assert.deepEqual(await ackArgs(guest, "enter_room", hidden), []);

    const want = { rooms: [{ name: r1, count: 3, inCall: 0 }, { name: r2, count: 2, inCall: 0 }], total: 2 };
    for (const lobby of lobbies) await expectDirectory(lobby, want, { timeout: CROSS });
    for (const [i, label] of ["A", "B", "C"].entries()) {
      assert.deepEqual(await ack(lobbies[i], "directory:get", {}), want, `directory:get on ${label}`);
    }
    assert.deepEqual(await ack(alice, "directory:get", {}), want, "directory:get from a socket in a room");
    for (const watcher of seedWatchers) await expectRoomList(watcher, [r1, r2], { timeout: CROSS });
    // Seed sockets inside rooms get room_change too, also for rooms made on other nodes.
    await expectRoomList(guest, [r1, r2], { timeout: CROSS });

    // People leave on several nodes: the counts drop everywhere.
    assert.deepEqual(await ack(cara, "room:leave", { room: r1 }), { left: [r1] });
    await disconnect(dan);
    const fewer = { rooms: [{ name: r1, count: 2, inCall: 0 }, { name: r2, count: 1, inCall: 0 }], total: 2 };
    for (const lobby of lobbies) await expectDirectory(lobby, fewer, { timeout: CROSS });
    // Cara is back in the lobby of node C: she gets the shared directory.
    await expectDirectory(cara, fewer, { timeout: CROSS });

    // r1 empties (its people were on A and B): it is gone from every node.
    await disconnect(bob);
    assert.deepEqual(await ack(alice, "room:leave", {}), { left: [r1] });
    const last = { rooms: [{ name: r2, count: 1, inCall: 0 }], total: 1 };
    for (const lobby of lobbies) await expectDirectory(lobby, last, { timeout: CROSS });
    for (const watcher of seedWatchers) await expectRoomList(watcher, [r2], { timeout: CROSS });

    for (const lobby of lobbies) {
      for (const [dir] of received(lobby, "directory")) {
        assert.ok(!dir.rooms.some((r) => r.name === hidden), `${lobby.inbox.label}: the unlisted room was listed: ${JSON.stringify(dir)}`);
      }
    }
    for (const watcher of [...seedWatchers, guest]) {
      for (const [list] of received(watcher, "room_change")) {
        assert.ok(!list.includes(hidden), `${watcher.inbox.label}: the unlisted room was listed: ${JSON.stringify(list)}`);
      }
      // Each room_change is a change from the one before, on every node.
      const lists = received(watcher, "room_change").map(([l]) => JSON.stringify([...l].sort()));
      for (let i = 1; i < lists.length; i++) assert.notEqual(lists[i], lists[i - 1], `${watcher.inbox.label}: a room_change without a change`);
    }
  });

  test("an unlisted room stays unlisted for people entering it on other nodes", async () => {
    const room = unlistedName("secret");
    const { socket: owner, joined: first } = await noomAt("A", "Owner", room, { unlisted: true });
    assert.equal(first.room.unlisted, true);
    // An unlisted room shows nowhere, so nothing tells when the other nodes know it: the link takes
    // a moment to reach a friend (people do not open a link within milliseconds of its making).
    await pause();
    // On B, asking for a public room of that name enters the unlisted one (it is open).
    const { socket: guest, joined: second } = await noomAt("B", "Guest", room, { unlisted: false });
    assert.deepEqual(second.room, { name: room, unlisted: true, count: 2, locked: false, waitingRoom: false, password: false });
    assert.deepEqual(second.participants, [hosting(participant(owner, "Owner")), participant(guest, "Guest")]);
    await waitFor(owner, "participant:joined", { timeout: CROSS });
    await pause();
    const { joined: third } = await noomAt("C", "Other", room);
    assert.deepEqual(third.room, { name: room, unlisted: true, count: 3, locked: false, waitingRoom: false, password: false });
  });

  test("an unlisted room entered on another node the moment it is made: every node ends up keeping it unlisted", async () => {
    const watchers = await lobbyWatchers();
    const seedWatchers = await Promise.all(["A", "B", "C"].map((label) => connect(at(label), { label: `seed watcher@${label}` })));
    for (let round = 0; round < 3; round++) {
      const hidden = unlistedName("race-hidden");
      const owner = await connectNoom(at("A"), { label: `owner@A round ${round}` });
      const guest = await connect(at("B"), { label: `seed guest@B round ${round}` });
      // The creator on A and a seed guest on B enter at once.
      const [made, entered] = await Promise.all([ack(owner, "room:join", { room: hidden, unlisted: true }), ackArgs(guest, "enter_room", hidden)]);
      assert.ok(made && !made.error, JSON.stringify(made));
      assert.deepEqual(entered, []);

      // Public rooms made afterwards on A and on B: a node publishes in order, so once every node
      // shows both, every node has applied both entries.
      const marker = roomName("race-marker");
      await noomAt("A", "MarkerA", marker);
      await noomAt("B", "MarkerB", marker);
      await nodesShow(watchers, marker, 2);
      for (const watcher of watchers) {
        await waitUntil(() => !received(watcher, "directory").at(-1)?.[0].rooms.some((r) => r.name === hidden), {
          timeout: CROSS,
          what: `round ${round}: ${watcher.inbox.label} not listing the unlisted room (last: ${JSON.stringify(received(watcher, "directory").at(-1)?.[0])})`,
        });
      }
      for (const watcher of seedWatchers) {
        await waitUntil(() => received(watcher, "room_change").at(-1)?.[0].includes(marker) && !received(watcher, "room_change").at(-1)[0].includes(hidden), {
          timeout: CROSS,
          what: `round ${round}: ${watcher.inbox.label}'s room list without the unlisted room (last: ${JSON.stringify(received(watcher, "room_change").at(-1)?.[0])})`,
        });
      }
      // One room, unlisted, with both of them in it, whichever node one enters it on.
      for (const label of ["B", "C"]) {
        const { joined } = await noomAt(label, `Late${label}`, hidden);
        assert.equal(joined.room.unlisted, true, `round ${round}: entering on ${label}: ${JSON.stringify(joined.room)}`);
        assert.ok(joined.participants.some((p) => p.id === owner.person) && joined.participants.some((p) => p.id === guest.person), `round ${round}: entering on ${label}: ${JSON.stringify(joined.participants)}`);
      }
      await Promise.all([owner, guest].map((s) => disconnect(s)));
    }
  });
});

/** What a socket saw of arrivals: its answer's list, then each participant:joined with its count. */
function describeArrivals(answer, socket) {
  const name = (id) => answer.participants.find((p) => p.id === id)?.nickname ?? id;
  const listed = answer.participants.map((p) => p.nickname).join(", ");
  const pushed = received(socket, "participant:joined").map(([p]) => `${p.participant.nickname ?? name(p.participant.id)} (count ${p.count})`);
  return `answer [${listed}] (count ${answer.room.count}), then ${pushed.join(", ") || "nothing"}`;
}

describe("participants", () => {
  test("room:join lists the people of every node in order of arrival; the others get participant:joined/left", async () => {
    const room = roomName();
    const watchers = await lobbyWatchers();
    const { socket: alice, joined: a } = await noomAt("A", "Alice", room);
    assert.deepEqual(a.participants, [hosting(participant(alice, "Alice"))]);
    assert.deepEqual(a.room, { name: room, unlisted: false, count: 1, locked: false, waitingRoom: false, password: false });
    assert.equal(a.callLimit, CALL_SIZE);

    await nodesShow(watchers, room, 1);
    const { socket: bob, joined: b } = await noomAt("B", "Bob", room);
    assert.deepEqual(b, {
      room: { name: room, unlisted: false, count: 2, locked: false, waitingRoom: false, password: false },
      self: participant(bob, "Bob"),
      participants: [hosting(participant(alice, "Alice")), participant(bob, "Bob")],
      history: [],
      callLimit: CALL_SIZE,
    });
    assert.deepEqual(await waitFor(alice, "participant:joined", { timeout: CROSS }), [{ room, participant: participant(bob, "Bob"), count: 2 }]);

    // A seed socket on C: the Noom people on A and B are told.
    await nodesShow(watchers, room, 2);
    const carol = await seedAt("C", "Carol", room);
    const joinedCarol = [{ room, participant: participant(carol, "Carol"), count: 3 }];
    assert.deepEqual(await waitFor(alice, "participant:joined", { timeout: CROSS }), joinedCarol);
    assert.deepEqual(await waitFor(bob, "participant:joined", { timeout: CROSS }), joinedCarol);

    await nodesShow(watchers, room, 3);
    const { socket: dave, joined: d } = await noomAt("C", "Dave", room);
    assert.deepEqual(d.participants, [hosting(participant(alice, "Alice")), participant(bob, "Bob"), participant(carol, "Carol"), participant(dave, "Dave")]);
    assert.equal(d.room.count, 4);
    for (const s of [alice, bob]) {
      assert.deepEqual(await waitFor(s, "participant:joined", { timeout: CROSS }), [{ room, participant: participant(dave, "Dave"), count: 4 }]);
    }

    // Bob (B) disconnects: A and C are told. (A client forgets its id once disconnected.)
    const bobWas = participant(bob, "Bob");
    await disconnect(bob);
    for (const s of [alice, dave]) {
      assert.deepEqual(await waitFor(s, "participant:left", { timeout: CROSS }), [{ room, participant: bobWas, count: 3 }]);
    }
    // Alice (A) leaves with room:leave: C is told.
    assert.deepEqual(await ack(alice, "room:leave", { room }), { left: [room] });
    assert.deepEqual(await waitFor(dave, "participant:left", { timeout: CROSS }), [{ room, participant: participant(alice, "Alice"), count: 2 }]);

    // Someone arriving on B finds the room as it is now.
    await nodesShow(watchers, room, 2);
    const { socket: erin, joined: e } = await noomAt("B", "Erin", room);
    assert.deepEqual(e.participants, [hosting(participant(carol, "Carol")), participant(dave, "Dave"), participant(erin, "Erin")]);
    // Sentinel: that arrival reaches Dave after anything earlier; nobody was told twice.
    await waitFor(dave, "participant:joined", { where: (p) => p.participant.id === erin.person, timeout: CROSS });
    assert.deepEqual(received(dave, "participant:joined").map(([p]) => p.participant.id), [erin.person]);
    assert.deepEqual(received(dave, "participant:left").map(([p]) => p.participant.id), [bobWas.id, alice.person]);
    assert.deepEqual(received(alice, "participant:joined").map(([p]) => p.participant.id), [bobWas.id, carol.person, dave.person]);
  });

  test("people joining at once on three nodes: everyone sees everyone exactly once, with true counts, in their node's order", async () => {
    const room = roomName("rush");
    const people = [];
    for (const label of ["A", "B", "C"]) {
      for (const n of [1, 2]) people.push(await connectNoom(at(label), { label: `${label}${n}` }));
    }
    // Each is named after its node: A1 and A2 are on A, and so on.
    const answers = await Promise.all(people.map((s) => ack(s, "room:join", { room, nickname: s.inbox.label })));
    for (const answer of answers) assert.ok(answer && !answer.error, JSON.stringify(answer));
    const everyone = people.map((s) => s.person).sort();

    // Each one's view: the answer's list, then the arrivals pushed after it.
    const views = people.map((s, i) => () => [
      ...answers[i].participants.map((p) => p.id),
      ...received(s, "participant:joined").map(([p]) => p.participant.id),
    ]);
    await waitUntil(() => views.every((view) => view().length >= people.length), {
      timeout: CROSS,
      what: "everyone seeing six people",
    });
    await pause();
    const sequences = views.map((view) => view());
    const seen = people.map((s, i) => `${s.inbox.label} saw ${describeArrivals(answers[i], s)}`).join("; ");
    for (const [i, sequence] of sequences.entries()) {
      const who = people[i].inbox.label;
      assert.deepEqual([...sequence].sort(), everyone, `${who} sees each person exactly once. ${seen}`);
      assert.deepEqual(received(people[i], "participant:left"), [], `${who}: nobody left`);
      assert.equal(answers[i].room.count, answers[i].participants.length, `${who}: count and list agree. ${seen}`);
      for (const [p] of received(people[i], "participant:joined")) {
        assert.equal(p.count, sequence.indexOf(p.participant.id) + 1, `${who}: the count of ${p.participant.nickname}'s arrival. ${seen}`);
      }
    }
    // One node's people see one sequence: its answer, then exactly what it applied after. Nodes
    // acting at the same moment may order their arrivals differently (docs/protocol.md, Ordering).
    for (let i = 0; i < people.length; i += 2) {
      assert.deepEqual(sequences[i + 1], sequences[i], `${people[i + 1].inbox.label} and ${people[i].inbox.label}, on one node, saw the arrivals in different orders. ${seen}`);
    }
  });
});

describe("chat", () => {
  test("a message sent on one node reaches the room's people on every node, Noom and seed", async () => {
    const room = roomName("chat");
    const { socket: alice } = await noomAt("A", "Alice", room);
    const { socket: bob } = await noomAt("B", "Bob", room);
    const eve = await seedAt("B", "Eve", room);
    const carol = await seedAt("C", "Carol", room);
    const { socket: dave } = await noomAt("C", "Dave", room);

    const { message } = await ack(alice, "chat:send", { room, text: "hello from A" });
    assert.deepEqual(message.sender, participant(alice, "Alice"));
    for (const s of [bob, dave]) assert.deepEqual(await waitFor(s, "chat:message", { timeout: CROSS }), [message]);
    for (const s of [eve, carol]) assert.deepEqual(await waitFor(s, "new_message", { timeout: CROSS }), ["Alice: hello from A"]);

    // A seed message from C: Noom people on A, B and C get the same ChatMessage, seed ones the line.
    assert.deepEqual(await ackArgs(carol, "new_message", "hi from C", room), []);
    const [fromCarol] = await waitFor(alice, "chat:message", { timeout: CROSS });
    assert.deepEqual(Object.keys(fromCarol).sort(), ["id", "room", "sender", "text", "ts"]);
    assert.equal(fromCarol.room, room);
    assert.deepEqual(fromCarol.sender, participant(carol, "Carol"));
    assert.equal(fromCarol.text, "hi from C");
    assert.ok(Number.isInteger(fromCarol.ts) && Math.abs(fromCarol.ts - Date.now()) < 10 * 60 * 1000, `ts ${fromCarol.ts}`);
    for (const s of [bob, dave]) assert.deepEqual(await waitFor(s, "chat:message", { timeout: CROSS }), [fromCarol]);
    assert.deepEqual(await waitFor(eve, "new_message", { timeout: CROSS }), ["Carol: hi from C"]);

    // And from B back to A and C.
    const { message: fromBob } = await ack(bob, "chat:send", { room, text: "and B" });
    for (const s of [alice, dave]) assert.deepEqual(await waitFor(s, "chat:message", { timeout: CROSS }), [fromBob]);
    for (const s of [eve, carol]) assert.deepEqual(await waitFor(s, "new_message", { timeout: CROSS }), ["Bob: and B"]);

    // Message ids are unique across nodes; nobody got an echo of their own message.
    assert.equal(new Set([message.id, fromCarol.id, fromBob.id]).size, 3);
    await pause();
    assert.deepEqual(received(alice, "chat:message"), [[fromCarol], [fromBob]]);
    assert.deepEqual(received(bob, "chat:message"), [[message], [fromCarol]]);
    assert.deepEqual(received(carol, "new_message"), [["Alice: hello from A"], ["Bob: and B"]]);
    assert.deepEqual(received(eve, "new_message"), [["Alice: hello from A"], ["Carol: hi from C"], ["Bob: and B"]]);
  });

  test("a message does not leave its room on other nodes", async () => {
    const room = roomName();
    const other = roomName("other");
    const { socket: alice } = await noomAt("A", "Alice", room);
    const { socket: bob } = await noomAt("B", "Bob", room);
    const { socket: far } = await noomAt("B", "Far", other);
    const farSeed = await seedAt("C", "FarSeed", other);
    const { message } = await ack(alice, "chat:send", { room, text: "only here" });
    assert.deepEqual(await waitFor(bob, "chat:message", { timeout: CROSS }), [message]);
    await expectNothing(far, "chat:message");
    await expectNothing(farSeed, "new_message", { wait: 0 });
  });

  test("history on C holds a conversation held on A and B, in the order it was held", async () => {
    const room = roomName("history");
    const { socket: alice } = await noomAt("A", "Alice", room);
    const sam = await seedAt("A", "Sam", room);
    const { socket: bob } = await noomAt("B", "Bob", room);
    // Dave, on C, witnesses what reached node C.
    const { socket: dave } = await noomAt("C", "Dave", room);

    // Each line answers the one before: it is sent only once its sender has received that one.
    const texts = [];
    const acked = new Map();
    for (let i = 0; i < 5; i++) {
      texts.push(`a${i}`);
      acked.set(`a${i}`, (await ack(alice, "chat:send", { room, text: `a${i}` })).message);
      await waitFor(bob, "chat:message", { where: (m) => m.text === `a${i}`, timeout: CROSS });
      texts.push(`b${i}`);
      acked.set(`b${i}`, (await ack(bob, "chat:send", { room, text: `b${i}` })).message);
      await waitFor(sam, "new_message", { where: (l) => l === `Bob: b${i}`, timeout: CROSS });
      texts.push(`s${i}`);
      assert.deepEqual(await ackArgs(sam, "new_message", `s${i}`, room), []);
      await waitFor(alice, "chat:message", { where: (m) => m.text === `s${i}`, timeout: CROSS });
    }
    await waitFor(dave, "chat:message", { where: (m) => m.text === texts.at(-1), timeout: CROSS });
    const seen = received(dave, "chat:message").map(([m]) => m);
    assert.deepEqual(seen.map((m) => m.text), texts, "Dave (C) got every line once, in the order of the conversation");
    for (const m of seen) if (acked.has(m.text)) assert.deepEqual(m, acked.get(m.text));

    const { joined: onC } = await noomAt("C", "Eve", room);
    assert.deepEqual(onC.history, seen, "history on C");
    const { joined: onB } = await noomAt("B", "Frank", room);
    assert.deepEqual(onB.history, seen, "history on B");
    const { joined: onA } = await noomAt("A", "Gus", room);
    assert.deepEqual(onA.history, seen, "history on A");
  });

  test("messages sent at once on three nodes: each arrives once, each sender's in order, and each node's history is what its people saw", async () => {
    const room = roomName("burst");
    const senders = [];
    const witnesses = [];
    for (const label of ["A", "B", "C"]) {
      senders.push((await noomAt(label, `Sender${label}`, room)).socket);
      witnesses.push((await noomAt(label, `Witness${label}`, room)).socket);
    }
    const PER_SENDER = 10;
    const texts = senders.flatMap((_, s) => Array.from({ length: PER_SENDER }, (_, i) => `${"ABC"[s]}${i}`));
    await Promise.all(
      senders.map(async (socket, s) => {
        for (let i = 0; i < PER_SENDER; i++) socket.emit("chat:send", { room, text: `${"ABC"[s]}${i}` });
        // The last acknowledgement comes after the sender's earlier messages took effect.
        await ack(socket, "chat:send", { room, text: `${"ABC"[s]}-end` });
      }),
    );
    const all = texts.length + senders.length;
    const orders = [];
    for (const w of witnesses) {
      await waitUntil(() => received(w, "chat:message").length >= all, { timeout: CROSS, what: `${w.inbox.label} receiving ${all} messages` });
      orders.push(received(w, "chat:message").map(([m]) => m.text));
    }
    const histories = [];
    for (const label of ["A", "B", "C"]) histories.push((await noomAt(label, `Late${label}`, room)).joined.history.map((m) => m.text));
    const seen = [
      ...witnesses.map((w, i) => `${w.inbox.label} saw ${orders[i].join(" ")}`),
      ...histories.map((h, i) => `history on ${"ABC"[i]}: ${h.join(" ")}`),
    ].join("; ");

    for (const [i, order] of orders.entries()) {
      const who = witnesses[i].inbox.label;
      assert.equal(new Set(order).size, all, `${who} got each message once. ${seen}`);
      // Each sender's messages in the order it sent them.
      for (const prefix of ["A", "B", "C"]) {
        const mine = order.filter((t) => t.startsWith(prefix));
        assert.deepEqual(mine, [...Array.from({ length: PER_SENDER }, (_, k) => `${prefix}${k}`), `${prefix}-end`], `${who}: ${prefix}'s order. ${seen}`);
      }
    }
    for (const [i, history] of histories.entries()) {
      assert.deepEqual(history, orders[i], `history on ${"ABC"[i]} is the order its witness saw. ${seen}`);
    }
    // Messages sent on different nodes at the same moment may interleave differently on each node
    // (docs/protocol.md, Ordering); within a node, everyone sees one order, the history's.
  });
});

describe("seed events", () => {
  test("welcome and bye count the people on every node", async () => {
    const room = roomName("seed");
    const watchers = await lobbyWatchers();
    const sa = await seedAt("A", "Sa", room);
    await nodesShow(watchers, room, 1);
    const sb = await seedAt("B", "Sb", room);
    assert.deepEqual(await waitFor(sa, "welcome", { timeout: CROSS }), ["Sb", 2]);

    await nodesShow(watchers, room, 2);
    const { socket: nc } = await noomAt("C", "Nc", room);
    for (const s of [sa, sb]) assert.deepEqual(await waitFor(s, "welcome", { timeout: CROSS }), ["Nc", 3]);

    await nodesShow(watchers, room, 3);
    const sc = await seedAt("C", "Sc", room);
    for (const s of [sa, sb]) assert.deepEqual(await waitFor(s, "welcome", { timeout: CROSS }), ["Sc", 4]);
    assert.deepEqual(await waitFor(nc, "participant:joined", { timeout: CROSS }), [{ room, participant: participant(sc, "Sc"), count: 4 }]);

    const sbWas = participant(sb, "Sb");
    await disconnect(sb);
    for (const s of [sa, sc]) assert.deepEqual(await waitFor(s, "bye", { timeout: CROSS }), ["Sb", 3]);
    assert.deepEqual(await waitFor(nc, "participant:left", { timeout: CROSS }), [{ room, participant: sbWas, count: 3 }]);

    assert.deepEqual(await ack(nc, "room:leave", { room }), { left: [room] });
    for (const s of [sa, sc]) assert.deepEqual(await waitFor(s, "bye", { timeout: CROSS }), ["Nc", 2]);

    // A seed rename on A shows in the next line on C.
    sa.emit("nickname", "Renamed");
    assert.deepEqual(await ackArgs(sa, "new_message", "new name", room), []);
    assert.deepEqual(await waitFor(sc, "new_message", { timeout: CROSS }), ["Renamed: new name"]);

    // Nobody was welcomed or said bye to more than that.
    assert.deepEqual(received(sa, "welcome"), [["Sb", 2], ["Nc", 3], ["Sc", 4]]);
    assert.deepEqual(received(sa, "bye"), [["Sb", 3], ["Nc", 2]]);
    assert.deepEqual(received(sc, "welcome"), []);
    assert.deepEqual(received(sc, "bye"), [["Sb", 3], ["Nc", 2]]);
  });

  test("offer, answer and ice reach the room's seed sockets on other nodes, and no Noom socket", async () => {
    const room = roomName("seedcall");
    const caller = async (label, nickname) => {
      const socket = await connect(at(label), { label: `seed ${nickname}@${label}` });
      socket.emit("nickname", nickname);
      socket.emit("join_room", room);
      assert.deepEqual(await ackArgs(socket, "new_message", "in", room), [], `${nickname} is in ${room}`);
      return socket;
    };
    const one = await caller("A", "One");
    const two = await caller("B", "Two");
    const three = await caller("C", "Three");
    const { socket: nora } = await noomAt("C", "Nora", room);
    // A seed socket in another room, on B.
    const outsider = await seedAt("B", "Outsider", roomName("elsewhere"));

    one.emit("offer", { type: "offer", sdp: SDP, extra: "dropped" }, room);
    for (const s of [two, three]) assert.deepEqual(await waitFor(s, "offer", { timeout: CROSS }), [{ type: "offer", sdp: SDP }]);

    two.emit("answer", { type: "answer", sdp: SDP }, room);
    for (const s of [one, three]) assert.deepEqual(await waitFor(s, "answer", { timeout: CROSS }), [{ type: "answer", sdp: SDP }]);

    one.emit("ice", { ...CANDIDATE, foreign: "x" }, room);
    for (const s of [two, three]) assert.deepEqual(await waitFor(s, "ice", { timeout: CROSS }), [CANDIDATE]);
    three.emit("ice", null, room);
    for (const s of [one, two]) assert.deepEqual(await waitFor(s, "ice", { timeout: CROSS }), [null]);

    // Many candidates from A reach B in the order sent.
    const lines = Array.from({ length: 50 }, (_, i) => `candidate:${i} 1 udp 2122260223 192.0.2.7 ${20000 + i} typ host`);
    for (const candidate of lines) one.emit("ice", { candidate, sdpMid: "0", sdpMLineIndex: 0 }, room);
    one.emit("ice", null, room);
    await waitFor(two, "ice", { where: (c) => c === null, timeout: CROSS });
    const atTwo = received(two, "ice").map(([c]) => c?.candidate ?? null);
    // One's first candidate, Three's end of candidates, then One's batch.
    assert.deepEqual(atTwo, [CANDIDATE.candidate, null, ...lines, null], "Two (B) got the candidates in the order sent");

    await pause();
    assert.deepEqual(received(one, "offer"), [], "no echo");
    assert.deepEqual(received(two, "answer"), [], "no echo");
    await expectNothing(nora, ["offer", "answer", "ice", "rtc:signal"], { wait: 0 });
    await expectNothing(outsider, ["offer", "answer", "ice"], { wait: 0 });
  });
});

describe("renames and calls", () => {
  test("renames show on other nodes, in participant lists and chat", async () => {
    const room = roomName("rename");
    // Cleo, on C, witnesses what reached node C.
    const [alice, bob, sam, cleo] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"], ["C", "Sam", "seed"], ["C", "Cleo"]]);

    assert.deepEqual(await ack(alice, "user:rename", { nickname: "  Alicia " }), { nickname: "Alicia" });
    assert.deepEqual(await waitFor(bob, "participant:updated", { timeout: CROSS }), [{ room, participant: hosting(participant(alice, "Alicia")) }]);

    sam.emit("nickname", "Samuel");
    const samUpdate = [{ room, participant: participant(sam, "Samuel") }];
    assert.deepEqual(await waitFor(alice, "participant:updated", { timeout: CROSS }), samUpdate);
    assert.deepEqual(await waitFor(bob, "participant:updated", { timeout: CROSS }), samUpdate);
    assert.deepEqual(await ackArgs(sam, "new_message", "renamed", room), []);
    const [line] = await waitFor(bob, "chat:message", { timeout: CROSS });
    assert.deepEqual(line.sender, participant(sam, "Samuel"));
    // (Alice's rename and Sam's were made on different nodes, without one waiting for the other.)
    assert.deepEqual(await waitFor(cleo, "participant:updated", { where: (u) => u.participant.id === alice.person, timeout: CROSS }), [
      { room, participant: hosting(participant(alice, "Alicia")) },
    ]);
    assert.deepEqual(await waitFor(cleo, "participant:updated", { where: (u) => u.participant.id === sam.person, timeout: CROSS }), samUpdate);

    // A newcomer on C sees the new names; room:join's nickname names it for the others at once.
    const { socket: carl, joined } = await noomAt("C", "Carl", room);
    assert.deepEqual(joined.participants, [
      hosting(participant(alice, "Alicia")),
      participant(bob, "Bob"),
      participant(sam, "Samuel"),
      participant(cleo, "Cleo"),
      participant(carl, "Carl"),
    ]);
    assert.deepEqual(await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === carl.person, timeout: CROSS }), [
      { room, participant: participant(carl, "Carl"), count: 5 },
    ]);
    await pause();
    assert.equal(received(alice, "participant:updated").length, 1, "Alice was not told of her own rename");
  });

  test("someone entering on another node is told since when the room's call has been going", async () => {
    const room = roomName("clock");
    const { socket: alice } = await noomAt("A", "Alice", room);
    const { socket: cid } = await noomAt("C", "Cid", room);
    const before = Date.now();
    await joinCall(alice, room, media(true, false));
    const after = Date.now();
    await waitFor(cid, "participant:updated", { where: (u) => u.participant.call, timeout: CROSS });
    const { joined } = await noomAt("C", "Dee", room);
    // C counts from when it heard of the call: within the moment it took to cross.
    assert.ok(joined.callSince >= before - 1000 && joined.callSince <= after + CROSS, `the call began when Alice joined it: ${joined.callSince}`);
  });

  test("call:join, call:media, renames in the call and call:leave show on other nodes", async () => {
    const room = roomName("call");
    const [alice, bob, carl] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"], ["C", "Carl"]]);

    const first = await joinCall(alice, room, media(true, false));
    assert.deepEqual(first.participants, [hosting(withCall(alice, "Alice", media(true, false))), participant(bob, "Bob"), participant(carl, "Carl")]);
    assert.equal(first.limit, CALL_SIZE);
    const aliceIn = [{ room, participant: hosting(withCall(alice, "Alice", media(true, false))) }];
    for (const s of [bob, carl]) assert.deepEqual(await waitFor(s, "participant:updated", { timeout: CROSS }), aliceIn);

    const second = await joinCall(bob, room, media(true, true));
    assert.deepEqual(second.participants, [
      hosting(withCall(alice, "Alice", media(true, false))),
      withCall(bob, "Bob", media(true, true)),
      participant(carl, "Carl"),
    ]);
    for (const s of [alice, carl]) {
      assert.deepEqual(await waitFor(s, "participant:updated", { timeout: CROSS }), [{ room, participant: withCall(bob, "Bob", media(true, true)) }]);
    }

    const changed = await ack(alice, "call:media", { room, audio: false, video: true, screen: true });
    assert.deepEqual(changed, { participant: hosting(withCall(alice, "Alice", media(false, true, true))) });
    for (const s of [bob, carl]) {
      assert.deepEqual(await waitFor(s, "participant:updated", { timeout: CROSS }), [{ room, participant: hosting(withCall(alice, "Alice", media(false, true, true))) }]);
    }

    // A newcomer on C sees who is in the call and with what.
    const { socket: dora, joined } = await noomAt("C", "Dora", room);
    assert.deepEqual(joined.participants, [
      hosting(withCall(alice, "Alice", media(false, true, true))),
      withCall(bob, "Bob", media(true, true)),
      participant(carl, "Carl"),
      participant(dora, "Dora"),
    ]);

    // A rename in the call carries the call.
    assert.deepEqual(await ack(bob, "user:rename", { nickname: "Robert" }), { nickname: "Robert" });
    for (const s of [alice, carl, dora]) {
      assert.deepEqual(await waitFor(s, "participant:updated", { where: (u) => u.participant.id === bob.person, timeout: CROSS }), [
        { room, participant: withCall(bob, "Robert", media(true, true)) },
      ]);
    }

    assert.deepEqual(await ack(alice, "call:leave", { room }), {});
    for (const s of [bob, carl, dora]) {
      assert.deepEqual(await waitFor(s, "participant:updated", { where: (u) => u.participant.id === alice.person, timeout: CROSS }), [
        { room, participant: hosting(participant(alice, "Alice")) },
      ]);
    }
    // Media the same as before tells nobody (sentinel: Bob's change after it).
    await ack(bob, "call:media", { room, audio: true, video: true, screen: false });
    await ack(bob, "call:media", { room, audio: false, video: false, screen: false });
    const offUpdate = { room, participant: withCall(bob, "Robert", OFF) };
    await waitFor(carl, "participant:updated", { where: (u) => isDeepStrictEqual(u, offUpdate), timeout: CROSS });
    const bobUpdates = received(carl, "participant:updated").filter(([u]) => u.participant.id === bob.person);
    assert.equal(bobUpdates.length, 3, `Carl's updates about Bob: ${JSON.stringify(bobUpdates)}`);
  });
});

describe("rtc:signal", () => {
  test("reaches a peer on another node, in order, large descriptions included", async () => {
    const room = roomName("rtc");
    const [alice, bob, carl] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"], ["C", "Carl"]]);
    await joinCall(alice, room);
    await joinCall(bob, room);
    await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === bob.person, timeout: CROSS });

    assert.deepEqual(await ack(alice, "rtc:signal", { room, to: bob.person, description: { type: "offer", sdp: SDP } }), {});
    assert.deepEqual(await waitFor(bob, "rtc:signal", { timeout: CROSS }), [{ room, from: alice.person, description: { type: "offer", sdp: SDP } }]);

    assert.deepEqual(await ack(bob, "rtc:signal", { room, to: alice.person, description: { type: "answer", sdp: SDP } }), {});
    assert.deepEqual(await waitFor(alice, "rtc:signal", { timeout: CROSS }), [{ room, from: bob.person, description: { type: "answer", sdp: SDP } }]);

    // Trickled candidates, without acknowledgements, arrive in the order sent.
    const lines = Array.from({ length: 50 }, (_, i) => ({ ...CANDIDATE, candidate: `candidate:${i} 1 udp 2122260223 192.0.2.7 ${30000 + i} typ host` }));
    for (const candidate of lines) alice.emit("rtc:signal", { room, to: bob.person, candidate });
    alice.emit("rtc:signal", { room, to: bob.person, candidate: null });
    await waitFor(bob, "rtc:signal", { where: (s) => s.candidate === null, timeout: CROSS });
    const got = received(bob, "rtc:signal").slice(1).map(([s]) => s);
    assert.deepEqual(got, [...lines.map((candidate) => ({ room, from: alice.person, candidate })), { room, from: alice.person, candidate: null }]);

    // The largest allowed description crosses nodes too.
    const largest = { type: "offer", sdp: "a".repeat(65_536) };
    assert.deepEqual(await ack(bob, "rtc:signal", { room, to: alice.person, description: largest }), {});
    assert.deepEqual(await waitFor(alice, "rtc:signal", { timeout: CROSS }), [{ room, from: bob.person, description: largest }]);

    await expectNothing(carl, "rtc:signal");
  });

  test("refusals hold across nodes: peer_unavailable, not_in_call, and nothing is relayed", async () => {
    const room = roomName("rtc-refused");
    const [alice, bob, carl] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"], ["C", "Carl"]]);
    const { socket: elsewhere } = await noomAt("C", "Elsewhere", roomName("elsewhere"));
    await joinCall(alice, room);
    await joinCall(bob, room);
    await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === bob.person, timeout: CROSS });
    const offer = { description: { type: "offer", sdp: SDP } };

    // Carl (C) is in the room but not its call; Elsewhere (C) is in another room; a made-up id.
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: carl.person, ...offer });
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: elsewhere.person, ...offer });
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: "no-such-socket-id-0000", ...offer });
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: alice.person, ...offer });
    // Carl is not in the call: he may not signal Alice.
    await expectError(carl, "not_in_call", "rtc:signal", { room, to: alice.person, ...offer });

    // Bob (B) leaves the call: A can no longer signal him.
    assert.deepEqual(await ack(bob, "call:leave", { room }), {});
    await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === bob.person && !u.participant.call, timeout: CROSS });
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: bob.person, ...offer });

    // Bob comes back, then disconnects: again peer_unavailable.
    await joinCall(bob, room);
    await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === bob.person && u.participant.call, timeout: CROSS });
    assert.deepEqual(await ack(alice, "rtc:signal", { room, to: bob.person, ...offer }), {});
    await waitFor(bob, "rtc:signal", { timeout: CROSS });
    const bobId = bob.person;
    await disconnect(bob);
    await waitFor(alice, "participant:left", { where: (p) => p.participant.id === bobId, timeout: CROSS });
    await expectError(alice, "peer_unavailable", "rtc:signal", { room, to: bobId, ...offer });

    await expectNothing([carl, elsewhere], "rtc:signal");
    assert.equal(received(bob, "rtc:signal").length, 1, "Bob got only the signal sent while he was in the call");
  });
});

describe("call size", () => {
  test(`the limit (${CALL_SIZE}) holds across nodes: a third on a third node gets call_full`, async () => {
    const room = roomName("full");
    const [alice, bob, carl] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"], ["C", "Carl"]]);
    await joinCall(alice, room);
    await joinCall(bob, room);
    await expectError(carl, "call_full", "call:join", { room, media: media(true, true) });

    // Carl stays in the room and its chat; nobody was told he joined the call.
    const { message } = await ack(carl, "chat:send", { room, text: "I will wait" });
    assert.deepEqual(await waitFor(alice, "chat:message", { timeout: CROSS }), [message]);
    assert.ok(
      !received(alice, "participant:updated").some(([u]) => u.participant.id === carl.person),
      `Alice was told of Carl: ${JSON.stringify(received(alice, "participant:updated"))}`,
    );

    // A place freed on B is free for C (once C knows).
    assert.deepEqual(await ack(bob, "call:leave", { room }), {});
    await waitFor(carl, "participant:updated", { where: (u) => u.participant.id === alice.person && u.participant.call, timeout: CROSS });
    await waitFor(carl, "participant:updated", { where: (u) => u.participant.id === bob.person && !u.participant.call, timeout: CROSS });
    const answer = await joinCall(carl, room, media(true, false));
    assert.deepEqual(answer.participants, [hosting(withCall(alice, "Alice", OFF)), participant(bob, "Bob"), withCall(carl, "Carl", media(true, false))]);
    await expectError(bob, "call_full", "call:join", { room });

    // A place freed by a disconnection on A is free for B once B knows Alice left.
    const aliceId = alice.person;
    await disconnect(alice);
    await waitFor(bob, "participant:left", { where: (p) => p.participant.id === aliceId, timeout: CROSS });
    await joinCall(bob, room);
  });

  test("two people on two nodes asking at once for the last place: exactly one gets it", async () => {
    for (let round = 0; round < 5; round++) {
      const room = roomName("last-place");
      const { socket: alice } = await noomAt("A", "Alice", room);
      const { socket: bob } = await noomAt("B", "Bob", room);
      const { socket: carl } = await noomAt("C", "Carl", room);
      await joinCall(alice, room);
      const answers = await Promise.all([ack(bob, "call:join", { room }), ack(carl, "call:join", { room })]);
      const codes = answers.map((a) => (a?.error ? a.error.code : "joined"));
      assert.deepEqual([...codes].sort(), ["call_full", "joined"], `round ${round}: ${JSON.stringify(answers)}`);

      // Once A knows who won, a newcomer there sees exactly two people in the call.
      const winner = codes[0] === "joined" ? bob : carl;
      await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === winner.person && u.participant.call, timeout: CROSS });
      const { joined } = await noomAt("A", "Dave", room);
      assert.equal(joined.participants.filter((p) => p.call).length, CALL_SIZE, `round ${round}: ${JSON.stringify(joined.participants)}`);
      await disconnectAll();
    }
  });
});

describe("media server", () => {
  const portOf = (label) => Number(new URL(at(label)).port);

  test("one node's media server carries a call for people of every node; a connection it loses takes its owner out of the call on its own node", { timeout: 60_000 }, async () => {
    const room = roomName("media");
    const [alice, bob] = await enterInTurn(room, [["A", "Alice"], ["B", "Bob"]]);
    assert.equal((await joinCall(alice, room)).via, "sfu");
    assert.equal((await joinCall(bob, room)).via, "sfu");

    // The first to connect makes the call its node's; Bob's offer, on B, reaches A's media server.
    assert.equal(mediaPortOf(await ack(alice, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf("A"), "Alice is sent to A's port");
    assert.equal(mediaPortOf(await ack(bob, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf("A"), "Bob, on B, is sent to A's port too");
    assert.deepEqual(await ack(bob, "sfu:view", { room, tiles: [{ id: alice.person, height: 360 }] }), {});
    // A refusal of A's media server comes back to Bob on B as it would on A.
    assertError(await ack(bob, "sfu:answer", { room, sdp: "not a session description" }), "invalid_signal", "Bob's bad answer");

    // Neither connects: A's media server gives both up, and each is out of the call, told on
    // their own node, and everyone sees it.
    const closed = { timeout: 30_000 };
    assert.deepEqual(await waitFor(alice, "sfu:closed", closed), [{ room }]);
    assert.deepEqual(await waitFor(bob, "sfu:closed", closed), [{ room }]);
    for (const [s, other] of [[alice, bob], [bob, alice]]) {
      await waitFor(s, "participant:updated", { where: (u) => u.participant.id === other.person && !u.participant.call, timeout: CROSS });
    }

    // The call emptied is carried by no node now: the next to connect, on C, makes it C's.
    const { socket: carl } = await noomAt("C", "Carl", room);
    await joinCall(carl, room);
    assert.equal(mediaPortOf(await ack(carl, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf("C"), "Carl is sent to C's port");
  });
});
