// The call's controls around the grid: the room's "Join call" button, the preview before joining
// (own camera, device pickers, start muted or with the camera off), the call's control bar and
// settings, and the call's notices (#call-error). Only DOM; call.ts decides what happens.
import { byId, el, streamShowing } from "./dom";
import { errorText, initial } from "./format";
import type { Key, Params } from "./i18n";
import { lang, onLangChange, t } from "./lang";
import type { Device, DeviceLists } from "./media";
import type { Media, ProtocolError } from "./protocol";
import { isMac, keysOf } from "./shortcuts";

/** A notice for #call-error: a text of ours, or an error from the server. */
/** The devices in use: camera, microphone, and the speaker the others' sound plays on. */
export type Chosen = { camera: string | null; mic: string | null; speaker: string | null };

export type CallNotice = ({ key: Key; params?: Params } | { error: ProtocolError; prefix?: Key }) & {
  /** A button beside the text, which also closes the notice. */
  action?: { key: Key; run: () => void };
};

/** What to tell someone whose call:join failed; a full call says how many it holds. */
export function joinFailureNotice(error: ProtocolError, limit: number): CallNotice {
  if (error.code === "call_full") return { key: "call.fullMessage", params: { limit } };
  return { error, prefix: "call.joinFailed" };
}

export function noticeText(notice: CallNotice): string {
  if ("key" in notice) return t(notice.key, notice.params);
  const reason = errorText(notice.error, lang());
  return notice.prefix ? t(notice.prefix, { reason }) : reason;
}

/** The label of the room's join button: how many are in the call, and whether it is full. */
export function openButtonLabel(inCall: number, limit: number): { key: Key; params?: Params; full: boolean } {
  if (inCall >= limit) return { key: "call.full", params: { count: inCall, limit }, full: true };
  if (inCall > 0) return { key: "call.joinCount", params: { count: inCall }, full: false };
  return { key: "call.join", full: false };
}

export type CallViewHandlers = {
  open(): void;
  start(): void;
  cancel(): void;
  toggleMic(): void;
  toggleCamera(): void;
  toggleScreen(): void;
  leave(): void;
  pickCamera(deviceId: string): void;
  pickMic(deviceId: string): void;
  pickSpeaker(deviceId: string): void;
  /** Plays a test sound on the chosen speaker. */
  testSound(): void;
  /** The data saver: whose video to receive. */
  pickOthersVideo(choice: OthersVideo): void;
  pickLayout(layout: LayoutChoice): void;
};

/** The grid, or the speaker large over a strip of the others. */
export type LayoutChoice = "grid" | "speaker";

/** Whose video a person receives: everyone shown, only who speaks, or nobody's (audio only). */
export type OthersVideo = "all" | "speaker" | "none";

export function isOthersVideo(v: unknown): v is OthersVideo {
  return v === "all" || v === "speaker" || v === "none";
}

export class CallView {
  private readonly openButton = byId("call-open", HTMLButtonElement);
  private readonly openHint = byId("call-open-hint", HTMLElement);
  private readonly openLabel = byId("call-open-label", HTMLElement);
  private readonly errorBox = byId("call-error", HTMLElement);
  private readonly errorText = byId("call-error-text", HTMLElement);
  private readonly errorClose = byId("call-error-close", HTMLButtonElement);
  private readonly errorAction = byId("call-error-action", HTMLButtonElement);

  private readonly stage = byId("call", HTMLElement);
  private readonly mic = byId("call-mic", HTMLButtonElement);
  private readonly camera = byId("call-camera", HTMLButtonElement);
  private readonly screen = byId("call-screen", HTMLButtonElement);
  private readonly presenting = byId("call-presenting", HTMLElement);
  private readonly settings = byId("call-settings", HTMLButtonElement);
  private readonly settingsPanel = byId("call-settings-panel", HTMLElement);
  private readonly leaveButton = byId("call-leave", HTMLButtonElement);
  private readonly callCameraSelect = byId("call-camera-select", HTMLSelectElement);
  private readonly callMicSelect = byId("call-mic-select", HTMLSelectElement);
  private readonly speakerField = byId("call-speaker-field", HTMLElement);
  private readonly speakerSelect = byId("call-speaker-select", HTMLSelectElement);
  private readonly othersVideo = byId("call-others-video", HTMLSelectElement);
  private readonly layoutSelect = byId("call-layout", HTMLSelectElement);
  private readonly network = byId("call-network", HTMLElement);
  private readonly levels = [...document.querySelectorAll<HTMLElement>(".level")];
  private readonly testSoundButtons = [...document.querySelectorAll<HTMLButtonElement>(".test-sound")];
  private readonly shortcutsButton = byId("call-shortcuts", HTMLButtonElement);
  private readonly shortcuts = byId("shortcuts", HTMLDialogElement);
  private readonly mac = isMac();

  private readonly preview = byId("call-preview", HTMLElement);
  private readonly previewStage = byId("preview-stage", HTMLElement);
  private readonly previewVideo = byId("preview-video", HTMLVideoElement);
  private readonly previewAvatar = byId("preview-avatar", HTMLElement);
  private readonly previewNotice = byId("preview-notice", HTMLElement);
  private readonly previewMic = byId("preview-mic", HTMLButtonElement);
  private readonly previewCamera = byId("preview-camera", HTMLButtonElement);
  private readonly cameraSelect = byId("camera-select", HTMLSelectElement);
  private readonly micSelect = byId("mic-select", HTMLSelectElement);
  private readonly startButton = byId("call-start", HTMLButtonElement);
  private readonly cancelButton = byId("call-cancel", HTMLButtonElement);

  private notice: CallNotice | null = null;
  private previewNoticeKey: Key | null = null;
  private openState = { inCall: 0, limit: 0 };
  private online = true;
  private devices: DeviceLists = { cameras: [], mics: [], speakers: [] };
  private chosen: Chosen = { camera: null, mic: null, speaker: null };

  constructor(handlers: CallViewHandlers) {
    this.openButton.addEventListener("click", () => {
      // Full: the button stays in reach of the keyboard and a screen reader, to say why.
      if (this.openButton.getAttribute("aria-disabled") !== "true") handlers.open();
    });
    this.errorClose.addEventListener("click", () => this.clearNotice());
    this.errorAction.addEventListener("click", () => {
      const action = this.notice?.action;
      this.clearNotice();
      action?.run();
    });
    this.startButton.addEventListener("click", () => handlers.start());
    this.cancelButton.addEventListener("click", () => handlers.cancel());
    this.preview.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault();
      handlers.cancel();
    });
    for (const button of [this.mic, this.previewMic]) button.addEventListener("click", () => handlers.toggleMic());
    for (const button of [this.camera, this.previewCamera]) {
      button.addEventListener("click", () => handlers.toggleCamera());
    }
    this.screen.addEventListener("click", () => handlers.toggleScreen());
    byId("call-presenting-stop", HTMLButtonElement).addEventListener("click", () => handlers.toggleScreen());
    this.shortcutsButton.addEventListener("click", () => this.showShortcuts());
    for (const button of this.testSoundButtons) button.addEventListener("click", () => handlers.testSound());
    byId("shortcuts-close", HTMLButtonElement).addEventListener("click", () => this.shortcuts.close());
    for (const [button, what] of [[this.mic, "mic"], [this.camera, "camera"]] as const) {
      button.setAttribute("aria-keyshortcuts", keysOf(what, this.mac).replace("Ctrl", "Control").replace("⌘", "Meta"));
    }
    this.leaveButton.addEventListener("click", () => handlers.leave());
    for (const select of [this.cameraSelect, this.callCameraSelect]) {
      select.addEventListener("change", () => select.value && handlers.pickCamera(select.value));
    }
    for (const select of [this.micSelect, this.callMicSelect]) {
      select.addEventListener("change", () => select.value && handlers.pickMic(select.value));
    }
    this.speakerSelect.addEventListener("change", () => this.speakerSelect.value && handlers.pickSpeaker(this.speakerSelect.value));

    this.layoutSelect.addEventListener("change", () => {
      const value = this.layoutSelect.value;
      if (value === "grid" || value === "speaker") handlers.pickLayout(value);
    });
    this.othersVideo.addEventListener("change", () => {
      if (isOthersVideo(this.othersVideo.value)) handlers.pickOthersVideo(this.othersVideo.value);
    });

    this.settings.addEventListener("click", () => this.setSettingsOpen(this.settingsPanel.hidden));
    document.addEventListener("click", (event) => {
      if (this.settingsPanel.hidden || !(event.target instanceof Node)) return;
      if (this.settingsPanel.contains(event.target) || this.settings.contains(event.target)) return;
      this.setSettingsOpen(false);
    });
    this.settingsPanel.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.setSettingsOpen(false);
      this.settings.focus();
    });

    onLangChange(() => this.relabel());
    this.relabel();
  }

  /** Warns, or stops warning, that one's own network is poor. */
  setPoorNetwork(poor: boolean): void {
    this.network.hidden = !poor;
    this.network.textContent = poor ? t("call.poorNetwork") : "";
  }

  /** Shows the layout chosen. */
  setLayout(layout: LayoutChoice): void {
    this.layoutSelect.value = layout;
  }

  /** Shows the data saver's choice. */
  setOthersVideo(choice: OthersVideo): void {
    this.othersVideo.value = choice;
  }

  /**
   * The room's join button: shown outside the call, saying how many are in it or that it is full.
   * A full call's button is disabled until a place frees; the server still has the last word (two
   * may take the last place at once), and a refusal says so in #call-error until a place frees.
   */
  showOpen(visible: boolean, inCall: number, limit: number): void {
    this.openButton.hidden = !visible;
    this.openState = { inCall, limit };
    this.renderOpen();
  }

  /** Without a connection, nobody can join the call: the button says so until it is back. */
  setOnline(online: boolean): void {
    this.online = online;
    this.renderOpen();
  }

  setNotice(notice: CallNotice | null): void {
    this.notice = notice;
    this.renderNotice();
  }

  clearNotice(): void {
    this.setNotice(null);
  }

  // ---- preview ----

  openPreview(nickname: string): void {
    this.previewAvatar.dataset.initial = initial(nickname);
    this.setPreviewNotice(null);
    this.startButton.disabled = false;
    this.preview.hidden = false;
    this.startButton.focus();
  }

  closePreview(): void {
    const wasOpen = !this.preview.hidden;
    this.preview.hidden = true;
    this.previewVideo.srcObject = null;
    if (wasOpen && !this.openButton.hidden) this.openButton.focus();
  }

  setPreviewVideo(track: MediaStreamTrack | null): void {
    const stream = streamShowing(this.previewVideo.srcObject, track);
    if (stream !== this.previewVideo.srcObject) {
      this.previewVideo.srcObject = stream;
      if (stream) this.previewVideo.play().catch(() => {});
    }
    this.previewStage.dataset.video = track ? "on" : "off";
  }

  setPreviewNotice(key: Key | null): void {
    this.previewNoticeKey = key;
    this.previewNotice.hidden = key === null;
    this.previewNotice.textContent = key ? t(key) : "";
  }

  // ---- in the call ----

  showStage(visible: boolean): void {
    this.stage.hidden = !visible;
    if (!visible) this.setSettingsOpen(false);
  }

  /** The mic and camera buttons (preview and call) and the screen button, from what is sent. */
  setControls(media: Media, options: { canShare: boolean; cameraPending: boolean }): void {
    for (const button of [this.mic, this.previewMic]) button.setAttribute("aria-pressed", String(media.audio));
    for (const button of [this.camera, this.previewCamera]) {
      button.setAttribute("aria-pressed", String(media.video));
      button.classList.toggle("busy", options.cameraPending);
    }
    this.screen.setAttribute("aria-pressed", String(media.screen));
    this.screen.hidden = !options.canShare;
    // Whoever shares knows it, and can stop beside the sign (as from the browser's own bar).
    this.presenting.hidden = !media.screen;
  }

  /** Fills the four device pickers (preview and call) and marks the devices in use. */
  setDevices(devices: DeviceLists, chosen: Chosen): void {
    this.devices = devices;
    this.chosen = chosen;
    this.renderDevices();
  }

  // ---- drawing ----

  private setSettingsOpen(open: boolean): void {
    this.settingsPanel.hidden = !open;
    this.settings.setAttribute("aria-expanded", String(open));
    if (open) this.callCameraSelect.focus();
  }

  private renderOpen(): void {
    const { inCall, limit } = this.openState;
    const label = openButtonLabel(inCall, limit);
    this.openLabel.textContent = t(label.key, label.params);
    const hint = !this.online ? t("call.offlineHint") : label.full ? t("call.fullHint") : "";
    this.openHint.textContent = hint;
    this.openButton.title = hint;
    if (hint) this.openButton.setAttribute("aria-disabled", "true");
    else this.openButton.removeAttribute("aria-disabled");
    // A refusal for a full call no longer holds once a place is free.
    if (!label.full && this.notice && "key" in this.notice && this.notice.key === "call.fullMessage") this.setNotice(null);
  }

  private renderNotice(): void {
    this.errorBox.hidden = this.notice === null;
    this.errorText.textContent = this.notice ? noticeText(this.notice) : "";
    const action = this.notice?.action;
    this.errorAction.hidden = !action;
    this.errorAction.textContent = action ? t(action.key) : "";
  }

  private renderDevices(): void {
    type Fill = (select: HTMLSelectElement, list: Device[], chosen: string | null, none: Key, each: Key) => void;
    const fill: Fill = (select, list, chosen, none, each) => {
      const options = list.map((d, i) =>
        el("option", { text: d.label || t(each, { n: i + 1 }), attrs: { value: d.id } }),
      );
      if (options.length === 0) options.push(el("option", { text: t(none), attrs: { value: "" } }));
      select.replaceChildren(...options);
      select.disabled = list.length === 0;
      if (chosen && list.some((d) => d.id === chosen)) select.value = chosen;
    };
    for (const select of [this.cameraSelect, this.callCameraSelect]) {
      fill(select, this.devices.cameras, this.chosen.camera, "call.noCamera", "call.deviceCamera");
    }
    for (const select of [this.micSelect, this.callMicSelect]) {
      fill(select, this.devices.mics, this.chosen.mic, "call.noMic", "call.deviceMic");
    }
    // Only where the browser can send the sound elsewhere, and has somewhere to send it.
    this.speakerField.hidden = this.devices.speakers.length === 0;
    fill(this.speakerSelect, this.devices.speakers, this.chosen.speaker, "call.noMic", "call.deviceSpeaker");
  }

  /** The microphone's meters: 0 (silent, or off) to 1. */
  setMicLevel(level: number): void {
    const percent = Math.round(level * 100);
    for (const meter of this.levels) {
      if (meter.getAttribute("aria-valuenow") === String(percent)) continue;
      meter.setAttribute("aria-valuenow", String(percent));
      meter.style.setProperty("--level", String(level));
    }
  }

  /** Whether a meter is on screen (the preview, or the call's settings, is open). */
  metersShown(): boolean {
    return this.levels.some((meter) => meter.offsetParent !== null);
  }

  setTestSoundPlaying(playing: boolean): void {
    for (const button of this.testSoundButtons) {
      button.disabled = playing;
      button.dataset.playing = String(playing);
      button.textContent = t(playing ? "call.testSoundPlaying" : "call.testSound");
    }
  }

  /** The list of keyboard shortcuts, as this platform writes them. */
  showShortcuts(): void {
    byId("keys-mic", HTMLElement).textContent = keysOf("mic", this.mac);
    byId("keys-camera", HTMLElement).textContent = keysOf("camera", this.mac);
    if (!this.shortcuts.open) this.shortcuts.showModal();
    byId("shortcuts-close", HTMLButtonElement).focus();
  }

  private relabel(): void {
    this.mic.title = `${t("call.micHint")} (${keysOf("mic", this.mac)})`;
    this.camera.title = `${t("call.cameraHint")} (${keysOf("camera", this.mac)})`;
    if (!this.network.hidden) this.network.textContent = t("call.poorNetwork");
    this.renderOpen();
    this.renderNotice();
    this.renderDevices();
    if (this.previewNoticeKey) this.previewNotice.textContent = t(this.previewNoticeKey);
  }
}
