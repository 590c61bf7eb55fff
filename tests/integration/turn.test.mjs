// The built-in TURN server (`--turn`) on the wire, as a TURN client speaks to it: an allocation
// over UDP with the credentials Noom hands out; the same signed request replayed from another
// address, which gets no relay; and TURN over TLS on the HTTPS port, which goes on serving pages.
// (Browsers relaying through it: browser/relay.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import https from "node:https";
import tls from "node:tls";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TURNSERVER_PATH, startNoomWithTurn, stunBinding, turnCredentials } from "../support/turn.mjs";
import { ALLOCATE_ERROR, ALLOCATE_SUCCESS, CREATE_PERMISSION_SUCCESS, allocateRequest, createPermissionRequest, readStun,
  readTurnReply } from "../support/stun.mjs";
import { freeUdpAndTcpPort } from "../support/ports.mjs";
import { waitUntil } from "../support/cluster.mjs";

/** Noom with its TURN server, reached on loopback, and `args`. */
function startNoomWithTurnHere(args = []) {
  return startNoomWithTurn({ args: ["--media-address", "127.0.0.1", ...args] });
}

/** A UDP socket of this process that sends a message to `port` and reads the reply. */
async function udpClient(port) {
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    ask(message) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no reply from the TURN server in 5 s")), 5000);
        socket.once("message", (reply) => {
          clearTimeout(timer);
          resolve(reply);
        });
        socket.send(message, port, "127.0.0.1");
      });
    },
    close: () => socket.close(),
  };
}

/** `{ type, error, realm, nonce }` of a reply. */
function read(reply) {
  const stun = readStun(reply);
  assert.ok(stun, `a STUN reply: ${reply.toString("hex")}`);
  return { type: stun.type, ...readTurnReply(reply) };
}

test("an allocation request replayed from another address gets no relay: its nonce was that client's", async () => {
  const server = await startNoomWithTurnHere();
  const [client, replayer] = [await udpClient(server.turnPort), await udpClient(server.turnPort)];
  try {
    const challenge = read(await client.ask(allocateRequest()));
    assert.equal(challenge.error, 401, "asked for credentials");
    assert.ok(challenge.realm && challenge.nonce, `with a realm and a nonce: ${JSON.stringify(challenge)}`);
    const { username, credential } = turnCredentials(server.secret, "ann");
    const signed = allocateRequest({ username, password: credential, realm: challenge.realm, nonce: challenge.nonce });
    assert.equal(read(await client.ask(signed)).type, ALLOCATE_SUCCESS, "the signed request gets its relay");

    // Someone who saw it sends it again from elsewhere: the signature holds, the nonce is not theirs.
    const replayed = read(await replayer.ask(signed));
    assert.equal(replayed.type, ALLOCATE_ERROR, `refused: ${JSON.stringify(replayed)}`);
    assert.equal(replayed.error, 438, "as a stale nonce, which only the password can sign anew");
    // And with a password of their own making, only a 401.
    const forged = allocateRequest({ username, password: "guessed", realm: replayed.realm, nonce: replayed.nonce });
    assert.equal(read(await replayer.ask(forged)).error, 401);
  } finally {
    client.close();
    replayer.close();
    await server.stop();
  }
});

/** A TLS connection to the web port that sends a message and reads one STUN message back. */
async function tlsClient(port) {
  const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: "localhost" });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  let bytes = Buffer.alloc(0);
  let waiting = null;
  const deliver = () => {
    if (!waiting || bytes.length < 20 || bytes.length < 20 + bytes.readUInt16BE(2)) return;
    const length = 20 + bytes.readUInt16BE(2);
    const [reply, resolve] = [bytes.subarray(0, length), waiting];
    bytes = bytes.subarray(length);
    waiting = null;
    resolve(reply);
  };
  socket.on("data", (data) => {
    bytes = Buffer.concat([bytes, data]);
    deliver();
  });
  return {
    ask(message) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no reply over TLS in 5 s")), 5000);
        waiting = (reply) => {
          clearTimeout(timer);
          resolve(reply);
        };
        socket.write(message);
      });
    },
    close: () => socket.destroy(),
  };
}

test("TURN over TLS on the HTTPS port: an allocation is answered there, and pages are served as before", async () => {
  const server = await startNoomWithTurnHere(["--tls-self-signed", "localhost"]);
  try {
    const client = await tlsClient(server.port);
    try {
      const challenge = read(await client.ask(allocateRequest()));
      assert.equal(challenge.error, 401, `the TURN server answers over TLS: ${JSON.stringify(challenge)}`);
      const { username, credential } = turnCredentials(server.secret, "tls");
      const signed = allocateRequest({ username, password: credential, realm: challenge.realm, nonce: challenge.nonce });
      assert.equal(read(await client.ask(signed)).type, ALLOCATE_SUCCESS, "and gives a relay");
    } finally {
      client.close();
    }

    const status = await new Promise((resolve, reject) => {
      https.get(`${server.url}/`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).once("error", reject);
    });
    assert.equal(status, 200, "the page, on the same port");
  } finally {
    await server.stop();
  }
});

test("the committed coturn configuration takes Noom's credentials and relays to no private address", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "noom-coturn-"));
  const port = await freeUdpAndTcpPort();
  const minPort = 49152 + Math.floor(Math.random() * 15000);
  const secret = randomBytes(24).toString("hex");
  // The committed file, with what only a real machine has (its ports, public address, TLS)
  // replaced by loopback's, and its files in a directory of this test's.
  const committed = readFileSync(new URL("../../deploy/coturn/turnserver.conf", import.meta.url), "utf8");
  const lines = committed.split("\n").filter((l) => !/^(tls-listening-port|external-ip|listening-port|min-port|max-port)=/.test(l))
    .map((l) => (l.startsWith("static-auth-secret=") ? `static-auth-secret=${secret}` : l));
  assert.ok(lines.some((l) => l.startsWith("denied-peer-ip=10.0.0.0")), "the file denies private peers");
  lines.push(`listening-port=${port}`, "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", `min-port=${minPort}`, `max-port=${minPort + 50}`,
    "no-tls", "no-dtls", `userdb=${path.join(dir, "turndb")}`, `pidfile=${path.join(dir, "pid")}`,
    `log-file=${path.join(dir, "log")}`, "simple-log", "no-stdout-log");
  const config = path.join(dir, "turnserver.conf");
  writeFileSync(config, lines.join("\n"));
  const coturn = spawn(TURNSERVER_PATH, ["-c", config], { stdio: "ignore" });
  const client = await udpClient(port);
  try {
    await waitUntil(() => stunBinding(port, 200), { what: "coturn answering" });
    const challenge = read(await client.ask(allocateRequest()));
    assert.equal(challenge.error, 401);
    const { username, credential } = turnCredentials(secret, "ann");
    const auth = { username, password: credential, realm: challenge.realm, nonce: challenge.nonce };
    assert.equal(read(await client.ask(allocateRequest(auth))).type, ALLOCATE_SUCCESS, "Noom's credentials get a relay");
    for (const peer of ["10.0.0.1", "192.168.1.1", "172.16.5.4", "127.0.0.1", "169.254.1.1", "100.64.0.1"]) {
      const refused = read(await client.ask(createPermissionRequest(auth, peer)));
      assert.equal(refused.error, 403, `no relay to ${peer}`);
    }
    assert.equal(read(await client.ask(createPermissionRequest(auth, "203.0.113.9"))).type, CREATE_PERMISSION_SUCCESS, "a public peer is relayed to");
  } finally {
    client.close();
    coturn.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
