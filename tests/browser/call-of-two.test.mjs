// A call of two through a server with a media server: the two talk browser to browser while the
// server's connection stands by; a third person moves everyone to the server, one leaving moves
// the two back, and nobody's picture stops for more than two seconds on the way. (Two people
// whose networks cannot reach each other are in sfu-network.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, useBrowser } from "../support/browser.mjs";
import { decodingSince, expectVideoFrom, longestFrameGaps, watchDecoding, watchFrames } from "../support/sfu.mjs";
import { CALL_TIMEOUT, describeConnections, explain, joinCall, leaveCall, openCallUser, selectedPairs } from "../support/rtc.mjs";

const server = useServer({ args: ["--stun-urls", "", "--media-address", "127.0.0.1"] });
const browser = useBrowser();

/** The page's connected paths: `server` to the media port, `direct` to another browser. */
async function paths(page) {
  const out = { server: 0, direct: 0 };
  for (const { pair } of await selectedPairs(page)) {
    if (pair?.state !== "succeeded") continue;
    if (pair.remote?.port === server.port) out.server++;
    else out.direct++;
  }
  return out;
}

async function expectPaths(page, expected, who) {
  try {
    await eventually(async () => assert.deepEqual(await paths(page), expected, `${who}'s connected paths`), { timeout: CALL_TIMEOUT, interval: 250 });
  } catch (error) {
    error.message += `\n${who}'s connections:\n${await describeConnections(page)}`;
    throw error;
  }
}

/**
 * What the page's connection to the media server carries, per stream: `{ kind, direction,
 * bytes, frames }`. Received bytes leave out padding and resends (str0m pads with copies of
 * packets it sent before, which the browser counts as received): what is left is media the
 * server forwards. A sender's bytes are no measure (the browser pads too, even for a sender with
 * no track), its frames are.
 */
function serverStreams(page) {
  return page.evaluate(async (port) => {
    const out = [];
    for (const { pc } of window.__rtc?.connections ?? []) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      const toServer = [...stats.values()].some((s) => s.type === "remote-candidate" && s.port === port);
      if (!toServer) continue;
      stats.forEach((s) => {
        if (s.type === "inbound-rtp") out.push({ id: s.id, kind: s.kind, direction: "in", bytes: (s.bytesReceived ?? 0) - (s.retransmittedBytesReceived ?? 0), frames: s.framesReceived ?? 0 });
        if (s.type === "outbound-rtp") out.push({ id: s.id, kind: s.kind, direction: "out", bytes: 0, frames: s.framesSent ?? 0 });
      });
    }
    return out;
  }, server.port);
}

/** The bytes and frames each stream gained between two readings of `serverStreams`. */
function gained(before, after) {
  return after.map((s) => {
    const was = before.find((b) => b.id === s.id);
    return { ...s, bytes: s.bytes - (was?.bytes ?? 0), frames: s.frames - (was?.frames ?? 0) };
  }).filter((s) => s.bytes > 0 || s.frames > 0);
}

/** Waits until the page's tile of each of `ids` shows new frames, whichever path they come by. */
async function expectFramesOn(page, ids, who) {
  await watchFrames(page);
  await eventually(async () => {
    const gaps = await longestFrameGaps(page);
    for (const id of ids) assert.ok(gaps[id] !== null && gaps[id] !== undefined && gaps[id] < 1000, `${who} shows frames of ${id}: ${JSON.stringify(gaps)}`);
  }, { timeout: CALL_TIMEOUT, interval: 250 });
}

/** Since `watchDecoding`, no tile of `ids` went more than two seconds without a decoded frame;
 * says the longest wait. */
async function expectNoLongGap(t, page, ids, who) {
  const seen = await decodingSince(page);
  for (const id of ids) assert.ok(seen[id] && seen[id].longest <= 2000, `${who}'s picture of ${id} never stopped for more than 2 s: ${JSON.stringify(seen)}`);
  t.diagnostic(`${who}: the longest wait for a frame was ${Math.max(...ids.map((id) => seen[id].longest))} ms`);
}

test("two people talk browser to browser; a third moves the call to the media server and one leaving moves it back, with no picture stopping for more than two seconds", { timeout: 240_000 }, async (t) => {
  const users = [];
  try {
    const ids = {};
    const join = async (name) => {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "a call of two" });
      ids[name] = await joinCall(user.page);
      return user;
    };
    const ann = await join("Ann");
    const bob = await join("Bob");
    const pair = [[ann, "Ann", "Bob"], [bob, "Bob", "Ann"]];

    // Two: a direct path each, besides the idle one to the server, and the other's picture on it.
    for (const [user, name, other] of pair) {
      await expectPaths(user.page, { server: 1, direct: 1 }, name);
      await expectFramesOn(user.page, [ids[other]], name);
    }
    // The server's connections stay up but carry no media (only str0m's padding, which keeps
    // its bandwidth estimate alive): neither sends to it, and it forwards nothing. A loaded
    // machine can make a direct path falter for a moment, and the call rightly leans on the
    // server meanwhile: what is asserted is that, the paths steady, a 3 s stretch passes with no
    // media to or from the server on either page.
    let last = null;
    try {
      await eventually(async () => {
        for (const [user, name] of pair) await expectPaths(user.page, { server: 1, direct: 1 }, name);
        const before = await Promise.all(pair.map(([user]) => serverStreams(user.page)));
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const after = await Promise.all(pair.map(([user]) => serverStreams(user.page)));
        last = pair.map(([, name], i) => `${name}: ${JSON.stringify(gained(before[i], after[i]))}`);
        for (const [i, [, name]] of pair.entries()) {
          assert.deepEqual(gained(before[i], after[i]), [], `${name} neither sends media to the server nor receives any from it while talking directly`);
        }
      }, { timeout: 20_000, interval: 0 });
    } catch (error) {
      const connections = await Promise.all(pair.map(async ([user, name]) => `${name}'s connections:\n${await describeConnections(user.page)}`));
      throw explain(error, `\nmedia of the last 3 s, by stream:\n${last?.join("\n")}\n${connections.join("\n")}`);
    }

    // A third: everyone through the server, the direct paths closed.
    for (const [user] of pair) await watchDecoding(user.page);
    const cat = await join("Cat");
    for (const [user, name] of pair) await expectPaths(user.page, { server: 1, direct: 0 }, name);
    for (const [user, name] of [[ann, "Ann"], [bob, "Bob"], [cat, "Cat"]]) {
      await expectVideoFrom(user.page, Object.values(ids).filter((id) => id !== ids[name]), name);
    }
    for (const [user, name, other] of pair) await expectNoLongGap(t, user.page, [ids[other]], `${name}, as Cat joined`);

    // Two again: directly again.
    for (const [user] of pair) await watchDecoding(user.page);
    await leaveCall(cat.page);
    for (const [user, name] of pair) await expectPaths(user.page, { server: 1, direct: 1 }, name);
    // Long enough for the server's media to have stopped, had the direct path not taken over.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const [user, name, other] of pair) await expectNoLongGap(t, user.page, [ids[other]], `${name}, as Cat left`);
    for (const [user, name] of pair) assertNoPageErrors(user, name);
  } finally {
    for (const user of users) await user.close();
  }
});
