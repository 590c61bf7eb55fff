// Calls through the media server, between real browsers: each page has one peer connection, to
// the server's media port, and decodes the others' video from it. What is checked is what a user
// gets (tiles playing, frames decoded from everyone else, the picture size that fits the tile)
// and that no media goes browser to browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, expectVisible, launchBrowser, talkingMicrophoneArgs, useBrowser } from "../support/browser.mjs";
import { ack, noomClient } from "../support/clients.mjs";
import { expectVideoFrom, expectVideoStopped, inboundVideo, metric } from "../support/sfu.mjs";
import { seriousViolations } from "../support/axe.mjs";
import {
  CALL_TIMEOUT,
  expectHearing,
  expectTile,
  joinCall,
  liveConnections,
  openCallUser,
  selectedPairs,
  tile,
  tiles,
} from "../support/rtc.mjs";

// The media port is advertised on loopback, where the browsers are.
// Calls of two go through it too (pair calls have their own file, call-of-two.test.mjs).
const server = useServer({ args: ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server"] });
const browser = useBrowser();

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

test("layers of a camera that nobody receives are not sent, and come back when someone needs them", { timeout: 180_000 }, async () => {
  const users = [];
  /** Which of the page's camera layers are sent: rid to `active`. */
  const sent = (page) => page.evaluate(() => {
    for (const { pc } of window.__rtc?.connections ?? []) {
      if (pc.connectionState === "closed") continue;
      const sender = pc.getTransceivers().find((t) => t.sender.track?.kind === "video" || (t.mid !== null && t.currentDirection === "sendonly" && t.receiver.track.kind === "video"))?.sender;
      if (sender) return Object.fromEntries(sender.getParameters().encodings.map((e) => [e.rid, e.active]));
    }
    return null;
  });
  try {
    const alone = await openCallUser(browser, server.url);
    users.push(alone);
    await enterRoom(alone.page, { nickname: "Una", room: "sfu-dynacast" });
    const una = await joinCall(alone.page);
    // Nobody receives Una's camera: in a while, none of its layers is sent.
    await eventually(async () => {
      assert.deepEqual(await sent(alone.page), { q: false, h: false, f: false }, "alone in the call, nothing is sent");
    }, { timeout: 20_000, interval: 500 });
    const viewer = await openCallUser(browser, server.url, { viewport: { width: 1600, height: 1200 } });
    users.push(viewer);
    await enterRoom(viewer.page, { nickname: "Vin", room: "sfu-dynacast" });
    await joinCall(viewer.page);
    await expectVideoFrom(viewer.page, [una], "Vin");
    await eventually(async () => {
      const layers = await sent(alone.page);
      assert.ok(layers?.f, `a large tile brings back the top layer: ${JSON.stringify(layers)}`);
      const w = (await inboundVideo(viewer.page)).find((v) => v.from === una)?.frameWidth ?? 0;
      assert.ok(w > 640, `and Vin gets it: ${w} wide`);
    }, { timeout: CALL_TIMEOUT, interval: 500 });
  } finally {
    for (const user of users) await user.close();
  }
});

test("a call larger than the screen shows pages of tiles; only the page shown is received", { timeout: 180_000 }, async () => {
  const users = [];
  try {
    const ids = {};
    for (const name of ["Pia", "Quy"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-pages" });
      ids[name] = await joinCall(user.page);
    }
    // A screen with room for one tile at a time.
    const small = await openCallUser(browser, server.url, { viewport: { width: 320, height: 480 } });
    users.push(small);
    await enterRoom(small.page, { nickname: "Ray", room: "sfu-pages" });
    await joinCall(small.page);
    const page = small.page;
    await expectVisible(page.locator("#tiles-pager"), "the pager shows");
    const visible = (id) => page.locator(`#tiles .tile[data-id="${id}"]`).isVisible();
    for (const [shown, hidden] of [[ids.Pia, ids.Quy], [ids.Quy, ids.Pia]]) {
      // By keyboard: the next page until the tile shows.
      for (let turns = 0; !(await visible(shown)); turns++) {
        assert.ok(turns < 5, `${shown}'s tile shows on some page`);
        await page.locator("#tiles-next").focus();
        await page.keyboard.press("Enter");
      }
      assert.match(await page.locator("#tiles-page").innerText(), /^Page \d of \d$/);
      await expectVideoFrom(page, [shown], "Ray, the person on the page shown");
      // The other, off the page, is not sent: their frames stop.
      await expectVideoStopped(page, { from: hidden, who: "Ray, for the person off the page" });
    }
    assertNoPageErrors(small, "Ray");
  } finally {
    for (const user of users) await user.close();
  }
});

test("in a call of more than 12, a phone is told of media changes on its tiles, and on its list of people once that is on screen", { timeout: 180_000 }, async () => {
  const room = "sfu-large";
  const users = [];
  const guests = [];
  try {
    const ann = await openCallUser(browser, server.url, { viewport: { width: 390, height: 844 } });
    users.push(ann);
    await enterRoom(ann.page, { nickname: "Ann", room });
    await joinCall(ann.page);
    const ben = await openCallUser(browser, server.url, { viewport: { width: 1280, height: 900 } });
    users.push(ben);
    await enterRoom(ben.page, { nickname: "Ben", room });
    const benId = await joinCall(ben.page);
    // Eleven more, with a microphone and no camera (no browsers): a call of 13.
    for (let i = 1; i <= 11; i++) {
      const { socket } = await noomClient(server.url, `Guest ${i}`, room);
      const joined = await ack(socket, "call:join", { room, media: { audio: true, video: false, screen: false } });
      assert.ok(!joined.error, JSON.stringify(joined));
      guests.push(socket);
    }
    await expectVideoFrom(ann.page, [benId], "Ann");
    // Ben mutes: Ann, who shows his tile, sees it.
    await ben.page.locator("#call-mic").click();
    await expectTile(ann.page, benId, { audio: "off", muted: true }, { who: "Ann" });

    // Ann turns to her next page of tiles, which tells the server at once; it has heard once
    // Ben's video, off that page, stops coming.
    await ann.page.locator("#tiles-next").click();
    await expectVideoStopped(ann.page, { from: benId, who: "Ann, for Ben off her page" });

    // Ann's strip of people shows the first two or three; Ben's list, beside his call, six or so.
    // The guest is one Ben's list shows and Ann's phone does not, neither in its list nor on its
    // page of tiles.
    const entry = (user, guest) => user.page.locator(`#participants li[data-id="${guest.person}"]`);
    // On screen: what is seen at its middle is the entry (not clipped by its list, not off the window).
    const entryOnScreen = (user, guest) => entry(user, guest).evaluate((item) => {
      const box = item.getBoundingClientRect();
      return item.contains(document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2));
    });
    // As the web client counts an entry shown: any part of it in sight.
    const entryInSight = (user, guest) => entry(user, guest).evaluate((item) => new Promise((resolve) => {
      const watcher = new IntersectionObserver(([seen]) => {
        watcher.disconnect();
        resolve(seen.isIntersecting);
      });
      watcher.observe(item);
    }));
    let guest;
    for (const g of guests) {
      if (!(await entryOnScreen(ben, g))) continue;
      if ((await entryInSight(ann, g)) || (await tile(ann.page, g.person).isVisible())) continue;
      guest = g;
      break;
    }
    assert.ok(guest, "a guest on Ben's list of people, and neither on Ann's nor on her page of tiles");
    const inList = (user) => entry(user, guest);

    // The guest mutes: Ben's list shows it; Ann's phone, which shows neither the guest's tile
    // nor their entry in the list, is not woken for it.
    assert.ok(!(await ack(guest, "call:media", { room, audio: false, video: false, screen: false })).error);
    await eventually(async () => assert.equal(await inList(ben).getAttribute("data-audio"), "off", "Ben's list: the guest's microphone"));
    await expectTile(ann.page, benId, { audio: "off" }, { who: "Ann, a while later" });
    assert.equal(await inList(ann).getAttribute("data-audio"), "on", "Ann's list, off screen, was not told");

    // Ann scrolls the list to the guest: their state comes as it is now.
    await inList(ann).scrollIntoViewIfNeeded();
    await eventually(async () => assert.equal(await inList(ann).getAttribute("data-audio"), "off", "Ann's list, on screen: the guest's microphone"));
    for (const user of users) assertNoPageErrors(user, user === ann ? "Ann" : "Ben");
  } finally {
    for (const socket of guests) socket.disconnect();
    for (const user of users) await user.close();
  }
});

test("the data saver: audio only receives no video and still hears everyone; back to everyone, the video comes back", { timeout: 180_000 }, async () => {
  const users = [];
  try {
    const ids = {};
    for (const name of ["Sol", "Tae", "Uma"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-saver" });
      ids[name] = await joinCall(user.page);
    }
    const page = users[2].page;
    await expectVideoFrom(page, [ids.Sol, ids.Tae], "Uma");
    await page.locator("#call-settings").click();
    await page.locator("#call-others-video").selectOption("none");
    await page.keyboard.press("Escape");
    for (const id of [ids.Sol, ids.Tae]) await expectTile(page, id, { video: "off" }, { who: "Uma, on audio only" });
    await expectVideoStopped(page, { who: "Uma, on audio only" });
    await expectHearing(page, 2, { who: "Uma, on audio only" });
    // And stays so, long enough for the server to take the idle video out of her connection:
    // it comes back below, on the streams she had.
    const decoded = async () => (await inboundVideo(page)).reduce((sum, v) => sum + v.framesDecoded, 0);
    const stopped = await decoded();
    await page.waitForTimeout(4000);
    assert.equal(await decoded(), stopped, "Uma, on audio only, decodes no video a while later");
    // Remembered, and undone as easily.
    assert.equal(await page.evaluate(() => localStorage.getItem("noom.othersVideo")), "none");
    await page.locator("#call-settings").click();
    await page.locator("#call-others-video").selectOption("all");
    await expectVideoFrom(page, [ids.Sol, ids.Tae], "Uma, back to everyone");
    for (const id of [ids.Sol, ids.Tae]) await expectTile(page, id, { video: "on" }, { who: "Uma" });
  } finally {
    for (const user of users) await user.close();
  }
});

test("pinning someone shows them large over a strip of the others, in a higher layer; unpinning goes back to the grid", { timeout: 180_000 }, async () => {
  const users = [];
  try {
    const ids = {};
    for (const name of ["Val", "Wes"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-pin" });
      ids[name] = await joinCall(user.page);
    }
    const viewer = await openCallUser(browser, server.url, { viewport: { width: 1280, height: 800 } });
    users.push(viewer);
    await enterRoom(viewer.page, { nickname: "Xia", room: "sfu-pin" });
    await joinCall(viewer.page);
    const page = viewer.page;
    await expectVideoFrom(page, [ids.Val, ids.Wes], "Xia");
    const height = (id) => page.locator(`#tiles .tile[data-id="${id}"]`).evaluate((tile) => tile.getBoundingClientRect().height);
    const width = async (id) => (await inboundVideo(page)).find((v) => v.from === id)?.frameWidth ?? 0;
    // By keyboard: Val's pin button.
    const pin = page.locator(`#tiles .tile[data-id="${ids.Val}"] .tile-pin`);
    assert.equal(await pin.getAttribute("aria-label"), "Pin Val: show them large");
    await pin.focus();
    await page.keyboard.press("Enter");
    assert.equal(await pin.getAttribute("aria-pressed"), "true");
    await eventually(async () => {
      const [big, small] = [await height(ids.Val), await height(ids.Wes)];
      assert.ok(big > 3 * small, `Val large (${big} px high), Wes in the strip (${small} px)`);
    });
    await eventually(async () => {
      const [big, small] = [await width(ids.Val), await width(ids.Wes)];
      assert.ok(big > small, `Val's video in a higher layer than Wes's: ${big} against ${small} wide`);
    }, { timeout: CALL_TIMEOUT, interval: 500 });
    await pin.click();
    await eventually(async () => {
      const [a, b] = [await height(ids.Val), await height(ids.Wes)];
      assert.ok(Math.abs(a - b) <= 1, `back to the grid: ${a} and ${b} px high`);
    });
  } finally {
    for (const user of users) await user.close();
  }
});

test("the call, its pages, its speaker layout and its settings pass axe-core's checks, in English and Korean, on a phone and a desktop", { timeout: 180_000 }, async () => {
  const users = [];
  try {
    for (const name of ["Yun", "Zoe"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-a11y" });
      await joinCall(user.page);
    }
    for (const [viewport, locale] of [[{ width: 390, height: 844 }, "ko-KR"], [{ width: 1280, height: 800 }, "en-US"], [{ width: 320, height: 480 }, "en-US"]]) {
      const user = await openCallUser(browser, server.url, { viewport, locale });
      users.push(user);
      await enterRoom(user.page, { nickname: "Ann", room: "sfu-a11y" });
      await joinCall(user.page);
      await expectVideoFrom(user.page, [], "the checker");
      const where = `${viewport.width}x${viewport.height} ${locale}`;
      assert.deepEqual(await seriousViolations(user.page), [], `the call, ${where}`);
      await user.page.locator("#tiles .tile:not([data-self]) .tile-pin").first().focus();
      await user.page.keyboard.press("Enter");
      await user.page.locator("#call-settings").click();
      assert.deepEqual(await seriousViolations(user.page), [], `the speaker layout with the settings open, ${where}`);
      await user.close();
      users.pop();
    }
  } finally {
    for (const user of users) await user.close();
  }
});

test("the one who talks is shown speaking to the others, from what the media server hears", { timeout: 180_000 }, async () => {
  const talking = await launchBrowser({ extraArgs: talkingMicrophoneArgs() });
  const users = [];
  try {
    const ids = {};
    for (const [name, mic] of [["Ann", true], ["Bob", false], ["Cat", false]]) {
      const user = await openCallUser(mic ? talking : browser, server.url);
      user.name = name;
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-speaker" });
      ids[name] = await joinCall(user.page, { mic });
    }
    const [, bob, cat] = users;
    // Ann talks: her browser's microphone says words (Chromium's own fake one only clicks).
    for (const user of [bob, cat]) {
      const seen = new Set();
      await eventually(async () => {
        for (const tile of await tiles(user.page)) if (tile.speaking === "true") seen.add(tile.id);
        assert.ok(seen.has(ids.Ann), `${user.name} sees Ann speaking (seen: ${[...seen]})`);
      }, { timeout: CALL_TIMEOUT, interval: 100 });
      const muted = [ids.Bob, ids.Cat].filter((id) => id !== ids[user.name]);
      assert.ok(!muted.some((id) => seen.has(id)), `${user.name} never sees the muted speaking`);
    }
  } finally {
    for (const user of users) await user.close();
    await talking.close();
  }
});

test("a flood of junk at the media port and a browser killed mid-call: the others keep decoding, and the dead one is gone", { timeout: 180_000 }, async (t) => {
  const { createSocket } = await import("node:dgram");
  const { randomBytes } = await import("node:crypto");
  const { execFileSync } = await import("node:child_process");
  // The victim's browser carries a mark of its own on its command line, to be killed by.
  const mark = `--noom-test-victim-${process.pid}-${Date.now()}`;
  const victimBrowser = await launchBrowser({ extraArgs: [mark] });
  const users = [];
  try {
    const ids = {};
    for (const [name, b] of [["Ann", browser], ["Bob", browser], ["Vic", victimBrowser]]) {
      const user = await openCallUser(b, server.url);
      user.name = name;
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "sfu-flood" });
      ids[name] = await joinCall(user.page);
    }
    const [ann, bob] = users;
    await expectVideoFrom(ann.page, [ids.Bob, ids.Vic], "Ann");
    await expectVideoFrom(bob.page, [ids.Ann, ids.Vic], "Bob");

    // Junk: random bytes, and STUN binding requests naming connections that do not exist.
    const junk = createSocket("udp4");
    const unroutedBefore = await metric(server.url, 'noom_media_datagrams_dropped_total{reason="unrouted"}');
    const stun = (ufrag) => {
      const name = Buffer.from(`${ufrag}:x`);
      const padded = Buffer.alloc(Math.ceil(name.length / 4) * 4);
      name.copy(padded);
      const attribute = Buffer.concat([Buffer.from([0x00, 0x06, 0, name.length]), padded]);
      const header = Buffer.concat([Buffer.from([0x00, 0x01, 0, attribute.length, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
      return Buffer.concat([header, attribute]);
    };
    const sent = 20_000;
    for (let i = 0; i < sent; i++) {
      const datagram = i % 2 ? randomBytes(1 + (i % 1200)) : stun(randomBytes(6).toString("hex"));
      await new Promise((resolve) => junk.send(datagram, server.port, "127.0.0.1", resolve));
    }
    junk.close();
    const unrouted = (await metric(server.url, 'noom_media_datagrams_dropped_total{reason="unrouted"}')) - unroutedBefore;
    t.diagnostic(`${sent} junk datagrams sent, ${unrouted} counted as of no call`);
    assert.ok(unrouted > sent / 2, `the junk was dropped as of no call (${unrouted})`);
    await expectVideoFrom(ann.page, [ids.Bob, ids.Vic], "Ann, after the flood");
    await expectVideoFrom(bob.page, [ids.Ann, ids.Vic], "Bob, after the flood");

    // Vic's browser dies without a word.
    execFileSync("pkill", ["-KILL", "-f", mark.slice(2)]);
    for (const user of [ann, bob]) {
      await eventually(async () => {
        const shown = (await tiles(user.page)).map((tile) => tile.id);
        assert.ok(!shown.includes(ids.Vic), `${user.name} no longer shows Vic: ${shown}`);
      }, { timeout: 15_000, interval: 250 });
    }
    await expectVideoFrom(ann.page, [ids.Bob], "Ann, once Vic is gone");
    await expectVideoFrom(bob.page, [ids.Ann], "Bob, once Vic is gone");
    for (const user of [ann, bob]) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of users) await user.close().catch(() => {});
    await victimBrowser.close().catch(() => {});
  }
});
