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
  expectMessageFrom,
  expectPeople,
  expectVisible,
  launchBrowser,
  sendMessage,
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

test("a full call turns the next one away, who stays in the chat", { timeout: 180_000 }, async () => {
  const small = await startServer({ args: [...NO_STUN, "--call-size", "2"] });
  const opened = [];
  try {
    const users = await usersInRoom(small.url, "two only", ["Alice", "Bob", "Carol"], opened);
    const ids = { Alice: await joinCall(users.Alice.page), Bob: await joinCall(users.Bob.page) };
    const pair = { Alice: users.Alice, Bob: users.Bob };
    await expectFullMesh(pair, ids);

    // Carol tries: the call is full, and she is told so; she is not in it.
    const carol = users.Carol;
    await carol.page.locator("#call-open").click();
    await expectVisible(carol.page.locator("#call-preview"));
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

    // She still chats with both.
    await sendMessage(carol.page, "Full? I'll type then");
    for (const name of ["Alice", "Bob"]) await expectMessageFrom(users[name].page, "Carol", "Full? I'll type then");
    await sendMessage(users.Bob.page, "Sorry Carol");
    await expectMessageFrom(carol.page, "Bob", "Sorry Carol");

    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    await closeAll(opened);
    await small.stop();
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
