// Chat and history: chat:send, chat:message, the room history, and seed and Noom clients talking
// to each other in the same room.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import {
  ack,
  ackArgs,
  disconnectAll,
  noomClient,
  participant,
  received,
  roomName,
  seedClient,
  waitFor,
  useServer,
} from "../support/clients.mjs";

// A generous chat rate: these tests send many messages and are not about the rate limit.
const server = useServer({ args: ["--chat-burst", "200", "--chat-rate", "200"] });

function assertChatMessage(message, { room, sender, text }) {
  assert.deepEqual(Object.keys(message).sort(), ["id", "room", "sender", "text", "ts"]);
  assert.equal(typeof message.id, "string");
  assert.ok(message.id.length > 0);
  assert.equal(message.room, room);
  assert.deepEqual(message.sender, sender);
  assert.equal(message.text, text);
  assert.ok(Number.isInteger(message.ts), `ts is an integer: ${message.ts}`);
  // Server time in milliseconds since the epoch (not seconds, not a counter).
  assert.ok(Math.abs(message.ts - Date.now()) < 10 * 60 * 1000, `ts is the current time in ms: ${message.ts}`);
}

describe("chat:send", () => {
  test("answers the ChatMessage; the others get chat:message, the sender only the ack", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    const { socket: carol } = await noomClient(server.url, "Carol", room);

    const { message } = await ack(alice, "chat:send", { room, text: "hello" });
    assertChatMessage(message, { room, sender: participant(alice, "Alice"), text: "hello" });
    assert.deepEqual(await ack(alice, "chat:send", { room, text: "x" }).then((a) => Object.keys(a)), ["message"]);
    assert.deepEqual(await waitFor(bob, "chat:message"), [message]);
    assert.deepEqual(await waitFor(carol, "chat:message"), [message]);

    const reply = await ack(bob, "chat:send", { room, text: "hi Alice" });
    assert.deepEqual(await waitFor(alice, "chat:message"), [reply.message]);
    assert.deepEqual(received(alice, "chat:message"), [[reply.message]], "no echo to the sender");
  });

  test("keeps the text as sent: surrounding white space, line feeds and tabs", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    const text = "  first line\n\tsecond line  ";
    const { message } = await ack(alice, "chat:send", { room, text });
    assert.equal(message.text, text);
    const [got] = await waitFor(bob, "chat:message");
    assert.equal(got.text, text);
  });

  test("accepts Unicode text up to 2000 characters", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const text = "é😀".repeat(1000); // 2000 Unicode scalar values, 3000 UTF-16 code units
    const { message } = await ack(alice, "chat:send", { room, text });
    assert.equal(message.text, text);
  });

  test("works without an acknowledgement callback", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    alice.emit("chat:send", { room, text: "no ack wanted" });
    const [message] = await waitFor(bob, "chat:message");
    assertChatMessage(message, { room, sender: participant(alice, "Alice"), text: "no ack wanted" });
  });

  test("message ids are unique", async () => {
    const r1 = roomName();
    const r2 = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", r1);
    const { socket: bob } = await noomClient(server.url, "Bob", r2);
    const ids = new Set();
    for (let i = 0; i < 10; i++) {
      ids.add((await ack(alice, "chat:send", { room: r1, text: `a${i}` })).message.id);
      ids.add((await ack(bob, "chat:send", { room: r2, text: `b${i}` })).message.id);
    }
    assert.equal(ids.size, 20);
  });
});

test("message ids stay unique across restarts of the server", async () => {
  const ids = [];
  for (let run = 0; run < 2; run++) {
    const again = await startServer();
    try {
      const room = roomName();
      const { socket } = await noomClient(again.url, "Alice", room);
      ids.push((await ack(socket, "chat:send", { room, text: "first message after a start" })).message.id);
    } finally {
      await disconnectAll();
      await again.stop();
    }
  }
  assert.notEqual(ids[0], ids[1]);
});

describe("history", () => {
  test("a newcomer gets the last 50 messages, oldest first", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const sent = [];
    for (let i = 0; i < 60; i++) sent.push((await ack(alice, "chat:send", { room, text: `message ${i}` })).message);
    const { joined } = await noomClient(server.url, "Bob", room);
    assert.equal(joined.history.length, 50);
    assert.deepEqual(joined.history, sent.slice(10));
  });

  test("a message keeps the name its sender had when sending it", async () => {
    const room = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    await ack(alice, "chat:send", { room, text: "before" });
    await ack(alice, "user:rename", { nickname: "Alicia" });
    await ack(alice, "chat:send", { room, text: "after" });
    const { joined } = await noomClient(server.url, "Bob", room);
    assert.deepEqual(
      joined.history.map((m) => [m.sender, m.text]),
      [
        [participant(alice, "Alice"), "before"],
        [participant(alice, "Alicia"), "after"],
      ],
    );
  });

  test("seed messages join the history too", async () => {
    const room = roomName();
    const seedAlice = await seedClient(server.url, "Alice", room);
    assert.deepEqual(await ackArgs(seedAlice, "new_message", "from the seed", room), []);
    const { joined } = await noomClient(server.url, "Bob", room);
    assert.equal(joined.history.length, 1);
    assertChatMessage(joined.history[0], { room, sender: participant(seedAlice, "Alice"), text: "from the seed" });
  });

  test("history is per room", async () => {
    const r1 = roomName();
    const r2 = roomName();
    const { socket: alice } = await noomClient(server.url, "Alice", r1);
    await ack(alice, "chat:send", { room: r1, text: "in one" });
    await noomClient(server.url, "Keeper", r2);
    const { joined } = await noomClient(server.url, "Bob", r2);
    assert.deepEqual(joined.history, []);
  });

  test("--history-size sets how many messages are kept", async () => {
    const small = await startServer({ args: ["--history-size", "5"] });
    try {
      const room = roomName();
      const { socket: alice } = await noomClient(small.url, "Alice", room);
      const sent = [];
      for (let i = 0; i < 8; i++) sent.push((await ack(alice, "chat:send", { room, text: `m${i}` })).message);
      const { joined } = await noomClient(small.url, "Bob", room);
      assert.deepEqual(joined.history, sent.slice(3));
    } finally {
      await disconnectAll();
      await small.stop();
    }
  });
});

describe("seed and Noom clients in the same room", () => {
  test("see each other's messages, each in their own format", async () => {
    const room = roomName("lobby-talk");
    const seedAlice = await seedClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);

    assert.deepEqual(await ackArgs(seedAlice, "new_message", "hello Bob", room), []);
    const [fromSeed] = await waitFor(bob, "chat:message");
    assertChatMessage(fromSeed, { room, sender: participant(seedAlice, "Alice"), text: "hello Bob" });

    await ack(bob, "chat:send", { room, text: "hello Alice" });
    assert.deepEqual(await waitFor(seedAlice, "new_message"), ["Bob: hello Alice"]);

    // Neither gets the other family's pushes.
    assert.equal(received(seedAlice, "chat:message").length, 0);
    assert.equal(received(bob, "new_message").length, 0);
  });

  test("counts are true across families", async () => {
    const room = roomName();
    const seedAlice = await seedClient(server.url, "Alice", room);
    const { socket: bob, joined } = await noomClient(server.url, "Bob", room);
    assert.equal(joined.room.count, 2);
    assert.deepEqual(await waitFor(seedAlice, "welcome"), ["Bob", 2]);

    const seedCarol = await seedClient(server.url, "Carol", room);
    assert.deepEqual(await waitFor(seedAlice, "welcome"), ["Carol", 3]);
    assert.deepEqual(await waitFor(bob, "participant:joined"), [{ room, participant: participant(seedCarol, "Carol"), count: 3 }]);

    await ack(bob, "room:leave", {});
    assert.deepEqual(await waitFor(seedAlice, "bye"), ["Bob", 2]);
    assert.deepEqual(await waitFor(seedCarol, "bye"), ["Bob", 2]);
    // Noom pushes go to Noom sockets only; seed pushes to seed sockets only.
    assert.equal(received(seedAlice, "participant:joined").length, 0);
    assert.equal(received(bob, "welcome").length, 0);
  });

  test("a seed socket that emits a Noom event gets Noom pushes from then on", async () => {
    const room = roomName();
    const alice = await seedClient(server.url, "Alice", room);
    const bob = await seedClient(server.url, "Bob", room);
    await ack(alice, "directory:get", {});

    await ackArgs(bob, "new_message", "now in Noom format", room);
    const [message] = await waitFor(alice, "chat:message");
    assertChatMessage(message, { room, sender: participant(bob, "Bob"), text: "now in Noom format" });
    assert.equal(received(alice, "new_message").length, 0);
  });
});

describe("a busy room", () => {
  // 32 people; 30 of them each send 10 messages at once (the default chat burst, so none is over
  // any limit). Every message is acknowledged and reaches everyone else.
  test("every message is acknowledged and reaches everyone", { timeout: 60000 }, async () => {
    const room = roomName("busy");
    const { socket: noomEar } = await noomClient(server.url, "NoomEar", room);
    const seedEar = await seedClient(server.url, "SeedEar", room);
    const senders = [];
    for (let i = 0; i < 30; i++) {
      senders.push(i % 2 ? await seedClient(server.url, `S${i}`, room) : (await noomClient(server.url, `N${i}`, room)).socket);
    }
    const texts = (i) => Array.from({ length: 10 }, (_, j) => `m${i}-${j}`);
    const answers = await Promise.all(
      senders.flatMap((s, i) =>
        texts(i).map((text) =>
          (i % 2 ? ackArgs(s, "new_message", text, room) : ack(s, "chat:send", { room, text }).then((a) => [a])).then(
            (a) => (a.length === 0 || a[0]?.message ? "ok" : JSON.stringify(a)),
            () => "no answer",
          ),
        ),
      ),
    );
    const acknowledged = answers.filter((a) => a === "ok").length;
    const refused = answers.filter((a) => a !== "ok" && a !== "no answer");
    assert.deepEqual(refused, [], "nothing is refused");

    // A last message from someone else: whatever each one gets before it is all it will get.
    const { socket: closer } = await noomClient(server.url, "Closer", room);
    await ack(closer, "chat:send", { room, text: "the end" });
    const textOf = (event, [arg]) => (event === "chat:message" ? arg.text : arg.slice(arg.indexOf(": ") + 2));
    const missing = async (client, event, expected) => {
      await waitFor(client, event, { where: (...args) => textOf(event, args) === "the end" });
      const seen = new Set(received(client, event).map((args) => textOf(event, args)));
      return expected.filter((t) => !seen.has(t)).length;
    };
    const all = senders.flatMap((_, i) => texts(i));
    let missingForSenders = 0;
    for (const [i, s] of senders.entries()) {
      const others = senders.flatMap((_, k) => (k === i ? [] : texts(k)));
      missingForSenders += await missing(s, i % 2 ? "new_message" : "chat:message", others);
    }
    assert.deepEqual(
      {
        acknowledged,
        missingForNoomEar: await missing(noomEar, "chat:message", all),
        missingForSeedEar: await missing(seedEar, "new_message", all),
        missingForSenders,
      },
      { acknowledged: 300, missingForNoomEar: 0, missingForSeedEar: 0, missingForSenders: 0 },
    );
  });
});

