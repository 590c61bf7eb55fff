// The original tutorial's chat front end, served from another origin, works against Noom
// unchanged: seed pages chat with each other and with someone on Noom's own web client.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../support/server.mjs";
import { serveStatic } from "../support/static-server.mjs";
import {
  TIMEOUT,
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectMessageFrom,
  expectPeople,
  expectSystemLinesAbout,
  expectText,
  expectTexts,
  useBrowser,
  messages,
  openUser,
  sendMessage,
  texts,
} from "../support/browser.mjs";

const SEED_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "seed-frontend");

const browser = useBrowser();
let seedSite;
let server;
before(async () => {
  seedSite = await serveStatic(SEED_DIR);
  server = await startServer({ args: ["--allowed-origins", seedSite.origin] });
  seedSite.setVars({ NOOM: server.url });
});
after(async () => {
  await server?.stop();
  await seedSite?.stop();
});

/** Opens the seed front end in a fresh context and waits until its socket is connected. */
async function openSeed(origin) {
  const user = await openUser(browser, origin, { waitConnected: false });
  await user.page.waitForFunction(() => socket.connected, null, { timeout: TIMEOUT });
  return user;
}

const seedLines = (page) => texts(page.locator("#room ul li"));

function expectSeedLines(page, expected) {
  return expectTexts(page.locator("#room ul li"), expected, "the seed page's chat lines");
}

async function seedSetNickname(page, nickname) {
  await page.locator("#name input").fill(nickname);
  await page.locator("#name button").click();
}

async function seedEnterRoom(page, room) {
  await page.locator("#roomname input").fill(room);
  await page.locator("#roomname button").click();
  await eventually(async () => {
    assert.ok(await page.locator("#room").isVisible(), "the seed page shows the room");
    assert.ok(!(await page.locator("#welcome").isVisible()), "the seed page hides the welcome form");
  });
  await expectText(page.locator("#room h3"), `Room ${room}`);
}

async function seedSend(page, text) {
  await page.locator("#msg input").fill(text);
  await page.locator("#msg button").click();
}

test("two seed pages and a Noom web client chat in one room", { timeout: 90_000 }, async () => {
  const room = "lobby-talk";
  const one = await openSeed(seedSite.origin);
  const two = await openSeed(seedSite.origin);

  // Seed One names itself and opens the room; Seed Two, waiting, sees it in its room list.
  await seedSetNickname(one.page, "Seed One");
  await seedEnterRoom(one.page, room);
  await expectTexts(two.page.locator("#welcome ul li"), [room], "Seed Two's room list");

  // Nora, on Noom's own client, enters: Seed One is told, and Nora sees Seed One.
  const nora = await openUser(browser, server.url);
  await enterRoom(nora.page, { nickname: "Nora", room });
  await expectSeedLines(one.page, ["Nora arrived!"]);
  await expectText(one.page.locator("#room h3"), `Room ${room} (2)`);
  await expectPeople(nora.page, ["Seed One", "Nora"]);
  await expectText(nora.page.locator("#room-count"), "2");

  // Seed Two enters: both others are told.
  await seedSetNickname(two.page, "Seed Two");
  await seedEnterRoom(two.page, room);
  await expectSeedLines(one.page, ["Nora arrived!", "Seed Two arrived!"]);
  await expectText(one.page.locator("#room h3"), `Room ${room} (3)`);
  await expectPeople(nora.page, ["Seed One", "Nora", "Seed Two"]);
  await expectText(nora.page.locator("#room-count"), "3");
  await expectSystemLinesAbout(nora.page, "Seed Two", 1);

  // Seed One speaks: "You: …" for itself, "Seed One: …" for Seed Two, a message from Seed One
  // for Nora.
  await seedSend(one.page, "hello from the seed");
  await expectSeedLines(one.page, ["Nora arrived!", "Seed Two arrived!", "You: hello from the seed"]);
  await expectSeedLines(two.page, ["Seed One: hello from the seed"]);
  await expectMessageFrom(nora.page, "Seed One", "hello from the seed");

  await seedSend(two.page, "second seed here");
  await expectSeedLines(two.page, ["Seed One: hello from the seed", "You: second seed here"]);
  await expectSeedLines(one.page, ["Nora arrived!", "Seed Two arrived!", "You: hello from the seed", "Seed Two: second seed here"]);
  await expectMessageFrom(nora.page, "Seed Two", "second seed here");

  // Nora speaks: both seed pages get the line, formatted as the seed formats it.
  await sendMessage(nora.page, "hi seeds, Nora here");
  await eventually(async () => {
    const own = (await messages(nora.page)).filter((m) => m.own);
    assert.deepEqual(own, [{ sender: "Nora", text: "hi seeds, Nora here", own: true, state: ["sent"] }]);
  });
  await expectSeedLines(one.page, [
    "Nora arrived!",
    "Seed Two arrived!",
    "You: hello from the seed",
    "Seed Two: second seed here",
    "Nora: hi seeds, Nora here",
  ]);
  await expectSeedLines(two.page, ["Seed One: hello from the seed", "You: second seed here", "Nora: hi seeds, Nora here"]);

  // Seed Two closes its page: the others see it leave.
  await two.page.close();
  await eventually(async () => assert.equal((await seedLines(one.page)).at(-1), "Seed Two left"));
  await expectText(one.page.locator("#room h3"), `Room ${room} (2)`);
  await expectPeople(nora.page, ["Seed One", "Nora"]);
  await expectText(nora.page.locator("#room-count"), "2");
  await expectSystemLinesAbout(nora.page, "Seed Two", 2);

  // Nora leaves with Leave: Seed One sees her go.
  await nora.page.locator("#leave").click();
  await eventually(async () => assert.equal((await seedLines(one.page)).at(-1), "Nora left"));
  await expectText(one.page.locator("#room h3"), `Room ${room} (1)`);

  // The seed socket reached Noom across origins and moved from polling up to WebSocket.
  assert.equal(await one.page.evaluate(() => socket.io.engine.transport.name), "websocket");

  for (const [who, user] of Object.entries({ one, two, nora })) assertNoPageErrors(user, who);
  await Promise.all([one.close(), two.close(), nora.close()]);
});

/** In a seed page: connects over WebSocket alone, once, and says how it went. */
function tryWebSocketOnly(url) {
  return new Promise((resolve) => {
    const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    s.on("connect", () => { s.close(); resolve("connected"); });
    s.on("connect_error", () => { s.close(); resolve("refused"); });
  });
}

test("without its origin allowed, the seed page cannot connect", { timeout: 60_000 }, async () => {
  // The same front end, from an origin the server was not told about.
  const strangerSite = await serveStatic(SEED_DIR);
  const closed = await startServer();
  strangerSite.setVars({ NOOM: closed.url });
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(TIMEOUT);
    const page = await context.newPage();
    // The browser refuses to hand the page the handshake's answer (the server allows no such
    // origin), so the request fails.
    const refused = page.waitForEvent("requestfailed", (r) => r.url().startsWith(`${closed.url}/socket.io/`));
    await page.goto(strangerSite.origin);
    await refused;

    // socket.io keeps retrying; every attempt fails, over polling and over WebSocket alike.
    const nextError = await page.evaluate(() => new Promise((resolve) => socket.once("connect_error", (e) => resolve(String(e.message)))));
    assert.ok(nextError.length > 0);
    assert.equal(await page.evaluate(() => socket.connected), false);
    assert.equal(await page.evaluate(tryWebSocketOnly, closed.url), "refused", "a WebSocket-only connection is refused too");

    // Entering a room does nothing the person can see: the room never opens.
    await page.locator("#roomname input").fill("nowhere");
    await page.locator("#roomname button").click();
    await page.evaluate(() => new Promise((resolve) => socket.once("connect_error", resolve)));
    assert.equal(await page.locator("#room").isVisible(), false, "the room is not shown");
    assert.equal(await page.locator("#welcome").isVisible(), true);
    await context.close();

    // The same page from an allowed origin connects (the refusal was about the origin).
    const allowed = await openSeed(seedSite.origin);
    assert.equal(await allowed.page.evaluate(tryWebSocketOnly, server.url), "connected");
    await allowed.close();
  } finally {
    await closed.stop();
    await strangerSite.stop();
  }
});
