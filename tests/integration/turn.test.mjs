// The built-in TURN server (`--turn`) on the wire, as a TURN client speaks to it: an allocation
// over UDP with the credentials Noom hands out; the same signed request replayed from another
// address, which gets no relay; and TURN over TLS on the HTTPS port, which goes on serving pages.
// (Browsers relaying through it: browser/relay.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import https from "node:https";
import tls from "node:tls";
import { startNoomWithTurn, turnCredentials } from "../support/turn.mjs";
import { ALLOCATE_ERROR, ALLOCATE_SUCCESS, allocateRequest, readStun, readTurnReply } from "../support/stun.mjs";

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
