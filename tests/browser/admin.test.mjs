// The admin panel at /admin, in a browser: signing in with the token, the rooms and their people
// live as they come, go and change their media (and again after the server was away), and the two
// actions as the people concerned see them: a closed room sends them back to the lobby, a
// disconnection leaves their page disconnected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectConnState,
  expectCount,
  expectHidden,
  expectInLobby,
  expectPath,
  expectText,
  expectVisible,
  openUser,
  participants,
  systemLines,
  texts,
  useBrowser,
} from "../support/browser.mjs";
import { expectLocalTracksEnded, joinCall, openCallUser } from "../support/rtc.mjs";

const TOKEN = "browser-tests-admin-token-0123456789";
// Calls of two go through the media server too, whose figures the panel shows.
const SERVER_ARGS = ["--admin-token", TOKEN, "--stun-urls", "", "--pairs", "server"];
const server = useServer({ args: SERVER_ARGS });
const browser = useBrowser();

/**
 * Opens the admin page in a context of its own, accepting every confirm() and recording what each
 * asked; signs in with `token` unless it is null.
 */
async function openAdmin(token = TOKEN) {
  const admin = await openUser(browser, `${server.url}/admin`, { waitConnected: false });
  admin.dialogs = [];
  admin.page.on("dialog", (dialog) => {
    admin.dialogs.push({ type: dialog.type(), message: dialog.message() });
    void dialog.accept();
  });
  if (token !== null) {
    await signIn(admin.page, token);
    await expectVisible(admin.page.locator("#admin-main"), "the admin panel after signing in");
  }
  return admin;
}

async function signIn(page, token) {
  await expectVisible(page.locator("#admin-login"), "the sign-in form");
  await page.locator("#admin-token").fill(token);
  await page.locator("#admin-sign-in").click();
}

function roomCard(page, room) {
  return page.locator(`.admin-room[data-room="${room}"]`);
}

function personRow(page, id) {
  return page.locator(`.admin-participant[data-id="${id}"]`);
}

/** A person's row as the admin page shows it: nickname, id, node and media attributes. */
function rowOf(page, id) {
  return personRow(page, id).evaluate((row) => ({
    nickname: row.querySelector(".nick")?.textContent,
    id: row.querySelector(".admin-id")?.textContent,
    node: row.getAttribute("data-node"),
    nodeShown: row.querySelector(".admin-participant-node")?.textContent,
    inCall: row.getAttribute("data-in-call"),
    audio: row.getAttribute("data-audio"),
    video: row.getAttribute("data-video"),
    screen: row.getAttribute("data-screen"),
    labels: [...row.querySelectorAll("[role=img]")].map((icon) => icon.getAttribute("aria-label")),
  }));
}

/** Waits until the row of `id` shows what `expected` lists (only those fields). */
function expectRow(page, id, expected) {
  return eventually(async () => {
    const row = await rowOf(page, id);
    const seen = Object.fromEntries(Object.keys(expected).map((k) => [k, row[k]]));
    assert.deepEqual(seen, expected, `the admin page's row of ${id}`);
  });
}

/** The socket id of the page's own entry in its room's participants list. */
async function ownEntryId(page, nickname) {
  const own = (await participants(page)).find((p) => p.nick === nickname);
  assert.ok(own, `${nickname} is in the participants list`);
  return own.id;
}

async function closeAll(opened) {
  for (const user of opened.splice(0)) await user.close();
}

test("the admin page: a wrong token shows nothing; the right one shows the rooms and their people live", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const admin = await openAdmin(null);
    opened.push(admin);
    await signIn(admin.page, "not-the-token-but-long-enough-0000");
    await expectText(admin.page.locator("#admin-login-error"), "That token is not right.");
    await expectHidden(admin.page.locator("#admin-main"), "no panel with a wrong token");
    assert.equal(await admin.page.locator(".admin-room, .admin-participant").count(), 0, "no data with a wrong token");
    assert.equal(await admin.page.evaluate(() => sessionStorage.getItem("noom.adminToken")), null, "a wrong token is not kept");

    const rosa = await openCallUser(browser, server.url);
    opened.push(rosa);
    await enterRoom(rosa.page, { nickname: "Rosa", room: "standup" });
    const rosaId = await ownEntryId(rosa.page, "Rosa");

    await signIn(admin.page, TOKEN);
    await expectVisible(admin.page.locator("#admin-main"));
    await expectHidden(admin.page.locator("#admin-login"), "the form goes once signed in");
    await expectText(admin.page.locator("#admin-live-label"), "Live");
    const node = (await texts(admin.page.locator("#admin-node")))[0];
    assert.ok(node, "#admin-node names this node");
    await expectText(admin.page.locator("#admin-redis"), "None (single node)");
    await expectText(admin.page.locator(`#admin-nodes li[data-node="${node}"] .tag`), "this node");
    await expectText(admin.page.locator(`#admin-nodes li[data-node="${node}"] .admin-node-people`), "1 in rooms");
    await expectRow(admin.page, rosaId, { nickname: "Rosa", id: rosaId, node, nodeShown: node, inCall: "false", labels: [] });
    await expectText(roomCard(admin.page, "standup").locator(".admin-room-counts"), "1 in the room · 0 in the call");
    await expectText(admin.page.locator("#admin-room-count"), "1");
    await expectText(admin.page.locator("#admin-people"), "1");
    await expectText(admin.page.locator("#admin-in-call"), "0");

    // A reload keeps the tab signed in; from then on the page is never reloaded again.
    await admin.page.reload();
    await expectVisible(roomCard(admin.page, "standup"), "still signed in after a reload");
    await admin.page.evaluate(() => { window.__samePage = true; });

    // Rosa joins the call with her (fake) camera and microphone: the admin page shows it live.
    await joinCall(rosa.page);
    await expectRow(admin.page, rosaId, {
      inCall: "true",
      audio: "on",
      video: "on",
      screen: "off",
      labels: ["In the call", "Microphone on", "Camera on"],
    });
    await expectText(roomCard(admin.page, "standup").locator(".admin-room-counts"), "1 in the room · 1 in the call");
    await expectText(admin.page.locator("#admin-in-call"), "1");

    // She mutes, then turns her camera off.
    await rosa.page.locator("#call-mic").click();
    await expectRow(admin.page, rosaId, { audio: "off", video: "on", labels: ["In the call", "Microphone off", "Camera on"] });
    await rosa.page.locator("#call-camera").click();
    await expectRow(admin.page, rosaId, { audio: "off", video: "off" });

    // Someone else arrives and leaves: the list follows.
    const sam = await openUser(browser, server.url);
    opened.push(sam);
    await enterRoom(sam.page, { nickname: "Sam", room: "standup" });
    const samId = await ownEntryId(sam.page, "Sam");
    await expectRow(admin.page, samId, { nickname: "Sam", inCall: "false" });
    await expectText(roomCard(admin.page, "standup").locator(".admin-room-counts"), "2 in the room · 1 in the call");
    await sam.close();
    await expectCount(personRow(admin.page, samId), 0, "Sam's row goes when he does");

    assert.equal(await admin.page.evaluate(() => window.__samePage), true, "the admin page was not reloaded");

    // Signing out forgets the token.
    await admin.page.locator("#admin-sign-out").click();
    await expectVisible(admin.page.locator("#admin-login"));
    await expectHidden(admin.page.locator("#admin-main"));
    assert.equal(await admin.page.evaluate(() => sessionStorage.getItem("noom.adminToken")), null, "the token is gone");
    assertNoPageErrors(admin, "the admin page");
    assertNoPageErrors(rosa, "Rosa");
  } finally {
    await closeAll(opened);
  }
});

test("the admin page shows each caller's media through the media server: layers sent, videos received, UDP or TCP, the estimate", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const ids = {};
    for (const name of ["Mia", "Noa"]) {
      const user = await openCallUser(browser, server.url);
      opened.push(user);
      await enterRoom(user.page, { nickname: name, room: "media figures" });
      ids[name] = await joinCall(user.page);
    }
    const admin = await openAdmin();
    opened.push(admin);
    for (const id of Object.values(ids)) {
      await eventually(async () => {
        const lines = await texts(personRow(admin.page, id).locator(".admin-media-stats li"));
        assert.equal(lines.length, 3, `three lines of figures: ${lines}`);
        // Each layer is named; one the browser does not send (Chrome drops the top one when its CPU
        // or its estimate is short) shows a dash for its rate, after the height it last had if it
        // was ever sent.
        const layer = (rid) => `${rid} (\\d+p )?([\\d.]+ (kbit|Mbit)/s|–)`;
        const sends = new RegExp(`^Sends [\\d.]+ (kbit|Mbit)/s: q \\d+p [\\d.]+ (kbit|Mbit)/s · ${layer("h")} · ${layer("f")}$`);
        assert.match(lines[0], sends, "what is sent, layer by layer");
        assert.match(lines[1], /^Receives 1 of 1 videos \([qhf]\), [\d.]+ (kbit|Mbit)\/s, \d+% lost$/, "what is received");
        assert.match(lines[2], /^Over UDP, bandwidth estimate [\d.]+ (kbit|Mbit)\/s$/, "how the media goes, and the estimate");
      }, { timeout: 30_000, interval: 500 });
    }
    assertNoPageErrors(admin, "the admin page");
  } finally {
    for (const user of opened) await user.close();
  }
});

test("closing a room from the admin page sends everyone in it back to the lobby and ends their call", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const rosa = await openCallUser(browser, server.url);
    opened.push(rosa);
    await enterRoom(rosa.page, { nickname: "Rosa", room: "retro" });
    await joinCall(rosa.page);
    const sam = await openUser(browser, server.url);
    opened.push(sam);
    await enterRoom(sam.page, { nickname: "Sam", room: "retro" });

    const admin = await openAdmin();
    opened.push(admin);
    await expectText(roomCard(admin.page, "retro").locator(".admin-room-counts"), "2 in the room · 1 in the call");
    await roomCard(admin.page, "retro").locator(".admin-close-room").click();
    await expectText(admin.page.locator("#admin-status"), "Closed “retro” (2 people).");
    assert.deepEqual(admin.dialogs.map((d) => d.type), ["confirm"], "one confirmation asked");
    assert.match(admin.dialogs[0].message, /retro/, "the confirmation names the room");
    await expectCount(roomCard(admin.page, "retro"), 0, "the closed room is no longer listed");
    await expectVisible(admin.page.locator("#admin-empty"), "no open rooms left");

    for (const [name, user] of [["Rosa", rosa], ["Sam", sam]]) {
      await expectText(user.page.locator("#error-text"), "An administrator closed the room “retro”.", `${name}'s banner`);
      await expectInLobby(user.page);
      await expectPath(user.page, "/");
      await expectConnState(user.page, "connected");
      await expectCount(user.page.locator('#directory li[data-room="retro"]'), 0, `${name}'s directory`);
    }
    await expectLocalTracksEnded(rosa.page, { who: "Rosa" });
    await expectHidden(rosa.page.locator("#call"), "Rosa's call is gone");

    // The room can be opened again, afresh.
    await enterRoom(rosa.page, { nickname: "Rosa", room: "retro" });
    await expectVisible(roomCard(admin.page, "retro"), "the room is listed again once reopened");
    for (const user of opened) assertNoPageErrors(user);
  } finally {
    await closeAll(opened);
  }
});

test("disconnecting someone from the admin page leaves their page disconnected for good", { timeout: 120_000 }, async () => {
  const opened = [];
  try {
    const bob = await openCallUser(browser, server.url);
    opened.push(bob);
    await enterRoom(bob.page, { nickname: "Bob", room: "ops" });
    const bobId = await joinCall(bob.page);
    const ann = await openUser(browser, server.url);
    opened.push(ann);
    await enterRoom(ann.page, { nickname: "Ann", room: "ops" });
    await bob.onWebSocket();
    let newSockets = 0;
    bob.page.on("websocket", (ws) => {
      if (ws.url().includes("/socket.io/")) newSockets++;
    });
    bob.page.on("request", (request) => {
      if (request.url().includes("/socket.io/")) newSockets++;
    });

    const admin = await openAdmin();
    opened.push(admin);
    await expectRow(admin.page, bobId, { nickname: "Bob", inCall: "true" });
    await personRow(admin.page, bobId).locator(".admin-disconnect").click();
    await expectText(admin.page.locator("#admin-status"), "Disconnected Bob.");
    assert.match(admin.dialogs[0]?.message ?? "", /Bob/, "the confirmation names the person");
    await expectCount(personRow(admin.page, bobId), 0, "Bob is no longer listed");

    await expectText(bob.page.locator("#error-text"), "An administrator disconnected you. Reload the page to come back.");
    await expectConnState(bob.page, "disconnected");
    await expectText(bob.page.locator("#conn-label"), "Disconnected");
    await expectLocalTracksEnded(bob.page, { who: "Bob" });
    await expectHidden(bob.page.locator("#call"), "Bob's call is gone");

    // It stays so: no reconnection, not even an attempt.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal(await bob.page.locator("#conn-status").getAttribute("data-state"), "disconnected", "still disconnected");
    assert.equal(newSockets, 0, "no new Socket.IO connection was tried");
    assert.ok(!(await systemLines(bob.page)).some((l) => l.includes("Reconnecting")), "no line saying it reconnects");
    // The others saw him go.
    await eventually(async () => assert.deepEqual((await participants(ann.page)).map((p) => p.nick), ["Ann"]));
    for (const user of opened) assertNoPageErrors(user);
  } finally {
    await closeAll(opened);
  }
});

test("markup in a nickname shows as text on the admin page", { timeout: 60_000 }, async () => {
  const opened = [];
  try {
    const nickname = "<img src=x onerror=alert(1)>";
    const mallory = await openUser(browser, server.url);
    opened.push(mallory);
    await enterRoom(mallory.page, { nickname, room: "<b>markup</b>" });
    const id = await ownEntryId(mallory.page, nickname);

    const admin = await openAdmin();
    opened.push(admin);
    await expectRow(admin.page, id, { nickname });
    await expectText(roomCard(admin.page, "<b>markup</b>").locator(".admin-room-name"), "<b>markup</b>");
    const injected = await admin.page.evaluate(() =>
      [...document.body.querySelectorAll("img, script, iframe, object, embed, b")].map((n) => n.outerHTML),
    );
    assert.deepEqual(injected, [], "no element made from the names");
    assert.deepEqual(admin.dialogs, [], "nothing ran (no alert)");
    assertNoPageErrors(admin, "the admin page");
  } finally {
    await closeAll(opened);
  }
});

// Last, as it restarts the server.
test("the admin page says when the server cannot be reached, and goes live again by itself", { timeout: 90_000 }, async () => {
  const opened = [];
  try {
    const admin = await openAdmin();
    opened.push(admin);
    await expectText(admin.page.locator("#admin-live-label"), "Live");
    await admin.page.evaluate(() => { window.__samePage = true; });

    await server.stop();
    await expectText(admin.page.locator("#admin-live-label"), "Connection lost, retrying…");
    await expectVisible(admin.page.locator("#admin-main"), "the panel stays while retrying");

    Object.assign(server, await startServer({ port: server.port, args: SERVER_ARGS }));
    const kim = await openUser(browser, server.url);
    opened.push(kim);
    await enterRoom(kim.page, { nickname: "Kim", room: "after the restart" });
    await expectText(admin.page.locator("#admin-live-label"), "Live", "live again");
    await expectVisible(roomCard(admin.page, "after the restart"), "the new server's rooms");
    assert.equal(await admin.page.evaluate(() => window.__samePage), true, "without a reload");
    assertNoPageErrors(admin, "the admin page");
  } finally {
    await closeAll(opened);
  }
});
