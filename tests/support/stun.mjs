// STUN as ICE speaks it (RFC 8489, RFC 8445), enough for a test to be a browser's ICE agent
// checking a path to the media server: a Binding request with the short-term credential of the
// server's answer, and the reading of the reply. Over TCP each message is framed (RFC 4571).
// And as a TURN client speaks it (RFC 8656): an Allocate request, then CreatePermission, signed
// with a long-term credential once the server has named its realm and nonce.
import { createHash, createHmac, randomBytes } from "node:crypto";

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
const USERNAME = 0x0006;
const MESSAGE_INTEGRITY = 0x0008;
const PRIORITY = 0x0024;
const USE_CANDIDATE = 0x0025;
const ICE_CONTROLLING = 0x802a;
const ALLOCATE_REQUEST = 0x0003;
export const ALLOCATE_SUCCESS = 0x0103;
export const ALLOCATE_ERROR = 0x0113;
const ERROR_CODE = 0x0009;
const REALM = 0x0014;
const NONCE = 0x0015;
const REQUESTED_TRANSPORT = 0x0019;

function attribute(type, value) {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/**
 * A message of `type` with `attributes`, signed with `key` (HMAC-SHA1; MESSAGE-INTEGRITY signs
 * everything before it, its own length counted) when one is given. `{ message, transactionId }`.
 */
function message(type, attributes, key) {
  const transactionId = randomBytes(12);
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(body.length + (key ? 24 : 0), 2);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const unsigned = Buffer.concat([header, body]);
  if (!key) return { message: unsigned, transactionId };
  const integrity = createHmac("sha1", key).update(unsigned).digest();
  return { message: Buffer.concat([unsigned, attribute(MESSAGE_INTEGRITY, integrity)]), transactionId };
}

/**
 * A Binding request as a controlling browser sends it: `username` is `<server's ufrag>:<ours>`,
 * signed with the server's ICE password. Returns `{ message, transactionId }`.
 */
export function bindingRequest(username, password) {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1_845_501_695);
  return message(BINDING_REQUEST, [
    attribute(USERNAME, Buffer.from(username)),
    attribute(PRIORITY, priority),
    attribute(ICE_CONTROLLING, randomBytes(8)),
    attribute(USE_CANDIDATE, Buffer.alloc(0)),
  ], password);
}

/**
 * A TURN Allocate request for a UDP relay: unauthenticated (the server answers 401 with its realm
 * and nonce), or with `{ username, password, realm, nonce }` signed as RFC 8656 says.
 */
export function allocateRequest(auth) {
  const transport = attribute(REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
  if (!auth) return message(ALLOCATE_REQUEST, [transport]).message;
  const key = createHash("md5").update(`${auth.username}:${auth.realm}:${auth.password}`).digest();
  return message(ALLOCATE_REQUEST, [
    transport,
    attribute(USERNAME, Buffer.from(auth.username)),
    attribute(REALM, Buffer.from(auth.realm)),
    attribute(NONCE, Buffer.from(auth.nonce)),
  ], key).message;
}

const CREATE_PERMISSION_REQUEST = 0x0008;
export const CREATE_PERMISSION_SUCCESS = 0x0108;
const XOR_PEER_ADDRESS = 0x0012;

/**
 * A TURN CreatePermission request for the IPv4 address `peer`, signed as `allocateRequest`'s
 * with `{ username, password, realm, nonce }`: what a relay must refuse for a private address.
 */
export function createPermissionRequest(auth, peer) {
  const address = Buffer.alloc(8);
  address.writeUInt8(0x01, 1); // IPv4
  address.writeUInt16BE(MAGIC_COOKIE >>> 16, 2); // port 0, XORed
  const octets = peer.split(".").map(Number);
  address.writeUInt32BE((((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) ^ MAGIC_COOKIE) >>> 0, 4);
  const key = createHash("md5").update(`${auth.username}:${auth.realm}:${auth.password}`).digest();
  return message(CREATE_PERMISSION_REQUEST, [
    attribute(XOR_PEER_ADDRESS, address),
    attribute(USERNAME, Buffer.from(auth.username)),
    attribute(REALM, Buffer.from(auth.realm)),
    attribute(NONCE, Buffer.from(auth.nonce)),
  ], key).message;
}

/** A STUN message's realm, nonce and error code (e.g. 401), those it has. */
export function readTurnReply(bytes) {
  const reply = {};
  for (let at = 20; at + 4 <= bytes.length;) {
    const type = bytes.readUInt16BE(at);
    const length = bytes.readUInt16BE(at + 2);
    const value = bytes.subarray(at + 4, at + 4 + length);
    if (type === REALM) reply.realm = value.toString();
    if (type === NONCE) reply.nonce = value.toString();
    if (type === ERROR_CODE) reply.error = value[2] * 100 + value[3];
    at += 4 + Math.ceil(length / 4) * 4;
  }
  return reply;
}

/** A STUN message's type and transaction id, or null for bytes that are no STUN message. */
export function readStun(bytes) {
  if (bytes.length < 20 || bytes.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  return { type: bytes.readUInt16BE(0), transactionId: bytes.subarray(8, 20) };
}

/** `message` after its length in two bytes, as it goes over TCP. */
export function framed(message) {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/**
 * Reads frames from `socket` (a `net.Socket`) until `count` came, it ended, or `timeoutMs`
 * passed: `{ frames, ended }`, the frames that came whole, and whether the connection closed.
 */
export function readFrames(socket, { count = Infinity, timeoutMs }) {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    const frames = [];
    const done = (ended) => {
      clearTimeout(timer);
      socket.removeAllListeners("data");
      socket.removeAllListeners("close");
      resolve({ frames, ended });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (data) => {
      bytes = Buffer.concat([bytes, data]);
      while (bytes.length >= 2 && bytes.length >= 2 + bytes.readUInt16BE(0)) {
        frames.push(bytes.subarray(2, 2 + bytes.readUInt16BE(0)));
        bytes = bytes.subarray(2 + bytes.readUInt16BE(0));
      }
      if (frames.length >= count) done(false);
    });
    socket.once("close", () => done(true));
    socket.once("error", () => done(true));
  });
}
