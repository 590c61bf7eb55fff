// A real Redis for the cluster tests: Debian's redis-server (`apt-get install redis-server`), on
// loopback on a free port, with no persistence, so that a restart comes back empty as a crashed
// Redis without a disk would. It can be stopped and started again on the same port.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { freePort, waitForPort } from "./ports.mjs";

export const REDIS_SERVER_PATH = process.env.REDIS_SERVER_PATH || "/usr/bin/redis-server";

/**
 * Starts redis-server. The handle's `stop()` ends it (SIGTERM, or SIGKILL with `{ kill: true }`),
 * `start()` starts it again on the same port, and `url` is what `noom --redis-url` takes.
 *
 * @returns {Promise<{ url: string, port: number, start: () => Promise<void>, stop: (o?: { kill?: boolean }) => Promise<void>, close: () => Promise<void>, output: () => string }>}
 */
export async function startRedis() {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "noom-redis-"));
  let proc = null;
  let log = "";
  const start = async () => {
    proc = spawn(
      REDIS_SERVER_PATH,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    proc.stdout.on("data", (d) => { log += d; });
    proc.stderr.on("data", (d) => { log += d; });
    const exited = new Promise((_, reject) => proc.once("exit", (code) => reject(new Error(`redis-server exited with ${code}:\n${log}`))));
    await Promise.race([waitForPort(port, { what: "redis-server" }), exited]);
  };
  const stop = ({ kill = false } = {}) => new Promise((resolve) => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once("exit", () => resolve());
    p.kill(kill ? "SIGKILL" : "SIGTERM");
  });
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    close: async () => {
      await stop({ kill: true });
      await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
}

/** Starts a Redis for the enclosing test file and closes it afterwards. */
export function useRedis() {
  const handle = {};
  before(async () => { Object.assign(handle, await startRedis()); });
  after(async () => { await handle.close?.(); });
  return handle;
}
