// Shared helpers for the integration tests: connecting Socket.IO and /ws clients, recording
// everything they receive, waiting for events with a timeout, and emitting with acknowledgements.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { startServer, useServer as serveForTests } from "./server.mjs";

export const TIMEOUT = 5000;
export const NOOM_AUTH = Object.freeze({ protocol: "noom/1" });

/** Every client opened through this module that has not been closed yet. */
const open = new Set();

/**
 * Records what a client receives, in arrival order. `take` consumes the first unconsumed entry
 * with a given name (and matching a predicate), waiting for it if needed.
 */
class Inbox {
  constructor(label) {
    this.label = label;
    this.entries = [];
    this.waiters = [];
  }

  push(name, args) {
    const entry = { name, args, taken: false };
    this.entries.push(entry);
    for (const waiter of [...this.waiters]) {
      if (!entry.taken && waiter.name === name && waiter.where(...args)) {
        entry.taken = true;
        waiter.resolve(args);
      }
    }
  }

  take(name, { where = () => true, timeout = TIMEOUT, after = 0 } = {}) {
    const found = this.entries.find((e, i) => i >= after && !e.taken && e.name === name && where(...e.args));
    if (found) {
      found.taken = true;
      return Promise.resolve(found.args);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        name,
        where,
        resolve: (args) => {
          clearTimeout(timer);
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(args);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const counts = new Map();
        for (const e of this.entries) counts.set(e.name, (counts.get(e.name) ?? 0) + 1);
        const seen = [...counts].map(([n, c]) => (c > 1 ? `${n} ×${c}` : n)).join(", ") || "nothing";
        reject(new Error(`${this.label}: no "${name}" within ${timeout} ms (received: ${seen})`));
      }, timeout);
      this.waiters.push(waiter);
    });
  }

  all(name) {
    return this.entries.filter((e) => e.name === name).map((e) => e.args);
  }

  names() {
    return this.entries.map((e) => e.name);
  }
}

/**
 * Resolves with `client` on its `ready` event; on `failed` (or after TIMEOUT) forgets it, runs
 * `close` and rejects.
 */
function settle(client, ready, failed, what, close = () => {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.inbox.label}: ${what} in ${TIMEOUT} ms`)), TIMEOUT);
    client.once(ready, () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.once(failed, (err) => {
      clearTimeout(timer);
      open.delete(client);
      close();
      reject(err);
    });
  });
}

let counter = 0;

/**
 * Connects a Socket.IO client and resolves once it is connected and knows its id
 * (`socket.person`). Everything it receives is recorded from the start (see `waitFor`,
 * `received`).
 *
 * @param {string} url
 * @param {{ auth?: object, transports?: string[], label?: string } & Record<string, unknown>} [options]
 */
export async function connect(url, { auth, transports = ["websocket"], label, ...rest } = {}) {
  const socket = io(url, {
    transports,
    forceNew: true,
    reconnection: false,
    auth,
    ...rest,
  });
  socket.inbox = new Inbox(label ?? `client ${++counter}`);
  // Who the socket is to everyone else (participants, senders, signals): Noom's own id, told to
  // every socket in a `session` push once connected; never the transport's `socket.id`.
  socket.on("session", ({ id }) => {
    socket.person = id;
  });
  socket.onAny((event, ...args) => socket.inbox.push(event, args));
  socket.on("disconnect", (reason) => socket.inbox.push("disconnect", [reason]));
  open.add(socket);
  await settle(socket, "connect", "connect_error", "not connected", () => socket.close());
  if (socket.person === undefined) await socket.inbox.take("session");
  return socket;
}

/** Connects a Noom-flavoured client (handshake `auth` says `noom/1`). */
export function connectNoom(url, options = {}) {
  return connect(url, { ...options, auth: { ...NOOM_AUTH, ...(options.auth ?? {}) } });
}

/** Connects `n` clients at once. */
export function connectMany(url, n, { labelPrefix = "client", ...options } = {}) {
  return Promise.all(Array.from({ length: n }, (_, i) => connect(url, { label: `${labelPrefix} ${i}`, ...options })));
}

/**
 * Waits for (and consumes) the next unconsumed `event` the client received that matches `where`
 * (and, with `after: mark(client)`, that arrived after that mark). Resolves with the event's
 * arguments as an array.
 */
export function waitFor(client, event, options) {
  return client.inbox.take(event, options);
}

/**
 * Retries `check` (which throws while its condition does not hold) until it passes, and fails
 * with its last error after `timeout` ms.
 */
export async function eventually(check, { timeout = 10_000, interval = 50, message } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) {
        if (message) error.message = `${message}: ${error.message}`;
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A mark in what the client received so far, for `waitFor(..., { after })`. */
export function mark(client) {
  return client.inbox.entries.length;
}

/** Every `event` the client has received so far (consumed or not), each as its argument array. */
export function received(client, event) {
  return client.inbox.all(event);
}

/** Emits with an acknowledgement and resolves with the acknowledgement's first argument. */
export function ack(socket, event, ...args) {
  return socket.timeout(TIMEOUT).emitWithAck(event, ...args);
}

/** Emits with an acknowledgement and resolves with all the acknowledgement's arguments. */
export function ackArgs(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(TIMEOUT).emit(event, ...args, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
}

/** Asserts that an acknowledgement is exactly `{ error: { code, message } }` with the given code. */
export function assertError(answer, code, what = "") {
  assert.ok(answer && typeof answer === "object", `${what}: expected an error object, got ${JSON.stringify(answer)}`);
  assert.deepEqual(Object.keys(answer), ["error"], `${what}: ${JSON.stringify(answer)}`);
  assert.equal(answer.error.code, code, `${what}: ${JSON.stringify(answer)}`);
  assert.equal(typeof answer.error.message, "string", `${what}: ${JSON.stringify(answer)}`);
  assert.ok(answer.error.message.length > 0, `${what}: empty error message`);
  assert.deepEqual(Object.keys(answer.error).sort(), ["code", "message"], `${what}: ${JSON.stringify(answer)}`);
}

/** Emits with an acknowledgement and asserts the answer is an error with `code`. */
export async function expectError(socket, code, event, ...args) {
  const answer = await ack(socket, event, ...args);
  assertError(answer, code, `${event}(${args.map((a) => JSON.stringify(a)).join(", ")})`);
  return answer;
}

/**
 * How long a test waits before asserting that something did not happen. What must not arrive has
 * no event to wait for; when a sentinel (a later event known to arrive after it) is not enough,
 * this short wait gives a stray event the time to show up.
 */
export const QUIET_MS = 300;

/** Resolves after `ms` milliseconds. */
export function pause(ms = QUIET_MS) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits `QUIET_MS` (or `wait`), then asserts that none of `clients` has received any of `events`
 * (consumed or not).
 */
export async function expectNothing(clients, events, { wait = QUIET_MS, what = "" } = {}) {
  await pause(wait);
  for (const client of [].concat(clients)) {
    for (const event of [].concat(events)) {
      const got = received(client, event);
      assert.deepEqual(got, [], `${client.inbox.label} received ${event}${what ? ` (${what})` : ""}: ${JSON.stringify(got).slice(0, 300)}`);
    }
  }
}

/** Disconnects a client and waits until it is closed on our side. */
export function disconnect(client) {
  open.delete(client);
  if (client instanceof WebSocket) {
    if (client.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      client.once("close", () => resolve());
      client.close();
    });
  }
  client.disconnect();
  return Promise.resolve();
}

/** Disconnects every client still open (use in `afterEach`/`after`). */
export async function disconnectAll() {
  await Promise.all([...open].map((c) => disconnect(c)));
}

/** Waits until the server closes this Socket.IO client. */
export async function waitForDisconnect(socket, timeout = TIMEOUT) {
  const [reason] = await waitFor(socket, "disconnect", { timeout });
  return reason;
}

/** A room name unique to this run. */
let roomCounter = 0;
export function roomName(prefix = "room") {
  return `${prefix}-${process.pid}-${++roomCounter}`;
}

/**
 * A room name unique to this run in the shape of an unlisted room's link (a random end of ten
 * letters and digits): the server makes an unlisted room under it as asked, where it would add
 * such an end to any other name.
 */
export function unlistedName(prefix = "room") {
  const letters = Array.from({ length: 10 }, () => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(Math.random() * 62)]);
  return `${roomName(prefix)}-${letters.join("")}`;
}

/** Sorted copy of a list of strings (for comparing room lists whatever order they come in). */
export function sorted(list) {
  return [...list].sort();
}

/** Opens a raw WebSocket and resolves with the HTTP status of a refused upgrade, or 101. */
export function upgradeStatus(base, path, origin) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace(/^http/, "ws") + path, origin ? { origin } : {});
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode);
      res.resume();
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("error", (err) => reject(err));
  });
}

/**
 * Opens a plain WebSocket to `/ws` and resolves once it is open. Text frames are recorded as
 * "frame" entries (one argument: the text), the close as "close" (code).
 *
 * With `settle` (the default) it then sends one frame that is not JSON and waits for the
 * server's "error: " answer, so the server is surely serving this connection, and forgets both:
 * tests start from an empty inbox. Without it, the connection is used as soon as it is open.
 */
export async function connectWs(url, { settle = true, ...options } = {}) {
  const ws = await openWs(url, options);
  if (settle) {
    ws.send("settle");
    const [answer] = await waitFor(ws, "frame", { where: (t) => t.startsWith("error: ") });
    assert.match(answer, /^error: /);
    ws.inbox.entries = ws.inbox.entries.filter((e) => !e.taken);
  }
  return ws;
}

function openWs(url, { path = "/ws", label, ...options } = {}) {
  const ws = new WebSocket(url.replace(/^http/, "ws") + path, options);
  ws.inbox = new Inbox(label ?? `ws client ${++counter}`);
  ws.on("message", (data, isBinary) => ws.inbox.push(isBinary ? "binary" : "frame", [data.toString()]));
  ws.on("close", (code) => ws.inbox.push("close", [code]));
  ws.on("error", (err) => ws.inbox.push("error", [err]));
  open.add(ws);
  return settle(ws, "open", "error", "not open");
}

/** Sends one JSON frame on a /ws client. */
export function sendJson(ws, value) {
  ws.send(JSON.stringify(value));
}

/** Waits for the next text frame on a /ws client (optionally one matching `where`); resolves with its text. */
export async function nextFrame(ws, options) {
  const [text] = await waitFor(ws, "frame", options);
  return text;
}

/** Every text frame a /ws client has received so far. */
export function frames(ws) {
  return received(ws, "frame").map(([text]) => text);
}

/**
 * A seed-style client: connects (no `auth`), sets `nickname` the seed way (no ack) when given,
 * and enters each room with `enter_room`, waiting for `done`.
 */
export async function seedClient(url, nickname, rooms = [], options = {}) {
  const socket = await connect(url, { label: nickname ? `seed ${nickname}` : undefined, ...options });
  if (nickname !== undefined) socket.emit("nickname", nickname);
  for (const room of [].concat(rooms)) {
    const res = await ackArgs(socket, "enter_room", room);
    assert.deepEqual(res, [], `enter_room(${JSON.stringify(room)}) should call done() with no argument`);
  }
  return socket;
}

/**
 * A Noom client: connects with `auth: { protocol: "noom/1" }` and, when `room` is given, joins it
 * with `room:join` (naming itself in the same event). Resolves with `{ socket, joined }` where
 * `joined` is the `room:join` acknowledgement.
 */
export async function noomClient(url, nickname, room, { unlisted, ...options } = {}) {
  const socket = await connectNoom(url, { label: nickname ? `noom ${nickname}` : undefined, ...options });
  let joined;
  if (room !== undefined) {
    const payload = { room };
    if (nickname !== undefined) payload.nickname = nickname;
    if (unlisted !== undefined) payload.unlisted = unlisted;
    joined = await ack(socket, "room:join", payload);
    assert.ok(joined && !joined.error, `room:join ${JSON.stringify(payload)} failed: ${JSON.stringify(joined)}`);
  } else if (nickname !== undefined) {
    const renamed = await ack(socket, "user:rename", { nickname });
    assert.ok(renamed && !renamed.error, `user:rename failed: ${JSON.stringify(renamed)}`);
  }
  return { socket, joined };
}

/** Waits for the `room_change` whose list (in any order) is exactly `names`; resolves with the list. */
export async function waitForRoomList(socket, names, options = {}) {
  const want = sorted(names);
  const [list] = await waitFor(socket, "room_change", {
    ...options,
    where: (rooms) => Array.isArray(rooms) && isDeepStrictEqual(sorted(rooms), want),
  });
  return list;
}

/** Waits for the `directory` push that is exactly `directory`; resolves with it. */
export async function waitForDirectory(socket, directory, options = {}) {
  const [dir] = await waitFor(socket, "directory", { ...options, where: (d) => isDeepStrictEqual(d, directory) });
  return dir;
}

/** The `{ id, nickname }` of a connected socket. */
export function participant(socket, nickname) {
  return { id: socket.person, nickname };
}

/** Someone as the room lists them while they host it (the one who opened it, at first). */
export function hosting(who) {
  return { ...who, host: true };
}

/**
 * A Noom lobby watcher synchronised with the server: it waits for the directory that lists exactly
 * one fresh room (`base`, with `owner` in it), so whatever earlier tests left behind is gone and
 * every later `directory` push is caused by what follows. `mark` counts the pushes so far.
 */
export async function syncedLobby(url) {
  const { socket: watcher } = await noomClient(url, "Watcher");
  const base = roomName("base");
  const { socket: owner } = await noomClient(url, "Owner", base);
  await waitForDirectory(watcher, { rooms: [{ name: base, count: 1, inCall: 0 }], total: 1 });
  return { watcher, base, owner, mark: received(watcher, "directory").length };
}

/** The same for a seed watcher and `room_change`: it waits for the list that is exactly `[base]`. */
export async function syncedRoomList(url) {
  const watcher = await connect(url, { label: "seed watcher" });
  const base = roomName("base");
  const owner = await seedClient(url, "Owner", base);
  await waitForRoomList(watcher, [base]);
  return { watcher, base, owner, mark: received(watcher, "room_change").length };
}

/** A server for the enclosing test file; clients are disconnected after each test. */
export const useServer = (options) => serveForTests(options, { cleanup: disconnectAll });

/** A server for one test: `run(server)`, then every client is disconnected and it stops. */
export async function withServer(options, run) {
  const server = await startServer(options);
  try {
    return await run(server);
  } finally {
    await disconnectAll();
    await server.stop();
  }
}
