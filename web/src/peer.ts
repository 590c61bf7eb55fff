// One WebRTC connection to one other person in the call. Either side may offer at any time
// (first contact, ICE restarts); "perfect negotiation" settles two offers crossing: the impolite
// peer's offer wins and the polite one rolls its own back. The connection always carries one
// audio and one video transceiver in both directions, so a person without a camera still
// receives video, and switching or re-enabling a device is a replaceTrack, never a renegotiation.
import type { Kind } from "./media";
import type { Candidate, SessionDescription } from "./protocol";

/** The impolite peer is the one whose id sorts first, as the protocol says; the other is polite. */
export function isPolite(selfId: string, peerId: string): boolean {
  return selfId > peerId;
}

export const MAX_RESTARTS = 5;

/** The wait before ICE restart number `attempt` (1-based): 1 s, 2 s, 4 s, then 8 s. */
export function restartDelay(attempt: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt - 1), 8000);
}

/** How long "disconnected" may last (it often heals by itself) before an ICE restart. */
export const DISCONNECTED_GRACE_MS = 4000;

/**
 * How long a connection may take to come up before an ICE restart. The impolite side restarts
 * first; the polite one waits longer, so the two seldom restart at once.
 */
export function connectTimeout(polite: boolean): number {
  return polite ? 15_000 : 9_000;
}
/** How long one restart may take before the next is tried, if no state change says anything. */
const RESTART_WATCHDOG_MS = 12_000;

export type ConnectionLabel = "new" | "connecting" | "connected" | "failed";

/** The tile's word for a connection's state ("disconnected" is shown as trying again). */
export function connectionLabel(
  state: RTCPeerConnectionState | undefined,
  ice: RTCIceConnectionState,
): ConnectionLabel {
  switch (state ?? ice) {
    case "new":
      return "new";
    case "connected":
    case "completed":
      return "connected";
    case "failed":
    case "closed":
      return "failed";
    default:
      return "connecting";
  }
}

export type OutgoingSignal = { description: SessionDescription } | { candidate: Candidate };

export type PeerOptions = {
  id: string;
  polite: boolean;
  config: RTCConfiguration;
  /** Whether this side sets up the transceivers and offers first (the newcomer does). */
  initiator: boolean;
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  send: (signal: OutgoingSignal) => void;
  onConnection: (label: ConnectionLabel) => void;
  onStream: (stream: MediaStream) => void;
};

const KINDS: readonly Kind[] = ["audio", "video"];

function warnReplace(error: unknown): void {
  console.warn("call: replaceTrack failed", error);
}

export class Peer {
  readonly id: string;
  private pc!: RTCPeerConnection;
  private readonly options: PeerOptions;
  private makingOffer = false;
  private ignoreOffer = false;
  private settingRemoteAnswerPending = false;
  /** The transceiver of each kind that carries our track and their media. */
  private transceivers: Record<Kind, RTCRtpTransceiver | null> = { audio: null, video: null };
  private tracks: Record<Kind, MediaStreamTrack | null>;
  private readonly retired = new Set<RTCRtpTransceiver>();
  /** Signals are applied one at a time, in the order they came. */
  private queue: Promise<void> = Promise.resolve();
  private stream = new MediaStream();
  private label: ConnectionLabel = "new";
  private restarts = 0;
  private connectTimer: number | undefined;
  private restartTimer: number | undefined;
  private watchdogTimer: number | undefined;
  private disconnectTimer: number | undefined;
  private closed = false;

  constructor(options: PeerOptions) {
    this.id = options.id;
    this.options = options;
    this.tracks = { audio: options.audio, video: options.video };
    this.build(options.initiator);
  }

  /** Applies a signal from the other side. */
  receive(signal: { description?: SessionDescription; candidate?: Candidate | null }): void {
    this.queue = this.queue
      .then(() => this.apply(signal))
      .catch((error: unknown) => {
        if (!this.closed) console.warn(`call: a signal from ${this.id} failed`, error);
      });
  }

  /** Sends another track of a kind (or none), without renegotiating. */
  setTrack(kind: Kind, track: MediaStreamTrack | null): void {
    if (this.tracks[kind] === track) return;
    this.tracks[kind] = track;
    const transceiver = this.transceivers[kind];
    if (transceiver && !this.closed) {
      transceiver.sender.replaceTrack(track).catch(warnReplace);
    }
  }

  /** The loudness of what they send, 0 to 1, as the last packets said. */
  audioLevel(): number {
    const receiver = this.transceivers.audio?.receiver;
    if (!receiver || typeof receiver.getSynchronizationSources !== "function") return 0;
    let level = 0;
    for (const source of receiver.getSynchronizationSources()) level = Math.max(level, source.audioLevel ?? 0);
    return level;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.pc.close();
  }

  /**
   * A new RTCPeerConnection (the global constructor, looked up now). Events of a connection this
   * one replaced are ignored.
   */
  private build(initiator: boolean): void {
    const pc = new RTCPeerConnection(this.options.config);
    this.pc = pc;
    this.transceivers = { audio: null, video: null };
    this.retired.clear();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswerPending = false;
    const mine = (handler: () => void) => () => {
      if (pc === this.pc && !this.closed) handler();
    };

    pc.addEventListener("negotiationneeded", mine(() => void this.offer(pc)));
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (pc !== this.pc || this.closed) return;
      // An empty candidate string is the end-of-candidates marker; nothing needs it.
      if (candidate && candidate.candidate) this.options.send({ candidate: candidate.toJSON() as Candidate });
    });
    pc.addEventListener("track", mine(() => this.refreshStream()));
    pc.addEventListener("connectionstatechange", mine(() => this.stateChanged()));
    pc.addEventListener("iceconnectionstatechange", mine(() => this.stateChanged()));

    if (initiator) {
      for (const kind of KINDS) {
        this.transceivers[kind] = pc.addTransceiver(this.tracks[kind] ?? kind, { direction: "sendrecv" });
      }
    }
    this.refreshStream();
    window.clearTimeout(this.connectTimer);
    this.connectTimer = window.setTimeout(() => {
      this.connectTimer = undefined;
      if (!this.closed && this.label !== "connected") this.scheduleRestart();
    }, connectTimeout(this.options.polite));
  }

  private async offer(pc: RTCPeerConnection): Promise<void> {
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      if (pc === this.pc) this.sendDescription();
    } catch (error) {
      if (pc === this.pc && !this.closed) console.warn(`call: an offer to ${this.id} failed`, error);
    } finally {
      if (pc === this.pc) this.makingOffer = false;
    }
  }

  private async apply(signal: { description?: SessionDescription; candidate?: Candidate | null }): Promise<void> {
    const { description, candidate } = signal;
    if (this.closed) return;
    if (description) {
      const pc = this.pc;
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswerPending);
      const collision = description.type === "offer" && !readyForOffer;
      if (collision && this.options.polite && pc.currentRemoteDescription === null) {
        // Both sides opened at the same moment and nothing was agreed yet: rather than roll back
        // a first offer (Chrome may then never gather candidates for the answer), start afresh
        // as the answering side.
        pc.close();
        this.build(false);
        return this.apply({ description });
      }
      this.ignoreOffer = !this.options.polite && collision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswerPending = description.type === "answer";
      try {
        // A polite peer with an offer of its own out rolls it back implicitly here.
        await pc.setRemoteDescription(description);
      } finally {
        this.settingRemoteAnswerPending = false;
      }
      if (this.closed || pc !== this.pc) return;
      if (description.type === "offer") {
        this.adoptTransceivers();
        await pc.setLocalDescription();
        if (pc === this.pc) this.sendDescription();
      }
    } else if (candidate) {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (error) {
        // Candidates for an offer this side ignored are expected to fail.
        if (!this.ignoreOffer) throw error;
      }
    }
  }

  /**
   * After applying their offer: the transceivers it created (or matched) become ours, sending
   * in both directions. A transceiver of our own that never got into a negotiation (both sides
   * offered at once and ours was rolled back) is retired, so no kind is carried twice. It is made
   * inactive rather than stopped: Chrome keeps asking to negotiate a stopped transceiver that
   * never had a media section, for ever.
   */
  private adoptTransceivers(): void {
    const all = this.pc.getTransceivers();
    for (const kind of KINDS) {
      const current = this.transceivers[kind];
      if (current && current.mid !== null) continue;
      const found = all.find(
        (t) =>
          t !== current &&
          t.mid !== null &&
          t.direction !== "stopped" &&
          t.receiver.track.kind === kind &&
          !this.retired.has(t) &&
          !KINDS.some((k) => this.transceivers[k] === t),
      );
      if (!found) continue;
      if (current) {
        this.retired.add(current);
        current.direction = "inactive";
        current.sender.replaceTrack(null).catch(warnReplace);
      }
      found.direction = "sendrecv";
      found.sender.replaceTrack(this.tracks[kind]).catch(warnReplace);
      this.transceivers[kind] = found;
    }
    this.refreshStream();
  }

  private sendDescription(): void {
    const local = this.pc.localDescription;
    if (!local || this.closed) return;
    this.options.send({ description: { type: local.type, sdp: local.sdp } });
  }

  /** Their media, as one stream for the tile: the receiving side of our two transceivers. */
  private refreshStream(): void {
    const tracks = KINDS.map((k) => this.transceivers[k]?.receiver.track).filter(
      (t): t is MediaStreamTrack => t !== undefined,
    );
    const current = this.stream.getTracks();
    if (tracks.length === current.length && tracks.every((t) => current.includes(t))) return;
    this.stream = new MediaStream(tracks);
    this.options.onStream(this.stream);
  }

  private stateChanged(): void {
    if (this.closed) return;
    const pc = this.pc;
    const label = connectionLabel(pc.connectionState, pc.iceConnectionState);
    if (label !== this.label) {
      this.label = label;
      this.options.onConnection(label);
    }
    const state = pc.connectionState ?? pc.iceConnectionState;
    if (label === "connected") {
      this.restarts = 0;
      this.clearTimers();
    } else if (state === "failed" || pc.iceConnectionState === "failed") {
      this.scheduleRestart();
    } else if (state === "disconnected" || pc.iceConnectionState === "disconnected") {
      if (this.disconnectTimer === undefined) {
        this.disconnectTimer = window.setTimeout(() => {
          this.disconnectTimer = undefined;
          if (connectionLabel(this.pc.connectionState, this.pc.iceConnectionState) !== "connected") {
            this.scheduleRestart();
          }
        }, DISCONNECTED_GRACE_MS);
      }
    }
  }

  /** An ICE restart after a growing pause; both sides may do it, negotiation sorts them out. */
  private scheduleRestart(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    if (this.restarts >= MAX_RESTARTS) return;
    window.clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.restarts += 1;
    this.restartTimer = window.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed || this.label === "connected") return;
      const pc = this.pc;
      pc.restartIce();
      // An offer that never got its answer would block the restart's offer: take it back, and
      // the connection offers again (with fresh ICE credentials).
      if (pc.signalingState === "have-local-offer") {
        pc.setLocalDescription({ type: "rollback" }).catch(() => {});
      }
      // A restart whose offer went nowhere changes no state: look again later regardless.
      this.watchdogTimer = window.setTimeout(() => {
        this.watchdogTimer = undefined;
        if (!this.closed && this.label !== "connected") this.scheduleRestart();
      }, RESTART_WATCHDOG_MS);
    }, restartDelay(this.restarts));
  }

  private clearTimers(): void {
    for (const timer of [this.connectTimer, this.restartTimer, this.watchdogTimer, this.disconnectTimer]) {
      window.clearTimeout(timer);
    }
    this.connectTimer = undefined;
    this.restartTimer = undefined;
    this.watchdogTimer = undefined;
    this.disconnectTimer = undefined;
  }
}
