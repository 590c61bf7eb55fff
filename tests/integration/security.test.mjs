// Attacks found in an adversarial review, each replayed against the real server: what an attacker
// tries, and that it is refused while everyone else keeps working.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ack, connectNoom, expectNothing, noomClient, roomName, upgradeStatus, useServer, waitFor } from "../support/clients.mjs";

describe("session takeover", () => {
  const server = useServer();

  for (const transport of ["polling", "websocket"]) {
    test(`the id a room shows of someone is no transport credential (${transport})`, async () => {
      const room = roomName("takeover");
      const victim = await connectNoom(server.url, { transports: [transport], label: `victim (${transport})` });
      await ack(victim, "room:join", { room, nickname: "Victim" });
      const { socket: attacker, joined } = await noomClient(server.url, "Mallory", room);
      const published = joined.participants.find((p) => p.nickname === "Victim").id;
      assert.equal(published, victim.person);
      assert.notEqual(published, victim.io.engine.id, "the published id is not the Engine.IO session id");
      assert.notEqual(published, victim.id, "nor the Socket.IO socket id");

      const session = `${server.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(published)}`;
      // Posting as the victim.
      const post = await fetch(session, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: `42${JSON.stringify(["chat:send", { room, text: "sent as the victim" }])}`,
      });
      assert.equal(post.status, 400, "POST with a published id");
      // Reading (and so stealing) the victim's pushes.
      const get = await fetch(session);
      assert.equal(get.status, 400, "GET with a published id");
      // Upgrading the victim's session to a WebSocket of the attacker's.
      const upgrade = `/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(published)}`;
      assert.notEqual(await upgradeStatus(server.url, upgrade), 101, "WebSocket upgrade with a published id");

      // Nothing was said in the victim's name, and the victim still hears the room.
      await expectNothing(attacker, "chat:message");
      await ack(attacker, "chat:send", { room, text: "hello" });
      assert.equal((await waitFor(victim, "chat:message"))[0].text, "hello");
      assert.ok(victim.connected);
    });
  }

  test("ids in signals and chat are the same person ids, never session ids", async () => {
    const room = roomName("ids");
    const { socket: alice } = await noomClient(server.url, "Alice", room);
    const { socket: bob } = await noomClient(server.url, "Bob", room);
    await ack(alice, "call:join", { room });
    await ack(bob, "call:join", { room });
    const { message } = await ack(alice, "chat:send", { room, text: "hi" });
    assert.equal(message.sender.id, alice.person);
    await ack(alice, "rtc:signal", { room, to: bob.person, candidate: null });
    const [signal] = await waitFor(bob, "rtc:signal");
    assert.equal(signal.from, alice.person);
    // A session id names nobody.
    const refused = await ack(alice, "rtc:signal", { room, to: bob.io.engine.id, candidate: null });
    assert.equal(refused.error?.code, "peer_unavailable");
  });
});
