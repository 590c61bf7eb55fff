// Video calls across Noom nodes sharing one Redis: Alice's page is served by (and connected to)
// node A, Bob's by node B.
// - Two of them meet in one room, chat, join its call, and each decodes the other's video; the
//   signalling between them (`rtc:signal`, targeted at one socket of the other node) and the media
//   state (a mute) cross the nodes through Redis. A call of two goes page to page over loopback,
//   as in call.test.mjs (no STUN server, nothing tries the internet).
// - Three of them, on both nodes, go through one node's media server: every page sends its media
//   to that node's port, and decodes everyone else's from it.
// - Three nodes behind nginx, a page on each, the call on the first page's node: that node is
//   killed, and within 5 s the people of the other two see each other again through one live
//   node's media server, and the page that was on the killed node comes back through nginx as a
//   newcomer, never shown its old self; or it shuts down, handing the call over first, and no picture stops for more than
//   2 s.
// - With `--cascade`, each page's media goes through its own node, and the nodes forward each other
//   the tracks: one watched by two pages of the other node crosses once (the relay counters and
//   the pages' own figures show it), and a node killed brings its page back within 5 s while
//   the others (on the two other nodes) never stop seeing each other; Redis restarting stops no
//   picture.
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
import { waitForRedisStatus } from "../support/cluster.mjs";
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
 * Three nodes behind nginx, each a media server, and a call of three: Ann's page comes through
 * nginx (which sends this machine's address to one node: that node carries the call, Ann being
 * first in it, unless calls span nodes), Ben's and Cai's straight from the two other nodes, one
 * each. Calls of two go through the server too: what is watched is which server carries the call.
 */
async function callOfThreeBehindNginx(users, room, { cascade = false } = {}) {
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--redis-url", redis.url];
  if (cascade) args.push("--cascade");
  const nodes = [await startServer({ args }), await startServer({ args }), await startServer({ args })];
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
    const survivors = nodes.filter((n) => n !== carrier);
    await joinInTurn(users, room, [["Ben", survivors[0]], ["Cai", survivors[1]]]);
    const own = { Ann: carrier, Ben: survivors[0], Cai: survivors[1] };
    for (const user of users) {
      await expectVideoFrom(user.page, users.filter((u) => u !== user).map((u) => u.id), user.name);
      const [pair] = await selectedPairs(user.page);
      const node = cascade ? own[user.name] : carrier;
      assert.equal(pair.pair?.remote?.port, node.port, `${user.name}'s media goes to ${cascade ? "its own node" : "Ann's node first"}`);
    }
    return { carrier, survivors, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Since `watchDecoding` on every page: the longest wait for a frame of each of `pairs`
 * (`[viewer, viewed]`), once each viewer has one connection, to one of `nodes`, and has decoded
 * the other for a moment.
 */
async function longestWaits(pairs, nodes, what) {
  for (const [viewer] of pairs) {
    await eventually(async () => {
      const ports = (await selectedPairs(viewer.page)).map((p) => p.pair?.remote?.port);
      assert.equal(ports.length, 1, `${viewer.name}'s one connection: ${ports}`);
      assert.ok(nodes.some((n) => n.port === ports[0]), `${viewer.name}'s connection goes to a node left: ${ports}`);
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
 * From now on, records whether the page ever shows `id` (the page's own id until its node goes)
 * as someone else: a tile or an entry in the list of people that is not its own.
 */
function watchFormerSelf(page, id) {
  return page.evaluate((id) => {
    window.__formerSelfSeen = [];
    const look = () => {
      for (const el of document.querySelectorAll(`#tiles .tile[data-id="${id}"]:not([data-self]), .person[data-id="${id}"]:not(.self)`)) {
        window.__formerSelfSeen.push(el.className);
      }
    };
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-id", "data-self", "class"] });
  }, id);
}

/**
 * Ann comes back through nginx, on a node left, as a newcomer: her page joins the room and the
 * call again by itself. Ms from `since` until she decodes Ben and Cai again and they decode her.
 */
async function annBack(t, [ann, ben, cai], nodes, since) {
  const newId = await eventually(async () => {
    const id = await ownId(ann.page);
    assert.ok(id && id !== ann.id, `Ann is in the call again: ${id}`);
    return id;
  }, { timeout: CALL_TIMEOUT });
  const back = { ...ann, id: newId };
  const waits = await longestWaits([[back, ben], [back, cai]], nodes, "Ann back");
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
async function nodeGoes(t, room, how, { bound, annBound, cascade }) {
  const users = [];
  const { carrier, survivors, stop } = await callOfThreeBehindNginx(users, room, { cascade });
  try {
    const [, ben, cai] = users;
    for (const user of users) await watchDecoding(user.page);
    await watchFormerSelf(users[0].page, users[0].id);
    const since = Date.now();
    await how(carrier);
    for (const { who, ms } of await longestWaits([[ben, cai], [cai, ben]], survivors, "after Ann's node went")) {
      t.diagnostic(`${who}: no frame for ${ms} ms at most`);
      assert.ok(ms <= bound, `${who}: no frame for ${ms} ms, more than ${bound} ms`);
    }
    const annTook = await annBack(t, users, survivors, since);
    if (annBound) assert.ok(annTook <= annBound, `Ann's media back within ${annBound} ms, not ${annTook} ms`);
    assert.deepEqual(await users[0].page.evaluate(() => window.__formerSelfSeen), [], "Ann's page never shows her old self beside her");
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    await stop();
  }
}

test("three nodes behind nginx, the node carrying a call killed: within 5 s the others, on the two other nodes, see each other again through a live node, and the page that was on it comes back through nginx", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node killed", (carrier) => carrier.proc.kill("SIGKILL"), { bound: 5000, annBound: 5000 });
});

test("three nodes behind nginx, the node carrying a call shut down: it hands the call to a live node first, and no picture stops for more than 2 s", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node shut down", async (carrier) => {
    await carrier.stop();
    assert.notEqual(carrier.proc.signalCode, "SIGKILL", "Ann's node stopped on SIGTERM by itself");
  }, { bound: 2000 });
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
    await joinInTurn(users, "a call spanning nodes", [["Ann", nodes.A], ["Ben", nodes.B], ["Cai", nodes.B], ["Dan", nodes.C]]);
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

test("calls spanning nodes (--cascade), three behind nginx: a node killed takes only its page's media, which is back within 5 s through another node; the others, on the two other nodes, never stop seeing each other", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node of a cascade killed", (carrier) => carrier.proc.kill("SIGKILL"), { bound: 2000, annBound: 5000, cascade: true });
});

test("calls spanning nodes (--cascade), three behind nginx: a node shut down takes only its page's media, which comes back through another node; the others' pictures never stop for more than 2 s", { timeout: 180_000 }, async (t) => {
  await nodeGoes(t, "a node of a cascade shut down", async (carrier) => {
    await carrier.stop();
    assert.notEqual(carrier.proc.signalCode, "SIGKILL", "Ann's node stopped on SIGTERM by itself");
  }, { bound: 2000, annBound: 5000, cascade: true });
});

test("calls spanning nodes (--cascade): Redis restarted in the middle of a call stops no picture, and a newcomer after it sees everyone", { timeout: 180_000 }, async (t) => {
  const args = ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server", "--cascade", "--redis-url", redis.url];
  const nodes = [await startServer({ args }), await startServer({ args })];
  const users = [];
  try {
    const room = "a cascade through a Redis restart";
    await joinInTurn(users, room, [["Ann", nodes[0]], ["Ben", nodes[1]]]);
    const [ann, ben] = users;
    for (const [viewer, viewed] of [[ann, ben], [ben, ann]]) await expectVideoFrom(viewer.page, [viewed.id], viewer.name);
    for (const user of users) await watchDecoding(user.page);

    await redis.stop({ kill: true });
    await waitForRedisStatus(nodes, "down", { timeout: 15_000 });
    await redis.start();
    await waitForRedisStatus(nodes, "up", { timeout: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const [viewer, viewed] of [[ann, ben], [ben, ann]]) {
      const seen = (await decodingSince(viewer.page))[viewed.id];
      t.diagnostic(`${viewer.name} of ${viewed.name}: no frame for ${seen?.longest} ms at most`);
      assert.ok(seen && seen.longest <= 1000, `${viewer.name} kept decoding ${viewed.name}: ${JSON.stringify(seen)}`);
    }
    await joinInTurn(users, room, [["Cai", nodes[1]]]);
    await expectVideoFrom(users[2].page, [ann.id, ben.id], "Cai, after the restart");
    await expectVideoFrom(ann.page, [users[2].id], "Ann, of Cai");
    for (const user of users) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close();
    for (const node of nodes) await node.stop();
  }
});
