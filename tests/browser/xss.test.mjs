// Markup in nicknames, room names and messages is shown as text, never run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectInRoom,
  expectMessageFrom,
  expectPeople,
  expectSystemLinesAbout,
  expectText,
  useBrowser,
  messages,
  openUser,
  sendMessage,
  texts,
} from "../support/browser.mjs";

const IMG = `<img src=x onerror="window.__xss=1">`;
const SCRIPT = `<script>window.__xss=1</script>`;
// Nicknames are at most 32 characters: the same attack, shorter.
const IMG_NICK = `<img src=x onerror="__xss=1">`;

const server = useServer();
const browser = useBrowser();

/** Nothing ran, and the app's live parts hold no element that markup in the data could make. */
async function assertInert(user, who) {
  const { xss, injected } = await user.page.evaluate(() => ({
    xss: typeof window.__xss,
    injected: [...document.body.querySelectorAll("img, script, iframe, object, embed, svg [onload]")].map((n) => n.outerHTML),
  }));
  assert.equal(xss, "undefined", `window.__xss in ${who}'s page`);
  assert.deepEqual(injected, [], `elements in ${who}'s page`);
  assertNoPageErrors(user, who);
}

test("nicknames, room names and messages with markup show literally and never run", { timeout: 90_000 }, async () => {
  const watcher = await openUser(browser, server.url);

  // Someone named IMG_NICK opens a room named IMG; a watcher sees the name literally in the list.
  const mallory = await openUser(browser, server.url);
  await enterRoom(mallory.page, { nickname: IMG_NICK, room: IMG });
  await expectText(mallory.page.locator("#room-title"), IMG);
  await expectPeople(mallory.page, [IMG_NICK]);
  await expectText(watcher.page.locator(`#directory li[data-room="${IMG.replaceAll('"', '\\"')}"] .room-name`), IMG);

  // Someone named SCRIPT enters it from the directory.
  await watcher.page.locator("#nickname").fill(SCRIPT);
  await watcher.page.locator("#directory li[data-room] .room-name", { hasText: "<img" }).click();
  await expectInRoom(watcher.page, IMG);
  for (const { page } of [mallory, watcher]) await expectPeople(page, [IMG_NICK, SCRIPT]);
  await expectSystemLinesAbout(mallory.page, SCRIPT, 1);

  // Both send both payloads as messages.
  await sendMessage(mallory.page, IMG);
  await sendMessage(mallory.page, SCRIPT);
  await sendMessage(watcher.page, SCRIPT);
  await sendMessage(watcher.page, IMG, { via: "button" });
  await expectMessageFrom(watcher.page, IMG_NICK, IMG);
  await expectMessageFrom(watcher.page, IMG_NICK, SCRIPT);
  await expectMessageFrom(mallory.page, SCRIPT, SCRIPT);
  await expectMessageFrom(mallory.page, SCRIPT, IMG);
  for (const { page } of [mallory, watcher]) {
    await eventually(async () => {
      const own = (await messages(page)).filter((m) => m.own);
      assert.equal(own.length, 2);
      assert.ok(own.every((m) => m.state.includes("sent")), JSON.stringify(own));
    });
  }

  // A room named SCRIPT reached by its link: the invitation shows the name literally.
  const eve = await openUser(browser, `${server.url}/r/${encodeURIComponent(SCRIPT)}`);
  await eventually(async () => {
    assert.equal(await eve.page.locator("#room-name").inputValue(), SCRIPT);
    assert.ok((await texts(eve.page.locator("#lobby"))).join(" ").includes(SCRIPT), "the invitation names the room");
  });
  await enterRoom(eve.page, { nickname: IMG_NICK });
  await expectInRoom(eve.page, SCRIPT);
  await sendMessage(eve.page, `${SCRIPT}${IMG}`);
  await eventually(async () => {
    assert.deepEqual((await messages(eve.page)).map((m) => [m.text, m.state]), [[`${SCRIPT}${IMG}`, ["sent"]]]);
  });

  // The same room seen by a second person: the system line, the sender, the text.
  const trudy = await openUser(browser, `${server.url}/r/${encodeURIComponent(SCRIPT)}`);
  await enterRoom(trudy.page, { nickname: "Trudy" });
  await expectInRoom(trudy.page, SCRIPT);
  await expectPeople(trudy.page, [IMG_NICK, "Trudy"]);
  await expectMessageFrom(trudy.page, IMG_NICK, `${SCRIPT}${IMG}`); // from the room's history
  await expectSystemLinesAbout(eve.page, "Trudy", 1);

  for (const [who, user] of Object.entries({ watcher, mallory, eve, trudy })) await assertInert(user, who);
  await Promise.all([watcher, mallory, eve, trudy].map((u) => u.close()));
});
