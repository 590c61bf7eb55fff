// A call of two through a server with a media server: the two talk browser to browser while the
// server's connection stands by; a third person moves everyone to the server, one leaving moves
// the two back, and neither of the two sees the other's tile connecting again on the way. (How
// long a picture stops as the call moves is measured by bench/call-setup.mjs. Two people whose
// networks cannot reach each other are in sfu-network.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, eventually, useBrowser } from "../support/browser.mjs";
import { decodingSince, expectVideoFrom, longestFrameGaps, watchDecoding, watchFrames } from "../support/sfu.mjs";
import {
  CALL_TIMEOUT,
  describeConnections,
  expectPaths as expectPathsTo,
  explain,
  joinInTurn,
  leaveCall,
  tileLabelsSince,
  watchTileLabels,
} from "../support/rtc.mjs";

const server = useServer({ args: ["--stun-urls", "", "--media-address", "127.0.0.1"] });
const browser = useBrowser();

/** Waits until the page's connected paths are `expected` (`server`: to this server's media port). */
function expectPaths(page, expected, who) {
  return expectPathsTo(page, server.port, expected, { who });
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

/** Starts watching, on each page, the tiles' connection labels and the frames decoded. */
async function watchSteady(users) {
  for (const user of users) {
    await watchDecoding(user.page);
    await watchTileLabels(user.page);
  }
}

/** Since `watchSteady`: the tiles of `ids` never said they were connecting or had failed, and
 * show frames now; prints the longest wait for a frame (bench/call-setup.mjs holds it to a goal). */
async function expectSteady(t, page, ids, who) {
  const labels = await tileLabelsSince(page);
  for (const id of ids) assert.deepEqual(labels[id] ?? [], [], `${who}: the tile of ${id} never said it was connecting or had failed`);
  await expectFramesOn(page, ids, who);
  const seen = await decodingSince(page);
  t.diagnostic(`${who}: the longest wait for a frame was ${Math.max(...ids.map((id) => seen[id]?.longest ?? NaN))} ms`);
}

test("two people talk browser to browser; a third moves the call to the media server and one leaving moves it back, neither of the two seeing the other's tile connecting again", { timeout: 240_000 }, async (t) => {
  const users = [];
  try {
    const ids = {};
    const join = async (name) => {
      await joinInTurn(browser, users, "a call of two", [[name, server]]);
      const user = users.at(-1);
      ids[name] = user.id;
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
    await watchSteady(pair.map(([user]) => user));
    const cat = await join("Cat");
    for (const [user, name] of pair) await expectPaths(user.page, { server: 1, direct: 0 }, name);
    for (const [user, name] of [[ann, "Ann"], [bob, "Bob"], [cat, "Cat"]]) {
      await expectVideoFrom(user.page, Object.values(ids).filter((id) => id !== ids[name]), name);
    }
    for (const [user, name, other] of pair) await expectSteady(t, user.page, [ids[other]], `${name}, as Cat joined`);

    // Two again: directly again.
    await watchSteady(pair.map(([user]) => user));
    await leaveCall(cat.page);
    for (const [user, name] of pair) await expectPaths(user.page, { server: 1, direct: 1 }, name);
    // Long enough for the server's media to have stopped, had the direct path not taken over.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const [user, name, other] of pair) await expectSteady(t, user.page, [ids[other]], `${name}, as Cat left`);
    for (const [user, name] of pair) assertNoPageErrors(user, name);
  } finally {
    for (const user of users) await user.close();
  }
});
