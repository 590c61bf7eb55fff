// Video calls across Noom nodes sharing one Redis: Alice's page is served by (and connected to)
// node A, Bob's by node B.
// - Two of them meet in one room, chat, join its call, and each decodes the other's video; the
//   signalling between them (`rtc:signal`, targeted at one socket of the other node) and the media
//   state (a mute) cross the nodes through Redis. A call of two goes page to page over loopback,
//   as in call.test.mjs (no STUN server, nothing tries the internet).
// - Three of them, on both nodes, go through one node's media server: every page sends its media
//   to that node's port, and decodes everyone else's from it.
// - Three nodes behind nginx, a page on each, in one call (see support/failover.mjs): the node of
//   the page that came through nginx is killed or shut down. The people of the other two see each
//   other again through a live node (one node carrying the call), or never lose each other (calls
//   spanning nodes); a node shut down hands its call over before it stops; the page that was on
//   it comes back through nginx as a newcomer, never shown its old self. How long each picture
//   stopped is printed; `bench/failover.mjs` holds those figures against the goals.
// - With `--cascade`, each page's media goes through its own node, and the nodes forward each other
//   the tracks: one watched by two pages of the other node crosses once (the relay counters and
//   the pages' own figures show it); Redis restarting stops no picture.
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
import { FAILOVERS, failover } from "../support/failover.mjs";
import { waitForRedisStatus } from "../support/cluster.mjs";
import { decodingSince, expectVideoFrom, metric, watchDecoding } from "../support/sfu.mjs";
import {
  CALL_TIMEOUT,
  connections,
  expectDecoding,
  expectHearing,
  expectTile,
  expectTiles,
  expectTilesConnected,
  expectTilesPlaying,
  joinCall,
  joinInTurn,
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

test("Ann on node A, Ben and Cai on node B: a call of three through A's media server, the first to join being on A", { timeout: 180_000 }, async () => {
  const room = "three across two nodes";
  const users = [];
  try {
    await joinInTurn(browser, users, room, [["Ann", nodeA], ["Ben", nodeB], ["Cai", nodeB]]);
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

/** Runs `FAILOVERS[way]` and prints how long each picture stopped. */
async function nodeGoes(t, way) {
  const { stayed, back } = await failover(browser, redis, FAILOVERS[way]);
  for (const { who, ms } of stayed) t.diagnostic(`${who}: no frame for ${ms} ms at most`);
  t.diagnostic(`Ann decoded Ben and Cai again, and they decoded Ann back: ${back.join(", ")} ms after her node went`);
}

test("three nodes behind nginx, the node carrying a call killed: the others, on the two other nodes, see each other again through a live node, and the page that was on it comes back through nginx", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "killed");
});

test("three nodes behind nginx, the node carrying a call shut down: the others, on the two other nodes, see each other again through a live node, and the page that was on it comes back through nginx", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "shut-down");
});

/**
 * Bytes (payload and RTP headers) the page received of the tracks of `from` (a tile's person id),
 * audio and video.
 */
function bytesFrom(page, from) {
  return page.evaluate(async (from) => {
    const tracks = document.querySelector(`#tiles .tile[data-id="${from}"] video`)?.srcObject?.getTracks() ?? [];
    const ids = new Set(tracks.map((t) => t.id));
    let bytes = 0;
    for (const { pc } of window.__rtc?.connections ?? []) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && ids.has(s.trackIdentifier)) bytes += (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0);
      });
    }
    return bytes;
  }, from);
}

test("calls spanning nodes (--cascade): Ann on A, Ben and Cai on B, Dan on C, each sends to its own node and decodes everyone; Ann's tracks cross to B once for both", { timeout: 180_000 }, async (t) => {
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--cascade", "--redis-url", redis.url];
  const nodes = { A: await startServer({ args }), B: await startServer({ args }), C: await startServer({ args }) };
  const users = [];
  try {
    await joinInTurn(browser, users, "a call spanning nodes", [["Ann", nodes.A], ["Ben", nodes.B], ["Cai", nodes.B], ["Dan", nodes.C]]);
    const [ann, ben, cai, dan] = users;
    for (const user of users) {
      await expectVideoFrom(user.page, users.filter((u) => u !== user).map((u) => u.id), user.name);
      await expectHearing(user.page, 3, { who: user.name });
    }
    for (const [user, node] of [[ann, nodes.A], [ben, nodes.B], [cai, nodes.B], [dan, nodes.C]]) {
      await eventually(async () => {
        const ports = (await selectedPairs(user.page)).map((p) => p.pair?.remote?.port);
        assert.deepEqual(ports, [node.port], `${user.name}'s one connection, to its own node`);
      }, { timeout: CALL_TIMEOUT });
    }
    const nodeId = async (node) => (await (await fetch(`${node.url}/metrics`)).text()).match(/noom_build_info\{[^}]*node="([^"]+)"/)[1];
    const out = `noom_media_relayed_bytes_total{node="${await nodeId(nodes.B)}",direction="out"}`;
    const into = `noom_media_relayed_bytes_total{node="${await nodeId(nodes.A)}",direction="in"}`;
    // Settled (layers chosen, those no longer needed paused), then over a few seconds: what A sent
    // B of Ann's tracks, against what Ben and Cai received of them from B.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const before = { out: await metric(nodes.A.url, out), ben: await bytesFrom(ben.page, ann.id), cai: await bytesFrom(cai.page, ann.id) };
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const crossed = (await metric(nodes.A.url, out)) - before.out;
    const received = (await bytesFrom(ben.page, ann.id)) - before.ben + (await bytesFrom(cai.page, ann.id)) - before.cai;
    t.diagnostic(`in 5 s, A relayed ${crossed} bytes of Ann's tracks to B; Ben and Cai received ${received} bytes of them`);
    assert.ok(received > 50_000, `Ben and Cai received Ann's media: ${received} bytes`);
    assert.ok(crossed < 0.75 * received, `Ann's tracks crossed once for two viewers: ${crossed} bytes relayed, ${received} received`);
    assert.ok((await metric(nodes.B.url, into)) > 0, "B counted what came from A");
    // And the other way: Ben's and Cai's tracks crossed to A, where Ann alone watches them.
    const toA = `noom_media_relayed_bytes_total{node="${await nodeId(nodes.A)}",direction="out"}`;
    assert.ok((await metric(nodes.B.url, toA)) > 0, "B relayed Ben's and Cai's tracks to A");
    for (const [name, node] of Object.entries(nodes)) {
      assert.equal(await metric(node.url, "noom_media_relay_connections"), 2, `${name}: one connection to each other node`);
    }
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close();
    for (const node of Object.values(nodes)) await node.stop();
  }
});

test("calls spanning nodes (--cascade), three behind nginx: a node killed takes only its page's media, which comes back through another node; the others, on the two other nodes, keep their connections and never stop seeing each other", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "cascade-killed");
});

test("calls spanning nodes (--cascade), three behind nginx: a node shut down takes only its page's media, which comes back through another node; the others keep their connections", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "cascade-shut-down");
});

test("calls spanning nodes (--cascade): Redis restarted in the middle of a call touches no connection, the two keep seeing each other, and a newcomer after it sees everyone", { timeout: 180_000 }, async (t) => {
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--cascade", "--redis-url", redis.url];
  const nodes = [await startServer({ args }), await startServer({ args })];
  const users = [];
  try {
    const room = "a cascade through a Redis restart";
    await joinInTurn(browser, users, room, [["Ann", nodes[0]], ["Ben", nodes[1]]]);
    const [ann, ben] = users;
    for (const [viewer, viewed] of [[ann, ben], [ben, ann]]) await expectVideoFrom(viewer.page, [viewed.id], viewer.name);
    for (const user of users) await watchDecoding(user.page);
    // Redis carries the nodes' signalling, not the media: the call is not to be touched.
    const had = await Promise.all(users.map(async (user) => (await connections(user.page)).length));

    await redis.stop({ kill: true });
    await waitForRedisStatus(nodes, "down", { timeout: 15_000 });
    await redis.start();
    await waitForRedisStatus(nodes, "up", { timeout: 20_000 });
    // Time enough for a page that wrongly took the restart for a lost call to start another.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const [i, user] of users.entries()) {
      assert.equal((await connections(user.page)).length, had[i], `${user.name}'s call was never touched: no new connection`);
    }
    // How long a picture stopped is the machine's as much as Noom's: printed, not bounded.
    for (const [viewer, viewed] of [[ann, ben], [ben, ann]]) {
      await expectVideoFrom(viewer.page, [viewed.id], `${viewer.name}, after the restart`);
      const seen = (await decodingSince(viewer.page))[viewed.id];
      t.diagnostic(`${viewer.name} of ${viewed.name}: no frame for ${seen?.longest} ms at most`);
    }
    await joinInTurn(browser, users, room, [["Cai", nodes[1]]]);
    await expectVideoFrom(users[2].page, [ann.id, ben.id], "Cai, after the restart");
    await expectVideoFrom(ann.page, [users[2].id], "Ann, of Cai");
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close();
    for (const node of nodes) await node.stop();
  }
});
