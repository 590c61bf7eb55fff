// The interface speaks Korean to a Korean browser, English to others, and the language switch
// changes it and is remembered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectConnState,
  expectText,
  useBrowser,
  openUser,
  texts,
} from "../support/browser.mjs";

const HANGUL = /[\uac00-\ud7a3]/;

const server = useServer();
const browser = useBrowser();

/** The labels a person reads in the lobby and in a room. */
const LOBBY_LABELS = ["#enter-room", "label[for=nickname]", "label[for=room-name]"];
const ROOM_LABELS = ["#send", "#leave", "#copy-link"];

async function labels(page, selectors) {
  const out = {};
  for (const s of selectors) [out[s]] = await texts(page.locator(s));
  return out;
}

test("a Korean browser gets Korean; switching to English sticks after a reload", { timeout: 60_000 }, async () => {
  // What the English interface says, from an English browser.
  const english = await openUser(browser, server.url, { locale: "en-US" });
  const enLobby = await labels(english.page, LOBBY_LABELS);
  await enterRoom(english.page, { nickname: "Emma", room: "language check" });
  const enRoom = await labels(english.page, ROOM_LABELS);
  for (const [selector, text] of Object.entries({ ...enLobby, ...enRoom })) {
    assert.ok(text && !HANGUL.test(text), `${selector} in English: ${JSON.stringify(text)}`);
  }

  // A Korean browser: every label differs and is Korean, and the switch says so.
  const korean = await openUser(browser, server.url, { locale: "ko-KR" });
  const page = korean.page;
  assert.equal(await page.locator("#lang-switch").inputValue(), "ko");
  const koLobby = await labels(page, LOBBY_LABELS);
  for (const selector of LOBBY_LABELS) {
    assert.notEqual(koLobby[selector], enLobby[selector], `${selector} differs from English`);
    assert.match(koLobby[selector], HANGUL, `${selector} in Korean`);
  }
  await enterRoom(page, { nickname: "민준", room: "language check" });
  const koRoom = await labels(page, ROOM_LABELS);
  for (const selector of ROOM_LABELS) {
    assert.notEqual(koRoom[selector], enRoom[selector], `${selector} differs from English`);
    assert.match(koRoom[selector], HANGUL, `${selector} in Korean`);
  }

  // Switching to English in the room relabels it at once, then the lobby after leaving.
  await page.locator("#lang-switch").selectOption("en");
  for (const [selector, text] of Object.entries(enRoom)) await expectText(page.locator(selector), text);
  await page.locator("#leave").click();
  for (const [selector, text] of Object.entries(enLobby)) await expectText(page.locator(selector), text);

  // The choice outlives a reload, though the browser still prefers Korean.
  await page.reload();
  await expectConnState(page, "connected");
  assert.equal(await page.locator("#lang-switch").inputValue(), "en");
  for (const [selector, text] of Object.entries(enLobby)) await expectText(page.locator(selector), text);

  // And back to Korean the same way.
  await page.locator("#lang-switch").selectOption("ko");
  await expectText(page.locator("#enter-room"), koLobby["#enter-room"]);
  await page.reload();
  await eventually(async () => assert.equal(await page.locator("#lang-switch").inputValue(), "ko"));
  await expectText(page.locator("#enter-room"), koLobby["#enter-room"]);

  assertNoPageErrors(english, "english");
  assertNoPageErrors(korean, "korean");
  await Promise.all([english.close(), korean.close()]);
});
