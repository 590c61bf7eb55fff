// Shared helpers for the browser tests: launching Debian's Chromium through playwright-core,
// opening one user per browser context, reading what a user sees, and polling assertions that
// retry until they hold (Playwright's own `expect` is not part of playwright-core).
import { after, before } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
// Polling assertions are shared with the Socket.IO tests.
import { eventually } from "./clients.mjs";

export { eventually };

/** How long a polling assertion or a Playwright action may take before the test fails. */
export const TIMEOUT = 10_000;

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-ui-for-media-stream",
  // WebRTC between pages of one machine: candidates on loopback too (a machine may have no other
  // interface).
  "--allow-loopback-in-peer-connection",
];

/** Chromium's stand-in camera (a test pattern) and microphone (a beep). */
const FAKE_DEVICES = "--use-fake-device-for-media-stream";

/**
 * Chromium arguments for a microphone that talks, in place of the fake one's click (20 ms every
 * half second, which a speaker detector rightly hears as noise): half-second "words" of a gliding
 * tone, loud as a voice close to the microphone, each followed by a short pause, looped.
 * The sound is a WAV file written once per process.
 */
export function talkingMicrophoneArgs() {
  const file = path.join(os.tmpdir(), `noom-talking-${process.pid}.wav`);
  if (!fs.existsSync(file)) {
    const rate = 48_000;
    const samples = new Int16Array(rate * 4);
    let phase = 0;
    for (let i = 0; i < samples.length; i++) {
      const t = (i % rate) / rate; // each second: a word of 0.6 s, then 0.4 s of silence
      const word = Math.floor(i / rate);
      const hz = 180 + 60 * word + 120 * t;
      phase += (2 * Math.PI * hz) / rate;
      const envelope = t < 0.6 ? Math.min(1, t / 0.03, (0.6 - t) / 0.03) : 0;
      samples[i] = Math.round(envelope * 0.4 * 32767 * (Math.sin(phase) + 0.3 * Math.sin(3 * phase)) / 1.3);
    }
    const header = Buffer.alloc(44);
    header.write("RIFF", 0);
    header.writeUInt32LE(36 + samples.byteLength, 4);
    header.write("WAVEfmt ", 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20); // PCM
    header.writeUInt16LE(1, 22); // mono
    header.writeUInt32LE(rate, 24);
    header.writeUInt32LE(rate * 2, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write("data", 36);
    header.writeUInt32LE(samples.byteLength, 40);
    fs.writeFileSync(file, Buffer.concat([header, Buffer.from(samples.buffer)]));
  }
  return [`--use-file-for-fake-audio-capture=${file}`];
}

/**
 * Launches headless Chromium. Pages have a fake camera and microphone and are allowed to use them
 * without asking; with `fakeDevices: false` they have the machine's own devices, on a machine
 * without any (a server, CI) none at all. `executablePath` runs another Chromium launcher (one in
 * a network namespace: see network.mjs).
 */
export function launchBrowser({ fakeDevices = true, extraArgs = [], executablePath = CHROMIUM_PATH } = {}) {
  const args = [...CHROMIUM_ARGS, ...(fakeDevices ? [FAKE_DEVICES] : []), ...extraArgs];
  return chromium.launch({ executablePath, headless: true, args });
}

/**
 * One user: a fresh browser context (own storage, own cookies) with one page at `url`.
 * `errors` collects the page's uncaught exceptions, so a test can assert there were none.
 * `initScripts` run in the page before its own scripts: functions, or `[function, argument]`.
 *
 * @param {import("playwright-core").Browser} browser
 * @param {string} url
 * @param {import("playwright-core").BrowserContextOptions & { waitConnected?: boolean, initScripts?: Array<Function | [Function, unknown]> }} [options]
 */
export async function openUser(browser, url, { waitConnected = true, initScripts = [], ...contextOptions } = {}) {
  const context = await browser.newContext({ locale: "en-US", ...contextOptions });
  context.setDefaultTimeout(TIMEOUT);
  for (const script of initScripts) {
    if (Array.isArray(script)) await context.addInitScript(script[0], script[1]);
    else await context.addInitScript(script);
  }
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error));
  const onWebSocket = watchWebSocket(page);
  await goto(page, url);
  if (waitConnected) await expectConnState(page, "connected");
  return { context, page, errors, onWebSocket, close: () => context.close() };
}

/**
 * Opens `url`, again if the load failed because this machine's network changed under it (tests
 * that make network namespaces add and remove links; a person would reload).
 */
async function goto(page, url) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.goto(url);
    } catch (error) {
      if (attempt >= 3 || !String(error.message).includes("ERR_NETWORK_CHANGED")) throw error;
    }
  }
}

/**
 * Resolves once the page's Socket.IO connection runs over WebSocket (a frame came in on it). The
 * client connects over WebSocket first; tests that cut the connection wait for this, as a person
 * would have been connected by then.
 */
function watchWebSocket(page) {
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  page.on("websocket", (ws) => {
    if (!ws.url().includes("/socket.io/")) return;
    ws.on("framereceived", () => resolve());
  });
  return () => Promise.race([
    done,
    new Promise((_, reject) => setTimeout(() => reject(new Error("the connection never ran over WebSocket")), TIMEOUT).unref()),
  ]);
}

/** The trimmed text of every element `locator` matches (no waiting). */
export async function texts(locator) {
  return (await locator.allTextContents()).map((s) => s.trim());
}

/** Waits until the first element `locator` matches has exactly this (trimmed) text. */
export function expectText(locator, expected, message) {
  return eventually(async () => {
    const [first] = await texts(locator);
    assert.equal(first, expected, message ?? `text of ${locator}`);
  });
}

/** Waits until the elements `locator` matches have exactly these texts, in this order. */
export function expectTexts(locator, expected, message) {
  return eventually(async () => {
    assert.deepEqual(await texts(locator), expected, message ?? `texts of ${locator}`);
  });
}

/** Waits until `locator` matches exactly `n` elements. */
export function expectCount(locator, n, message) {
  return eventually(async () => {
    assert.equal(await locator.count(), n, message ?? `number of ${locator}`);
  });
}

/** Waits until `locator`'s first element is visible. */
export function expectVisible(locator, message) {
  return eventually(async () => {
    assert.ok(await locator.first().isVisible(), message ?? `${locator} should be visible`);
  });
}

/** Waits until `locator` matches nothing visible. */
export function expectHidden(locator, message) {
  return eventually(async () => {
    assert.ok(!(await locator.first().isVisible()), message ?? `${locator} should be hidden`);
  });
}

/** Waits until the page's (decoded) path is `path`. */
export function expectPath(page, path) {
  return eventually(() => {
    assert.equal(decodeURIComponent(new URL(page.url()).pathname), path, "the address bar's path");
  });
}

/** Waits until #conn-status says `state` ("connected", "disconnected" or "reconnecting"). */
export function expectConnState(page, state) {
  return eventually(async () => {
    assert.equal(await page.locator("#conn-status").getAttribute("data-state", { timeout: TIMEOUT }), state, "#conn-status data-state");
  });
}

/** The nicknames in the participants list, in the order shown. */
export function people(page) {
  return texts(page.locator("#participants li[data-id] .nick"));
}

/** Waits until the participants list shows exactly these nicknames (in any order). */
export function expectPeople(page, nicknames, message) {
  return eventually(async () => {
    assert.deepEqual((await people(page)).sort(), [...nicknames].sort(), message ?? "the participants list");
  });
}

/** The participants list as `{ id, nick }` pairs. */
export function participants(page) {
  return page.locator("#participants li[data-id]").evaluateAll((items) =>
    items.map((li) => ({ id: li.getAttribute("data-id"), nick: li.querySelector(".nick")?.textContent?.trim() ?? "" })),
  );
}

/** The user messages in the chat log: sender, text and state classes. */
export function messages(page) {
  return page.locator("#chat-log li.msg").evaluateAll((items) =>
    items.map((li) => ({
      sender: li.querySelector(".msg-sender")?.textContent?.trim() ?? "",
      text: li.querySelector(".msg-text")?.textContent ?? "",
      own: li.classList.contains("own"),
      state: ["pending", "sent", "failed"].filter((c) => li.classList.contains(c)),
    })),
  );
}

/** The system lines in the chat log. */
export function systemLines(page) {
  return texts(page.locator("#chat-log li.system"));
}

/** Waits until the chat log shows a message from `sender` with exactly `text`, someone else's. */
export function expectMessageFrom(page, sender, text) {
  return eventually(async () => {
    const found = (await messages(page)).filter((m) => !m.own && m.sender === sender && m.text === text);
    assert.equal(found.length, 1, `one message "${text}" from ${sender} in ${JSON.stringify(await messages(page))}`);
  });
}

/** Waits until the number of system lines mentioning `name` is `n`. */
export function expectSystemLinesAbout(page, name, n) {
  return eventually(async () => {
    const lines = await systemLines(page);
    assert.equal(lines.filter((l) => l.includes(name)).length, n, `system lines about ${name} in ${JSON.stringify(lines)}`);
  });
}

/**
 * Enters a room from the lobby form and waits until the room view shows it.
 *
 * @param {import("playwright-core").Page} page
 * @param {{ nickname?: string, room?: string, unlisted?: boolean }} what
 */
export async function enterRoom(page, { nickname, room, unlisted = false }) {
  await expectVisible(page.locator("#lobby"));
  if (nickname !== undefined) await page.locator("#nickname").fill(nickname);
  if (room !== undefined) await page.locator("#room-name").fill(room);
  await page.locator("#unlisted").setChecked(unlisted);
  await page.locator("#enter-room").click();
  const asked = room ?? (await page.locator("#room-name").inputValue());
  // A new unlisted room is made under the name asked for and a random end: its link.
  await expectInRoom(page, unlisted ? new RegExp(`^${asked.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(-[A-Za-z0-9]{10})?$`) : asked);
}

/** Waits until the page shows the room view of `room` (a name, or a pattern of one), not the lobby. */
export async function expectInRoom(page, room) {
  try {
    await expectVisible(page.locator("#room-view"));
  } catch (error) {
    const banner = (await page.locator("#error").isVisible()) ? await page.locator("#error").textContent() : null;
    error.message = `the room view of "${room}" should be visible (#error says: ${JSON.stringify(banner)}): ${error.message}`;
    throw error;
  }
  await expectHidden(page.locator("#lobby"), "the lobby should be hidden in a room");
  if (room instanceof RegExp) {
    await eventually(async () => assert.match((await texts(page.locator("#room-title")))[0] ?? "", room));
  } else {
    await expectText(page.locator("#room-title"), room);
  }
}

/** Waits until the page shows the lobby (and not a room). */
export async function expectInLobby(page) {
  await expectVisible(page.locator("#lobby"), "the lobby should be visible");
  await expectHidden(page.locator("#room-view"), "the room view should be hidden in the lobby");
}

/** Types a message and sends it, with Enter (default) or the Send button. */
export async function sendMessage(page, text, { via = "enter" } = {}) {
  const box = page.locator("#message");
  await box.fill(text);
  if (via === "enter") await box.press("Enter");
  else await page.locator("#send").click();
}

/**
 * Starts recording, in the page, the classes each own message has when it is added to the chat
 * log and every class it gets afterwards (a MutationObserver sees a state however short it lasts).
 * `ownMessageHistory(page)` reads the record: one entry per own message, `{ text, states }`.
 */
export function recordOwnMessageStates(page) {
  return page.evaluate(() => {
    const log = document.querySelector("#chat-log");
    const record = [];
    const stateOf = (li) => ["pending", "sent", "failed"].filter((c) => li.classList.contains(c)).join(" ");
    const note = (li) => {
      const entry = record.find((e) => e.node === li);
      const state = stateOf(li);
      if (!entry) record.push({ node: li, states: [state] });
      else if (entry.states[entry.states.length - 1] !== state) entry.states.push(state);
    };
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.type === "childList") {
          for (const n of m.addedNodes) if (n instanceof HTMLElement && n.matches("li.msg.own")) note(n);
        } else if (m.target instanceof HTMLElement && m.target.matches("li.msg.own")) {
          note(m.target);
        }
      }
    }).observe(log, { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });
    window.__ownMessageRecord = record;
  });
}

export function ownMessageHistory(page) {
  return page.evaluate(() =>
    (window.__ownMessageRecord ?? []).map((e) => ({
      text: e.node.querySelector(".msg-text")?.textContent ?? "",
      states: e.states,
    })),
  );
}

/** Asserts a page threw no uncaught exception. */
export function assertNoPageErrors(user, who = "page") {
  assert.deepEqual(user.errors.map((e) => String(e)), [], `uncaught errors in ${who}`);
}

/**
 * Launches Chromium for the enclosing test file and closes it at the end; the returned stand-in
 * opens contexts (pass it to `openUser`). `options` as for `launchBrowser`.
 */
export function useBrowser(options) {
  let browser;
  before(async () => {
    browser = await launchBrowser(options);
  });
  after(async () => {
    await browser?.close();
  });
  return { newContext: (...args) => browser.newContext(...args) };
}
