// Draining a node (SIGUSR1, or the admin API): it says it is not ready, takes no new connection,
// carries no new call, keeps serving those it has, and stops once their calls are over, or at
// --drain-timeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { waitUntil, withCluster } from "../support/cluster.mjs";
import { ack, connectNoom, disconnectAll, noomClient, roomName, waitFor } from "../support/clients.mjs";
import { AUDIO_OFFER, mediaPortOf } from "../support/signals.mjs";

async function readyz(url) {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.json() };
}

const exitOf = (node) => new Promise((resolve) => node.proc.once("exit", (code, signal) => resolve({ code, signal })));

test("SIGUSR1: the node drains, keeps serving its call, takes nobody new, and stops once the call is over", { timeout: 60000 }, async () => {
  const node = await startServer({ env: { RUST_LOG: "info" } });
  try {
    const room = roomName("draining");
    const { socket: ann } = await noomClient(node.url, "Ann", room);
    const { socket: bob } = await noomClient(node.url, "Bob", room);
    for (const s of [ann, bob]) assert.equal((await ack(s, "call:join", { room }))?.via, "sfu");
    const exited = exitOf(node);
    node.proc.kill("SIGUSR1");
    await waitUntil(() => /draining: no new users or calls here/.test(node.output()), { what: "the drain's line" });
    assert.deepEqual(await readyz(node.url), { status: 503, body: { ready: false, redis: "off", draining: true } });
    await assert.rejects(connectNoom(node.url), "a new connection is refused");
    const refused = await fetch(`${node.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /draining/);
    // Those inside go on.
    assert.ok(!(await ack(ann, "chat:send", { room, text: "still here" }))?.error);
    assert.equal((await waitFor(bob, "chat:message"))[0].text, "still here");
    assert.equal(node.proc.exitCode, null, "running while the call goes on");
    for (const s of [ann, bob]) await ack(s, "call:leave", { room });
    assert.deepEqual(await exited, { code: 0, signal: null }, "stopped once the call was over");
    assert.match(node.output(), /drained: no call left here/);
  } finally {
    await disconnectAll();
    await node.stop();
  }
});

test("a drain stops the node at --drain-timeout, call or not; the admin API asks for it too", { timeout: 60000 }, async () => {
  const token = "drain-token-0123456789abcdef";
  const node = await startServer({ args: ["--drain-timeout", "1", "--admin-token", token], env: { RUST_LOG: "info" } });
  try {
    const room = roomName("deadline");
    const { socket: ann } = await noomClient(node.url, "Ann", room);
    assert.equal((await ack(ann, "call:join", { room }))?.via, "sfu");
    const exited = exitOf(node);
    const denied = await fetch(`${node.url}/admin/api/drain`, { method: "POST", headers: { authorization: "Bearer wrong-token-0123456789" } });
    assert.equal(denied.status, 401);
    const asked = await fetch(`${node.url}/admin/api/drain`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    assert.equal(asked.status, 200);
    const body = await asked.json();
    assert.deepEqual({ draining: body.draining, calls: body.calls }, { draining: true, calls: 1 });
    assert.equal(typeof body.node, "string");
    assert.deepEqual(await exited, { code: 0, signal: null });
    assert.match(node.output(), /drain deadline passed/);
  } finally {
    await disconnectAll();
    await node.stop();
  }
});

test("in a cluster, a call started on a draining node is carried by another node", { timeout: 60000 }, async () => {
  await withCluster(2, { cleanup: disconnectAll }, async ({ nodes }) => {
    const [a, b] = nodes;
    const room = roomName("moved-on");
    const { socket: ann } = await noomClient(a.url, "Ann", room);
    // Someone in another call keeps A draining rather than stopped.
    const holding = roomName("holding");
    const { socket: held } = await noomClient(a.url, "Held", holding);
    assert.equal((await ack(held, "call:join", { room: holding }))?.via, "sfu");
    a.proc.kill("SIGUSR1");
    await waitUntil(async () => (await readyz(a.url)).body.draining, { what: "A draining" });
    assert.equal((await ack(ann, "call:join", { room }))?.via, "sfu");
    const answer = await ack(ann, "sfu:join", { room, sdp: AUDIO_OFFER });
    assert.equal(mediaPortOf(answer), Number(new URL(b.url).port), "B carries the new call");
  });
});
