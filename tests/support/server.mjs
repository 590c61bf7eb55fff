// Starts a real Noom server on a free port for a test, and stops it afterwards.
//
// The binary is NOOM_BIN if set, else target/debug/noom at the repository root
// (the test command builds it first). The server prints
// "noom listening on http://HOST:PORT" once it accepts connections.
import { spawn } from "node:child_process";
import { after, afterEach, before } from "node:test";
import { fileURLToPath } from "node:url";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const noomBin = process.env.NOOM_BIN || path.join(root, "target/debug/noom");

let testsStateDir;
/** The state directory of the servers the tests start (never the home directory's), made once. */
function stateDir() {
  testsStateDir ??= mkdtempSync(path.join(os.tmpdir(), "noom-test-state-"));
  return testsStateDir;
}

/**
 * `port` listens on that port instead of a free one (to start a server again where a stopped one
 * was); `host` on that address instead of loopback.
 *
 * @param {{ args?: string[], env?: Record<string,string>, port?: number, host?: string }} [options]
 * @returns {Promise<{ url: string, port: number, proc: import("node:child_process").ChildProcess, output: () => string, stop: () => Promise<void> }>}
 */
export async function startServer(options = {}) {
  const proc = spawn(noomBin, ["--host", options.host ?? "127.0.0.1", "--port", String(options.port ?? 0), ...(options.args ?? [])], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", NOOM_STATE_DIR: stateDir(), ...(options.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stderr.on("data", (d) => { log += d; });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`noom did not start in 20 s:\n${out}\n${log}`)), 20000);
    proc.stdout.on("data", (d) => {
      out += d;
      log += d;
      const m = out.match(/listening on (https?:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`noom exited with ${code}:\n${log}`)); });
  });
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    proc,
    output: () => log,
    stop: () => new Promise((resolve) => {
      // Exited, or killed by a test.
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
      setTimeout(() => proc.kill("SIGKILL"), 3000).unref();
    }),
  };
}

/**
 * Starts a server for the enclosing test file (or suite) and returns its handle, filled in once
 * it runs. `cleanup` runs after each test and before the server stops.
 */
export function useServer(options, { cleanup } = {}) {
  const handle = {};
  before(async () => {
    Object.assign(handle, await startServer(options));
  });
  if (cleanup) afterEach(cleanup);
  after(async () => {
    await cleanup?.();
    await handle.stop?.();
  });
  return handle;
}
