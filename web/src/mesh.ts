// The mesh: one peer connection to each other person in the call, each carrying our tracks to
// them and theirs to us. The newcomer offers to everyone already there; should an offer never
// come, the other side offers after a while. Our upload grows with every peer, so each gets its
// share of a fixed video budget.
import { sendLimits } from "./media";
import { isPolite, NOTHING_RECEIVED, Peer, type OutgoingSignal, type PeerOptions, type Received } from "./peer";
import type { Signal } from "./protocol";
import type { CallTransport, LocalTracks, TransportEvents } from "./transport";

/**
 * How long to wait for a newcomer's offer before offering ourselves. The newcomer offers, so
 * this only matters when that offer was lost; negotiation copes if both end up offering.
 */
export const OFFER_FALLBACK_MS = 5000;

/** The part of a peer connection the mesh uses (a fake in the unit tests). */
export type MeshPeer = Pick<Peer, "receive" | "setTrack" | "setSendLimits" | "renewIce" | "audioLevel" | "mediaReceived" | "close">;

export type MeshOptions = {
  /** Our own id in the room, which decides who is polite. */
  selfId(): string;
  /** Whether someone is still in the call, for an offer of our own after waiting for theirs. */
  inCall(id: string): boolean;
  /** Sends a signal to someone through the server. */
  send(to: string, signal: OutgoingSignal): void;
  events: TransportEvents;
  makePeer?: (options: PeerOptions) => MeshPeer;
};

export class MeshTransport implements CallTransport {
  private readonly peers = new Map<string, MeshPeer>();
  private readonly fallbacks = new Map<string, number>();
  private config: RTCConfiguration = {};
  private tracks: LocalTracks = { audio: null, video: null, screen: false };
  private closed = false;

  constructor(private readonly options: MeshOptions) {}

  joined(config: RTCConfiguration, others: readonly string[]): void {
    this.config = config;
    const keep = new Set(others);
    for (const id of this.remotes()) if (!keep.has(id)) this.gone(id);
    for (const id of others) if (!this.peers.has(id)) this.connect(id, true);
  }

  present(id: string, justJoined: boolean): void {
    // A newcomer offers to us; should that offer never come, we offer instead.
    if (justJoined || !this.peers.has(id)) this.scheduleFallback(id);
  }

  gone(id: string): void {
    window.clearTimeout(this.fallbacks.get(id));
    this.fallbacks.delete(id);
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.close();
    this.peers.delete(id);
    this.limitVideo();
  }

  signal(sig: Signal): void {
    if (this.closed) return;
    let peer = this.peers.get(sig.from);
    if (!peer) {
      // Only an offer starts a connection; a stray answer or candidate has nothing to belong to.
      if (sig.description?.type !== "offer") return;
      this.options.events.arriving(sig.from);
      peer = this.connect(sig.from, false);
    }
    peer.receive(sig.description ? { description: sig.description } : { candidate: sig.candidate });
  }

  publish(tracks: LocalTracks): void {
    this.tracks = tracks;
    for (const peer of this.peers.values()) {
      peer.setTrack("audio", tracks.audio);
      peer.setTrack("video", tracks.video);
    }
    this.limitVideo();
  }

  renewIce(config: RTCConfiguration): void {
    this.config = { ...this.config, ...config };
    for (const peer of this.peers.values()) peer.renewIce(this.config);
  }

  audioLevel(id: string): number {
    return this.peers.get(id)?.audioLevel() ?? 0;
  }

  /** Someone's media received so far (none without a connection to them). */
  mediaFrom(id: string): Promise<Received> {
    return this.peers.get(id)?.mediaReceived() ?? Promise.resolve(NOTHING_RECEIVED);
  }

  remotes(): string[] {
    return [...new Set([...this.peers.keys(), ...this.fallbacks.keys()])];
  }

  close(): void {
    this.closed = true;
    for (const id of this.remotes()) this.gone(id);
  }

  private connect(id: string, initiator: boolean): MeshPeer {
    window.clearTimeout(this.fallbacks.get(id));
    this.fallbacks.delete(id);
    const { events } = this.options;
    const make = this.options.makePeer ?? ((options: PeerOptions) => new Peer(options));
    const peer = make({
      id,
      polite: isPolite(this.options.selfId(), id),
      config: this.config,
      initiator,
      audio: this.tracks.audio,
      video: this.tracks.video,
      send: (signal) => this.options.send(id, signal),
      onConnection: (label) => events.connection(id, label),
      onStream: (stream) => events.stream(id, stream),
    });
    this.peers.set(id, peer);
    this.limitVideo();
    return peer;
  }

  private scheduleFallback(id: string): void {
    if (this.closed || this.peers.has(id) || this.fallbacks.has(id)) return;
    const timer = window.setTimeout(() => {
      this.fallbacks.delete(id);
      if (!this.closed && this.options.inCall(id) && !this.peers.has(id)) this.connect(id, true);
    }, OFFER_FALLBACK_MS);
    this.fallbacks.set(id, timer);
  }

  private limitVideo(): void {
    const limits = sendLimits(this.peers.size, this.tracks.screen);
    for (const peer of this.peers.values()) peer.setSendLimits(limits);
  }
}
