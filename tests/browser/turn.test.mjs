// Calls through a real TURN server (coturn, on loopback) with the time-limited credentials Noom
// hands out: with `--ice-transport-policy relay` the media must go through it, and with a secret
// coturn does not share, it must refuse the browsers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startServer } from "../support/server.mjs";
import { meetThroughRelay, useTurn, turnCredentials } from "../support/turn.mjs";
import { assertNoPageErrors, enterRoom, eventually, useBrowser } from "../support/browser.mjs";
import {
  CALL_TIMEOUT,
  connections,
  expectDecoding,
  expectTiles,
  expectTilesConnected,
  joinCall,
  liveConnections,
  openCallUser,
  selectedPairs,
  tiles,
} from "../support/rtc.mjs";

const turn = useTurn();
const browser = useBrowser();

/** Noom pointed at our coturn only (no STUN), relay only, with `secret` for the credentials. */
function startNoom(secret, extra = []) {
  return startServer({
    // Browser to browser, each through its relay.
    args: ["--stun-urls", "", "--calls", "mesh", "--turn-urls", turn.url, "--turn-secret", secret, "--ice-transport-policy", "relay", ...extra],
  });
}

/** The coturn log lines about users named "<expiry>:<id>" for this socket id. */
async function turnLogAbout(id) {
  const pattern = new RegExp(`user <\\d+:${id.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`)}>`);
  return (await turn.log()).split("\n").filter((line) => pattern.test(line));
}

test("coturn relays between two peer connections holding credentials from its secret, and refuses others", { timeout: 60_000 }, async () => {
  // The TURN set-up on its own, without Noom: credentials computed here, two connections in one
  // page, TURN only. A failure here is the TURN server's, not Noom's.
  const attempt = (credentials) => meetThroughRelay(browser, [{ urls: [turn.url], ...credentials }]);
  const good = await attempt(turnCredentials(turn.secret, "bare-good"));
  assert.equal(good.message, "through the relay", `the data channel carried the message: ${JSON.stringify(good)}`);
  assert.ok(good.gathered.length > 0 && good.gathered.every((c) => / typ relay /.test(c)), `only relay candidates: ${JSON.stringify(good.gathered)}`);
  assert.equal(good.local?.type, "relay", "the selected pair's local candidate is a relay one");

  const bad = await attempt(turnCredentials("not the secret", "bare-bad"));
  assert.deepEqual(bad.gathered, [], "no candidate with credentials from another secret");
  assert.equal(bad.message, null);
  const log = await turn.log();
  assert.match(log, /user <\d+:bare-good>: incoming packet ALLOCATE processed, success/, "coturn allocated for the good credentials");
  assert.match(log, /user <\d+:bare-bad>: incoming packet message processed, error 401/, "coturn refused the bad ones");
  assert.doesNotMatch(log, /user <\d+:bare-bad>: incoming packet ALLOCATE processed, success/);
});

/** Alice and Bob enter `room` and join its call; each is pushed on `users` as soon as it opens. */
async function aliceAndBobInCall(server, room, users) {
  const alice = await openCallUser(browser, server.url);
  users.push(alice);
  const bob = await openCallUser(browser, server.url);
  users.push(bob);
  await enterRoom(alice.page, { nickname: "Alice", room });
  await enterRoom(bob.page, { nickname: "Bob", room });
  const aliceId = await joinCall(alice.page);
  const bobId = await joinCall(bob.page);
  return { alice, bob, aliceId, bobId };
}

test("with --ice-transport-policy relay, two users' call goes through the TURN server and carries video", { timeout: 120_000 }, async () => {
  const server = await startNoom(turn.secret);
  const users = [];
  try {
    const { alice, bob, aliceId, bobId } = await aliceAndBobInCall(server, "relay room", users);

    for (const [user, who] of [[alice, "Alice"], [bob, "Bob"]]) {
      await expectTiles(user.page, [aliceId, bobId], { who });
      await expectTilesConnected(user.page, [aliceId, bobId].filter((id) => id !== (who === "Alice" ? aliceId : bobId)), { who });
      await expectDecoding(user.page, 1, { who });

      // The app used the server's policy, gathered relay candidates only, and ICE chose a pair
      // whose local end is the TURN server's relay address.
      const [conn] = await liveConnections(user.page);
      assert.equal(conn.iceTransportPolicy, "relay", `${who}'s connection is relay-only`);
      assert.ok(conn.candidates.length > 0, `${who} gathered candidates`);
      for (const c of conn.candidates) assert.match(c, / typ relay /, `${who} gathered relay candidates only`);
      // A pair whose check is being repeated reads "in-progress" for a moment: read until it
      // has succeeded.
      const pair = await eventually(async () => {
        const [{ pair }] = await selectedPairs(user.page);
        assert.ok(pair, `${who} has a selected candidate pair`);
        assert.equal(pair.state, "succeeded", `${who}'s selected pair succeeded`);
        return pair;
      });
      assert.equal(pair.local.type, "relay", `${who}'s selected pair is a relay one: ${JSON.stringify(pair)}`);
      assert.equal(pair.local.address, "127.0.0.1", `${who}'s relay address is the TURN server's`);
    }

    // coturn saw both, by the user names Noom gave them ("<expiry>:<socket id>").
    for (const [id, who] of [[aliceId, "Alice"], [bobId, "Bob"]]) {
      const lines = await turnLogAbout(id);
      assert.ok(lines.some((l) => /ALLOCATE processed, success/.test(l)), `coturn allocated a relay for ${who}: ${JSON.stringify(lines.slice(0, 5))}`);
    }
    for (const user of users) assertNoPageErrors(user);
  } finally {
    for (const user of users) await user.close();
    await server.stop();
  }
});

test("a relayed call outlives its first TURN credentials: renewed ones are taken up before they expire", { timeout: 150_000 }, async () => {
  const server = await startNoom(turn.secret, ["--turn-ttl", "60"]);
  const users = [];
  try {
    const { alice, bob, aliceId, bobId } = await aliceAndBobInCall(server, "long relay", users);
    for (const [user, who] of [[alice, "Alice"], [bob, "Bob"]]) await expectDecoding(user.page, 1, { who });
    const allocatedUntil = async (id) => {
      const lines = (await turnLogAbout(id)).filter((l) => /ALLOCATE processed, success/.test(l));
      return [...new Set(lines.map((l) => Number(l.match(/user <(\d+):/)[1])))].sort();
    };
    const [firstAlice] = await allocatedUntil(aliceId);
    // Each side allocates again on a newer credential, through an ICE restart, well before the
    // first one expires (half its life)...
    for (const [id, who] of [[aliceId, "Alice"], [bobId, "Bob"]]) {
      await eventually(async () => {
        const expiries = await allocatedUntil(id);
        assert.ok(expiries.length >= 2, `${who} allocated on renewed credentials: ${JSON.stringify(expiries)}`);
      }, { timeout: 60_000, interval: 1000 });
    }
    // ...and once it has expired, the video still comes, through the relay.
    const wait = firstAlice * 1000 + 5000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    for (const [user, who] of [[alice, "Alice"], [bob, "Bob"]]) {
      await expectDecoding(user.page, 1, { who });
      const [{ pair }] = await selectedPairs(user.page);
      assert.equal(pair?.local.type, "relay", `${who} still goes through the relay: ${JSON.stringify(pair)}`);
    }
    for (const user of users) assertNoPageErrors(user);
  } finally {
    for (const user of users) await user.close();
    await server.stop();
  }
});

test("with a secret the TURN server does not share, it refuses the credentials and the call cannot connect", { timeout: 120_000 }, async () => {
  const server = await startNoom(randomBytes(16).toString("hex"));
  const users = [];
  try {
    const { alice, bob, aliceId, bobId } = await aliceAndBobInCall(server, "wrong secret", users);
    for (const [user, who] of [[alice, "Alice"], [bob, "Bob"]]) await expectTiles(user.page, [aliceId, bobId], { who });

    // coturn answered each one's allocation with 401 for the user name Noom gave them, and never
    // allocated anything for them.
    for (const [id, who] of [[aliceId, "Alice"], [bobId, "Bob"]]) {
      await eventually(async () => {
        const lines = await turnLogAbout(id);
        assert.ok(lines.some((l) => /error 401/.test(l)), `coturn refused ${who}'s credentials: ${JSON.stringify(lines.slice(0, 5))}`);
      }, { timeout: CALL_TIMEOUT });
    }

    // Each browser finished gathering with nothing to offer (relay only, and no relay), so ICE has
    // no pair to try: the connection is not up, and cannot come up.
    for (const [user, who, other] of [[alice, "Alice", bobId], [bob, "Bob", aliceId]]) {
      await eventually(async () => {
        const live = await liveConnections(user.page);
        assert.equal(live.length, 1, `${who} has one connection: ${JSON.stringify(live)}`);
        assert.equal(live[0].iceGatheringState, "complete", `${who}'s gathering is over`);
      }, { timeout: CALL_TIMEOUT });
      const all = await connections(user.page);
      assert.deepEqual(all.flatMap((c) => c.candidates), [], `${who} gathered no candidate`);
      const [{ pair }] = await selectedPairs(user.page);
      assert.equal(pair, null, `${who} has no selected candidate pair`);
      const shown = (await tiles(user.page)).find((t) => t.id === other);
      assert.notEqual(shown.connection, "connected", `${who}'s tile of the other says it is not connected`);
    }
    for (const id of [aliceId, bobId]) {
      assert.ok(!(await turnLogAbout(id)).some((l) => /ALLOCATE processed, success/.test(l)), "coturn allocated nothing");
    }
    for (const user of users) assertNoPageErrors(user);
  } finally {
    for (const user of users) await user.close();
    await server.stop();
  }
});
