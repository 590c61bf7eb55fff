// The committed nginx configuration (deploy/nginx/noom-cluster.conf) in front of three Noom nodes
// sharing one Redis: Socket.IO over long-polling stays on one node for the whole session (no
// "Session ID unknown"), WebSocket upgrades go through, clients from different addresses are
// spread over the nodes and still meet in one room, the Origin check still holds behind the
// proxy, and a drained node's would-be clients are passed on to the next node, whole. nginx's
// access log (see tests/support/nginx.mjs) tells which node served each request.
//
// The configuration hashes on the client's address; loopback clients get different addresses
// by binding to 127.0.0.2, 127.0.0.3... (all of 127.0.0.0/8 is this machine), which `hash
// $remote_addr` tells apart (ip_hash, which keys on the first three bytes, would not).
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startServer } from "../support/server.mjs";
import { startRedis } from "../support/redis.mjs";
import { startNginx } from "../support/nginx.mjs";
import {
  ack,
  connect,
  connectWs,
  disconnect,
  disconnectAll,
  nextFrame,
  noomClient,
  pause,
  participant,
  received,
  roomName,
  sendJson,
  upgradeStatus,
  waitFor,
} from "../support/clients.mjs";

const EVIL = "http://evil.example";
const HANDSHAKE = "/socket.io/?EIO=4&transport=polling";

/** @type {Awaited<ReturnType<typeof startRedis>>} */
let redis;
/** @type {Awaited<ReturnType<typeof startServer>>[]} */
let nodes = [];
/** @type {Awaited<ReturnType<typeof startNginx>>} */
let proxy;

// One hook for all of it: Node 20 runs a file's top-level `before` hooks concurrently.
before(async () => {
  redis = await startRedis();
  // Pings every second, so that long-polls are answered and renewed many times in a test, as they
  // would be over minutes with the default 25 s; the chat limits are raised for the bursts below.
  const args = ["--redis-url", redis.url, "--ping-interval", "1", "--ping-timeout", "5", "--chat-burst", "100", "--chat-rate", "100"];
  for (let i = 0; i < 3; i++) nodes.push(await startServer({ args }));
  proxy = await startNginx({ backends: nodes.map((n) => n.port) });
});

afterEach(() => disconnectAll());

after(async () => {
  await disconnectAll();
  await proxy?.close();
  for (const node of nodes) await node.stop();
  await redis?.close();
});

/** Retries `check` until it stops throwing; after `timeout` ms fails with its last error. */
async function eventually(check, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await pause(50);
  }
}

/** `host:port` of a node, as nginx's `$upstream_addr` names it. */
const upstreamOf = (node) => `127.0.0.1:${node.port}`;

/** Which node nginx sent the requests of Engine.IO session `sid` to; asserts it was always the same one. */
async function nodeOfSession(sid) {
  return eventually(async () => {
    const entries = (await proxy.accessLog()).filter((e) => e.sid === sid);
    assert.ok(entries.length > 0, `nginx logged requests of session ${sid}`);
    const upstreams = new Set(entries.map((e) => e.upstream));
    assert.equal(upstreams.size, 1, `every request of session ${sid} reached one node: ${JSON.stringify(entries)}`);
    const [upstream] = upstreams;
    const node = nodes.find((n) => upstreamOf(n) === upstream);
    assert.ok(node, `session ${sid} went to one of the nodes, not ${upstream}`);
    return node;
  });
}

/** Connection options that make a client's requests come from `address` (a loopback address). */
function from(address) {
  return { agent: new http.Agent({ localAddress: address }), localAddress: address };
}

/**
 * When each Engine.IO session was closed by its own client (ms since the epoch), by sid. A
 * polling client that closes sends one more long-poll as it does (engine.io-client issues it
 * with its closing POST, within a millisecond of its "close" event); that one meets a closed
 * session and gets 400, through nginx or not. Requests that started before their client closed
 * must succeed. nginx's times are rounded to the millisecond and read from a clock it updates
 * once per event loop turn, hence a margin. (Which node each request went to is checked apart,
 * for every request of a session whatever its status: see `nodeOfSession`.)
 */
const closedAt = new Map();
const CLOSE_MARGIN_MS = 50;

/** Records when `socket`'s client closes its Engine.IO session (engine.io-client emits "close" as it begins to). */
function tracked(socket) {
  const engine = socket.io.engine;
  const sid = engine.id;
  engine.on("close", () => { if (!closedAt.has(sid)) closedAt.set(sid, Date.now()); });
  return socket;
}

/** A Noom client (as `noomClient`) whose session's close is tracked. */
async function client(url, nickname, room, options) {
  const { socket, joined } = await noomClient(url, nickname, room, options);
  return { socket: tracked(socket), joined };
}

/** Whether nginx's answer to a request is a failure while its session was open. */
const failedWhileOpen = (e) =>
  e.uri === "/socket.io/" && !["101", "200"].includes(e.status) && !(closedAt.has(e.sid) && e.start >= closedAt.get(e.sid) - CLOSE_MARGIN_MS);

/** Asserts nginx answered no Socket.IO request with an error status (400 "Session ID unknown" above all) while its session was open. */
async function assertNoFailedSocketIoRequests() {
  const failed = (await proxy.accessLog()).filter(failedWhileOpen);
  assert.deepEqual(failed, [], "Socket.IO requests through nginx that failed");
}

test("nginx serves the nodes' pages and /healthz, which says Redis is up", async () => {
  const health = await fetch(`${proxy.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok", redis: "up" });
  const page = await fetch(`${proxy.url}/r/some%20room`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html|<!doctype html/i);
});

test("the operator's endpoints do not go out through nginx: /metrics and /admin answer 404 there", async () => {
  for (const path of ["/metrics", "/admin", "/admin/", "/admin/api/state"]) {
    const res = await fetch(`${proxy.url}${path}`);
    assert.equal(res.status, 404, path);
  }
  assert.equal((await fetch(`${proxy.url}/readyz`)).status, 200, "the probes do");
});

test("a long-polling client through nginx stays on one node for hundreds of requests, and chats with a WebSocket client through nginx and a client on another node", { timeout: 60_000 }, async () => {
  const room = roomName("nginx-polling");
  // Wes and Polly both come from 127.0.0.1: nginx sends them to the same node.
  const { socket: viaWs } = await client(proxy.url, "Wes", room, { transports: ["websocket"] });

  const { socket: polly } = await client(proxy.url, "Polly", undefined, { transports: ["polling"] });
  assert.equal(polly.io.engine.transport.name, "polling");
  const pollyNode = await nodeOfSession(polly.io.engine.id);
  // Someone connected straight to another node than Polly's.
  const other = nodes.find((n) => n !== pollyNode);
  const { socket: direct } = await client(other.url, "Dora", room);
  // Nodes learn of each other's people a moment later (through Redis): once Wes is told of Dora,
  // Polly's node knows her.
  await waitFor(viaWs, "participant:joined", { where: (e) => e.participant.id === direct.person });

  const answer = await ack(polly, "room:join", { room, nickname: "Polly" });
  assert.ok(answer && !answer.error, `room:join: ${JSON.stringify(answer)}`);
  const byId = (a, b) => a.id.localeCompare(b.id);
  assert.deepEqual(
    answer.participants.map(({ id, nickname }) => ({ id, nickname })).sort(byId),
    [participant(viaWs, "Wes"), participant(direct, "Dora"), participant(polly, "Polly")].sort(byId),
    "Polly sees everyone in the room, on every node",
  );
  for (const peer of [viaWs, direct]) {
    const [joinedEvent] = await waitFor(peer, "participant:joined", { where: (e) => e.participant.id === polly.person });
    assert.deepEqual(joinedEvent, { room, participant: participant(polly, "Polly"), count: 3 });
  }

  // Many round trips over polling: every message is a POST, its acknowledgement a long-poll answer.
  const sent = [];
  for (let i = 0; i < 60; i++) {
    const res = await ack(polly, "chat:send", { room, text: `poll ${i}` });
    assert.ok(res?.message, `chat:send ${i}: ${JSON.stringify(res)}`);
    sent.push(res.message);
  }
  for (const peer of [viaWs, direct]) {
    await waitFor(peer, "chat:message", { where: (m) => m.text === "poll 59" });
    assert.deepEqual(received(peer, "chat:message").map(([m]) => m), sent, `${peer.inbox.label} got every message, in order`);
  }
  // And the other way round, from both.
  const fromWes = await ack(viaWs, "chat:send", { room, text: "over WebSocket, through nginx" });
  const fromDora = await ack(direct, "chat:send", { room, text: "from another node" });
  assert.deepEqual(await waitFor(polly, "chat:message", { where: (m) => m.id === fromWes.message.id }), [fromWes.message]);
  assert.deepEqual(await waitFor(polly, "chat:message", { where: (m) => m.id === fromDora.message.id }), [fromDora.message]);

  // The session lives on through several pings (each answers the pending long-poll and is ponged
  // with a POST), still on polling.
  await pause(4000);
  assert.ok(polly.connected, "Polly still connected");
  assert.equal(polly.io.engine.transport.name, "polling");
  assert.deepEqual(received(polly, "disconnect"), []);
  const again = await ack(polly, "chat:send", { room, text: "still here" });
  assert.ok(again?.message, `chat:send after the pause: ${JSON.stringify(again)}`);
  await waitFor(direct, "chat:message", { where: (m) => m.text === "still here" });

  const sid = polly.io.engine.id;
  await disconnect(polly);
  await eventually(async () => {
    const mine = (await proxy.accessLog()).filter((e) => e.sid === sid);
    assert.ok(mine.length >= 120, `at least 120 requests of Polly's session logged, got ${mine.length}`);
    assert.deepEqual(mine.filter((e) => e.start < closedAt.get(sid) - CLOSE_MARGIN_MS && e.status !== "200"), [], "every request of Polly's session succeeded");
    assert.deepEqual([...new Set(mine.map((e) => e.upstream))], [upstreamOf(pollyNode)], "all on Polly's node");
    assert.ok(mine.some((e) => e.method === "POST") && mine.some((e) => e.method === "GET"), "both GETs and POSTs");
  });
  await assertNoFailedSocketIoRequests();
});

test("clients from different addresses are spread over the nodes, each on one node only, and all meet in one room", { timeout: 60_000 }, async (t) => {
  const room = roomName("nginx-spread");
  const addresses = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 2}`);
  const clients = [];
  for (const address of addresses) {
    const { socket } = await client(proxy.url, `From ${address}`, room, { transports: ["polling"], ...from(address) });
    socket.address = address;
    clients.push(socket);
  }
  // A second client from the first address: the same node as the first.
  const { socket: twin } = await client(proxy.url, "Twin", room, { transports: ["polling"], ...from(addresses[0]) });

  const nodeOf = new Map();
  for (const socket of [...clients, twin]) nodeOf.set(socket, await nodeOfSession(socket.io.engine.id));
  const used = new Set(clients.map((s) => nodeOf.get(s)));
  t.diagnostic(`20 addresses over the nodes: ${nodes.map((n) => clients.filter((s) => nodeOf.get(s) === n).length).join(" / ")}`);
  assert.ok(used.size >= 2, `20 addresses spread over more than one node (used ${[...used].map(upstreamOf)})`);
  assert.equal(nodeOf.get(twin), nodeOf.get(clients[0]), "one address, one node");
  for (const socket of clients) {
    const logged = (await proxy.accessLog()).filter((e) => e.sid === socket.io.engine.id);
    assert.ok(logged.every((e) => e.remote === socket.address), `nginx saw ${socket.address} as the client's address: ${JSON.stringify(logged)}`);
  }

  // One message reaches everyone, whatever their node.
  const { message } = await ack(clients[0], "chat:send", { room, text: "hello, every node" });
  for (const socket of [...clients.slice(1), twin]) {
    assert.deepEqual(await waitFor(socket, "chat:message", { where: (m) => m.id === message.id }), [message]);
  }
  // A departure is counted the same everywhere.
  const last = await ack(twin, "room:leave", {});
  assert.deepEqual(last, { left: [room] });
  for (const socket of clients) {
    const [left] = await waitFor(socket, "participant:left", { where: (e) => e.participant.id === twin.person });
    assert.equal(left.count, clients.length);
  }
  await assertNoFailedSocketIoRequests();
});

test("WebSocket through nginx: WebSocket-only clients, an upgrade from polling on the session's node, and /ws", { timeout: 60_000 }, async () => {
  const room = roomName("nginx-ws");
  const { socket: ws } = await client(proxy.url, "Wanda", room, { transports: ["websocket"], ...from("127.0.0.30") });
  const { socket: direct } = await client(nodes[2].url, "Dora", room);
  assert.equal(ws.io.engine.transport.name, "websocket");

  // The default client starts on polling and upgrades: the upgrade request carries the session
  // id and must reach the node holding that session.
  const { socket: upgrader } = await client(proxy.url, "Ugo", room, { transports: ["polling", "websocket"], ...from("127.0.0.31") });
  await eventually(() => assert.equal(upgrader.io.engine.transport.name, "websocket", "Ugo upgraded to WebSocket"));

  const a = await ack(ws, "chat:send", { room, text: "from a WebSocket" });
  const b = await ack(upgrader, "chat:send", { room, text: "from an upgraded socket" });
  const c = await ack(direct, "chat:send", { room, text: "from a node directly" });
  for (const [socket, expected] of [[ws, [b, c]], [upgrader, [a, c]], [direct, [a, b]]]) {
    for (const { message } of expected) {
      assert.deepEqual(await waitFor(socket, "chat:message", { where: (m) => m.id === message.id }), [message]);
    }
  }

  const sid = upgrader.io.engine.id;
  const wsSid = ws.io.engine.id;
  await disconnect(upgrader);
  await disconnect(ws);
  // nginx logs a WebSocket when it closes: 101, on the node of the polling requests before it.
  await eventually(async () => {
    const log = await proxy.accessLog();
    const mine = log.filter((e) => e.sid === sid);
    const upgrade = mine.filter((e) => e.transport === "websocket");
    assert.equal(upgrade.length, 1, `one WebSocket request of Ugo's session: ${JSON.stringify(mine)}`);
    assert.equal(upgrade[0].status, "101");
    assert.ok(mine.some((e) => e.transport === "polling"), "polling requests before the upgrade");
    assert.equal(new Set(mine.map((e) => e.upstream)).size, 1, `the upgrade reached the session's node: ${JSON.stringify(mine)}`);
    const wsOnly = log.filter((e) => e.transport === "websocket" && e.remote === "127.0.0.30");
    assert.equal(wsOnly.length, 1, `Wanda's WebSocket logged (session ${wsSid})`);
    assert.equal(wsOnly[0].status, "101");
  });

  // The tutorial's plain WebSocket chat at /ws goes through too.
  const plain = await connectWs(proxy.url);
  const other = await connectWs(proxy.url);
  sendJson(plain, { type: "new_message", payload: "through nginx" });
  assert.equal(await nextFrame(other, { where: (t) => t.includes("through nginx") }), "Anon: through nginx");
  await assertNoFailedSocketIoRequests();
});

test("the Origin check holds through nginx: the proxy's own origin is accepted, others (a node's own included) get 403", async () => {
  const get = (origin) => fetch(proxy.url + HANDSHAKE, { headers: origin ? { Origin: origin } : {} });

  // The page's origin is nginx's (the Host nginx passes on is the one the browser asked for).
  const own = await get(proxy.url);
  assert.equal(own.status, 200);
  assert.match(await own.text(), /^0\{.*"sid"/);
  const none = await get(undefined);
  assert.equal(none.status, 200);
  await none.text();

  for (const origin of [EVIL, nodes[0].url]) {
    const res = await get(origin);
    assert.equal(res.status, 403, `a polling handshake from ${origin} through nginx`);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    await res.text();
  }

  const wsPath = "/socket.io/?EIO=4&transport=websocket";
  assert.equal(await upgradeStatus(proxy.url, wsPath, EVIL), 403);
  assert.equal(await upgradeStatus(proxy.url, wsPath, nodes[1].url), 403);
  assert.equal(await upgradeStatus(proxy.url, wsPath, proxy.url), 101);

  for (const transports of [["polling"], ["websocket"]]) {
    await assert.rejects(connect(proxy.url, { transports, extraHeaders: { Origin: EVIL } }), `${transports}: another origin cannot connect`);
    const socket = tracked(await connect(proxy.url, { transports, extraHeaders: { Origin: proxy.url }, auth: { protocol: "noom/1" } }));
    const room = roomName("nginx-origin");
    assert.equal((await ack(socket, "room:join", { room })).room.name, room);
  }
});

test("negative control: without the hash line (round-robin), long-polling breaks with \"Session ID unknown\"", { timeout: 30_000 }, async () => {
  // Not a configuration to use: it shows that the polling tests above depend on the committed
  // balancing line, and would catch its removal.
  const roundRobin = await startNginx({ backends: nodes.map((n) => n.port), balancing: "round-robin" });
  try {
    await assert.rejects(
      (async () => {
        const socket = await connect(roundRobin.url, { transports: ["polling"] });
        // Should the handshake and the first requests happen to land together, the next ones do not.
        for (let i = 0; i < 10; i++) await ack(socket, "directory:get", {});
      })(),
      "a polling client through round-robin fails",
    );
    const log = await roundRobin.accessLog();
    assert.ok(log.some((e) => e.status === "400" && e.sid), `a request with a sid refused with 400: ${JSON.stringify(log)}`);
  } finally {
    await disconnectAll();
    await roundRobin.close();
  }
});

test("a node drained behind nginx: clients that hash to it get a session on the next node, whole; its own clients stay", { timeout: 60_000 }, async (t) => {
  // Last in this file: the drained node stops once its call is over, at the end.
  const drained = nodes[2];
  const holding = roomName("nginx-drain-call");
  const { socket: inCall } = await noomClient(drained.url, "In call", holding);
  assert.equal((await ack(inCall, "call:join", { room: holding }))?.via, "sfu", "a call keeps it draining");
  drained.proc.kill("SIGUSR1");
  await eventually(async () => assert.ok((await (await fetch(`${drained.url}/readyz`)).json()).draining));
  const room = roomName("nginx-drain");
  const clients = [];
  // Twenty addresses: that none hashes to one node of three is a chance of 1 in 3,000.
  for (let i = 0; i < 20; i++) {
    const address = `127.0.0.${i + 40}`;
    const { socket } = await client(proxy.url, `From ${address}`, room, { transports: ["polling"], ...from(address) });
    clients.push(socket);
  }
  // Long-polling: a session's every request must reach the node that holds it; those that hash to
  // the drained node are refused there and passed on, to the same next node each time.
  for (const socket of clients) await ack(socket, "directory:get", {});
  const { message } = await ack(clients[0], "chat:send", { room, text: "past the drained node" });
  for (const socket of clients.slice(1)) await waitFor(socket, "chat:message", { where: (m) => m.id === message.id });
  const log = await proxy.accessLog();
  let passedOn = 0;
  for (const socket of clients) {
    const entries = log.filter((e) => e.sid === socket.io.engine.id);
    const served = new Set(entries.map((e) => e.upstream.split(", ").at(-1)));
    assert.equal(served.size, 1, `one node served session ${socket.io.engine.id}: ${JSON.stringify(entries)}`);
    assert.notEqual([...served][0], upstreamOf(drained), "not the drained node");
    assert.deepEqual(entries.filter((e) => !["101", "200"].includes(e.status)), [], "every request answered");
    if (entries.some((e) => e.upstream.includes(","))) passedOn++;
  }
  t.diagnostic(`${passedOn} of ${clients.length} sessions hashed to the drained node and were passed on`);
  assert.ok(passedOn > 0, "some addresses hash to the drained node");
  assert.ok(!(await ack(inCall, "chat:send", { room: holding, text: "still served" }))?.error, "its own client is still served");
});
