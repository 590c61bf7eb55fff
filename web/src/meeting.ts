// Running a meeting, as the page shows it: the hand button, the room's lock, the hosts' tools
// above the list of people (lock, mute everyone, end for all), each person's badges (host, hand,
// muted by a host), and the panel of a host's actions on one person. It sends the controls; what
// they change comes back as pushes (app.ts), so the page shows what the room is, not what it asked.
import { ask } from "./ask";
import { showError, showMessage } from "./banner";
import { copyText } from "./clipboard";
import { isolated } from "./names";
import { hostUrl } from "./route";
import { loadSession } from "./storage";
import type { Connection } from "./connection";
import { byId, el, replaceKeepingFocus } from "./dom";
import type { Key } from "./i18n";
import { onLangChange, t } from "./lang";
import {
  Events,
  isControlAck,
  type Ask,
  type ControlAck,
  type Participant,
  type Result,
  type RoomReaction,
  type RoomWaiting,
  type Waiter,
  REACTIONS,
} from "./protocol";

/** How long a reaction floats over its sender. */
const REACTION_MS = 4000;
import type { RoomState } from "./roomState";
import { LIMITS } from "./validate";

export type MeetingHost = {
  room(): RoomState | null;
  /** The list of people is to be drawn again (a badge or the open panel changed). */
  peopleChanged(): void;
  /** A line in the room's log. */
  system(key: Key, params: Record<string, string>): void;
};

type Action = { key: Key; run: (room: RoomState, p: Participant) => void };

export class MeetingControls {
  private readonly handButton = byId("hand", HTMLButtonElement);
  private readonly handLabel = byId("hand-label", HTMLElement);
  private readonly lockedTag = byId("room-locked", HTMLElement);
  private readonly tools = byId("host-tools", HTMLElement);
  private readonly lockButton = byId("host-lock", HTMLButtonElement);
  private readonly waitingRoomButton = byId("host-waiting-room", HTMLButtonElement);
  private readonly passwordButton = byId("host-password", HTMLButtonElement);
  private readonly passwordForm = byId("host-password-form", HTMLFormElement);
  private readonly passwordInput = byId("host-password-input", HTMLInputElement);
  private readonly passwordRemove = byId("host-password-remove", HTMLButtonElement);
  private readonly passwordTag = byId("room-password-tag", HTMLElement);
  private readonly copyHostLink = byId("copy-host-link", HTMLButtonElement);
  private readonly waitingList = byId("waiting-list", HTMLElement);
  private readonly waitingTitle = byId("waiting-list-title", HTMLElement);
  private readonly waitingPeople = byId("waiting-people", HTMLUListElement);
  /** Who waits to enter the room, as the server last told this host. */
  private waiting: Waiter[] = [];
  private readonly muteAllButton = byId("host-mute-all", HTMLButtonElement);
  private readonly endButton = byId("host-end", HTMLButtonElement);
  private readonly handsLine = byId("hands", HTMLElement);
  private readonly reactButton = byId("react", HTMLButtonElement);
  private readonly palette = byId("reactions", HTMLElement);
  private readonly reactionStatus = byId("reaction-status", HTMLElement);
  private readonly panel = byId("person-actions", HTMLElement);
  /** Whose actions the panel shows, if it is open. */
  private actingOn: string | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly host: MeetingHost,
  ) {
    this.passwordInput.maxLength = LIMITS.password;
    this.handButton.addEventListener("click", () => this.toggleHand());
    this.lockButton.addEventListener("click", () => {
      const room = this.host.room();
      if (room) void this.control(Events.roomLock, { room: room.name, locked: !room.locked });
    });
    this.waitingRoomButton.addEventListener("click", () => {
      const room = this.host.room();
      if (room) void this.control(Events.roomWaitingRoom, { room: room.name, on: !room.waitingRoom });
    });
    this.muteAllButton.addEventListener("click", () => void this.muteAll());
    this.copyHostLink.addEventListener("click", () => void this.copyHostLinkNow());
    this.passwordButton.addEventListener("click", () => this.togglePasswordForm(this.passwordForm.hidden));
    byId("host-password-cancel", HTMLButtonElement).addEventListener("click", () => this.togglePasswordForm(false));
    this.passwordForm.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.togglePasswordForm(false);
    });
    this.passwordForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.passwordInput.value) void this.setPassword(this.passwordInput.value);
    });
    this.passwordRemove.addEventListener("click", () => void this.setPassword(null));
    this.endButton.addEventListener("click", () => {
      const room = this.host.room();
      if (!room) return;
      void ask({ title: "meeting.confirmEnd", choices: [{ value: "end", key: "meeting.end", danger: true }] }).then((choice) => {
        if (choice && this.host.room() === room) void this.control(Events.roomEnd, { room: room.name });
      });
    });
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closePanel(true);
    });
    this.reactButton.addEventListener("click", () => this.togglePalette(this.palette.hidden));
    this.palette.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.togglePalette(false);
      this.reactButton.focus();
    });
    this.renderPalette();
    onLangChange(() => {
      this.renderPalette();
      this.render();
    });
  }

  /** Draws everything of the meeting from the room state (none: out of a room). */
  render(): void {
    const room = this.host.room();
    const host = !!room?.isHost;
    this.lockedTag.hidden = !room?.locked;
    this.passwordTag.hidden = !room?.password;
    this.copyHostLink.hidden = !(host && room && this.hostKey(room.name));
    if (!host) this.passwordForm.hidden = true;
    this.tools.hidden = !host;
    if (room) {
      this.lockButton.textContent = t(room.locked ? "meeting.unlock" : "meeting.lock");
      this.lockButton.setAttribute("aria-pressed", String(room.locked));
      this.waitingRoomButton.textContent = t(room.waitingRoom ? "meeting.waitingRoomOn" : "meeting.waitingRoomOff");
      this.waitingRoomButton.setAttribute("aria-pressed", String(room.waitingRoom));
      this.passwordButton.textContent = t(room.password ? "meeting.changePassword" : "meeting.setPassword");
      this.passwordRemove.hidden = !room.password;
      this.muteAllButton.textContent = t("meeting.muteAll");
      this.endButton.textContent = t("meeting.end");
      const raised = typeof room.self.hand === "number";
      this.handButton.setAttribute("aria-pressed", String(raised));
      this.handLabel.textContent = t(raised ? "meeting.lowerHand" : "meeting.raiseHand");
      const hands = room.hands();
      this.handsLine.hidden = hands.length === 0;
      this.handsLine.textContent = t("meeting.hands", { names: hands.map((p) => room.label(p.id, p.nickname)).join(", ") });
    }
    if (!room || !host || (this.actingOn && !room.find(this.actingOn))) this.closePanel(false);
    else this.renderPanel(room);
    if (!host) this.waiting = [];
    this.renderWaiting();
  }

  /** Who waits to enter now (to hosts): the list shows them, and the log says who came. */
  waitingChanged(ev: RoomWaiting): void {
    const room = this.host.room();
    if (!room || room.name !== ev.room) return;
    const known = new Set(this.waiting.map((w) => w.id));
    for (const w of ev.waiting) if (!known.has(w.id)) this.host.system("sys.waiting", { name: w.nickname });
    this.waiting = ev.waiting;
    this.renderWaiting();
  }

  private renderWaiting(): void {
    const room = this.host.room();
    const shown = room?.isHost ? this.waiting : [];
    this.waitingList.hidden = shown.length === 0;
    if (!room || shown.length === 0) {
      this.waitingPeople.replaceChildren();
      return;
    }
    this.waitingTitle.textContent = t("meeting.waitingTitle", { count: shown.length });
    const answer = (w: Waiter, admit: boolean) => void this.control(Events.roomAdmit, { room: room.name, id: w.id, admit });
    const rows = shown.map((w) => {
      const admit = el("button", { className: "btn btn-small btn-primary", text: t("meeting.admit"), attrs: { type: "button", "data-focus-key": `admit:${w.id}`, "aria-label": `${t("meeting.admit")}: ${w.nickname}` } });
      admit.addEventListener("click", () => answer(w, true));
      const refuse = el("button", { className: "btn btn-small", text: t("meeting.refuse"), attrs: { type: "button", "data-focus-key": `refuse:${w.id}`, "aria-label": `${t("meeting.refuse")}: ${w.nickname}` } });
      refuse.addEventListener("click", () => answer(w, false));
      return el("li", {}, el("span", { className: "nick", text: w.nickname }), admit, refuse);
    });
    if (shown.length > 1) {
      const all = el("button", { className: "btn btn-small", text: t("meeting.admitAll"), attrs: { type: "button", "data-focus-key": "admit-all" } });
      all.addEventListener("click", () => shown.forEach((w) => answer(w, true)));
      rows.push(el("li", {}, all));
    }
    // The one answered is gone: the focus goes on to whoever waits next.
    replaceKeepingFocus(this.waitingPeople, rows, "data-focus-key", () => this.waitingPeople.querySelector("button"));
  }

  /** Someone reacted (this page's own reactions show at once, before the server is asked). */
  reacted(ev: RoomReaction): void {
    const room = this.host.room();
    if (!room || room.name !== ev.room) return;
    const known = REACTIONS.find(([emoji]) => emoji === ev.emoji);
    const who = room.find(ev.from);
    if (!known || !who) return;
    this.reactionStatus.textContent = t("meeting.reacted", { name: room.label(who.id, who.nickname), reaction: t(known[1]) });
    // Over their tile in a call, else by their name in the list of people.
    const host =
      document.querySelector<HTMLElement>(`#tiles .tile[data-id="${CSS.escape(ev.from)}"]`) ??
      document.querySelector<HTMLElement>(`#participants [data-id="${CSS.escape(ev.from)}"]`);
    if (!host) return;
    const bubble = el("span", { className: "reaction", text: ev.emoji, attrs: { "aria-hidden": "true", "data-emoji": ev.emoji } });
    host.append(bubble);
    window.setTimeout(() => bubble.remove(), REACTION_MS);
  }

  /** The room's host key, if this tab was told it or opened its host link. */
  private hostKey(room: string): string | null {
    return loadSession(`hostKey:${room}`);
  }

  private async copyHostLinkNow(): Promise<void> {
    const room = this.host.room();
    const key = room && this.hostKey(room.name);
    if (!room || !key) return;
    const url = hostUrl(location.origin, room.name, key);
    if (await copyText(url)) showMessage("meeting.hostLinkCopied");
    else showMessage("error.copyFailed", { url });
  }

  private togglePasswordForm(open: boolean): void {
    this.passwordForm.hidden = !open;
    this.passwordButton.setAttribute("aria-expanded", String(open));
    this.passwordInput.value = "";
    if (open) this.passwordInput.focus();
    else this.passwordButton.focus();
  }

  private async setPassword(password: string | null): Promise<void> {
    const room = this.host.room();
    if (!room) return;
    const res = await this.control(Events.roomPassword, { room: room.name, password });
    if (res.ok) this.togglePasswordForm(false);
  }

  private togglePalette(open: boolean): void {
    this.palette.hidden = !open;
    this.reactButton.setAttribute("aria-expanded", String(open));
    if (open) this.palette.querySelector<HTMLButtonElement>("button")?.focus();
  }

  private renderPalette(): void {
    const buttons = REACTIONS.map(([emoji, key]) => {
      const button = el("button", { className: "reaction-pick", text: emoji, attrs: { type: "button", "aria-label": t(key), title: t(key), "data-emoji": emoji } });
      button.addEventListener("click", () => void this.react(emoji));
      return button;
    });
    this.palette.replaceChildren(...buttons);
    this.palette.setAttribute("aria-label", t("meeting.reactions"));
  }

  private async react(emoji: string): Promise<void> {
    const room = this.host.room();
    if (!room) return;
    this.reacted({ room: room.name, from: room.self.id, emoji });
    await this.control(Events.roomReact, { room: room.name, emoji });
  }

  /** What someone's entry in the list of people shows of the meeting, and a host's way to act on them. */
  personBadges(room: RoomState, p: Participant): HTMLElement[] {
    const badges: HTMLElement[] = [];
    if (typeof p.hand === "number") {
      badges.push(el("span", { className: "person-hand icon-mask", attrs: { role: "img", "aria-label": t("meeting.handRaised"), title: t("meeting.handRaised") } }));
    }
    if (p.host) badges.push(el("span", { className: "host-badge", text: t("meeting.host") }));
    if (p.muted) {
      badges.push(el("span", { className: "person-icon pi-mic-off host-muted", attrs: { role: "img", "aria-label": t("meeting.mutedByHost"), title: t("meeting.mutedByHost") } }));
    }
    if (room.isHost && !room.isSelf(p.id)) {
      const name = room.label(p.id, p.nickname);
      const open = this.actingOn === p.id;
      const button = el("button", {
        className: "person-more",
        text: "⋯",
        attrs: {
          type: "button",
          "aria-label": t("meeting.actions", { name }),
          title: t("meeting.actions", { name }),
          "aria-expanded": String(open),
          "aria-controls": "person-actions",
          "data-focus-key": `more:${p.id}`,
        },
      });
      button.addEventListener("click", () => {
        this.actingOn = open ? null : p.id;
        this.host.peopleChanged();
        if (!open) this.panel.querySelector<HTMLButtonElement>("button")?.focus();
      });
      badges.push(button);
    }
    return badges;
  }

  private async toggleHand(): Promise<void> {
    const room = this.host.room();
    if (!room) return;
    await this.control(Events.roomHand, { room: room.name, raised: typeof room.self.hand !== "number" });
  }

  private async muteAll(): Promise<void> {
    const room = this.host.room();
    if (!room) return;
    const res = await this.control(Events.callMute, { room: room.name });
    if (res.ok) showMessage("meeting.mutedAll", { count: res.value.count ?? 0 });
  }

  private actions(p: Participant): Action[] {
    const actions: Action[] = [
      p.host
        ? { key: "meeting.removeHost", run: (room) => void this.control(Events.roomHost, { room: room.name, id: p.id, host: false }) }
        : { key: "meeting.makeHost", run: (room) => void this.control(Events.roomHost, { room: room.name, id: p.id, host: true }) },
    ];
    const request = (key: Key, what: Ask): Action => ({
      key,
      run: (room) => void this.control(Events.callAsk, { room: room.name, id: p.id, ask: what }),
    });
    if (p.call) {
      if (p.muted || !p.call.audio) actions.push(request("meeting.askUnmute", "unmute"));
      if (!p.muted) actions.push({ key: "meeting.mute", run: (room) => void this.control(Events.callMute, { room: room.name, id: p.id }) });
      if (p.call.video) actions.push(request("meeting.stopCamera", "stop-camera"));
      if (p.call.screen) actions.push(request("meeting.stopScreen", "stop-screen"));
    }
    const remove = (key: Key, bar: boolean): Action => ({
      key,
      run: (room, who) => {
        const params = isolated({ name: room.label(who.id, who.nickname) });
        void ask({ title: "meeting.confirmRemove", params, choices: [{ value: "remove", key, danger: true }] }).then((choice) => {
          if (choice && this.host.room() === room) void this.control(Events.roomRemove, { room: room.name, id: who.id, bar });
        });
      },
    });
    actions.push(remove("meeting.remove", false), remove("meeting.removeBar", true));
    return actions;
  }

  private renderPanel(room: RoomState): void {
    const p = this.actingOn ? room.find(this.actingOn) : undefined;
    if (!p) {
      this.panel.hidden = true;
      return;
    }
    const title = el("h3", { className: "person-actions-title", text: t("meeting.actions", { name: room.label(p.id, p.nickname) }) });
    const buttons = this.actions(p).map((action) => {
      const button = el("button", {
        className: action.key.startsWith("meeting.remove") && action.key !== "meeting.removeHost" ? "btn btn-small btn-danger" : "btn btn-small",
        text: t(action.key),
        attrs: { type: "button", "data-key": action.key },
      });
      button.addEventListener("click", () => {
        const current = this.host.room();
        const who = current?.find(p.id);
        if (!current || !who) return;
        this.closePanel(true);
        action.run(current, who);
      });
      return button;
    });
    const close = el("button", { className: "btn btn-small", text: t("room.renameCancel"), attrs: { type: "button", "data-key": "close" } });
    close.addEventListener("click", () => this.closePanel(true));
    // Kept where it is when redrawn for an unrelated change (someone's media), with the focus in it.
    replaceKeepingFocus(this.panel, [title, el("div", { className: "person-actions-list" }, ...buttons, close)], "data-key");
    this.panel.hidden = false;
  }

  /** Closes the panel; `refocus` puts the focus back on the person's button. */
  private closePanel(refocus: boolean): void {
    const was = this.actingOn;
    if (!was && this.panel.hidden) return;
    this.actingOn = null;
    this.panel.hidden = true;
    this.panel.replaceChildren();
    if (was) {
      this.host.peopleChanged();
      if (refocus) document.querySelector<HTMLElement>(`[data-focus-key="more:${CSS.escape(was)}"]`)?.focus();
    }
  }

  private async control(event: string, payload: object): Promise<Result<ControlAck>> {
    const res = await this.conn.request(event, payload, isControlAck, { needConnected: true });
    if (!res.ok) showError(res.error);
    return res;
  }
}


/** The page of someone waiting for a host to let them into a room. */
export class WaitingView {
  private readonly section = byId("waiting-view", HTMLElement);
  private readonly text = byId("waiting-text", HTMLElement);
  private readonly cancel = byId("waiting-cancel", HTMLButtonElement);
  private room: string | null = null;

  constructor(onCancel: () => void) {
    this.cancel.addEventListener("click", onCancel);
    onLangChange(() => this.render());
  }

  show(room: string): void {
    this.room = room;
    this.render();
    this.section.hidden = false;
    this.cancel.focus();
  }

  hide(): void {
    this.room = null;
    this.section.hidden = true;
  }

  private render(): void {
    if (this.room !== null) this.text.textContent = t("meeting.waitText", { room: this.room });
  }
}
