#!/usr/bin/env node
// Call set-up time: how long after a person clicks "Join now" they see the first video frame from
// someone already in the call, and from everyone in it. Real Noom, real Chromium pages (one
// browser context per person, Chromium's fake camera and microphone), media over loopback.
//
//   cargo build --release
//   (cd tests && npm ci)        # playwright-core, shared with the browser tests
//   node bench/call-setup.mjs [--runs N] [--users N] [--bin path/to/noom] [--json]
//
// For each call size (2, and --users when it is larger; 2 to 6) and each run: a fresh room, the
// others join its call and connect, then the last one opens the preview, waits until it shows
// the camera, and clicks "Join now". Reported: median and 90th percentile over the runs, and the
// server's CPU time and memory. It is a measurement, not a test: it exits non-zero only if a call
// did not connect at all (that run is left out of the figures and counted as failed).
import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { enterRoom, eventually, expectVisible, launchBrowser } from "../tests/support/browser.mjs";
import { clickMark, expectDecoding, joinCall, openCallUser } from "../tests/support/rtc.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    users: { type: "string", default: "4" },
    bin: { type: "string", default: path.join(root, "target/release/noom") },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(opts.runs);
const largest = Number(opts.users);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number, 1 or more");
if (!Number.isInteger(largest) || largest < 2 || largest > 6) throw new Error("--users: 2 to 6");
const sizes = largest > 2 ? [2, largest] : [2];

/** How long one call may take to connect before the benchmark gives up. */
const CONNECT_TIMEOUT = 60_000;
const CLOCK_TICKS = 100; // USER_HZ: /proc's CPU times are in 1/100 s on Linux

// ---------------------------------------------------------------------------------------------
// The server, and what it costs

function startNoom(bin) {
  const proc = spawn(bin, ["--host", "127.0.0.1", "--port", "0", "--stun-urls", ""], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 20 s`)), 20_000);
    proc.once("error", (error) => { clearTimeout(timer); reject(new Error(`cannot run ${bin} (cargo build --release first?): ${error.message}`)); });
    proc.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${bin} exited with ${code}`)); });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        resolve({ proc, url: m[1] });
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
 * Starts watching, in the page, its peer connections' inbound video; resolves (in the page) with
 * the times (performance.now()) at which the first and then all `peers` connections had decoded
 * a frame. Polls every 10 ms, so figures carry up to 10 ms of that.
 */
function watchFirstFrames(page, peers) {
  return page.evaluate(async ({ peers, timeout }) => {
    const firstFrame = new Map();
    let first = null;
    const deadline = performance.now() + timeout;
    while (performance.now() < deadline) {
      for (const [index, { pc }] of window.__rtc.connections.entries()) {
        if (firstFrame.has(index) || pc.connectionState === "closed") continue;
        let frames = 0;
        (await pc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
        });
        if (frames > 0) {
          const now = performance.now();
          firstFrame.set(index, now);
          first ??= now;
        }
      }
      if (firstFrame.size >= peers) return { first, all: Math.max(...firstFrame.values()) };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { first, all: null };
  }, { peers, timeout: CONNECT_TIMEOUT });
}

async function measure(browser, url, size, run) {
  const room = `bench ${size} #${run} ${Date.now()}`;
  const users = [];
  const cpuAtStart = cpuMs(server.proc.pid);
  try {
    for (let i = 0; i < size; i++) {
      const user = await openCallUser(browser, url);
      users.push(user);
      await enterRoom(user.page, { nickname: `User ${i + 1}`, room });
    }
    const early = users.slice(0, -1);
    const late = users[users.length - 1];
    for (const user of early) await joinCall(user.page);
    for (const user of early) await expectDecoding(user.page, early.length - 1, { who: "early", timeout: CONNECT_TIMEOUT });

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

// ---------------------------------------------------------------------------------------------
// Figures

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the values at or below it.
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

const ms = (v) => (v === undefined ? "–" : `${Math.round(v)} ms`);

function machine(browserVersion) {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {}
  return {
    cores: os.cpus().length,
    cpu: model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    chromium: browserVersion,
    node: process.version,
    commit,
  };
}

// ---------------------------------------------------------------------------------------------

const server = await startNoom(opts.bin);
const browser = await launchBrowser();
const results = [];
const startCpu = cpuMs(server.proc.pid);
const startMemory = memoryKiB(server.proc.pid);
try {
  for (const size of sizes) {
    const samples = [];
    const failures = [];
    for (let run = 1; run <= runs; run++) {
      try {
        const sample = await measure(browser, server.url, size, run);
        samples.push(sample);
        process.stderr.write(`${size} people, run ${run}/${runs}: first frame ${ms(sample.first)}, all ${ms(sample.all)}\n`);
      } catch (error) {
        failures.push(String(error.message ?? error).split("\n")[0]);
        process.stderr.write(`${size} people, run ${run}/${runs}: FAILED\n${error.message ?? error}\n`);
      }
    }
    const pick = (key) => samples.map((s) => s[key]);
    results.push({
      size,
      runs: samples.length,
      failures,
      first: { median: quantile(pick("first"), 0.5), p90: quantile(pick("first"), 0.9) },
      all: { median: quantile(pick("all"), 0.5), p90: quantile(pick("all"), 0.9) },
      // A mean, not a median: /proc counts CPU time in 10 ms ticks, and one run takes a few.
      serverCpuPerRunMs: samples.length ? pick("serverCpu").reduce((a, b) => a + b, 0) / samples.length : undefined,
      samples,
    });
  }
  const endMemory = memoryKiB(server.proc.pid);
  const report = {
    machine: machine(browser.version()),
    server: {
      cpuMs: cpuMs(server.proc.pid) - startCpu,
      rssKiB: { start: startMemory.rss, end: endMemory.rss, peak: endMemory.peak },
    },
    results,
  };

  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const m = report.machine;
    console.log(`Machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}; Chromium ${m.chromium}; Node ${m.node}; Noom ${m.commit}`);
    console.log(`Command: node bench/call-setup.mjs --runs ${runs} --users ${largest}${opts.bin === path.join(root, "target/release/noom") ? "" : ` --bin ${path.relative(root, opts.bin)}`}`);
    console.log("");
    console.log("| people in the call | runs | first peer's video, median | p90 | everyone's video, median | p90 | server CPU per run (mean) |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of results) {
      const runsCell = r.failures.length ? `${r.runs} (${r.failures.length} failed)` : `${r.runs}`;
      console.log(`| ${r.size} | ${runsCell} | ${ms(r.first.median)} | ${ms(r.first.p90)} | ${ms(r.all.median)} | ${ms(r.all.p90)} | ${ms(r.serverCpuPerRunMs)} |`);
    }
    console.log("");
    const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
    console.log(`Server over the whole run: ${ms(report.server.cpuMs)} of CPU time; resident memory ${mib(report.server.rssKiB.start)} at the start, ${mib(report.server.rssKiB.end)} at the end, ${mib(report.server.rssKiB.peak)} at its peak.`);
  }
  // A call that never connected is a bug, not a figure: say so with the exit status.
  if (results.some((r) => r.failures.length)) process.exitCode = 1;
} finally {
  await browser.close();
  server.proc.kill("SIGTERM");
}
