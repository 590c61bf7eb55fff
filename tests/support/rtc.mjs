// Helpers for the call tests: a script that runs in every page before the app does and records
// each RTCPeerConnection the app creates and each local track it captures, and helpers that read
// that record (WebRTC statistics per connection, candidates, tracks) and drive the call UI.
//
// The app has no test hooks: the record comes from wrapping `RTCPeerConnection` and
// `navigator.mediaDevices.getUserMedia` / `getDisplayMedia` in the page, which the app cannot
// tell from the real ones.
import assert from "node:assert/strict";
import { enterRoom, eventually, expectVisible, openUser, TIMEOUT } from "./browser.mjs";

/** How long a call may take to connect and carry media before a test fails. */
export const CALL_TIMEOUT = 30_000;

/**
 * Runs in the page before any of its scripts (`context.addInitScript`). Fills `window.__rtc`:
 * `connections`: one entry per RTCPeerConnection ever created, `{ pc, config, candidates, log }`
 * (`candidates`: the local ICE candidates it gathered, as strings; `log`: its state changes and
 * what the app asked of it, with times, for failure messages); `tracks`: every local
 * MediaStreamTrack getUserMedia or getDisplayMedia handed out; `marks`: times
 * (performance.now()) of the first click on elements by id, for the benchmark.
 * With `{ noDevices: true }`, getUserMedia fails as it does on a machine without camera or
 * microphone (NotFoundError) and enumerateDevices lists nothing.
 */
export function rtcInitScript({ noDevices = false } = {}) {
  const record = { connections: [], tracks: [], marks: {} };
  Object.defineProperty(window, "__rtc", { value: record });

  const Native = window.RTCPeerConnection;
  if (Native) {
    class RecordedPeerConnection extends Native {
      constructor(...args) {
        super(...args);
        const entry = { pc: this, config: args[0] ?? {}, candidates: [], log: [], created: performance.now() };
        record.connections.push(entry);
        const note = (what) => entry.log.push(`${Math.round(performance.now() - entry.created)} ${what}`);
        entry.note = note;
        this.addEventListener("icecandidate", (event) => {
          if (event.candidate && event.candidate.candidate) entry.candidates.push(event.candidate.candidate);
          else note("end of candidates");
        });
        for (const name of ["signalingstatechange", "icegatheringstatechange", "iceconnectionstatechange", "connectionstatechange", "negotiationneeded"]) {
          this.addEventListener(name, () => note(`${name} ${{
            signalingstatechange: this.signalingState,
            icegatheringstatechange: this.iceGatheringState,
            iceconnectionstatechange: this.iceConnectionState,
            connectionstatechange: this.connectionState,
          }[name] ?? ""}`));
        }
      }
    }
    // What the app asks of each connection, in order (for the tests' failure messages).
    for (const method of ["setLocalDescription", "setRemoteDescription", "addIceCandidate", "restartIce", "close"]) {
      const original = Native.prototype[method];
      RecordedPeerConnection.prototype[method] = function (...args) {
        const entry = record.connections.find((e) => e.pc === this);
        const arg = args[0];
        const what = method === "addIceCandidate" ? (arg && arg.candidate ? "" : " (end)") : arg && arg.type ? ` ${arg.type}` : "";
        if (!(method === "addIceCandidate" && what === "")) entry?.note(`${method}${what}`);
        const result = original.apply(this, args);
        if (result && typeof result.then === "function") {
          result.then(undefined, (error) => entry?.note(`${method}${what} failed: ${error?.name}: ${error?.message}`));
        }
        return result;
      };
    }
    window.RTCPeerConnection = RecordedPeerConnection;
  }

  const devices = navigator.mediaDevices;
  if (devices) {
    const wrap = (name) => {
      const original = devices[name]?.bind(devices);
      if (!original) return;
      devices[name] = async (...args) => {
        if (noDevices && name === "getUserMedia") {
          throw new DOMException("Requested device not found", "NotFoundError");
        }
        const stream = await original(...args);
        record.tracks.push(...stream.getTracks().map((track) => ({ track, source: name })));
        return stream;
      };
    };
    wrap("getUserMedia");
    wrap("getDisplayMedia");
    if (noDevices) devices.enumerateDevices = async () => [];
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target.closest("[id]") : null;
    if (target && !(target.id in record.marks)) record.marks[target.id] = performance.now();
  }, true);
}

/**
 * One user whose page records its peer connections and local tracks (see `rtcInitScript`): as
 * `openUser`, with the same options plus `noDevices`.
 */
export function openCallUser(browser, url, { noDevices = false, ...options } = {}) {
  return openUser(browser, url, { ...options, initScripts: [[rtcInitScript, { noDevices }]] });
}

/**
 * The page's peer connections, in order of creation: `{ index, connectionState,
 * iceConnectionState, iceGatheringState, signalingState, iceTransportPolicy, candidates, log }`.
 * `closed` ones included.
 */
export function connections(page) {
  return page.evaluate(() =>
    (window.__rtc?.connections ?? []).map(({ pc, config, candidates, log }, index) => ({
      index,
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      iceGatheringState: pc.iceGatheringState,
      signalingState: pc.signalingState,
      iceTransportPolicy: config.iceTransportPolicy ?? "all",
      candidates: [...candidates],
      log: [...log],
    })),
  );
}

/**
 * A summary of the page's peer connections for a failure message: states, candidates gathered,
 * and what happened to each (the record's log), one connection a paragraph.
 */
export async function describeConnections(page) {
  const all = await connections(page).catch((error) => [{ error: String(error) }]);
  return all.map((c) => c.error ?? [
    `connection ${c.index}: ${c.connectionState}/${c.iceConnectionState}, gathering ${c.iceGatheringState}, signaling ${c.signalingState}, ${c.candidates.length} local candidates`,
    ...c.log.slice(-40).map((line) => `    ${line}`),
  ].join("\n")).join("\n") || "no peer connections";
}

/** Runs `wait`; if it fails, adds what the page's peer connections went through to the error. */
async function explained(page, who, wait) {
  try {
    return await wait();
  } catch (error) {
    throw explain(error, `\n${who}'s peer connections:\n${await describeConnections(page)}`);
  }
}

/** `error`, with `extra` after its message (and in its stack, which is what a report shows). */
export function explain(error, extra) {
  if (typeof error.stack === "string" && error.stack.includes(error.message)) error.stack = error.stack.replace(error.message, error.message + extra);
  error.message += extra;
  return error;
}

/** The page's peer connections that are not closed. */
export async function liveConnections(page) {
  return (await connections(page)).filter((c) => c.signalingState !== "closed" && c.connectionState !== "closed");
}

/**
 * What the page receives from each other person and shows on a tile: `{ index, framesDecoded,
 * bytesReceived, audioSamples }` per remote stream, that is per person, whether each has a
 * connection of its own (a mesh) or all come over one (the media server). `index` names the
 * stream (`<connection>:<stream id>`); `framesDecoded` and `bytesReceived` are summed over its
 * inbound video, `audioSamples` is the audio samples it received (`totalSamplesReceived`); 0 for
 * none. Tracks no longer received (a stopped transceiver), closed connections and tracks no tile
 * shows (a call of two's idle path to the server, or the direct one it left) are left out.
 */
export function inboundMedia(page) {
  return page.evaluate(async () => {
    const out = new Map();
    const shown = new Set([...document.querySelectorAll("#tiles .tile video")].flatMap((v) => v.srcObject?.getTracks().map((t) => t.id) ?? []));
    for (const [index, { pc }] of (window.__rtc?.connections ?? []).entries()) {
      if (pc.signalingState === "closed" || pc.connectionState === "closed") continue;
      // Each m-section's stream id (a=msid), by its mid.
      const streamOf = new Map();
      for (const section of (pc.remoteDescription?.sdp ?? "").split(/\r?\nm=/).slice(1)) {
        const mid = section.match(/\na=mid:(\S+)/)?.[1];
        const msid = section.match(/\na=msid:(\S+)/)?.[1];
        if (mid) streamOf.set(mid, msid ?? "-");
      }
      const receiving = new Map();
      for (const t of pc.getTransceivers()) {
        if (t.stopped || !["recvonly", "sendrecv"].includes(t.currentDirection ?? "") || !shown.has(t.receiver.track.id)) continue;
        receiving.set(t.receiver.track.id, `${index}:${streamOf.get(t.mid) ?? "-"}`);
      }
      for (const key of receiving.values()) if (!out.has(key)) out.set(key, { index: key, framesDecoded: 0, bytesReceived: 0, audioSamples: 0 });
      (await pc.getStats()).forEach((s) => {
        const entry = s.type === "inbound-rtp" && out.get(receiving.get(s.trackIdentifier));
        if (!entry) return;
        if (s.kind === "video") {
          entry.framesDecoded += s.framesDecoded ?? 0;
          entry.bytesReceived += s.bytesReceived ?? 0;
        } else if (s.kind === "audio") {
          entry.audioSamples += s.totalSamplesReceived ?? 0;
        }
      });
    }
    return [...out.values()];
  });
}

/**
 * Waits until the page receives from exactly `n` others and decodes video from each: its
 * `framesDecoded` is above zero and higher than when first read here (frames keep coming, not one
 * frame and a freeze).
 */
export function expectDecoding(page, n, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  const first = new Map();
  return explained(page, who, () => eventually(async () => {
    const stats = await inboundMedia(page);
    for (const s of stats) if (!first.has(s.index) && s.framesDecoded > 0) first.set(s.index, s.framesDecoded);
    assert.equal(stats.length, n, `${who}: people received from ${JSON.stringify(stats)}`);
    for (const s of stats) {
      assert.ok(s.framesDecoded > 0 && s.framesDecoded > first.get(s.index),
        `${who}: stream ${s.index} decodes rising video frames (first seen ${first.get(s.index) ?? 0}, now ${s.framesDecoded}) in ${JSON.stringify(stats)}`);
    }
  }, { timeout, interval: 250 }));
}

/**
 * Waits until the page receives from exactly `n` others and hears each: the audio samples
 * received are above zero and rising.
 */
export function expectHearing(page, n, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  const first = new Map();
  return explained(page, who, () => eventually(async () => {
    const stats = await inboundMedia(page);
    for (const s of stats) if (!first.has(s.index) && s.audioSamples > 0) first.set(s.index, s.audioSamples);
    assert.equal(stats.length, n, `${who}: people received from ${JSON.stringify(stats)}`);
    for (const s of stats) {
      assert.ok(s.audioSamples > 0 && s.audioSamples > first.get(s.index),
        `${who}: stream ${s.index} receives rising audio (first seen ${first.get(s.index) ?? 0} samples, now ${s.audioSamples})`);
    }
  }, { timeout, interval: 250 }));
}

/**
 * For each live peer connection, the candidate pair ICE selected (the transport's
 * `selectedCandidatePairId`, else the nominated pair that succeeded): `{ index, state, local,
 * remote }` with the candidate types (`host`, `srflx`, `prflx`, `relay`), or `pair: null`.
 */
export function selectedPairs(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const [index, { pc }] of (window.__rtc?.connections ?? []).entries()) {
      if (pc.signalingState === "closed" || pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) ?? pair;
      });
      if (!pair) {
        stats.forEach((s) => {
          if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
        });
      }
      const candidate = (id) => {
        const c = id && stats.get(id);
        return c ? { type: c.candidateType, protocol: c.protocol, address: c.address ?? c.ip, port: c.port, relayProtocol: c.relayProtocol } : null;
      };
      out.push({
        index,
        pair: pair && { state: pair.state, nominated: pair.nominated, local: candidate(pair.localCandidateId), remote: candidate(pair.remoteCandidateId) },
      });
    }
    return out;
  });
}

/** The page's connected paths: `server`, to the media server's port `port`; `direct`, to another browser. */
export async function paths(page, port) {
  const out = { server: 0, direct: 0 };
  for (const { pair } of await selectedPairs(page)) {
    if (pair?.state !== "succeeded") continue;
    if (pair.remote?.port === port) out.server++;
    else out.direct++;
  }
  return out;
}

/** Waits until the page's connected paths (see `paths`) are `expected`; on failure, says its
 * connections. */
export function expectPaths(page, port, expected, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  return explained(page, who, () => eventually(async () => assert.deepEqual(await paths(page, port), expected, `${who}'s connected paths`), { timeout, interval: 250 }));
}

/** Every local track the page captured, `{ kind, label, readyState, source }`. */
export function localTracks(page) {
  return page.evaluate(() =>
    (window.__rtc?.tracks ?? []).map(({ track, source }) => ({ kind: track.kind, label: track.label, readyState: track.readyState, source })),
  );
}

/**
 * Waits until every local track the page ever captured has ended (the camera light is off and
 * the microphone closed). With `atLeast`, also requires that many tracks were captured at all.
 */
export function expectLocalTracksEnded(page, { who = "page", atLeast = 1 } = {}) {
  return eventually(async () => {
    const tracks = await localTracks(page);
    assert.ok(tracks.length >= atLeast, `${who}: captured at least ${atLeast} local tracks: ${JSON.stringify(tracks)}`);
    const live = tracks.filter((t) => t.readyState !== "ended");
    assert.deepEqual(live, [], `${who}: local tracks still live`);
  });
}

/** Time (performance.now() in the page) of the first click on the element with this id, or null. */
export function clickMark(page, id) {
  return page.evaluate((id) => window.__rtc?.marks[id] ?? null, id);
}

/** The call's tiles as shown: `{ id, self, name, audio, video, screen, speaking, connection, muted }`. */
export function tiles(page) {
  return page.locator("#tiles .tile").evaluateAll((items) =>
    items.map((tile) => {
      const muted = tile.querySelector(".tile-muted");
      return {
        id: tile.getAttribute("data-id"),
        self: tile.hasAttribute("data-self"),
        name: tile.querySelector(".tile-name")?.textContent?.trim() ?? "",
        audio: tile.getAttribute("data-audio"),
        video: tile.getAttribute("data-video"),
        screen: tile.getAttribute("data-screen"),
        speaking: tile.getAttribute("data-speaking"),
        connection: tile.getAttribute("data-connection"),
        muted: !!muted && muted.checkVisibility(),
      };
    }),
  );
}

/**
 * Starts recording, in the page, each label other than "connected" that a tile's connection
 * takes: what the tile then says ("Connecting…", "Failed"). `tileLabelsSince` reads the record.
 */
export function watchTileLabels(page) {
  return page.evaluate(() => {
    window.__tileLabels?.observer.disconnect();
    const record = { seen: {} };
    record.observer = new MutationObserver((changes) => {
      for (const change of changes) {
        const label = change.target.getAttribute("data-connection");
        if (label && label !== "connected") (record.seen[change.target.dataset.id] ??= []).push(label);
      }
    });
    record.observer.observe(document.querySelector("#tiles"), { subtree: true, attributes: true, attributeFilter: ["data-connection"] });
    window.__tileLabels = record;
  });
}

/** Since `watchTileLabels`: per person id, the labels other than "connected" their tile took. */
export function tileLabelsSince(page) {
  return page.evaluate(() => window.__tileLabels?.seen ?? {});
}

/** A tile, by the socket id of its participant. */
export function tile(page, id) {
  return page.locator(`#tiles .tile[data-id="${id}"]`);
}

/** Waits until the page shows exactly the tiles of these socket ids (any order). */
export function expectTiles(page, ids, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  return eventually(async () => {
    const shown = (await tiles(page)).map((t) => t.id);
    assert.deepEqual([...shown].sort(), [...ids].sort(), `${who}: tiles shown`);
    assert.equal(await page.locator("#tiles").getAttribute("data-count"), String(ids.length), `${who}: #tiles data-count`);
  }, { timeout });
}

/** Waits until the tiles of these ids (others') say their connection is "connected". */
export function expectTilesConnected(page, ids, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  return explained(page, who, () => eventually(async () => {
    const shown = await tiles(page);
    for (const id of ids) {
      const t = shown.find((x) => x.id === id);
      assert.ok(t, `${who}: a tile for ${id} in ${JSON.stringify(shown)}`);
      assert.equal(t.connection, "connected", `${who}: data-connection of ${t.name}'s tile`);
    }
  }, { timeout }));
}

/**
 * Waits until the tiles of these ids play video: their `video` element has a picture
 * (`videoWidth` above zero, a current frame) and is not paused, with its time moving on.
 */
export function expectTilesPlaying(page, ids, { who = "page", timeout = CALL_TIMEOUT } = {}) {
  const seen = new Map();
  return eventually(async () => {
    for (const id of ids) {
      const state = await tile(page, id).locator("video").first().evaluate((v) => ({
        width: v.videoWidth, readyState: v.readyState, paused: v.paused, time: v.currentTime,
      }));
      assert.ok(state.width > 0 && state.readyState >= 2 && !state.paused, `${who}: the video of tile ${id} plays: ${JSON.stringify(state)}`);
      if (!seen.has(id)) seen.set(id, state.time);
      assert.ok(state.time > seen.get(id), `${who}: the video of tile ${id} moves on (${seen.get(id)} then ${state.time})`);
    }
  }, { timeout, interval: 200 });
}

/** Waits until a tile shows these attributes (any subset of what `tiles` returns). */
export function expectTile(page, id, expected, { who = "page", timeout = TIMEOUT } = {}) {
  return eventually(async () => {
    const t = (await tiles(page)).find((x) => x.id === id);
    assert.ok(t, `${who}: a tile for ${id}`);
    const seen = Object.fromEntries(Object.keys(expected).map((k) => [k, t[k]]));
    assert.deepEqual(seen, expected, `${who}: ${t.name}'s tile`);
  }, { timeout });
}

/** The socket id of the page's own participant, from its own tile. */
export async function ownId(page) {
  const id = await page.locator("#tiles .tile[data-self]").getAttribute("data-id");
  assert.ok(id, "the own tile has a data-id");
  return id;
}

/**
 * Joins the room's call through the UI: "Join call", then (with the preview's toggles as given)
 * "Join now"; waits until the call shows the own tile. Returns the own socket id.
 *
 * @param {import("playwright-core").Page} page
 * @param {{ mic?: boolean, camera?: boolean }} [options]  set a preview toggle (left as is when undefined)
 */
export async function joinCall(page, { mic, camera } = {}) {
  await page.locator("#call-open").click();
  await expectVisible(page.locator("#call-preview"), "the call preview should open");
  for (const [id, want] of [["#preview-mic", mic], ["#preview-camera", camera]]) {
    if (want === undefined) continue;
    const toggle = page.locator(id);
    if ((await toggle.getAttribute("aria-pressed")) !== String(want)) await toggle.click();
    await eventually(async () => assert.equal(await toggle.getAttribute("aria-pressed"), String(want), `${id} aria-pressed`));
  }
  await page.locator("#call-start").click();
  await expectVisible(page.locator("#call"), "the call should show");
  await expectVisible(page.locator("#tiles .tile[data-self]"), "the own tile should show");
  return ownId(page);
}

/**
 * Opens a page of `browser` for each `[name, server]` in turn, in `room`, in its call; each goes
 * into `users` as it opens (for the caller to close), with its `name` and call `id`.
 */
export async function joinInTurn(browser, users, room, people) {
  for (const [name, server] of people) {
    const user = await openCallUser(browser, server.url);
    users.push(user);
    user.name = name;
    await enterRoom(user.page, { nickname: name, room });
    user.id = await joinCall(user.page);
  }
}

/** Leaves the call with its Leave button and waits until the call view and its tiles are gone. */
export async function leaveCall(page) {
  await page.locator("#call-leave").click();
  await eventually(async () => {
    assert.equal(await page.locator("#tiles .tile").count(), 0, "no tiles after leaving");
    assert.ok(!(await page.locator("#call").isVisible()), "#call hidden after leaving");
  });
}
