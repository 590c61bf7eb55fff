// Attacks found in an adversarial review, each replayed against the real server: what an attacker
// tries, and that it is refused while everyone else keeps working.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import WebSocket from "ws";
import { ack, connectNoom, expectNothing, noomClient, pause, received, roomName, upgradeStatus, useServer, waitFor, withServer }
  from "../support/clients.mjs";

describe("session takeover", () => {
  const server = useServer();

  for (const transport of ["polling", "websocket"]) {
    test(`the id a room shows of someone is no transport credential (${transport})`, async () => {
      const room = roomName("takeover");
      const victim = await connectNoom(server.url, { transports: [transport], label: `victim (${transport})` });
      await ack(victim, "room:join", { room, nickname: "Victim" });
      const { socket: attacker, joined } = await noomClient(server.url, "Mallory", room);
      const published = joined.participants.find((p) => p.nickname === "Victim").id;
      assert.equal(published, victim.person);
      assert.notEqual(published, victim.io.engine.id, "the published id is not the Engine.IO session id");
      assert.notEqual(published, victim.id, "nor the Socket.IO socket id");

      const session = `${server.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(published)}`;
      // Posting as the victim.
      const post = await fetch(session, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: `42${JSON.stringify(["chat:send", { room, text: "sent as the victim" }])}`,
      });
      assert.equal(post.status, 400, "POST with a published id");
      // Reading (and so stealing) the victim's pushes.
      const get = await fetch(session);
      assert.equal(get.status, 400, "GET with a published id");
      // Upgrading the victim's session to a WebSocket of the attacker's.
      const upgrade = `/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(published)}`;
      assert.notEqual(await upgradeStatus(server.url, upgrade), 101, "WebSocket upgrade with a published id");

      // Nothing was said in the victim's name, and the victim still hears the room.
      await expectNothing(attacker, "chat:message");
      await ack(attacker, "chat:send", { room, text: "hello" });
      assert.equal((await waitFor(victim, "chat:message"))[0].text, "hello");
      assert.ok(victim.connected);
    });
  }

  test("ids in signals and chat are the same person ids, never session ids", async () => {
    const room = roomName("ids");
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    await ack(alice, "call:join", { room });
    await ack(bob, "call:join", { room });
    const { message } = await ack(alice, "chat:send", { room, text: "hi" });
    assert.equal(message.sender.id, alice.person);
    await ack(alice, "rtc:signal", { room, to: bob.person, candidate: null });
    const [signal] = await waitFor(bob, "rtc:signal");
    assert.equal(signal.from, alice.person);
    // A session id names nobody.
    const refused = await ack(alice, "rtc:signal", { room, to: bob.io.engine.id, candidate: null });
    assert.equal(refused.error?.code, "peer_unavailable");
  });
});

/** Opens a raw TCP connection from `from` (a loopback address); resolves once connected. */
function rawConnection(port, { from = "127.0.0.1", secure = false } = {}) {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port, localAddress: from };
    const socket = secure
      ? tls.connect({ ...options, rejectUnauthorized: false, servername: "localhost" }, () => resolve(socket))
      : net.connect(options, () => resolve(socket));
    socket.closedAt = null;
    socket.received = "";
    socket.on("data", (d) => { socket.received += d; });
    socket.on("error", () => {});
    socket.on("close", () => { socket.closedAt = Date.now(); });
    socket.once("error", reject);
  });
}

/** Resolves once `socket` is closed by the server; rejects after `within` ms. */
function closedWithin(socket, within, what) {
  return new Promise((resolve, reject) => {
    if (socket.closedAt !== null) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what}: still open after ${within} ms`)), within);
    socket.on("close", () => { clearTimeout(timer); resolve(); });
  });
}

/** The number of file descriptors a process holds. */
const descriptors = (pid) => readdirSync(`/proc/${pid}/fd`).length;

describe("idle and slow connections", () => {
  // Header-read timeout 10 s (docs/reliability.md); a margin for a loaded machine.
  const WITHIN = 20_000;

  test("idle, slow-header and idle keep-alive connections are closed; too large headers refused; others unaffected", { timeout: 60_000 }, async () => {
    await withServer({ args: ["--trusted-proxies", "", "--max-connections-per-address", "40"] }, async (server) => {
      const idle = await rawConnection(server.port);
      const slow = await rawConnection(server.port);
      slow.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
      const keptAlive = await rawConnection(server.port);
      keptAlive.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
      const huge = await rawConnection(server.port);
      huge.write(`GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"x".repeat(64 * 1024)}\r\n\r\n`);
      await closedWithin(huge, WITHIN, "a request with 64 KiB of headers");
      assert.match(huge.received, /^HTTP\/1\.1 431/, "answered 431 Request Header Fields Too Large");

      // Meanwhile one address holds all it may: its next connections are closed at once, and
      // everyone else is served.
      const flood = [];
      for (let i = 0; i < 45; i++) flood.push(await rawConnection(server.port, { from: "127.0.0.3" }).catch(() => null));
      await closedWithin(flood.at(-1), 2000, "a connection past the per-address limit");
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      const { socket: visitor } = await noomClient(server.url, "Visitor", roomName("calm"));
      assert.ok(visitor.connected);

      await Promise.all([
        closedWithin(idle, WITHIN, "a connection that never sends"),
        closedWithin(slow, WITHIN, "a request whose headers never end"),
        closedWithin(keptAlive, WITHIN, "a kept-alive connection left idle"),
      ]);
      assert.match(keptAlive.received, /^HTTP\/1\.1 200/, "the kept-alive connection was answered first");
      for (const s of flood) s?.destroy();
    });
  });

  test("over HTTPS too: a connection idle after its TLS handshake is closed", { timeout: 60_000 }, async () => {
    await withServer({ args: ["--tls-self-signed", "localhost"] }, async (server) => {
      const idle = await rawConnection(server.port, { secure: true });
      await closedWithin(idle, WITHIN, "a TLS connection that never sends a request");
    });
  });

  test("a thousand idle connections from one address leave the server its descriptors", { timeout: 90_000 }, async () => {
    await withServer({ args: ["--trusted-proxies", "", "--max-connections-per-address", "100"] }, async (server) => {
      const before = descriptors(server.proc.pid);
      const opened = [];
      for (let i = 0; i < 1000; i++) opened.push(rawConnection(server.port, { from: "127.0.0.4" }).catch(() => null));
      const sockets = await Promise.all(opened);
      await pause(500);
      const held = descriptors(server.proc.pid) - before;
      assert.ok(held <= 100 + 10, `the server holds ${held} more descriptors (at most 100 connections of one address)`);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      for (const s of sockets) s?.destroy();
    });
  });
});

/** The server's resident memory, in bytes. */
function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
}

/** A raw Socket.IO connection over WebSocket, Noom-flavoured, that the test can stop reading. */
async function rawNoom(url) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.on("error", () => {});
  const connected = new Promise((resolve) => ws.on("message", (data) => String(data).startsWith("40") && resolve()));
  ws.send('40{"protocol":"noom/1"}');
  await connected;
  return ws;
}

/** The largest message: 2,000 characters of four bytes each. */
const FULL = "😀".repeat(2000);

describe("clients that do not read", () => {
  test("entering rooms with full histories again and again holds little for a client that never reads", { timeout: 120_000 }, async () => {
    await withServer({ args: ["--chat-rate", "1000", "--chat-burst", "1000", "--event-rate", "1000"] }, async (server) => {
      const rooms = [roomName("full-a"), roomName("full-b")];
      const keepers = [];
      for (const room of rooms) {
        const { socket } = await noomClient(server.url, "Keeper", room);
        for (let i = 0; i < 50; i++) await ack(socket, "chat:send", { room, text: FULL });
        keepers.push(socket);
      }
      const { joined } = await noomClient(server.url, "Reader", rooms[0]);
      const answerBytes = Buffer.byteLength(JSON.stringify(joined));
      assert.ok(answerBytes > 350_000, `an entry answer is ${answerBytes} bytes`);

      const before = rss(server.proc.pid);
      const attackers = await Promise.all([1, 2, 3, 4].map(() => rawNoom(server.url)));
      for (const ws of attackers) ws._socket.pause();
      // Each asks to enter the two rooms in turn, 500 times: before any bound, each answer
      // (about 400 KB) waited in the server for a reader that never came.
      for (let i = 0; i < 500; i++) {
        for (const ws of attackers) ws.send(`42${i}${JSON.stringify(["room:join", { room: rooms[i % 2] }])}`);
        if (i % 50 === 49) await pause(100);
      }
      await pause(2000);
      const grown = rss(server.proc.pid) - before;
      console.log(`# 4 non-reading clients asking for 2 × 400 KB histories 500 times: server memory +${(grown / 1e6).toFixed(1)} MB`);
      assert.ok(grown < 48e6, `memory grew by ${(grown / 1e6).toFixed(1)} MB (documented bound: docs/reliability.md)`);

      // Everyone else is served.
      const sent = await ack(keepers[0], "chat:send", { room: rooms[0], text: "still here" });
      assert.ok(sent.message);
      for (const ws of attackers) ws.terminate();
    });
  });

  test("a client that stops reading in a busy room is closed once what waits for it passes its bound; the room goes on", { timeout: 120_000 }, async () => {
    await withServer({ args: ["--chat-rate", "1000", "--chat-burst", "1000", "--event-rate", "1000"] }, async (server) => {
      const room = roomName("busy");
      const { socket: keeper } = await noomClient(server.url, "Keeper", room);
      const { socket: reader } = await noomClient(server.url, "Reader", room);
      const ws = await rawNoom(server.url);
      ws.send(`420${JSON.stringify(["room:join", { room, nickname: "Sleeper" }])}`);
      const [{ participant: sleeper }] = await waitFor(keeper, "participant:joined", { where: (e) => e.participant.nickname === "Sleeper" });
      ws._socket.pause();
      const before = rss(server.proc.pid);
      // 40 MB of chat: past what the kernel's buffers take for the sleeper, then past its bound;
      // sent as fast as the reader reads.
      const sends = 5000;
      const readerHas = async (n) => {
        for (let waited = 0; received(reader, "chat:message").length < n && waited < 100; waited++) await pause(100);
        assert.equal(received(reader, "chat:message").length, n, "the reader gets every message");
      };
      for (let i = 0; i < sends; i += 50) {
        await Promise.all(Array.from({ length: 50 }, () => ack(keeper, "chat:send", { room, text: FULL })));
        await readerHas(i + 50);
      }
      const [left] = await waitFor(keeper, "participant:left", { where: (e) => e.participant.id === sleeper.id });
      assert.equal(left.count, 2, "the sleeper was taken out of the room");
      const grown = rss(server.proc.pid) - before;
      console.log(`# a non-reading client sent ${sends} pushes of 8 KB: closed; server memory +${(grown / 1e6).toFixed(1)} MB`);
      assert.ok(grown < 24e6, `memory grew by ${(grown / 1e6).toFixed(1)} MB (bound per socket: 4 MiB, docs/reliability.md)`);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /noom_connections_behind_total 1\n/);
      // The reader, who read, got everything and is still in the room.
      assert.ok(reader.connected);
      const sent = await ack(reader, "chat:send", { room, text: "still here" });
      assert.ok(sent.message);
      ws.terminate();
    });
  });

  test("entering a room one is in answers without its history again", async () => {
    await withServer({}, async (server) => {
      const room = roomName("again");
      const { socket } = await noomClient(server.url, "Ann", room);
      await ack(socket, "chat:send", { room, text: "remember me" });
      const { socket: bo, joined } = await noomClient(server.url, "Bo", room);
      assert.deepEqual(joined.history.map((m) => m.text), ["remember me"]);
      const again = await ack(bo, "room:join", { room });
      assert.deepEqual(again.history, [], "no history for one already in the room");
      assert.deepEqual(again.participants.map((p) => p.nickname), ["Ann", "Bo"]);
    });
  });
});

/** A plain HTTP GET with the headers given (`Host` included); resolves with status and headers. */
function get(port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode, headers: res.headers });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("host names and origins", () => {
  const server = useServer({ args: ["--public-url", "http://noom.test"] });

  test("a page under another name (DNS rebinding) is refused; the server's names and health checks are served", async () => {
    const evil = `evil.example:${server.port}`;
    for (const path of ["/", "/r/room", "/socket.io/?EIO=4&transport=polling", "/ws", "/metrics"]) {
      const res = await get(server.port, path, { Host: evil, Origin: `http://${evil}` });
      assert.equal(res.status, 421, `${path} for ${evil}`);
    }
    assert.equal((await get(server.port, "/healthz", { Host: evil })).status, 200, "health checks by any name");
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, "noom.test", `noom.test:${server.port}`]) {
      assert.equal((await get(server.port, "/", { Host: host })).status, 200, host);
    }
  });

  test("the plain /ws chat refuses other origins, as Socket.IO does", async () => {
    assert.equal(await upgradeStatus(server.url, "/ws", "http://evil.example"), 403);
    assert.equal(await upgradeStatus(server.url, "/ws", server.url), 101);
    assert.equal(await upgradeStatus(server.url, "/ws"), 101, "no Origin: not a browser");
  });

  test("an origin is the page's scheme, host and port", async () => {
    const handshake = "/socket.io/?EIO=4&transport=polling";
    const host = `localhost:${server.port}`;
    assert.equal((await get(server.port, handshake, { Host: host, Origin: `http://${host}` })).status, 200);
    assert.equal((await get(server.port, handshake, { Host: host, Origin: `https://${host}` })).status, 403, "another scheme");
    assert.equal((await get(server.port, handshake, { Host: host, Origin: "http://localhost:1" })).status, 403, "another port");
  });
});

test("the HTTP-to-HTTPS redirect goes to the public name, never to the name a request gives", async () => {
  await withServer({ args: ["--tls-self-signed", "localhost", "--http-port", "0", "--public-url", "https://meet.example.com"] }, async (server) => {
    const port = Number(server.output().match(/redirects http:\/\/[^\s]+:(\d+) to HTTPS/)[1]);
    const res = await get(port, "/r/x?y=1", { Host: "evil.example" });
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, "https://meet.example.com/r/x?y=1");
  });
  await withServer({ args: ["--tls-self-signed", "localhost", "--http-port", "0"] }, async (server) => {
    const port = Number(server.output().match(/redirects http:\/\/[^\s]+:(\d+) to HTTPS/)[1]);
    assert.equal((await get(port, "/", { Host: "evil.example" })).status, 421, "a name the server does not answer for");
    const res = await get(port, "/", { Host: `localhost:${port}` });
    assert.equal(res.headers.location, `https://localhost:${server.port}/`);
  });
});

test("/metrics answers this machine, and others only with the admin token", async () => {
  const remote = { "x-forwarded-for": "198.51.100.9" }; // through the local proxy, from elsewhere
  await withServer({}, async (server) => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200, "from this machine");
    const res = await fetch(`${server.url}/metrics`, { headers: remote });
    assert.equal(res.status, 404);
    assert.match((await res.json()).error.message, /this machine only/);
  });
  const token = "metrics-token-0123456789abcdef";
  await withServer({ args: ["--admin-token", token] }, async (server) => {
    assert.equal((await fetch(`${server.url}/metrics`, { headers: remote })).status, 401);
    const res = await fetch(`${server.url}/metrics`, { headers: { ...remote, authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /noom_sockets/);
  });
});

test("wrong admin tokens from one address are slowed down and logged; other addresses are not", async () => {
  const token = "guarded-token-0123456789abcdef";
  await withServer({ args: ["--admin-token", token], env: { RUST_LOG: "warn" } }, async (server) => {
    const from = (ip, bearer) => fetch(`${server.url}/admin/api/state`, { headers: { "x-forwarded-for": ip, authorization: `Bearer ${bearer}` } });
    const statuses = [];
    for (let i = 0; i < 15; i++) statuses.push((await from("198.51.100.20", `guess-${i}-0123456789abcdef`)).status);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401), "ten wrong tokens are answered");
    assert.deepEqual(statuses.slice(10), Array(5).fill(429), "then the address must wait");
    const slowed = await from("198.51.100.20", token);
    assert.equal(slowed.status, 429, "even the right token waits: guessing is not worth it");
    assert.ok(slowed.headers.get("retry-after"));
    assert.equal((await from("198.51.100.21", token)).status, 200, "another address is not slowed");
    assert.match(server.output(), /wrong token.*198\.51\.100\.20|198\.51\.100\.20.*wrong token/);
  });
});

test("rooms entered one after another from one address are slowed down (guessing names); other addresses are not", async () => {
  await withServer({ args: ["--event-rate", "1000"] }, async (server) => {
    const from = (ip) => connectNoom(server.url, { extraHeaders: { "x-forwarded-for": ip } });
    const guessers = await Promise.all([1, 2, 3].map(() => from("198.51.100.30")));
    const answers = [];
    for (let i = 0; i < 60; i++) {
      answers.push(...(await Promise.all(guessers.map((g, k) => ack(g, "room:join", { room: `guess-${k}-${i}` })))));
    }
    const refused = answers.filter((a) => a.error?.code === "rate_limited").length;
    assert.ok(refused >= 40, `${refused} of 180 entries refused across the address's sockets (a burst of 120 passes)`);
    const { joined } = await noomClient(server.url, "Neighbour", roomName("calm"), { extraHeaders: { "x-forwarded-for": "198.51.100.31" } });
    assert.equal(joined.room.count, 1, "another address enters");
  });
});

test("TURN credentials last minutes, come only with a call, and are renewed while in it", { timeout: 60_000 }, async () => {
  const args = ["--turn-urls", "turn:127.0.0.1:3478", "--turn-secret", "a-shared-secret-0123", "--turn-ttl", "60"];
  await withServer({ args }, async (server) => {
    const room = roomName("relay");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const { socket: bo } = await noomClient(server.url, "Bo", room);
    const expiry = (servers) => Number(servers.find((s) => s.username).username.split(":")[0]);
    const joined = await ack(ann, "call:join", { room });
    const first = expiry(joined.iceServers);
    const now = Date.now() / 1000;
    assert.ok(first > now + 50 && first <= now + 61, `valid for --turn-ttl: ${first - now} s`);
    await ack(bo, "call:join", { room });
    await ack(bo, "call:leave", { room });
    // Half the lifetime later, the one in the call has new ones; the one who left has none.
    const [renewed] = await waitFor(ann, "call:ice", { timeout: 45_000 });
    assert.equal(renewed.room, room);
    assert.ok(expiry(renewed.iceServers) > first, "a later expiry");
    assert.equal(renewed.iceServers.find((s) => s.username).username.split(":")[1], ann.person);
    await expectNothing(bo, "call:ice", { wait: 0 });
  });
});
