// Clients limited to HTTP long-polling (no WebSocket upgrade) get the same service, in the same
// rooms as WebSocket clients.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ack,
  ackArgs,
  disconnect,
  disconnectAll,
  noomClient,
  participant,
  hosting,
  received,
  roomName,
  seedClient,
  waitFor,
  waitForDisconnect,
  useServer,
} from "../support/clients.mjs";

const polling = { transports: ["polling"] };

const server = useServer({ args: ["--directory-interval-ms", "100"] });

test("the seed flow over long-polling, with a WebSocket client in the same room", async () => {
  const room = roomName();
  const viaWs = await seedClient(server.url, "WebSocket", room);
  const viaPolling = await seedClient(server.url, "Polling", room, polling);
  assert.equal(viaPolling.io.engine.transport.name, "polling");
  assert.deepEqual(await waitFor(viaWs, "welcome"), ["Polling", 2]);

  assert.deepEqual(await ackArgs(viaPolling, "new_message", "over polling", room), []);
  assert.deepEqual(await waitFor(viaWs, "new_message"), ["Polling: over polling"]);
  assert.deepEqual(await ackArgs(viaWs, "new_message", "over websocket", room), []);
  assert.deepEqual(await waitFor(viaPolling, "new_message"), ["WebSocket: over websocket"]);

  const other = roomName();
  await seedClient(server.url, "Third", other);
  const [rooms] = await waitFor(viaPolling, "room_change", { where: (list) => list.includes(other) });
  assert.ok(rooms.includes(room));

  await disconnect(viaWs);
  assert.deepEqual(await waitFor(viaPolling, "bye"), ["WebSocket", 1]);
  assert.equal(received(viaPolling, "new_message").length, 1, "no echo of its own message");
});

test("the Noom flow over long-polling, with a WebSocket client in the same room", async () => {
  const room = roomName();
  const { socket: viaWs } = await noomClient(server.url, "WebSocket", room);
  const { socket: viaPolling, joined } = await noomClient(server.url, "Polling", room, polling);
  assert.equal(viaPolling.io.engine.transport.name, "polling");
  assert.deepEqual(joined.participants, [hosting(participant(viaWs, "WebSocket")), participant(viaPolling, "Polling")]);
  assert.deepEqual(await waitFor(viaWs, "participant:joined"), [{ room, participant: participant(viaPolling, "Polling"), count: 2 }]);

  const { message } = await ack(viaPolling, "chat:send", { room, text: "over polling" });
  assert.deepEqual(await waitFor(viaWs, "chat:message"), [message]);
  const reply = await ack(viaWs, "chat:send", { room, text: "over websocket" });
  assert.deepEqual(await waitFor(viaPolling, "chat:message"), [reply.message]);

  assert.deepEqual(await ack(viaPolling, "user:rename", { nickname: "Poller" }), { nickname: "Poller" });
  assert.deepEqual(await waitFor(viaWs, "participant:updated"), [{ room, participant: participant(viaPolling, "Poller") }]);

  assert.deepEqual(await ack(viaPolling, "room:leave", {}), { left: [room] });
  const [dir] = await waitFor(viaPolling, "directory", { where: (d) => d.rooms.some((r) => r.name === room && r.count === 1) });
  assert.ok(dir.total >= 1);
  assert.deepEqual(await waitFor(viaWs, "participant:left"), [{ room, participant: participant(viaPolling, "Poller"), count: 1 }]);
});

test("a long-polling client receives many messages in order", async () => {
  const room = roomName();
  const sender = await seedClient(server.url, "Sender", room);
  const viaPolling = await seedClient(server.url, "Polling", room, polling);
  for (let i = 0; i < 10; i++) sender.emit("new_message", `m${i}`, room);
  await waitFor(viaPolling, "new_message", { where: (t) => t === "Sender: m9" });
  assert.deepEqual(received(viaPolling, "new_message").map(([t]) => t), Array.from({ length: 10 }, (_, i) => `Sender: m${i}`));
});

test("a long-polling client that disconnects is said bye", async () => {
  const room = roomName();
  const { socket: viaWs } = await noomClient(server.url, "WebSocket", room);
  const viaPolling = await seedClient(server.url, "Polling", room, polling);
  const who = participant(viaPolling, "Polling");
  await disconnect(viaPolling);
  assert.deepEqual(await waitFor(viaWs, "participant:left"), [{ room, participant: who, count: 1 }]);
});

test("a long-polling packet over 640 KiB closes the connection and relays nothing", async () => {
  const room = roomName();
  const ear = await seedClient(server.url, "Ear", room);
  const big = await seedClient(server.url, "Big", room, polling);
  big.emit("new_message", "x".repeat(700 * 1024), room);
  await waitForDisconnect(big);
  assert.deepEqual(await waitFor(ear, "bye"), ["Big", 1]);
  assert.equal(received(ear, "new_message").length, 0);
});
