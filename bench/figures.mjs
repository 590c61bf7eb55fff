// What the browser benchmarks (call-setup.mjs, failover.mjs) share: the quantiles of their samples
// and the machine they ran on, which their reports name.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the values at or below it.
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

export const ms = (v) => (v === undefined ? "–" : `${Math.round(v)} ms`);

export function machine(browserVersion) {
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

/** The report's first line: the machine, as `machine` gave it. */
export function machineLine(m) {
  return `Machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}; Chromium ${m.chromium}; Node ${m.node}; Noom ${m.commit}`;
}
