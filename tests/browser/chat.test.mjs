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

  // The box takes no more than the server allows; an empty name is pointed out beside the box,
  // and nobody's list changes.
  await eli.page.locator("#rename").click();
  assert.equal(await eli.page.locator("#rename-input").getAttribute("maxlength"), "32");
  await eli.page.locator("#rename-input").fill("   ");
  await eli.page.locator("#rename-input").press("Enter");
  await expectText(eli.page.locator("#rename-input-error"), "Enter a name.");
  assert.equal(await eli.page.locator("#rename-input").getAttribute("aria-invalid"), "true");
  await eli.page.locator("#rename-cancel").click();
  await sendMessage(eli.page, "still Elias");
  await expectMessageFrom(dee.page, "Elias", "still Elias");
  for (const { page } of [dee, eli]) await expectPeople(page, ["Dee", "Elias"]);

  assertNoPageErrors(dee, "dee");
  assertNoPageErrors(eli, "eli");
  await Promise.all([dee.close(), eli.close()]);
});

test("web addresses in chat are links that open a new tab, and nothing else is; one person's lines are grouped, and two of one name told apart", { timeout: 60_000 }, async () => {
  const room = "links and groups";
  const alice = await openUser(browser, server.url);
  const bob = await openUser(browser, server.url);
  const other = await openUser(browser, server.url);
  try {
    for (const [user, nickname] of [[alice, "Alice"], [bob, "Bob"], [other, "Alice"]]) await enterRoom(user.page, { nickname, room });
    await eventually(async () => assert.equal((await participants(bob.page)).length, 3, "Bob sees all three"));

    // The link is to this server: the test reaches nothing outside.
    const address = `${server.url}/notes?x=1`;
    const text = `notes at ${address}. Not a link: javascript:alert(1) <a href="javascript:alert(2)">x</a>`;
    await sendMessage(alice.page, text);
    await sendMessage(alice.page, "and a second line");
    await sendMessage(bob.page, "thanks");
    await sendMessage(other.page, "I am the other Alice");

    await eventually(async () => assert.equal((await messages(bob.page)).length, 4, "Bob sees four messages"));
    const lines = await bob.page.locator("#chat-log li.msg").evaluateAll((items) =>
      items.map((li) => ({
        text: li.querySelector(".msg-text").textContent,
        links: [...li.querySelectorAll("a")].map((a) => ({ href: a.getAttribute("href"), text: a.textContent, target: a.target, rel: a.rel })),
        continued: li.classList.contains("continued"),
        senderShown: getComputedStyle(li.querySelector(".msg-sender")).display !== "none",
        hue: li.querySelector(".msg-avatar").style.getPropertyValue("--hue"),
        sender: li.querySelector(".msg-sender").textContent,
      })),
    );
    // The text is whole, one link in it, to where it says, in a new tab with no hold on the page.
    assert.equal(lines[0].text, text);
    assert.deepEqual(lines[0].links, [{ href: address, text: address, target: "_blank", rel: "noopener noreferrer" }]);
    // Alice's two lines are one group: her name once. Bob's and the other Alice's have their own.
    assert.deepEqual(lines.map((l) => [l.continued, l.senderShown]), [[false, true], [true, false], [false, true], [false, true]]);
    // The two Alices: different names in the list and the chat, and different colours.
    assert.notEqual(lines[0].sender, lines[3].sender, "the two Alices are told apart");
    assert.notEqual(lines[0].hue, lines[3].hue, "the two Alices have different colours");
    // A click opens the link in a new tab, and the room stays.
    const [popup] = await Promise.all([bob.page.context().waitForEvent("page"), bob.page.locator("#chat-log a").first().click()]);
    assert.equal(await popup.evaluate(() => window.opener), null, "the new tab cannot reach this page");
    await popup.close();
    await expectVisible(bob.page.locator("#room-view"));
    // Alice's own lines say they are hers.
    await expectText(alice.page.locator("#chat-log li.msg.own .msg-you").first(), "you");
    for (const [who, user] of Object.entries({ alice, bob, other })) assertNoPageErrors(user, who);
  } finally {
    await Promise.all([alice.close(), bob.close(), other.close()]);
  }
});
