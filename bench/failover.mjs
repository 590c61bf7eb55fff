#!/usr/bin/env node
// When a node of a call goes: how long pictures stop, the four ways side by side in one run, held
// against the goals. Three Noom nodes sharing one Redis behind nginx, a page of real Chromium on
// each, in one call; the node of the page that came through nginx (Ann's) is killed or shut down
// (tests/support/failover.mjs, which the browser tests run once each way). Reported, for each
// way, over the runs:
// - the two who stayed (Ben and Cai, on the other nodes): the longest each went without a frame
//   of the other;
// - Ann, whose page was on that node: how long after it went she decoded the others again, and
//   they her (the latest of the four).
// The goals are those the media server was built to (docs/media.md): those whose media went
// through a node killed have it back within 5 s; a node shut down, or one of a cascade killed,
// stops no picture of the others for more than 2 s.
//
//   cargo build --release
//   (cd tests && npm ci)        # playwright-core, shared with the browser tests
//   node bench/failover.mjs [--runs N] [--ways killed,shut-down,cascade-killed,cascade-shut-down]
//                           [--bin path/to/noom] [--json]
//
// Three pages and three nodes keep two cores busy: the figures say what this machine does with
// all of it on board, not what a call of three machines would. It is a measurement, not a test:
// it exits non-zero only if a run went wrong (someone never saw the others again).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { launchBrowser } from "../tests/support/browser.mjs";
import { startRedis } from "../tests/support/redis.mjs";
import { machine, machineLine, ms, quantile } from "./figures.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The most a picture may stop, in ms, for each way (see the top of this file). */
const GOALS = {
  killed: { stayed: 5000, back: 5000 },
  "shut-down": { stayed: 2000, back: 5000 },
  "cascade-killed": { stayed: 2000, back: 5000 },
  "cascade-shut-down": { stayed: 2000, back: 5000 },
};

const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    ways: { type: "string", default: Object.keys(GOALS).join(",") },
    bin: { type: "string", default: path.join(root, "target/release/noom") },
    json: { type: "boolean", default: false },
  },
});
const runs = Number(opts.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number, 1 or more");
const ways = opts.ways.split(",").map((w) => w.trim());
if (!ways.length || ways.some((w) => !(w in GOALS))) throw new Error(`--ways: some of ${Object.keys(GOALS).join(", ")}`);
// Read by the test helpers as they load.
process.env.NOOM_BIN = path.resolve(opts.bin);
const { FAILOVERS, failover } = await import("../tests/support/failover.mjs");

const browser = await launchBrowser();
const redis = await startRedis();
const results = [];
let failed = 0;
try {
  const samples = Object.fromEntries(ways.map((w) => [w, []]));
  const failures = Object.fromEntries(ways.map((w) => [w, 0]));
  // Round after round, each way once a round: a slow spell of the machine falls on every way.
  for (let run = 0; run < runs; run++) {
    for (const way of ways) {
      try {
        const { stayed, back } = await failover(browser, redis, FAILOVERS[way]);
        samples[way].push({ stayed: Math.max(...stayed.map((s) => s.ms)), back: Math.max(...back) });
      } catch (error) {
        failures[way] += 1;
        failed += 1;
        process.stderr.write(`${way}, run ${run + 1}: FAILED\n${error.message ?? error}\n`);
      }
    }
  }
  for (const way of ways) {
    const pick = (k) => samples[way].map((s) => s[k]);
    const goal = GOALS[way];
    results.push({
      way,
      title: FAILOVERS[way].title,
      runs: samples[way].length,
      failures: failures[way],
      goal,
      stayed: { median: quantile(pick("stayed"), 0.5), max: Math.max(...pick("stayed")) },
      back: { median: quantile(pick("back"), 0.5), max: Math.max(...pick("back")) },
      withinGoal: samples[way].filter((s) => s.stayed <= goal.stayed && s.back <= goal.back).length,
      samples: samples[way],
    });
  }
  const report = { machine: machine(browser.version()), results };
  if (opts.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(machineLine(report.machine));
    const bin = path.relative(root, process.env.NOOM_BIN);
    console.log(`Command: node bench/failover.mjs --runs ${runs} --ways ${ways.join(",")}${bin === "target/release/noom" ? "" : ` --bin ${bin}`}`);
    console.log("");
    console.log("| a node goes | runs | the two who stayed: longest without a frame, median | max | goal | Ann back, median | max | goal | runs within both goals |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      const runsCell = r.failures ? `${r.runs} (+${r.failures} failed)` : `${r.runs}`;
      const none = r.runs === 0;
      const cell = (v) => (none ? "–" : ms(v));
      console.log(`| ${r.title} | ${runsCell} | ${cell(r.stayed.median)} | ${cell(r.stayed.max)} | ${ms(r.goal.stayed)} | ${cell(r.back.median)} | ${cell(r.back.max)} | ${ms(r.goal.back)} | ${r.withinGoal} of ${r.runs} |`);
    }
  }
} finally {
  await browser.close();
  await redis.close();
}
process.exit(failed ? 1 : 0);
