// Losing the connection: the server goes away and comes back on the same address, or the
// network drops. The page says it is reconnecting, then connected, and is back in the room it
// was in, shown there once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, useServer } from "../support/server.mjs";
import { startProxy } from "../support/tcp-proxy.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectConnState,
  expectInRoom,
  expectMessageFrom,
  expectPath,
  expectPeople,
  expectSystemLinesAbout,
  expectText,
  messages,
  useBrowser,
  openUser,
  participants,
  sendMessage,
} from "../support/browser.mjs";

const server = useServer();
const browser = useBrowser();

/** The user's network goes away until their page notices, then comes back; they are in `room` again. */
async function offlineAndBack(user, room) {
  await user.context.setOffline(true);
  await eventually(async () => {
    assert.notEqual(await user.page.locator("#conn-status").getAttribute("data-state"), "connected", "the page notices");
  });
  await user.context.setOffline(false);
  await expectConnState(user.page, "connected");
  await expectInRoom(user.page, room);
}

test("after the server restarts, the page reconnects and is back in its room", { timeout: 90_000 }, async () => {
  const room = "night shift";
  const rosa = await openUser(browser, server.url);
  await enterRoom(rosa.page, { nickname: "Rosa", room });
  await expectPeople(rosa.page, ["Rosa"]);
  const [first] = await participants(rosa.page);
  await rosa.onWebSocket();

  // The server stops: the page says it is restarting (the server said so as it closed) and
  // keeps trying.
  await server.stop();
  await expectConnState(rosa.page, "reconnecting");
  await expectText(rosa.page.locator("#conn-label"), "Server restarting…");

  // A new server on the same port: the page connects again and is in the same room.
  Object.assign(server, await startServer({ port: server.port }));
  await expectConnState(rosa.page, "connected");
  await expectInRoom(rosa.page, room);
  await expectPath(rosa.page, `/r/${room}`);
  await expectPeople(rosa.page, ["Rosa"]);
  await expectText(rosa.page.locator("#room-count"), "1");
  const [again] = await participants(rosa.page);
  assert.notEqual(again.id, first.id, "the list shows the new connection's id");

  // Someone who comes in now finds Rosa there, and they can talk.
  const sam = await openUser(browser, `${server.url}/r/${encodeURIComponent(room)}`);
  await enterRoom(sam.page, { nickname: "Sam" });
  await expectPeople(sam.page, ["Rosa", "Sam"]);
  await expectText(sam.page.locator("#room-count"), "2");
  await expectPeople(rosa.page, ["Rosa", "Sam"]);
  await expectSystemLinesAbout(rosa.page, "Sam", 1);

  await sendMessage(rosa.page, "I'm back");
  await expectMessageFrom(sam.page, "Rosa", "I'm back");
  await sendMessage(sam.page, "Welcome back");
  await expectMessageFrom(rosa.page, "Sam", "Welcome back");

  assertNoPageErrors(rosa, "rosa");
  assertNoPageErrors(sam, "sam");
  await Promise.all([rosa.close(), sam.close()]);
});

test("in the lobby, the directory is live again after the server restarts", { timeout: 90_000 }, async () => {
  const watcher = await openUser(browser, server.url);
  await watcher.onWebSocket();
  await server.stop();
  await expectConnState(watcher.page, "reconnecting");
  Object.assign(server, await startServer({ port: server.port }));
  await expectConnState(watcher.page, "connected");

  const opener = await openUser(browser, server.url);
  await enterRoom(opener.page, { nickname: "Otto", room: "after the restart" });
  await expectText(watcher.page.locator('#directory li[data-room="after the restart"] .room-count'), "1");
  await expectText(watcher.page.locator("#room-total"), "1");

  assertNoPageErrors(watcher, "watcher");
  await Promise.all([watcher.close(), opener.close()]);
});

test("after a network drop, the page is back in its room and shown once", { timeout: 90_000 }, async () => {
  const room = "flaky wifi";
  const ada = await openUser(browser, server.url);
  const ben = await openUser(browser, server.url);
  await enterRoom(ada.page, { nickname: "Ada", room });
  await enterRoom(ben.page, { nickname: "Ben", room });
  await expectPeople(ada.page, ["Ada", "Ben"]);
  await ben.onWebSocket();

  // Ben's network goes away, then comes back.
  await offlineAndBack(ben, room);

  // Both see exactly two people: Ben's old connection does not linger beside the new one.
  for (const { page } of [ada, ben]) {
    await expectPeople(page, ["Ada", "Ben"]);
    await expectText(page.locator("#room-count"), "2");
  }
  await sendMessage(ben.page, "sorry, my wifi");
  await expectMessageFrom(ada.page, "Ben", "sorry, my wifi");
  await sendMessage(ada.page, "no problem");
  await expectMessageFrom(ben.page, "Ada", "no problem");

  assertNoPageErrors(ada, "ada");
  assertNoPageErrors(ben, "ben");
  await Promise.all([ada.close(), ben.close()]);
});

test("during an outage the room says it is reconnecting, and what is typed meanwhile is sent, in order, once back", { timeout: 90_000 }, async () => {
  const room = "typing in a tunnel";
  const ada = await openUser(browser, server.url);
  const ben = await openUser(browser, server.url);
  try {
    await enterRoom(ada.page, { nickname: "Ada", room });
    await enterRoom(ben.page, { nickname: "Ben", room });
    await expectPeople(ada.page, ["Ada", "Ben"]);
    await ben.onWebSocket();
    const join = ben.page.locator("#call-open");

    await ben.context.setOffline(true);
    await eventually(async () => {
      assert.notEqual(await ben.page.locator("#conn-status").getAttribute("data-state"), "connected", "the page notices");
      assert.equal(await ben.page.locator("#room-view").getAttribute("data-offline"), "true", "the room is shown greyed");
      assert.equal(await join.getAttribute("aria-disabled"), "true", "nobody joins a call without a connection");
    });
    for (const text of ["typed offline, first", "typed offline, second"]) await sendMessage(ben.page, text);
    await eventually(async () => {
      const waiting = await ben.page.locator("#chat-log li.msg.own.pending").evaluateAll((items) =>
        items.map((li) => [li.querySelector(".msg-text").textContent, li.querySelector(".msg-status").textContent]),
      );
      assert.equal(waiting.length, 2, "both wait");
      for (const [, status] of waiting) assert.match(status, /connection/i, "and say what for");
    });
    assert.equal(await ben.page.locator("#message").inputValue(), "", "the box is free for more");

    await ben.context.setOffline(false);
    await expectConnState(ben.page, "connected");
    await expectMessageFrom(ada.page, "Ben", "typed offline, first");
    await expectMessageFrom(ada.page, "Ben", "typed offline, second");
    const order = (await messages(ada.page)).map((m) => m.text).filter((t) => t.startsWith("typed offline"));
    assert.deepEqual(order, ["typed offline, first", "typed offline, second"], "in the order typed");
    await eventually(async () => {
      assert.equal(await ben.page.locator("#chat-log li.msg.own.sent").count(), 2, "Ben's two lines are sent");
      assert.equal(await ben.page.locator("#room-view").getAttribute("data-offline"), "false", "the room is live again");
      assert.equal(await join.getAttribute("aria-disabled"), null, "the call can be joined again");
      assert.ok(await ben.page.locator("#error").isHidden(), "no error of the outage stays");
    });
    assertNoPageErrors(ada, "ada");
    assertNoPageErrors(ben, "ben");
  } finally {
    await Promise.all([ada.close(), ben.close()]);
  }
});

test("after a silent network cut, the page's new connection replaces its old one at once", { timeout: 90_000 }, async () => {
  // Cleo reaches the server through a proxy that can cut her connection without the server
  // noticing (it would only learn of it from the ping timeout, 45 s by default).
  const proxy = await startProxy(server.port);
  try {
    const room = "dead zone";
    const dan = await openUser(browser, server.url);
    const cleo = await openUser(browser, proxy.url);
    await enterRoom(dan.page, { nickname: "Dan", room });
    await enterRoom(cleo.page, { nickname: "Cleo", room });
    await expectPeople(dan.page, ["Dan", "Cleo"]);
    await cleo.onWebSocket();

    // The cut: Cleo's connection goes silent, her page notices it is offline, then comes back.
    proxy.blackhole();
    await offlineAndBack(cleo, room);

    // Dan sees Cleo once, with a count of two, long before any ping timeout.
    for (const { page } of [dan, cleo]) {
      await expectPeople(page, ["Dan", "Cleo"]);
      await expectText(page.locator("#room-count"), "2");
    }
    await sendMessage(cleo.page, "back again");
    await expectMessageFrom(dan.page, "Cleo", "back again");

    assertNoPageErrors(dan, "dan");
    assertNoPageErrors(cleo, "cleo");
    await Promise.all([dan.close(), cleo.close()]);
  } finally {
    await proxy.stop();
  }
});
