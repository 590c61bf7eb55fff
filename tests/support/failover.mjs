// A node of a call goes, and the call goes on: three Noom nodes behind nginx, one page on each, in
// one call. The node of the page that came through nginx (Ann's) is killed or shut down; the
// two others (Ben's and Cai's) stay. What each of them sees is asserted; how long each picture
// stopped is returned, for the tests to print and for `bench/failover.mjs` to hold against the
// goals (`docs/benchmarks.md`): timings are a benchmark's, not a test's.
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { startNginx } from "./nginx.mjs";
import { assertNoPageErrors, eventually } from "./browser.mjs";
import { decodingSince, expectVideoFrom, watchDecoding } from "./sfu.mjs";
import { CALL_TIMEOUT, connections, expectTiles, joinInTurn, ownId, selectedPairs } from "./rtc.mjs";

/**
 * The ways a node goes: killed, or shut down (SIGTERM: it hands its calls to a live node before
 * it stops); with one node carrying the call, or with calls spanning nodes (`--cascade`), each
 * page's media going through its own node.
 */
export const FAILOVERS = {
  killed: { title: "one node carries the call, and it is killed", room: "a node killed", cascade: false, goes: kill },
  "shut-down": { title: "one node carries the call, and it shuts down", room: "a node shut down", cascade: false, goes: shutDown },
  "cascade-killed": { title: "calls span nodes, and one is killed", room: "a node of a cascade killed", cascade: true, goes: kill },
  "cascade-shut-down": { title: "calls span nodes, and one shuts down", room: "a node of a cascade shut down", cascade: true, goes: shutDown },
};

function kill(node) {
  node.proc.kill("SIGKILL");
}

async function shutDown(node) {
  await node.stop();
  assert.notEqual(node.proc.signalCode, "SIGKILL", "Ann's node stopped on SIGTERM by itself");
}

/**
 * Runs one of `FAILOVERS` on fresh nodes sharing `redis`, with pages of `browser`. Asserts what
 * the people see:
 * - Ben and Cai see each other again, each with one connection to a node left; in a cascade,
 *   their connections were never touched (they go to their own nodes, which stayed);
 * - Ann's page comes back through nginx, in the room and the call as a newcomer, decodes Ben and
 *   Cai, and they decode her; it never shows her old self beside her.
 * Returns, in ms: `stayed`, the longest Ben and Cai each went without a frame of the other;
 * `back`, how long after her node went Ann decoded Ben and Cai again and they decoded her.
 */
export async function failover(browser, redis, { room, cascade, goes }) {
  const users = [];
  const { carrier, survivors, stop } = await callOfThreeBehindNginx(browser, redis, users, room, { cascade });
  try {
    const [ann, ben, cai] = users;
    for (const user of users) await watchDecoding(user.page);
    await watchFormerSelf(ann.page, ann.id);
    // In a cascade, Ben's and Cai's calls are not to be touched: how many connections each had.
    const had = cascade ? [(await connections(ben.page)).length, (await connections(cai.page)).length] : null;
    const since = Date.now();
    await goes(carrier);
    const waits = await longestWaits([[ben, cai], [cai, ben]], survivors, "after Ann's node went");
    if (had) {
      for (const [user, count] of [[ben, had[0]], [cai, had[1]]]) {
        assert.equal((await connections(user.page)).length, count, `${user.name}'s call was never touched: no new connection`);
      }
    }
    const back = await annBack(users, survivors, since);
    assert.deepEqual(await ann.page.evaluate(() => window.__formerSelfSeen), [], "Ann's page never shows her old self beside her");
    for (const user of users) assertNoPageErrors(user, user.name);
    return { stayed: waits, back };
  } finally {
    await stop();
  }
}

/**
 * Three nodes behind nginx, each a media server, and a call of three: Ann's page comes through
 * nginx (which sends this machine's address to one node: that node carries the call, Ann being
 * first in it, unless calls span nodes), Ben's and Cai's straight from the two other nodes, one
 * each. Calls of two go through the server too: what is watched is which server carries the call.
 */
async function callOfThreeBehindNginx(browser, redis, users, room, { cascade }) {
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
    await joinInTurn(browser, users, room, [["Ann", proxy]]);
    const served = (await proxy.accessLog()).find((e) => e.uri === "/")?.upstream;
    const carrier = nodes.find((n) => served === `127.0.0.1:${n.port}`);
    assert.ok(carrier, `nginx served Ann's page from one of the nodes: ${served}`);
    const survivors = nodes.filter((n) => n !== carrier);
    await joinInTurn(browser, users, room, [["Ben", survivors[0]], ["Cai", survivors[1]]]);
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
async function annBack([ann, ben, cai], nodes, since) {
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
  await expectTiles(ben.page, [ben.id, cai.id, newId], { who: "Ben" });
  return times;
}
