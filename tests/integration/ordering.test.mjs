// Ordering: the events of one socket take effect in the order it sent them, without waiting for
// acknowledgements in between, and what they cause reaches the others in that order.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ack,
  ackArgs,
  connect,
  connectNoom,
  disconnectAll,
  mark,
  noomClient,
  participant,
  received,
  roomName,
  seedClient,
  waitFor,
  useServer,
} from "../support/clients.mjs";

// Fewer than the 64 events one socket may have waiting, so none is refused as overloaded.
const MANY = 50;

// Room for MANY messages in one burst; the rate limit has its own tests.
const server = useServer({ args: ["--chat-burst", "500", "--chat-rate", "500"] });

test("nickname sent just before enter_room is the name welcome announces", async () => {
  for (let i = 0; i < 5; i++) {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await connect(server.url);
    bob.emit("nickname", `Bob${i}`);
    const done = ackArgs(bob, "enter_room", room);
    assert.deepEqual(await waitFor(alice, "welcome"), [`Bob${i}`, 2]);
    assert.deepEqual(await done, []);
  }
});

test("nickname sent just before new_message names the message", async () => {
  const room = roomName();
  const alice = await seedClient(server.url, "Alice", room);
  const bob = await seedClient(server.url, "Bob", room);
  bob.emit("nickname", "Robert");
  bob.emit("new_message", "first", room);
  bob.emit("nickname", "Bobby");
  bob.emit("new_message", "second", room);
  assert.deepEqual(await waitFor(alice, "new_message"), ["Robert: first"]);
  assert.deepEqual(await waitFor(alice, "new_message"), ["Bobby: second"]);
});

test("enter_room then new_message without waiting: the message lands in the room", async () => {
  const room = roomName();
  const alice = await seedClient(server.url, "Alice", room);
  const bob = await connect(server.url);
  bob.emit("nickname", "Bob");
  bob.emit("enter_room", room, () => {});
  const sent = ackArgs(bob, "new_message", "right away", room);
  assert.deepEqual(await waitFor(alice, "welcome"), ["Bob", 2]);
  assert.deepEqual(await waitFor(alice, "new_message"), ["Bob: right away"]);
  assert.deepEqual(await sent, []);
});

test("chat:send right after room:join lands in the joined room", async () => {
  const room = roomName();
  const { socket: alice } = await noomClient(server.url, "Alice", room);
  const bob = await connectNoom(server.url);
  const joining = ack(bob, "room:join", { room, nickname: "Bob" });
  const sending = ack(bob, "chat:send", { room, text: "just arrived" });
  const [joined, sent] = await Promise.all([joining, sending]);
  assert.equal(joined.room.name, room);
  assert.ok(sent.message, JSON.stringify(sent));
  assert.deepEqual(await waitFor(alice, "participant:joined"), [{ room, participant: participant(bob, "Bob"), count: 2 }]);
  assert.deepEqual(await waitFor(alice, "chat:message"), [sent.message]);
});

test("user:rename then chat:send: the message carries the new name", async () => {
  const room = roomName();
  const { socket: alice } = await noomClient(server.url, "Alice", room);
  const { socket: bob } = await noomClient(server.url, "Bob", room);
  bob.emit("user:rename", { nickname: "Robert" });
  const { message } = await ack(bob, "chat:send", { room, text: "renamed" });
  assert.deepEqual(message.sender, participant(bob, "Robert"));
  assert.deepEqual(await waitFor(alice, "participant:updated"), [{ room, participant: participant(bob, "Robert") }]);
  assert.deepEqual(await waitFor(alice, "chat:message"), [message]);
  // The rename is seen before the message it names.
  const names = alice.inbox.names();
  assert.ok(names.indexOf("participant:updated") < names.indexOf("chat:message"), names.join(", "));
});

test("room:leave then room:join without waiting: the others see each step in order", async () => {
  const r1 = roomName();
  const r2 = roomName();
  const { socket: alice } = await noomClient(server.url, "Alice", r1);
  const { socket: bob } = await noomClient(server.url, "Bob", r1);
  await waitFor(alice, "participant:joined");
  const from = mark(alice);

  bob.emit("room:leave", {});
  bob.emit("room:join", { room: r1 });
  bob.emit("room:join", { room: r2 }); // leaves r1 first
  const back = await ack(bob, "room:join", { room: r1 });
  assert.equal(back.room.count, 2);

  const steps = [];
  for (let i = 0; i < 2; i++) {
    steps.push(["left", (await waitFor(alice, "participant:left"))[0].count]);
    steps.push(["joined", (await waitFor(alice, "participant:joined"))[0].count]);
  }
  assert.deepEqual(steps, [["left", 1], ["joined", 2], ["left", 1], ["joined", 2]]);
  assert.deepEqual(
    alice.inbox.names().slice(from),
    ["participant:left", "participant:joined", "participant:left", "participant:joined"],
  );
});

test(`${MANY} seed messages sent back to back arrive in order`, async () => {
  const room = roomName();
  const alice = await seedClient(server.url, "Alice", room);
  const bob = await seedClient(server.url, "Bob", room);
  const texts = Array.from({ length: MANY }, (_, i) => `line ${i}`);
  for (const text of texts) bob.emit("new_message", text, room);
  await waitFor(alice, "new_message", { where: (t) => t === `Bob: line ${MANY - 1}` });
  assert.deepEqual(received(alice, "new_message").map(([t]) => t), texts.map((t) => `Bob: ${t}`));
});

test(`${MANY} Noom messages sent back to back arrive in order, to seed and Noom clients`, async () => {
  const room = roomName();
  const { socket: alice } = await noomClient(server.url, "Alice", room);
  const carol = await seedClient(server.url, "Carol", room);
  const { socket: bob } = await noomClient(server.url, "Bob", room);
  const texts = Array.from({ length: MANY }, (_, i) => `line ${i}`);
  const acks = await Promise.all(texts.map((text) => ack(bob, "chat:send", { room, text })));
  assert.deepEqual(acks.map((a) => a.message?.text ?? JSON.stringify(a)), texts);
  await waitFor(alice, "chat:message", { where: (m) => m.text === texts.at(-1) });
  await waitFor(carol, "new_message", { where: (t) => t === `Bob: ${texts.at(-1)}` });
  assert.deepEqual(received(alice, "chat:message").map(([m]) => m), acks.map((a) => a.message));
  assert.deepEqual(received(carol, "new_message").map(([t]) => t), texts.map((t) => `Bob: ${t}`));
  // The history keeps the same order.
  const { joined } = await noomClient(server.url, "Dave", room);
  assert.deepEqual(joined.history, acks.map((a) => a.message).slice(-50));
});

test("messages from two senders keep each sender's order", async () => {
  const room = roomName();
  const alice = await seedClient(server.url, "Alice", room);
  const bob = await seedClient(server.url, "Bob", room);
  const { socket: carol } = await noomClient(server.url, "Carol", room);
  for (let i = 0; i < 30; i++) {
    alice.emit("new_message", `a${i}`, room);
    carol.emit("chat:send", { room, text: `c${i}` });
  }
  await waitFor(bob, "new_message", { where: (t) => t === "Alice: a29" });
  await waitFor(bob, "new_message", { where: (t) => t === "Carol: c29" });
  const lines = received(bob, "new_message").map(([t]) => t);
  assert.deepEqual(lines.filter((t) => t.startsWith("Alice: ")), Array.from({ length: 30 }, (_, i) => `Alice: a${i}`));
  assert.deepEqual(lines.filter((t) => t.startsWith("Carol: ")), Array.from({ length: 30 }, (_, i) => `Carol: c${i}`));
});

test("people entering one room at the same moment each learn of every other exactly once", async () => {
  const room = roomName();
  const n = 20;
  const sockets = await Promise.all(Array.from({ length: n }, (_, i) => connectNoom(server.url, { label: `noom ${i}` })));
  const answers = await Promise.all(sockets.map((s, i) => ack(s, "room:join", { room, nickname: `P${i}` })));
  const everyone = new Set(answers.map((a) => a.self.id));
  for (const [i, socket] of sockets.entries()) {
    // What the join answer listed, then who was announced: together everyone, nobody twice.
    const seen = answers[i].participants.map((p) => p.id);
    assert.equal(new Set(seen).size, seen.length);
    while (seen.length < n) {
      const [{ participant: p, count }] = await waitFor(socket, "participant:joined");
      assert.ok(!seen.includes(p.id), `${p.nickname} announced to P${i}, who already had them`);
      seen.push(p.id);
      assert.equal(count, seen.length);
    }
    assert.deepEqual(new Set(seen), everyone);
  }
});

test("seed clients entering one room at once get one welcome per later arrival, counts rising", async () => {
  const room = roomName();
  const n = 20;
  const sockets = await Promise.all(Array.from({ length: n }, (_, i) => connect(server.url, { label: `seed ${i}` })));
  await Promise.all(sockets.map((s, i) => { s.emit("nickname", `S${i}`); return ackArgs(s, "enter_room", room); }));
  // The last to enter hears of nobody; the first, of everyone else. A sentinel message from a
  // newcomer marks the end of what each can receive.
  const sentinel = await seedClient(server.url, "Sentinel", room);
  sentinel.emit("new_message", "end", room);
  let total = 0;
  for (const socket of sockets) {
    await waitFor(socket, "new_message", { where: (line) => line === "Sentinel: end" });
    const counts = received(socket, "welcome").map(([, count]) => count);
    total += counts.length;
    assert.deepEqual(counts, [...counts].sort((a, b) => a - b), "welcome counts rise");
    assert.equal(new Set(counts).size, counts.length);
  }
  // Every pair once, plus the sentinel's arrival for each of the n.
  assert.equal(total, (n * (n - 1)) / 2 + n);
});

test("a newcomer to a busy room gets its history, then every later message once, in order", async () => {
  // Within what one socket may have waiting (64) and its event burst (100).
  const total = 60;
  const first = 0;
  for (let round = 0; round < 10; round++) {
    const room = roomName();
    const { socket: talker } = await noomClient(server.url, "Talker", room);
    await Promise.all(Array.from({ length: 10 }, (_, i) => ack(talker, "chat:send", { room, text: `old${i}` })));
    // The talker streams messages without waiting while the newcomer enters.
    const sent = Promise.all(
      Array.from({ length: total }, (_, i) => ack(talker, "chat:send", { room, text: `m${first + i}` })),
    );
    const newcomer = await connectNoom(server.url, { label: `newcomer ${round}` });
    const answered = new Promise((resolve) => {
      newcomer.emit("room:join", { room, nickname: `N${round}` }, (joined) => {
        // What arrived before the answer, in arrival order.
        resolve({ joined, before: newcomer.inbox.names().filter((n) => n === "chat:message").length });
      });
    });
    const { joined, before } = await answered;
    assert.ok((await sent).every((answer) => answer.message), "every message accepted");
    assert.equal(before, 0, "no message arrives before the join answer");
    const history = joined.history.map((m) => m.text).filter((t) => /^m\d+$/.test(t));
    const last = history.length ? Number(history.at(-1).slice(1)) : first - 1;
    const expected = Array.from({ length: first + total - 1 - last }, (_, i) => `m${last + 1 + i}`);
    while (received(newcomer, "chat:message").length < expected.length) await waitFor(newcomer, "chat:message");
    assert.deepEqual(received(newcomer, "chat:message").map(([m]) => m.text), expected);
    newcomer.disconnect();
    talker.disconnect();
  }
});
