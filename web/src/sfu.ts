// A call through the media server: one peer connection to the server carries our tracks up
// (the camera in three layers, so that the server can send each viewer the one that fits) and
// everyone else's down. We offer once, with one audio and one video sender; after that the
// server offers whenever someone's tracks come or go, and we answer (server-driven
// renegotiation: offers never cross). A changed camera, a shared screen or a muted microphone
// only replaces the track of a sender, and needs no offer. Each remote track's stream is named
// by the id of the person it belongs to.
import { connectionLabel, dtlsFingerprint, mediaReceived, NOTHING_RECEIVED, type ConnectionLabel, type Received } from "./peer";
import type { Signal } from "./protocol";
import { QUALITY_EVERY_MS, qualityOf, type CallTransport, type LocalTracks, type TransportEvents } from "./transport";

/** The camera's layers, lowest first, as the server expects them: a quarter, a half and the whole. */
export const CAMERA_LAYERS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_700_000 },
];

/** How often the tiles' sizes are looked at, to tell the server what we show. */
export const VIEW_EVERY_MS = 1000;
/** The most tiles, and entries of the list of people, one view may name (the server's limits). */
const VIEW_TILES_MAX = 100;
const VIEW_PEOPLE_MAX = 100;

export type Tile = { id: string; height: number };

export type SfuOptions = {
  /** Sends our offer to the media server, with the tiles we show (the server offers only their
   * video); its answer, or null when refused or lost. */
  join(sdp: string, tiles: Tile[] | undefined): Promise<string | null>;
  /** Sends our answer to the server's offer; false when refused or lost. */
  answer(sdp: string): Promise<boolean>;
  /** Tells the server which of the others we show, and how tall, and whose entries in the list
   * of people (with their media state) are on screen. */
  view(tiles: Tile[], people: string[]): void;
  /** The others' tiles on the screen now, in device pixels. */
  tiles(): Tile[];
  /** The people whose entries in the list of people are on screen now. */
  peopleShown?: () => string[];
  events: TransportEvents;
  makeConnection?: (config: RTCConfiguration) => RTCPeerConnection;
};

export class SfuTransport implements CallTransport {
  private pc: RTCPeerConnection | null = null;
  private audio: RTCRtpSender | null = null;
  private video: RTCRtpSender | null = null;
  private tracks: LocalTracks = { audio: null, video: null, screen: false };
  /** Each person's stream, and the receiver of their sound. */
  private readonly streams = new Map<string, MediaStream>();
  /** Who speaks, as the server last said (it reads everyone's audio levels). */
  private speakers = new Set<string>();
  /** The server's offers, answered one at a time in the order they came. */
  private negotiation: Promise<void> = Promise.resolve();
  private viewTimer: number | undefined;
  private qualityTimer: number | undefined;
  /** Each inbound stream's packets received and lost when last read, by track id. */
  private counted = new Map<string, { received: number; lost: number }>();
  /** Our video's packets lost as the server last reported, and sent. */
  private ours = { sent: 0, lost: 0 };
  private activeLayers = new Set(CAMERA_LAYERS.map((l) => l.rid ?? ""));
  /** Changes of the layers sent, one at a time. */
  private layersChange: Promise<void> = Promise.resolve();
  private lastView = "";
  /** Sending nothing to the server: a call of two talks directly meanwhile (pair.ts). */
  private held = false;
  private closed = false;

  constructor(private readonly options: SfuOptions) {}

  joined(config: RTCConfiguration, _others: readonly string[]): void {
    if (this.pc) return;
    const make = this.options.makeConnection ?? ((c: RTCConfiguration) => new RTCPeerConnection(c));
    // The server's address is in its answer: no STUN or TURN is needed to reach it, but a
    // network that blocks UDP reaches it through TURN.
    const pc = make(config);
    this.pc = pc;
    this.audio = pc.addTransceiver("audio", { direction: "sendonly" }).sender;
    this.video = pc.addTransceiver("video", { direction: "sendonly", sendEncodings: CAMERA_LAYERS }).sender;
    this.publish(this.tracks);
    pc.ontrack = (ev) => this.track(ev);
    pc.onconnectionstatechange = () => this.connectionChanged();
    this.negotiation = this.offer(pc);
    this.viewTimer = window.setInterval(() => this.sendView(), VIEW_EVERY_MS);
    this.qualityTimer = window.setInterval(() => void this.readQuality(), QUALITY_EVERY_MS);
  }

  present(_id: string, _justJoined: boolean): void {
    // The server offers their tracks once they publish.
  }

  gone(id: string): void {
    // The server stops their tracks in its next offer; their tile goes now.
    this.streams.delete(id);
    this.speakers.delete(id);
  }

  /**
   * The server says which layers of our camera anyone receives: the others are not encoded or
   * sent at all, which spares our upload and our CPU (a layer comes back when someone needs it).
   */
  sendLayers(active: readonly string[]): void {
    const sender = this.video;
    if (!sender || this.closed) return;
    this.activeLayers = new Set(active);
    this.layersChange = this.layersChange.then(async () => {
      const params = sender.getParameters();
      if (!params.encodings?.length) return;
      let changed = false;
      for (const encoding of params.encodings) {
        const on = encoding.rid === undefined || this.activeLayers.has(encoding.rid);
        if (encoding.active !== on) {
          encoding.active = on;
          changed = true;
        }
      }
      if (changed) await sender.setParameters(params).catch(() => {});
    });
  }

  /** The server says who speaks now. */
  speaking(ids: readonly string[]): void {
    this.speakers = new Set(ids);
  }

  signal(_sig: Signal): void {
    // Browser-to-browser signals have no place in a call through the server.
  }

  /** The server's offer: answered once those before it are. */
  serverOffer(sdp: string): void {
    const pc = this.pc;
    if (!pc || this.closed) return;
    this.negotiation = this.negotiation.then(() => this.answerOffer(pc, sdp));
  }

  publish(tracks: LocalTracks): void {
    this.tracks = tracks;
    // A track that cannot be set now is set by the next publish; nothing else depends on it.
    void this.audio?.replaceTrack(this.held ? null : tracks.audio).catch(() => {});
    void this.video?.replaceTrack(this.held ? null : tracks.video).catch(() => {});
  }

  /**
   * Stops sending our tracks to the server, or sends them again. The connection stays up: when
   * sending resumes, the first frame is a keyframe and the others see us within a round trip.
   */
  hold(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    this.publish(this.tracks);
  }

  /** Someone's media received from the server so far. */
  mediaFrom(id: string): Promise<Received> {
    const stream = this.streams.get(id);
    return this.pc && stream ? mediaReceived(this.pc, stream.getTracks()) : Promise.resolve(NOTHING_RECEIVED);
  }

  renewIce(config: RTCConfiguration): void {
    try {
      this.pc?.setConfiguration(config);
    } catch {
      // A configuration the browser refuses keeps the one in use.
    }
  }

  /** Loud (1) while the server counts them among the speakers, else silent: in a large call no
   * browser reads everyone's levels itself. */
  audioLevel(id: string): number {
    return this.speakers.has(id) ? 1 : 0;
  }

  remotes(): string[] {
    return [...this.streams.keys()];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    window.clearInterval(this.viewTimer);
    window.clearInterval(this.qualityTimer);
    this.pc?.close();
    this.pc = null;
    this.streams.clear();
    this.speakers.clear();
  }

  private async offer(pc: RTCPeerConnection): Promise<void> {
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const sdp = pc.localDescription?.sdp;
      if (!sdp || this.closed) return;
      // No tiles laid out yet: the server offers everyone's video until our first view.
      const tiles = this.shownTiles();
      const answer = await this.options.join(sdp, tiles.length ? tiles : undefined);
      if (answer === null || this.closed) return this.failed();
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (error) {
      if (!this.closed) {
        console.warn("call: the media server's answer could not be used", error);
        this.failed();
      }
    }
  }

  private async answerOffer(pc: RTCPeerConnection, sdp: string): Promise<void> {
    if (this.closed) return;
    // An offer of another connection: the media server the call left (a node handing it over)
    // may still renegotiate the connection it had. Applied here it would point this one at it.
    const current = pc.remoteDescription?.sdp;
    if (current && dtlsFingerprint(current) !== dtlsFingerprint(sdp)) {
      console.info("call: an offer of a connection this page no longer has was left aside");
      return;
    }
    try {
      await pc.setRemoteDescription({ type: "offer", sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      const answer = pc.localDescription?.sdp;
      if (answer && !this.closed) await this.options.answer(answer);
    } catch (error) {
      if (!this.closed) console.warn("call: the media server's offer could not be used", error);
    }
  }

  private track(ev: RTCTrackEvent): void {
    const stream = ev.streams[0];
    if (!stream) return;
    const id = stream.id;
    if (this.streams.get(id) !== stream) {
      this.streams.set(id, stream);
      this.options.events.arriving(id);
      this.options.events.stream(id, stream);
    }
    this.connectionChanged();
    this.sendView();
  }

  private connectionChanged(): void {
    const pc = this.pc;
    if (!pc) return;
    const label: ConnectionLabel = connectionLabel(pc.connectionState, pc.iceConnectionState);
    for (const id of this.streams.keys()) this.options.events.connection(id, label);
  }

  private failed(): void {
    for (const id of this.streams.keys()) this.options.events.connection(id, "failed");
  }

  /**
   * How well each person's media arrives (packets lost of those sent since the last reading; none
   * at all is poor), and how well ours goes out (what the server reports losing of our video).
   */
  private async readQuality(): Promise<void> {
    const pc = this.pc;
    const report = this.options.events.quality;
    if (!pc || this.closed || !report) return;
    if (pc.connectionState === "disconnected" || pc.connectionState === "failed") {
      // Nothing arrives, nothing gets through: it is our network (or the server).
      for (const id of this.streams.keys()) report(id, "poor");
      report("self", "poor");
      return;
    }
    if (pc.connectionState !== "connected") return;
    const streamOf = new Map<string, string>();
    for (const t of pc.getTransceivers()) {
      const stream = [...this.streams].find(([, s]) => s.getTracks().includes(t.receiver.track))?.[0];
      if (stream && t.currentDirection === "recvonly") streamOf.set(t.receiver.track.id, stream);
    }
    const perPerson = new Map<string, { received: number; lost: number }>();
    const ours = { sent: 0, lost: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        const id = streamOf.get(s.trackIdentifier);
        if (!id) return;
        const before = this.counted.get(s.trackIdentifier) ?? { received: 0, lost: 0 };
        const now = { received: s.packetsReceived ?? 0, lost: Math.max(0, s.packetsLost ?? 0) };
        this.counted.set(s.trackIdentifier, now);
        const sum = perPerson.get(id) ?? { received: 0, lost: 0 };
        perPerson.set(id, { received: sum.received + now.received - before.received, lost: sum.lost + now.lost - before.lost });
      } else if (s.type === "outbound-rtp" && s.kind === "video") {
        ours.sent += s.packetsSent ?? 0;
      } else if (s.type === "remote-inbound-rtp" && s.kind === "video") {
        ours.lost += Math.max(0, s.packetsLost ?? 0);
      }
    });
    if (this.closed) return;
    // Audio is always sent (video may be paused by choice): it is what tells a path's health.
    for (const [id, counts] of perPerson) report(id, qualityOf(counts.received, counts.lost));
    const sent = ours.sent - this.ours.sent;
    const lost = ours.lost - this.ours.lost;
    this.ours = ours;
    // Nothing from anyone: our own path is what fails.
    const nothingIn = perPerson.size > 0 && [...perPerson.values()].every((c) => c.received === 0);
    if (nothingIn) report("self", "poor");
    else if (sent > 0) report("self", qualityOf(Math.max(0, sent - lost), Math.max(0, lost)));
  }

  /** Every tile shown, with media or not yet (the server offers a person's video only once a
   * tile shows them), within the server's limit. */
  private shownTiles(): Tile[] {
    return this.options.tiles().slice(0, VIEW_TILES_MAX);
  }

  /** Tells the server what we show, when it changed: every second, as tracks come, and at once
   * when another page of tiles is shown. */
  sendView(): void {
    if (this.closed) return;
    const tiles = this.shownTiles();
    const people = (this.options.peopleShown?.() ?? []).sort().slice(0, VIEW_PEOPLE_MAX);
    const view = JSON.stringify([tiles, people]);
    if (view === this.lastView) return;
    this.lastView = view;
    this.options.view(tiles, people);
  }
}
