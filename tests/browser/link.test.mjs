// Sharing a room by its link: /r/<room> opens the nickname step for that room, and the link the
// Copy link button copies brings someone else into the same room.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectInLobby,
  expectInRoom,
  expectPath,
  expectPeople,
  expectSystemLinesAbout,
  expectText,
  useBrowser,
  openUser,
} from "../support/browser.mjs";

const server = useServer();
const browser = useBrowser();

/** Opens a room link and checks the nickname step offers that room, then enters it. */
async function enterByLink(user, room, nickname) {
  await expectInLobby(user.page);
  await eventually(async () => assert.equal(await user.page.locator("#room-name").inputValue(), room, "the room field, prefilled from the link"));
  await enterRoom(user.page, { nickname });
  await expectInRoom(user.page, room);
  await expectPath(user.page, `/r/${room}`);
}

for (const room of ["coffee break", "회의실 3"]) {
  test(`a link to "${room}" leads there after the nickname step`, { timeout: 60_000 }, async () => {
    const link = `${server.url}/r/${encodeURIComponent(room)}`;
    const host = await openUser(browser, link);
    await enterByLink(host, room, "Hana");
    await expectText(host.page.locator("#room-count"), "1");

    const guest = await openUser(browser, link);
    await enterByLink(guest, room, "Gil");
    for (const { page } of [host, guest]) {
      await expectText(page.locator("#room-count"), "2");
      await expectPeople(page, ["Hana", "Gil"]);
    }
    await expectSystemLinesAbout(host.page, "Gil", 1);

    // A reload of the link comes back to the nickname step for the same room.
    await guest.page.reload();
    await enterByLink(guest, room, "Gil");
    await expectSystemLinesAbout(host.page, "Gil", 3); // arrived, left with the reload, arrived
    await expectPeople(host.page, ["Hana", "Gil"]);

    assertNoPageErrors(host, "host");
    assertNoPageErrors(guest, "guest");
    await Promise.all([host.close(), guest.close()]);
  });
}

test("the copied link opens the same room for someone else", { timeout: 60_000 }, async () => {
  const room = "design review 디자인";
  const host = await openUser(browser, server.url, { permissions: ["clipboard-read", "clipboard-write"] });
  await enterRoom(host.page, { nickname: "Hana", room });

  await host.page.locator("#copy-link").click();
  const copied = await eventually(async () => {
    const text = await host.page.evaluate(() => navigator.clipboard.readText());
    assert.match(text, /^http:\/\/.+\/r\/.+/, "the clipboard holds a room link");
    return text;
  });
  const url = new URL(copied);
  assert.equal(url.origin, new URL(server.url).origin, "the link points at this server");
  assert.equal(decodeURIComponent(url.pathname), `/r/${room}`);

  const guest = await openUser(browser, copied);
  await enterByLink(guest, room, "Gil");
  await expectPeople(guest.page, ["Hana", "Gil"]);
  await expectPeople(host.page, ["Hana", "Gil"]);
  await expectText(host.page.locator("#room-count"), "2");

  assertNoPageErrors(host, "host");
  assertNoPageErrors(guest, "guest");
  await Promise.all([host.close(), guest.close()]);
});
