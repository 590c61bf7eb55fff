// A real Redis for the cluster tests: Debian's redis-server (`apt-get install redis-server`), on
// loopback on a free port, with no persistence, so that a restart comes back empty as a crashed
// Redis without a disk would. It can be stopped and started again on the same port.
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { freePort, waitForPort } from "./ports.mjs";

export const REDIS_SERVER_PATH = process.env.REDIS_SERVER_PATH || "/usr/bin/redis-server";

/**
 * Starts redis-server. The handle's `stop()` ends it (SIGTERM, or SIGKILL with `{ kill: true }`),
 * `start()` starts it again on the same port, `freeze()` and `thaw()` stop and continue it, and
 * `url` is what `noom --redis-url` takes. With
 * `tls`, it takes only TLS connections, with a certificate for `localhost` signed by a private
 * authority made for it (`ca`, a PEM file: what `noom --redis-ca` takes); `url` is `rediss://`.
 *
 * @returns {Promise<{ url: string, port: number, ca?: string, start: () => Promise<void>, stop: (o?: { kill?: boolean }) => Promise<void>, close: () => Promise<void>, output: () => string }>}
 */
export async function startRedis({ tls = false } = {}) {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "noom-redis-"));
  let proc = null;
  let log = "";
  const listen = tls
    ? ["--port", "0", "--tls-port", String(port), ...tlsFiles(dir), "--tls-auth-clients", "no"]
    : ["--port", String(port)];
  const start = async () => {
    proc = spawn(
      REDIS_SERVER_PATH,
      [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
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
    url: tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`,
    port,
    ca: tls ? path.join(dir, "ca.pem") : undefined,
    start,
    stop,
    /** Freezes it (SIGSTOP): connections stay open, and nothing answers. */
    freeze: () => { proc.kill("SIGSTOP"); },
    thaw: () => { proc.kill("SIGCONT"); },
    close: async () => {
      proc?.kill("SIGCONT");
      await stop({ kill: true });
      await rm(dir, { recursive: true, force: true });
    },
    output: () => log,
  };
}

/** Makes, in `dir`, an authority and a certificate it signs for localhost; returns redis-server's flags for them. */
function tlsFiles(dir) {
  const at = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=Noom test authority", "-keyout", at("ca.key"), "-out", at("ca.pem"));
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
    "-keyout", at("server.key"), "-out", at("server.csr"));
  writeFileSync(at("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial",
    "-days", "2", "-extfile", at("server.ext"), "-out", at("server.pem"));
  return ["--tls-cert-file", at("server.pem"), "--tls-key-file", at("server.key"), "--tls-ca-cert-file", at("ca.pem")];
}

/** Starts a Redis for the enclosing test file and closes it afterwards. */
export function useRedis() {
  const handle = {};
  before(async () => { Object.assign(handle, await startRedis()); });
  after(async () => { await handle.close?.(); });
  return handle;
}
