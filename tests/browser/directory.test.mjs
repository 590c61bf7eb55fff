// The lobby's live directory of open rooms, as a person waiting in the lobby sees it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectHidden,
  expectInRoom,
  expectPath,
  expectPeople,
  expectText,
  expectVisible,
  useBrowser,
  openUser,
  texts,
} from "../support/browser.mjs";
import { joinCall, leaveCall, openCallUser } from "../support/rtc.mjs";

const server = useServer();
const browser = useBrowser();

/** The directory as the page shows it: `{ name: count }`, in the order listed. */
async function listed(page) {
  return page.locator("#directory li[data-room]").evaluateAll((items) =>
    items.map((li) => ({
      room: li.getAttribute("data-room"),
      name: li.querySelector(".room-name")?.textContent?.trim(),
      count: li.querySelector(".room-count")?.textContent?.trim(),
    })),
  );
}

function expectListed(page, expected, message) {
  return eventually(async () => {
    assert.deepEqual(await listed(page), expected, message ?? "the directory");
  });
}

test("the lobby's directory follows rooms opening, filling, emptying; unlisted rooms stay out", { timeout: 90_000 }, async () => {
  const watcher = await openUser(browser, server.url);
  const page = watcher.page;
  // Everything the directory ever lists, recorded in the page so a short-lived entry is seen too.
  await page.evaluate(() => {
    const seen = new Set();
    const note = () => document.querySelectorAll("#directory li[data-room]").forEach((li) => seen.add(li.getAttribute("data-room")));
    note();
    new MutationObserver(note).observe(document.querySelector("#directory"), { childList: true, subtree: true, attributes: true });
    window.__everListed = seen;
  });

  await expectListed(page, []);
  await expectText(page.locator("#room-total"), "0");

  // A room appears with one person, then two.
  const ann = await openUser(browser, server.url);
  await enterRoom(ann.page, { nickname: "Ann", room: "book club" });
  await expectListed(page, [{ room: "book club", name: "book club", count: "1" }]);
  await expectText(page.locator("#room-total"), "1");

  const ben = await openUser(browser, server.url);
  await enterRoom(ben.page, { nickname: "Ben", room: "book club" });
  await expectListed(page, [{ room: "book club", name: "book club", count: "2" }]);
  await expectText(page.locator("#room-total"), "1");

  // An unlisted room opens, then a public one after it: the public one shows, the unlisted one
  // never does, and the total counts only the public rooms.
  const uma = await openUser(browser, server.url);
  await enterRoom(uma.page, { nickname: "Uma", room: "secret plans", unlisted: true });
  await expectText(uma.page.locator("#room-count"), "1");
  const secret = (await texts(uma.page.locator("#room-title")))[0];
  assert.match(secret, /^secret plans-[A-Za-z0-9]{10}$/, "an unlisted room's name ends in a part nobody can guess");
  await expectPath(uma.page, `/r/${secret}`);
  const gus = await openUser(browser, server.url);
  await enterRoom(gus.page, { nickname: "Gus", room: "garden" });
  await expectListed(page, [
    { room: "book club", name: "book club", count: "2" },
    { room: "garden", name: "garden", count: "1" },
  ]);
  await expectText(page.locator("#room-total"), "2");

  // Someone with the unlisted room's link gets in; it still stays out of the list, while a change
  // the list does show (a third person in book club) comes through.
  const val = await openUser(browser, server.url);
  await enterRoom(val.page, { nickname: "Val", room: secret });
  await expectPeople(uma.page, ["Uma", "Val"]);
  const cy = await openUser(browser, server.url);
  await enterRoom(cy.page, { nickname: "Cy", room: "book club" });
  await expectListed(page, [
    { room: "book club", name: "book club", count: "3" },
    { room: "garden", name: "garden", count: "1" },
  ]);
  assert.deepEqual([...(await page.evaluate(() => [...window.__everListed]))].sort(), ["book club", "garden"]);

  // Everyone leaves book club, one way or another: it disappears and the total drops.
  await ann.page.locator("#leave").click();
  await expectListed(page, [
    { room: "book club", name: "book club", count: "2" },
    { room: "garden", name: "garden", count: "1" },
  ]);
  await ben.page.close();
  await cy.page.locator("#leave").click();
  await expectListed(page, [{ room: "garden", name: "garden", count: "1" }]);
  await expectText(page.locator("#room-total"), "1");

  // Those who left with Leave are in the lobby and see the same list.
  await expectListed(ann.page, [{ room: "garden", name: "garden", count: "1" }]);

  // Clicking an entry enters that room, under the nickname typed in the lobby.
  await page.locator("#nickname").fill("Wes");
  await page.locator('#directory li[data-room="garden"]').click();
  await expectInRoom(page, "garden");
  await expectPath(page, "/r/garden");
  await expectText(page.locator("#room-count"), "2");
  await expectPeople(page, ["Gus", "Wes"]);
  await expectPeople(gus.page, ["Gus", "Wes"]);
  await expectListed(ann.page, [{ room: "garden", name: "garden", count: "2" }]);

  // The unlisted room never showed, anywhere it could have.
  for (const user of [watcher, ann]) {
    assert.ok(!(await user.page.evaluate(() => window.__everListed?.has("secret plans") ?? false)));
    assert.ok(!(await texts(user.page.locator("#directory"))).join(" ").includes("secret plans"));
  }

  for (const user of [watcher, ann, uma, gus, val, cy]) assertNoPageErrors(user);
  await Promise.all([watcher, ann, ben, uma, gus, val, cy].map((u) => u.close()));
});

test("a lobby opened while rooms are open lists them at once", { timeout: 60_000 }, async () => {
  const host = await openUser(browser, server.url);
  await enterRoom(host.page, { nickname: "Hal", room: "already open" });
  const guest = await openUser(browser, server.url);
  await enterRoom(guest.page, { nickname: "Ida", room: "already open" });

  // Opened now, with nothing changing afterwards: the list must still show the room.
  const latecomer = await openUser(browser, server.url);
  await expectListed(latecomer.page, [{ room: "already open", name: "already open", count: "2" }]);
  await expectText(latecomer.page.locator("#room-total"), "1");

  // So does a lobby reached with Leave.
  await guest.page.locator("#leave").click();
  await expectListed(guest.page, [{ room: "already open", name: "already open", count: "1" }]);

  for (const user of [host, guest, latecomer]) assertNoPageErrors(user);
  await Promise.all([host, guest, latecomer].map((u) => u.close()));
});

test("New meeting opens an unlisted room with an unguessable link, offered to copy; the link asks only for a name; the list shows calls going", { timeout: 120_000 }, async () => {
  const host = await openCallUser(browser, server.url);
  const guest = await openUser(browser, server.url);
  const watcher = await openUser(browser, server.url);
  try {
    await host.page.locator("#nickname").fill("Hana");
    await host.page.locator("#new-meeting").click();
    await expectInRoom(host.page, /^meeting-[A-Za-z0-9]{10}$/);
    const ready = host.page.locator("#meeting-ready");
    await expectVisible(ready, "the link is offered");
    const link = await host.page.locator("#meeting-link").inputValue();
    const name = (await texts(host.page.locator("#room-title")))[0];
    assert.equal(link, `${server.url}/r/${name}`, "the link is the room's");
    assert.match(new URL(link).pathname, /^\/r\/meeting-[A-Za-z0-9_-]{8,}$/, "at least 8 random URL-safe characters");
    await host.page.locator("#meeting-link-copy").click();
    await expectText(host.page.locator("#meeting-link-copy"), "Copied");
    // Unlisted: nobody in the lobby sees it.
    assert.ok(!(await listed(watcher.page)).some((r) => r.room === name), "not in the lobby's list");

    // The link asks only for a name: no room field, no other rooms.
    await guest.page.goto(link);
    await expectVisible(guest.page.locator("#nickname"));
    for (const selector of ["#room-name", "#unlisted", "#with-host-key", "#new-meeting", "#directory"]) {
      assert.ok(!(await guest.page.locator(selector).isVisible()), `${selector} is not on the invite page`);
    }
    await enterRoom(guest.page, { nickname: "Gus" });
    await expectInRoom(guest.page, name);
    await expectPeople(host.page, ["Hana", "Gus"]);

    // Close the offer; it stays closed.
    await host.page.locator("#meeting-ready-close").click();
    await expectHidden(ready, "closed");

    // A public room with a call going: the lobby shows how many are in it.
    await host.page.locator("#leave").click();
    await enterRoom(host.page, { nickname: "Hana", room: "with a call" });
    await expectListed(watcher.page, [{ room: "with a call", name: "with a call", count: "1" }]);
    const call = watcher.page.locator('#directory li[data-room="with a call"] .room-call');
    assert.ok(!(await call.isVisible()), "no call yet");
    await joinCall(host.page);
    await expectVisible(call, "a call going shows");
    await expectText(call, "1");
    await watcher.page.getByRole("button", { name: /^with a call\s*, 1 people, 1 in a call$/ }).waitFor();
    await leaveCall(host.page);
    await expectHidden(call, "the call ended");
    for (const [who, user] of Object.entries({ host, guest, watcher })) assertNoPageErrors(user, who);
  } finally {
    await Promise.all([host.close(), guest.close(), watcher.close()]);
  }
});
