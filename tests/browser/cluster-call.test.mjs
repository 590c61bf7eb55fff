// Video calls across two Noom nodes sharing one Redis: Alice's page is served by (and connected
// to) node A, Bob's by node B.
// - Two of them meet in one room, chat, join its call, and each decodes the other's video; the
//   signalling between them (`rtc:signal`, targeted at one socket of the other node) and the media
//   state (a mute) cross the nodes through Redis. A call of two goes page to page over loopback,
//   as in call.test.mjs (no STUN server, nothing tries the internet).
// - Three of them, on both nodes, go through one node's media server: every page sends its media
//   to that node's port, and decodes everyone else's from it.
// - That node is killed: the people of the other node stay in the call, and see each other again
//   through their own node's media server.
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
import { expectVideoFrom, metric } from "../support/sfu.mjs";
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

test("the node carrying a call is killed: the people of the other node stay in the call, and see each other again through their own node", { timeout: 180_000 }, async () => {
  const room = "a node killed";
  // Calls of two through the server too: what is watched is which server carries the call.
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--redis-url", redis.url];
  const carrier = await startServer({ args });
  const survivor = await startServer({ args });
  const users = [];
  try {
    await joinInTurn(users, room, [["Ann", carrier], ["Ben", survivor], ["Cai", survivor]]);
    const [, ben, cai] = users;
    for (const user of [ben, cai]) {
      await expectVideoFrom(user.page, users.filter((u) => u !== user).map((u) => u.id), user.name);
      const [pair] = await selectedPairs(user.page);
      assert.equal(pair.pair?.remote?.port, carrier.port, `${user.name}'s media goes to Ann's node first`);
    }

    carrier.proc.kill("SIGKILL");
    for (const [user, other] of [[ben, cai], [cai, ben]]) {
      await expectVideoFrom(user.page, [other.id], `${user.name}, after Ann's node died`);
      await eventually(async () => {
        const pairs = await selectedPairs(user.page);
        assert.deepEqual(pairs.map((p) => p.pair?.remote?.port), [survivor.port], `${user.name}'s one connection, to Ben's and Cai's node`);
      }, { timeout: CALL_TIMEOUT });
      // Still in the call all along: the other's tile is there, Ann's is gone.
      await expectTiles(user.page, [ben.id, cai.id], { who: user.name });
    }
    for (const user of [ben, cai]) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close();
    await carrier.stop();
    await survivor.stop();
  }
});
