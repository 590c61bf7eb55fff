// Calls through the media server, between real browsers: each page has one peer connection, to
// the server's media port, and decodes the others' video from it. What is checked is what a user
// gets (tiles playing, frames decoded from everyone else, the picture size that fits the tile)
// and that no media goes browser to browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, useBrowser } from "../support/browser.mjs";
import { inboundVideo } from "../support/sfu.mjs";
import {
  CALL_TIMEOUT,
  describeConnections,
  joinCall,
  liveConnections,
  openCallUser,
  selectedPairs,
} from "../support/rtc.mjs";

// The media port is advertised on loopback, where the browsers are.
const server = useServer({ args: ["--stun-urls", "", "--media-address", "127.0.0.1"] });
const browser = useBrowser();

/** Waits until the page decodes rising video frames from each of `from` (person ids). */
async function expectVideoFrom(page, from, who) {
  const first = new Map();
  try {
    await eventually(async () => {
      const streams = (await inboundVideo(page)).filter((s) => s.framesDecoded > 0);
      for (const s of streams) if (!first.has(s.from)) first.set(s.from, s.framesDecoded);
      for (const id of from) {
        const s = streams.find((v) => v.from === id);
        assert.ok(s && s.framesDecoded > first.get(id), `${who} decodes rising frames from ${id}: ${JSON.stringify(streams)}`);
      }
    }, { timeout: CALL_TIMEOUT, interval: 250 });
  } catch (error) {
    error.message += `\n${who}'s connections:\n${await describeConnections(page)}`;
    throw error;
  }
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : NaN;
}

test("four people in a call through the media server each see the three others, over one connection to the media port", async () => {
  const users = [];
  try {
    for (const name of ["Ann", "Bob", "Cat", "Dan"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-four" });
      user.id = await joinCall(user.page);
    }
    const ids = users.map((u) => u.id);
    for (const [i, user] of users.entries()) {
      await expectVideoFrom(user.page, ids.filter((id) => id !== user.id), `page ${i}`);
    }
    for (const [i, user] of users.entries()) {
      const live = await liveConnections(user.page);
      assert.equal(live.length, 1, `page ${i} has one peer connection: ${JSON.stringify(live)}`);
      const [pair] = await selectedPairs(user.page);
      assert.equal(pair.pair?.remote?.port, server.port, `page ${i}'s media goes to the media port: ${JSON.stringify(pair)}`);
      assert.equal(pair.pair?.remote?.address, "127.0.0.1");
    }
    assert.ok((await metric(server.url, 'noom_media_datagrams_total{direction="out"}')) > 1000, "the server forwarded media");
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});

test("a small tile gets the low layer of someone's camera, and a larger one a higher layer", async () => {
  const users = [];
  try {
    const sender = await openCallUser(browser, server.url);
    users.push(sender);
    await enterRoom(sender.page, { nickname: "Eve", room: "sfu-layers" });
    const eve = await joinCall(sender.page);
    const viewer = await openCallUser(browser, server.url, { viewport: { width: 320, height: 480 } });
    users.push(viewer);
    await enterRoom(viewer.page, { nickname: "Fay", room: "sfu-layers" });
    await joinCall(viewer.page);
    await expectVideoFrom(viewer.page, [eve], "the small page");
    const width = async () => (await inboundVideo(viewer.page)).find((s) => s.from === eve)?.frameWidth ?? 0;
    await eventually(async () => {
      const w = await width();
      assert.ok(w > 0 && w <= 320, `a tile a few hundred pixels high gets the quarter layer: ${w} wide`);
    }, { timeout: CALL_TIMEOUT, interval: 250 });
    await viewer.page.setViewportSize({ width: 1600, height: 1200 });
    await eventually(async () => {
      const w = await width();
      assert.ok(w > 320, `the enlarged tile gets a higher layer: ${w} wide`);
    }, { timeout: CALL_TIMEOUT, interval: 250 });
  } finally {
    for (const user of users) await user.close();
  }
});
