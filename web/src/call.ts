// The call in the current room, from this person's side: the preview, joining and leaving, the
// local media and what the others are told of it (call:media), tiles and speaking highlights,
// and joining again after a reconnection. How the media travels is its transport's business
// (transport.ts: the media server's in sfu.ts, with pair.ts for a call of two, or the mesh of
// mesh.ts). The app hands it the room's pushes and signals; the chat never depends on it.
import { CallView, isOthersVideo, joinFailureNotice, type LayoutChoice, type OthersVideo } from "./callView";
import type { Connection } from "./connection";
import { canShareScreen, LocalMedia } from "./media";
import { MeshTransport } from "./mesh";
import { PairTransport } from "./pair";
import { SfuTransport } from "./sfu";
import { load, save } from "./storage";
import type { OutgoingSignal } from "./peer";
import {
  Events,
  isCallJoinAck,
  isCallMediaAck,
  isEmptyAck,
  isSfuAnswer,
  type Ask,
  type CallJoinAck,
  type SfuClosed,
  type SfuOffer,
  type SfuLayers,
  type SfuSpeakers,
  type IceRenewed,
  type IceServer,
  type Media,
  type Participant,
  type Result,
  type Signal,
} from "./protocol";
import { sameMedia, type CallChange, type RoomState } from "./roomState";
import { isMac, listenForShortcuts } from "./shortcuts";
import { LevelMeter, meterOf, playChime, POLL_MS, SpeakingDetector } from "./speaking";
import { TilesView } from "./tiles";
import type { CallTransport, LocalTracks, TransportEvents } from "./transport";

/** How soon a call:media that timed out is sent again. */
const MEDIA_RETRY_MS = 3000;

const NO_MEDIA: Media = { audio: false, video: false, screen: false };

type Phase = "idle" | "preview" | "joining" | "in-call";

export type CallHost = {
  /** The room this client is in, if any. */
  room(): RoomState | null;
  /** The participants list needs drawing again (someone's call state changed). */
  peopleChanged(): void;
  /** The people whose entries in the participants list (with their media state) are on screen. */
  peopleShown(): string[];
};

/** How often the microphone's meters are drawn. */
const LEVEL_EVERY_MS = 100;

export class CallSession {
  private readonly view: CallView;
  private readonly tiles = new TilesView();
  private phase: Phase = "idle";
  private media: LocalMedia | null = null;
  /** How the media of the call travels; one per join, from the click to the end. */
  private transport: CallTransport | null = null;
  /** The media server's path of that transport, when the call goes through the server. */
  private server: SfuTransport | null = null;
  private readonly detectors = new Map<string, SpeakingDetector>();
  /** Signals that came while our own join was still unanswered. */
  private early: Signal[] = [];
  /** The media state the server was last told, so only changes are sent. */
  private told: Media | null = null;
  /** The tile shown large, chosen by its pin button. */
  private pinned: string | null = null;
  private layoutChoice: LayoutChoice = "grid";
  /** Who spoke last (another person), for the speaker layout between two speakers. */
  private lastSpeaker: string | null = null;
  /** The data saver: whose video we receive (through the media server). */
  private othersVideo: OthersVideo = "all";
  /** Who speaks, as the media server last said. */
  private speakers: readonly string[] = [];
  /** Bumped by every join and every end, so that a stale join answer is recognised. */
  private attempt = 0;
  /** The id our own tile is under (it changes with the connection). */
  private selfTileId: string | null = null;
  private audio: AudioContext | null = null;
  private meter: LevelMeter | null = null;
  private pollTimer: number | undefined;
  private levelTimer: number | undefined;
  private mediaRetryTimer: number | undefined;
  private cameraPending = false;
  private autoplayWaiting = false;
  private devicesWatched = false;

  constructor(
    private readonly conn: Connection,
    private readonly host: CallHost,
  ) {
    this.view = new CallView({
      open: () => void this.openPreview(),
      start: () => this.start(),
      cancel: () => this.cancelPreview(),
      toggleMic: () => void this.toggleMic(),
      toggleCamera: () => void this.toggleCamera(),
      toggleScreen: () => void this.toggleScreen(),
      leave: () => this.leaveCall(),
      pickCamera: (id) => void this.pickDevice((media) => media.useCamera(id)),
      pickMic: (id) => void this.pickDevice((media) => media.useMic(id)),
      pickSpeaker: (id) => {
        save("speaker", id);
        this.tiles.setSpeaker(id);
      },
      pickOthersVideo: (choice) => this.pickOthersVideo(choice),
      testSound: () => void this.testSound(),
      pickLayout: (layout) => {
        this.layoutChoice = layout;
        if (layout === "grid") this.pinned = null;
        this.arrange();
      },
    });
    this.tiles.onPin((id) => {
      this.pinned = this.pinned === id ? null : id;
      this.arrange();
    });
    // The new page's video is asked for now, not at the next look at the tiles.
    this.tiles.onTurn(() => this.server?.sendView());
    const saved = load("othersVideo");
    this.othersVideo = isOthersVideo(saved) ? saved : "all";
    this.view.setOthersVideo(this.othersVideo);
    this.tiles.onAutoplayBlocked(() => this.autoplayBlocked());
    // Closing or leaving the page must not leave the camera light on.
    window.addEventListener("pagehide", () => this.end());
    listenForShortcuts(document, isMac(), {
      active: () => this.phase === "preview" || this.active,
      toggle: (what) => void (what === "mic" ? this.toggleMic() : this.toggleCamera()),
      help: () => this.view.showShortcuts(),
      canTalk: () => this.phase === "in-call" && !!this.media && !this.media.shown.audio && !this.host.room()?.self.muted,
      talk: (on) => void this.media?.setMicOn(on),
    });
  }

  get active(): boolean {
    return this.phase === "joining" || this.phase === "in-call";
  }

  // ---- what the app tells it ----

  /** A room was opened: offer to join its call. */
  entered(): void {
    this.view.clearNotice();
    this.refreshOpen();
  }

  /** The room was left (room:leave leaves its call too, so no call:leave is needed). */
  roomLeft(): void {
    this.end();
    this.view.clearNotice();
    this.view.showOpen(false, 0, 0);
  }

  setOnline(online: boolean): void {
    this.view.setOnline(online);
  }

  /** The room's list changed (an arrival, a departure): the join button's count may differ. */
  peopleChanged(): void {
    this.refreshOpen();
    this.relabelTiles();
  }

  /** Someone renamed, joined or left the call, or changed their media. */
  participantUpdated(p: Participant, change: CallChange): void {
    this.refreshOpen();
    const room = this.host.room();
    if (!room || !this.active) return;
    if (room.isSelf(p.id)) return this.putSelfTile();
    if (change === "left" || !p.call) {
      this.removeRemote(p.id);
      return;
    }
    this.putRemoteTile(p);
    this.transport?.present(p.id, change === "joined");
    this.relabelTiles();
    this.arrange();
  }

  /** A host muted us (or another page of ours was muted): the microphone goes off. */
  hostMuted(): void {
    const media = this.media;
    if (!media) return;
    if (media.shown.audio) void media.setMicOn(false);
    if (this.active) this.view.setNotice({ key: "call.mutedByHost" });
  }

  /** A host asks something of us: to unmute (we choose), or our camera or screen goes off. */
  asked(ask: Ask): void {
    const media = this.media;
    if (!media || !this.active) return;
    if (ask === "unmute") {
      if (media.shown.audio) return;
      this.view.setNotice({ key: "call.askedUnmute", action: { key: "call.unmuteNow", run: () => void this.toggleMic() } });
    } else if (ask === "stop-camera") {
      if (!media.shown.video) return;
      void this.toggleCamera();
      this.view.setNotice({ key: "call.cameraStopped" });
    } else if (media.screen) {
      media.stopScreen();
      this.view.setNotice({ key: "call.screenStopped" });
    }
  }

  /** New TURN credentials: every connection takes them up before the old ones expire. */
  iceRenewed(ev: IceRenewed): void {
    const room = this.host.room();
    if (!room || room.name !== ev.room || !this.active) return;
    this.transport?.renewIce({ iceServers: rtcIceServers(ev.iceServers) });
  }

  /** Someone left the room (or their connection was replaced): their part of the call is gone. */
  participantLeft(id: string): void {
    this.refreshOpen();
    this.removeRemote(id);
  }

  /** The room was joined again on a new connection: join its call again if we were in it. */
  reconnected(): void {
    this.refreshOpen();
    if (!this.active) return;
    // The others closed their connections to our old socket; everything is built anew.
    this.dropRemotes();
    this.sendJoin();
  }

  signal(sig: Signal): void {
    const room = this.host.room();
    if (!room || sig.room !== room.name) return;
    if (this.phase === "joining") {
      this.early.push(sig);
      return;
    }
    if (this.phase !== "in-call") return;
    this.transport?.signal(sig);
  }

  // ---- preview ----

  private async openPreview(): Promise<void> {
    const room = this.host.room();
    if (!room || this.phase !== "idle") return;
    // A call that looks full is still worth a try: someone may be leaving, and the server decides.
    this.view.clearNotice();
    this.phase = "preview";
    const media = new LocalMedia();
    this.media = media;
    media.onChange(() => this.mediaChanged());
    media.onLost(() => this.showMediaNotice(media));
    this.view.openPreview(room.self.nickname);
    // Inside the click that opened the preview: the microphone's meter may run.
    this.ensureAudioContext();
    this.startLevels();
    this.mediaChanged();
    this.watchDevices();
    await media.start();
    if (this.media === media) await this.refreshDevices();
  }

  private cancelPreview(): void {
    if (this.phase !== "preview") return;
    this.end();
  }

  /** "Join now": whatever the preview has (or is still getting) goes into the call. */
  private start(): void {
    const room = this.host.room();
    if (this.phase !== "preview" || !room) return;
    this.view.closePreview();
    // Created inside the click, so that the browser lets it (and the others' sound) run.
    this.ensureAudioContext();
    this.sendJoin();
  }

  // ---- joining ----

  private sendJoin(): void {
    const room = this.host.room();
    if (!room) return this.end();
    this.phase = "joining";
    const attempt = ++this.attempt;
    // Muted by a host: the server would refuse a join with the microphone on.
    if (room.self.muted) void this.media?.setMicOn(false);
    const media = this.currentMedia();
    this.told = media;
    this.early = [];
    // Made when the answer says how the media travels.
    this.closeTransport();
    this.view.showStage(true);
    this.refreshControls();
    this.putSelfTile();
    this.refreshOpen();
    void this.conn.request(Events.callJoin, { room: room.name, media }, isCallJoinAck, {
      needConnected: true,
      // Set up inside the answer, so that the pushes and signals right behind it find the peers.
      onAnswer: (res) => this.joinAnswered(attempt, room, res),
    });
  }

  private joinAnswered(attempt: number, room: RoomState, res: Result<CallJoinAck>): void {
    if (attempt !== this.attempt || this.phase !== "joining" || this.host.room() !== room) return;
    if (!res.ok) {
      // Lost on the way: the next connection joins the room again, and the call with it.
      if (res.error.code === "disconnected") return;
      this.end();
      // The server may have let us in all the same, with nobody here to take part.
      if (res.error.code === "timeout") this.sendLeave(room);
      this.view.setNotice(joinFailureNotice(res.error, room.callLimit));
      this.host.peopleChanged();
      return;
    }
    const ack = res.value;
    this.phase = "in-call";
    room.callLimit = ack.limit;
    room.replacePeople(ack.participants);
    if (!room.self.call) room.setSelfCall(this.told);
    this.putSelfTile();
    const others = room.inCall().filter((p) => !room.isSelf(p.id));
    for (const p of others) this.putRemoteTile(p);
    const inCall = new Set(others.map((p) => p.id));
    this.dropRemotes((id) => inCall.has(id));
    const config = { iceServers: rtcIceServers(ack.iceServers), iceTransportPolicy: ack.iceTransportPolicy };
    this.transport =
      ack.via !== "sfu"
        ? this.makeMeshTransport(this.transportEvents())
        : ack.pairs === "direct"
          ? this.makePairTransport(room)
          : this.makeSfuTransport(room, this.transportEvents());
    this.transport.publish(this.localTracks());
    this.transport.joined(config, [...inCall]);
    this.host.peopleChanged();
    this.refreshOpen();
    const early = this.early;
    this.early = [];
    for (const sig of early) this.signal(sig);
    // A change made while the answer was on its way.
    this.publish();
    this.startPolling();
    this.arrange();
  }

  // ---- leaving ----

  /** "Leave call" (or the header's Leave, answered "Leave the call"): out of the call, still in
   * the room and its chat. */
  leaveCall(): void {
    const room = this.host.room();
    const wasIn = this.active;
    this.end();
    if (wasIn && room) this.sendLeave(room);
    room?.setSelfCall(null);
    this.host.peopleChanged();
    this.refreshOpen();
  }

  private sendLeave(room: RoomState): void {
    if (!this.conn.connected) return;
    void this.conn.request(Events.callLeave, { room: room.name }, isEmptyAck).then((res) => {
      // not_in_call: the server had already let us go, which is all that was asked.
      if (!res.ok && !["not_in_call", "not_in_room", "disconnected"].includes(res.error.code)) {
        console.warn("call: leaving the call failed", res.error);
      }
    });
  }

  /** Closes every connection and stops every local track; back to the join button. */
  private end(): void {
    this.attempt++;
    this.phase = "idle";
    this.closeTransport();
    this.dropRemotes();
    this.tiles.clear();
    this.view.setPoorNetwork(false);
    this.pinned = null;
    this.lastSpeaker = null;
    this.speakers = [];
    this.tiles.arrange({ kind: "grid" }, null);
    this.selfTileId = null;
    this.detectors.clear();
    this.early = [];
    this.told = null;
    this.media?.stop();
    this.media = null;
    this.cameraPending = false;
    this.meter?.close();
    this.meter = null;
    window.clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    window.clearInterval(this.levelTimer);
    this.levelTimer = undefined;
    this.view.setMicLevel(0);
    window.clearTimeout(this.mediaRetryTimer);
    this.mediaRetryTimer = undefined;
    // Resumed by the next join's click; a running one keeps the audio device busy for nothing.
    if (this.audio?.state === "running") void this.audio.suspend().catch(() => {});
    this.view.closePreview();
    this.view.showStage(false);
    this.refreshOpen();
  }

  // ---- the transport ----

  private transportEvents(): TransportEvents {
    return {
      arriving: (id) => {
        const room = this.host.room();
        if (room?.isFormerSelf(id) || room?.hasLeft(id)) return this.transport?.gone(id);
        const who = room?.find(id);
        this.putRemoteTile(who ?? { id, nickname: "?", call: NO_MEDIA });
      },
      stream: (id, stream) => this.tiles.setStream(id, stream),
      connection: (id, label) => this.tiles.setConnection(id, label),
      quality: (id, quality) => {
        if (id === "self") return this.view.setPoorNetwork(quality === "poor");
        // Someone without a microphone sends no audio to judge by.
        this.tiles.setQuality(id, this.host.room()?.find(id)?.call?.audio ? quality : null);
      },
    };
  }

  private closeTransport(): void {
    this.transport?.close();
    this.transport = null;
    this.server = null;
  }

  private makeMeshTransport(events: TransportEvents): MeshTransport {
    return new MeshTransport({
      selfId: () => this.host.room()?.self.id ?? "",
      inCall: (id) => this.phase === "in-call" && Boolean(this.host.room()?.find(id)?.call),
      send: (to, signal) => this.sendSignal(to, signal),
      events,
    });
  }

  /** Through the media server, two people talking directly while they are two (pair.ts). */
  private makePairTransport(room: RoomState): PairTransport {
    return new PairTransport({
      server: (events) => this.makeSfuTransport(room, events),
      direct: (events) => this.makeMeshTransport(events),
      selfId: () => this.host.room()?.self.id ?? "",
      // The data saver is the server's to honour: a direct path carries all of their video.
      directAllowed: () => this.othersVideo === "all",
      events: this.transportEvents(),
    });
  }

  private makeSfuTransport(room: RoomState, events: TransportEvents): SfuTransport {
    const request = <T>(event: string, payload: object, check: (v: unknown) => v is T) =>
      this.conn.request(event, { room: room.name, ...payload }, check, { needConnected: true });
    const transport = new SfuTransport({
      join: async (sdp, tiles) => {
        const res = await request(Events.sfuJoin, { sdp, tiles }, isSfuAnswer);
        if (!res.ok && res.error.code !== "disconnected") console.warn("call: the media server refused us", res.error);
        return res.ok ? res.value.sdp : null;
      },
      answer: async (sdp) => {
        const res = await request(Events.sfuAnswer, { sdp }, isEmptyAck);
        if (!res.ok && res.error.code !== "disconnected") console.warn("call: an answer was refused", res.error);
        return res.ok;
      },
      view: (tiles, people) => {
        if (this.conn.connected) this.conn.emit(Events.sfuView, { room: room.name, tiles, people });
      },
      tiles: () => this.receivedTiles(),
      peopleShown: () => this.host.peopleShown(),
      events,
    });
    this.server = transport;
    return transport;
  }

  /** The media server offers us the tracks that came or went. */
  sfuOffer(ev: SfuOffer): void {
    const room = this.host.room();
    if (!room || ev.room !== room.name || this.phase !== "in-call") return;
    this.server?.serverOffer(ev.sdp);
  }

  /** The media server says which layers of our camera anyone receives. */
  sfuLayers(ev: SfuLayers): void {
    const room = this.host.room();
    if (!room || ev.room !== room.name || this.phase !== "in-call") return;
    this.server?.sendLayers(ev.active);
  }

  /** The media server says who speaks in the call. */
  sfuSpeakers(ev: SfuSpeakers): void {
    const room = this.host.room();
    if (!room || ev.room !== room.name || this.phase !== "in-call") return;
    this.server?.speaking(ev.speakers);
    // Someone else speaking now: the one whose video the data saver keeps.
    const others = ev.speakers.filter((id) => !room.isSelf(id));
    if (others.length && others[0] !== this.speakers[0]) {
      this.speakers = others;
      this.lastSpeaker = others[0] ?? null;
      if (this.othersVideo === "speaker") this.relabelTiles();
      this.arrange();
    }
  }

  /**
   * Who is shown large, if anyone: the pinned person; else someone sharing their screen; else,
   * in the speaker layout, who speaks (or spoke last, or anyone).
   */
  private arrange(): void {
    const room = this.host.room();
    const others = room ? room.inCall().filter((p) => !room.isSelf(p.id) && this.tiles.has(p.id)) : [];
    const present = (id: string | null) => (id && others.some((p) => p.id === id) ? id : null);
    if (this.pinned && !present(this.pinned)) this.pinned = null;
    const main =
      this.pinned ??
      others.find((p) => p.call?.screen)?.id ??
      (this.layoutChoice === "speaker" ? (present(this.lastSpeaker) ?? others[0]?.id ?? null) : null);
    this.view.setLayout(this.pinned ? "speaker" : this.layoutChoice);
    this.tiles.arrange(main ? { kind: "speaker", main } : { kind: "grid" }, this.pinned);
  }

  /** The tiles whose video we ask the media server for: what is on screen, less what the data
   * saver leaves out. */
  private receivedTiles(): { id: string; height: number }[] {
    return this.tiles.shown().filter((tile) => this.receivesVideoOf(tile.id));
  }

  private receivesVideoOf(id: string): boolean {
    if (this.othersVideo === "none") return false;
    return this.othersVideo === "all" || this.speakers[0] === id;
  }

  private pickOthersVideo(choice: OthersVideo): void {
    this.othersVideo = choice;
    save("othersVideo", choice);
    this.relabelTiles();
    if (this.transport instanceof PairTransport) this.transport.reconsider();
  }

  /**
   * The media server lost our connection (nothing came through for 15 s) and took us out of the
   * call, as the others were told. Joining again by itself would only show the others someone
   * coming and going while the network is down: the person is told, and joins again when ready.
   */
  sfuClosed(ev: SfuClosed): void {
    const room = this.host.room();
    if (!room || ev.room !== room.name || !this.active) return;
    this.end();
    room.setSelfCall(null);
    this.view.setNotice({ key: "call.lost" });
    this.host.peopleChanged();
  }

  /**
   * The node whose media server carried the call is gone; we are still in the call. Connecting
   * again makes a live node carry it: the tiles stay, their pictures come back in a moment.
   */
  sfuMoved(ev: SfuClosed): void {
    const room = this.host.room();
    if (!room || ev.room !== room.name || !this.active) return;
    this.sendJoin();
  }

  private localTracks(): LocalTracks {
    const media = this.media;
    return { audio: media?.mic ?? null, video: media?.outgoingVideo ?? null, screen: Boolean(media?.screen) };
  }

  /** Someone is out of the call: their media, tile and speaking state go. */
  private removeRemote(id: string): void {
    this.transport?.gone(id);
    this.detectors.delete(id);
    if (id !== this.selfTileId) this.tiles.remove(id);
    if (id === this.pinned || id === this.lastSpeaker) this.arrange();
  }

  /** Removes everyone else but those to `keep`. */
  private dropRemotes(keep: (id: string) => boolean = () => false): void {
    const ids = new Set([...(this.transport?.remotes() ?? []), ...this.tiles.ids()]);
    for (const id of ids) if (id !== this.selfTileId && !keep(id)) this.removeRemote(id);
  }

  private sendSignal(to: string, signal: OutgoingSignal): void {
    const room = this.host.room();
    if (!room || !this.active || !this.conn.connected) return;
    const payload = { room: room.name, to, ...signal };
    if ("candidate" in signal) {
      // Candidates trickle without an answer; a lost one only means one path fewer.
      this.conn.emit(Events.signal, payload);
      return;
    }
    void this.conn.request(Events.signal, payload, isEmptyAck, { needConnected: true }).then((res) => {
      if (!res.ok && res.error.code !== "disconnected") console.warn(`call: a signal to ${to} failed`, res.error);
    });
  }

  // ---- local media ----

  private currentMedia(): Media {
    return this.media?.media ?? NO_MEDIA;
  }

  /** Every change of the local media: preview, controls, own tile, the senders, the others. */
  private mediaChanged(): void {
    const media = this.media;
    if (!media) return;
    this.refreshControls();
    if (this.phase === "preview") {
      this.view.setPreviewVideo(media.camera);
      if (media.ready) this.view.setPreviewNotice(media.notice);
      this.updateMeter();
      return;
    }
    if (!this.active) return;
    this.transport?.publish(this.localTracks());
    this.putSelfTile();
    this.updateMeter();
    this.publish();
  }

  private refreshControls(): void {
    const media = this.media;
    const shown = media?.shown ?? NO_MEDIA;
    this.view.setControls(
      { audio: shown.audio, video: shown.video, screen: media?.media.screen ?? false },
      { canShare: canShareScreen() && this.active, cameraPending: this.cameraPending },
    );
  }

  /** Tells the others (call:media) what changed since they were last told. */
  private publish(): void {
    const room = this.host.room();
    if (this.phase !== "in-call" || !room) return;
    const media = this.currentMedia();
    if (this.told && sameMedia(media, this.told)) return;
    this.told = media;
    room.setSelfCall(media);
    this.host.peopleChanged();
    void this.conn
      .request(Events.callMedia, { room: room.name, ...media }, isCallMediaAck, { needConnected: true })
      .then((res) => {
        if (res.ok || this.told !== media) return;
        // Not told after all: the next change sends it, and a timeout is tried again. (A lost
        // connection joins the call again with the media state of then.)
        this.told = null;
        if (res.error.code !== "timeout") return;
        window.clearTimeout(this.mediaRetryTimer);
        this.mediaRetryTimer = window.setTimeout(() => {
          this.mediaRetryTimer = undefined;
          this.publish();
        }, MEDIA_RETRY_MS);
      });
  }

  private async toggleMic(): Promise<void> {
    const media = this.media;
    if (!media) return;
    // The server would refuse it, and forward nothing of it.
    if (!media.shown.audio && this.host.room()?.self.muted) {
      this.view.setNotice({ key: "call.mutedByHost" });
      return;
    }
    await media.setMicOn(!media.shown.audio);
    if (this.media === media && !media.mic) this.showMediaNotice(media);
  }

  private async toggleCamera(): Promise<void> {
    const media = this.media;
    if (!media) return;
    const on = !media.shown.video;
    if (on && media.ready) {
      this.cameraPending = true;
      this.mediaChanged();
    }
    await media.setCameraOn(on);
    if (this.media !== media) return;
    this.cameraPending = false;
    this.mediaChanged();
    this.showMediaNotice(media);
    if (on) void this.refreshDevices();
  }

  private async toggleScreen(): Promise<void> {
    const media = this.media;
    if (!media || !this.active) return;
    if (media.screen) return media.stopScreen();
    const result = await media.startScreen();
    if (result === "failed" && this.media === media) this.view.setNotice({ key: "call.screenFailed" });
  }

  /** A device picked in the settings; one that would not start is said in the notice. */
  private async pickDevice(use: (media: LocalMedia) => Promise<void>): Promise<void> {
    const media = this.media;
    if (!media) return;
    await use(media);
    if (this.media !== media) return;
    this.showMediaNotice(media);
    void this.refreshDevices();
  }

  /** In the call, a device that would not start is said in the call's notice. */
  private showMediaNotice(media: LocalMedia): void {
    if (this.phase === "preview") return;
    if (media.notice) this.view.setNotice({ key: media.notice });
  }

  private watchDevices(): void {
    if (this.devicesWatched || typeof navigator.mediaDevices?.addEventListener !== "function") return;
    this.devicesWatched = true;
    navigator.mediaDevices.addEventListener("devicechange", () => void this.refreshDevices());
  }

  private async refreshDevices(): Promise<void> {
    const media = this.media;
    if (!media) return;
    const devices = await media.devices();
    if (this.media !== media) return;
    const speaker = load("speaker");
    this.view.setDevices(devices, { camera: media.cameraDeviceId, mic: media.micDeviceId, speaker });
    if (speaker && devices.speakers.some((d) => d.id === speaker)) this.tiles.setSpeaker(speaker);
  }

  // ---- tiles and speaking ----

  private putSelfTile(): void {
    const room = this.host.room();
    if (!room) return;
    const id = room.self.id;
    if (this.selfTileId && this.selfTileId !== id) this.tiles.rekey(this.selfTileId, id);
    this.selfTileId = id;
    const hand = typeof room.self.hand === "number";
    this.tiles.put(id, { name: room.self.nickname, self: true, media: this.currentMedia(), connection: "connected", hand });
    this.tiles.setTrack(id, this.media?.outgoingVideo ?? null);
  }

  private putRemoteTile(p: Participant): void {
    const name = this.host.room()?.label(p.id, p.nickname) ?? p.nickname;
    const media = p.call ?? NO_MEDIA;
    // Video the data saver leaves out shows as a camera turned off, not a frozen picture.
    const shown = this.server && !this.receivesVideoOf(p.id) ? { ...media, video: false } : media;
    this.tiles.put(p.id, { name, self: false, media: shown, hand: typeof p.hand === "number" });
  }

  /** Names that read alike are told apart on the tiles as in the list (see `tellApart`). */
  private relabelTiles(): void {
    const room = this.host.room();
    if (!room || !this.active) return;
    for (const p of room.inCall()) if (!room.isSelf(p.id) && this.tiles.has(p.id)) this.putRemoteTile(p);
  }

  /** Our own name changed: the own tile says so. */
  selfRenamed(): void {
    if (this.active) this.putSelfTile();
  }

  private ensureAudioContext(): void {
    if (this.audio?.state === "suspended") void this.audio.resume().catch(() => {});
    if (this.audio || typeof AudioContext === "undefined") return;
    try {
      this.audio = new AudioContext();
    } catch {
      this.audio = null;
    }
  }

  private updateMeter(): void {
    const mic = this.media?.mic ?? null;
    if (this.meter?.track === mic) return;
    this.meter?.close();
    this.meter = null;
    if (!mic || !this.audio) return;
    try {
      if (this.audio.state === "suspended") void this.audio.resume();
      this.meter = new LevelMeter(this.audio, mic);
    } catch {
      this.meter = null;
    }
  }

  private startPolling(): void {
    if (this.pollTimer !== undefined) return;
    this.updateMeter();
    this.startLevels();
    this.pollTimer = window.setInterval(() => this.pollLevels(), POLL_MS);
  }

  /** The microphone's meters (preview and settings) follow its level, as loud as it is sent. */
  private startLevels(): void {
    if (this.levelTimer !== undefined) return;
    this.levelTimer = window.setInterval(() => {
      if (!this.view.metersShown()) return;
      const on = this.media?.shown.audio && this.meter;
      this.view.setMicLevel(on ? meterOf(this.meter?.level() ?? 0) : 0);
    }, LEVEL_EVERY_MS);
  }

  /** A short chime on the chosen speaker, to hear that it works. */
  private async testSound(): Promise<void> {
    this.ensureAudioContext();
    const audio = this.audio;
    if (!audio) return;
    this.view.setTestSoundPlaying(true);
    try {
      const speaker = load("speaker");
      const sink = audio as AudioContext & { setSinkId?: (id: string) => Promise<void> };
      if (speaker && sink.setSinkId) await sink.setSinkId(speaker).catch(() => {});
      if (audio.state === "suspended") await audio.resume();
      await playChime(audio);
    } catch {
      // No sound to be had: the button simply comes back.
    } finally {
      this.view.setTestSoundPlaying(false);
    }
  }

  private pollLevels(): void {
    const room = this.host.room();
    if (!room || this.phase !== "in-call") return;
    const now = performance.now();
    const detect = (id: string, level: number) => {
      let detector = this.detectors.get(id);
      if (!detector) {
        detector = new SpeakingDetector();
        this.detectors.set(id, detector);
      }
      this.tiles.setSpeaking(id, detector.update(level, now));
    };
    if (this.selfTileId) {
      detect(this.selfTileId, this.currentMedia().audio && this.meter ? this.meter.level() : 0);
    }
    const transport = this.transport;
    for (const id of transport?.remotes() ?? []) {
      // A muted person's last packets may still carry a level: what they said they send wins.
      detect(id, room.find(id)?.call?.audio ? (transport?.audioLevel(id) ?? 0) : 0);
    }
  }

  private autoplayBlocked(): void {
    if (this.autoplayWaiting) return;
    this.autoplayWaiting = true;
    this.view.setNotice({ key: "call.autoplay" });
    document.addEventListener(
      "click",
      () => {
        this.autoplayWaiting = false;
        this.tiles.retryPlayback();
        void this.audio?.resume();
        this.view.clearNotice();
      },
      { once: true, capture: true },
    );
  }

  private refreshOpen(): void {
    const room = this.host.room();
    if (!room) return this.view.showOpen(false, 0, 0);
    const others = room.inCall().filter((p) => !room.isSelf(p.id)).length;
    this.view.showOpen(!this.active, others, room.callLimit);
  }
}

/** The ICE servers as `RTCPeerConnection` takes them. */
function rtcIceServers(servers: readonly IceServer[]): RTCIceServer[] {
  return servers.map((s) => {
    const server: RTCIceServer = { urls: s.urls };
    if (s.username !== undefined) server.username = s.username;
    if (s.credential !== undefined) server.credential = s.credential;
    return server;
  });
}
