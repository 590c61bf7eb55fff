// Calls whose connection has to be set up again while both people stay in them: ICE restarts that
// both sides make at the same moment, and a media path that breaks for a long while and comes
// back. What is checked is what a user sees: the tile's connection state, and video that plays.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startServer, useServer } from "../support/server.mjs";
import { useTurn } from "../support/turn.mjs";
import { assertNoPageErrors, enterRoom, eventually, useBrowser } from "../support/browser.mjs";
import {
  CALL_TIMEOUT,
  expectDecoding,
  expectTiles,
  expectTilesConnected,
  expectTilesPlaying,
  joinCall,
  openCallUser,
  tiles,
} from "../support/rtc.mjs";

// Browser-to-browser paths: a mesh call (through the media server, see sfu.test.mjs).
const NO_STUN = ["--stun-urls", "", "--calls", "mesh"];
const server = useServer({ args: NO_STUN });
const turn = useTurn();
const browser = useBrowser();

/** Alice and Bob in one call, each decoding the other's video. Returns them with their ids. */
async function twoInACall(url, room, opened) {
  const users = [];
  for (const name of ["Alice", "Bob"]) {
    const user = await openCallUser(browser, url);
    opened.push(user);
    user.name = name;
    await enterRoom(user.page, { nickname: name, room });
    users.push(user);
  }
  for (const user of users) user.id = await joinCall(user.page);
  await expectConnected(users);
  return users;
}

/** Each of `users` shows both tiles, the other's connected, and plays the other's video. */
async function expectConnected(users, { timeout = CALL_TIMEOUT } = {}) {
  for (const user of users) {
    const other = users.find((u) => u !== user);
    await expectTiles(user.page, [user.id, other.id], { who: user.name });
    await expectTilesConnected(user.page, [other.id], { who: user.name, timeout });
    await expectDecoding(user.page, 1, { who: user.name, timeout });
    await expectTilesPlaying(user.page, [other.id], { who: user.name, timeout });
  }
}

/** Waits until each of `users` shows the other's tile with this connection state. */
function expectOtherTile(users, connection, message) {
  return Promise.all(users.map((user) => {
    const other = users.find((u) => u !== user);
    return eventually(async () => {
      const shown = (await tiles(user.page)).find((t) => t.id === other.id);
      assert.equal(shown?.connection, connection, `${user.name}: ${message}`);
    }, { timeout: 2 * CALL_TIMEOUT });
  }));
}

/** Every live peer connection of the page starts an ICE restart, as the app does on a failure. */
function restartIce(page) {
  return page.evaluate(() => {
    for (const { pc } of window.__rtc.connections) if (pc.signalingState !== "closed") pc.restartIce();
  });
}

/** The process id of the TURN server this test file started (a child of this process). */
function turnServerPid() {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  const found = out.split("\n").map((line) => line.trim().split(/\s+/)).find(([, comm]) => comm === "turnserver");
  assert.ok(found, `the TURN server is a child of this test process:\n${out}`);
  return Number(found[0]);
}

// Both sides want a restart at once, as when new TURN credentials reach both. Chromium 148 stops
// rendering the video a connection receives once an offer of its own was taken back, so the web
// client keeps its offers from crossing; this checks that it does, round after round.
test("both sides restart ICE at the same moment, again and again: the call stays up", { timeout: 180_000 }, async () => {
  const opened = [];
  try {
    const users = await twoInACall(server.url, "restarts at once", opened);
    for (let round = 0; round < 3; round++) {
      // The offers cross: perfect negotiation has the polite side take its own back and answer.
      await Promise.all(users.map((user) => restartIce(user.page)));
      await expectConnected(users);
    }
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    for (const user of opened.splice(0)) await user.close();
  }
});

/**
 * How long the path stays broken once the tiles say so: longer than the handful of restarts a
 * connection used to get before it was given up for good.
 */
const LONG_OUTAGE_MS = 100_000;

test("a media path that breaks for a long while: the tiles say so, and the call comes back by itself", { timeout: 300_000 }, async () => {
  // Relay only, through our TURN server: stopping that process breaks the path between the two
  // browsers (nothing goes through, nobody is told) without touching the call's signalling.
  const relayed = await startServer({
    args: [...NO_STUN, "--turn-urls", turn.url, "--turn-secret", turn.secret, "--ice-transport-policy", "relay"],
  });
  const opened = [];
  const pid = turnServerPid();
  let frozen = false;
  try {
    const users = await twoInACall(relayed.url, "a broken path", opened);

    process.kill(pid, "SIGSTOP");
    frozen = true;
    // The restarts cannot get through: each tile says the connection failed, and goes on saying so.
    await expectOtherTile(users, "failed", "the other's tile says the connection failed while nothing goes through");
    await new Promise((resolve) => setTimeout(resolve, LONG_OUTAGE_MS));
    await expectOtherTile(users, "failed", "the other's tile still says the connection failed");

    process.kill(pid, "SIGCONT");
    frozen = false;
    // The next restart gets through: the call is back without anyone doing anything.
    await expectConnected(users, { timeout: 2 * CALL_TIMEOUT });
    for (const user of opened) assertNoPageErrors(user, user.name);
  } finally {
    if (frozen) process.kill(pid, "SIGCONT");
    for (const user of opened.splice(0)) await user.close();
    await relayed.stop();
  }
});
