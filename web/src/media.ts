// This person's camera, microphone and screen: getting them with fallbacks (so a missing or
// refused device still lets them join to watch and listen), switching devices, turning them off
// and on, and saying in words why one is missing.
import type { Key } from "./i18n";
import type { Media } from "./protocol";
import { load, save } from "./storage";

export type Kind = "audio" | "video";

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

export type Device = { id: string; label: string };
export type DeviceLists = { cameras: Device[]; mics: Device[] };

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

export class LocalMedia {
  mic: MediaStreamTrack | null = null;
  camera: MediaStreamTrack | null = null;
  screen: MediaStreamTrack | null = null;
  /** Why a device is missing against the person's wish. */
  private missing: Missing = { audio: null, video: null };
  /** Whether the first attempt to get devices has finished. */
  ready = false;

  private micOn = true;
  private cameraWanted = true;
  private cameraId: string | null = load("camera");
  private micId: string | null = load("mic");
  /** Bumped by every camera request, so that a slow answer to an older one is thrown away. */
  private cameraRequest = 0;
  private stopped = false;
  private listeners: Array<() => void> = [];

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** What to tell the person about missing devices, for the preview and the call. */
  get notice(): Key | null {
    return mediaNotice(this.missing);
  }

  get media(): Media {
    return publishedMedia({
      mic: this.mic && { enabled: this.micOn, live: this.mic.readyState === "live" },
      camera: this.camera && { live: this.camera.readyState === "live" },
      screen: this.screen && { live: this.screen.readyState === "live" },
    });
  }

  /**
   * What the microphone and camera buttons show: while the browser is still being asked, what the
   * person wants; after that, what is really sent.
   */
  get shown(): { audio: boolean; video: boolean } {
    if (!this.ready) return { audio: this.micOn, video: this.cameraWanted };
    const media = this.media;
    return { audio: media.audio, video: media.video };
  }

  /** The video the others receive: the screen while it is shared, else the camera (or nothing). */
  get outgoingVideo(): MediaStreamTrack | null {
    return this.screen ?? this.camera;
  }

  get cameraDeviceId(): string | null {
    return this.camera?.getSettings().deviceId ?? this.cameraId;
  }

  get micDeviceId(): string | null {
    return this.mic?.getSettings().deviceId ?? this.micId;
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
          audio: step.audio && audioConstraints(this.micId, false),
          video: step.video && videoConstraints(this.cameraId, false),
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
    this.setMic(mic);
    // The person may have turned the camera off while the browser was still asking.
    if (camera && this.cameraWanted) this.setCamera(camera);
    else camera?.stop();
    this.ready = true;
    this.emit();
  }

  /** Mutes or unmutes; unmuting with no microphone tries to get one. */
  async setMicOn(on: boolean): Promise<void> {
    this.micOn = on;
    if (this.mic) this.mic.enabled = on;
    // With a microphone, or still asking for one (start() applies the wish), that is all.
    if (this.mic || !this.ready || !on) return this.emit();
    const track = await this.getTrack("audio", this.micId, false);
    if (this.stopped) return track?.stop();
    if (track && !this.mic) this.setMic(track);
    else track?.stop();
    if (!this.mic) this.micOn = false;
    this.emit();
  }

  /** Turns the camera off (its light too) or on again. */
  async setCameraOn(on: boolean): Promise<void> {
    this.cameraWanted = on;
    if (!this.ready) return this.emit();
    const request = ++this.cameraRequest;
    if (!on) {
      this.setCamera(null);
      return this.emit();
    }
    if (this.camera) return this.emit();
    this.emit();
    const track = await this.getTrack("video", this.cameraId, false);
    if (this.stopped || request !== this.cameraRequest || !this.cameraWanted) return track?.stop();
    if (track) this.setCamera(track);
    else this.cameraWanted = false;
    this.emit();
  }

  /** Switches to another camera (remembered for next time); applies at once if it is on. */
  async useCamera(deviceId: string): Promise<void> {
    if (deviceId === this.cameraDeviceId && this.camera) return;
    this.cameraId = deviceId;
    save("camera", deviceId);
    if (!this.camera) return this.emit();
    const request = ++this.cameraRequest;
    // Some cameras cannot be opened twice: the old one is let go first.
    this.setCamera(null);
    const track =
      (await this.getTrack("video", deviceId, true)) ?? (await this.getTrack("video", null, false));
    if (this.stopped || request !== this.cameraRequest || !this.cameraWanted) return track?.stop();
    this.setCamera(track);
    this.emit();
  }

  /** Switches to another microphone; the new one keeps the mute state. */
  async useMic(deviceId: string): Promise<void> {
    if (deviceId === this.micDeviceId && this.mic) return;
    this.micId = deviceId;
    save("mic", deviceId);
    if (!this.mic) return this.emit();
    const track = await this.getTrack("audio", deviceId, true);
    if (this.stopped) return track?.stop();
    if (!track) return this.emit();
    this.setMic(track);
    this.emit();
  }

  /**
   * Shares a screen, window or tab. The person cancelling the browser's picker is not an error
   * worth a notice, so that outcome is told apart from a failure.
   */
  async startScreen(): Promise<"started" | "cancelled" | "failed"> {
    if (this.screen || !canShareScreen()) return this.screen ? "started" : "failed";
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    } catch (error) {
      return errorName(error) === "NotAllowedError" ? "cancelled" : "failed";
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
    if (typeof navigator.mediaDevices?.enumerateDevices !== "function") return { cameras: [], mics: [] };
    let all: MediaDeviceInfo[];
    try {
      all = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return { cameras: [], mics: [] };
    }
    const pick = (kind: MediaDeviceKind): Device[] =>
      all.filter((d) => d.kind === kind && d.deviceId !== "").map((d) => ({ id: d.deviceId, label: d.label }));
    return { cameras: pick("videoinput"), mics: pick("audioinput") };
  }

  /** Stops every track (camera light off); the object is done with. */
  stop(): void {
    this.stopped = true;
    this.cameraRequest++;
    for (const track of [this.mic, this.camera, this.screen]) track?.stop();
    this.mic = null;
    this.camera = null;
    this.screen = null;
    this.listeners = [];
  }

  private setMic(track: MediaStreamTrack | null): void {
    const old = this.mic;
    if (old === track) return;
    this.mic = track;
    old?.stop();
    if (!track) return;
    track.enabled = this.micOn;
    this.watchEnd(track, () => {
      if (this.mic !== track) return;
      this.mic = null;
      this.emit();
    });
  }

  private setCamera(track: MediaStreamTrack | null): void {
    const old = this.camera;
    if (old === track) return;
    this.camera = track;
    old?.stop();
    if (!track) return;
    this.watchEnd(track, () => {
      if (this.camera !== track) return;
      this.camera = null;
      this.cameraWanted = false;
      this.emit();
    });
  }

  /** A device unplugged or taken away ends its track. */
  private watchEnd(track: MediaStreamTrack, gone: () => void): void {
    track.addEventListener("ended", gone);
  }

  /** One track of one kind, or null with the notice set to why not. */
  private async getTrack(kind: Kind, deviceId: string | null, exact: boolean): Promise<MediaStreamTrack | null> {
    if (!hasUserMedia()) {
      this.missing[kind] = "unsupported";
      return null;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia(
        kind === "audio"
          ? { audio: audioConstraints(deviceId, exact) }
          : { video: videoConstraints(deviceId, exact) },
      );
      const track = (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] ?? null;
      if (track) this.missing[kind] = null;
      return track;
    } catch (error) {
      this.missing[kind] = failureReason(errorName(error));
      return null;
    }
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}
