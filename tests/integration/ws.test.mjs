// Stage 1: the plain WebSocket chat at /ws (JSON frames in, "nick: msg" text frames out).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  connectWs,
  disconnect,
  disconnectAll,
  frames,
  nextFrame,
  received,
  roomName,
  seedClient,
  sendJson,
  waitFor,
  useServer,
} from "../support/clients.mjs";

// Tens of connections a second from this one address: past the default rate of new connections
// an address may open (hostile.test.mjs tests that limit).
const server = useServer({ args: ["--connection-rate-per-address", "0"] });

const message = (payload) => ({ type: "new_message", payload });
const nickname = (payload) => ({ type: "nickname", payload });

/**
 * Broadcasts a sentinel from a fresh connection and checks it is the next frame each of `clients`
 * gets: nothing was broadcast to them before it.
 */
async function sentinel(clients, what) {
  const probe = await connectWs(server.url);
  const text = `sentinel after ${what}`;
  sendJson(probe, message(text));
  for (const client of clients) {
    assert.equal(await nextFrame(client), `Anon: ${text}`, `${what}: something else came first`);
  }
  await disconnect(probe);
}

test("a message is broadcast to everyone, sender included, as 'Anon: <text>'", async () => {
  const a = await connectWs(server.url);
  const b = await connectWs(server.url);
  const c = await connectWs(server.url);
  sendJson(a, message("hello"));
  assert.equal(await nextFrame(a), "Anon: hello");
  assert.equal(await nextFrame(b), "Anon: hello");
  assert.equal(await nextFrame(c), "Anon: hello");
});

test("a connection gets every message sent once it is open", async () => {
  // Speakers take turns so that none goes past the chat rate.
  const speakers = [];
  for (let i = 0; i < 8; i++) speakers.push(await connectWs(server.url));
  for (let round = 0; round < 50; round++) {
    const fresh = await connectWs(server.url, { settle: false });
    sendJson(speakers[round % speakers.length], message(`round ${round}`));
    const got = await nextFrame(fresh).catch(() => "nothing");
    assert.equal(got, `Anon: round ${round}`, `round ${round}: a message sent just after the connection opened`);
    await disconnect(fresh);
  }
});

test("a nickname frame changes the prefix and broadcasts nothing", async () => {
  const a = await connectWs(server.url);
  const b = await connectWs(server.url);
  sendJson(a, nickname("Ann"));
  sendJson(a, message("hi"));
  assert.equal(await nextFrame(b), "Ann: hi");
  assert.equal(await nextFrame(a), "Ann: hi");
  sendJson(b, nickname("  Ben  "));
  sendJson(b, message("hey"));
  assert.equal(await nextFrame(a), "Ben: hey", "the nickname is trimmed");
  assert.deepEqual(frames(a), ["Ann: hi", "Ben: hey"]);
});

test("a message after a nickname is a message, not another nickname", async () => {
  const a = await connectWs(server.url);
  const b = await connectWs(server.url);
  sendJson(a, nickname("Ann"));
  sendJson(a, message("Zed"));
  sendJson(a, message("second"));
  assert.equal(await nextFrame(b), "Ann: Zed");
  assert.equal(await nextFrame(b), "Ann: second");
});

test("messages keep their order and their text as sent", async () => {
  const a = await connectWs(server.url);
  const b = await connectWs(server.url);
  const texts = ["  spaced  ", "two\nlines", "tab\there", "é😀"];
  for (const t of texts) sendJson(a, message(t));
  for (const t of texts) assert.equal(await nextFrame(b), `Anon: ${t}`);
});

test("bad frames are answered 'error: ...' to the sender alone and nothing is broadcast", async () => {
  const listener = await connectWs(server.url);
  const bad = [
    ["not JSON", "hello there"],
    ["a JSON string", JSON.stringify("hello")],
    ["an unknown type", { type: "shout", payload: "hi" }],
    ["no type", { payload: "hi" }],
    ["no payload", { type: "new_message" }],
    ["a number payload", message(5)],
    ["an object payload", message({ text: "hi" })],
    ["an empty message", message("")],
    ["a white space message", message("  \n ")],
    ["a message of 2001 characters", message("m".repeat(2001))],
    ["a control character", message("a\u0000b")],
    ["an empty nickname", nickname("  ")],
    ["a nickname of 33 characters", nickname("n".repeat(33))],
    ["a nickname with a control character", nickname("a\nb")],
    ["a number nickname", nickname(7)],
  ];
  for (const [what, value] of bad) {
    const sender = await connectWs(server.url);
    sender.send(typeof value === "string" ? value : JSON.stringify(value));
    const answer = await nextFrame(sender);
    assert.match(answer, /^error: ./, `${what}: answered ${JSON.stringify(answer)}`);
    await sentinel([sender, listener], what);
    if (value.type === "nickname") {
      // The refused nickname changed nothing.
      sendJson(sender, message("still Anon"));
      assert.equal(await nextFrame(listener), "Anon: still Anon", what);
      assert.equal(await nextFrame(sender), "Anon: still Anon", what);
    }
    await disconnect(sender);
  }
});

test("a flood past the chat rate is refused with errors, and only what passed is broadcast", async () => {
  const sender = await connectWs(server.url);
  const listener = await connectWs(server.url);
  sendJson(sender, nickname("Flood"));
  for (let i = 0; i < 30; i++) sendJson(sender, message(`flood ${i}`));
  // Each flood message gets exactly one answer: its broadcast or an error.
  const answers = [];
  for (let i = 0; i < 30; i++) answers.push(await nextFrame(sender));
  const passed = answers.filter((t) => t.startsWith("Flood: "));
  const refused = answers.filter((t) => t.startsWith("error: "));
  assert.equal(passed.length + refused.length, 30, JSON.stringify(answers));
  assert.ok(refused.length > 0, "30 messages at once go past the burst of 10");
  assert.ok(passed.length >= 10, `the burst of 10 passes (${passed.length})`);

  const probe = await connectWs(server.url);
  sendJson(probe, message("sentinel"));
  await nextFrame(listener, { where: (t) => t === "Anon: sentinel" });
  assert.deepEqual(frames(listener), [...passed, "Anon: sentinel"]);
});

test("a frame over 16 KiB closes the connection", async () => {
  const big = await connectWs(server.url);
  const listener = await connectWs(server.url);
  big.send(JSON.stringify(message("x".repeat(20 * 1024))));
  await waitFor(big, "close");
  await sentinel([listener], "a big frame");
});

test("/ws is separate from the Socket.IO rooms", async () => {
  const room = roomName();
  const seed = await seedClient(server.url, "Seed", room);
  const other = await seedClient(server.url, "Other", room);
  const ws = await connectWs(server.url);
  sendJson(ws, message("only for /ws"));
  assert.equal(await nextFrame(ws), "Anon: only for /ws");
  seed.emit("new_message", "only for the room", room);
  await waitFor(other, "new_message");
  assert.deepEqual(received(other, "new_message"), [["Seed: only for the room"]]);
  await sentinel([ws], "a room message");
});

test("a busy chat: everyone gets every line", { timeout: 60000 }, async () => {
  // 40 people each send 10 messages at once (the default chat burst, so none is over a limit).
  const clients = [];
  for (let i = 0; i < 40; i++) clients.push(await connectWs(server.url));
  const all = [];
  for (const [i, c] of clients.entries()) {
    for (let j = 0; j < 10; j++) {
      sendJson(c, message(`m${i}-${j}`));
      all.push(`Anon: m${i}-${j}`);
    }
  }
  // Wait for every line at every client, up to a common deadline.
  const deadline = Date.now() + 10000;
  let missing = 0;
  for (const c of clients) {
    const want = new Set(all);
    for (const line of frames(c)) want.delete(line);
    while (want.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const line = await nextFrame(c, { timeout: left }).catch(() => null);
      if (line === null) break;
      want.delete(line);
    }
    missing += want.size;
  }
  assert.equal(missing, 0, `${missing} of ${all.length * clients.length} deliveries never arrived`);
});
