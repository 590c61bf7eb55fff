// Calls through the media server with one browser on a bad network of its own (a network
// namespace: see support/network.mjs): a slow link gets a lower layer while the others do not
// notice, and a browser whose UDP dies is taken out of the call. Needs root (CI runs as root).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../support/server.mjs";
import { startTurn } from "../support/turn.mjs";
import { makeNetwork } from "../support/network.mjs";
import { enterRoom, eventually, expectVisible, launchBrowser, useBrowser } from "../support/browser.mjs";
import { CALL_TIMEOUT, joinCall, openCallUser, selectedPairs, tiles } from "../support/rtc.mjs";
import { expectVideoFrom, inboundVideo } from "../support/sfu.mjs";

const root = process.getuid?.() === 0;
const browser = useBrowser();

/**
 * A server reached from the namespace, its media advertised on the namespace's link. Calls of two
 * go through it too, unless `args` say otherwise.
 */
async function serverFor(network, args = ["--media-address", network.hostAddress]) {
  const pairs = args.includes("--pairs") ? [] : ["--pairs", "server"];
  const server = await startServer({ host: "0.0.0.0", args: ["--stun-urls", "", ...pairs, ...args] });
  return { ...server, local: `http://127.0.0.1:${server.port}`, remote: `http://${network.hostAddress}:${server.port}` };
}

/** A browser inside `network`, which may use the camera on the plain-HTTP `origin`. */
function browserIn(network, origin) {
  return launchBrowser({ executablePath: network.launcher, extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${origin}`] });
}

/**
 * Each of `who` (`[name, browser, url]`) opens a page, enters `room` and joins its call, in turn;
 * the pages, named, go into `users` (to be closed by the caller). Returns each one's id by name.
 */
async function joinEach(room, who, users) {
  const ids = {};
  for (const [name, b, url] of who) {
    const user = await openCallUser(b, url);
    user.name = name;
    users.push(user);
    await enterRoom(user.page, { nickname: name, room });
    ids[name] = await joinCall(user.page);
  }
  return ids;
}

/** Runs `body` with a network of its own, taken down afterwards. */
async function withNetwork(body) {
  const network = makeNetwork();
  try {
    await body(network);
  } finally {
    network.close();
  }
}

test("a viewer on a slow link gets a lower layer than one on a free link, and both go on seeing the speaker", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  await withNetwork(async (network) => {
    const server = await serverFor(network);
    const slowBrowser = await browserIn(network, server.remote);
    const users = [];
    try {
      const publisher = await openCallUser(browser, server.local);
      users.push(publisher);
      await enterRoom(publisher.page, { nickname: "Pat", room: "slow and free" });
      const pat = await joinCall(publisher.page);
      const viewers = {};
      for (const [name, b, url] of [["Free", browser, server.local], ["Slow", slowBrowser, server.remote]]) {
        const user = await openCallUser(b, url, { viewport: { width: 1600, height: 1200 } });
        users.push(user);
        await enterRoom(user.page, { nickname: name, room: "slow and free" });
        await joinCall(user.page, { camera: false });
        viewers[name] = user;
      }
      const width = async (name) => (await inboundVideo(viewers[name].page)).find((s) => s.from === pat) ?? { frameWidth: 0, framesDecoded: 0 };
      await eventually(async () => {
        assert.ok((await width("Free")).frameWidth > 320, `the free viewer gets more than the quarter layer: ${JSON.stringify(await width("Free"))}`);
        assert.ok((await width("Slow")).framesDecoded > 0, "the slow viewer decodes too");
      }, { timeout: CALL_TIMEOUT, interval: 250 });
      // 400 kbit/s down: the quarter layer (150 kbit/s) fits, the half (500) does not.
      network.limit(400);
      await eventually(async () => {
        const [slow, free] = [await width("Slow"), await width("Free")];
        assert.ok(slow.frameWidth > 0 && slow.frameWidth <= 320, `the slow viewer is moved down to the quarter layer: ${JSON.stringify(slow)}`);
        assert.ok(free.frameWidth > slow.frameWidth, `the free viewer gets a higher layer than the slow one: ${JSON.stringify({ slow, free })}`);
      }, { timeout: 60_000, interval: 500 });
      // Both go on seeing Pat.
      const before = { Slow: await width("Slow"), Free: await width("Free") };
      await eventually(async () => {
        for (const name of ["Slow", "Free"]) {
          assert.ok((await width(name)).framesDecoded > before[name].framesDecoded + 10, `${name} still decodes Pat`);
        }
      }, { timeout: CALL_TIMEOUT, interval: 500 });
    } finally {
      for (const user of users) await user.close();
      await slowBrowser.close();
      await server.stop();
    }
  });
});

test("a browser whose UDP dies is out of the call within 15 seconds, and says so; the others carry on", { skip: !root && "needs root", timeout: 180_000 }, async (t) => {
  await withNetwork(async (network) => {
    const server = await serverFor(network);
    const cutBrowser = await browserIn(network, server.remote);
    const users = [];
    try {
      const ids = await joinEach("udp dies", [["Ann", browser, server.local], ["Bob", browser, server.local], ["Cut", cutBrowser, server.remote]], users);
      const [ann, bob, cut] = users;
      for (const user of [ann, bob]) {
        await eventually(async () => {
          const streams = await inboundVideo(user.page);
          assert.equal(streams.filter((s) => s.framesDecoded > 0).length, 2, `${user.name} sees both others: ${JSON.stringify(streams)}`);
        }, { timeout: CALL_TIMEOUT, interval: 250 });
      }
      const qualityOf = (user, id) => user.page.locator(`#tiles .tile[data-id="${id}"]`).getAttribute("data-quality");
      await eventually(async () => assert.equal(await qualityOf(ann, ids.Cut), "good", "Cut's media arrives well"), { timeout: CALL_TIMEOUT });
      network.dropUdp();
      const cutAt = Date.now();
      // Before the server gives up on Cut: Ann sees Cut's connection is poor, and Cut is warned.
      await eventually(async () => assert.equal(await qualityOf(ann, ids.Cut), "poor", "Ann sees Cut's connection poor"), { timeout: 12_000 });
      await eventually(async () => {
        assert.ok(await cut.page.locator("#call-network").isVisible(), "Cut is told their network is poor");
        assert.match(await cut.page.locator("#call-network").innerText(), /Your network is poor/);
      }, { timeout: 12_000 });
      for (const user of [ann, bob]) {
        await eventually(async () => {
          const shown = (await tiles(user.page)).map((t) => t.id);
          assert.ok(!shown.includes(ids.Cut), `${user.name} no longer shows Cut's tile: ${shown}`);
        }, { timeout: 20_000, interval: 250 });
      }
      t.diagnostic(`out of the others' calls ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the network died`);
      // Ann and Bob still see each other.
      const before = (await inboundVideo(ann.page)).find((s) => s.from === ids.Bob)?.framesDecoded ?? 0;
      await eventually(async () => {
        const now = (await inboundVideo(ann.page)).find((s) => s.from === ids.Bob)?.framesDecoded ?? 0;
        assert.ok(now > before + 10, "Ann keeps decoding Bob");
      }, { timeout: CALL_TIMEOUT, interval: 250 });
      // Cut's page says the call's connection was lost.
      await eventually(async () => {
        await expectVisible(cut.page.locator("#call-error"), "Cut's page says the call's connection was lost");
        assert.match(await cut.page.locator("#call-error").innerText(), /connection was lost/);
      }, { timeout: 60_000, interval: 500 });
    } finally {
      for (const user of users) await user.close();
      await cutBrowser.close();
      await server.stop();
    }
  });
});

test("a browser whose network drops all UDP joins through TURN over TCP, and sees and is seen", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  await withNetwork(async (network) => {
    // coturn where the namespace reaches it, relaying to the media port on loopback.
    const turn = await startTurn({ listen: network.hostAddress });
    const server = await serverFor(network, ["--media-address", "127.0.0.1", "--turn-urls", turn.tcpUrl, "--turn-secret", turn.secret]);
    const tcpOnly = await browserIn(network, server.remote);
    const users = [];
    try {
      network.dropUdp();
      const ids = await joinEach("udp blocked", [["Ada", browser, server.local], ["Tom", tcpOnly, server.remote]], users);
      const [ada, tom] = users;
      for (const [user, other] of [[ada, ids.Tom], [tom, ids.Ada]]) {
        await eventually(async () => {
          const from = (await inboundVideo(user.page)).find((s) => s.from === other);
          assert.ok(from && from.framesDecoded > 10, `${user.name} decodes the other: ${JSON.stringify(from)}`);
        }, { timeout: CALL_TIMEOUT, interval: 250 });
      }
      const [pair] = await selectedPairs(tom.page);
      assert.equal(pair.pair?.local?.type, "relay", `Tom's media goes through the relay: ${JSON.stringify(pair)}`);
      assert.equal(pair.pair?.local?.relayProtocol, "tcp", "reached over TCP");
      assert.equal(pair.pair?.remote?.port, server.port, "to the media port");
    } finally {
      for (const user of users) await user.close();
      await tcpOnly.close();
      await server.stop();
      await turn.stop();
    }
  });
});

/** How each person's media goes, as the admin API tells it (`udp`, `tcp`), by id. */
async function transports(server, token) {
  const response = await fetch(`${server.local}/admin/api/state`, { headers: { authorization: `Bearer ${token}` } });
  const state = await response.json();
  return Object.fromEntries(state.rooms.flatMap((room) => room.participants).map((p) => [p.id, p.media?.transport ?? null]));
}

test("a browser whose network drops all UDP joins over TCP to the web port, with nothing to set, and sees and is seen", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  await withNetwork(async (network) => {
    const token = "network-tests-admin-token-0123456789";
    const server = await serverFor(network, ["--media-address", network.hostAddress, "--admin-token", token]);
    const tcpOnly = await browserIn(network, server.remote);
    const users = [];
    try {
      network.dropUdp();
      const ids = await joinEach("udp dropped", [["Ada", browser, server.local], ["Tom", tcpOnly, server.remote]], users);
      const [ada, tom] = users;
      for (const [user, other] of [[ada, ids.Tom], [tom, ids.Ada]]) {
        await expectVideoFrom(user.page, [other], user.name);
      }
      const [pair] = await selectedPairs(tom.page);
      assert.equal(pair.pair?.local?.protocol, "tcp", `Tom's media goes over TCP: ${JSON.stringify(pair)}`);
      // Chrome's end of a TCP connection it opened shows as peer-reflexive (its host candidate
      // names port 9, RFC 6544's placeholder): what matters is that no relay carries it.
      assert.notEqual(pair.pair?.local?.type, "relay", `straight to the server, no relay: ${JSON.stringify(pair)}`);
      assert.equal(pair.pair?.remote?.port, server.port, "to the web port");
      // Ada, whose UDP works, stays on UDP though the server answers over TCP too.
      const [adaPair] = await selectedPairs(ada.page);
      assert.equal(adaPair.pair?.local?.protocol, "udp", `Ada's media goes over UDP: ${JSON.stringify(adaPair)}`);
      // The admin panel tells the two apart.
      await eventually(async () => {
        assert.deepEqual(await transports(server, token), { [ids.Ada]: "udp", [ids.Tom]: "tcp" });
      }, { timeout: 10_000, interval: 500 });
    } finally {
      for (const user of users) await user.close();
      await tcpOnly.close();
      await server.stop();
    }
  });
});

test("on a network that lets only HTTPS out, the page loads, signals and shows video, all on the HTTPS port", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  await withNetwork(async (network) => {
    const server = await startServer({
      host: "0.0.0.0",
      args: ["--stun-urls", "", "--pairs", "server", "--media-address", network.hostAddress, "--tls-self-signed", network.hostAddress],
    });
    const local = server.url.replace(/\/\/[^:]+:/, "//127.0.0.1:");
    const remote = server.url.replace(/\/\/[^:]+:/, `//${network.hostAddress}:`);
    network.onlyPort(server.port, { tcpOnly: true });
    const walled = await launchBrowser({ executablePath: network.launcher, extraArgs: ["--ignore-certificate-errors"] });
    const users = [];
    try {
      const who = [["Ida", browser, local], ["Lea", walled, remote]];
      const ids = {};
      for (const [name, b, url] of who) {
        const user = await openCallUser(b, url, { ignoreHTTPSErrors: true });
        user.name = name;
        users.push(user);
        await enterRoom(user.page, { nickname: name, room: "https only" });
        ids[name] = await joinCall(user.page);
      }
      const [ida, lea] = users;
      for (const [user, other] of [[ida, ids.Lea], [lea, ids.Ida]]) {
        await expectVideoFrom(user.page, [other], user.name);
      }
      const [pair] = await selectedPairs(lea.page);
      assert.equal(pair.pair?.local?.protocol, "tcp", `Lea's media goes over TCP: ${JSON.stringify(pair)}`);
      assert.equal(pair.pair?.remote?.port, server.port, "to the HTTPS port");
    } finally {
      for (const user of users) await user.close();
      await walled.close();
      await server.stop();
    }
  });
});

test("two people whose networks cannot reach each other talk through the media server, with nothing to set", { skip: !root && "needs root", timeout: 180_000 }, async () => {
  await withNetwork(async (network) => {
    const server = await serverFor(network, ["--media-address", network.hostAddress, "--pairs", "direct"]);
    // The namespace reaches the server's port and nothing else of this machine: no path between
    // the two browsers.
    network.onlyPort(server.port);
    const apart = await browserIn(network, server.remote);
    const users = [];
    try {
      const ids = await joinEach("out of reach", [["Eva", browser, server.local], ["Kai", apart, server.remote]], users);
      const [eva, kai] = users;
      for (const [user, other] of [[eva, ids.Kai], [kai, ids.Eva]]) {
        await expectVideoFrom(user.page, [other], user.name);
      }
      // Long after a direct path would have been up: still through the server, still moving.
      await new Promise((resolve) => setTimeout(resolve, 8000));
      for (const [user, other] of [[eva, ids.Kai], [kai, ids.Eva]]) {
        const connected = (await selectedPairs(user.page)).filter(({ pair }) => pair?.state === "succeeded");
        assert.deepEqual(connected.map(({ pair }) => pair.remote?.port), [server.port], `${user.name}'s only path is to the media port`);
        await expectVideoFrom(user.page, [other], `${user.name}, later`);
      }
    } finally {
      for (const user of users) await user.close();
      await apart.close();
      await server.stop();
    }
  });
});
