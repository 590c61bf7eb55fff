// Helpers for calls through the media server: what a page receives, stream by stream.
import assert from "node:assert/strict";
import { eventually } from "./browser.mjs";
import { CALL_TIMEOUT, describeConnections } from "./rtc.mjs";

/**
 * Each inbound video stream of the page's live connections, by the person it comes from (its
 * track's stream id): `{ from, framesDecoded, frameWidth, frameHeight }`.
 */
export function inboundVideo(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const { pc } of window.__rtc?.connections ?? []) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      for (const transceiver of pc.getTransceivers()) {
        const track = transceiver.receiver.track;
        if (track.kind !== "video" || transceiver.currentDirection !== "recvonly") continue;
        const from = [...document.querySelectorAll("#tiles .tile")]
          .find((t) => t.querySelector("video")?.srcObject?.getTracks().includes(track))?.dataset.id;
        stats.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video" && s.trackIdentifier === track.id) {
            out.push({ from: from ?? null, framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0 });
          }
        });
      }
    }
    return out;
  });
}

/**
 * Starts timing the frames each tile's video shows (`requestVideoFrameCallback`), whatever
 * connection they come over; `longestFrameGaps` then says the longest wait for a frame, per tile.
 * Good for "the tile shows frames"; for how long a picture stopped, use `watchDecoding`: across a
 * connection replaced by another, these callbacks went on while no frame was decoded.
 */
export function watchFrames(page) {
  return page.evaluate(() => {
    const watched = (window.__frames = new Map());
    for (const tile of document.querySelectorAll("#tiles .tile[data-id]")) {
      const video = tile.querySelector("video");
      if (!video || !("requestVideoFrameCallback" in video)) continue;
      const record = { last: null, longest: 0 };
      watched.set(tile.dataset.id, record);
      const step = (now) => {
        if (record.last !== null) record.longest = Math.max(record.longest, now - record.last);
        record.last = now;
        video.requestVideoFrameCallback(step);
      };
      video.requestVideoFrameCallback(step);
    }
  });
}

/** Since `watchFrames`, the longest time in ms each tile (by person id) went without a new frame,
 * the wait for the next one still to come included; null for a tile that never showed one. */
export function longestFrameGaps(page) {
  return page.evaluate(() => {
    const now = performance.now();
    const out = {};
    for (const [id, { last, longest }] of window.__frames ?? []) out[id] = last === null ? null : Math.round(Math.max(longest, now - last));
    return out;
  });
}

/**
 * Starts watching, every 100 ms, the video frames the page decodes from each person (summed over
 * its live connections, so a connection replaced by another counts as one stream); then
 * `decodingSince` says, per person id, when the first frame came (Date.now() time) and the longest
 * wait between frames, the one still going included. Counts decoding, not painting: a tile the
 * layout hides still counts.
 */
export function watchDecoding(page) {
  return page.evaluate(() => {
    clearInterval(window.__decoding?.timer);
    const watch = (window.__decoding = { people: new Map(), tracks: new Map() });
    const tick = async () => {
      if (watch.busy) return;
      watch.busy = true;
      try {
        await look();
      } finally {
        watch.busy = false;
      }
    };
    const look = async () => {
      const now = performance.timeOrigin + performance.now();
      const decoded = new Set();
      for (const { pc } of window.__rtc?.connections ?? []) {
        if (pc.connectionState === "closed") continue;
        const stats = await pc.getStats();
        for (const transceiver of pc.getTransceivers()) {
          const track = transceiver.receiver.track;
          // recvonly from the media server, sendrecv on a direct connection.
          if (track.kind !== "video" || !transceiver.currentDirection?.includes("recv")) continue;
          const from = [...document.querySelectorAll("#tiles .tile")]
            .find((t) => t.querySelector("video")?.srcObject?.getTracks().includes(track))?.dataset.id;
          if (!from) continue;
          stats.forEach((s) => {
            if (s.type !== "inbound-rtp" || s.kind !== "video" || s.trackIdentifier !== track.id) return;
            const frames = s.framesDecoded ?? 0;
            if (frames > (watch.tracks.get(track.id) ?? 0)) decoded.add(from);
            watch.tracks.set(track.id, frames);
          });
        }
      }
      for (const from of decoded) {
        const person = watch.people.get(from) ?? { first: null, last: null, longest: 0 };
        watch.people.set(from, person);
        if (person.last !== null) person.longest = Math.max(person.longest, now - person.last);
        person.first ??= now;
        person.last = now;
      }
    };
    watch.timer = setInterval(() => void tick(), 100);
  });
}

/** Since `watchDecoding`: per person id, `{ first, longest }` (see there), or nothing for one
 * never decoded. */
export function decodingSince(page) {
  return page.evaluate(() => {
    const now = performance.timeOrigin + performance.now();
    const out = {};
    for (const [id, p] of window.__decoding?.people ?? []) {
      if (p.first !== null) out[id] = { first: Math.round(p.first), longest: Math.round(Math.max(p.longest, now - p.last)) };
    }
    return out;
  });
}

/** Waits until the page decodes rising video frames from each of `from` (person ids) through
 * the media server. */
export async function expectVideoFrom(page, from, who) {
  const first = new Map();
  try {
    await eventually(async () => {
      const streams = (await inboundVideo(page)).filter((s) => s.framesDecoded > 0);
      for (const s of streams) if (!first.has(s.from)) first.set(s.from, s.framesDecoded);
      for (const id of from) {
        const s = streams.find((v) => v.from === id);
        assert.ok(s && s.framesDecoded > first.get(id), `${who} decodes rising frames from ${id}: ${JSON.stringify(streams)}`);
      }
    }, { timeout: CALL_TIMEOUT, interval: 250 });
  } catch (error) {
    error.message += `\n${who}'s connections:\n${await describeConnections(page)}`;
    throw error;
  }
}

/** Waits until no new frame is decoded from `from` (a person id; everyone when left out) over
 * three looks 1.5 s apart. One pause of the pictures is not enough: a busy machine (three
 * browsers and a debug build of the server on two cores) stalls a second and more, and the
 * frames then come on. */
export async function expectVideoStopped(page, { from, who = "page" } = {}) {
  const decoded = async () =>
    (await inboundVideo(page)).filter((v) => from === undefined || v.from === from).reduce((sum, v) => sum + v.framesDecoded, 0);
  const looks = [await decoded()];
  await eventually(async () => {
    looks.push(await decoded());
    const [first, ...rest] = looks.slice(-3);
    const still = looks.length >= 3 && rest.every((n) => n === first);
    assert.ok(still, `${who}: no new video decoded${from ? ` from ${from}` : ""} (${looks.at(-1)} frames)`);
  }, { timeout: CALL_TIMEOUT, interval: 1500 });
}

/** A counter or gauge of the server's /metrics, by its name with labels. */
export async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line ? Number(line.split(" ").pop()) : NaN;
}
