// The original tutorial's one-to-one call front end, served from another origin, works against
// Noom: two pages in one room signal through the server's `join_room`, `offer`, `answer` and `ice`,
// then send each other video and audio, and chat over their data channel, browser to browser.
// Asking Noom for its ICE servers (`ice_servers`), the same front end calls through the built-in
// TURN server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../support/server.mjs";
import { startNoomWithTurn } from "../support/turn.mjs";
import { serveStatic } from "../support/static-server.mjs";
import { connect, disconnect, waitForRoomList } from "../support/clients.mjs";
import {
  TIMEOUT,
  assertNoPageErrors,
  eventually,
  expectText,
  expectTexts,
  expectVisible,
  openUser,
  useBrowser,
} from "../support/browser.mjs";

const SEED_CALL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "seed-call-frontend");
/** Media takes longer than chat: a connection to set up, then frames to encode and decode. */
const MEDIA_TIMEOUT = 30_000;

const browser = useBrowser();
let seedSite;
let server;
before(async () => {
  seedSite = await serveStatic(SEED_CALL_DIR);
  server = await startServer({ args: ["--allowed-origins", seedSite.origin] });
  seedSite.setVars({ NOOM: server.url });
});
after(async () => {
  await server?.stop();
  await seedSite?.stop();
});

/**
 * Opens the seed's call page (without the seed's STUN servers; with `?ice=server`, with the ICE
 * servers Noom hands out) and waits for its socket.
 */
async function openSeedCall(query = "stun=none") {
  const user = await openUser(browser, `${seedSite.origin}/?${query}`, { waitConnected: false });
  await user.page.waitForFunction(() => socket.connected, null, { timeout: TIMEOUT });
  return user;
}

/** Enters `room` from the welcome form and waits until the page shows the call with its own camera. */
async function enterCall(page, room) {
  await page.locator("#welcome input").fill(room);
  await page.locator("#welcome button").click();
  await expectVisible(page.locator("#call"), "the call is shown");
  await eventually(async () => {
    assert.ok(!(await page.locator("#welcome").isVisible()), "the welcome form is hidden");
    assert.ok(await page.locator("#myFace").evaluate((v) => v.videoWidth > 0), "the page shows its own camera");
  });
}

/** Video frames decoded so far from the peer, as the page's peer connection counts them. */
function framesDecoded(page) {
  return page.evaluate(async () => {
    let frames = 0;
    (await myPeerConnection.getStats()).forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") frames += report.framesDecoded ?? 0;
    });
    return frames;
  });
}

/** Waits until the page has decoded more than `than` video frames from its peer; resolves with the count. */
function expectFramesAbove(page, than, who) {
  return eventually(async () => {
    const frames = await framesDecoded(page);
    assert.ok(frames > than, `${who}: ${frames} video frames decoded, expected more than ${than}`);
    return frames;
  }, { timeout: MEDIA_TIMEOUT });
}

/** Sends a line over the data channel with the page's chat form. */
async function chat(page, text) {
  await page.locator("#chat input").fill(text);
  await page.locator("#chat button").click();
}

test("two seed call pages connect through Noom: video both ways and the data channel both ways", { timeout: 120_000 }, async () => {
  const room = `seed-call-${process.pid}`;
  const watcher = await connect(server.url, { label: "room list" });
  const one = await openSeedCall();
  const two = await openSeedCall();
  try {
    // One enters first; once the server has it in the room (the room is listed), Two enters, and
    // One, welcomed, makes the offer.
    await enterCall(one.page, room);
    await waitForRoomList(watcher, [room]);
    await enterCall(two.page, room);

    for (const [who, user] of [["one", one], ["two", two]]) {
      await eventually(async () => {
        assert.equal(await user.page.evaluate(() => myPeerConnection.connectionState), "connected", `${who}'s peer connection`);
      }, { timeout: MEDIA_TIMEOUT });
    }

    // Video flows both ways: each page keeps decoding frames from the other and shows them.
    for (const [who, user] of [["one", one], ["two", two]]) {
      const first = await expectFramesAbove(user.page, 0, who);
      await expectFramesAbove(user.page, first, who);
      await eventually(async () => {
        assert.ok(await user.page.locator("#peerFace").evaluate((v) => v.videoWidth > 0 && !v.paused), `${who} shows the peer's video`);
      }, { timeout: MEDIA_TIMEOUT });
    }
    // Audio too.
    assert.deepEqual(
      await one.page.evaluate(() => myPeerConnection.getReceivers().map((r) => r.track.kind).sort()),
      ["audio", "video"],
    );

    // The data channel "chat", opened by One, carries a line each way.
    for (const user of [one, two]) {
      await eventually(async () => {
        assert.deepEqual(await user.page.evaluate(() => [myDataChannel?.label, myDataChannel?.readyState]), ["chat", "open"]);
      });
    }
    await chat(one.page, "hello from one");
    await expectTexts(two.page.locator("#chat li"), ["hello from one"]);
    await chat(two.page, "hi one, two here");
    await expectTexts(one.page.locator("#chat li"), ["You: hello from one", "hi one, two here"]);
    await expectTexts(two.page.locator("#chat li"), ["hello from one", "You: hi one, two here"]);

    // Mute and camera buttons switch the page's own tracks and say so.
    await one.page.locator("#mute").click();
    await expectText(one.page.locator("#mute"), "Unmute");
    await one.page.locator("#camera").click();
    await expectText(one.page.locator("#camera"), "Turn Camera On");
    assert.deepEqual(await one.page.evaluate(() => myStream.getTracks().map((t) => [t.kind, t.enabled]).sort()), [
      ["audio", false],
      ["video", false],
    ]);
    await one.page.locator("#mute").click();
    await one.page.locator("#camera").click();
    await expectText(one.page.locator("#mute"), "Mute");
    await expectText(one.page.locator("#camera"), "Turn Camera Off");

    // Picking a camera swaps the track sent with replaceTrack, without a new negotiation, and Two
    // keeps receiving video.
    const cameras = await one.page.locator("#cameras option").evaluateAll((options) => options.map((o) => o.value));
    assert.ok(cameras.length >= 1, "the camera picker lists the camera");
    const sentBefore = await one.page.evaluate(() => myPeerConnection.getSenders().find((s) => s.track?.kind === "video").track.id);
    await one.page.locator("#cameras").selectOption(cameras[0]);
    await eventually(async () => {
      const [sent, shown] = await one.page.evaluate(() => [
        myPeerConnection.getSenders().find((s) => s.track?.kind === "video").track.id,
        myStream.getVideoTracks()[0].id,
      ]);
      assert.notEqual(sent, sentBefore, "a new track is sent");
      assert.equal(sent, shown, "the track sent is the one the page shows");
    });
    const now = await framesDecoded(two.page);
    await expectFramesAbove(two.page, now, "two, after the camera change");

    assertNoPageErrors(one, "one");
    assertNoPageErrors(two, "two");
  } finally {
    await disconnect(watcher);
    await Promise.all([one.close(), two.close()]);
  }
});

test("a seed call page that asks Noom for its ICE servers calls through the built-in TURN server", { timeout: 120_000 }, async () => {
  // Relay only, so that the two pages on this machine cannot meet any other way.
  const relaying = await startNoomWithTurn({
    args: ["--allowed-origins", seedSite.origin, "--media-address", "127.0.0.1", "--ice-transport-policy", "relay"],
  });
  seedSite.setVars({ NOOM: relaying.url });
  const room = `seed-relayed-${process.pid}`;
  const watcher = await connect(relaying.url, { label: "room list" });
  const one = await openSeedCall("stun=none&ice=server");
  const two = await openSeedCall("stun=none&ice=server");
  try {
    await enterCall(one.page, room);
    await waitForRoomList(watcher, [room]);
    await enterCall(two.page, room);
    for (const [who, user] of [["one", one], ["two", two]]) {
      const first = await expectFramesAbove(user.page, 0, who);
      await expectFramesAbove(user.page, first, who);
      const local = await user.page.evaluate(async () => {
        const stats = await myPeerConnection.getStats();
        const transport = [...stats.values()].find((r) => r.type === "transport" && r.selectedCandidatePairId);
        const pair = transport && stats.get(transport.selectedCandidatePairId);
        return pair && stats.get(pair.localCandidateId)?.candidateType;
      });
      assert.equal(local, "relay", `${who}'s media goes through the relay`);
    }
    assertNoPageErrors(one, "one");
    assertNoPageErrors(two, "two");
  } finally {
    await disconnect(watcher);
    await Promise.all([one.close(), two.close()]);
    seedSite.setVars({ NOOM: server.url });
    await relaying.stop();
  }
});
