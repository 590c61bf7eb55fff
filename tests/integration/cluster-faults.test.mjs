// Faults in a cluster of Noom nodes sharing rooms through Redis: a node killed outright (its users
// must leave every room on the other nodes within 15 s, the others lose nothing of each other's
// conversation, and one back on another node with its resume token is shown once), the node
// whose media server carries a call killed (the call's people on other nodes are told to connect
// again within 5 s, and a live node carries the call) or stopped with SIGTERM (its calls handed to
// the live node with most of their people, at once), a node stopped with SIGTERM (its users leave
// at once), Redis restarted in the middle of a call (the call keeps its node), a node started
// while a call goes on (it shows the call's age, not its own), and Redis itself stopping and
// coming back (each node keeps serving its own users, then the nodes resynchronise). Each test
// starts its own Redis and nodes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { alive, expectDirectory, expectRoomList, healthz, startNode, waitForRedisStatus, waitUntil, withCluster } from "../support/cluster.mjs";
import { ack, ackArgs, connectNoom, disconnect, disconnectAll, noomClient, participant, received, roomName,
  seedClient, waitFor, connect } from "../support/clients.mjs";
import { AUDIO_OFFER, mediaPortOf } from "../support/signals.mjs";

const ARGS = ["--call-size", "2", "--directory-interval-ms", "100", "--chat-burst", "100", "--chat-rate", "100"];
/** How long something done on one node may take to show on another in normal operation. */
const CROSS = 5000;
/** The spec's bound: a dead node's users are gone from the other nodes within this. */
const DEAD_NODE_BOUND = 15000;
/** The spec's bound: the media of a call whose node died is back within this (the notice to
 * connect again comes sooner, and connecting takes a moment). */
const DEAD_MEDIA_BOUND = 5000;
/** A client back with its resume token replaces its old self on a dead node within this (the
 * dead node is known to be gone 2 s after its last heartbeat; before, 10 s). */
const RESUMED_BOUND = 5000;
/** Calls of more than two, for the tests of a call's media moving between nodes. */
const CALL_ARGS = ARGS.map((arg, i) => (ARGS[i - 1] === "--call-size" ? "8" : arg));
const portOf = (node) => Number(new URL(node.url).port);

const noomAt = (node, nickname, room, options = {}) =>
  noomClient(node.url, nickname, room, { label: `noom ${nickname}@${node.label}`, ...options });
const seedAt = (node, nickname, rooms = []) => seedClient(node.url, nickname, rooms, { label: `seed ${nickname}@${node.label}` });
const lobbyAt = (node) => connectNoom(node.url, { label: `lobby@${node.label}` });

/**
 * The ids a Noom client in one room sees there now: its `room:join` answer's participants, then
 * every participant:joined and participant:left it received, applied in order.
 */
function view(socket, joined) {
  const ids = new Set(joined.participants.map((p) => p.id));
  for (const { name, args } of socket.inbox.entries) {
    if (name === "participant:joined") ids.add(args[0].participant.id);
    if (name === "participant:left") ids.delete(args[0].participant.id);
  }
  return [...ids].sort();
}

const sortedIds = (...sockets) => sockets.map((s) => (typeof s === "string" ? s : s.person)).sort();

/** Asserts that no client in `clients` was disconnected by its server. */
function assertStillConnected(clients) {
  for (const c of clients) {
    assert.deepEqual(received(c, "disconnect"), [], `${c.inbox.label} was disconnected`);
    assert.ok(c.connected, `${c.inbox.label} is not connected`);
  }
}

test("a SIGKILLed node's users leave every room on the other nodes within 15 s", { timeout: 120000 }, async (t) => {
  await withCluster(3, { args: ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b, c] = nodes;
    const room = roomName("kill");
    const onlyC = roomName("only-c");
    const lobbyA = await lobbyAt(a);
    const lobbyB = await lobbyAt(b);
    const seedWatcherA = await connect(a.url, { label: "seed watcher@A" });

    const { socket: alice } = await noomAt(a, "Alice", room);
    const bob = await seedAt(b, "Bob", room);
    const { socket: ben } = await noomAt(b, "Ben", room);
    const { socket: vic } = await noomAt(c, "Vic", room);
    const vera = await seedAt(c, "Vera", room);
    await noomAt(c, "Cy", onlyC);
    await seedAt(c, "Cleo", onlyC);
    // Alice and Vic (C) fill the call of two.
    await ack(alice, "call:join", { room });
    const vicCall = await ack(vic, "call:join", { room });
    assert.ok(!vicCall.error, JSON.stringify(vicCall));
    await waitFor(alice, "participant:updated", { where: (u) => u.participant.id === vic.person && u.participant.call, timeout: CROSS });
    const benFull = await ack(ben, "call:join", { room });
    assert.equal(benFull?.error?.code, "call_full", `the call is full before the kill: ${JSON.stringify(benFull)}`);

    const before = { rooms: [{ name: room, count: 5, inCall: 2 }, { name: onlyC, count: 2, inCall: 0 }], total: 2 };
    for (const lobby of [lobbyA, lobbyB]) await expectDirectory(lobby, before, { timeout: CROSS });
    await expectRoomList(seedWatcherA, [room, onlyC], { timeout: CROSS });
    await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === vera.person, timeout: CROSS });
    await waitFor(bob, "welcome", { where: (n) => n === "Vera", timeout: CROSS });
    const victims = { [vic.person]: "Vic", [vera.person]: "Vera" };

    const killedAt = Date.now();
    await c.kill();
    const remaining = () => Math.max(1, killedAt + DEAD_NODE_BOUND - Date.now());

    // Noom people on A and B are told each of C's users left, with the true counts.
    for (const s of [alice, ben]) {
      const lefts = [];
      for (const id of Object.keys(victims)) {
        const [left] = await waitFor(s, "participant:left", { where: (p) => p.participant.id === id, timeout: remaining() });
        assert.deepEqual(left.participant, { id, nickname: victims[id] }, `${s.inbox.label}: ${JSON.stringify(left)}`);
        assert.equal(left.room, room);
        lefts.push(left);
      }
      assert.deepEqual(lefts.map((l) => l.count).sort(), [3, 4], `${s.inbox.label}: counts ${JSON.stringify(lefts)}`);
    }
    // The seed person on B is said bye for each.
    const byes = [];
    for (const nickname of ["Vic", "Vera"]) byes.push(await waitFor(bob, "bye", { where: (n) => n === nickname, timeout: remaining() }));
    assert.deepEqual(byes.map(([, count]) => count).sort(), [3, 4], `Bob's byes: ${JSON.stringify(byes)}`);
    // The directory drops C's users and its room on A and B; so does room_change.
    const after = { rooms: [{ name: room, count: 3, inCall: 1 }], total: 1 };
    for (const lobby of [lobbyA, lobbyB]) await expectDirectory(lobby, after, { timeout: remaining() });
    await expectRoomList(seedWatcherA, [room], { timeout: remaining() });
    const elapsed = Date.now() - killedAt;
    t.diagnostic(`C's users were gone from A and B ${elapsed} ms after the kill`);
    assert.ok(elapsed <= DEAD_NODE_BOUND, `${elapsed} ms`);

    // Nothing of them is left: Vic's place in the call is free, a newcomer sees no ghosts, and
    // signals to Vic are refused.
    const benIn = await ack(ben, "call:join", { room });
    assert.ok(benIn && !benIn.error, `Ben takes Vic's place in the call: ${JSON.stringify(benIn)}`);
    const vicId = Object.keys(victims).find((id) => victims[id] === "Vic");
    const refused = await ack(alice, "rtc:signal", { room, to: vicId, candidate: null });
    assert.equal(refused?.error?.code, "peer_unavailable", JSON.stringify(refused));
    const { socket: nina, joined } = await noomAt(b, "Nina", room);
    assert.deepEqual(
      joined.participants.map((p) => p.id).sort(),
      sortedIds(alice, bob, ben, nina),
      `participants after the kill: ${JSON.stringify(joined.participants)}`,
    );
    assert.equal(joined.room.count, 4);
    await expectDirectory(lobbyA, { rooms: [{ name: room, count: 4, inCall: 2 }], total: 1 }, { timeout: CROSS });

    // Chat still crosses between the survivors.
    const { message } = await ack(alice, "chat:send", { room, text: "still here" });
    assert.deepEqual(await waitFor(ben, "chat:message", { timeout: CROSS }), [message]);
    assert.deepEqual(await waitFor(bob, "new_message", { timeout: CROSS }), ["Alice: still here"]);

    assert.ok(alive(a) && alive(b), "A and B still run");
    for (const node of [a, b]) assert.deepEqual((await healthz(node.url)).json, { status: "ok", redis: "up" });
    assertStillConnected([alice, bob, ben, lobbyA, lobbyB, seedWatcherA]);
  });
});

test("a client back on another node with its resume token after its node was killed is shown once, its old self gone within 5 s", { timeout: 60000 }, async (t) => {
  await withCluster(2, { args: ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b] = nodes;
    const room = roomName("resumed");
    const resume = `page-${Math.random()}`;
    const { socket: alice } = await noomAt(a, "Alice", room, { auth: { resume } });
    const { socket: bob, joined } = await noomAt(b, "Bob", room);
    assert.deepEqual(view(bob, joined), sortedIds(alice, bob));

    const killedAt = Date.now();
    await a.kill();
    // As a client does, Alice reconnects at once, through the load balancer, to the live node.
    const { socket: aliceAgain } = await noomAt(b, "Alice", room, { auth: { resume } });
    await waitFor(bob, "participant:left", { where: (p) => p.participant.id === alice.person, timeout: RESUMED_BOUND });
    t.diagnostic(`Alice's old self left ${Date.now() - killedAt} ms after the kill`);
    assert.deepEqual(view(bob, joined), sortedIds(aliceAgain, bob), "Alice once, Bob once");
  });
});

test("a node killed in the middle of a conversation: the survivors lose nothing of each other's", { timeout: 120000 }, async (t) => {
  await withCluster(3, { args: ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b, c] = nodes;
    const room = roomName("kill-chat");
    const { socket: ann } = await noomAt(a, "Ann", room);
    const { socket: bea } = await noomAt(b, "Bea", room);
    const { socket: cid } = await noomAt(c, "Cid", room);
    for (const [s, n] of [[ann, 2], [bea, 1]]) {
      await waitUntil(() => received(s, "participant:joined").length >= n, { what: `${s.inbox.label} sees everyone` });
    }
    // All three talk, ten messages a second each; C is killed halfway.
    const sent = { Ann: [], Bea: [], Cid: [] };
    const talk = async (socket, who, rounds) => {
      for (let i = 0; i < rounds && socket.connected; i++) {
        const answer = await ack(socket, "chat:send", { room, text: `${who} ${i}` }).catch(() => null);
        if (answer?.message) sent[who].push(answer.message.id);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const talking = [talk(ann, "Ann", 40), talk(bea, "Bea", 40), talk(cid, "Cid", 40)];
    await new Promise((r) => setTimeout(r, 2000));
    await c.kill();
    await Promise.all(talking);

    // Each survivor received every message the other survivor had acknowledged, once, in order.
    for (const [reader, writer] of [[ann, "Bea"], [bea, "Ann"]]) {
      await waitUntil(() => received(reader, "chat:message").filter(([m]) => m.sender.nickname === writer).length >= sent[writer].length,
        { what: `${reader.inbox.label} has all of ${writer}'s`, timeout: CROSS });
      const ids = received(reader, "chat:message").map(([m]) => m).filter((m) => m.sender.nickname === writer).map((m) => m.id);
      assert.deepEqual(ids, sent[writer], `${reader.inbox.label}: ${writer}'s messages, once each, in order`);
    }
    // And both nodes' histories hold the survivors' last messages, as a newcomer sees them.
    for (const node of [a, b]) {
      const { joined } = await noomAt(node, "Late", room);
      const history = joined.history.map((m) => m.id);
      const lastOfEach = [sent.Ann.at(-1), sent.Bea.at(-1)];
      for (const id of lastOfEach) assert.ok(history.includes(id), `node ${node.label}'s history has ${id}`);
    }
    // Of what C had acknowledged, what reached the survivors is a prefix: nothing out of order.
    const fromCid = received(ann, "chat:message").map(([m]) => m).filter((m) => m.sender.nickname === "Cid").map((m) => m.id);
    assert.deepEqual(fromCid, sent.Cid.slice(0, fromCid.length));
    t.diagnostic(`sent before the kill by Cid and acknowledged: ${sent.Cid.length}; reached the others: ${fromCid.length}`);
    assertStillConnected([ann, bea]);
  });
});

test("the node carrying a call's media killed: the call's people on other nodes stay in it, are told to connect again within 5 s, and a live node carries it; the dead node's page, back elsewhere, replaces its old self at once", { timeout: 120000 }, async (t) => {
  await withCluster(2, { args: ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b] = nodes;
    const room = roomName("media-kill");
    const resume = `page-${Math.random()}`;
    const { socket: alice } = await noomAt(a, "Alice", room, { auth: { resume } });
    const { socket: bob } = await noomAt(b, "Bob", room);
    for (const s of [alice, bob]) assert.equal((await ack(s, "call:join", { room }))?.via, "sfu");
    assert.equal(mediaPortOf(await ack(alice, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(a));
    assert.equal(mediaPortOf(await ack(bob, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(a), "A carries Bob's media");

    const killedAt = Date.now();
    await a.kill();
    assert.deepEqual(await waitFor(bob, "sfu:moved", { timeout: DEAD_MEDIA_BOUND }), [{ room }]);
    t.diagnostic(`Bob was told to connect again ${Date.now() - killedAt} ms after the kill`);
    assertStillConnected([bob]);
    assert.deepEqual(received(bob, "sfu:closed"), [], "Bob is not out of the call");

    // Still in the call: connecting again, B carries it (long before Redis has forgotten A).
    assert.equal(mediaPortOf(await ack(bob, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(b), "B carries the call now");
    assert.ok(Date.now() - killedAt < DEAD_MEDIA_BOUND, `Bob's media had a live node ${Date.now() - killedAt} ms after the kill`);

    // Alice's page comes back through B with its resume token: her old self, on the dead node, is
    // gone at once, not when A is given up for dead (10 s), and she is in the call once only.
    const { socket: aliceAgain } = await noomAt(b, "Alice", room, { auth: { resume } });
    const [left] = await waitFor(bob, "participant:left", { where: (p) => p.participant.id === alice.person, timeout: DEAD_MEDIA_BOUND });
    assert.equal(left.participant.nickname, "Alice");
    t.diagnostic(`Alice's old self left ${Date.now() - killedAt} ms after the kill`);
    assert.ok(Date.now() - killedAt < DEAD_MEDIA_BOUND, "long before A is given up for dead");
    assert.equal((await ack(aliceAgain, "call:join", { room }))?.via, "sfu", "a place in the call of two is free again");
  });
});

test("the node carrying a call stopped with SIGTERM: it hands the call to the live node with most of its people, whose people and the others' connect to it at once", { timeout: 120000 }, async (t) => {
  await withCluster(3, { args: CALL_ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b, c] = nodes;
    const room = roomName("media-handover");
    const people = [];
    for (const [name, node] of [["Ann", a], ["Ben", b], ["Bea", b], ["Cal", c]]) {
      const { socket } = await noomAt(node, name, room);
      assert.equal((await ack(socket, "call:join", { room }))?.via, "sfu", `${name}'s call:join`);
      assert.equal(mediaPortOf(await ack(socket, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(a), `A carries ${name}'s media`);
      people.push(socket);
    }
    const [, ben, bea, cal] = people;

    const stoppedAt = Date.now();
    const stopping = a.stop();
    for (const s of [ben, bea, cal]) {
      assert.deepEqual(await waitFor(s, "sfu:moved", { timeout: CROSS }), [{ room }], `${s.inbox.label} told to connect again`);
    }
    t.diagnostic(`the others were told to connect again ${Date.now() - stoppedAt} ms after SIGTERM`);
    // B has two of the call's people, C one: B carries it, for those of both.
    for (const s of [ben, bea, cal]) {
      assert.equal(mediaPortOf(await ack(s, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(b), `B carries ${s.inbox.label}'s media now`);
    }
    await stopping;
    assert.notEqual(a.proc.signalCode, "SIGKILL", "A stopped on SIGTERM by itself");
    assertStillConnected([ben, bea, cal]);
    for (const s of [ben, bea, cal]) assert.deepEqual(received(s, "sfu:closed"), [], `${s.inbox.label} is not out of the call`);
  });
});

test("Redis restarted in the middle of a call: the call keeps its node, and a newcomer on another node joins it there", { timeout: 120000 }, async (t) => {
  await withCluster(2, { args: CALL_ARGS, cleanup: disconnectAll }, async ({ redis, nodes }) => {
    const [a, b] = nodes;
    const room = roomName("media-redis");
    const callers = [];
    for (const [name, node] of [["Ada", a], ["Bo", b]]) {
      const { socket } = await noomAt(node, name, room);
      assert.equal((await ack(socket, "call:join", { room }))?.via, "sfu");
      assert.equal(mediaPortOf(await ack(socket, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(a), `A carries ${name}'s media`);
      callers.push(socket);
    }

    // Redis comes back empty: nothing it held of the call survives but what the nodes tell it.
    await redis.stop({ kill: true });
    await waitForRedisStatus(nodes, "down", { timeout: 15000 });
    await redis.start();
    await waitForRedisStatus(nodes, "up", { timeout: 20000 });

    const { socket: bree } = await noomAt(b, "Bree", room);
    assert.equal((await ack(bree, "call:join", { room }))?.via, "sfu");
    assert.equal(mediaPortOf(await ack(bree, "sfu:join", { room, sdp: AUDIO_OFFER })), portOf(a), "A still carries the call");
    for (const s of callers) assert.deepEqual(received(s, "sfu:moved"), [], `${s.inbox.label} was not moved`);
    assertStillConnected([...callers, bree]);
  });
});

test("a node stopped with SIGTERM tells the others at once", { timeout: 60000 }, async (t) => {
  await withCluster(3, { args: ARGS, cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b, c] = nodes;
    const room = roomName("term");
    const lobbyA = await lobbyAt(a);
    const { socket: alice } = await noomAt(a, "Alice", room);
    const bob = await seedAt(b, "Bob", room);
    const { socket: tom } = await noomAt(c, "Tom", room);
    const tess = await seedAt(c, "Tess", room);
    await expectDirectory(lobbyA, { rooms: [{ name: room, count: 4, inCall: 0 }], total: 1 }, { timeout: CROSS });
    await waitFor(alice, "participant:joined", { where: (p) => p.participant.id === tess.person, timeout: CROSS });
    const ids = { tom: tom.person, tess: tess.person };

    const stoppedAt = Date.now();
    await c.stop();
    assert.notEqual(c.proc.signalCode, "SIGKILL", "C stopped on SIGTERM by itself, within 3 s");
    // "At once": well before the 10 s after which a silent node is taken for dead.
    const soon = () => Math.max(1, stoppedAt + CROSS - Date.now());
    assert.deepEqual((await waitFor(alice, "participant:left", { where: (p) => p.participant.id === ids.tom, timeout: soon() }))[0].participant, { id: ids.tom, nickname: "Tom" });
    assert.deepEqual((await waitFor(alice, "participant:left", { where: (p) => p.participant.id === ids.tess, timeout: soon() }))[0].participant, { id: ids.tess, nickname: "Tess" });
    for (const nickname of ["Tom", "Tess"]) await waitFor(bob, "bye", { where: (n) => n === nickname, timeout: soon() });
    await expectDirectory(lobbyA, { rooms: [{ name: room, count: 2, inCall: 0 }], total: 1 }, { timeout: soon() });
    t.diagnostic(`C's users were gone ${Date.now() - stoppedAt} ms after SIGTERM`);
    assert.ok(alive(a) && alive(b), "A and B still run");
  });
});

test("a node started while a call goes on tells whoever enters there since when the call has been going, not since the node heard of it", { timeout: 60000 }, async () => {
  await withCluster(1, { args: ARGS, cleanup: disconnectAll }, async ({ redis, nodes }) => {
    const [a] = nodes;
    const room = roomName("late-clock");
    const { socket: alice } = await noomAt(a, "Alice", room);
    const before = Date.now();
    assert.equal((await ack(alice, "call:join", { room }))?.error, undefined);
    const after = Date.now();
    // The call is some seconds old when B comes up and hears of it from A's snapshot.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const b = await startNode(redis.url, { args: ARGS, label: "B" });
    nodes.push(b);
    await waitForRedisStatus([b], "up", { timeout: CROSS });
    await expectDirectory(await lobbyAt(b), { rooms: [{ name: room, count: 1, inCall: 1 }], total: 1 }, { timeout: CROSS });
    const { joined } = await noomAt(b, "Dee", room);
    assert.ok(joined.callSince >= before && joined.callSince <= after, `the call began when Alice joined it (${before} to ${after}), B says ${joined.callSince}`);
  });
});

test("Redis stops and comes back: each node serves its own users, then the nodes resynchronise", { timeout: 180000 }, async (t) => {
  await withCluster(3, { args: ARGS, cleanup: disconnectAll }, async ({ redis, nodes }) => {
    const [a, b, c] = nodes;
    const room = roomName("outage");
    const onlyB = roomName("only-b");
    const lobbies = [];
    for (const node of nodes) lobbies.push(await lobbyAt(node));

    const { socket: alice, joined: aliceJoined } = await noomAt(a, "Alice", room);
    const amy = await seedAt(a, "Amy", room);
    const { socket: bob, joined: bobJoined } = await noomAt(b, "Bob", room);
    const ben = await seedAt(b, "Ben", room);
    const { socket: cat, joined: catJoined } = await noomAt(c, "Cat", room);
    await noomAt(b, "Bea", onlyB);
    const everyone = sortedIds(alice, amy, bob, ben, cat);
    const views = [
      { socket: alice, joined: aliceJoined, local: sortedIds(alice, amy) },
      { socket: bob, joined: bobJoined, local: sortedIds(bob, ben) },
      { socket: cat, joined: catJoined, local: sortedIds(cat) },
    ];
    const want = { rooms: [{ name: room, count: 5, inCall: 0 }, { name: onlyB, count: 1, inCall: 0 }], total: 2 };
    for (const lobby of lobbies) await expectDirectory(lobby, want, { timeout: CROSS });
    for (const v of views) {
      await waitUntil(() => JSON.stringify(view(v.socket, v.joined)) === JSON.stringify(everyone), {
        timeout: CROSS,
        what: `${v.socket.inbox.label} seeing all five`,
      });
    }
    const clients = [alice, amy, bob, ben, cat, ...lobbies];

    await t.test("while Redis is down, each node serves its own users", async () => {
      const stoppedAt = Date.now();
      await redis.stop({ kill: true });
      await waitForRedisStatus(nodes, "down", { timeout: 15000 });
      for (const node of nodes) {
        const h = await healthz(node.url);
        assert.equal(h.status, 200, `node ${node.label}: ${h.status}`);
        assert.deepEqual(h.json, { status: "ok", redis: "down" }, `node ${node.label}: ${h.text}`);
      }

      // Same-node chat works, Noom to seed and seed to Noom.
      const local = await ack(alice, "chat:send", { room, text: "A alone" });
      assert.ok(local && local.message, `chat:send on A while Redis is down: ${JSON.stringify(local)}`);
      assert.deepEqual(await waitFor(amy, "new_message", { where: (l) => l === "Alice: A alone", timeout: CROSS }), ["Alice: A alone"]);
      assert.deepEqual(await ackArgs(ben, "new_message", "B alone", room), [], "new_message on B while Redis is down");
      const [fromBen] = await waitFor(bob, "chat:message", { where: (m) => m.text === "B alone", timeout: CROSS });
      assert.deepEqual(fromBen.sender, participant(ben, "Ben"));
      // A newcomer on A is let in, and leaves again (nothing of her may remain after the outage).
      const { socket: ada, joined } = await noomAt(a, "Ada", roomName("during-outage"));
      assert.equal(joined.room.count, 1);
      await disconnect(ada);

      // Users on other nodes disappear from the lists (about 10 s after the link went down).
      for (const v of views) {
        await waitUntil(() => JSON.stringify(view(v.socket, v.joined)) === JSON.stringify(v.local), {
          timeout: Math.max(1, stoppedAt + 20000 - Date.now()),
          what: `${v.socket.inbox.label} seeing only its own node's users`,
        });
      }
      t.diagnostic(`users of other nodes gone ${Date.now() - stoppedAt} ms after Redis stopped`);
      assertStillConnected(clients);
    });

    await t.test("when Redis is back, rooms, counts, lists and chat are consistent again", async () => {
      const restartedAt = Date.now();
      await redis.start();
      await waitForRedisStatus(nodes, "up", { timeout: 20000 });
      t.diagnostic(`every node up ${Date.now() - restartedAt} ms after Redis restarted`);
      for (const node of nodes) assert.deepEqual((await healthz(node.url)).json, { status: "ok", redis: "up" });

      // Everyone sees everyone again (those who had gone reappear with participant:joined).
      for (const v of views) {
        await waitUntil(() => JSON.stringify(view(v.socket, v.joined)) === JSON.stringify(everyone), {
          timeout: Math.max(1, restartedAt + 30000 - Date.now()),
          what: `${v.socket.inbox.label} seeing all five again (sees ${JSON.stringify(view(v.socket, v.joined))})`,
        });
      }
      // The directory is the same on every node, with the true counts.
      for (const lobby of lobbies) await expectDirectory(lobby, want, { timeout: Math.max(CROSS, restartedAt + 30000 - Date.now()) });
      for (const lobby of lobbies) assert.deepEqual(await ack(lobby, "directory:get", {}), want, `directory:get on ${lobby.inbox.label}`);

      // Newcomers on each node find the same room.
      const { socket: nia, joined: onA } = await noomAt(a, "Nia", room);
      assert.deepEqual(onA.participants.map((p) => p.id).sort(), sortedIds(...everyone, nia), `on A: ${JSON.stringify(onA.participants)}`);
      assert.equal(onA.room.count, 6);
      const { socket: ned, joined: onC } = await noomAt(c, "Ned", room);
      assert.deepEqual(onC.participants.map((p) => p.id).sort(), sortedIds(...everyone, nia, ned), `on C: ${JSON.stringify(onC.participants)}`);
      assert.equal(onC.room.count, 7);
      for (const s of [alice, bob, cat]) {
        await waitFor(s, "participant:joined", { where: (p) => p.participant.id === ned.person && p.count === 7, timeout: CROSS });
      }

      // Chat crosses nodes again.
      const { message } = await ack(alice, "chat:send", { room, text: "across again" });
      for (const s of [bob, cat, ned]) assert.deepEqual(await waitFor(s, "chat:message", { where: (m) => m.id === message.id, timeout: CROSS }), [message]);
      assert.deepEqual(await waitFor(ben, "new_message", { where: (l) => l === "Alice: across again", timeout: CROSS }), ["Alice: across again"]);
      assert.deepEqual(await ackArgs(ben, "new_message", "and back", room), []);
      assert.deepEqual(await waitFor(amy, "new_message", { where: (l) => l === "Ben: and back", timeout: CROSS }), ["Ben: and back"]);
      await waitFor(cat, "chat:message", { where: (m) => m.text === "and back" && m.sender.id === ben.person, timeout: CROSS });

      assertStillConnected(clients);
    });

    for (const node of nodes) assert.ok(alive(node), `node ${node.label} exited: ${node.output().slice(-2000)}`);
  });
});
