// Forms check as you type: a field the server would refuse says why under itself, in plain words,
// once; every box takes no more than the server allows; and a message too long is kept to fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, expectHidden, expectText, expectVisible, messages, openUser, useBrowser } from "../support/browser.mjs";

const server = useServer();
const browser = useBrowser();

/** The server's limits, as docs/protocol.md states them. */
const LIMITS = { nickname: 32, room: 64, message: 2000, password: 128 };

test("every box takes no more than the server allows", { timeout: 60_000 }, async () => {
  const user = await openUser(browser, server.url);
  try {
    const { page } = user;
    const maxlength = (selector) => page.locator(selector).getAttribute("maxlength");
    assert.equal(await maxlength("#nickname"), String(LIMITS.nickname));
    assert.equal(await maxlength("#room-name"), String(LIMITS.room));
    assert.equal(await maxlength("#room-password"), String(LIMITS.password));
    assert.equal(await maxlength("#rename-input"), String(LIMITS.nickname));
    assert.equal(await maxlength("#host-password-input"), String(LIMITS.password));
    await page.locator("#nickname").fill("n".repeat(40));
    assert.equal((await page.locator("#nickname").inputValue()).length, LIMITS.nickname, "typing stops at the limit");
    assertNoPageErrors(user);
  } finally {
    await user.close();
  }
});

test("the lobby says what is wrong beside the field, as you type, and sends nothing wrong", { timeout: 60_000 }, async () => {
  const user = await openUser(browser, server.url);
  try {
    const { page } = user;
    // An empty room name is pointed out when the form is sent, with the focus on it.
    await page.locator("#nickname").fill("Ann");
    await page.locator("#room-name").fill("");
    await page.locator("#enter-room").click();
    await expectText(page.locator("#room-name-error"), "Enter a room name.");
    assert.equal(await page.locator("#room-name").getAttribute("aria-invalid"), "true");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "room-name", "the focus goes to it");
    await expectHidden(page.locator("#error"), "one message for one mistake: no banner besides");
    // A tab typed into a name: said at once, in plain words.
    await page.locator("#room-name").fill("plan\tning");
    await expectText(page.locator("#room-name-error"), "Take out the invisible characters, such as tabs or line breaks.");
    await page.locator("#room-name").fill("planning");
    await expectHidden(page.locator("#room-name-error"), "fixed, the message goes");
    assert.equal(await page.locator("#room-name").getAttribute("aria-invalid"), null);
    await page.locator("#enter-room").click();
    await expectVisible(page.locator("#room-view"));
    assertNoPageErrors(user);
  } finally {
    await user.close();
  }
});

test("a message too long says so once, sends nothing and keeps the text; in Korean too", { timeout: 60_000 }, async () => {
  for (const [locale, said] of [["en-US", "Too long: 2,000 characters at most (this is 5,000)."], ["ko-KR", "너무 길어요: 최대 2,000자까지예요 (지금 5,000자)."]]) {
    const user = await openUser(browser, server.url, { locale });
    try {
      const { page } = user;
      await enterRoom(page, { nickname: "Ann", room: `long ${locale}` });
      const text = "가".repeat(5000);
      await page.locator("#message").fill(text);
      await expectText(page.locator("#message-error"), said);
      await page.locator("#message").press("Enter");
      await page.locator("#send").click();
      assert.equal(await page.locator("#message").inputValue(), text, "the text is kept");
      assert.deepEqual(await messages(page), [], "nothing is sent or shown as failed");
      await expectHidden(page.locator("#error"), "no banner besides");
      const shown = await page.locator(".field-error:visible, #error:visible, .msg.failed").count();
      assert.equal(shown, 1, "one message for one mistake");
      // Cut to the limit, it goes.
      await page.locator("#message").fill("가".repeat(2000));
      await expectHidden(page.locator("#message-error"));
      await page.locator("#message").press("Enter");
      await eventually(async () => assert.equal((await messages(page)).filter((m) => m.state.includes("sent")).length, 1, "sent"));
      assertNoPageErrors(user);
    } finally {
      await user.close();
    }
  }
});
