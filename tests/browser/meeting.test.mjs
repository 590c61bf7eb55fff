// Running a meeting in real browsers: a host locks the room and a newcomer is kept out and told
// why; a waiting room lets one guest in and turns another away; a raised hand shows on every page; a host mutes a guest and the others stop hearing them,
// even when the guest's page sends its microphone anyway; a host's tools work by keyboard, in
// English and Korean, and axe finds nothing serious in them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useServer } from "../support/server.mjs";
import { assertNoPageErrors, enterRoom, eventually, expectText, expectVisible, openUser, useBrowser } from "../support/browser.mjs";
import { seriousViolations } from "../support/axe.mjs";
import { CALL_TIMEOUT, expectHearing, joinCall, openCallUser } from "../support/rtc.mjs";

const server = useServer({ args: ["--stun-urls", "", "--media-address", "127.0.0.1", "--pairs", "server"] });
const browser = useBrowser();

/** What a page receives of `id`'s voice: packets, and the level now (0 to 1). */
function voiceOf(page, id) {
  return page.evaluate(async (id) => {
    let out = null;
    for (const { pc } of window.__rtc?.connections ?? []) {
      if (pc.connectionState === "closed") continue;
      // Each m-section's stream (the person whose track it carries), by its mid.
      const streamOf = new Map();
      for (const section of (pc.remoteDescription?.sdp ?? "").split(/\r?\nm=/).slice(1)) {
        const mid = section.match(/\na=mid:(\S+)/)?.[1];
        if (mid) streamOf.set(mid, section.match(/\na=msid:(\S+)/)?.[1]);
      }
      const tracks = pc.getTransceivers()
        .filter((t) => t.receiver.track.kind === "audio" && streamOf.get(t.mid) === id)
        .map((t) => t.receiver.track.id);
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio" && tracks.includes(s.trackIdentifier)) {
          out = { packets: s.packetsReceived ?? 0, level: s.audioLevel ?? 0 };
        }
      });
    }
    return out;
  }, id);
}

test("a host mutes a guest: the others stop hearing them, even when the guest's page sends its microphone anyway", { timeout: 120_000 }, async () => {
  const users = [];
  try {
    const ids = {};
    for (const name of ["Hana", "Bo", "Cy"]) {
      const user = await openCallUser(browser, server.url);
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "muted by a host" });
      ids[name] = await joinCall(user.page, { mic: true });
    }
    const [hana, bo, cy] = users;
    await expectHearing(cy.page, 2, { who: "Cy" });
    const heard = await voiceOf(cy.page, ids.Bo);
    await eventually(async () => {
      const now = await voiceOf(cy.page, ids.Bo);
      assert.ok(now.packets > heard.packets + 20, `Cy receives Bo's voice: ${JSON.stringify(now)}`);
    }, { timeout: CALL_TIMEOUT });

    // Hana, by keyboard: Bo's actions, then Mute.
    const more = hana.page.locator(`#participants [data-focus-key="more:${ids.Bo}"]`);
    await more.focus();
    await hana.page.keyboard.press("Enter");
    const mute = hana.page.locator('#person-actions [data-key="meeting.mute"]');
    await expectVisible(mute);
    await mute.focus();
    await hana.page.keyboard.press("Enter");

    // Bo's page obeys and says so; Bo's own attempt to unmute is refused by the page.
    await eventually(async () => assert.equal(await bo.page.locator("#call-mic").getAttribute("aria-pressed"), "false"));
    await expectText(bo.page.locator("#call-error-text"), "A host muted you. You can speak again once a host asks you to unmute.");
    await expectVisible(cy.page.locator(`#participants [data-id="${ids.Bo}"] .host-muted`), "Cy sees Bo muted by a host");

    // A page that sends anyway (its microphone turned back on under the app): nothing reaches Cy.
    await bo.page.evaluate(() => {
      for (const { pc } of window.__rtc.connections) {
        for (const sender of pc.getSenders()) if (sender.track?.kind === "audio") sender.track.enabled = true;
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const before = await voiceOf(cy.page, ids.Bo);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = await voiceOf(cy.page, ids.Bo);
    assert.equal(after.packets, before.packets, `no packet of Bo's voice reaches Cy: ${JSON.stringify([before, after])}`);
    assert.ok(after.level < 0.01, `Cy hears silence from Bo: ${JSON.stringify(after)}`);
    const hanaHears = await voiceOf(cy.page, ids.Hana);
    await eventually(async () => assert.ok((await voiceOf(cy.page, ids.Hana)).packets > hanaHears.packets, "Cy still hears Hana"));

    // Asked to unmute, Bo chooses to: Cy hears Bo again.
    await hana.page.locator(`#participants [data-focus-key="more:${ids.Bo}"]`).click();
    await hana.page.locator('#person-actions [data-key="meeting.askUnmute"]').click();
    await expectText(bo.page.locator("#call-error-text"), "A host asks you to unmute.");
    await bo.page.locator("#call-error-action").click();
    await eventually(async () => assert.equal(await bo.page.locator("#call-mic").getAttribute("aria-pressed"), "true"));
    const again = await voiceOf(cy.page, ids.Bo);
    await eventually(async () => assert.ok((await voiceOf(cy.page, ids.Bo)).packets > again.packets + 20, "Cy hears Bo again"));
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});

test("a host locks the room: a third page cannot enter and is told why; unlocked, it can", async () => {
  const users = [];
  try {
    const hana = await openUser(browser, server.url);
    users.push(hana);
    await enterRoom(hana.page, { nickname: "Hana", room: "locked by a host" });
    const bo = await openUser(browser, server.url);
    users.push(bo);
    await enterRoom(bo.page, { nickname: "Bo", room: "locked by a host" });
    await expectVisible(hana.page.locator("#host-tools"), "the host has the host's tools");
    assert.equal(await bo.page.locator("#host-tools").isVisible(), false, "a guest has none");
    await expectText(bo.page.locator(".host-badge"), "Host");

    await hana.page.locator("#host-lock").click();
    for (const user of users) await expectVisible(user.page.locator("#room-locked"), "everyone sees the room locked");
    await expectText(bo.page.locator("#chat-log .system").last(), "A host locked the room: nobody new can enter");

    const cy = await openUser(browser, server.url);
    users.push(cy);
    await cy.page.locator("#nickname").fill("Cy");
    await cy.page.locator("#room-name").fill("locked by a host");
    await cy.page.locator("#enter-room").click();
    await expectText(cy.page.locator("#error-text"), "This room is locked: nobody new can enter.");
    await expectVisible(cy.page.locator("#lobby"), "Cy stays in the lobby");

    await hana.page.locator("#host-lock").click();
    await eventually(async () => assert.equal(await bo.page.locator("#room-locked").isVisible(), false));
    await enterRoom(cy.page, { nickname: "Cy", room: "locked by a host" });

    // A password: the host sets it, by keyboard; a newcomer is asked for it, and enters with it.
    await hana.page.locator("#host-password").click();
    await hana.page.locator("#host-password-input").fill("open sesame");
    await hana.page.keyboard.press("Enter");
    await expectVisible(bo.page.locator("#room-password-tag"), "everyone sees the room has a password");
    const dee = await openUser(browser, server.url);
    users.push(dee);
    await dee.page.locator("#nickname").fill("Dee");
    await dee.page.locator("#room-name").fill("locked by a host");
    await dee.page.locator("#enter-room").click();
    await expectText(dee.page.locator("#error-text"), "This room needs its password.");
    await expectVisible(dee.page.locator("#room-password"));
    await dee.page.locator("#room-password").fill("open sesame");
    await dee.page.keyboard.press("Enter");
    await expectVisible(dee.page.locator("#room-view"), "with the password, Dee is in");
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});

test("a raised hand shows on every page, in the list and on the tile; a host's tools pass axe, in Korean too", async () => {
  const users = [];
  try {
    const ids = {};
    for (const name of ["Hana", "Bo"]) {
      const user = await openCallUser(browser, server.url, { locale: name === "Bo" ? "ko-KR" : "en-US" });
      users.push(user);
      await enterRoom(user.page, { nickname: name, room: "hands up" });
      ids[name] = await joinCall(user.page);
    }
    const [hana, bo] = users;
    await bo.page.locator("#hand").click();
    await eventually(async () => assert.equal(await bo.page.locator("#hand").getAttribute("aria-pressed"), "true"));
    await expectText(bo.page.locator("#hand-label"), "손 내리기");
    for (const user of users) {
      await expectVisible(user.page.locator(`#participants [data-id="${ids.Bo}"] .person-hand`), "the hand in the list");
      await expectVisible(user.page.locator(`#tiles .tile[data-id="${ids.Bo}"] .tile-hand`), "the hand on the tile");
    }
    await expectText(hana.page.locator("#hands"), "Raised hands: Bo");
    await bo.page.locator("#react").click();
    await bo.page.locator('#reactions [data-emoji="👏"]').click();
    await expectVisible(hana.page.locator(`#tiles .tile[data-id="${ids.Bo}"] .reaction[data-emoji="👏"]`), "Bo's reaction floats over Bo's tile");
    await expectText(hana.page.locator("#reaction-status"), "Bo: Clapping");
    await hana.page.locator(`#participants [data-focus-key="more:${ids.Bo}"]`).click();
    await expectVisible(hana.page.locator("#person-actions"));
    assert.deepEqual(await seriousViolations(hana.page), [], "the host's view, actions open");
    await hana.page.keyboard.press("Escape");
    await eventually(async () => assert.equal(await hana.page.locator("#person-actions").isVisible(), false));
    assert.equal(await hana.page.evaluate(() => document.activeElement?.dataset.focusKey), `more:${ids.Bo}`, "the focus is back on Bo's button");
    assert.deepEqual(await seriousViolations(bo.page), [], "the guest's view, in Korean");

    // The speaker the others' sound plays on, where the browser can choose it.
    await hana.page.locator("#call-settings").click();
    const speaker = hana.page.locator("#call-speaker-select");
    await expectVisible(speaker);
    const second = await speaker.locator("option").nth(1).getAttribute("value");
    await speaker.selectOption(second);
    await eventually(async () => {
      const sink = await hana.page.locator(`#tiles .tile[data-id="${ids.Bo}"] video`).evaluate((v) => v.sinkId);
      assert.equal(sink, second, "Bo's tile plays on the speaker picked");
    });
    await hana.page.keyboard.press("Escape");
    await bo.page.locator("#hand").click();
    await eventually(async () => assert.equal(await hana.page.locator(`#participants .person-hand`).count(), 0));
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});

test("with the waiting room on, a host lets one guest in and turns another away, and each is told", async () => {
  const users = [];
  try {
    const open = async (locale = "en-US") => {
      const user = await openUser(browser, server.url, { locale });
      users.push(user);
      return user;
    };
    const hana = await open();
    await enterRoom(hana.page, { nickname: "Hana", room: "waiting for a host" });
    await hana.page.locator("#host-waiting-room").click();
    await eventually(async () => assert.equal(await hana.page.locator("#host-waiting-room").getAttribute("aria-pressed"), "true"));

    const waiters = {};
    for (const name of ["Bo", "Cy"]) {
      const user = await open();
      await user.page.locator("#nickname").fill(name);
      await user.page.locator("#room-name").fill("waiting for a host");
      await user.page.locator("#enter-room").click();
      await expectVisible(user.page.locator("#waiting-view"), `${name} waits`);
      await expectText(user.page.locator("#waiting-text"), "A host of “waiting for a host” will let you in soon.");
      waiters[name] = user;
    }
    await expectText(hana.page.locator("#waiting-list-title"), "Waiting to enter (2)");
    await expectText(hana.page.locator("#chat-log .system").last(), "\u2068Cy\u2069 is waiting to enter");
    assert.deepEqual(await seriousViolations(hana.page), [], "the host's view with people waiting");
    assert.deepEqual(await seriousViolations(waiters.Bo.page), [], "the waiting page");

    await hana.page.getByRole("button", { name: "Admit: Bo" }).click();
    await expectVisible(waiters.Bo.page.locator("#room-view"), "Bo is let in");
    await expectText(waiters.Bo.page.locator("#room-title"), "waiting for a host");
    await hana.page.getByRole("button", { name: "Turn away: Cy" }).click();
    await expectVisible(waiters.Cy.page.locator("#lobby"), "Cy is back in the lobby");
    await expectText(waiters.Cy.page.locator("#error-text"), "A host of “waiting for a host” did not let you in.");
    await eventually(async () => assert.equal(await hana.page.locator("#waiting-list").isVisible(), false, "nobody waits"));
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});

test("a room opened with a host link: whoever opens the link is a host, and the key leaves the address bar", async () => {
  const users = [];
  try {
    const hana = await openUser(browser, server.url);
    users.push(hana);
    await hana.page.locator("#with-host-key").check();
    await enterRoom(hana.page, { nickname: "Hana", room: "with a host link" });
    await expectVisible(hana.page.locator("#copy-host-link"), "its opener can copy the host link");
    const key = await hana.page.evaluate(() => sessionStorage.getItem("noom.hostKey:with a host link"));
    assert.match(key ?? "", /^[A-Za-z0-9_-]{22}$/);

    const bo = await openUser(browser, `${server.url}/r/with%20a%20host%20link?host=${key}`);
    users.push(bo);
    await enterRoom(bo.page, { nickname: "Bo" });
    await expectVisible(bo.page.locator("#host-tools"), "Bo, by the host link, hosts the room");
    assert.equal(new URL(bo.page.url()).search, "", "the key is gone from the address bar");
    await expectVisible(bo.page.locator("#copy-host-link"), "and can pass the link on");

    const cy = await openUser(browser, `${server.url}/r/with%20a%20host%20link?host=${"A".repeat(22)}`);
    users.push(cy);
    await cy.page.locator("#nickname").fill("Cy");
    await cy.page.locator("#enter-room").click();
    await expectText(cy.page.locator("#error-text"), "That host link is not this room's.");
    for (const [i, user] of users.entries()) assertNoPageErrors(user, `page ${i}`);
  } finally {
    for (const user of users) await user.close();
  }
});
