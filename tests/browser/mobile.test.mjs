// On a phone-sized screen the lobby and a room are usable: the controls are on screen, nothing
// needs scrolling sideways, even with long names and long unbroken words.
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
  expectText,
  expectVisible,
  useBrowser,
  messages,
  openUser,
  sendMessage,
} from "../support/browser.mjs";
import { joinCall, openCallUser } from "../support/rtc.mjs";

const WIDTH = 360;
const HEIGHT = 740;
const PHONE = { viewport: { width: WIDTH, height: HEIGHT }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

const server = useServer();
const browser = useBrowser();

async function assertNoSidewaysScroll(page, where) {
  const { width } = page.viewportSize();
  const { scrollWidth, bodyScrollWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
  }));
  assert.ok(scrollWidth <= width, `${where}: the page is ${scrollWidth}px wide, wider than the ${width}px screen`);
  assert.ok(bodyScrollWidth <= width, `${where}: the body is ${bodyScrollWidth}px wide`);
}

/** Waits until the element is visible and lies entirely on the screen, as it is now scrolled. */
function expectOnScreen(locator, what) {
  const { width, height } = locator.page().viewportSize();
  return eventually(async () => {
    assert.ok(await locator.isVisible(), `${what} should be visible`);
    const box = await locator.boundingBox();
    assert.ok(box && box.width > 0 && box.height > 0, `${what} has a size`);
    assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5, `${what} fits across the screen: ${JSON.stringify(box)}`);
    assert.ok(box.y >= 0 && box.y + box.height <= height + 0.5, `${what} is within the screen's height: ${JSON.stringify(box)}`);
  });
}

test("a phone-sized screen: lobby and room fit and work", { timeout: 60_000 }, async () => {
  const phone = await openUser(browser, server.url, PHONE);
  const page = phone.page;

  // Someone opens a room with a long name, so the lobby's list has a long entry.
  const longRoom = "a-very-long-room-name-without-any-spaces-to-break-it-0123456789a";
  assert.equal(longRoom.length, 64);
  const desk = await openUser(browser, `${server.url}/r/${longRoom}`);
  await desk.page.locator("#nickname").fill("Dora");
  await desk.page.locator("#enter-room").click();
  await expectInRoom(desk.page, longRoom);

  // The lobby: the form's controls are on screen and the list shows the room.
  await expectVisible(page.locator(`#directory li[data-room="${longRoom}"]`));
  for (const selector of ["#nickname", "#room-name", "#enter-room"]) {
    await page.locator(selector).scrollIntoViewIfNeeded();
    await expectOnScreen(page.locator(selector), selector);
  }
  await assertNoSidewaysScroll(page, "the lobby");

  // Tapping the list entry enters the room.
  await page.locator("#nickname").fill("Pia-with-a-rather-long-nickname");
  await page.locator(`#directory li[data-room="${longRoom}"]`).tap();
  await expectInRoom(page, longRoom);
  await expectPeople(page, ["Dora", "Pia-with-a-rather-long-nickname"]);
  await expectText(page.locator("#room-count"), "2");

  // In the room, without any scrolling: the message box and Send are on screen.
  for (const selector of ["#message", "#send"]) await expectOnScreen(page.locator(selector), selector);
  await assertNoSidewaysScroll(page, "the room");

  // Chat with a long unbroken word both ways, and enough lines to fill the screen.
  const longWord = "https://example.com/" + "x".repeat(300);
  await page.locator("#message").tap();
  await page.locator("#message").fill(longWord);
  await page.locator("#send").tap();
  await expectMessageFrom(desk.page, "Pia-with-a-rather-long-nickname", longWord);
  for (let i = 1; i <= 8; i++) {
    await desk.page.locator("#message").fill(`line ${i} ${"z".repeat(120)}`);
    await desk.page.locator("#message").press("Enter");
    await expectMessageFrom(page, "Dora", `line ${i} ${"z".repeat(120)}`);
  }
  await eventually(async () => {
    const own = (await messages(page)).filter((m) => m.own);
    assert.deepEqual(own.map((m) => [m.text, m.state]), [[longWord, ["sent"]]]);
  });
  for (const selector of ["#message", "#send", "#leave"]) {
    await page.locator(selector).scrollIntoViewIfNeeded();
    await expectOnScreen(page.locator(selector), `${selector} with a full chat`);
  }
  await assertNoSidewaysScroll(page, "the room with long messages");

  // The last message is the one in view at the bottom of the log.
  await eventually(async () => {
    const last = page.locator("#chat-log li.msg").last();
    await expectOnScreen(last.locator(".msg-text"), "the latest message");
  });

  // Leaving brings the lobby back, still fitting.
  await page.locator("#leave").tap();
  await expectVisible(page.locator("#lobby"));
  await assertNoSidewaysScroll(page, "the lobby after leaving");

  assertNoPageErrors(phone, "phone");
  assertNoPageErrors(desk, "desk");
  await Promise.all([phone.close(), desk.close()]);
});

for (const viewport of [{ width: 390, height: 844 }, { width: WIDTH, height: HEIGHT }]) {
  test(`a call on a phone (${viewport.width}×${viewport.height}): the chat button counts what came, opens the chat over the call with the message box on screen, and nothing overflows sideways`, { timeout: 120_000 }, async () => {
    const phone = await openCallUser(browser, server.url, { ...PHONE, viewport });
    const desk = await openCallUser(browser, server.url);
    try {
      const page = phone.page;
      const room = `phone call ${viewport.width}`;
      await enterRoom(page, { nickname: "Pia", room });
      await enterRoom(desk.page, { nickname: "Dev", room });
      await joinCall(page);
      await joinCall(desk.page);
      await assertNoSidewaysScroll(page, "in the call");
      const button = page.locator("#call-chat");
      await expectOnScreen(button, "the chat button");
      for (const selector of ["#call-mic", "#call-camera", "#call-leave"]) {
        await expectOnScreen(page.locator(selector), selector);
        assert.ok((await page.locator(selector).textContent()).trim().length > 0, `${selector} has a name`);
      }

      await sendMessage(desk.page, "can you see my slides?");
      await sendMessage(desk.page, "page 2 now");
      await eventually(async () => assert.equal((await page.locator("#call-chat-unread [aria-hidden]").textContent()), "2", "two unread"));
      assert.match(await button.textContent(), /2 unread/, "a screen reader hears how many");

      await button.tap();
      await expectOnScreen(page.locator("#message"), "the message box");
      await expectOnScreen(page.locator("#chat-log li.msg").last(), "the latest message");
      assert.ok(await page.locator("#call-chat-unread").isHidden(), "read now");
      await page.locator("#message").fill("yes, all good");
      await page.locator("#send").tap();
      await expectMessageFrom(desk.page, "Pia", "yes, all good");
      await assertNoSidewaysScroll(page, "with the chat open");

      await page.locator("#chat-close").tap();
      await expectOnScreen(page.locator("#call-mic"), "back in the call");
      await sendMessage(desk.page, "great");
      await eventually(async () => assert.equal((await page.locator("#call-chat-unread [aria-hidden]").textContent()), "1"));
      assertNoPageErrors(phone, "phone");
    } finally {
      await Promise.all([phone.close(), desk.close()]);
    }
  });
}
