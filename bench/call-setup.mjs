#!/usr/bin/env node
// Call set-up time, through the media server and browser to browser, side by side in one run: how
// long after a person clicks "Join now" they see the first video frame from someone already in the
// call, and from everyone in it; then what a call costs the server while it runs. Real Noom (one
// server per way, `--calls sfu` and `--calls mesh`), real Chromium pages (one browser context per
// person, Chromium's fake camera and microphone), media over loopback.
//
// And the same with UDP blocked (`--networks open,no-udp`, the default as root): the newcomer's
// browser runs in a network namespace that drops every UDP datagram, as some offices and hotels
// do. Through the media server it connects over TCP to the web port, with nothing set; a mesh
// needs a relay, so that server runs its built-in TURN (`--turn`), reached over TCP.
//
//   cargo build --release
//   (cd tests && npm ci)        # playwright-core, shared with the browser tests
//   node bench/call-setup.mjs [--runs N] [--users N] [--calls sfu,mesh] [--networks open,no-udp]
//                             [--bin path/to/noom] [--json]
//
// For each call size (2, 4 and --users when larger; 2 to 8, though two cores run about six pages)
// and each run, each way in turn: a fresh room, the others join its call and connect (and settle:
// one connection each to the media server, or one to each other in a mesh), then the last one
// opens the preview, waits until it shows the camera, and clicks "Join now". Reported:
// median and 90th percentile over the runs, and the server's CPU time per run. Then, each way, a
// call of --users people held for 10 s: the server's CPU time per second and its resident memory
// per participant. And, through the media server, a call of two moving as a third joins and leaves
// (two talk browser to browser; a third moves everyone to the server; the third leaving moves the
// two back): the longest either of the two went without a decoded frame of the other, each way,
// against the goal of 2 s. It is a measurement, not a test: it exits non-zero only if a call did not
// connect, or did not move, at all (that run is left out of the figures and counted as failed).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { enterRoom, eventually, expectVisible, launchBrowser } from "../tests/support/browser.mjs";
import { makeNetwork } from "../tests/support/network.mjs";
import { builtInTurn } from "../tests/support/turn.mjs";
import { clickMark, expectDecoding, expectPaths, joinCall, joinInTurn, leaveCall, liveConnections, openCallUser } from "../tests/support/rtc.mjs";
import { decodingSince, watchDecoding } from "../tests/support/sfu.mjs";
import { machine, machineLine, ms, quantile } from "./figures.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    users: { type: "string", default: "4" },
    calls: { type: "string", default: "sfu,mesh" },
    // Network namespaces need root.
    networks: { type: "string", default: process.getuid?.() === 0 ? "open,no-udp" : "open" },
    bin: { type: "string", default: path.join(root, "target/release/noom") },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(opts.runs);
const largest = Number(opts.users);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number, 1 or more");
if (!Number.isInteger(largest) || largest < 2 || largest > 8) throw new Error("--users: 2 to 8");
const sizes = [...new Set([2, 4, largest])].filter((n) => n <= largest);
const ways = opts.calls.split(",").map((w) => w.trim());
if (!ways.length || ways.some((w) => w !== "sfu" && w !== "mesh")) throw new Error("--calls: sfu, mesh or both");
const networks = opts.networks.split(",").map((n) => n.trim());
if (!networks.length || networks.some((n) => n !== "open" && n !== "no-udp")) throw new Error("--networks: open, no-udp or both");
if (networks.includes("no-udp") && process.getuid?.() !== 0) throw new Error("--networks no-udp needs root (a network namespace)");
/** How long the held call is watched. */
const HOLD_MS = 10_000;

/** The longest a picture may stop as a call moves between browser to browser and the server. */
const MOVE_GOAL_MS = 2000;

/** How long one call may take to connect before the benchmark gives up. */
const CONNECT_TIMEOUT = 60_000;
const CLOCK_TICKS = 100; // USER_HZ: /proc's CPU times are in 1/100 s on Linux

// ---------------------------------------------------------------------------------------------
// The server, and what it costs

/**
 * Noom for `way`. With `network` (UDP blocked for the newcomer), it listens on every address and
 * is reached at the network's; a mesh runs the built-in TURN server.
 */
async function startNoom(bin, way, network) {
  const address = network?.hostAddress ?? "127.0.0.1";
  // A mesh holds 6 by default; the benchmark goes to 8.
  const media = ["--media-address", address, ...(way === "mesh" ? ["--call-size", "8"] : [])];
  if (network && way === "mesh") media.push(...(await builtInTurn()).args);
  const host = network ? "0.0.0.0" : "127.0.0.1";
  const proc = spawn(bin, ["--host", host, "--port", "0", "--stun-urls", "", "--calls", way, ...media], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn,stun_proto=off" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 20 s`)), 20_000);
    proc.once("error", (error) => { clearTimeout(timer); reject(new Error(`cannot run ${bin} (cargo build --release first?): ${error.message}`)); });
    proc.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${bin} exited with ${code}`)); });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        resolve({ proc, url: `http://127.0.0.1:${m[1]}`, remote: `http://${address}:${m[1]}`, way });
      }
    });
  });
}

/** The process's CPU time so far (user + system), in milliseconds. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5), utime and stime; `fields` starts at field 3.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** The process's resident memory now and at its peak, in KiB. */
function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}

// ---------------------------------------------------------------------------------------------
// One measurement

/**
 * Starts watching, in the page, the inbound video streams of its peer connections (one per peer in
 * a mesh, all on one through the media server); resolves (in the page) with the times
 * (performance.now()) at which the first and then all `peers` streams had decoded a frame. Polls
 * every 10 ms, so figures carry up to 10 ms of that.
 */
function watchFirstFrames(page, peers) {
  return page.evaluate(async ({ peers, timeout }) => {
    const firstFrame = new Map();
    let first = null;
    const deadline = performance.now() + timeout;
    while (performance.now() < deadline) {
      for (const [index, { pc }] of window.__rtc.connections.entries()) {
        if (pc.connectionState === "closed") continue;
        (await pc.getStats()).forEach((s) => {
          const key = `${index}:${s.trackIdentifier}`;
          if (s.type !== "inbound-rtp" || s.kind !== "video" || firstFrame.has(key) || !(s.framesDecoded > 0)) return;
          const now = performance.now();
          firstFrame.set(key, now);
          first ??= now;
        });
      }
      if (firstFrame.size >= peers) return { first, all: Math.max(...firstFrame.values()) };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { first, all: null };
  }, { peers, timeout: CONNECT_TIMEOUT });
}

/**
 * One newcomer joining a call of `size - 1`; with `walled` (a browser whose network drops UDP),
 * the newcomer is a page of that browser.
 */
async function measure(browser, server, size, run, walled) {
  const room = `bench ${size} #${run} ${Date.now()}`;
  const users = [];
  const cpuAtStart = cpuMs(server.proc.pid);
  try {
    for (let i = 0; i < size; i++) {
      const newcomer = i === size - 1 && walled;
      const user = await openCallUser(newcomer ? walled : browser, newcomer ? server.remote : server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: `User ${i + 1}`, room });
    }
    const early = users.slice(0, -1);
    const late = users[users.length - 1];
    for (const user of early) await joinCall(user.page);
    for (const user of early) await expectDecoding(user.page, early.length - 1, { who: "early", timeout: CONNECT_TIMEOUT });
    // A call in its steady state, as a newcomer usually finds it: each page with its connection
    // to the media server alone (two who talked directly have closed that path, some 5 s after
    // the third came), or in a mesh one to each other page.
    const steady = server.way === "sfu" ? 1 : early.length - 1;
    for (const user of early) {
      await eventually(async () => {
        const live = (await liveConnections(user.page)).length;
        if (live !== steady) throw new Error(`${live} live connections, not ${steady}`);
      }, { timeout: CONNECT_TIMEOUT, interval: 250 });
    }

    // The newcomer opens the preview and sees themselves, as a person would before joining.
    await late.page.locator("#call-open").click();
    await expectVisible(late.page.locator("#call-preview"));
    await eventually(async () => {
      const width = await late.page.locator("video#preview-video").evaluate((v) => v.videoWidth);
      if (!(width > 0)) throw new Error("the preview shows no camera yet");
    });

    const watching = watchFirstFrames(late.page, size - 1);
    await late.page.locator("#call-start").click();
    const frames = await watching;
    const clicked = await clickMark(late.page, "call-start");
    if (frames.all === null) throw new Error(`a ${size}-person call did not connect within ${CONNECT_TIMEOUT / 1000} s`);
    const result = { first: frames.first - clicked, all: frames.all - clicked };
    for (const user of users.splice(0)) await user.close();
    // Everything the server did for this run: pages, room entries, joins, signalling, departures.
    result.serverCpu = cpuMs(server.proc.pid) - cpuAtStart;
    return result;
  } finally {
    for (const user of users) await user.close();
  }
}

/**
 * Two in a call through the media server talk browser to browser; a third joins, which moves
 * everyone to the server, then leaves, which moves the two back. The longest either of the two
 * went without a decoded frame of the other: as the third joined, and as the third left.
 */
async function move(browser, server, run) {
  const room = `bench move #${run} ${Date.now()}`;
  const port = Number(new URL(server.url).port);
  const users = [];
  const timeout = CONNECT_TIMEOUT;
  /** Waits for `settled`; then the longest either of the two went without a frame of the other,
   * since `watchDecoding`. */
  const longestWait = async (pair, settled) => {
    await settled();
    let longest = 0;
    for (const [viewer, viewed] of [pair, [...pair].reverse()]) {
      const seen = (await decodingSince(viewer.page))[viewed.id];
      if (!seen) throw new Error("one of the two stopped decoding the other");
      longest = Math.max(longest, seen.longest);
    }
    return longest;
  };
  try {
    await joinInTurn(browser, users, room, [["Ann", server], ["Bob", server]]);
    const pair = [...users];
    for (const user of pair) await expectPaths(user.page, port, { server: 1, direct: 1 }, { timeout });
    for (const user of pair) await expectDecoding(user.page, 1, { timeout });
    for (const user of pair) await watchDecoding(user.page);
    await joinInTurn(browser, users, room, [["Cat", server]]);
    const cat = users[2];
    const joined = await longestWait(pair, async () => {
      for (const user of pair) await expectPaths(user.page, port, { server: 1, direct: 0 }, { timeout });
      for (const user of pair) await expectDecoding(user.page, 2, { timeout });
    });
    for (const user of pair) await watchDecoding(user.page);
    await leaveCall(cat.page);
    const left = await longestWait(pair, async () => {
      for (const user of pair) await expectPaths(user.page, port, { server: 1, direct: 1 }, { timeout });
      // Long enough for the server's media to have stopped, had the direct path not taken over.
      await new Promise((resolve) => setTimeout(resolve, 3000));
    });
    return { joined, left };
  } finally {
    for (const user of users) await user.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

// ---------------------------------------------------------------------------------------------

/**
 * A call of `size` people held for HOLD_MS once everyone decodes everyone: the server's CPU time
 * per second over it, and its resident memory per participant (over what it held before).
 */
async function hold(browser, server, size) {
  const room = `bench hold ${size} ${Date.now()}`;
  const users = [];
  const before = memoryKiB(server.proc.pid).rss;
  try {
    for (let i = 0; i < size; i++) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: `User ${i + 1}`, room });
      await joinCall(user.page);
    }
    for (const user of users) await expectDecoding(user.page, size - 1, { who: "held", timeout: CONNECT_TIMEOUT });
    const cpuStart = cpuMs(server.proc.pid);
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    const cpuPerSecond = ((cpuMs(server.proc.pid) - cpuStart) * 1000) / (Date.now() - started);
    const during = memoryKiB(server.proc.pid).rss;
    return { size, cpuMsPerSecond: cpuPerSecond, rssKiBPerParticipant: (during - before) / size };
  } finally {
    for (const user of users) await user.close();
  }
}

const network = networks.includes("no-udp") ? makeNetwork() : null;
const servers = {};
for (const way of ways) servers[way] = await startNoom(opts.bin, way, network);
const browser = await launchBrowser();
let walled = null;
if (network) {
  network.dropUdp();
  const origins = ways.map((w) => servers[w].remote).join(",");
  walled = await launchBrowser({ executablePath: network.launcher, extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${origins}`] });
}
const results = [];
const held = [];
const moves = { samples: [], failures: [] };
const startCpu = Object.fromEntries(ways.map((w) => [w, cpuMs(servers[w].proc.pid)]));
const startMemory = Object.fromEntries(ways.map((w) => [w, memoryKiB(servers[w].proc.pid)]));
try {
  // Each way and network in turn, so that all see the same machine at about the same time.
  const kinds = ways.flatMap((way) => networks.map((net) => ({ way, network: net, key: `${way} ${net}` })));
  for (const size of sizes) {
    const samples = Object.fromEntries(kinds.map((k) => [k.key, []]));
    const failures = Object.fromEntries(kinds.map((k) => [k.key, []]));
    for (let run = 1; run <= runs; run++) {
      for (const { way, network: net, key } of kinds) {
        const label = `${way}, ${net === "open" ? "" : "UDP blocked, "}${size} people, run ${run}/${runs}`;
        try {
          const sample = await measure(browser, servers[way], size, run, net === "no-udp" ? walled : null);
          samples[key].push(sample);
          process.stderr.write(`${label}: first frame ${ms(sample.first)}, all ${ms(sample.all)}\n`);
        } catch (error) {
          failures[key].push(String(error.message ?? error).split("\n")[0]);
          process.stderr.write(`${label}: FAILED\n${error.message ?? error}\n`);
        }
      }
    }
    for (const { way, network: net, key } of kinds) {
      const pick = (k) => samples[key].map((s) => s[k]);
      results.push({
        way,
        network: net,
        size,
        runs: samples[key].length,
        failures: failures[key],
        first: { median: quantile(pick("first"), 0.5), p90: quantile(pick("first"), 0.9) },
        all: { median: quantile(pick("all"), 0.5), p90: quantile(pick("all"), 0.9) },
        // A mean, not a median: /proc counts CPU time in 10 ms ticks, and one run takes a few.
        serverCpuPerRunMs: samples[key].length ? pick("serverCpu").reduce((a, b) => a + b, 0) / samples[key].length : undefined,
        samples: samples[key],
      });
    }
  }
  for (const way of ways) {
    try {
      held.push({ way, ...(await hold(browser, servers[way], largest)) });
    } catch (error) {
      process.stderr.write(`${way}: the held call of ${largest} FAILED\n${error.message ?? error}\n`);
      held.push({ way, size: largest, failed: true });
    }
  }
  // The server's connection stands by beside the direct path only where calls go through it.
  for (let run = 1; servers.sfu && run <= runs; run++) {
    try {
      const sample = await move(browser, servers.sfu, run);
      moves.samples.push(sample);
      process.stderr.write(`a call of two moving, run ${run}/${runs}: longest without a frame ${ms(sample.joined)} as a third joined, ${ms(sample.left)} as the third left\n`);
    } catch (error) {
      moves.failures.push(String(error.message ?? error).split("\n")[0]);
      process.stderr.write(`a call of two moving, run ${run}/${runs}: FAILED\n${error.message ?? error}\n`);
    }
  }
  const report = {
    machine: machine(browser.version()),
    servers: Object.fromEntries(ways.map((w) => {
      const end = memoryKiB(servers[w].proc.pid);
      return [w, { cpuMs: cpuMs(servers[w].proc.pid) - startCpu[w], rssKiB: { start: startMemory[w].rss, end: end.rss, peak: end.peak } }];
    })),
    results,
    held,
    moves: { ...moves, goalMs: MOVE_GOAL_MS },
  };

  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const m = report.machine;
    console.log(machineLine(m));
    console.log(`Command: node bench/call-setup.mjs --runs ${runs} --users ${largest} --calls ${ways.join(",")} --networks ${networks.join(",")}${opts.bin === path.join(root, "target/release/noom") ? "" : ` --bin ${path.relative(root, opts.bin)}`}`);
    console.log("");
    console.log("| people in the call | calls | newcomer's network | runs | first peer's video, median | p90 | everyone's video, median | p90 | server CPU per run (mean) |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    const netName = { open: "open", "no-udp": "UDP blocked" };
    for (const r of results) {
      const runsCell = r.failures.length ? `${r.runs} (${r.failures.length} failed)` : `${r.runs}`;
      console.log(`| ${r.size} | ${r.way} | ${netName[r.network]} | ${runsCell} | ${ms(r.first.median)} | ${ms(r.first.p90)} | ${ms(r.all.median)} | ${ms(r.all.p90)} | ${ms(r.serverCpuPerRunMs)} |`);
    }
    console.log("");
    console.log(`A call of ${largest} held for ${HOLD_MS / 1000} s:`);
    console.log("");
    console.log("| calls | server CPU per second of call | resident memory per participant |");
    console.log("|---|---|---|");
    for (const h of held) {
      if (h.failed) console.log(`| ${h.way} | failed | failed |`);
      else console.log(`| ${h.way} | ${ms(h.cpuMsPerSecond)} | ${(h.rssKiBPerParticipant / 1024).toFixed(2)} MiB |`);
    }
    if (servers.sfu) {
      console.log("");
      console.log("A call of two through the media server, talking browser to browser, as a third joins (everyone moves to the server) and leaves (the two move back):");
      console.log("");
      console.log("| the call moves | runs | longest either went without a frame of the other, median | max | goal | runs within the goal |");
      console.log("|---|---|---|---|---|---|");
      const runsCell = moves.failures.length ? `${moves.samples.length} (${moves.failures.length} failed)` : `${moves.samples.length}`;
      for (const [key, what] of [["joined", "to the server, as a third joins"], ["left", "back, as the third leaves"]]) {
        const waits = moves.samples.map((m) => m[key]);
        const within = waits.filter((w) => w <= MOVE_GOAL_MS).length;
        console.log(`| ${what} | ${runsCell} | ${ms(quantile(waits, 0.5))} | ${ms(waits.length ? Math.max(...waits) : undefined)} | ${ms(MOVE_GOAL_MS)} | ${within} of ${waits.length} |`);
      }
    }
    console.log("");
    const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
    for (const [w, srv] of Object.entries(report.servers)) {
      console.log(`Server (${w}) over the whole run: ${ms(srv.cpuMs)} of CPU time; resident memory ${mib(srv.rssKiB.start)} at the start, ${mib(srv.rssKiB.end)} at the end, ${mib(srv.rssKiB.peak)} at its peak.`);
    }
  }
  // A call that never connected is a bug, not a figure: say so with the exit status.
  if (results.some((r) => r.failures.length) || held.some((h) => h.failed) || moves.failures.length) process.exitCode = 1;
} finally {
  await browser.close();
  await walled?.close();
  for (const srv of Object.values(servers)) srv.proc.kill("SIGTERM");
  network?.close();
}
