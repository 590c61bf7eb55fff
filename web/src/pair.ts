// A call through the media server in which two people talk browser to browser while they are
// two, as Jitsi Meet does: a direct path costs the server nothing and is the shortest there is.
// The connection to the server is made all the same and stays up, idle while the direct path
// carries the media, so that moving to it (a third joins, the direct path fails) is a matter of
// sending again, not of connecting: nobody's picture stops for more than a moment. The server
// takes no part in this; docs/protocol.md ("A call of two") has the rules both sides follow.
import { isPolite, NOTHING_RECEIVED, type ConnectionLabel, type Received } from "./peer";
import type { Signal } from "./protocol";
import { QUALITY_EVERY_MS, qualityOf, type CallTransport, type LocalTracks, type Quality, type TransportEvents } from "./transport";

/** How often the media received on a path is counted, to see it arrive. */
export const WATCH_EVERY_MS = 250;
/** How long a connected direct path may carry nothing before we take it all the same: the other
 * person may send nothing at all (no camera, no microphone). */
export const QUIET_FOR_MS = 2000;
/** The longest we keep showing the direct path after leaving it, waiting for the server's media
 * (its video may take a few seconds when everyone's starts at once). */
export const SWITCH_WITHIN_MS = 5000;
/** How long a left direct connection stays open after we stop showing it: the other side may
 * still be showing it while the server's media reaches them (for as long again at most). */
export const CLOSE_AFTER_MS = 5000;

/** A path that can say whether someone's media arrives on it. */
export interface CountingTransport extends CallTransport {
  /** Someone's media received so far. */
  mediaFrom(id: string): Promise<Received>;
}

/** The path through the media server. */
export interface ServerTransport extends CountingTransport {
  /** Stops sending to the server (true) or sends again (false). */
  hold(held: boolean): void;
}

export type PairOptions = {
  server: (events: TransportEvents) => ServerTransport;
  /** A browser-to-browser path (the mesh, with one peer). */
  direct: (events: TransportEvents) => CountingTransport;
  selfId(): string;
  /** Whether a direct path is wanted now (not when the data saver asks the server for less). */
  directAllowed(): boolean;
  events: TransportEvents;
};

/** A direct path to the one other person, from its start to its close. */
type Direct = {
  partner: string;
  transport: CountingTransport;
  stream: MediaStream | null;
  label: ConnectionLabel;
  /** Their media on our screen comes from this path. */
  shown: boolean;
  /** What had arrived when we last looked, to see more arrive. */
  counted: Received;
  /** When we first saw it connected with nothing arriving yet. */
  quietSince: number | null;
  /** While shown: how well their media arrives on it, read now and then. */
  qualityTimer: number | undefined;
  timer: number | undefined;
};

export class PairTransport implements CallTransport {
  readonly server: ServerTransport;
  private readonly others = new Set<string>();
  private readonly serverStreams = new Map<string, MediaStream>();
  private readonly serverLabels = new Map<string, ConnectionLabel>();
  /** The direct path to the one other person, while we are two. */
  private current: Direct | null = null;
  /** Direct paths being left: still shown until the server's media arrives. */
  private readonly leaving = new Set<Direct>();
  private config: RTCConfiguration = {};
  private tracks: LocalTracks = { audio: null, video: null, screen: false };
  private closed = false;

  constructor(private readonly options: PairOptions) {
    this.server = options.server(this.serverEvents());
  }

  joined(config: RTCConfiguration, others: readonly string[]): void {
    this.config = config;
    for (const id of others) this.others.add(id);
    this.server.joined(config, others);
    this.reconsider();
  }

  present(id: string, justJoined: boolean): void {
    this.others.add(id);
    this.server.present(id, justJoined);
    this.reconsider();
  }

  gone(id: string): void {
    this.others.delete(id);
    this.server.gone(id);
    this.serverStreams.delete(id);
    this.serverLabels.delete(id);
    for (const direct of this.directs()) {
      // Nothing more of theirs comes by either path: no reason to wait.
      if (direct.partner === id) this.closeDirect(direct);
    }
    this.reconsider();
  }

  signal(sig: Signal): void {
    if (this.closed) return;
    // An offer from the one other person may come before we have seen them join.
    if (!this.current && sig.description?.type === "offer" && this.others.size <= 1) {
      this.others.add(sig.from);
      this.reconsider();
    }
    this.directs().find((d) => d.partner === sig.from)?.transport.signal(sig);
  }

  publish(tracks: LocalTracks): void {
    this.tracks = tracks;
    this.server.publish(tracks);
    for (const direct of this.directs()) direct.transport.publish(tracks);
  }

  renewIce(config: RTCConfiguration): void {
    this.config = { ...this.config, ...config };
    this.server.renewIce(config);
    for (const direct of this.directs()) direct.transport.renewIce(config);
  }

  audioLevel(id: string): number {
    const direct = this.shownDirect(id);
    return direct ? direct.transport.audioLevel(id) : this.server.audioLevel(id);
  }

  remotes(): string[] {
    return [...new Set([...this.server.remotes(), ...this.directs().map((d) => d.partner)])];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const direct of this.directs()) this.closeDirect(direct);
    this.server.close();
  }

  /** Which path we want now: direct to the one other person, or the server for all. */
  reconsider(): void {
    if (this.closed) return;
    const [only] = this.others;
    const partner = this.others.size === 1 && this.options.directAllowed() ? (only ?? null) : null;
    if (this.current && this.current.partner !== partner) this.leave(this.current);
    if (partner !== null && !this.current) this.start(partner);
  }

  private directs(): Direct[] {
    return [...(this.current ? [this.current] : []), ...this.leaving];
  }

  private shownDirect(id: string): Direct | undefined {
    return this.directs().find((d) => d.partner === id && d.shown);
  }

  private start(partner: string): void {
    const direct: Direct = { partner, transport: null!, stream: null, label: "new", shown: false, counted: NOTHING_RECEIVED, quietSince: null, qualityTimer: undefined, timer: undefined };
    direct.transport = this.options.direct(this.directEvents(direct));
    this.current = direct;
    direct.transport.publish(this.tracks);
    // The one whose id sorts first offers; the other waits for that offer (and offers itself if
    // it never comes).
    if (isPolite(this.options.selfId(), partner)) {
      direct.transport.joined(this.config, []);
      direct.transport.present(partner, true);
    } else {
      direct.transport.joined(this.config, [partner]);
    }
    this.watch(direct);
  }

  /** Looks for the direct path's media, and shows it once it flows. */
  private watch(direct: Direct): void {
    window.clearInterval(direct.timer);
    direct.quietSince = null;
    direct.timer = window.setInterval(async () => {
      if (direct !== this.current || direct.shown || direct.label !== "connected") {
        direct.quietSince = null;
        return;
      }
      const received = await direct.transport.mediaFrom(direct.partner);
      const more = received.frames > direct.counted.frames || received.audio > direct.counted.audio;
      direct.counted = received;
      const now = Date.now();
      direct.quietSince ??= now;
      const flowing = more || now - direct.quietSince >= QUIET_FOR_MS;
      if (flowing && direct === this.current && direct.label === "connected" && direct.stream) this.show(direct);
    }, WATCH_EVERY_MS);
  }

  private show(direct: Direct): void {
    direct.shown = true;
    window.clearInterval(direct.timer);
    direct.timer = undefined;
    this.server.hold(true);
    const { events } = this.options;
    if (direct.stream) events.stream(direct.partner, direct.stream);
    events.connection(direct.partner, direct.label);
    // Their media arrives on it: our network is good enough, whatever the idle path said.
    events.quality?.("self", "good");
    this.watchQuality(direct);
  }

  /** Their tile's quality, from the share of their audio lost on the direct path (as sfu.ts
   * reads it on the server's). */
  private watchQuality(direct: Direct): void {
    let before: Received | null = null;
    window.clearInterval(direct.qualityTimer);
    direct.qualityTimer = window.setInterval(async () => {
      const now = await direct.transport.mediaFrom(direct.partner);
      const last = before;
      before = now;
      if (!last || !direct.shown) return;
      this.options.events.quality?.(direct.partner, qualityOf(now.packets - last.packets, now.lost - last.lost));
    }, QUALITY_EVERY_MS);
  }

  /**
   * Back to the server for `direct`'s partner: we send to it again at once, and show the
   * server's media once it arrives (or after [`SWITCH_WITHIN_MS`] at most): their video, if
   * video comes on the direct path, else their sound.
   */
  private unshow(direct: Direct): void {
    this.server.hold(false);
    if (!direct.shown) return;
    const partner = direct.partner;
    const switchOver = () => {
      window.clearInterval(direct.timer);
      direct.timer = undefined;
      if (!direct.shown) return;
      this.showServer(direct);
      if (this.leaving.has(direct)) window.setTimeout(() => this.closeDirect(direct), CLOSE_AFTER_MS);
    };
    if (direct.label !== "connected") return switchOver();
    let last: { server: Received; direct: Received } | null = null;
    const began = Date.now();
    window.clearInterval(direct.timer);
    direct.timer = window.setInterval(async () => {
      const now = { server: await this.server.mediaFrom(partner), direct: await direct.transport.mediaFrom(partner) };
      const before = last;
      last = now;
      if (!before) return;
      const video = now.direct.frames > before.direct.frames;
      const arrived = video ? now.server.frames > before.server.frames : now.server.audio > before.server.audio;
      if (arrived || Date.now() - began >= SWITCH_WITHIN_MS) switchOver();
    }, WATCH_EVERY_MS);
  }

  /** We are no longer two (or want the server): the direct path goes, without a gap. */
  private leave(direct: Direct): void {
    this.current = null;
    this.leaving.add(direct);
    if (direct.shown) this.unshow(direct);
    else this.closeDirect(direct);
  }

  private closeDirect(direct: Direct): void {
    window.clearInterval(direct.timer);
    window.clearInterval(direct.qualityTimer);
    direct.timer = undefined;
    direct.transport.close();
    this.leaving.delete(direct);
    if (this.current === direct) this.current = null;
    if (direct.shown && !this.closed) {
      this.server.hold(false);
      this.showServer(direct);
    }
  }

  /** `direct`'s partner on the tile from the server's path again. */
  private showServer(direct: Direct): void {
    direct.shown = false;
    window.clearInterval(direct.qualityTimer);
    const { partner } = direct;
    const stream = this.serverStreams.get(partner);
    if (stream) this.options.events.stream(partner, stream);
    this.options.events.connection(partner, this.serverLabels.get(partner) ?? "connecting");
  }

  private directEvents(direct: Direct): TransportEvents {
    const { events } = this.options;
    return {
      arriving: () => {},
      stream: (_id, stream) => {
        direct.stream = stream;
        if (direct.shown) events.stream(direct.partner, stream);
      },
      connection: (_id, label) => {
        const was = direct.label;
        direct.label = label;
        if (direct.shown) events.connection(direct.partner, label);
        if (direct === this.current && was === "connected" && label !== "connected") {
          // The direct path broke: the server carries the media until it is back.
          this.unshow(direct);
          this.watch(direct);
        }
      },
      quality: (id: string | "self", quality: Quality) => {
        if (direct.shown) events.quality?.(id === "self" ? "self" : direct.partner, quality);
      },
    };
  }

  private serverEvents(): TransportEvents {
    const { events } = this.options;
    return {
      arriving: (id) => events.arriving(id),
      stream: (id, stream) => {
        this.serverStreams.set(id, stream);
        if (!this.shownDirect(id)) events.stream(id, stream);
      },
      connection: (id, label) => {
        this.serverLabels.set(id, label);
        if (!this.shownDirect(id)) events.connection(id, label);
      },
      quality: (id, quality) => {
        // While the direct path carries everything, the idle server path says nothing of ours.
        if (id === "self" ? this.current?.shown : this.shownDirect(id)) return;
        events.quality?.(id, quality);
      },
    };
  }
}
