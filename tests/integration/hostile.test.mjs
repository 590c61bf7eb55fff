// Hostile clients: every event with missing, mistyped, oversized and deeply nested arguments;
// malformed Engine.IO and Socket.IO frames over a raw WebSocket; floods of connections from one
// address; a client that never reads. Each gets a clear refusal (or loses its own connection),
// and the server stays healthy for everyone else, which every test checks at its end.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startProxy } from "../support/tcp-proxy.mjs";
import { ack, connect, connectNoom, connectWs, disconnect, disconnectAll, expectNothing, mark, noomClient, pause,
  received, roomName, upgradeStatus, useServer, waitFor, withServer } from "../support/clients.mjs";
import { waitUntil } from "../support/cluster.mjs";

/** Every code an error answer may carry (docs/protocol.md, Errors). */
const CODES = new Set(["bad_request", "invalid_nickname", "invalid_room", "invalid_message", "not_in_room",
  "rate_limited", "too_many_rooms", "overloaded", "not_in_call", "peer_unavailable", "call_full", "invalid_signal"]);

/** The server still serves: a new pair of clients meets in a room and chats. */
async function assertHealthy(url) {
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  const room = roomName("healthy");
  const { socket: a } = await noomClient(url, "Ann", room);
  const { socket: b } = await noomClient(url, "Bo", room);
  const sent = await ack(a, "chat:send", { room, text: "still here" });
  assert.ok(sent.message, JSON.stringify(sent));
  const [message] = await waitFor(b, "chat:message");
  assert.equal(message.text, "still here");
  await Promise.all([disconnect(a), disconnect(b)]);
}

/** An error answer with a known code and a message. */
function assertRefusal(answer, what) {
  assert.ok(answer?.error, `${what}: expected an error, got ${JSON.stringify(answer)?.slice(0, 200)}`);
  assert.ok(CODES.has(answer.error.code), `${what}: unknown code ${answer.error.code}`);
  assert.equal(typeof answer.error.message, "string");
}

/** `depth` arrays inside each other. */
const nested = (depth) => JSON.parse("[".repeat(depth) + "]".repeat(depth));
const huge = "x".repeat(100_000);

/** The events with one argument object, and a valid-looking base for each. */
const OBJECT_EVENTS = {
  "user:rename": { nickname: "Ann" },
  "room:join": { room: "r" },
  "chat:send": { room: "r", text: "hi" },
  "call:join": { room: "r" },
  "call:media": { room: "r", audio: true, video: true, screen: false },
  "call:leave": { room: "r" },
  "rtc:signal": { room: "r", to: "x", candidate: null },
};
/** The seed's events, with positional arguments. */
const SEED_EVENTS = {
  nickname: ["Ann"],
  enter_room: ["r"],
  join_room: ["r"],
  new_message: ["hi", "r"],
  offer: [{ type: "offer", sdp: "v=0" }, "r"],
  answer: [{ type: "answer", sdp: "v=0" }, "r"],
  ice: [{ candidate: "candidate:1" }, "r"],
};

/** Bad argument lists for an event, each named. */
function badArguments(event) {
  const cases = [];
  if (event in OBJECT_EVENTS) {
    const base = OBJECT_EVENTS[event];
    cases.push(["no argument", []], ["a number", [42]], ["a string", ["text"]], ["an array", [[1, 2]]],
      ["true", [true]], ["deeply nested", [nested(1000)]], ["a nested object", [{ ...base, room: nested(200) }]]);
    for (const field of Object.keys(base)) {
      const { [field]: _, ...missing } = base;
      // The one field with a default: a call joined without media state is fine.
      if (!(event === "call:join" && field === "media")) cases.push([`${field} missing`, [missing]]);
      cases.push([`${field} a number`, [{ ...base, [field]: 7 }]], [`${field} an object`, [{ ...base, [field]: { a: 1 } }]],
        [`${field} oversized`, [{ ...base, [field]: huge }]]);
    }
  } else {
    const base = SEED_EVENTS[event];
    cases.push(["no argument", []], ["deeply nested", [nested(1000), "r"]]);
    base.forEach((_, i) => {
      const swap = (value) => base.map((v, j) => (i === j ? value : v));
      cases.push([`argument ${i} a number`, swap(1)], [`argument ${i} an array`, swap([1])],
        [`argument ${i} null`, swap(null)], [`argument ${i} oversized`, swap(huge)]);
    });
  }
  return cases;
}

describe("every event, every kind of bad argument", () => {
  const server = useServer({ args: ["--event-rate", "10000", "--chat-rate", "10000", "--chat-burst", "10000"] });

  test("each is refused with an error that says why, and nobody else hears of it", async () => {
    const room = roomName("bystanders");
    const { socket: bystander } = await noomClient(server.url, "Bystander", room);
    let refused = 0;
    const outcomes = new Map();
    for (const event of [...Object.keys(OBJECT_EVENTS), ...Object.keys(SEED_EVENTS)]) {
      // A fresh socket for each event, in the bystander's room where membership matters, so
      // that a refusal is about the arguments and nothing else.
      const socket = event in SEED_EVENTS ? await connect(server.url) : await connectNoom(server.url);
      for (const [what, args] of badArguments(event)) {
        const answer = await ack(socket, event, ...args);
        assertRefusal(answer, `${event} (${what})`);
        outcomes.set(`${event} ${what}`, answer.error.code);
        refused++;
      }
      await disconnect(socket);
    }
    console.log("# bad arguments:", JSON.stringify(Object.fromEntries(outcomes)));
    assert.ok(refused > 150, `refused ${refused}`);
    const noise = received(bystander, "participant:joined").concat(received(bystander, "chat:message"),
      received(bystander, "participant:updated"), received(bystander, "rtc:signal"));
    assert.deepEqual(noise, [], "the bystander heard nothing");
    assert.ok(bystander.connected);
    await assertHealthy(server.url);
  });

  test("an argument nested deeper than a client library can even send is refused, not a crash", async () => {
    // socket.io-client itself overflows its stack past a few thousand levels: raw frames.
    for (const depth of [100, 10_000, 60_000]) {
      const ws = await rawConnect(server.url);
      ws.send(`421["room:join",${"[".repeat(depth)}${"]".repeat(depth)}]`);
      const [answer] = await waitFor(ws, "frame", { where: (t) => t.startsWith("431") });
      assertRefusal(JSON.parse(answer.slice(3))[0], `depth ${depth}`);
      await disconnect(ws);
    }
    await assertHealthy(server.url);
  });
});

/** A raw WebSocket speaking Engine.IO by hand: it has received the open packet. */
async function rawSocketIo(url) {
  const ws = await connectWs(url, { settle: false, path: "/socket.io/?EIO=4&transport=websocket" });
  const [open] = await waitFor(ws, "frame", { where: (t) => t.startsWith("0{") });
  assert.ok(JSON.parse(open.slice(1)).sid);
  return ws;
}

/** Connects the raw socket to the main namespace as a Noom client. */
async function rawConnect(url) {
  const ws = await rawSocketIo(url);
  ws.send('40{"protocol":"noom/1"}');
  await waitFor(ws, "frame", { where: (t) => t.startsWith("40") });
  return ws;
}

/** Whether a raw socket still answers: an acknowledged `directory:get` comes back. */
async function answers(ws) {
  if (ws.readyState !== ws.OPEN) return false;
  const at = mark(ws);
  ws.send('4299["directory:get"]');
  try {
    await waitFor(ws, "frame", { where: (t) => t.startsWith("4399"), after: at, timeout: 2000 });
    return true;
  } catch {
    return false;
  }
}

describe("malformed frames over a raw WebSocket", () => {
  const server = useServer({});

  test("each is ignored or closes its own connection; nothing else is touched", async () => {
    const room = roomName("raw");
    const { socket: bystander } = await noomClient(server.url, "Bystander", room);
    const frames = [
      "", "x", "9", "4", "42", "42[", "42[]", "42[1]", "42{}", '42["room:join"', '42[null,{"room":"r"}]',
      '4-1["directory:get"]', '4299999999999999999999999["directory:get"]', '42/nope,["directory:get"]',
      "40/nope,", "41", "43[]", "4399[]", "46[]", "44{}", '451-["chat:send",{"_placeholder":true,"num":0}]',
      '452-["chat:send",{"_placeholder":true,"num":7}]', '459999999999-["x"]', "2probe", "3", "5", "6", "1",
      "\u0000\uffff", `42["chat:send",{"room":"${room}","text":"${"y".repeat(700_000)}"}]`,
    ];
    const outcome = {};
    // Whether the server closes a connection for a frame, it does so at once: a pause, then the
    // question.
    for (const frame of frames) {
      const ws = await rawConnect(server.url);
      ws.send(frame);
      await pause(200);
      outcome[frame.slice(0, 40)] = (await answers(ws)) ? "ignored" : "closed";
      await disconnect(ws);
    }
    // Binary frames where text is expected, and a binary attachment nobody announced.
    for (const bytes of [Buffer.from([0xff, 0x00, 0x42]), Buffer.alloc(0), Buffer.alloc(700_000, 7)]) {
      const ws = await rawConnect(server.url);
      ws.send(bytes);
      await pause(200);
      outcome[`binary ${bytes.length}`] = (await answers(ws)) ? "ignored" : "closed";
      await disconnect(ws);
    }
    // Before the namespace connect: garbage where the handshake should be.
    for (const frame of ["42[\"room:join\",{\"room\":\"r\"}]", "40{", "40[1,2]", `40${JSON.stringify({ protocol: huge })}`]) {
      const ws = await rawSocketIo(server.url);
      ws.send(frame);
      await pause(100);
      outcome[`first ${frame.slice(0, 30)}`] = ws.readyState === ws.OPEN ? "open" : "closed";
      await disconnect(ws);
    }
    console.log("# raw frames:", JSON.stringify(outcome));
    assert.equal(outcome["x"], "closed", "an unreadable Engine.IO packet ends the connection");
    await expectNothing([bystander], ["participant:joined", "chat:message"]);
    assert.ok(bystander.connected);
    await assertHealthy(server.url);
  });
});

describe("connections from one address", () => {
  test("past --max-connections-per-address, new ones are refused; others' and freed places are not", async () => {
    await withServer({ args: ["--max-connections-per-address", "3", "--connection-rate-per-address", "0"] }, async (server) => {
      const first = await Promise.all([1, 2, 3].map(() => connectNoom(server.url)));
      await assert.rejects(connectNoom(server.url), "a fourth is refused");
      const polling = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(polling.status, 429, "over long-polling too");
      assert.match(await polling.text(), /too many connections from your address/);
      assert.equal(await upgradeStatus(server.url, "/ws"), 429, "and the plain /ws chat");
      // Another address, behind a trusted proxy (loopback is one by default).
      const elsewhere = await connectNoom(server.url, { extraHeaders: { "x-forwarded-for": "198.51.100.7" } });
      assert.ok(elsewhere.connected);
      await disconnect(first[0]);
      await waitUntil(async () => (await connectNoom(server.url).then((s) => s, () => null)) !== null,
        { what: "a place freed is taken again" });
      // A /ws connection holds a place too, until it closes.
      await disconnect(first[1]);
      await waitUntil(async () => (await upgradeStatus(server.url, "/ws")) === 101, { what: "a /ws connection fits" });
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /noom_connections_refused_total\{reason="too_many_open"\} [1-9]/);
    });
  });

  test("past --connection-rate-per-address, new ones are refused until the rate recovers", async () => {
    // 0.2 a second: a burst of one, then one each 5 s.
    await withServer({ args: ["--connection-rate-per-address", "0.2"] }, async (server) => {
      const first = await connectNoom(server.url);
      await disconnect(first);
      await assert.rejects(connectNoom(server.url), "a second at once is refused");
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /noom_connections_refused_total\{reason="too_fast"\} [1-9]/);
    });
  });

  test("a forwarded address counts only from a trusted proxy", async () => {
    await withServer({ args: ["--max-connections-per-address", "2", "--trusted-proxies", ""] }, async (server) => {
      const spoof = (n) => connectNoom(server.url, { extraHeaders: { "x-forwarded-for": `203.0.113.${n}` } });
      await spoof(1);
      await spoof(2);
      await assert.rejects(spoof(3), "a header cannot make one address many");
    });
  });
});

test("a flood of events past --event-rate is refused and does not slow the others", async () => {
  await withServer({ args: ["--event-rate", "5"] }, async (server) => {
    const room = roomName("flood");
    const { socket: flooder } = await noomClient(server.url, "Flooder", room);
    const { socket: calm } = await noomClient(server.url, "Calm", room);
    const answers = await Promise.all(Array.from({ length: 50 }, () => ack(flooder, "directory:get")));
    const limited = answers.filter((a) => a?.error?.code === "rate_limited").length;
    assert.ok(limited >= 30, `refused ${limited} of 50 (a burst of 10 passes)`);
    const sent = await ack(calm, "chat:send", { room, text: "unbothered" });
    assert.ok(sent.message);
  });
});

/** The server's resident memory, in bytes. */
function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
}

test("a client that never reads costs bounded memory, delays nobody, and is dropped at its ping timeout", { timeout: 120_000 }, async () => {
  await withServer({
    args: ["--ping-interval", "2", "--ping-timeout", "2", "--chat-rate", "100000", "--chat-burst", "100000", "--event-rate", "100000"],
  }, async (server) => {
    const room = roomName("slow");
    // The slow client joins, then stops reading: what the server sends it piles up.
    const slow = await rawConnect(server.url);
    slow.send(`420["room:join",{"room":"${room}","nickname":"Slow"}]`);
    await waitFor(slow, "frame", { where: (t) => t.startsWith("430") });
    const { socket: talker } = await noomClient(server.url, "Talker", room);
    const { socket: listener } = await noomClient(server.url, "Listener", room);
    slow._socket.pause();
    const before = rss(server.proc.pid);
    const text = "z".repeat(1000);
    const total = 6000;
    // In batches within the events one socket may have waiting.
    for (let sent = 0; sent < total; sent += 50) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => ack(talker, "chat:send", { room, text })));
      assert.ok(answers.every((a) => a.message), JSON.stringify(answers.find((a) => !a.message)));
    }
    await waitUntil(() => received(listener, "chat:message").length === total, { what: "the listener gets every message", timeout: 30000 });
    const grown = rss(server.proc.pid) - before;
    console.log(`# ${total} messages of 1 KB to a client that does not read: server memory +${(grown / 1e6).toFixed(1)} MB`);
    assert.ok(grown < 64e6, `memory grew by ${grown} bytes`);
    // It answers no ping: gone within the ping interval and timeout, and the others see it.
    const [left] = await waitFor(listener, "participant:left", { timeout: 20000 });
    assert.equal(left.participant.nickname, "Slow");
    await assertHealthy(server.url);
  });
});

test("every answer carries the security headers", async () => {
  await withServer({ args: ["--admin-token", "a-token-for-the-headers-test"] }, async (server) => {
    const page = await (await fetch(server.url)).text();
    const asset = page.match(/src="(\/assets\/[^"]+)"/)[1];
    for (const path of ["/", "/r/some-room", "/admin", "/no-such-page", asset, "/healthz", "/metrics",
      "/socket.io/socket.io.js", "/admin/api/state", "/socket.io/?EIO=4&transport=polling"]) {
      const res = await fetch(server.url + path);
      const h = res.headers;
      assert.match(h.get("content-security-policy") ?? "", /default-src 'self'.*frame-ancestors 'none'/, path);
      assert.equal(h.get("x-content-type-options"), "nosniff", path);
      assert.equal(h.get("referrer-policy"), "no-referrer", path);
      assert.equal(h.get("x-frame-options"), "DENY", path);
      assert.match(h.get("permissions-policy") ?? "", /camera=\(self\)/, path);
      assert.equal(h.get("strict-transport-security"), null, `${path}: no HSTS over plain HTTP`);
      await res.arrayBuffer();
    }
  });
});

test("a client whose network goes silent without a close is gone for the others within the ping timeout", { timeout: 60_000 }, async () => {
  await withServer({ args: ["--ping-interval", "2", "--ping-timeout", "2"] }, async (server) => {
    const proxy = await startProxy(server.port);
    try {
      const room = roomName("cut");
      const { socket: cut } = await noomClient(proxy.url, "Cut", room);
      const { socket: other } = await noomClient(server.url, "Other", room);
      const id = cut.person;
      const at = Date.now();
      proxy.blackhole();
      const [left] = await waitFor(other, "participant:left", { timeout: 20000 });
      assert.equal(left.participant.id, id);
      console.log(`# presence of a silent client gone after ${Date.now() - at} ms (ping interval 2 s + timeout 2 s)`);
    } finally {
      await proxy.stop();
    }
  });
});
