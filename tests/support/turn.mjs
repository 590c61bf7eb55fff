// A real TURN server for the tests: Debian's coturn (`apt-get install coturn`), on loopback on a
// free port, with the shared-secret scheme Noom hands out credentials for (`use-auth-secret`, the
// TURN REST API). Everything it logs goes to a file of its own that a test can read. And two peer
// connections in a page that meet through a TURN server, or fail to; and Noom with its own.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { freeUdpAndTcpPort } from "./ports.mjs";
import { CALL_TIMEOUT } from "./rtc.mjs";
import { startServer } from "./server.mjs";

export const TURNSERVER_PATH = process.env.TURNSERVER_PATH || "/usr/bin/turnserver";

/** The realm coturn answers with; any name does, the credentials do not depend on it. */
export const REALM = "noom.test";

/**
 * Sends a STUN Binding request to `host`:`port` (127.0.0.1) over UDP and resolves to true if a Binding
 * success response comes back within `timeout` ms.
 */
export function stunBinding(port, timeout = 500, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    const id = randomBytes(12);
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // Binding request
    request.writeUInt16BE(0, 2); // no attributes
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    id.copy(request, 8);
    const done = (ok) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeout);
    socket.on("message", (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(id)) done(true);
    });
    socket.on("error", () => done(false));
    socket.send(request, port, host);
  });
}

/**
 * Time-limited TURN credentials for `name`, the way a server holding `secret` issues them:
 * username "<expiry>:<name>", credential base64(HMAC-SHA1(secret, username)).
 */
export function turnCredentials(secret, name, ttlSeconds = 3600) {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${name}`;
  const credential = createHmac("sha1", secret).update(username).digest("base64");
  return { username, credential };
}

/**
 * Starts coturn on 127.0.0.1 (or `listen`, an address of this machine) with a fresh random shared
 * secret (or `secret`), over UDP and TCP. It relays UDP between peers on loopback only and
 * answers STUN too; no configuration file, TLS, DTLS or CLI, and its user database, pid file and
 * log in a temporary directory of its own. `log()` reads the log (verbose: every request, with the
 * user name and the outcome).
 *
 * @param {{ secret?: string, listen?: string }} [options]
 * @returns {Promise<{ port: number, url: string, secret: string, realm: string, log: () => Promise<string>, stop: () => Promise<void> }>}
 */
export async function startTurn({ secret = randomBytes(16).toString("hex"), listen = "127.0.0.1" } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "noom-turn-"));
  const logFile = path.join(dir, "turn.log");
  const port = await freeUdpAndTcpPort();
  // Relay ports: a small random range in the dynamic ports (49152 and up); should one be taken,
  // coturn tries another of the range.
  const minPort = 49152 + Math.floor(Math.random() * 15000);
  const maxPort = minPort + 200;
  const args = [
    "-n", // no configuration file: only these flags
    `--listening-port=${port}`,
    `--listening-ip=${listen}`,
    "--relay-ip=127.0.0.1",
    `--min-port=${minPort}`,
    `--max-port=${maxPort}`,
    "--allow-loopback-peers",
    "--allowed-peer-ip=127.0.0.1",
    "--use-auth-secret",
    `--static-auth-secret=${secret}`,
    `--realm=${REALM}`,
    "--fingerprint",
    "--no-cli",
    "--no-tls",
    "--no-dtls",
    `--userdb=${path.join(dir, "turndb")}`,
    `--pidfile=${path.join(dir, "turnserver.pid")}`,
    `--log-file=${logFile}`,
    "--simple-log",
    "--no-stdout-log",
    "--verbose",
  ];
  const proc = spawn(TURNSERVER_PATH, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  let spawnFailure = null;
  proc.once("error", (error) => { spawnFailure = error; });
  const log = () => readFile(logFile, "utf8").catch(() => "");
  const stop = async () => {
    if (!spawnFailure && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  // Ready once it answers a STUN Binding request on its port.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnFailure) {
      await stop();
      throw new Error(`cannot start ${TURNSERVER_PATH} (apt-get install coturn): ${spawnFailure.message}`);
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      const text = await log();
      await stop();
      throw new Error(`coturn did not answer on ${listen}:${port} (exit ${proc.exitCode}):\n${stderr}\n${text.slice(-4000)}`);
    }
    if (await stunBinding(port, 200, listen)) break;
  }

  return { port, url: `turn:${listen}:${port}?transport=udp`, tcpUrl: `turn:${listen}:${port}?transport=tcp`, secret, realm: REALM, log, stop };
}

/** Starts coturn for the enclosing test file (or suite) and returns its handle, filled in once it runs. */
export function useTurn(options) {
  const handle = {};
  before(async () => {
    Object.assign(handle, await startTurn(options));
  });
  after(async () => {
    await handle.stop?.();
  });
  return handle;
}

/**
 * Two peer connections in a page of `browser`'s: `a` relay only through `aServers`, `b` with `bServers` and
 * the policy `bPolicy`. `a` sends a message on a data channel. Returns `{ message, gathered,
 * errors, local }`: what `b` received (null if nothing within `wait` ms), `a`'s candidates, the
 * error codes its TURN server answered (`icecandidateerror`), and the selected pair's local
 * candidate of `a`. With `cameraOn` (an origin), the page opens it and takes the camera first.
 */
export async function meetThroughRelay(browser, aServers, { bServers = aServers, bPolicy = "relay", wait = CALL_TIMEOUT, cameraOn } = {}) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    if (cameraOn) {
      // A page that has the camera shows its host addresses as they are (otherwise they are
      // hidden behind mDNS names, which a TURN server cannot reach).
      await page.goto(cameraOn);
      await page.evaluate(() => navigator.mediaDevices.getUserMedia({ video: true }));
    }
    return await page.evaluate(async ({ aServers, bServers, bPolicy, timeout }) => {
      const a = new RTCPeerConnection({ iceServers: aServers, iceTransportPolicy: "relay" });
      const b = new RTCPeerConnection({ iceServers: bServers, iceTransportPolicy: bPolicy });
      const gathered = [];
      const errors = [];
      let relayed = () => {};
      a.onicecandidate = (e) => {
        if (e.candidate?.candidate) gathered.push(e.candidate.candidate);
        if (e.candidate) b.addIceCandidate(e.candidate);
        if (/ typ relay /.test(e.candidate?.candidate ?? "")) relayed();
      };
      b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate); };
      const received = new Promise((resolve) => {
        b.ondatachannel = (e) => { e.channel.onmessage = (m) => resolve(m.data); };
      });
      // A relay candidate comes, gathering ends, or the TURN server refuses.
      const complete = new Promise((resolve) => {
        relayed = resolve;
        const check = () => { if (a.iceGatheringState === "complete") resolve(); };
        a.onicegatheringstatechange = check;
        // 7xx: no answer from one of the machine's interfaces; below: the server's own answer.
        a.onicecandidateerror = (e) => { errors.push(e.errorCode); if (e.errorCode < 700) resolve(); };
        check();
      });
      const channel = a.createDataChannel("hello");
      channel.onopen = () => channel.send("through the relay");
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription);
      await complete;
      const message = gathered.length
        ? await Promise.race([received, new Promise((resolve) => setTimeout(() => resolve(null), timeout))])
        : null;
      // The message may come before the sender's statistics say which pair carried it: they are
      // read again until they do (a loaded machine is slow to update them).
      let local = null;
      for (let deadline = Date.now() + (message ? timeout : 0); ; ) {
        const stats = await a.getStats();
        stats.forEach((s) => {
          if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
            const c = stats.get(s.localCandidateId);
            local = { type: c?.candidateType, relayProtocol: c?.relayProtocol };
          }
        });
        if (local || Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      a.close();
      b.close();
      return { message, gathered, errors, local };
    }, { aServers, bServers, bPolicy, timeout: wait });
  } finally {
    await context.close();
  }
}

/**
 * The flags that run Noom's built-in TURN server on a free port, relaying from 100 ports of a
 * range picked at random (servers of one test run seldom share them). `{ args, turnPort }`.
 */
export async function builtInTurn() {
  const turnPort = await freeUdpAndTcpPort();
  const first = 20_000 + Math.floor(Math.random() * 200) * 100;
  return { turnPort, args: ["--turn", "--turn-port", String(turnPort), "--turn-relay-ports", `${first}-${first + 99}`] };
}

/** Noom with its built-in TURN server and `secret`, no STUN server, and `args`, on `host`. */
export async function startNoomWithTurn({ secret = randomBytes(16).toString("hex"), args = [], host } = {}) {
  const turn = await builtInTurn();
  const server = await startServer({ host, args: ["--stun-urls", "", ...turn.args, "--turn-secret", secret, ...args] });
  return { ...server, turnPort: turn.turnPort, secret };
}
