// Watching a node: /readyz, /metrics (every metric moves when its event happens) and JSON logs.
import { describe, test } from "node:test";
import http from "node:http";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { noomBin, startServer, useServer } from "../support/server.mjs";
import { startRedis } from "../support/redis.mjs";
import { waitUntil } from "../support/cluster.mjs";
import { ack, connectNoom, disconnect, disconnectAll, noomClient, roomName, waitFor } from "../support/clients.mjs";
import { SDP } from "../support/signals.mjs";
import { freePort } from "../support/ports.mjs";

/** The samples of a Prometheus text page: `name{labels}` to value. */
async function scrape(url) {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const samples = new Map();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    const value = Number(line.slice(at + 1));
    assert.ok(Number.isFinite(value), `a number: ${line}`);
    samples.set(line.slice(0, at), value);
  }
  return samples;
}

/** How soon every node says it is not ready once Redis stops answering ("within a few seconds"). */
const READY_BOUND = 5000;

async function readyz(url) {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.json() };
}

describe("metrics", () => {
  const server = useServer({ args: ["--call-size", "2"] }, { cleanup: disconnectAll });

  test("every metric moves when its event happens", async () => {
    const before = await scrape(server.url);
    for (const name of ["noom_sockets", "noom_connections_total", "noom_rooms", "noom_participants", "noom_calls",
      "noom_call_participants", "noom_chat_messages_total", "noom_signals_relayed_total", "process_cpu_seconds_total",
      "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]) {
      assert.ok(before.has(name), `${name} is reported`);
    }
    assert.ok(!before.has("noom_redis_up"), "no cluster figures for a node alone");
    const delta = async (name, by, what) => {
      await waitUntil(async () => (await scrape(server.url)).get(name) === before.get(name) + by, { what: `${name} ${what}` });
    };

    const room = roomName("metrics");
    const { socket: ann } = await noomClient(server.url, "Ann", room);
    const { socket: bo } = await noomClient(server.url, "Bo", room);
    await delta("noom_sockets", 2, "counts two connections");
    await delta("noom_connections_total", 2, "counts two accepted");
    await delta("noom_rooms", 1, "counts the room");
    await delta("noom_participants", 2, "counts two people in rooms");

    await ack(ann, "chat:send", { room, text: "hello" });
    await delta("noom_chat_messages_total", 1, "counts the message");

    await ack(ann, "call:join", { room });
    await ack(bo, "call:join", { room });
    await delta("noom_calls", 1, "counts the call");
    await delta("noom_call_participants", 2, "counts two in the call");
    const res = await ack(ann, "rtc:signal", { room, to: bo.person, description: { type: "offer", sdp: SDP } });
    assert.deepEqual(res, {});
    await waitFor(bo, "rtc:signal");
    await delta("noom_signals_relayed_total", 1, "counts the relayed signal");

    const rejected = (reason) => `noom_rejected_total{reason="${reason}"}`;
    assert.equal((await ack(ann, "chat:send", { room, text: "" })).error.code, "invalid_message");
    await delta(rejected("invalid_message"), 1, "counts the empty message");
    const { socket: cy } = await noomClient(server.url, "Cy", room);
    assert.equal((await ack(cy, "call:join", { room })).error.code, "call_full");
    await delta(rejected("call_full"), 1, "counts the full call");
    assert.equal((await ack(cy, "no_such_event", {})).error.code, "bad_request");
    await delta(rejected("bad_request"), 1, "counts the unknown event");

    await disconnect(cy);
    await disconnect(bo);
    await delta("noom_sockets", 1, "drops with disconnections");
    await delta("noom_call_participants", 1, "drops when someone in the call leaves");
    await delta("noom_calls", 1, "keeps the call of the one left in it");
    await delta("noom_connections_total", 3, "keeps counting accepted connections");
  });
});

describe("readiness", () => {
  test("a node alone is ready, and alive", async () => {
    const node = await startServer();
    try {
      assert.deepEqual(await readyz(node.url), { status: 200, body: { ready: true, redis: "off", draining: false } });
    } finally {
      await node.stop();
    }
  });

  test("a node whose Redis is unreachable is alive but not ready, and ready once Redis is up", async () => {
    const port = await freePort(); // nothing listens there
    const node = await startServer({ args: ["--redis-url", `redis://127.0.0.1:${port}`] });
    try {
      assert.deepEqual(await readyz(node.url), { status: 503, body: { ready: false, redis: "down", draining: false } });
      assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
      assert.equal((await scrape(node.url)).get("noom_redis_up"), 0);
    } finally {
      await node.stop();
    }
    const redis = await startRedis();
    const linked = await startServer({ args: ["--redis-url", redis.url] });
    try {
      await waitUntil(async () => (await readyz(linked.url)).status === 200, { what: "ready once linked" });
      assert.deepEqual((await readyz(linked.url)).body, { ready: true, redis: "up", draining: false });
      assert.equal((await scrape(linked.url)).get("noom_redis_up"), 1);
    } finally {
      await linked.stop();
      await redis.close();
    }
  });
});

describe("readiness with Redis over TLS, and frozen", () => {
  test("rediss://: the Redis's certificate is checked, against --redis-ca or else the system's authorities", async () => {
    const redis = await startRedis({ tls: true });
    const trusting = await startServer({ args: ["--redis-url", redis.url, "--redis-ca", redis.ca], env: { RUST_LOG: "info" } });
    const doubting = await startServer({ args: ["--redis-url", redis.url], env: { RUST_LOG: "info" } });
    try {
      await waitUntil(async () => (await readyz(trusting.url)).status === 200, { what: "linked over TLS" });
      assert.deepEqual((await readyz(trusting.url)).body, { ready: true, redis: "up", draining: false });
      // The authority is not one the system trusts: no link, and the log says why.
      await waitUntil(() => /Redis unreachable.*(certificate|UnknownIssuer)/i.test(doubting.output()), { what: "the refusal" });
      assert.deepEqual(await readyz(doubting.url), { status: 503, body: { ready: false, redis: "down", draining: false } });
    } finally {
      await trusting.stop();
      await doubting.stop();
      await redis.close();
    }
  });

  test("Redis frozen: every node says it is not ready within a few seconds, and ready again once Redis answers", { timeout: 60000 }, async (t) => {
    const redis = await startRedis();
    const nodes = [await startServer({ args: ["--redis-url", redis.url] }), await startServer({ args: ["--redis-url", redis.url] })];
    try {
      for (const node of nodes) await waitUntil(async () => (await readyz(node.url)).status === 200, { what: "ready" });
      const frozenAt = Date.now();
      redis.freeze();
      for (const node of nodes) {
        await waitUntil(async () => (await readyz(node.url)).status === 503, { what: "not ready", timeout: READY_BOUND });
        t.diagnostic(`a node not ready ${Date.now() - frozenAt} ms after Redis froze`);
      }
      redis.thaw();
      for (const node of nodes) await waitUntil(async () => (await readyz(node.url)).status === 200, { what: "ready again", timeout: 10000 });
    } finally {
      for (const node of nodes) await node.stop();
      await redis.close();
    }
  });
});

describe("versions", () => {
  test("/metrics and --version name the build: version and source revision", async () => {
    const node = await startServer();
    try {
      const build = [...(await scrape(node.url)).entries()].find(([name]) => name.startsWith("noom_build_info{"));
      assert.ok(build, "noom_build_info is reported");
      assert.match(build[0], /version="\d+\.\d+\.\d+",revision="[0-9a-f]{7,}|unknown",node="[\w.-]+"/);
      assert.equal(build[1], 1);
      const version = spawnSync(noomBin, ["--version"], { encoding: "utf8" }).stdout.trim();
      assert.match(version, /^noom \d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)$/);
      assert.ok(build[0].includes(`revision="${version.match(/\((.*)\)/)[1]}"`), "the same revision");
    } finally {
      await node.stop();
    }
  });

  test("a node of another protocol version on the same Redis is not heard, and the log says so once", async () => {
    const redis = await startRedis();
    const node = await startServer({ args: ["--redis-url", redis.url, "--node-name", "current"] });
    try {
      await waitUntil(async () => (await readyz(node.url)).status === 200, { what: "linked" });
      const publish = (op) => spawnSync("redis-cli", ["-p", String(redis.port), "PUBLISH", "noom#state", JSON.stringify(op)]);
      for (let i = 0; i < 3; i++) {
        publish({ from: "older-abc123", op: "heartbeat" }); // before versions were said
        publish({ from: "newer-def456", v: 999, op: "heartbeat" });
      }
      await waitUntil(() => (node.output().match(/a node of another version shares this Redis/g) ?? []).length >= 2, { what: "the error" });
      assert.equal(node.output().match(/a node of another version shares this Redis/g).length, 2, "once for each node");
      assert.match(node.output(), /node="?older-abc123/);
      assert.equal((await scrape(node.url)).get("noom_cluster_nodes"), 0, "neither counts as a node of the cluster");
    } finally {
      await node.stop();
      await redis.close();
    }
  });
});

describe("logs", () => {
  test("--log-format json writes one JSON object a line", async () => {
    const node = await startServer({ args: ["--log-format", "json"], env: { RUST_LOG: "info" } });
    const socket = await connectNoom(node.url);
    await waitFor(socket, "directory");
    socket.close();
    await node.stop();
    const lines = node.output().split("\n").filter((l) => l.startsWith("{"));
    assert.ok(lines.length >= 2, `some log lines:\n${node.output()}`);
    for (const line of lines) {
      const entry = JSON.parse(line);
      assert.equal(typeof entry.timestamp, "string");
      assert.equal(typeof entry.level, "string");
      assert.equal(typeof entry.fields?.message, "string");
    }
    assert.ok(lines.some((l) => JSON.parse(l).fields.message === "listening"));
  });

  test("one line per connection opened and closed and per refusal, with the client's address and the reason", async () => {
    // Through this machine's proxy (trusted by default), from three addresses elsewhere.
    const node = await startServer({ args: ["--log-format", "json", "--max-connections-per-address", "1", "--public-url", "http://noom.test"], env: { RUST_LOG: "info" } });
    try {
      const from = (ip) => ({ transports: ["polling"], extraHeaders: { "x-forwarded-for": ip } });
      const socket = await connectNoom(node.url, from("198.51.100.30"));
      await assert.rejects(connectNoom(node.url, from("198.51.100.30")), "a second connection from that address is refused");
      socket.close();
      const evil = await fetch(`${node.url}/socket.io/?EIO=4&transport=polling`, {
        headers: { origin: "https://evil.example", "x-forwarded-for": "198.51.100.31" },
      });
      assert.equal(evil.status, 403);
      const elsewhere = await new Promise((resolve, reject) => {
        const headers = { host: "other.example", "x-forwarded-for": "198.51.100.32" };
        http.request({ host: "127.0.0.1", port: node.port, path: "/", headers }, (res) => { res.resume(); resolve(res.statusCode); })
          .on("error", reject).end();
      });
      assert.equal(elsewhere, 421);
      const lines = () => jsonLines(node.output());
      const line = (message) => lines().find((l) => l.fields.message.startsWith(message))?.fields;
      // The server's output reaches us through a pipe, after the replies: wait for every line.
      const expected = ["socket connected", "socket disconnected", "connection refused:", "connection refused (403)", "request refused (421)"];
      await waitUntil(() => expected.every((message) => line(message)), { what: "a line for each" });
      assert.equal(line("socket connected")?.client, "198.51.100.30");
      assert.equal(line("socket connected")?.flavour, "noom");
      assert.equal(line("socket disconnected")?.client, "198.51.100.30");
      assert.match(line("socket disconnected")?.reason, /ClientNSDisconnect|TransportClose/);
      const refused = line("connection refused:");
      assert.equal(refused?.client, "198.51.100.30");
      assert.equal(refused?.reason, "too_many_open");
      assert.equal(line("connection refused (403)")?.client, "198.51.100.31");
      assert.equal(line("connection refused (403)")?.origin, "https://evil.example");
      assert.equal(line("request refused (421)")?.client, "198.51.100.32");
      assert.equal(line("request refused (421)")?.host, "other.example");
    } finally {
      await disconnectAll();
      await node.stop();
    }
  });

  test("no colour codes in logs that go to a file or a pipe", async () => {
    const node = await startServer({ env: { RUST_LOG: "info" } });
    await node.stop();
    assert.match(node.output(), /listening/);
    assert.doesNotMatch(node.output(), /\x1b\[/);
  });

  test("forwarded addresses from a proxy not in --trusted-proxies are ignored, and a warning says so once", async () => {
    const node = await startServer({ args: ["--trusted-proxies", "10.9.9.9"], env: { RUST_LOG: "warn" } });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal((await fetch(`${node.url}/healthz`, { headers: { "x-forwarded-for": `198.51.100.${40 + i}` } })).status, 200);
      }
      await waitUntil(() => /X-Forwarded-For from an address not in --trusted-proxies/.test(node.output()), { what: "the warning" });
      assert.equal(node.output().match(/X-Forwarded-For from an address not in --trusted-proxies/g).length, 1, "once");
      assert.match(node.output(), /peer=127\.0\.0\.1/);
    } finally {
      await node.stop();
    }
  });

  test("an unreachable Redis is a warning at once, and its coming back a line too", async () => {
    const redis = await startRedis();
    await redis.stop();
    const node = await startServer({ args: ["--redis-url", redis.url], env: { RUST_LOG: "info" } });
    try {
      await waitUntil(() => /Redis unreachable/.test(node.output()), { what: "the warning" });
      assert.match(node.output(), /WARN.*Redis unreachable/);
      await redis.start();
      await waitUntil(() => /Redis link up/.test(node.output()), { what: "the link up", timeout: 10000 });
      await redis.stop();
      await waitUntil(() => /WARN.*Redis link lost/.test(node.output()), { what: "the loss", timeout: 10000 });
    } finally {
      await node.stop();
      await redis.close();
    }
  });

  test("SIGHUP does not stop the server: it says what it reloads, and goes on serving", async () => {
    const node = await startServer({ env: { RUST_LOG: "info" } });
    try {
      node.proc.kill("SIGHUP");
      await waitUntil(() => /SIGHUP: certificate files/.test(node.output()), { what: "the SIGHUP line" });
      assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
      assert.equal(node.proc.exitCode, null);
    } finally {
      await node.stop();
    }
  });
});

/** The JSON lines of a server's output (`--log-format json`). */
function jsonLines(output) {
  return output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}
