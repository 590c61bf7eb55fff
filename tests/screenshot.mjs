// Takes the README's picture of the room view, docs/room.png: three people chatting, as one of
// them sees it. Run by hand (`node screenshot.mjs` in tests/, after `cargo build`), not by the
// test command, so test runs leave the picture alone.
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectMessageFrom,
  expectPeople,
  expectText,
  launchBrowser,
  messages,
  openUser,
  sendMessage,
} from "./support/browser.mjs";

const OUTPUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../docs/room.png");
const server = await startServer();
const browser = await launchBrowser();
try {
  const room = "design-sync";
  const viewport = { width: 1280, height: 800 };
  const mina = await openUser(browser, server.url, { viewport });
  const leo = await openUser(browser, server.url, { viewport });
  const sofia = await openUser(browser, server.url, { viewport });
  const users = { Mina: mina, Leo: leo, Sofia: sofia };

  await enterRoom(mina.page, { nickname: "Mina", room });
  await enterRoom(leo.page, { nickname: "Leo", room });
  await enterRoom(sofia.page, { nickname: "Sofia", room });
  await expectPeople(mina.page, ["Mina", "Leo", "Sofia"]);
  await expectText(mina.page.locator("#room-count"), "3");

  const conversation = [
    ["Leo", "Morning! Did everyone get a chance to look at the new lobby?"],
    ["Mina", "Yes, the live room list is great. Counts update the moment someone joins."],
    ["Sofia", "Love it. Can we make the share link more visible on phones?"],
    ["Leo", "Good idea, I'll move Copy link next to the room name."],
    ["Mina", "Perfect. Let's ship it after lunch."],
  ];
  for (const [nick, text] of conversation) {
    await sendMessage(users[nick].page, text);
    for (const [other, user] of Object.entries(users)) {
      if (other !== nick) await expectMessageFrom(user.page, nick, text);
    }
  }
  await eventually(async () => {
    const shown = await messages(mina.page);
    assert.equal(shown.length, conversation.length);
    assert.ok(shown.filter((m) => m.own).every((m) => m.state.includes("sent")));
  });

  // No focus ring or caret in the picture.
  await mina.page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await mina.page.screenshot({ path: OUTPUT, animations: "disabled", caret: "hide" });

  for (const [who, user] of Object.entries(users)) assertNoPageErrors(user, who);
  await Promise.all(Object.values(users).map((u) => u.close()));
} finally {
  await browser.close();
  await server.stop();
}
console.log(`wrote ${OUTPUT}`);
