// Helpers for calls through the media server: what a page receives, stream by stream.

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
