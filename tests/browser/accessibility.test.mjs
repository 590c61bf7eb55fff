// Accessibility: axe-core finds nothing serious or critical on any screen, at a desktop's and a
// phone's size, in English and Korean; and a person with only a keyboard goes from the lobby to a
// call and back, seeing where the focus is at each step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, expectInLobby, expectVisible, messages, sendMessage, useBrowser } from "../support/browser.mjs";
import { seriousViolations } from "../support/axe.mjs";
import { joinCall, openCallUser } from "../support/rtc.mjs";

const server = useServer({ args: ["--stun-urls", ""] });
const browser = useBrowser();

const SIZES = [
  { name: "desktop, English", viewport: { width: 1280, height: 800 }, locale: "en-US" },
  { name: "phone, Korean", viewport: { width: 390, height: 844 }, locale: "ko-KR", isMobile: true, hasTouch: true },
];

async function expectNothingSerious(page, where) {
  assert.deepEqual(await seriousViolations(page), [], `axe on ${where}`);
}

for (const { name, ...options } of SIZES) {
  test(`axe finds nothing serious on the lobby, a room, the preview, a call and its dialogs (${name})`, { timeout: 120_000 }, async () => {
    const room = `axe ${name}`;
    const other = await openCallUser(browser, server.url);
    const user = await openCallUser(browser, server.url, options);
    try {
      const { page } = user;
      await enterRoom(other.page, { nickname: "Other", room });
      await joinCall(other.page);
      await expectNothingSerious(page, "the lobby");
      await enterRoom(page, { nickname: "Ann", room });
      await expectNothingSerious(page, "the room");
      // A chat long enough to scroll: its log must be reachable by keyboard to be scrolled.
      for (let i = 1; i <= 8; i++) await sendMessage(other.page, `${i}: ${"a line long enough to wrap, ".repeat(6)}`);
      await eventually(async () => assert.equal((await messages(page)).length, 8, "Ann got every message"));
      assert.ok(await page.locator("#chat-log").evaluate((log) => log.scrollHeight > log.clientHeight), "the chat log scrolls");
      await expectNothingSerious(page, "the room with a long chat");
      await page.locator("#call-open").click();
      await expectVisible(page.locator("#call-preview"));
      await expectNothingSerious(page, "the preview");
      await page.locator("#call-start").click();
      await expectVisible(page.locator("#tiles .tile:not([data-self])"));
      await expectNothingSerious(page, "the call");
      await page.locator("#leave").click();
      await expectVisible(page.locator("#ask"));
      await expectNothingSerious(page, "the leave question");
      await page.keyboard.press("Escape");
      await page.evaluate(() => document.activeElement?.blur());
      await page.keyboard.press("Shift+Slash");
      await expectVisible(page.locator("#shortcuts"));
      await expectNothingSerious(page, "the shortcuts");
      assertNoPageErrors(user);
    } finally {
      await Promise.all([user.close(), other.close()]);
    }
  });
}

/** Presses Tab until the focus is on `selector` (a person would see where it is); fails if it never gets there. */
async function tabTo(page, selector, { back = false } = {}) {
  for (let i = 0; i < 60; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) {
      // The focus shows: an outline (or a ring drawn by a box shadow) on the element or its icon.
      const shown = await page.evaluate(() => {
        const el = document.activeElement;
        const styles = [el, el?.querySelector(".call-icon")].filter(Boolean).map((e) => getComputedStyle(e));
        return styles.some((s) => (s.outlineStyle !== "none" && s.outlineWidth !== "0px") || s.boxShadow !== "none");
      });
      assert.ok(shown, `the focus on ${selector} is visible`);
      return;
    }
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
  }
  assert.fail(`${selector} cannot be reached with Tab`);
}

test("with a keyboard alone: into a room, a message, into the call and out, and back to the lobby", { timeout: 120_000 }, async () => {
  const user = await openCallUser(browser, server.url);
  try {
    const { page } = user;
    await tabTo(page, "#nickname");
    await page.keyboard.type("Kim");
    await tabTo(page, "#room-name");
    await page.keyboard.type("keyboard only");
    await page.keyboard.press("Enter");
    await expectVisible(page.locator("#room-view"));

    await tabTo(page, "#message");
    await page.keyboard.type("typed, not clicked");
    await page.keyboard.press("Enter");
    await eventually(async () => assert.equal((await messages(page)).at(-1)?.text, "typed, not clicked"));

    await tabTo(page, "#call-open", { back: true });
    await page.keyboard.press("Enter");
    await expectVisible(page.locator("#call-preview"));
    assert.equal(await page.evaluate(() => document.activeElement?.id), "call-start", "the preview's Join now has the focus");
    await page.keyboard.press("Enter");
    await expectVisible(page.locator("#call"));
    await tabTo(page, "#call-mic");
    await page.keyboard.press("Enter");
    await eventually(async () => assert.equal(await page.locator("#call-mic").getAttribute("aria-pressed"), "false", "muted by keyboard"));
    await tabTo(page, "#call-leave");
    await page.keyboard.press("Enter");
    await eventually(async () => assert.ok(await page.locator("#call").isHidden(), "out of the call"));

    await tabTo(page, "#leave", { back: true });
    await page.keyboard.press("Enter");
    await expectInLobby(page);
    assertNoPageErrors(user);
  } finally {
    await user.close();
  }
});
