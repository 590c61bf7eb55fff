// Video calls across two Noom nodes sharing one Redis: Alice's page is served by (and connected
// to) node A, Bob's by node B.
// - Two of them meet in one room, chat, join its call, and each decodes the other's video; the
//   signalling between them (`rtc:signal`, targeted at one socket of the other node) and the media
//   state (a mute) cross the nodes through Redis. A call of two goes page to page over loopback,
//   as in call.test.mjs (no STUN server, nothing tries the internet).
// - Three of them, on both nodes, go through one node's media server: every page sends its media
//   to that node's port, and decodes everyone else's from it.
// - Behind nginx, that node is killed: within 5 s the people of the other node see each other
//   again through their own node's media server, and the page that was on the killed node comes
//   back through nginx as a newcomer; or it shuts down, handing the call over first, and no picture
//   stops for more than 2 s.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { startRedis } from "../support/redis.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectMessageFrom,
  expectPeople,
  expectVisible,
  sendMessage,
  useBrowser,
} from "../support/browser.mjs";
import { startNginx } from "../support/nginx.mjs";
import { decodingSince, expectVideoFrom, metric, watchDecoding } from "../support/sfu.mjs";
import {
  CALL_TIMEOUT,
  expectDecoding,
  expectHearing,
  expectTile,
  expectTiles,
  expectTilesConnected,
  expectTilesPlaying,
  joinCall,
  liveConnections,
  openCallUser,
  ownId,
  selectedPairs,
  tile,
  tiles,
} from "../support/rtc.mjs";

/** @type {Awaited<ReturnType<typeof startRedis>>} */
let redis;
/** @type {Awaited<ReturnType<typeof startServer>>} */
let nodeA;
/** @type {Awaited<ReturnType<typeof startServer>>} */
let nodeB;

// Redis first, then the nodes, in one hook: Node 20 runs a file's top-level `before` hooks concurrently.
before(async () => {
  redis = await startRedis();
  // The media servers are advertised on loopback, where the browsers are.
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--redis-url", redis.url];
  nodeA = await startServer({ args });
  nodeB = await startServer({ args });
});

after(async () => {
  await nodeA?.stop();
  await nodeB?.stop();
  await redis?.close();
});

const browser = useBrowser();

test("Alice on node A and Bob on node B: a call across nodes, each decoding the other's video; Bob's mute shows on Alice's tile of him", { timeout: 180_000 }, async () => {
  const room = "across two nodes";
  const opened = [];
  try {
    const alice = await openCallUser(browser, nodeA.url);
    opened.push(alice);
    const bob = await openCallUser(browser, nodeB.url);
    opened.push(bob);
    assert.notEqual(new URL(alice.page.url()).port, new URL(bob.page.url()).port, "two nodes, two addresses");

    await enterRoom(alice.page, { nickname: "Alice", room });
    await enterRoom(bob.page, { nickname: "Bob", room });
    await expectPeople(alice.page, ["Alice", "Bob"], "Alice's list (node A) shows Bob (node B)");
    await expectPeople(bob.page, ["Alice", "Bob"], "Bob's list (node B) shows Alice (node A)");
    await sendMessage(alice.page, "Hi Bob, from node A");
    await expectMessageFrom(bob.page, "Alice", "Hi Bob, from node A");

    const ids = { Alice: await joinCall(alice.page), Bob: await joinCall(bob.page) };
    assert.notEqual(ids.Alice, ids.Bob);
    const users = { Alice: alice, Bob: bob };
    const other = { Alice: "Bob", Bob: "Alice" };

    for (const [name, user] of Object.entries(users)) {
      await expectTiles(user.page, [ids.Alice, ids.Bob], { who: name });
      await expectTilesConnected(user.page, [ids[other[name]]], { who: name });
    }
    for (const [name, user] of Object.entries(users)) {
      await expectDecoding(user.page, 1, { who: name });
      await expectTilesPlaying(user.page, [ids[other[name]]], { who: name });
      await expectHearing(user.page, 1, { who: name });
    }

    // Each sees the other's tile, named, with camera and microphone on.
    for (const [name, user] of Object.entries(users)) {
      const theirs = (await tiles(user.page)).find((t) => t.id === ids[other[name]]);
      assert.ok(theirs, `${name} has a tile for ${other[name]}`);
      assert.equal(theirs.self, false, `${name}: ${other[name]}'s tile is not their own`);
      assert.match(theirs.name, new RegExp(other[name]), `${name}: ${other[name]}'s tile name`);
      assert.equal(theirs.audio, "on", `${name}: ${other[name]}'s tile data-audio`);
      assert.equal(theirs.video, "on", `${name}: ${other[name]}'s tile data-video`);
      assert.equal(theirs.muted, false, `${name}: ${other[name]}'s .tile-muted hidden`);
    }

    // Bob mutes (on node B): Alice (on node A) sees it on her tile of him.
    await bob.page.locator("#call-mic").click();
    await eventually(async () => assert.equal(await bob.page.locator("#call-mic").getAttribute("aria-pressed"), "false", "Bob's #call-mic"));
    await expectTile(alice.page, ids.Bob, { audio: "off", muted: true, video: "on" }, { who: "Alice" });
    await expectVisible(tile(alice.page, ids.Bob).locator(".tile-muted"), "Alice sees Bob muted");
    await expectTile(bob.page, ids.Alice, { audio: "on", muted: false }, { who: "Bob" });
    // The call goes on: Alice still decodes Bob's video.
    await expectDecoding(alice.page, 1, { who: "Alice" });

    for (const [name, user] of Object.entries(users)) assertNoPageErrors(user, name);
  } finally {
    for (const user of opened.splice(0)) await user.close();
  }
});

/**
 * Opens a page for each `[name, node]` in turn, in `room`, in its call; each goes into `users` as
 * it opens (for the caller to close), with its `name` and call `id`.
 */
async function joinInTurn(users, room, people) {
  for (const [name, node] of people) {
    const user = await openCallUser(browser, node.url);
    users.push(user);
    user.name = name;
    await enterRoom(user.page, { nickname: name, room });
    user.id = await joinCall(user.page);
  }
}

test("Ann on node A, Ben and Cai on node B: a call of three through A's media server, the first to join being on A", { timeout: 180_000 }, async () => {
  const room = "three across two nodes";
  const users = [];
  try {
    await joinInTurn(users, room, [["Ann", nodeA], ["Ben", nodeB], ["Cai", nodeB]]);
    for (const user of users) {
      await expectVideoFrom(user.page, users.filter((u) => u !== user).map((u) => u.id), user.name);
    }
    for (const user of users) {
      // Ann and Ben talked directly while they were two; that connection closes once Cai's came.
      await eventually(async () => {
        const live = await liveConnections(user.page);
        assert.equal(live.length, 1, `${user.name} has one peer connection: ${JSON.stringify(live)}`);
      }, { timeout: CALL_TIMEOUT });
      const [pair] = await selectedPairs(user.page);
      assert.equal(pair.pair?.remote?.port, nodeA.port, `${user.name}'s media goes to A's media port: ${JSON.stringify(pair)}`);
    }
    const out = 'noom_media_datagrams_total{direction="out"}';
    assert.ok((await metric(nodeA.url, out)) > 1000, "A's media server forwarded the call");
    assert.ok(!((await metric(nodeB.url, out)) > 0), "B's media server carried nothing");
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close();
  }
});

/**
 * Two nodes behind nginx, each a media server, and a call of three: Ann's page comes through
 * nginx (which sends this machine's address to one node: that node carries the call, Ann being
 * first in it), Ben's and Cai's straight from the other node. Calls of two go through the server
 * too: what is watched is which server carries the call.
 */
async function callOfThreeBehindNginx(users, room) {
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--redis-url", redis.url];
  const nodes = [await startServer({ args }), await startServer({ args })];
  const proxy = await startNginx({ backends: nodes.map((n) => n.port) });
  const stop = async () => {
    for (const user of users) await user.close();
    await proxy.close();
    for (const node of nodes) await node.stop();
  };
  try {
    await joinInTurn(users, room, [["Ann", proxy]]);
    const served = (await proxy.accessLog()).find((e) => e.uri === "/")?.upstream;
    const carrier = nodes.find((n) => served === `127.0.0.1:${n.port}`);
    assert.ok(carrier, `nginx served Ann's page from one of the nodes: ${served}`);
    const survivor = nodes.find((n) => n !== carrier);
    await joinInTurn(users, room, [["Ben", survivor], ["Cai", survivor]]);
    for (const user of users) {
      await expectVideoFrom(user.page, users.filter((u) => u !== user).map((u) => u.id), user.name);
      const [pair] = await selectedPairs(user.page);
      assert.equal(pair.pair?.remote?.port, carrier.port, `${user.name}'s media goes to Ann's node first`);
    }
    return { carrier, survivor, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Since `watchDecoding` on every page: the longest wait for a frame of each of `pairs`
 * (`[viewer, viewed]`), once each has decoded the other through `node` for a moment.
 */
async function longestWaits(pairs, node, what) {
  for (const [viewer] of pairs) {
    await eventually(async () => {
      const ports = (await selectedPairs(viewer.page)).map((p) => p.pair?.remote?.port);
      assert.deepEqual(ports, [node.port], `${viewer.name}'s one connection, to the node left`);
    }, { timeout: CALL_TIMEOUT });
  }
  for (const [viewer, viewed] of pairs) await expectVideoFrom(viewer.page, [viewed.id], `${viewer.name}, ${what}`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const waits = [];
  for (const [viewer, viewed] of pairs) {
    const seen = (await decodingSince(viewer.page))[viewed.id];
    assert.ok(seen, `${viewer.name} decoded ${viewed.name}`);
    waits.push({ who: `${viewer.name} of ${viewed.name}`, ms: seen.longest });
  }
  return waits;
}

/**
 * Ann comes back through nginx, on the node left, as a newcomer: her page joins the room and the
 * call again by itself. Ms from `since` until she decodes Ben and Cai again and they decode her.
 */
async function annBack(t, [ann, ben, cai], node, since) {
  const newId = await eventually(async () => {
    const id = await ownId(ann.page);
    assert.ok(id && id !== ann.id, `Ann is in the call again: ${id}`);
    return id;
  }, { timeout: CALL_TIMEOUT });
  const back = { ...ann, id: newId };
  const waits = await longestWaits([[back, ben], [back, cai]], node, "Ann back");
  for (const viewer of [ben, cai]) await expectVideoFrom(viewer.page, [newId], `${viewer.name}, seeing Ann back`);
  const times = waits.map((w) => w.ms);
  for (const viewer of [ben, cai]) times.push((await decodingSince(viewer.page))[newId].first - since);
  t.diagnostic(`Ann decoded Ben and Cai again, and they decoded Ann back: ${times.join(", ")} ms after her node went`);
  await expectTiles(ben.page, [ben.id, cai.id, newId], { who: "Ben" });
  return Math.max(...times);
}

/**
 * The node carrying a call of three goes (`how` does it, from the handle of that node): the two
 * pages on the other node go at most `bound` ms without a frame of each other, and the page that
 * was on it is back through nginx (its media within `annBound` ms, if given).
 */
async function nodeGoes(t, room, how, { bound, annBound }) {
  const users = [];
  const { carrier, survivor, stop } = await callOfThreeBehindNginx(users, room);
  try {
    const [, ben, cai] = users;
    for (const user of users) await watchDecoding(user.page);
    const since = Date.now();
    await how(carrier);
    for (const { who, ms } of await longestWaits([[ben, cai], [cai, ben]], survivor, "after Ann's node went")) {
      t.diagnostic(`${who}: no frame for ${ms} ms at most`);
      assert.ok(ms <= bound, `${who}: no frame for ${ms} ms, more than ${bound} ms`);
    }
    const annTook = await annBack(t, users, survivor, since);
    if (annBound) assert.ok(annTook <= annBound, `Ann's media back within ${annBound} ms, not ${annTook} ms`);
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    await stop();
  }
}

test("the node carrying a call is killed: within 5 s the others see each other again through the other node, and the page that was on it comes back through nginx", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node killed", (carrier) => carrier.proc.kill("SIGKILL"), { bound: 5000, annBound: 5000 });
});

test("the node carrying a call shuts down: it hands the call to the other node first, and no picture stops for more than 2 s", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node shut down", async (carrier) => {
    await carrier.stop();
    assert.notEqual(carrier.proc.signalCode, "SIGKILL", "Ann's node stopped on SIGTERM by itself");
  }, { bound: 2000 });
});
