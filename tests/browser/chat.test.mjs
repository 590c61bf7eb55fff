// Three people chat in one room, each in a browser context of their own: arrivals, messages,
// a departure with Leave and one by closing the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import {
  assertNoPageErrors,
  enterRoom,
  eventually,
  expectHidden,
  expectInLobby,
  expectMessageFrom,
  expectPath,
  expectPeople,
  expectSystemLinesAbout,
  expectText,
  expectVisible,
  useBrowser,
  messages,
  openUser,
  ownMessageHistory,
  participants,
  recordOwnMessageStates,
  sendMessage,
  systemLines,
  texts,
} from "../support/browser.mjs";

const server = useServer();
const browser = useBrowser();

test("three users chat in one room and see each other come and go", { timeout: 90_000 }, async () => {
  const room = "standup";
  const alice = await openUser(browser, server.url);
  const bob = await openUser(browser, server.url);
  const carol = await openUser(browser, server.url);

  // Alice opens the room: alone, count 1, herself in the list, and the address is the room's.
  await enterRoom(alice.page, { nickname: "Alice", room });
  await expectText(alice.page.locator("#room-count"), "1");
  await expectPeople(alice.page, ["Alice"]);
  await expectPath(alice.page, `/r/${room}`);

  // Bob arrives: both see two people; Alice gets a line about it.
  await enterRoom(bob.page, { nickname: "Bob", room });
  for (const { page } of [alice, bob]) {
    await expectText(page.locator("#room-count"), "2");
    await expectPeople(page, ["Alice", "Bob"]);
  }
  await expectSystemLinesAbout(alice.page, "Bob", 1);

  // Carol arrives: three everywhere.
  await enterRoom(carol.page, { nickname: "Carol", room });
  for (const { page } of [alice, bob, carol]) {
    await expectText(page.locator("#room-count"), "3");
    await expectPeople(page, ["Alice", "Bob", "Carol"]);
  }
  await expectSystemLinesAbout(alice.page, "Carol", 1);
  await expectSystemLinesAbout(bob.page, "Carol", 1);

  // Everyone's list names the same people by the same socket ids.
  const byNick = (list) => Object.fromEntries(list.map((p) => [p.nick, p.id]));
  const ids = byNick(await participants(alice.page));
  assert.equal(new Set(Object.values(ids)).size, 3, `three distinct ids: ${JSON.stringify(ids)}`);
  assert.deepEqual(byNick(await participants(bob.page)), ids);
  assert.deepEqual(byNick(await participants(carol.page)), ids);

  // Each one says something (Enter, the Send button, Enter); the others see it with the sender.
  const said = [
    { user: alice, nick: "Alice", text: "Good morning, everyone", via: "enter" },
    { user: bob, nick: "Bob", text: "Morning! Coffee first ☕", via: "button" },
    { user: carol, nick: "Carol", text: "안녕하세요 — hello from Carol", via: "enter" },
  ];
  for (const { user } of said) await recordOwnMessageStates(user.page);
  for (const { user, text, via } of said) await sendMessage(user.page, text, { via });
  for (const { user, nick, text } of said) {
    for (const other of said.filter((s) => s.user !== user)) await expectMessageFrom(other.user.page, nick, text);
    // The sender sees it as their own, first pending, then sent.
    await eventually(async () => {
      const own = (await messages(user.page)).filter((m) => m.own);
      assert.deepEqual(own, [{ sender: nick, text, own: true, state: ["sent"] }], `${nick}'s own messages`);
    });
    assert.deepEqual(await ownMessageHistory(user.page), [{ text, states: ["pending", "sent"] }], `${nick}'s message states`);
    // The message box is empty again.
    assert.equal(await user.page.locator("#message").inputValue(), "");
  }

  // Carol leaves with the Leave button: she is back in the lobby; the others see her go.
  await carol.page.locator("#leave").click();
  await expectInLobby(carol.page);
  await expectPath(carol.page, "/");
  for (const { page } of [alice, bob]) {
    await expectText(page.locator("#room-count"), "2");
    await expectPeople(page, ["Alice", "Bob"]);
    await expectSystemLinesAbout(page, "Carol", 2); // arrived, left
  }

  // Bob closes his page: Alice sees him go.
  await bob.page.close();
  await expectText(alice.page.locator("#room-count"), "1");
  await expectPeople(alice.page, ["Alice"]);
  await expectSystemLinesAbout(alice.page, "Bob", 2);

  // Nothing went wrong on the way, and Alice's room still works.
  await sendMessage(alice.page, "Anyone still here?");
  await eventually(async () => {
    const last = (await messages(alice.page)).at(-1);
    assert.deepEqual(last, { sender: "Alice", text: "Anyone still here?", own: true, state: ["sent"] });
  });
  for (const [who, user] of Object.entries({ alice, bob, carol })) assertNoPageErrors(user, who);
  await Promise.all([alice.close(), bob.close(), carol.close()]);
});

test("renaming in a room shows the new name to everyone; a bad name is refused", { timeout: 60_000 }, async () => {
  const room = "renames";
  const dee = await openUser(browser, server.url);
  const eli = await openUser(browser, server.url);
  await enterRoom(dee.page, { nickname: "Dee", room });
  await enterRoom(eli.page, { nickname: "Eli", room });
  await expectPeople(dee.page, ["Dee", "Eli"]);
  await expectHidden(eli.page.locator("#error"));

  // Eli renames with the rename control (Enter submits).
  await eli.page.locator("#rename").click();
  await eli.page.locator("#rename-input").fill("Elias");
  await eli.page.locator("#rename-input").press("Enter");
  for (const { page } of [dee, eli]) await expectPeople(page, ["Dee", "Elias"]);
  await eventually(async () => {
    const lines = await systemLines(dee.page);
    assert.ok(lines.some((l) => l.includes("Eli") && l.includes("Elias")), `a line about the rename in ${JSON.stringify(lines)}`);
  });
  await sendMessage(eli.page, "new name, same me");
  await expectMessageFrom(dee.page, "Elias", "new name, same me");

  // A name over 32 characters: an error shows, and nobody's list changes.
  await eli.page.locator("#rename").click();
  await eli.page.locator("#rename-input").fill("x".repeat(33));
  await eli.page.locator("#rename-input").press("Enter");
  await expectVisible(eli.page.locator("#error"));
  assert.ok((await texts(eli.page.locator("#error"))).join("").length > 0, "the error says something");
  await sendMessage(eli.page, "still Elias");
  await expectMessageFrom(dee.page, "Elias", "still Elias");
  for (const { page } of [dee, eli]) await expectPeople(page, ["Dee", "Elias"]);

  assertNoPageErrors(dee, "dee");
  assertNoPageErrors(eli, "eli");
  await Promise.all([dee.close(), eli.close()]);
});
