// Video calls between real browsers: each user in a browser context of their own, with Chromium's
// fake camera and microphone, joining through the UI; media goes page to page over loopback (the
// server hands out no STUN server, so nothing tries the internet). What is checked is what a
// user gets: tiles, their state, and video frames actually decoded from each peer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectHidden,
  expectInLobby,
  expectMessageFrom,
  expectPeople,
  expectSystemLinesAbout,
  expectVisible,
  launchBrowser,
  sendMessage,
  systemLines,
  texts,
  useBrowser,
} from "../support/browser.mjs";
import {
  expectDecoding,
  expectHearing,
  expectLocalTracksEnded,
  expectTile,
  expectTiles,
  expectTilesConnected,
  expectTilesPlaying,
  joinCall,
  leaveCall,
  localTracks,
  openCallUser,
  tile,
  tiles,
} from "../support/rtc.mjs";
import { seriousViolations } from "../support/axe.mjs";

const NO_STUN = ["--stun-urls", ""];
const server = useServer({ args: NO_STUN });
const browser = useBrowser();

/**
 * Opens one user per nickname, enters `room` with each (in order) and returns them by name.
 * Everyone opened goes into `opened`, to be closed by the test.
 */
async function usersInRoom(url, room, names, opened) {
  const users = {};
  for (const name of names) {
    const user = await openCallUser(browser, url);
    opened.push(user);
    user.name = name;
    await enterRoom(user.page, { nickname: name, room });
    users[name] = user;
  }
  return users;
}

async function closeAll(opened) {
  for (const user of opened.splice(0)) await user.close();
}

/** The participants list entry of `id` as shown: its call attributes. */
function listEntry(page, id) {
  return page.locator(`#participants li[data-id="${id}"]`).evaluate((li) => ({
    inCall: li.getAttribute("data-in-call"),
    audio: li.getAttribute("data-audio"),
    video: li.getAttribute("data-video"),
  }));
}

/** Whether a participants list entry says its person is in the call. */
const inCall = (entry) => entry.inCall !== null && entry.inCall !== "false";

/**
 * Waits until everyone in `users` (by name) shows tiles for exactly `ids` (by name), all connected,
 * and decodes and plays video from each of the others.
 */
async function expectFullMesh(users, ids) {
  for (const [name, user] of Object.entries(users)) {
    await expectTiles(user.page, Object.values(ids), { who: name });
    await expectTilesConnected(user.page, Object.entries(ids).filter(([n]) => n !== name).map(([, id]) => id), { who: name });
  }
  for (const [name, user] of Object.entries(users)) {
    const others = Object.entries(ids).filter(([n]) => n !== name).map(([, id]) => id);
    await expectDecoding(user.page, others.length, { who: name });
    await expectTilesPlaying(user.page, others, { who: name });
  }
}

test("three users join one call; each decodes video from and hears both others; a mute shows on the others' tiles", { timeout: 180_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "three in a call", ["Alice", "Bob", "Carol"], opened);
    const ids = {};
    for (const [name, user] of Object.entries(users)) ids[name] = await joinCall(user.page);
    await expectFullMesh(users, ids);
    for (const [name, user] of Object.entries(users)) await expectHearing(user.page, 2, { who: name });

    // Every tile names its person; one's own tile is marked as such; everyone's camera and
    // microphone are on, and the call's buttons say so.
    for (const [name, user] of Object.entries(users)) {
      const shown = await tiles(user.page);
      for (const [other, id] of Object.entries(ids)) {
        const t = shown.find((x) => x.id === id);
        assert.equal(t.self, other === name, `${name}: ${other}'s tile data-self`);
        assert.match(t.name, new RegExp(other), `${name}: ${other}'s tile name`);
        assert.equal(t.audio, "on", `${name}: ${other}'s tile data-audio`);
        assert.equal(t.video, "on", `${name}: ${other}'s tile data-video`);
        assert.equal(t.muted, false, `${name}: ${other}'s .tile-muted hidden`);
      }
      assert.equal(await user.page.locator("#call-mic").getAttribute("aria-pressed"), "true", `${name}: #call-mic pressed`);
      assert.equal(await user.page.locator("#call-camera").getAttribute("aria-pressed"), "true", `${name}: #call-camera pressed`);
    }

    // Bob mutes: Alice and Carol see it on his tile; his own button says so.
    await users.Bob.page.locator("#call-mic").click();
    await eventually(async () => assert.equal(await users.Bob.page.locator("#call-mic").getAttribute("aria-pressed"), "false"));
    for (const name of ["Alice", "Carol"]) {
      await expectTile(users[name].page, ids.Bob, { audio: "off", muted: true, video: "on" }, { who: name });
      await expectVisible(tile(users[name].page, ids.Bob).locator(".tile-muted"), `${name} sees Bob muted`);
      await eventually(async () => assert.equal((await listEntry(users[name].page, ids.Bob)).audio, "off", `${name}'s list: Bob's data-audio`));
    }
    // Nobody else looks muted.
    for (const name of ["Alice", "Carol"]) await expectTile(users.Bob.page, ids[name], { audio: "on", muted: false }, { who: "Bob" });

    // Bob unmutes: back on everywhere.
    await users.Bob.page.locator("#call-mic").click();
    for (const name of ["Alice", "Carol"]) {
      await expectTile(users[name].page, ids.Bob, { audio: "on", muted: false }, { who: name });
      await expectHidden(tile(users[name].page, ids.Bob).locator(".tile-muted"), `${name} sees Bob unmuted`);
    }

    // Carol turns her camera off: the others see it, and still decode Bob's video.
    await users.Carol.page.locator("#call-camera").click();
    for (const name of ["Alice", "Bob"]) await expectTile(users[name].page, ids.Carol, { video: "off" }, { who: name });
    await eventually(async () => assert.equal(await users.Carol.page.locator("#call-camera").getAttribute("aria-pressed"), "false"));

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

test("a fourth user joins late and connects to everyone; one leaves the call and stays in the chat", { timeout: 240_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "late and early", ["Alice", "Bob", "Carol", "Dave"], opened);
    const { Dave: dave, ...early } = users;
    const ids = {};
    for (const [name, user] of Object.entries(early)) ids[name] = await joinCall(user.page);
    await expectFullMesh(early, ids);

    // Dave was in the room all along; now he joins: he decodes from the three, they from him.
    ids.Dave = await joinCall(dave.page);
    await expectFullMesh(users, ids);

    // Carol leaves the call: her tile goes everywhere, her camera and microphone are released,
    // and the three left still decode from each other.
    await leaveCall(users.Carol.page);
    const { Carol: carol, ...stay } = users;
    const stayIds = Object.fromEntries(Object.entries(ids).filter(([n]) => n !== "Carol"));
    await expectLocalTracksEnded(carol.page, { who: "Carol" });
    await expectFullMesh(stay, stayIds);
    for (const [name, user] of Object.entries(stay)) {
      await eventually(async () => assert.ok(!inCall(await listEntry(user.page, ids.Carol)), `${name}'s list: Carol no longer in the call`));
    }

    // She is still in the room: she sees the others, says something, and they read it.
    await expectPeople(carol.page, ["Alice", "Bob", "Carol", "Dave"]);
    await sendMessage(carol.page, "I'll follow in the chat");
    for (const user of Object.values(stay)) await expectMessageFrom(user.page, "Carol", "I'll follow in the chat");
    // And she can read them.
    await sendMessage(users.Alice.page, "Sure, Carol");
    await expectMessageFrom(carol.page, "Alice", "Sure, Carol");

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

test("a user without camera or microphone joins and still sees and hears the others", { timeout: 180_000 }, async (t) => {
  // A browser of its own without Chromium's fake devices: on a machine without a camera or a
  // microphone (this one), it has none, as a person on such a computer.
  const bare = await launchBrowser({ fakeDevices: false });
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "no camera here", ["Alice"], opened);
    const nora = await openCallUser(bare, server.url);
    opened.push(nora);
    nora.name = "Nora";
    // Should the machine running this have a camera or a microphone after all, make it look like
    // it has none (getUserMedia fails as it does then).
    const devices = await nora.page.evaluate(async () => (await navigator.mediaDevices.enumerateDevices()).length);
    if (devices > 0) {
      t.diagnostic(`this machine has ${devices} media devices: Nora's page pretends there are none`);
      await nora.close();
      opened.pop();
      Object.assign(nora, await openCallUser(bare, server.url, { noDevices: true }));
      opened.push(nora);
    }
    await enterRoom(nora.page, { nickname: "Nora", room: "no camera here" });
    users.Nora = nora;

    const ids = { Alice: await joinCall(users.Alice.page) };
    // Nora's preview says she has no camera or microphone, and she can join all the same.
    await nora.page.locator("#call-open").click();
    await expectVisible(nora.page.locator("#call-preview"));
    await expectVisible(nora.page.locator("#preview-notice"), "Nora's preview tells her there is no device");
    await nora.page.locator("#call-start").click();
    await expectVisible(nora.page.locator("#tiles .tile[data-self]"), "Nora's own tile");
    ids.Nora = await nora.page.locator("#tiles .tile[data-self]").getAttribute("data-id");

    for (const [name, user] of Object.entries(users)) {
      await expectTiles(user.page, Object.values(ids), { who: name });
    }
    await expectTilesConnected(nora.page, [ids.Alice], { who: "Nora" });
    await expectTilesConnected(users.Alice.page, [ids.Nora], { who: "Alice" });
    // Nora decodes Alice's video; Alice sees Nora with camera and microphone off.
    await expectDecoding(nora.page, 1, { who: "Nora" });
    await expectTilesPlaying(nora.page, [ids.Alice], { who: "Nora" });
    await expectHearing(nora.page, 1, { who: "Nora" });
    await expectTile(users.Alice.page, ids.Nora, { audio: "off", video: "off", muted: true }, { who: "Alice" });
    await expectTile(nora.page, ids.Alice, { audio: "on", video: "on" }, { who: "Nora" });
    assert.deepEqual(await localTracks(nora.page), [], "Nora captured nothing");

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
    await bare.close();
  }
});

test("a full call's button is disabled and says so; a place freeing brings it back, with no stale notice", { timeout: 180_000 }, async () => {
  const small = await startServer({ args: [...NO_STUN, "--call-size", "2"] });
  const opened = [];
  try {
    const users = await usersInRoom(small.url, "two only", ["Alice", "Bob", "Carol"], opened);
    const carol = users.Carol;
    const open = carol.page.locator("#call-open");
    const ids = { Alice: await joinCall(users.Alice.page) };
    // Carol opens her preview while a place is free; Bob takes it meanwhile.
    await open.click();
    await expectVisible(carol.page.locator("#call-preview"));
    ids.Bob = await joinCall(users.Bob.page);
    const pair = { Alice: users.Alice, Bob: users.Bob };
    await expectFullMesh(pair, ids);

    // Carol tries: the server turns her away, and she is told so; she is not in it.
    await carol.page.locator("#call-start").click();
    await expectVisible(carol.page.locator("#call-error"), "Carol is told the call is full");
    const error = (await carol.page.locator("#call-error").textContent()).trim();
    assert.ok(error.length > 0, "#call-error says something");
    assert.equal(await carol.page.locator("#tiles .tile").count(), 0, "Carol has no tiles");
    // The two in the call are still two, and connected.
    for (const [name, user] of Object.entries(pair)) await expectTiles(user.page, Object.values(ids), { who: name });
    await expectDecoding(users.Alice.page, 1, { who: "Alice" });
    // Turned away, she does not keep her camera or microphone open.
    await expectLocalTracksEnded(carol.page, { who: "Carol" });

    // Her button now says the call is full, and does nothing; a keyboard still reaches it.
    await eventually(async () => {
      assert.equal(await open.getAttribute("aria-disabled"), "true", "the full call's button is disabled");
      assert.match(await open.textContent(), /2\/2/, "it says how full");
    });
    await open.click({ force: true });
    await open.focus();
    await carol.page.keyboard.press("Enter");
    assert.ok(await carol.page.locator("#call-preview").isHidden(), "no preview opens for a full call");

    // She still chats with both.
    await sendMessage(carol.page, "Full? I'll type then");
    for (const name of ["Alice", "Bob"]) await expectMessageFrom(users[name].page, "Carol", "Full? I'll type then");
    await sendMessage(users.Bob.page, "Sorry Carol");
    await expectMessageFrom(carol.page, "Bob", "Sorry Carol");

    // Bob leaves the call: Carol's button comes back by itself, the refusal is gone, and she joins.
    await leaveCall(users.Bob.page);
    await eventually(async () => {
      assert.equal(await open.getAttribute("aria-disabled"), null, "the button is enabled again");
      assert.ok(await carol.page.locator("#call-error").isHidden(), "the old refusal is gone");
    });
    ids.Carol = await joinCall(carol.page);
    await expectTiles(carol.page, [ids.Alice, ids.Carol], { who: "Carol" });

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
    await small.stop();
  }
});

test("Leave during a call asks first, in the page's own dialog: leave the call or the room; the chat says who joins and leaves the call", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "leave politely", ["Alice", "Bob"], opened);
    const { Alice: alice, Bob: bob } = users;
    const dialog = alice.page.locator("#ask");
    const nativeDialogs = [];
    alice.page.on("dialog", (d) => {
      nativeDialogs.push(d.type());
      void d.dismiss();
    });
    await joinCall(bob.page);
    await expectSystemLinesAbout(alice.page, "joined the call", 1);
    assert.ok((await systemLines(alice.page)).some((l) => l.includes("Bob") && l.includes("joined the call")), "the line names Bob");
    await joinCall(alice.page);

    // Escape answers "neither": still in the call.
    await alice.page.locator("#leave").click();
    await expectVisible(dialog, "the question shows");
    assert.deepEqual(await texts(dialog.locator("button")), ["Leave the call", "Leave the room", "Cancel"]);
    assert.equal(await alice.page.evaluate(() => document.activeElement?.textContent), "Leave the call", "the mildest answer has the focus");
    await alice.page.keyboard.press("Escape");
    await expectHidden(dialog, "Escape closes it");
    await expectVisible(alice.page.locator("#call"), "still in the call");

    // "Leave the call": out of the call, still in the room; Bob's chat says so.
    await alice.page.locator("#leave").click();
    await dialog.getByRole("button", { name: "Leave the call" }).click();
    await expectHidden(alice.page.locator("#call"), "the call is left");
    await expectVisible(alice.page.locator("#room-view"), "still in the room");
    await expectSystemLinesAbout(bob.page, "left the call", 1);
    assert.ok((await systemLines(bob.page)).some((l) => l.includes("Alice") && l.includes("left the call")), "the line names Alice");

    // Outside a call, Leave leaves at once; in one, "Leave the room" goes to the lobby.
    await joinCall(alice.page);
    await alice.page.locator("#leave").click();
    await dialog.getByRole("button", { name: "Leave the room" }).click();
    await expectInLobby(alice.page);
    await expectPeople(bob.page, ["Bob"]);
    assert.deepEqual(nativeDialogs, [], "the browser's own dialogs are never used");
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

/** Whether the page sends an enabled, live microphone track on any of its connections. */
function sendsSound(page) {
  return page.evaluate(() =>
    (window.__rtc?.connections ?? []).some(({ pc }) =>
      pc.connectionState !== "closed" && pc.getSenders().some((s) => s.track?.kind === "audio" && s.track.enabled && s.track.readyState === "live"),
    ),
  );
}

test("Ctrl+D and Ctrl+E turn the microphone and camera off and on, Space held talks while muted, and ? lists the shortcuts", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "keys", ["Alice", "Bob"], opened);
    const page = users.Alice.page;
    const ids = { Alice: await joinCall(page), Bob: await joinCall(users.Bob.page) };
    await expectTilesConnected(page, [ids.Bob], { who: "Alice" });
    const mic = page.locator("#call-mic");
    const camera = page.locator("#call-camera");
    const expectMic = (on, why) => eventually(async () => {
      assert.equal(await mic.getAttribute("aria-pressed"), String(on), `${why}: the microphone button`);
      assert.equal(await sendsSound(page), on, `${why}: sound sent`);
    });
    await expectMic(true, "at first");
    // Away from any button, as a person would be while listening.
    await page.evaluate(() => document.activeElement?.blur());

    await page.keyboard.press("Control+KeyD");
    await expectMic(false, "Ctrl+D");
    await expectTile(users.Bob.page, ids.Alice, { audio: "off" }, { who: "Bob" });
    await page.keyboard.down("Space");
    await expectMic(true, "Space held");
    await page.keyboard.up("Space");
    await expectMic(false, "Space let go");
    await page.keyboard.press("Control+KeyD");
    await expectMic(true, "Ctrl+D again");

    await page.keyboard.press("Control+KeyE");
    await eventually(async () => assert.equal(await camera.getAttribute("aria-pressed"), "false", "Ctrl+E turns the camera off"));
    await expectTile(users.Bob.page, ids.Alice, { video: "off" }, { who: "Bob" });
    await page.keyboard.press("Control+KeyE");
    await eventually(async () => assert.equal(await camera.getAttribute("aria-pressed"), "true", "Ctrl+E turns it on again"));

    // Typing in the chat, Space is a space and ? a question mark.
    await page.locator("#message").fill("");
    await page.locator("#message").type("who? me");
    assert.equal(await page.locator("#message").inputValue(), "who? me");
    await expectMic(true, "typing");
    await expectHidden(page.locator("#shortcuts"), "no list while typing");

    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press("Shift+Slash");
    await expectVisible(page.locator("#shortcuts"), "? lists the shortcuts");
    const listed = await texts(page.locator("#shortcuts kbd"));
    assert.deepEqual(listed, ["Ctrl+D", "Ctrl+E", "Space", "?"]);
    await page.keyboard.press("Escape");
    await expectHidden(page.locator("#shortcuts"), "Escape closes the list");
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

test("sharing a screen says 'You are presenting' with a Stop beside it; stopping there, or from the browser's own bar, ends the share", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "show and tell", ["Alice", "Bob"], opened);
    const page = users.Alice.page;
    const ids = { Alice: await joinCall(page), Bob: await joinCall(users.Bob.page) };
    const bar = page.locator("#call-presenting");
    await expectHidden(bar, "nothing presented yet");

    for (const how of ["the Stop button", "the browser's own bar"]) {
      await page.locator("#call-screen").click();
      await expectVisible(bar, "the presenter is told");
      await expectTile(users.Bob.page, ids.Alice, { screen: "on" }, { who: "Bob" });
      if (how === "the Stop button") {
        await bar.getByRole("button", { name: "Stop presenting" }).click();
      } else {
        // What the browser's "Stop sharing" does: the screen's track ends.
        await page.evaluate(() => window.__rtc.tracks.filter((t) => t.source === "getDisplayMedia").forEach(({ track }) => {
          track.stop();
          track.dispatchEvent(new Event("ended"));
        }));
      }
      await expectHidden(bar, `stopped with ${how}`);
      assert.equal(await page.locator("#call-screen").getAttribute("aria-pressed"), "false", `the share button is off after ${how}`);
      await expectTile(users.Bob.page, ids.Alice, { screen: "off" }, { who: "Bob" });
    }
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

test("the preview and the call's settings show the microphone's level, and Test speaker plays a sound", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "levels", ["Alice"], opened);
    const page = users.Alice.page;
    await page.locator("#call-open").click();
    await expectVisible(page.locator("#call-preview"));
    const previewMeter = page.locator("#call-preview .level");
    // The fake microphone beeps: the meter rises with each beep.
    await eventually(async () => assert.ok(Number(await previewMeter.getAttribute("aria-valuenow")) > 20, "the preview's meter moves"), { timeout: 15_000, interval: 50 });
    const test = page.locator("#call-preview .test-sound");
    await test.click();
    await eventually(async () => assert.equal(await test.getAttribute("data-playing"), "false", "the sound plays, and the button comes back"));

    // Muted in the preview: the meter stays down.
    await page.locator("#preview-mic").click();
    await eventually(async () => assert.equal(await previewMeter.getAttribute("aria-valuenow"), "0"));
    await page.locator("#preview-mic").click();
    await page.locator("#call-start").click();
    await expectVisible(page.locator("#call"));
    await page.locator("#call-settings").click();
    const callMeter = page.locator("#call-settings-panel .level");
    await eventually(async () => assert.ok(Number(await callMeter.getAttribute("aria-valuenow")) > 20, "the settings' meter moves"), { timeout: 15_000, interval: 50 });
    assert.deepEqual(await seriousViolations(page), [], "axe finds nothing serious in the settings");
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});

test("the room's header shows how long its call has been going, to those who came later too, and nothing once it is over", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const users = await usersInRoom(server.url, "a long call", ["Alice"], opened);
    const timer = (page) => page.locator("#call-timer");
    const seconds = async (page) => {
      const [m, s] = (await page.locator("#call-timer-time").textContent()).split(":").map(Number);
      return m * 60 + s;
    };
    await expectHidden(timer(users.Alice.page), "no call, no clock");
    await joinCall(users.Alice.page);
    await expectVisible(timer(users.Alice.page), "a call going shows its clock");
    await eventually(async () => assert.ok((await seconds(users.Alice.page)) >= 2, "it runs"), { timeout: 10_000 });

    // Bob comes in later: his clock counts from when the call began, not from his arrival.
    const [bob] = [await openCallUser(browser, server.url)];
    opened.push(bob);
    await enterRoom(bob.page, { nickname: "Bob", room: "a long call" });
    await expectVisible(timer(bob.page));
    assert.ok((await seconds(bob.page)) >= 2, "Bob's clock started before he came");

    await leaveCall(users.Alice.page);
    for (const page of [users.Alice.page, bob.page]) await expectHidden(timer(page), "the call is over");
    for (const user of opened) assertNoPageErrors(user, user.name ?? "Bob");
  } finally {
    await closeAll(opened);
  }
});

test("someone entering the room later sees who is in the call and their media state", { timeout: 180_000 }, async () => {
  const opened = [];
  try {
    const room = "state for newcomers";
    const users = await usersInRoom(server.url, room, ["Alice", "Bob"], opened);
    const ids = { Alice: await joinCall(users.Alice.page), Bob: await joinCall(users.Bob.page) };
    await expectFullMesh(users, ids);
    // Alice mutes; Bob turns his camera off. Each change reaches the other first.
    await users.Alice.page.locator("#call-mic").click();
    await users.Bob.page.locator("#call-camera").click();
    await expectTile(users.Bob.page, ids.Alice, { audio: "off", video: "on" }, { who: "Bob" });
    await expectTile(users.Alice.page, ids.Bob, { audio: "on", video: "off" }, { who: "Alice" });

    // Erin enters the room (not the call): her list shows both in the call, with their state.
    const { Erin: erin } = await usersInRoom(server.url, room, ["Erin"], opened);
    await expectPeople(erin.page, ["Alice", "Bob", "Erin"]);
    await eventually(async () => {
      const alice = await listEntry(erin.page, ids.Alice);
      const bob = await listEntry(erin.page, ids.Bob);
      assert.ok(inCall(alice), `Erin's list: Alice in the call ${JSON.stringify(alice)}`);
      assert.ok(inCall(bob), `Erin's list: Bob in the call ${JSON.stringify(bob)}`);
      assert.deepEqual([alice.audio, alice.video], ["off", "on"], "Erin's list: Alice muted, camera on");
      assert.deepEqual([bob.audio, bob.video], ["on", "off"], "Erin's list: Bob's camera off");
    });
    const [erinEntry] = await erin.page.locator("#participants li[data-id]").evaluateAll((items) =>
      items.filter((li) => li.querySelector(".nick")?.textContent?.trim() === "Erin").map((li) => li.getAttribute("data-in-call")));
    assert.ok(erinEntry === null || erinEntry === "false", "Erin's list: Erin not in the call");

    // She joins: her tiles show the same.
    ids.Erin = await joinCall(erin.page);
    await expectTiles(erin.page, Object.values(ids), { who: "Erin" });
    await expectTile(erin.page, ids.Alice, { audio: "off", muted: true, video: "on" }, { who: "Erin" });
    await expectTile(erin.page, ids.Bob, { audio: "on", muted: false, video: "off" }, { who: "Erin" });
    await expectTilesConnected(erin.page, [ids.Alice, ids.Bob], { who: "Erin" });

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
  }
});
