// Takes the README's pictures: docs/room.png, the room view with three people chatting, as one of
// them sees it; docs/call.png, a call of three on a phone, a message waiting behind the chat
// button; and docs/admin.png, the admin panel with three rooms (one unlisted) and the people
// in them, some in the call with their microphone and camera on or off. Run by hand
// (`node screenshot.mjs` in tests/, after `cargo build`), not by the test command, so test runs
// leave the pictures alone.
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./support/server.mjs";
import { ack, disconnectAll, noomClient } from "./support/clients.mjs";
import { joinCall, openCallUser } from "./support/rtc.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectMessageFrom,
  expectPeople,
  expectText,
  expectVisible,
  launchBrowser,
  messages,
  openUser,
  sendMessage,
} from "./support/browser.mjs";

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../docs");
const ADMIN_TOKEN = "readme-screenshot-admin-token-0123456789";
const VIEWPORT = { width: 1280, height: 800 };

// A node name of its own: the picture shows no machine's host name.
const server = await startServer({ args: ["--admin-token", ADMIN_TOKEN, "--node-name", "noom-1"] });
const browser = await launchBrowser();
try {
  await roomPicture(path.join(DOCS, "room.png"));
  await phoneCallPicture(path.join(DOCS, "call.png"));
  await adminPicture(path.join(DOCS, "admin.png"));
} finally {
  await disconnectAll();
  await browser.close();
  await server.stop();
}

/** Saves what `page` shows, with no focus ring or caret in the picture. */
async function snap(page, file) {
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.screenshot({ path: file, animations: "disabled", caret: "hide" });
  console.log(`wrote ${file}`);
}

async function roomPicture(file) {
  const room = "design-sync";
  const mina = await openUser(browser, server.url, { viewport: VIEWPORT });
  const leo = await openUser(browser, server.url, { viewport: VIEWPORT });
  const sofia = await openUser(browser, server.url, { viewport: VIEWPORT });
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
    ["Leo", "Notes so far: https://notes.example.com/design-sync"],
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

  await snap(mina.page, file);
  for (const [who, user] of Object.entries(users)) assertNoPageErrors(user, who);
  await Promise.all(Object.values(users).map((u) => u.close()));
}

async function phoneCallPicture(file) {
  const room = "weekly-1on1";
  const phone = await openCallUser(browser, server.url, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const others = [await openCallUser(browser, server.url, { viewport: VIEWPORT }), await openCallUser(browser, server.url, { viewport: VIEWPORT })];
  await enterRoom(phone.page, { nickname: "Hana", room });
  for (const [i, nickname] of ["Jun", "Ravi"].entries()) await enterRoom(others[i].page, { nickname, room });
  await joinCall(phone.page);
  for (const other of others) await joinCall(other.page);
  await expectVisible(phone.page.locator("#tiles .tile:not([data-self])").nth(1));
  await sendMessage(others[0].page, "Can you hear me all right?");
  await expectText(phone.page.locator("#call-chat-unread [aria-hidden]"), "1");
  // The fake cameras' pictures settle.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await snap(phone.page, file);
  for (const user of [phone, ...others]) assertNoPageErrors(user);
  await Promise.all([phone, ...others].map((u) => u.close()));
}

async function adminPicture(file) {
  // Who is where, in the order they come, and what they send in the room's call if they are in it.
  // The panel lists the rooms by name, as here; the first two fit in the picture.
  const media = (audio, video, screen = false) => ({ audio, video, screen });
  const rooms = [
    { room: "design-review", people: [["Priya", media(true, true, true)], ["Tom", media(false, true)], ["Yuki"]] },
    { room: "hiring-panel", unlisted: true, people: [["Grace", media(true, false)], ["Omar", media(true, true)]] },
    {
      room: "standup",
      people: [["Mina", media(true, true)], ["Leo", media(false, false)], ["Sofia", media(true, true)], ["Arjun"]],
    },
  ];
  for (const entry of rooms) {
    const { unlisted, people } = entry;
    for (const [i, [nickname, call]] of people.entries()) {
      // An unlisted room's name gets a random part: the others come in by the name it got.
      const { socket, joined: entered } = await noomClient(server.url, nickname, entry.room, i === 0 ? { unlisted } : {});
      entry.room = entered.room.name;
      const room = entry.room;
      if (!call) continue;
      // Everyone joins with their microphone and camera, then turns off what they do not send.
      const joined = await ack(socket, "call:join", { room, media: media(true, true) });
      assert.ok(joined && !joined.error, `call:join ${room}: ${JSON.stringify(joined)}`);
      const updated = await ack(socket, "call:media", { room, ...call });
      assert.ok(updated && !updated.error, `call:media ${room}: ${JSON.stringify(updated)}`);
    }
  }

  const admin = await openUser(browser, `${server.url}/admin`, { viewport: VIEWPORT, waitConnected: false });
  await expectVisible(admin.page.locator("#admin-login"), "the sign-in form");
  await admin.page.locator("#admin-token").fill(ADMIN_TOKEN);
  await admin.page.locator("#admin-sign-in").click();
  await expectVisible(admin.page.locator("#admin-main"), "the admin panel after signing in");
  await expectText(admin.page.locator("#admin-live-label"), "Live");
  await eventually(async () => {
    const shown = await admin.page.locator(".admin-room").evaluateAll((cards) =>
      cards.map((card) => ({ room: card.dataset.room, people: card.querySelectorAll(".admin-participant").length })),
    );
    assert.deepEqual(shown, rooms.map(({ room, people }) => ({ room, people: people.length })));
  });
  const inCall = rooms.flatMap((r) => r.people).filter(([, call]) => call).length;
  await expectText(admin.page.locator("#admin-in-call"), String(inCall));

  await snap(admin.page, file);
  assertNoPageErrors(admin, "the admin page");
  await admin.close();
}
