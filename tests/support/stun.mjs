// STUN as ICE speaks it (RFC 8489, RFC 8445), enough for a test to be a browser's ICE agent
// checking a path to the media server: a Binding request with the short-term credential of the
// server's answer, and the reading of the reply. Over TCP each message is framed (RFC 4571).
import { createHmac, randomBytes } from "node:crypto";

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
export const BINDING_SUCCESS = 0x0101;
const USERNAME = 0x0006;
const MESSAGE_INTEGRITY = 0x0008;
const PRIORITY = 0x0024;
const USE_CANDIDATE = 0x0025;
const ICE_CONTROLLING = 0x802a;

function attribute(type, value) {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/**
 * A Binding request as a controlling browser sends it: `username` is `<server's ufrag>:<ours>`,
 * signed with the server's ICE password. Returns `{ message, transactionId }`.
 */
export function bindingRequest(username, password) {
  const transactionId = randomBytes(12);
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1_845_501_695);
  const attributes = Buffer.concat([
    attribute(USERNAME, Buffer.from(username)),
    attribute(PRIORITY, priority),
    attribute(ICE_CONTROLLING, randomBytes(8)),
    attribute(USE_CANDIDATE, Buffer.alloc(0)),
  ]);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(BINDING_REQUEST, 0);
  // The length counts MESSAGE-INTEGRITY, which signs everything before it.
  header.writeUInt16BE(attributes.length + 24, 2);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const signed = Buffer.concat([header, attributes]);
  const integrity = createHmac("sha1", password).update(signed).digest();
  return { message: Buffer.concat([signed, attribute(MESSAGE_INTEGRITY, integrity)]), transactionId };
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
