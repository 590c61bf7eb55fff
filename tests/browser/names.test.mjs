// Names that try to pass for others: invisible characters, a right-to-left override, letters of
// another script. The server keeps one spelling of each name; pages keep each name within itself
// and tell apart two people whose names read the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { enterRoom, eventually, expectPeople, openUser, participants, sendMessage, systemLines, useBrowser, messages }
  from "../support/browser.mjs";

const server = useServer();
const browser = useBrowser();

test("look-alike and direction-changing names are told apart and kept within themselves", { timeout: 60_000 }, async () => {
  const room = "names";
  const alice = await openUser(browser, server.url);
  const impostor = await openUser(browser, server.url);
  const mirror = await openUser(browser, server.url);
  await enterRoom(alice.page, { nickname: "Alice", room });
  // A zero-width space (taken out) and a Cyrillic "А": it reads "Alice".
  await enterRoom(impostor.page, { nickname: "\u0410li\u200Bce", room });
  // A right-to-left override, which would turn the rest of a line around.
  await enterRoom(mirror.page, { nickname: "\u202Eevil", room });

  await eventually(async () => {
    const shown = await participants(alice.page);
    assert.equal(shown.length, 3, JSON.stringify(shown));
    const [real, fake] = [shown.find((p) => p.nick.startsWith("Alice")), shown.find((p) => p.nick.startsWith("\u0410lice"))];
    assert.ok(real && fake, JSON.stringify(shown));
    assert.equal(real.nick, `Alice (${real.id.slice(0, 4)})`, "each of two alike names carries a tag of its own");
    assert.equal(fake.nick, `\u0410lice (${fake.id.slice(0, 4)})`, "no invisible character left");
    assert.notEqual(real.nick, fake.nick);
    assert.ok(shown.some((p) => p.nick === "evil"), "the override is taken out of the name");
  });

  await sendMessage(impostor.page, "it is me, Alice");
  await eventually(async () => {
    const got = (await messages(alice.page)).find((m) => m.text === "it is me, Alice");
    assert.match(got?.sender ?? "", /^\u0410lice \(.{4}\)$/, "the chat tells the sender apart too");
  });

  // Every name shown is isolated from the text around it.
  const isolation = await alice.page.evaluate(() =>
    [...document.querySelectorAll("#participants .nick, #chat-log .msg-sender, .room-title")].map((e) => getComputedStyle(e).unicodeBidi),
  );
  assert.ok(isolation.length >= 4 && isolation.every((v) => v === "isolate"), JSON.stringify(isolation));
  const lines = await systemLines(alice.page);
  assert.ok(lines.some((l) => l.includes("\u2068evil\u2069")), `a name in a sentence is isolated: ${JSON.stringify(lines)}`);
  assert.ok(lines.some((l) => /\u2068\u0410lice \(.{4}\)\u2069/.test(l)), `the arrival of a look-alike is told apart: ${JSON.stringify(lines)}`);
});
