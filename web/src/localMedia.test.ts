// LocalMedia against a stand-in for the browser's devices: tracks that end when their device is
// unplugged, pickers that answer late, a screen picker left open.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LocalMedia } from "./media";

type Kind = "audio" | "video";

class FakeTrack extends EventTarget {
  enabled = true;
  readyState: "live" | "ended" = "live";
  contentHint = "";
  constructor(
    readonly kind: Kind | "screen",
    readonly deviceId: string,
  ) {
    super();
  }
  stop(): void {
    this.readyState = "ended";
  }
  getSettings(): { deviceId: string } {
    return { deviceId: this.deviceId };
  }
  /** The device went away: the track ends by itself and says so (stop() fires nothing). */
  unplug(): void {
    this.readyState = "ended";
    this.dispatchEvent(new Event("ended"));
  }
}

function stream(tracks: FakeTrack[]) {
  return {
    getTracks: () => tracks,
    getAudioTracks: () => tracks.filter((t) => t.kind === "audio"),
    getVideoTracks: () => tracks.filter((t) => t.kind !== "audio"),
  };
}

type Wanted = boolean | { deviceId?: string | { exact: string } } | undefined;

/** navigator.mediaDevices with one list of devices per kind, which a test changes at will. */
class FakeDevices {
  devices: Record<Kind, string[]> = { audio: ["mic-1"], video: ["cam-1"] };
  /** An error name getUserMedia throws for a kind, whatever the devices. */
  broken: Partial<Record<Kind, string>> = {};
  /** Held answers: getUserMedia for this exact device waits until the test lets it go. */
  held = new Map<string, Promise<void>>();
  requests: Array<{ kind: Kind; deviceId: string | null; exact: boolean }> = [];
  tracks: FakeTrack[] = [];
  screenPickers = 0;
  private answerScreen: ((value: unknown) => void) | null = null;

  async getUserMedia(constraints: Record<Kind, Wanted>) {
    const tracks: FakeTrack[] = [];
    for (const kind of ["audio", "video"] as const) {
      const wanted = constraints[kind];
      if (!wanted) continue;
      const id = typeof wanted === "object" ? wanted.deviceId : undefined;
      const exact = typeof id === "object" ? id.exact : null;
      const plain = typeof id === "string" ? id : null;
      this.requests.push({ kind, deviceId: exact ?? plain, exact: exact !== null });
      if (exact !== null) await this.held.get(exact);
      const error = this.broken[kind];
      if (error) throw new DOMException("broken", error);
      const list = this.devices[kind];
      const device = exact !== null ? list.find((d) => d === exact) : list.find((d) => d === plain) ?? list[0];
      if (!device) throw new DOMException("no device", exact !== null ? "OverconstrainedError" : "NotFoundError");
      tracks.push(new FakeTrack(kind, device));
    }
    this.tracks.push(...tracks);
    return stream(tracks);
  }

  getDisplayMedia() {
    this.screenPickers++;
    return new Promise((resolve) => (this.answerScreen = resolve));
  }

  /** The person picks a screen in the open picker. */
  pickScreen(): FakeTrack {
    const track = new FakeTrack("screen", "screen");
    this.tracks.push(track);
    this.answerScreen?.(stream([track]));
    return track;
  }

  unplug(kind: Kind, deviceId: string): void {
    this.devices[kind] = this.devices[kind].filter((d) => d !== deviceId);
    for (const track of this.tracks) if (track.deviceId === deviceId && track.readyState === "live") track.unplug();
  }
}

/** Lets every pending promise and handler run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

let devices: FakeDevices;

beforeEach(() => {
  devices = new FakeDevices();
  vi.stubGlobal("navigator", { mediaDevices: devices });
});

afterEach(() => {
  vi.unstubAllGlobals();
});

async function started(): Promise<{ media: LocalMedia; lost: () => number }> {
  const media = new LocalMedia();
  let lost = 0;
  media.onLost(() => lost++);
  await media.start();
  expect(media.media).toEqual({ audio: true, video: true, screen: false });
  return { media, lost: () => lost };
}

const idOf = (track: MediaStreamTrack | null) => (track as unknown as FakeTrack | null)?.deviceId ?? null;

describe("LocalMedia: a device unplugged during the call", () => {
  it("takes the default microphone in place of an unplugged one, still unmuted", async () => {
    devices.devices.audio = ["mic-1", "mic-2"];
    const { media, lost } = await started();
    devices.unplug("audio", "mic-1");
    await settle();
    expect(idOf(media.mic)).toBe("mic-2");
    expect(media.media.audio).toBe(true);
    expect(media.notice).toBeNull();
    expect(lost()).toBe(0);
  });

  it("with no microphone left, sends none, says so and tells the call", async () => {
    const { media, lost } = await started();
    devices.unplug("audio", "mic-1");
    await settle();
    expect(media.mic).toBeNull();
    expect(media.media.audio).toBe(false);
    expect(media.shown.audio).toBe(false);
    expect(media.notice).toBe("media.missing.mic");
    expect(lost()).toBe(1);
  });

  it("asks for a muted microphone again only when it is unmuted", async () => {
    devices.devices.audio = ["mic-1", "mic-2"];
    const { media } = await started();
    await media.setMicOn(false);
    const before = devices.requests.length;
    devices.unplug("audio", "mic-1");
    await settle();
    expect(devices.requests.length).toBe(before);
    expect(media.mic).toBeNull();
    await media.setMicOn(true);
    expect(idOf(media.mic)).toBe("mic-2");
    expect(media.media.audio).toBe(true);
  });

  it("takes another camera in place of an unplugged one, or turns it off and says why", async () => {
    devices.devices.video = ["cam-1", "cam-2"];
    const { media, lost } = await started();
    devices.unplug("video", "cam-1");
    await settle();
    expect(idOf(media.camera)).toBe("cam-2");
    expect(media.media.video).toBe(true);

    devices.unplug("video", "cam-2");
    await settle();
    expect(media.camera).toBeNull();
    expect(media.media.video).toBe(false);
    expect(media.shown.video).toBe(false);
    expect(media.notice).toBe("media.missing.camera");
    expect(lost()).toBe(1);
  });

  it("does not ask for a camera the person turned off", async () => {
    const { media } = await started();
    await media.setCameraOn(false);
    const before = devices.requests.length;
    devices.unplug("video", "cam-1");
    await settle();
    expect(devices.requests.length).toBe(before);
    expect(media.notice).toBeNull();
  });
});

describe("LocalMedia: picking devices", () => {
  it("says why when a picked camera, and every other, would not start", async () => {
    const { media } = await started();
    devices.devices.video = ["cam-1", "cam-2"];
    devices.broken.video = "NotReadableError";
    await media.useCamera("cam-2");
    expect(media.camera).toBeNull();
    expect(media.media.video).toBe(false);
    expect(media.shown.video).toBe(false);
    expect(media.notice).toBe("media.unavailable.camera");
  });

  it("keeps the microphone there is when a picked one would not start, without a notice", async () => {
    const { media } = await started();
    await media.useMic("gone");
    expect(idOf(media.mic)).toBe("mic-1");
    expect(media.media.audio).toBe(true);
    expect(media.notice).toBeNull();
  });

  it("goes by the last microphone picked, whichever answer comes first", async () => {
    devices.devices.audio = ["mic-1", "mic-2", "mic-3"];
    const { media } = await started();
    let release = () => {};
    devices.held.set("mic-2", new Promise<void>((resolve) => (release = resolve)));
    const slow = media.useMic("mic-2");
    await media.useMic("mic-3");
    release();
    await slow;
    expect(idOf(media.mic)).toBe("mic-3");
    const late = devices.tracks.find((t) => t.deviceId === "mic-2");
    expect(late?.readyState).toBe("ended");
  });
});

describe("LocalMedia: sharing the screen", () => {
  it("opens one picker however often it is asked while that picker is open", async () => {
    const { media } = await started();
    const first = media.startScreen();
    expect(await media.startScreen()).toBe("cancelled");
    expect(devices.screenPickers).toBe(1);
    const track = devices.pickScreen();
    expect(await first).toBe("started");
    expect(media.screen).toBe(track as unknown as MediaStreamTrack);
    expect(media.media.screen).toBe(true);
  });
});

describe("LocalMedia: stopping", () => {
  it("ends every track, and a late answer is let go", async () => {
    const { media } = await started();
    let release = () => {};
    devices.devices.audio = ["mic-1", "mic-2"];
    devices.held.set("mic-2", new Promise<void>((resolve) => (release = resolve)));
    const pick = media.useMic("mic-2");
    media.stop();
    release();
    await pick;
    expect(devices.tracks.every((t) => t.readyState === "ended")).toBe(true);
    expect(media.mic).toBeNull();
  });
});
