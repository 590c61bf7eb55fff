// The client's controller: ties the connection to the lobby and room views and the room's call,
// keeps the address bar in step (/ and /r/<room>), re-joins the room after a reconnection and
// sends what was typed meanwhile, and follows an administrator's closing of the room or of the
// connection.
import { ask } from "./ask";
import { clearError, showError, showMessage } from "./banner";
import { CallSession } from "./call";
import { copyText } from "./clipboard";
import { Connection } from "./connection";
import { lang, onLangChange } from "./lang";
import { LobbyView, type EnterRequest } from "./lobby";
import { MeetingControls, WaitingView } from "./meeting";
import { chooseNickname, makeNameSeed, nameFromSeed, parseNameSeed, serializeNameSeed, type NameSeed } from "./names";
import {
  Events,
  isDirectory,
  isJoinAck,
  isLeaveAck,
  isParticipantEvent,
  isParticipantsUpdate,
  isParticipantUpdate,
  isChatMessage,
  isRenameAck,
  isRoomClosed,
  isSendAck,
  isServerDisconnected,
  isIceRenewed,
  isCallAsked,
  isRoomUpdated,
  isJoinOrWaiting,
  isJoinWaiting,
  isRoomAdmitted,
  isRoomRefused,
  isRoomWaiting,
  isRoomReaction,
  isSfuClosed,
  isSfuLayers,
  isSfuOffer,
  isSfuSpeakers,
  isSignal,
  type JoinAck,
  type Participant,
  type ProtocolError,
} from "./protocol";
import { RoomView, type PendingMessage } from "./room";
import { RoomState } from "./roomState";
import { hostKeyOf, lobbyPath, parseRoute, roomPath, roomUrl, type Route } from "./route";
import { setStatus } from "./status";
import { load, save, saveSession } from "./storage";
import { checkMessage, checkNickname, checkRoomName, isBlank } from "./validate";

/** Errors worth a Retry button on a failed message; the others need the text changed. */
const RETRYABLE = new Set(["rate_limited", "overloaded", "timeout", "disconnected", "not_in_room"]);

export class App {
  private readonly conn = new Connection();
  private readonly lobby = new LobbyView();
  private readonly roomView = new RoomView();
  private readonly call: CallSession;
  private readonly meeting: MeetingControls;
  private readonly waitingView: WaitingView;
  /** The room this page waits to enter, and how it asked, while a host has not answered. */
  private waiting: EnterRequest | null = null;
  /** The host link this page was opened with: its room and key. */
  private hostLink: { room: string; key: string } | null = null;
  private readonly nameSeed: NameSeed;

  /** The room this client is in, or null in the lobby. */
  private room: RoomState | null = null;
  private joining = false;
  private rejoining = false;
  /** Messages typed while the connection was down, for the room they were typed in. */
  private outbox: Array<{ room: RoomState; text: string; pending: PendingMessage }> = [];
  private renaming = false;
  /** Whether the room's log already says the connection was lost (said once per outage). */
  private lossNoted = false;

  constructor() {
    this.nameSeed = parseNameSeed(load("nameSeed")) ?? makeNameSeed();
    save("nameSeed", serializeNameSeed(this.nameSeed));
    this.call = new CallSession(this.conn, {
      room: () => this.room,
      peopleChanged: () => this.roomView.renderPeople(),
      peopleShown: () => this.roomView.peopleShown(),
    });
    this.meeting = new MeetingControls(this.conn, {
      room: () => this.room,
      peopleChanged: () => this.roomView.renderPeople(),
      system: (key, params) => this.roomView.system(key, params),
    });
    this.waitingView = new WaitingView(() => this.stopWaiting(true));
    this.roomView.withMeeting(
      (state, p) => this.meeting.personBadges(state, p),
      () => this.meeting.render(),
    );
  }

  start(): void {
    this.lobby.setDefaultNickname(nameFromSeed(this.nameSeed, lang()));
    onLangChange((next) => this.lobby.setDefaultNickname(nameFromSeed(this.nameSeed, next)));
    this.lobby.setNickname(load("nickname") ?? "");

    this.lobby.onEnter((request) => void this.enter(request));
    this.roomView.onSend((text, retry) => void this.send(text, retry));
    this.roomView.onRename((nickname) => void this.rename(nickname));
    this.roomView.onLeave(() => void this.askLeave());
    this.roomView.onCopy(() => void this.copyLink());

    this.conn.onState((state) => {
      setStatus(state);
      // While the connection is down, what the room shows may no longer hold: it says so.
      this.roomView.setOnline(state === "connected");
      this.call.setOnline(state === "connected");
      // Once the server has let this page go for good, the banner says why; "Reconnecting…" would be untrue.
      if (state === "disconnected" && this.room && !this.lossNoted && !this.conn.dismissed) {
        this.roomView.system("sys.connectionLost");
        this.lossNoted = true;
      }
    });
    this.conn.onConnect(() => this.connected());
    this.listen();

    const route = parseRoute(location.pathname);
    const key = hostKeyOf(location.search);
    if (route.kind === "room" && key) this.hostLink = { room: route.room, key };
    window.addEventListener("popstate", () => this.followAddress(parseRoute(location.pathname)));
    this.followAddress(parseRoute(location.pathname));
  }

  /** Someone renamed, or their call or media changed (a large call's changes come several at once). */
  private participantsUpdated(roomName: string, participants: Participant[]): void {
    const room = this.room;
    if (!room || roomName !== room.name) return;
    for (const p of participants) {
      if (room.isFormerSelf(p.id)) continue;
      const { oldName, call, meeting } = room.updated(p);
      this.call.participantUpdated(p, call);
      if (oldName !== null) this.roomView.system("sys.renamed", { old: oldName, new: room.label(p.id, p.nickname) });
      const self = room.isSelf(p.id);
      const name = room.label(p.id, p.nickname);
      if (!self && call === "joined") this.roomView.system("sys.joinedCall", { name });
      if (!self && call === "left") this.roomView.system("sys.leftCall", { name });
      if (meeting.host === "gained") this.roomView.system(self ? "sys.youHost" : "sys.nowHost", { name });
      if (meeting.host === "lost") this.roomView.system("sys.noLongerHost", { name });
      if (meeting.hand === "raised" && !self) this.roomView.system("sys.handRaised", { name });
      if (meeting.muted === "muted" && self) {
        this.roomView.system("sys.mutedYou");
        this.call.hostMuted();
      }
    }
    this.roomView.renderPeople();
  }

  private listen(): void {
    this.conn.on(Events.directory, isDirectory, (directory) => this.lobby.renderDirectory(directory));

    this.conn.on(Events.joined, isParticipantEvent, (ev) => {
      const room = this.room;
      if (!room || ev.room !== room.name) return;
      const added = room.joined(ev.participant, ev.count);
      this.roomView.renderPeople();
      this.call.peopleChanged();
      if (added) this.roomView.system("sys.joined", { name: room.label(ev.participant.id, ev.participant.nickname) });
    });

    this.conn.on(Events.left, isParticipantEvent, (ev) => {
      const room = this.room;
      if (!room || ev.room !== room.name) return;
      // Named as the list named them, told apart from anyone still here whose name reads alike.
      const name = room.label(ev.participant.id, ev.participant.nickname);
      const gone = room.left(ev.participant, ev.count);
      this.roomView.renderPeople();
      this.call.participantLeft(ev.participant.id);
      if (gone) this.roomView.system("sys.left", { name });
    });

    this.conn.on(Events.updated, isParticipantUpdate, (ev) => this.participantsUpdated(ev.room, [ev.participant]));
    this.conn.on(Events.participantsUpdated, isParticipantsUpdate, (ev) => this.participantsUpdated(ev.room, ev.participants));

    this.conn.on(Events.signal, isSignal, (signal) => this.call.signal(signal));
    this.conn.on(Events.iceRenewed, isIceRenewed, (ev) => this.call.iceRenewed(ev));
    this.conn.on(Events.sfuOffer, isSfuOffer, (ev) => this.call.sfuOffer(ev));
    this.conn.on(Events.sfuClosed, isSfuClosed, (ev) => this.call.sfuClosed(ev));
    // The same shape: the room whose call's media server is gone.
    this.conn.on(Events.sfuMoved, isSfuClosed, (ev) => this.call.sfuMoved(ev));
    this.conn.on(Events.sfuSpeakers, isSfuSpeakers, (ev) => this.call.sfuSpeakers(ev));
    this.conn.on(Events.sfuLayers, isSfuLayers, (ev) => this.call.sfuLayers(ev));

    this.conn.on(Events.message, isChatMessage, (message) => {
      const room = this.room;
      if (!room || message.room !== room.name) return;
      this.roomView.showMessage(message, true);
    });

    this.conn.on(Events.roomClosed, isRoomClosed, (ev) => {
      if (!this.room || ev.room !== this.room.name) return;
      // The server has taken us out of the room and its call already: nothing to tell it.
      this.dropRoom(true);
      this.refreshDirectory();
      const why = { admin: "error.roomClosedByAdmin", ended: "error.roomEnded", removed: "error.removed" } as const;
      showMessage(Object.hasOwn(why, ev.reason) ? why[ev.reason as keyof typeof why] : "error.roomClosed", { room: ev.room });
    });

    this.conn.on(Events.roomUpdated, isRoomUpdated, (ev) => {
      const room = this.room;
      if (!room || ev.room.name !== room.name) return;
      const locked = !!ev.room.locked;
      if (locked !== room.locked) this.roomView.system(locked ? "sys.locked" : "sys.unlocked");
      room.locked = locked;
      room.waitingRoom = !!ev.room.waitingRoom;
      const password = !!ev.room.password;
      if (password !== room.password) this.roomView.system(password ? "sys.passwordSet" : "sys.passwordRemoved");
      room.password = password;
      this.roomView.renderPeople();
    });

    this.conn.on(Events.roomWaiting, isRoomWaiting, (ev) => this.meeting.waitingChanged(ev));
    this.conn.on(Events.roomReaction, isRoomReaction, (ev) => this.meeting.reacted(ev));
    this.conn.on(Events.roomAdmitted, isRoomAdmitted, (ev) => {
      const request = this.waiting;
      if (!request || request.room !== ev.room) return;
      this.stopWaiting(false);
      void this.enter(request);
    });
    this.conn.on(Events.roomRefused, isRoomRefused, (ev) => {
      if (!this.waiting || this.waiting.room !== ev.room) return;
      this.stopWaiting(false);
      const why = { refused: "error.refused", timeout: "error.waitTimeout", closed: "error.waitClosed" } as const;
      showMessage(Object.hasOwn(why, ev.reason) ? why[ev.reason as keyof typeof why] : "error.refused", { room: ev.room });
    });

    this.conn.on(Events.callAsked, isCallAsked, (ev) => {
      if (this.room && ev.room === this.room.name) this.call.asked(ev.ask);
    });

    this.conn.on(Events.disconnected, isServerDisconnected, (ev) => {
      // The room stays on screen to be read, but its call cannot go on without a connection.
      this.call.roomLeft();
      showMessage(ev.reason === "admin" ? "error.disconnectedByAdmin" : "error.disconnectedByServer");
    });
  }

  /** Waits no more: back to the lobby; `tell` the server when it is this page that gives up. */
  private stopWaiting(tell: boolean): void {
    const request = this.waiting;
    this.waiting = null;
    this.waitingView.hide();
    if (!this.room) this.lobby.show();
    if (tell && request) void this.conn.request(Events.leave, { room: request.room }, isLeaveAck);
  }

  /** Shows what an address asks for: the lobby, or the nickname step for a room link. */
  private followAddress(route: Route): void {
    if (this.room) {
      if (route.kind === "room" && route.room === this.room.name) return;
      this.leave(false);
    }
    this.lobby.setInvite(route.kind === "room" ? route.room : null);
    this.lobby.show();
  }

  private connected(): void {
    if (this.room) {
      this.rejoin();
    } else if (this.waiting) {
      // The server forgot the wait with the old connection: this one waits again.
      const request = this.waiting;
      this.waiting = null;
      void this.enter(request);
    } else {
      // In the lobby on a new connection: the server should push the directory, but asking
      // as well costs one small event and does not depend on it.
      this.refreshDirectory();
    }
  }

  private refreshDirectory(): void {
    void this.conn.request(Events.directoryGet, {}, isDirectory, {
      needConnected: true,
      // Drawn as the answer arrives, so that a newer directory push right behind it wins.
      onAnswer: (res) => {
        if (res.ok && !this.room) this.lobby.renderDirectory(res.value);
      },
    });
  }

  private async enter(request: EnterRequest): Promise<void> {
    if (this.joining || this.room) return;
    const nickname = checkNickname(chooseNickname(request.nickname, this.lobby.defaultNickname));
    if (!nickname.ok) return showError(localError(nickname.code));
    const room = checkRoomName(request.room);
    if (!room.ok) return showError(localError(room.code));

    this.joining = true;
    this.lobby.setBusy(true);
    const res = await this.conn.request(
      Events.join,
      {
        room: room.value,
        unlisted: request.unlisted,
        nickname: nickname.value,
        ...(request.password ? { password: request.password } : {}),
        ...(request.withHostKey ? { withHostKey: true } : {}),
        ...(this.hostLink?.room === room.value ? { hostKey: this.hostLink.key } : {}),
      },
      isJoinOrWaiting,
      // The room is set up as the answer arrives: the pushes right behind it build on it.
      {
        onAnswer: (answer) => {
          if (answer.ok && isJoinAck(answer.value)) this.opened(answer.value);
        },
      },
    );
    this.joining = false;
    this.lobby.setBusy(false);
    if (!res.ok) {
      if (res.error.code === "password_required" || res.error.code === "wrong_password") this.lobby.askPassword(room.value);
      if (res.error.code === "bad_host_key") this.hostLink = null;
      return showError(res.error);
    }
    // A host key, told or used, is kept for this tab only, to copy the host link again.
    const hostKey = isJoinAck(res.value) ? (res.value.hostKey ?? (this.hostLink?.room === room.value ? this.hostLink.key : null)) : null;
    if (hostKey && isJoinAck(res.value)) saveSession(`hostKey:${res.value.room.name}`, hostKey);
    if (isJoinWaiting(res.value)) {
      // A host lets us in (room:admitted, then this again) or not (room:refused).
      clearError();
      this.waiting = { ...request, room: res.value.waiting.room };
      this.lobby.hide();
      this.waitingView.show(res.value.waiting.room);
      return;
    }

    clearError();
    if (request.newMeeting) this.roomView.showReady(roomUrl(location.origin, res.value.room.name));
    const path = roomPath(res.value.room.name);
    if (location.pathname !== path) history.pushState({ room: res.value.room.name }, "", path);
    // The host link's key leaves the address bar, lest it be shared with the room's link.
    else if (location.search) history.replaceState(history.state, "", path);
    this.roomView.renderPeople();
  }

  /** Shows a room just joined. */
  private opened(ack: JoinAck): void {
    this.room = new RoomState(ack);
    this.rememberNickname(ack.self.nickname);
    this.lobby.hide();
    this.lossNoted = false;
    this.roomView.enter(this.room, ack.history);
    this.call.entered();
  }

  /** Joins the same room again on a new connection, under the same name. */
  private rejoin(): void {
    const room = this.room;
    if (!room || this.rejoining) return;
    this.rejoining = true;
    const payload = { room: room.name, unlisted: room.unlisted, nickname: room.self.nickname };
    void this.conn.request(Events.join, payload, isJoinAck, {
      // Taken in as the answer arrives: the pushes right behind it build on its list and history.
      onAnswer: (res) => {
        this.rejoining = false;
        if (this.room !== room) return; // left meanwhile
        if (res.ok) {
          room.refresh(res.value);
          this.lossNoted = false;
          // An error of the outage no longer holds.
          clearError();
          this.roomView.rejoined(res.value.history);
          this.call.reconnected();
          void this.sendOutbox(room);
          return;
        }
        // Lost again on the way: the next connection joins again.
        if (res.error.code === "disconnected") return;
        showError(res.error);
        this.leave(true);
      },
    });
  }

  /** The header's Leave: during a call it asks first whether to leave only the call. */
  private async askLeave(): Promise<void> {
    if (!this.call.active) return this.leave(true);
    const room = this.room;
    const choice = await ask({
      title: "ask.leaveTitle",
      text: "ask.leaveText",
      choices: [
        { value: "call", key: "ask.leaveCall" },
        { value: "room", key: "ask.leaveRoom", danger: true },
      ],
    });
    // Still where the question was asked (the room may have closed meanwhile).
    if (!choice || this.room !== room) return;
    if (choice === "call") this.call.leaveCall();
    else this.leave(true);
  }

  /** Back to the lobby; `updateAddress` is false when the address already changed (Back). */
  private leave(updateAddress: boolean): void {
    const room = this.dropRoom(updateAddress);
    if (room && this.conn.connected) {
      // The answer adds nothing the person needs (not_in_room only means it is already done);
      // once it is in, the lobby's directory is brought up to date.
      void this.conn.request(Events.leave, { room: room.name }, isLeaveAck).then(() => this.refreshDirectory());
    }
  }

  /** Back to the lobby on this page's side (call ended, views switched); returns the room left. */
  private dropRoom(updateAddress: boolean): RoomState | null {
    const room = this.room;
    if (!room) return null;
    this.room = null;
    this.outbox = [];
    this.call.roomLeft();
    this.roomView.hide();
    this.lobby.setInvite(null);
    this.lobby.show();
    if (updateAddress && location.pathname !== lobbyPath()) history.pushState({}, "", lobbyPath());
    return room;
  }

  /** Sends a message from the message box, or again after it failed (`retry`). */
  private async send(text: string, retry: boolean): Promise<void> {
    const room = this.room;
    // Spaces alone: nothing to send, and nothing to complain of.
    if (!room || isBlank(text)) return;
    const pending = this.roomView.pending(text);
    // A retry leaves alone whatever is being written meanwhile.
    if (!retry) this.roomView.clearMessage();
    const check = checkMessage(text);
    if (!check.ok) {
      const error = localError(check.code);
      pending.failed(error, false);
      return showError(error);
    }
    await this.deliver(room, text, pending);
  }

  /**
   * Sends a message shown as pending. Without a connection it waits in the outbox, and goes once
   * the room is joined again: nothing typed during an outage is lost. (A message that went out
   * and got no answer may have arrived: that one is offered to retry, not sent twice unasked.)
   */
  private async deliver(room: RoomState, text: string, pending: PendingMessage): Promise<void> {
    if (!this.conn.connected || this.rejoining) {
      pending.queued();
      this.outbox.push({ room, text, pending });
      return;
    }
    const res = await this.conn.request(Events.send, { room: room.name, text }, isSendAck, {
      needConnected: true,
    });
    if (!res.ok) {
      pending.failed(res.error, RETRYABLE.has(res.error.code));
      return showError(res.error);
    }
    pending.sent(res.value.message);
    clearError();
  }

  /** Back in `room` on a new connection: what waited in the outbox goes, in the order typed. */
  private async sendOutbox(room: RoomState): Promise<void> {
    const waiting = this.outbox.splice(0).filter((m) => m.room === room);
    for (const [i, message] of waiting.entries()) {
      if (this.room !== room) return;
      // Lost again meanwhile: the rest wait for the next connection, still in order.
      if (!this.conn.connected) {
        this.outbox.push(...waiting.slice(i));
        return;
      }
      await this.deliver(room, message.text, message.pending);
    }
  }

  private async rename(raw: string): Promise<void> {
    const room = this.room;
    if (!room || this.renaming) return;
    const check = checkNickname(raw);
    if (!check.ok) return showError(localError(check.code));
    if (check.value === room.self.nickname) return this.roomView.closeRename();

    this.renaming = true;
    this.roomView.setRenameBusy(true);
    const res = await this.conn.request(Events.rename, { nickname: check.value }, isRenameAck, {
      needConnected: true,
    });
    this.renaming = false;
    this.roomView.setRenameBusy(false);
    if (!res.ok) return showError(res.error);

    clearError();
    this.rememberNickname(res.value.nickname);
    if (this.room !== room) return;
    const old = room.renameSelf(res.value.nickname);
    this.roomView.closeRename();
    this.roomView.renderPeople();
    this.call.selfRenamed();
    if (old !== res.value.nickname) this.roomView.system("sys.selfRenamed", { name: res.value.nickname });
  }

  private async copyLink(): Promise<void> {
    const room = this.room;
    if (!room) return;
    const url = roomUrl(location.origin, room.name);
    if (await copyText(url)) this.roomView.flashCopied();
    else showMessage("error.copyFailed", { url });
  }

  private rememberNickname(nickname: string): void {
    save("nickname", nickname);
    this.lobby.setNickname(nickname);
  }
}

/** An error found before sending, in the same shape as the server's. */
function localError(code: string): ProtocolError {
  return { code, message: code };
}
