// The built-in TURN server (`--turn`), with real Chromium. Two peer connections in a page, relay
// only, meet through it over UDP and over TCP with the credentials Noom hands out (`call:join`'s
// `iceServers`); wrong or expired credentials get no relay; the relay does not reach the server's
// own network (a browser's host candidate on loopback) unless `--turn-allowed-peers` lets it, but
// does reach the media server, and the admin panel tells relayed browsers; a mesh call of three
// goes through it. And two people whose
// network drops UDP, or lets only HTTPS out, talk browser to browser through it (over TCP, over
// TLS on the HTTPS port), with nothing else installed. (Calls through coturn are in
// turn.test.mjs; the TURN server on the wire, in integration/turn.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { meetThroughRelay, startNoomWithTurn, turnCredentials } from "../support/turn.mjs";
import { makeNetwork } from "../support/network.mjs";
import { ack, disconnect, noomClient, roomName } from "../support/clients.mjs";
import { enterRoom, eventually, launchBrowser, useBrowser } from "../support/browser.mjs";
import { CALL_TIMEOUT, joinCall, openCallUser, selectedPairs } from "../support/rtc.mjs";
import { longestFrameGaps, watchFrames } from "../support/sfu.mjs";

const root = process.getuid?.() === 0;
const browser = useBrowser();

/** The ICE servers Noom hands someone joining a call. */
async function iceServersOf(server) {
  const room = roomName();
  // A certificate made at start is trusted by no one.
  const { socket } = await noomClient(server.url, "Ice", room, { rejectUnauthorized: false });
  try {
    const answer = await ack(socket, "call:join", { room });
    assert.ok(answer?.iceServers, `call:join answers ICE servers: ${JSON.stringify(answer)}`);
    return answer.iceServers;
  } finally {
    await disconnect(socket);
  }
}

/** The TURN entry of `iceServers`, with only the URLs of `transport`. */
function only(iceServers, transport) {
  const turn = iceServers.find((s) => s.username);
  assert.ok(turn, `a TURN server among ${JSON.stringify(iceServers)}`);
  return [{ ...turn, urls: turn.urls.filter((url) => url.endsWith(`transport=${transport}`)) }];
}

/**
 * `names` enter `room` in pages of `browser` at `url` and join its call; the pages go into `users`
 * (to be closed), their ids are returned by name.
 */
async function joinAll(browser, url, names, room, users, pageOptions = {}) {
  const ids = {};
  for (const name of names) {
    const user = await openCallUser(browser, url, pageOptions);
    user.name = name;
    users.push(user);
    await enterRoom(user.page, { nickname: name, room });
    ids[name] = await joinCall(user.page);
  }
  return ids;
}

/** Waits until `user`'s tile of `other` shows frames. */
async function expectFramesFrom(user, other) {
  await watchFrames(user.page);
  await eventually(async () => {
    const gaps = await longestFrameGaps(user.page);
    assert.ok(gaps[other] !== null && gaps[other] !== undefined && gaps[other] < 1000, `${user.name} shows frames of ${other}: ${JSON.stringify(gaps)}`);
  }, { timeout: CALL_TIMEOUT, interval: 250 });
}

test("two connections meet through the built-in TURN server, over UDP and over TCP, with the credentials Noom hands out", { timeout: 120_000 }, async () => {
  const server = await startNoomWithTurn({ args: ["--media-address", "127.0.0.1"] });
  try {
    const iceServers = await iceServersOf(server);
    const turn = iceServers.find((s) => s.username);
    assert.deepEqual(turn.urls.sort(), [`turn:127.0.0.1:${server.turnPort}?transport=tcp`, `turn:127.0.0.1:${server.turnPort}?transport=udp`]);
    for (const transport of ["udp", "tcp"]) {
      const result = await meetThroughRelay(browser, only(iceServers, transport));
      assert.equal(result.message, "through the relay", `over ${transport}: ${JSON.stringify(result)}`);
      assert.ok(result.gathered.every((c) => / typ relay /.test(c)), `relay candidates only: ${JSON.stringify(result.gathered)}`);
      assert.deepEqual(result.local, { type: "relay", relayProtocol: transport }, `the pair goes through the relay over ${transport}`);
    }
  } finally {
    await server.stop();
  }
});

test("credentials that are wrong or expired get no relay", { timeout: 120_000 }, async () => {
  const server = await startNoomWithTurn({ args: ["--media-address", "127.0.0.1"] });
  try {
    const urls = only(await iceServersOf(server), "udp")[0].urls;
    const good = await meetThroughRelay(browser, [{ urls, ...turnCredentials(server.secret, "good") }]);
    assert.equal(good.message, "through the relay", "credentials made from the secret work");
    for (const [what, credentials] of [
      ["another secret's", turnCredentials("not the secret", "wrong")],
      ["expired", turnCredentials(server.secret, "late", -60)],
      ["a password of another name", { username: turnCredentials(server.secret, "other").username, credential: turnCredentials(server.secret, "mine").credential }],
    ]) {
      const refused = await meetThroughRelay(browser, [{ urls, ...credentials }], { wait: 5000 });
      assert.deepEqual(refused.gathered, [], `${what} credentials get no relay candidate`);
      assert.ok(refused.errors.includes(401), `the TURN server says so at once (401 Unauthorized): ${JSON.stringify(refused)}`);
      assert.equal(refused.message, null);
    }
  } finally {
    await server.stop();
  }
});

test("the relay does not reach the server's own network (loopback), unless --turn-allowed-peers lets it", { timeout: 120_000 }, async () => {
  for (const [allowed, expected] of [[[], null], [["--turn-allowed-peers", "127.0.0.0/8"], "through the relay"]]) {
    const server = await startNoomWithTurn({ args: ["--media-address", "127.0.0.1", ...allowed] });
    try {
      // `b` has host candidates on loopback only: `a`'s relay would have to send there. (Allowed,
      // the two connect within a second on loopback.)
      const result = await meetThroughRelay(browser, only(await iceServersOf(server), "udp"), { bServers: [], bPolicy: "all", wait: 10_000, cameraOn: server.url });
      assert.ok(result.gathered.length > 0, "a got its relay");
      assert.equal(result.message, expected, allowed.length ? "allowed: the relay reaches loopback" : "refused: nothing reaches b");
    } finally {
      await server.stop();
    }
  }
});

test("browsers that may only relay reach the media server through the built-in TURN server, and the admin panel says so", { timeout: 180_000 }, async () => {
  const token = "relay-tests-admin-token-0123456789";
  const server = await startNoomWithTurn({ args: ["--media-address", "127.0.0.1", "--pairs", "server", "--ice-transport-policy", "relay", "--admin-token", token] });
  const users = [];
  try {
    const ids = await joinAll(browser, server.url, ["Uma", "Vic"], "relayed", users);
    for (const [user, other] of [[users[0], ids.Vic], [users[1], ids.Uma]]) {
      await expectFramesFrom(user, other);
      const [pair] = await selectedPairs(user.page);
      assert.equal(pair.pair?.local?.type, "relay", `${user.name}'s media goes through the relay: ${JSON.stringify(pair)}`);
      assert.equal(pair.pair?.remote?.port, server.port, "to the media port");
    }
    await eventually(async () => {
      const response = await fetch(`${server.url}/admin/api/state`, { headers: { authorization: `Bearer ${token}` } });
      const people = (await response.json()).rooms.flatMap((room) => room.participants);
      assert.deepEqual(Object.fromEntries(people.map((p) => [p.id, p.media?.transport])), { [ids.Uma]: "relay", [ids.Vic]: "relay" });
    }, { timeout: 10_000, interval: 500 });
  } finally {
    for (const user of users) await user.close();
    await server.stop();
  }
});

/**
 * Uma and Vic, in pages of a browser inside `network` (launched with `browserArgs`) at `url`, join a
 * call of `room`; each sees the other's frames, and `checkPath(user)` holds of each page's path.
 */
async function twoBehindTheWall(network, server, { url, room, browserArgs, pageOptions, checkPath }) {
  const walled = await launchBrowser({ executablePath: network.launcher, extraArgs: browserArgs });
  const users = [];
  try {
    const ids = await joinAll(walled, url, ["Uma", "Vic"], room, users, pageOptions);
    for (const [user, other] of [[users[0], ids.Vic], [users[1], ids.Uma]]) {
      await expectFramesFrom(user, other);
      await eventually(() => checkPath(user), { timeout: CALL_TIMEOUT, interval: 500 });
    }
  } finally {
    for (const user of users) await user.close();
    await walled.close();
  }
}

test("a mesh call of three goes through the built-in TURN server when browsers may only relay", { timeout: 180_000 }, async () => {
  const server = await startNoomWithTurn({ args: ["--media-address", "127.0.0.1", "--calls", "mesh", "--ice-transport-policy", "relay"] });
  const users = [];
  try {
    const ids = await joinAll(browser, server.url, ["Uma", "Vic", "Wes"], "relayed mesh", users);
    for (const user of users) {
      for (const other of Object.values(ids).filter((id) => id !== ids[user.name])) await expectFramesFrom(user, other);
      // Frames can flow before a connection's stats report its selected pair as succeeded.
      await eventually(async () => {
        const all = await selectedPairs(user.page);
        const pairs = all.filter(({ pair }) => pair?.state === "succeeded");
        assert.equal(pairs.length, 2, `${user.name} has a path to each of the two others: ${JSON.stringify(all)}`);
        assert.ok(pairs.every(({ pair }) => pair.local.type === "relay"), `all through the relay: ${JSON.stringify(pairs)}`);
      }, { timeout: CALL_TIMEOUT, interval: 500 });
    }
  } finally {
    for (const user of users) await user.close();
    await server.stop();
  }
});

test("two people whose network drops UDP talk browser to browser through the built-in TURN server over TCP", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  const network = makeNetwork();
  try {
    const server = await startNoomWithTurn({ host: "0.0.0.0", args: ["--media-address", network.hostAddress, "--pairs", "direct"] });
    const url = `http://${network.hostAddress}:${server.port}`;
    try {
      network.dropUdp();
      await twoBehindTheWall(network, server, {
        url,
        room: "behind a wall",
        browserArgs: [`--unsafely-treat-insecure-origin-as-secure=${url}`],
        // Their own path, besides the idle one to the media server: relayed over TCP.
        async checkPath(user) {
          const direct = (await selectedPairs(user.page)).filter(({ pair }) => pair?.state === "succeeded" && pair.remote?.port !== server.port);
          assert.equal(direct.length, 1, `${user.name} has a direct path: ${JSON.stringify(direct)}`);
          assert.equal(direct[0].pair.local.type, "relay", `through the relay: ${JSON.stringify(direct)}`);
          assert.equal(direct[0].pair.local.relayProtocol, "tcp", "reached over TCP");
        },
      });
    } finally {
      await server.stop();
    }
  } finally {
    network.close();
  }
});

test("two people on a network that lets only HTTPS out talk browser to browser through the built-in TURN server over TLS on the HTTPS port", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  const network = makeNetwork();
  try {
    // Relay only: the two pages share a network namespace, whose loopback would join them.
    const server = await startNoomWithTurn({
      host: "0.0.0.0",
      args: ["--media-address", network.hostAddress, "--pairs", "direct", "--tls-self-signed", network.hostAddress, "--ice-transport-policy", "relay"],
    });
    try {
      const turn = (await iceServersOf(server)).find((s) => s.username);
      assert.ok(turn.urls.includes(`turns:${network.hostAddress}:${server.port}?transport=tcp`), `TURN over TLS on the HTTPS port is handed out: ${JSON.stringify(turn.urls)}`);
      network.onlyPort(server.port, { tcpOnly: true });
      await twoBehindTheWall(network, server, {
        url: server.url.replace(/\/\/[^:]+:/, `//${network.hostAddress}:`),
        room: "https only",
        browserArgs: ["--ignore-certificate-errors"],
        pageOptions: { ignoreHTTPSErrors: true },
        async checkPath(user) {
          const relayed = (await selectedPairs(user.page)).filter(({ pair }) => pair?.state === "succeeded" && pair.local?.type === "relay");
          assert.ok(relayed.length >= 1, `${user.name} goes through the relay: ${JSON.stringify(await selectedPairs(user.page))}`);
          assert.ok(relayed.every(({ pair }) => pair.local.relayProtocol === "tls"), `reached over TLS: ${JSON.stringify(relayed)}`);
        },
      });
    } finally {
      await server.stop();
    }
  } finally {
    network.close();
  }
});
