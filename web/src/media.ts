// This person's camera, microphone and screen: getting them with fallbacks (so a missing or
// refused device still lets them join to watch and listen), switching devices, turning them off
// and on, and saying in words why one is missing.
import type { Key } from "./i18n";
import type { Media } from "./protocol";
import { load, save, type StoredKey } from "./storage";

export type Kind = "audio" | "video";
export const KINDS: readonly Kind[] = ["audio", "video"];

/** What getUserMedia is asked for, best first: a missing device only loses that device. */
export const LADDER: ReadonlyArray<{ audio: boolean; video: boolean }> = [
  { audio: true, video: true },
  { audio: true, video: false },
  { audio: false, video: true },
];

export type FailureReason = "blocked" | "missing" | "unavailable" | "unsupported";

/** Sorts a getUserMedia error (its `name`) into what the person can do about it. */
export function failureReason(name: string | undefined): FailureReason {
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "blocked";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
    case "ConstraintNotSatisfiedError":
      return "missing";
    case "Unsupported":
      return "unsupported";
    default:
      return "unavailable";
  }
}

/** Among several failures, the one worth telling: a refusal explains the most, then absence. */
export function worstReason(reasons: readonly FailureReason[]): FailureReason | null {
  for (const r of ["unsupported", "blocked", "missing", "unavailable"] as const) if (reasons.includes(r)) return r;
  return null;
}

const NOTICES = {
  blocked: { all: "media.blocked.all", camera: "media.blocked.camera", mic: "media.blocked.mic" },
  missing: { all: "media.missing.all", camera: "media.missing.camera", mic: "media.missing.mic" },
  unavailable: { all: "media.unavailable.all", camera: "media.unavailable.camera", mic: "media.unavailable.mic" },
} as const satisfies Record<Exclude<FailureReason, "unsupported">, Record<string, Key>>;

/** Why each device is missing (null: it is there, or off by choice). */
export type Missing = { audio: FailureReason | null; video: FailureReason | null };

/** The notice that explains what is missing, or null when nothing is. */
export function mediaNotice(missing: Missing): Key | null {
  const { audio, video } = missing;
  if (audio === "unsupported" || video === "unsupported") return "media.unsupported";
  if (audio && video) return NOTICES[worstReason([audio, video]) as typeof audio].all;
  if (video) return NOTICES[video].camera;
  if (audio) return NOTICES[audio].mic;
  return null;
}

/** What the others are told: a device counts as on only while it really sends. */
export function publishedMedia(state: {
  mic: { enabled: boolean; live: boolean } | null;
  camera: { live: boolean } | null;
  screen: { live: boolean } | null;
}): Media {
  return {
    audio: state.mic !== null && state.mic.live && state.mic.enabled,
    video: state.camera !== null && state.camera.live,
    screen: state.screen !== null && state.screen.live,
  };
}

/** What our video to one peer may use (RTCRtpEncodingParameters). */
export type SendLimits = { maxBitrate: number; scaleResolutionDownBy: number };

/** What one person uploads for video in all, whatever the number of peers (a mesh sends to each). */
export const VIDEO_BUDGET_BPS = 2_500_000;
/** Below this a camera picture falls apart, however many peers there are. */
export const MIN_VIDEO_BPS = 300_000;
/** From this many people in the call (oneself included), tiles are small: half the resolution will do. */
export const SCALE_DOWN_FROM = 4;

/**
 * The limits for each video sender with `peers` others in the call: the budget shared out among
 * them, and from four people on, the camera sent at half resolution. A shared screen keeps its
 * full resolution, since its text has to stay readable.
 */
export function sendLimits(peers: number, screen: boolean): SendLimits {
  return {
    maxBitrate: Math.max(MIN_VIDEO_BPS, Math.floor(VIDEO_BUDGET_BPS / Math.max(1, peers))),
    scaleResolutionDownBy: !screen && peers + 1 >= SCALE_DOWN_FROM ? 2 : 1,
  };
}

export type Device = { id: string; label: string };
/** `speakers`: where the others' sound may go (only where the browser can send it there). */
export type DeviceLists = { cameras: Device[]; mics: Device[]; speakers: Device[] };

/** Whether this browser can play a page's sound on a speaker of the page's choosing. */
export function canPickSpeaker(): boolean {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

function errorName(error: unknown): string {
  return error instanceof Error || (typeof error === "object" && error !== null && "name" in error)
    ? String((error as { name: unknown }).name)
    : "Error";
}

function videoConstraints(deviceId: string | null, exact: boolean): MediaTrackConstraints {
  const constraints: MediaTrackConstraints = {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
  if (deviceId) constraints.deviceId = exact ? { exact: deviceId } : deviceId;
  return constraints;
}

function audioConstraints(deviceId: string | null, exact: boolean): MediaTrackConstraints {
  const constraints: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) constraints.deviceId = exact ? { exact: deviceId } : deviceId;
  return constraints;
}

function hasUserMedia(): boolean {
  return typeof navigator !== "undefined" && typeof navigator.mediaDevices?.getUserMedia === "function";
}

export function canShareScreen(): boolean {
  return typeof navigator !== "undefined" && typeof navigator.mediaDevices?.getDisplayMedia === "function";
}

/** A track, or why there is none. */
type Got = { track: MediaStreamTrack } | { reason: FailureReason };

/** Where the device chosen for each kind is remembered. */
const STORED: Record<Kind, StoredKey> = { audio: "mic", video: "camera" };

/** The microphone or the camera. */
type Source = {
  track: MediaStreamTrack | null;
  /** The microphone unmuted (its track stays while muted), the camera on (it goes when off). */
  on: boolean;
  /** The device the person chose (null: the browser's default). */
  deviceId: string | null;
  /** Bumped by every request for a track, so that a slow answer to an older one is thrown away. */
  request: number;
};

export class LocalMedia {
  screen: MediaStreamTrack | null = null;
  /** Whether the first attempt to get devices has finished. */
  ready = false;

  private readonly sources: Record<Kind, Source> = {
    audio: { track: null, on: true, deviceId: load("mic"), request: 0 },
    video: { track: null, on: true, deviceId: load("camera"), request: 0 },
  };
  /** Why a device is missing against the person's wish. */
  private missing: Missing = { audio: null, video: null };
  /** The browser's screen picker is open: a second one would leak the first one's capture. */
  private screenPending = false;
  private stopped = false;
  private listeners: Array<() => void> = [];
  private lostListeners: Array<() => void> = [];

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Called when a device in use went away and none could take its place (`notice` says so). */
  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  get mic(): MediaStreamTrack | null {
    return this.sources.audio.track;
  }

  get camera(): MediaStreamTrack | null {
    return this.sources.video.track;
  }

  /** What to tell the person about missing devices, for the preview and the call. */
  get notice(): Key | null {
    return mediaNotice(this.missing);
  }

  get media(): Media {
    const { mic, camera, screen } = this;
    return publishedMedia({
      mic: mic && { enabled: this.sources.audio.on, live: mic.readyState === "live" },
      camera: camera && { live: camera.readyState === "live" },
      screen: screen && { live: screen.readyState === "live" },
    });
  }

  /**
   * What the microphone and camera buttons show: while the browser is still being asked, what the
   * person wants; after that, what is really sent.
   */
  get shown(): { audio: boolean; video: boolean } {
    if (!this.ready) return { audio: this.sources.audio.on, video: this.sources.video.on };
    const media = this.media;
    return { audio: media.audio, video: media.video };
  }

  /** The video the others receive: the screen while it is shared, else the camera (or nothing). */
  get outgoingVideo(): MediaStreamTrack | null {
    return this.screen ?? this.camera;
  }

  get cameraDeviceId(): string | null {
    return this.camera?.getSettings().deviceId ?? this.sources.video.deviceId;
  }

  get micDeviceId(): string | null {
    return this.mic?.getSettings().deviceId ?? this.sources.audio.deviceId;
  }

  /** Asks for camera and microphone, falling back to fewer devices, then to none. */
  async start(): Promise<void> {
    if (!hasUserMedia()) {
      this.ready = true;
      this.missing = { audio: "unsupported", video: "unsupported" };
      return this.emit();
    }
    const failures: string[] = [];
    let stream: MediaStream | null = null;
    for (const step of LADDER) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: step.audio && audioConstraints(this.sources.audio.deviceId, false),
          video: step.video && videoConstraints(this.sources.video.deviceId, false),
        });
        break;
      } catch (error) {
        failures.push(errorName(error));
      }
      if (this.stopped) return;
    }
    if (this.stopped) {
      stream?.getTracks().forEach((track) => track.stop());
      return;
    }
    const mic = stream?.getAudioTracks()[0] ?? null;
    const camera = stream?.getVideoTracks()[0] ?? null;
    const reason = worstReason(failures.map(failureReason)) ?? "unavailable";
    this.missing = { audio: mic ? null : reason, video: camera ? null : reason };
    this.setTrack("audio", mic);
    // The person may have turned the camera off while the browser was still asking.
    if (camera && this.sources.video.on) this.setTrack("video", camera);
    else camera?.stop();
    this.ready = true;
    this.emit();
  }

  /** Mutes or unmutes; unmuting with no microphone tries to get one. */
  async setMicOn(on: boolean): Promise<void> {
    const mic = this.sources.audio;
    mic.on = on;
    if (mic.track) mic.track.enabled = on;
    // With a microphone, or still asking for one (start() applies the wish), that is all.
    if (mic.track || !this.ready || !on) return this.emit();
    const got = await this.request("audio", [[mic.deviceId, false]]);
    if (got) this.take("audio", got);
    this.emit();
  }

  /** Turns the camera off (its light too) or on again. */
  async setCameraOn(on: boolean): Promise<void> {
    const camera = this.sources.video;
    camera.on = on;
    if (!this.ready) return this.emit();
    if (!on) {
      camera.request++;
      this.setTrack("video", null);
      return this.emit();
    }
    if (camera.track) return this.emit();
    this.emit();
    const got = await this.request("video", [[camera.deviceId, false]]);
    if (got) this.take("video", got);
    this.emit();
  }

  /**
   * Switches to another camera (remembered for next time); applies at once if it is on. Should
   * neither it nor any other start, the camera is off and `notice` says why.
   */
  async useCamera(deviceId: string): Promise<void> {
    if (deviceId === this.cameraDeviceId && this.camera) return;
    this.choose("video", deviceId);
    if (!this.camera) return this.emit();
    // Some cameras cannot be opened twice: the old one is let go first.
    this.setTrack("video", null);
    const got = await this.request("video", [
      [deviceId, true],
      [null, false],
    ]);
    if (got) this.take("video", got);
    this.emit();
  }

  /** Switches to another microphone; the new one keeps the mute state. One that fails leaves the old. */
  async useMic(deviceId: string): Promise<void> {
    if (deviceId === this.micDeviceId && this.mic) return;
    this.choose("audio", deviceId);
    if (!this.mic) return this.emit();
    const got = await this.request("audio", [[deviceId, true]]);
    if (got && "track" in got) this.take("audio", got);
    this.emit();
  }

  /**
   * Shares a screen, window or tab. The person cancelling the browser's picker is not an error
   * worth a notice, so that outcome is told apart from a failure; so is a click while the picker
   * is still open.
   */
  async startScreen(): Promise<"started" | "cancelled" | "failed"> {
    if (this.screen) return "started";
    if (this.screenPending) return "cancelled";
    if (!canShareScreen()) return "failed";
    let stream: MediaStream;
    this.screenPending = true;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    } catch (error) {
      return errorName(error) === "NotAllowedError" ? "cancelled" : "failed";
    } finally {
      this.screenPending = false;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.stopped) {
      stream.getTracks().forEach((t) => t.stop());
      return "failed";
    }
    // Text and edges matter more than motion on a shared screen.
    track.contentHint = "detail";
    // The browser's own "Stop sharing" ends the track without asking us.
    track.addEventListener("ended", () => {
      if (this.screen === track) this.stopScreen();
    });
    this.screen = track;
    this.emit();
    return "started";
  }

  stopScreen(): void {
    if (!this.screen) return;
    this.screen.stop();
    this.screen = null;
    this.emit();
  }

  /** Lists cameras and microphones (named once permission was given). */
  async devices(): Promise<DeviceLists> {
    if (typeof navigator.mediaDevices?.enumerateDevices !== "function") return { cameras: [], mics: [], speakers: [] };
    let all: MediaDeviceInfo[];
    try {
      all = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return { cameras: [], mics: [], speakers: [] };
    }
    const pick = (kind: MediaDeviceKind): Device[] =>
      all.filter((d) => d.kind === kind && d.deviceId !== "").map((d) => ({ id: d.deviceId, label: d.label }));
    return { cameras: pick("videoinput"), mics: pick("audioinput"), speakers: canPickSpeaker() ? pick("audiooutput") : [] };
  }

  /** Stops every track (camera light off); the object is done with. */
  stop(): void {
    this.stopped = true;
    for (const kind of KINDS) this.setTrack(kind, null);
    this.screen?.stop();
    this.screen = null;
    this.listeners = [];
    this.lostListeners = [];
  }

  private choose(kind: Kind, deviceId: string): void {
    this.sources[kind].deviceId = deviceId;
    save(STORED[kind], deviceId);
  }

  private setTrack(kind: Kind, track: MediaStreamTrack | null): void {
    const source = this.sources[kind];
    const old = source.track;
    if (old === track) return;
    source.track = track;
    old?.stop();
    if (!track) return;
    if (kind === "audio") track.enabled = source.on;
    // A device unplugged or taken away ends its track (stop() does not fire this).
    track.addEventListener("ended", () => void this.lost(kind, track));
  }

  /**
   * A device in use went away. The person did not turn it off, so another one (the browser's
   * default, when the chosen one is gone) takes its place if there is one. A muted microphone is
   * only asked for again when unmuted.
   */
  private async lost(kind: Kind, track: MediaStreamTrack): Promise<void> {
    const source = this.sources[kind];
    if (source.track !== track || this.stopped) return;
    source.track = null;
    this.emit();
    if (!source.on) return;
    const got = await this.request(kind, [[source.deviceId, false]]);
    if (!got) return;
    const found = this.take(kind, got);
    this.emit();
    if (!found) for (const listener of this.lostListeners) listener();
  }

  /**
   * Asks for a track of `kind` from each of `tries` (device, exactly that one) until one comes.
   * Null when a newer request or the end came meanwhile: the track is let go, the newer one decides.
   */
  private async request(kind: Kind, tries: ReadonlyArray<[string | null, boolean]>): Promise<Got | null> {
    const source = this.sources[kind];
    const request = ++source.request;
    let got: Got = { reason: "unavailable" };
    for (const [deviceId, exact] of tries) {
      got = await this.getTrack(kind, deviceId, exact);
      if ("track" in got) break;
    }
    if (this.stopped || request !== source.request) {
      if ("track" in got) got.track.stop();
      return null;
    }
    return got;
  }

  /** Puts what a request got in place; without a track, the device is off and `missing` says why. */
  private take(kind: Kind, got: Got): boolean {
    if ("track" in got) {
      this.missing[kind] = null;
      this.setTrack(kind, got.track);
      return true;
    }
    this.missing[kind] = got.reason;
    this.sources[kind].on = false;
    this.setTrack(kind, null);
    return false;
  }

  private async getTrack(kind: Kind, deviceId: string | null, exact: boolean): Promise<Got> {
    if (!hasUserMedia()) return { reason: "unsupported" };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(
        kind === "audio"
          ? { audio: audioConstraints(deviceId, exact) }
          : { video: videoConstraints(deviceId, exact) },
      );
      const track = (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0];
      return track ? { track } : { reason: "unavailable" };
    } catch (error) {
      return { reason: failureReason(errorName(error)) };
    }
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}
