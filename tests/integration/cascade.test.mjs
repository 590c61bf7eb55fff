// Calls spanning nodes (`--cascade`), without a browser: each node's media server answers its own
// people, the nodes of a call hold one connection between them, and nobody but a node of the
// cluster gets one. (The media itself, across real Chromium pages: tests/browser/cluster-call.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { withCluster, waitUntil } from "../support/cluster.mjs";
import { ack, disconnectAll, noomClient, roomName } from "../support/clients.mjs";
import { metric } from "../support/sfu.mjs";
import { AUDIO_OFFER, mediaPortOf } from "../support/signals.mjs";

const args = ["--cascade", "--media-address", "127.0.0.1", "--pairs", "server"];

/** A Noom client on `node` in `room`'s call, its media joined there; resolves with its answer's port. */
async function inCall(node, nickname, room) {
  const { socket } = await noomClient(node.url, nickname, room, { label: `${nickname}@${node.label}` });
  const joined = await ack(socket, "call:join", { room });
  assert.equal(joined?.via, "sfu", `${nickname}: ${JSON.stringify(joined)}`);
  return mediaPortOf(await ack(socket, "sfu:join", { room, sdp: AUDIO_OFFER }));
}

/** Whether `port` on loopback closes a connection that sent `bytes`, within `ms`. */
function closesAfter(port, bytes, ms) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    const timer = setTimeout(() => { socket.destroy(); resolve(false); }, ms);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => { clearTimeout(timer); resolve(true); });
  });
}

test("each page's media goes to its own node, and the two nodes of a call hold one connection between them", { timeout: 60_000 }, async () => {
  await withCluster(2, { args, cleanup: disconnectAll }, async ({ nodes: [a, b] }) => {
    const room = roomName("cascade");
    assert.equal(await inCall(a, "Ann", room), a.port, "Ann is sent to her own node's port");
    assert.equal(await inCall(b, "Ben", room), b.port, "Ben too, though Ann's call began on A");
    for (const node of [a, b]) {
      await waitUntil(async () => (await metric(node.url, "noom_media_relay_connections")) === 1, { timeout: 10_000 });
    }
    // Nothing was claimed in Redis for the call: a third person on A still goes to A.
    assert.equal(await inCall(a, "Abe", room), a.port);
  });
});

test("a stranger at the web port posing as a node is refused, and the node goes on", { timeout: 60_000 }, async () => {
  await withCluster(1, { args }, async ({ nodes: [a] }) => {
    // Only the first byte, then nothing: dropped once the hello is overdue.
    assert.ok(await closesAfter(a.port, Buffer.from([0xfe]), 10_000), "a connection without a hello is closed");
    const hello = Buffer.from(JSON.stringify({ kind: "hello", node: "intruder", key: "guessed", version: 1 }));
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(hello.length + 1);
    frame[4] = 1;
    assert.ok(await closesAfter(a.port, Buffer.concat([Buffer.from([0xfe]), frame, hello]), 5_000), "a wrong key is closed at once");
    assert.ok(await closesAfter(a.port, Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff]), 5_000), "a frame too long is closed at once");
    assert.equal(await metric(a.url, "noom_media_relay_connections"), 0);
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200, "the node goes on");
    assert.match(a.output(), /a media server connection refused/);
  });
});
