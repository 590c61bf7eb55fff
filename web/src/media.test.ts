import { describe, expect, it } from "vitest";
import {
  failureReason,
  LADDER,
  mediaNotice,
  MIN_VIDEO_BPS,
  publishedMedia,
  sendLimits,
  VIDEO_BUDGET_BPS,
  worstReason,
} from "./media";

describe("LADDER", () => {
  it("tries audio and video, then audio, then video", () => {
    expect(LADDER).toEqual([
      { audio: true, video: true },
      { audio: true, video: false },
      { audio: false, video: true },
    ]);
  });
});

describe("failureReason", () => {
  it("sorts getUserMedia errors", () => {
    expect(failureReason("NotAllowedError")).toBe("blocked");
    expect(failureReason("SecurityError")).toBe("blocked");
    expect(failureReason("NotFoundError")).toBe("missing");
    expect(failureReason("OverconstrainedError")).toBe("missing");
    expect(failureReason("NotReadableError")).toBe("unavailable");
    expect(failureReason("AbortError")).toBe("unavailable");
    expect(failureReason(undefined)).toBe("unavailable");
  });
  it("ranks a refusal above an absence above the rest", () => {
    expect(worstReason([])).toBeNull();
    expect(worstReason(["missing", "blocked"])).toBe("blocked");
    expect(worstReason(["unavailable", "missing"])).toBe("missing");
    expect(worstReason(["unavailable"])).toBe("unavailable");
  });
});

describe("mediaNotice", () => {
  it("says nothing when both devices came", () => {
    expect(mediaNotice({ audio: null, video: null })).toBeNull();
  });
  it("names the missing device and why", () => {
    expect(mediaNotice({ audio: null, video: "missing" })).toBe("media.missing.camera");
    expect(mediaNotice({ audio: "blocked", video: null })).toBe("media.blocked.mic");
    expect(mediaNotice({ audio: null, video: "unavailable" })).toBe("media.unavailable.camera");
  });
  it("speaks of both when neither came, with the weightier reason", () => {
    expect(mediaNotice({ audio: "missing", video: "missing" })).toBe("media.missing.all");
    expect(mediaNotice({ audio: "missing", video: "blocked" })).toBe("media.blocked.all");
    expect(mediaNotice({ audio: "unavailable", video: "unavailable" })).toBe("media.unavailable.all");
  });
  it("explains a page where the browser offers no devices at all", () => {
    expect(mediaNotice({ audio: "unsupported", video: "unsupported" })).toBe("media.unsupported");
  });
});

describe("publishedMedia", () => {
  const live = { live: true };
  it("tells the others only what is really sent", () => {
    expect(publishedMedia({ mic: { enabled: true, live: true }, camera: live, screen: null })).toEqual({
      audio: true,
      video: true,
      screen: false,
    });
  });
  it("counts a muted or ended microphone as off", () => {
    expect(publishedMedia({ mic: { enabled: false, live: true }, camera: null, screen: null }).audio).toBe(false);
    expect(publishedMedia({ mic: { enabled: true, live: false }, camera: null, screen: null }).audio).toBe(false);
  });
  it("keeps the camera and the screen apart", () => {
    const none = { mic: null, camera: null, screen: null };
    expect(publishedMedia({ ...none, screen: live })).toEqual({ audio: false, video: false, screen: true });
    expect(publishedMedia({ ...none, camera: live, screen: live })).toEqual({ audio: false, video: true, screen: true });
    expect(publishedMedia({ mic: null, camera: { live: false }, screen: null }).video).toBe(false);
  });
});

describe("sendLimits", () => {
  it("shares the upload budget out among the peers", () => {
    expect(sendLimits(1, false).maxBitrate).toBe(2_500_000);
    expect(sendLimits(2, false).maxBitrate).toBe(1_250_000);
    expect(sendLimits(3, false).maxBitrate).toBe(833_333);
    expect(sendLimits(5, false).maxBitrate).toBe(500_000);
    for (let peers = 1; peers <= 5; peers++) {
      expect(sendLimits(peers, false).maxBitrate * peers).toBeLessThanOrEqual(VIDEO_BUDGET_BPS);
    }
  });
  it("never goes below a floor, however many peers", () => {
    expect(sendLimits(20, false).maxBitrate).toBe(MIN_VIDEO_BPS);
    expect(sendLimits(0, false).maxBitrate).toBe(VIDEO_BUDGET_BPS);
  });
  it("halves the camera's resolution from four people in the call", () => {
    expect(sendLimits(1, false).scaleResolutionDownBy).toBe(1);
    expect(sendLimits(2, false).scaleResolutionDownBy).toBe(1);
    expect(sendLimits(3, false).scaleResolutionDownBy).toBe(2);
    expect(sendLimits(5, false).scaleResolutionDownBy).toBe(2);
  });
  it("keeps a shared screen at full resolution, within the same bitrate", () => {
    expect(sendLimits(3, true)).toEqual({ maxBitrate: sendLimits(3, false).maxBitrate, scaleResolutionDownBy: 1 });
    expect(sendLimits(5, true).scaleResolutionDownBy).toBe(1);
  });
});
