// The client's controller: ties the connection to the lobby and room views and the room's call,
// keeps the address bar in step (/ and /r/<room>), re-joins the room after a reconnection, and
// follows an administrator's closing of the room or of the connection.
import { clearError, showError, showMessage } from "./banner";
import { CallSession } from "./call";
import { copyText } from "./clipboard";
import { Connection } from "./connection";
import { lang, onLangChange } from "./lang";
import { LobbyView, type EnterRequest } from "./lobby";
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
  isSfuClosed,
  isSfuLayers,
  isSfuOffer,
  isSfuSpeakers,
  isSignal,
  type JoinAck,
  type Participant,
  type ProtocolError,
} from "./protocol";
import { RoomView } from "./room";
import { RoomState } from "./roomState";
import { lobbyPath, parseRoute, roomPath, roomUrl, type Route } from "./route";
import { setStatus } from "./status";
import { load, save } from "./storage";
import { checkMessage, checkNickname, checkRoomName } from "./validate";

/** Errors worth a Retry button on a failed message; the others need the text changed. */
const RETRYABLE = new Set(["rate_limited", "overloaded", "timeout", "disconnected", "not_in_room"]);

export class App {
  private readonly conn = new Connection();
  private readonly lobby = new LobbyView();
  private readonly roomView = new RoomView();
  private readonly call: CallSession;
  private readonly nameSeed: NameSeed;

  /** The room this client is in, or null in the lobby. */
  private room: RoomState | null = null;
  private joining = false;
  private rejoining = false;
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
  }

  start(): void {
    this.lobby.setDefaultNickname(nameFromSeed(this.nameSeed, lang()));
    onLangChange((next) => this.lobby.setDefaultNickname(nameFromSeed(this.nameSeed, next)));
    this.lobby.setNickname(load("nickname") ?? "");

    this.lobby.onEnter((request) => void this.enter(request));
    this.roomView.onSend((text, retry) => void this.send(text, retry));
    this.roomView.onRename((nickname) => void this.rename(nickname));
    this.roomView.onLeave(() => this.leave(true));
    this.roomView.onCopy(() => void this.copyLink());

    this.conn.onState((state) => {
      setStatus(state);
      // Once the server has let this page go for good, the banner says why; "Reconnecting…" would be untrue.
      if (state === "disconnected" && this.room && !this.lossNoted && !this.conn.dismissed) {
        this.roomView.system("sys.connectionLost");
        this.lossNoted = true;
      }
    });
    this.conn.onConnect(() => this.connected());
    this.listen();

    window.addEventListener("popstate", () => this.followAddress(parseRoute(location.pathname)));
    this.followAddress(parseRoute(location.pathname));
  }

  /** Someone renamed, or their call or media changed (a large call's changes come several at once). */
  private participantsUpdated(roomName: string, participants: Participant[]): void {
    const room = this.room;
    if (!room || roomName !== room.name) return;
    for (const p of participants) {
      const { oldName, call } = room.updated(p);
      this.call.participantUpdated(p, call);
      if (oldName !== null) this.roomView.system("sys.renamed", { old: oldName, new: room.label(p.id, p.nickname) });
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
      this.roomView.showMessage(message);
    });

    this.conn.on(Events.roomClosed, isRoomClosed, (ev) => {
      if (!this.room || ev.room !== this.room.name) return;
      // The server has taken us out of the room and its call already: nothing to tell it.
      this.dropRoom(true);
      this.refreshDirectory();
      showMessage(ev.reason === "admin" ? "error.roomClosedByAdmin" : "error.roomClosed", { room: ev.room });
    });

    this.conn.on(Events.disconnected, isServerDisconnected, (ev) => {
      // The room stays on screen to be read, but its call cannot go on without a connection.
      this.call.roomLeft();
      showMessage(ev.reason === "admin" ? "error.disconnectedByAdmin" : "error.disconnectedByServer");
    });
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
      { room: room.value, unlisted: request.unlisted, nickname: nickname.value },
      isJoinAck,
      // The room is set up as the answer arrives: the pushes right behind it build on it.
      {
        onAnswer: (answer) => {
          if (answer.ok) this.opened(answer.value);
        },
      },
    );
    this.joining = false;
    this.lobby.setBusy(false);
    if (!res.ok) return showError(res.error);

    clearError();
    const path = roomPath(res.value.room.name);
    if (location.pathname !== path) history.pushState({ room: res.value.room.name }, "", path);
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
          this.roomView.rejoined(res.value.history);
          this.call.reconnected();
          return;
        }
        // Lost again on the way: the next connection joins again.
        if (res.error.code === "disconnected") return;
        showError(res.error);
        this.leave(true);
      },
    });
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
    if (!room || text.length === 0) return;
    const pending = this.roomView.pending(text);
    // A retry leaves alone whatever is being written meanwhile.
    if (!retry) this.roomView.clearMessage();
    const check = checkMessage(text);
    if (!check.ok) {
      const error = localError(check.code);
      pending.failed(error, false);
      return showError(error);
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
