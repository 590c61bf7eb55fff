// One WebRTC connection to one other person in the call. Either side may offer at any time
// (first contact, ICE restarts); "perfect negotiation" settles two offers crossing: the impolite
// peer's offer wins and the polite one rolls its own back. Offers are still kept from crossing
// (the impolite side restarts first, the polite side only long after, and once connected the
// polite side holds each offer of its own a moment in case one of theirs is on its way), since
// Chromium does not always recover from a rollback. A lost connection is restarted for as long
// as both are in the call. The connection always carries one audio and one video transceiver in
// both directions, so a person without a camera still receives video, and switching or
// re-enabling a device is a replaceTrack, never a renegotiation.
import { KINDS, type Kind, type SendLimits } from "./media";
import type { Candidate, SessionDescription } from "./protocol";

/** The impolite peer is the one whose id sorts first, as the protocol says; the other is polite. */
export function isPolite(selfId: string, peerId: string): boolean {
  return selfId > peerId;
}

/** The wait before ICE restart number `attempt` (1-based): 1 s, 2 s, 4 s, then 8 s for ever. */
export function restartDelay(attempt: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt - 1), 8000);
}

/**
 * How much later than the impolite side the polite side restarts. Two restart offers that cross
 * (the polite one rolled back, the impolite one answered) can leave Chromium gathering no
 * candidates for ever, so restarts are the impolite side's to make; the polite side's own is only
 * a fallback for an impolite side that has stopped trying.
 */
export const POLITE_RESTART_LAG_MS = 5000;

/** The wait before this side's restart number `attempt`. */
export function restartWait(attempt: number, polite: boolean): number {
  return restartDelay(attempt) + (polite ? POLITE_RESTART_LAG_MS : 0);
}

/**
 * How long the polite side, once connected, holds an offer of its own (an ICE restart) before
 * making it. Both sides often want one at the same moment (new TURN credentials reach both at
 * once); the impolite side's offer then arrives meanwhile, and answering it does what ours would
 * have. An offer of ours taken back costs more than the wait: Chromium 148 then stops rendering
 * the video it receives on that connection, for good.
 */
export const POLITE_OFFER_HOLD_MS = 2000;

/** How long "disconnected" may last (it often heals by itself) before an ICE restart. */
export const DISCONNECTED_GRACE_MS = 4000;

/**
 * How long a connection may take to come up before an ICE restart. The impolite side restarts
 * first; the polite one waits longer, so the two seldom restart at once.
 */
export function connectTimeout(polite: boolean): number {
  return polite ? 15_000 : 9_000;
}

/**
 * How long one restart (ours or theirs) may take before the next is tried, if no state change
 * says anything. The polite side waits longer, so that the impolite side's next restart comes
 * first.
 */
export function restartWatchdog(polite: boolean): number {
  return 12_000 + (polite ? POLITE_RESTART_LAG_MS : 0);
}

/**
 * After this many restarts in a row without getting through, the tile says the connection failed.
 * Restarts go on regardless, for as long as both are in the call: the network may come back.
 */
export const FAILED_AFTER_RESTARTS = 5;

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

/** What the tile says: a connection that restarts keep failing to bring back has failed. */
export function shownLabel(label: ConnectionLabel, restarts: number): ConnectionLabel {
  return label !== "connected" && restarts >= FAILED_AFTER_RESTARTS ? "failed" : label;
}

/**
 * The DTLS fingerprint of a session description. A different one from before means the other
 * side started a new connection, which the old one cannot be renegotiated onto.
 */
export function dtlsFingerprint(sdp: string): string | null {
  const match = /^a=fingerprint:(.+)$/m.exec(sdp);
  return match?.[1]?.trim() ?? null;
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

function warnReplace(error: unknown): void {
  console.warn("call: replaceTrack failed", error);
}

/** Whether the connection's chosen pair of candidates sends through a relay of this side's. */
async function relayed(pc: RTCPeerConnection): Promise<boolean> {
  try {
    const stats = await pc.getStats();
    for (const report of stats.values()) {
      if (report.type !== "transport" || !report.selectedCandidatePairId) continue;
      const pair = stats.get(report.selectedCandidatePairId);
      const local = pair && stats.get(pair.localCandidateId);
      return local?.candidateType === "relay";
    }
  } catch {
    // Closed meanwhile.
  }
  return false;
}

/** Media received so far: video frames decoded; bytes, packets and packets lost of audio. */
export type Received = { frames: number; audio: number; packets: number; lost: number };

export const NOTHING_RECEIVED: Received = { frames: 0, audio: 0, packets: 0, lost: 0 };

/**
 * Media received so far for these tracks: it grows while their media arrives (a track's `muted`
 * says nothing of a sender that stopped, and padding, which a server sends to probe the path,
 * carries no bytes of media).
 */
export async function mediaReceived(pc: RTCPeerConnection, tracks: readonly MediaStreamTrack[]): Promise<Received> {
  const ids = new Set(tracks.map((t) => t.id));
  const received = { ...NOTHING_RECEIVED };
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp" || !ids.has(s.trackIdentifier)) return;
      if (s.kind === "video") {
        received.frames += s.framesDecoded ?? 0;
      } else {
        received.audio += s.bytesReceived ?? 0;
        received.packets += s.packetsReceived ?? 0;
        received.lost += Math.max(0, s.packetsLost ?? 0);
      }
    });
  } catch {
    // Closed meanwhile: nothing more arrives.
  }
  return received;
}

export class Peer {
  readonly id: string;
  private pc!: RTCPeerConnection;
  private readonly options: PeerOptions;
  private makingOffer = false;
  /** An offer of ours held back (see POLITE_OFFER_HOLD_MS), until this timer. */
  private heldOffer: number | undefined;
  private ignoreOffer = false;
  private settingRemoteAnswerPending = false;
  /** The transceiver of each kind that carries our track and their media. */
  private transceivers: Record<Kind, RTCRtpTransceiver | null> = { audio: null, video: null };
  private tracks: Record<Kind, MediaStreamTrack | null>;
  private readonly retired = new Set<RTCRtpTransceiver>();
  /** Signals are applied one at a time, in the order they came. */
  private queue: Promise<void> = Promise.resolve();
  private stream = new MediaStream();
  /** The connection's own state, and what the tile was last told. */
  private label: ConnectionLabel = "new";
  private shown: ConnectionLabel = "new";
  /** Restarts (ours or theirs) since the connection was last up. */
  private restarts = 0;
  private limits: SendLimits | null = null;
  /** setParameters calls one at a time: each builds on what the previous one set. */
  private limitsQueue: Promise<void> = Promise.resolve();
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

  /**
   * New ICE servers (fresh TURN credentials): later gathering uses them, and a connection that
   * goes through a TURN relay of its own restarts its ICE on them, as the relay ends an
   * allocation when the credential it was made with expires.
   */
  renewIce(config: RTCConfiguration): void {
    this.options.config = config;
    try {
      this.pc.setConfiguration(config);
    } catch (error) {
      console.warn("call: setConfiguration failed", error);
      return;
    }
    const pc = this.pc;
    void relayed(pc).then((viaRelay) => {
      if (viaRelay && pc === this.pc && !this.closed && pc.signalingState === "stable") pc.restartIce();
    });
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

  /** Caps what our video to them may use; applied once the connection is up. */
  setSendLimits(limits: SendLimits): void {
    const old = this.limits;
    if (old?.maxBitrate === limits.maxBitrate && old.scaleResolutionDownBy === limits.scaleResolutionDownBy) return;
    this.limits = limits;
    if (this.label === "connected") this.applyLimits();
  }

  /** The loudness of what they send, 0 to 1, as the last packets said. */
  audioLevel(): number {
    const receiver = this.transceivers.audio?.receiver;
    if (!receiver || typeof receiver.getSynchronizationSources !== "function") return 0;
    let level = 0;
    for (const source of receiver.getSynchronizationSources()) level = Math.max(level, source.audioLevel ?? 0);
    return level;
  }

  /** Their media received so far. */
  mediaReceived(): Promise<Received> {
    return mediaReceived(this.pc, this.stream.getTracks());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.dropHeldOffer();
    this.pc.close();
  }

  /**
   * A new RTCPeerConnection (the global constructor, looked up now), in place of the one there
   * was, if any. Events of a connection this one replaced are ignored.
   */
  private build(initiator: boolean): void {
    this.pc?.close();
    const pc = new RTCPeerConnection(this.options.config);
    this.pc = pc;
    this.transceivers = { audio: null, video: null };
    this.retired.clear();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswerPending = false;
    this.dropHeldOffer();
    const mine = (handler: () => void) => () => {
      if (pc === this.pc && !this.closed) handler();
    };

    pc.addEventListener("negotiationneeded", mine(() => this.negotiationNeeded(pc)));
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

  private negotiationNeeded(pc: RTCPeerConnection): void {
    if (!this.options.polite || pc.currentRemoteDescription === null) {
      void this.offer(pc);
      return;
    }
    if (this.heldOffer !== undefined) return;
    this.heldOffer = window.setTimeout(() => {
      this.heldOffer = undefined;
      // Answering their offer meanwhile settled what ours was for; if not, the browser asks again.
      if (pc === this.pc && !this.closed && pc.signalingState === "stable") void this.offer(pc);
    }, POLITE_OFFER_HOLD_MS);
  }

  /** Our held offer will not be made: theirs came, or the connection is gone. */
  private dropHeldOffer(): void {
    window.clearTimeout(this.heldOffer);
    this.heldOffer = undefined;
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
      const known = pc.remoteDescription;
      if (description.type === "offer" && known && dtlsFingerprint(known.sdp) !== dtlsFingerprint(description.sdp)) {
        // They started over with a new connection (their offer had gone unanswered): so do we.
        this.build(false);
        return this.apply({ description });
      }
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswerPending);
      const collision = description.type === "offer" && !readyForOffer;
      if (collision && this.options.polite && pc.currentRemoteDescription === null) {
        // Both sides opened at the same moment and nothing was agreed yet: rather than roll back
        // a first offer (Chrome may then never gather candidates for the answer), start afresh
        // as the answering side.
        this.build(false);
        return this.apply({ description });
      }
      this.ignoreOffer = !this.options.polite && collision;
      if (this.ignoreOffer) return;
      const restart = description.type === "offer" && pc.currentRemoteDescription !== null;
      this.settingRemoteAnswerPending = description.type === "answer";
      try {
        // A polite peer with an offer of its own out rolls it back implicitly here.
        await pc.setRemoteDescription(description);
      } finally {
        this.settingRemoteAnswerPending = false;
      }
      if (this.closed || pc !== this.pc) return;
      if (description.type === "offer") {
        this.dropHeldOffer();
        this.theirOffer(restart);
        this.adoptTransceivers();
        await pc.setLocalDescription();
        if (pc === this.pc) this.sendDescription();
        if (collision && pc === this.pc) this.restartVideo();
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
   * Their offer is being answered: a restart of ours now would only cross theirs (or one of theirs
   * that is a restart already does what ours would). Ours waits until theirs has had its time.
   */
  private theirOffer(restart: boolean): void {
    window.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    window.clearTimeout(this.disconnectTimer);
    this.disconnectTimer = undefined;
    if (this.label === "connected") return;
    if (restart) {
      this.restarts += 1;
      this.showLabel();
    }
    this.armWatchdog();
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

  /**
   * Chromium 148 stops encoding our video when an offer of ours is taken back (both sides offered
   * at once, both restarting ICE as new TURN credentials come, and we are the polite side): the
   * connection stays up and carries our audio, but no video frame. Setting the track again starts
   * the encoder; elsewhere it costs a frame.
   */
  private restartVideo(): void {
    const sender = this.transceivers.video?.sender;
    if (!sender || !this.tracks.video) return;
    sender
      .replaceTrack(null)
      .then(() => sender.replaceTrack(this.tracks.video))
      .catch(warnReplace);
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

  /** The encodings are only there once the sender was negotiated; a connection that is up has. */
  private applyLimits(): void {
    const sender = this.transceivers.video?.sender;
    const limits = this.limits;
    if (!sender || !limits || this.closed) return;
    this.limitsQueue = this.limitsQueue
      .then(async () => {
        const parameters = sender.getParameters();
        const encoding = parameters.encodings?.[0];
        if (!encoding) return;
        if (
          encoding.maxBitrate === limits.maxBitrate &&
          (encoding.scaleResolutionDownBy ?? 1) === limits.scaleResolutionDownBy
        ) {
          return;
        }
        encoding.maxBitrate = limits.maxBitrate;
        encoding.scaleResolutionDownBy = limits.scaleResolutionDownBy;
        await sender.setParameters(parameters);
      })
      .catch((error: unknown) => {
        if (!this.closed) console.warn(`call: limiting the video to ${this.id} failed`, error);
      });
  }

  private stateChanged(): void {
    if (this.closed) return;
    const pc = this.pc;
    this.label = connectionLabel(pc.connectionState, pc.iceConnectionState);
    const state = pc.connectionState ?? pc.iceConnectionState;
    if (this.label === "connected") {
      this.restarts = 0;
      this.clearTimers();
      this.applyLimits();
    } else if (state === "failed" || pc.iceConnectionState === "failed") {
      this.scheduleRestart();
    } else if (state === "disconnected" || pc.iceConnectionState === "disconnected") {
      if (this.disconnectTimer === undefined) {
        this.disconnectTimer = window.setTimeout(() => {
          this.disconnectTimer = undefined;
          if (this.label !== "connected") this.scheduleRestart();
        }, DISCONNECTED_GRACE_MS);
      }
    }
    this.showLabel();
  }

  private showLabel(): void {
    const shown = shownLabel(this.label, this.restarts);
    if (shown === this.shown) return;
    this.shown = shown;
    this.options.onConnection(shown);
  }

  /** An ICE restart after a growing pause, the polite side's well after the impolite one's. */
  private scheduleRestart(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    window.clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    this.restartTimer = window.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed && this.label !== "connected") this.restart();
    }, restartWait(this.restarts + 1, this.options.polite));
  }

  private restart(): void {
    this.restarts += 1;
    this.showLabel();
    if (this.pc.signalingState === "have-local-offer") {
      // Our last offer never got its answer, and a restart cannot be offered on top of it. Taking
      // it back by hand and then answering theirs can leave Chromium gathering nothing, so start
      // over with a new connection instead: its new fingerprint tells them to do the same.
      this.build(true);
    } else {
      this.pc.restartIce();
    }
    this.armWatchdog();
  }

  /** A restart whose offer went nowhere changes no state: look again later regardless. */
  private armWatchdog(): void {
    window.clearTimeout(this.watchdogTimer);
    this.watchdogTimer = window.setTimeout(() => {
      this.watchdogTimer = undefined;
      if (!this.closed && this.label !== "connected") this.scheduleRestart();
    }, restartWatchdog(this.options.polite));
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
