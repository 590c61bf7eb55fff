// The lobby view (#lobby): the nickname and room form, and the live directory of open rooms.
import { byId, el, syncKeyed } from "./dom";
import { FieldCheck } from "./forms";
import { initial } from "./format";
import { onLangChange, t } from "./lang";
import { isolated } from "./names";
import type { Directory, DirectoryRoom } from "./protocol";
import { LIMITS, nameProblem } from "./validate";

export type EnterRequest = {
  nickname: string;
  room: string;
  unlisted: boolean;
  password?: string;
  /** Open the room with a host link. */
  withHostKey?: boolean;
  /** A new meeting: once in, its link is offered to copy. */
  newMeeting?: boolean;
};

/** What a new meeting's room is called before the server adds its random part ("meeting-k3Fz…"):
 * the same word in every language, so that the link stays plain to share. */
export const NEW_MEETING = "meeting";

export class LobbyView {
  private readonly section = byId("lobby", HTMLElement);
  private readonly form = byId("lobby-form", HTMLFormElement);
  private readonly title = byId("lobby-title", HTMLElement);
  private readonly inviteHint = byId("invite-hint", HTMLElement);
  private readonly nickname = byId("nickname", HTMLInputElement);
  private readonly roomName = byId("room-name", HTMLInputElement);
  private readonly unlisted = byId("unlisted", HTMLInputElement);
  private readonly withHostKey = byId("with-host-key", HTMLInputElement);
  private readonly passwordField = byId("room-password-field", HTMLElement);
  private readonly password = byId("room-password", HTMLInputElement);
  private readonly enterButton = byId("enter-room", HTMLButtonElement);
  private readonly list = byId("directory", HTMLUListElement);
  private readonly total = byId("room-total", HTMLElement);
  private readonly empty = byId("directory-empty", HTMLElement);
  private readonly more = byId("directory-more", HTMLElement);

  private readonly nicknameCheck = new FieldCheck(this.nickname, (v) => nameProblem(v, LIMITS.nickname, false), { maxLength: LIMITS.nickname });
  private readonly roomCheck = new FieldCheck(this.roomName, (v) => nameProblem(v, LIMITS.room, true), {
    maxLength: LIMITS.room,
    emptyKey: "form.roomRequired",
  });

  private invitedRoom: string | null = null;
  private busy = false;
  private directory: Directory = { rooms: [], total: 0 };
  private enterHandler: (request: EnterRequest) => void = () => {};

  constructor() {
    this.password.maxLength = LIMITS.password;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      // Each field says what is wrong with it; the first one wrong gets the focus.
      const wrong = [this.nicknameCheck.refresh(true) ? null : this.nickname, this.roomCheck.refresh(true) ? null : this.roomName];
      const first = wrong.find((field) => field !== null);
      if (first) return first.focus();
      this.submit(this.roomName.value, this.unlisted.checked, this.withHostKey.checked);
    });
    byId("new-meeting", HTMLButtonElement).addEventListener("click", () => {
      if (!this.mayEnter()) return;
      // Unlisted: the server names it with a random part nobody can guess.
      this.enterHandler({ nickname: this.nickname.value, room: NEW_MEETING, unlisted: true, newMeeting: true });
    });
    this.list.addEventListener("click", (event) => {
      const item = this.itemFrom(event.target);
      if (item) this.submit(item.dataset.room ?? "", false);
    });
    onLangChange(() => this.relabel());
    this.relabel();
  }

  /** Called when the person asks to enter a room (form or directory). */
  onEnter(handler: (request: EnterRequest) => void): void {
    this.enterHandler = handler;
  }

  show(): void {
    this.section.hidden = false;
    this.focusFirstField();
  }

  hide(): void {
    this.section.hidden = true;
  }

  /** The default nickname, shown as the placeholder and used when the field is left empty. */
  setDefaultNickname(name: string): void {
    this.nickname.placeholder = name;
  }

  get defaultNickname(): string {
    return this.nickname.placeholder;
  }

  setNickname(name: string): void {
    this.nickname.value = name;
    this.nicknameCheck.clear();
  }

  /** Opens the nickname step for a room link (or goes back to the plain lobby with null). */
  setInvite(room: string | null): void {
    this.invitedRoom = room;
    if (room !== null) {
      this.roomName.value = room;
      this.unlisted.checked = false;
      this.roomCheck.clear();
    }
    this.relabel();
  }

  setBusy(busy: boolean): void {
    this.busy = busy;
    this.enterButton.disabled = busy;
    this.form.setAttribute("aria-busy", String(busy));
    this.relabel();
  }

  renderDirectory(directory: Directory): void {
    this.directory = directory;
    syncKeyed(
      this.list,
      directory.rooms,
      "data-room",
      (room) => room.name,
      (room) => this.makeItem(room),
      (item, room) => this.updateItem(item, room),
    );
    this.total.textContent = String(directory.total);
    this.empty.hidden = directory.rooms.length > 0;
    this.relabelMore();
  }

  /** Whether a request to enter may go now: not already entering, and a nickname that will do
   * (else its field says why, and has the focus). */
  private mayEnter(): boolean {
    if (this.busy) return false;
    if (this.nicknameCheck.refresh(true)) return true;
    this.nickname.focus();
    return false;
  }

  private submit(room: string, unlisted: boolean, withHostKey = false): void {
    if (!this.mayEnter()) return;
    // The password goes with the room it was asked for.
    const password = !this.passwordField.hidden && room === this.roomName.value && this.password.value ? this.password.value : undefined;
    this.enterHandler({ nickname: this.nickname.value, room, unlisted, ...(password ? { password } : {}), ...(withHostKey ? { withHostKey } : {}) });
  }

  /** The room asked for needs its password: the form asks for it. */
  askPassword(room: string): void {
    this.roomName.value = room;
    this.passwordField.hidden = false;
    this.password.select();
    this.password.focus();
  }

  private itemFrom(target: EventTarget | null): HTMLLIElement | null {
    if (!(target instanceof Element)) return null;
    const item = target.closest("li[data-room]");
    return item instanceof HTMLLIElement && this.list.contains(item) ? item : null;
  }

  /** A room of the list: a button whose name a screen reader reads as "coffee, 3 people, 2 in a
   * call", while the eye reads the badges. */
  private makeItem(room: DirectoryRoom): HTMLLIElement {
    return el(
      "li",
      { attrs: { "data-room": room.name } },
      el(
        "button",
        { className: "directory-item", attrs: { type: "button", title: room.name } },
        // The badge letter is drawn by CSS from data-initial, so the button's text stays name and counts.
        el("span", { className: "room-avatar", attrs: { "aria-hidden": "true", "data-initial": initial(room.name) } }),
        el("span", { className: "room-name", text: room.name }),
        el(
          "span",
          { className: "room-stats", attrs: { "aria-hidden": "true" } },
          el("span", { className: "room-call" }),
          el("span", { className: "room-count", text: String(room.count) }),
        ),
        el("span", { className: "sr-only room-said" }),
      ),
    );
  }

  private updateItem(item: HTMLLIElement, room: DirectoryRoom): void {
    const count = item.querySelector(".room-count");
    if (count) count.textContent = String(room.count);
    // A call going: how many are in it, beside the room's head count.
    const inCall = room.inCall ?? 0;
    const call = item.querySelector<HTMLElement>(".room-call");
    if (call) {
      call.hidden = inCall === 0;
      call.textContent = String(inCall);
      call.title = t("lobby.inCall", { count: inCall });
    }
    const said = item.querySelector(".room-said");
    if (said) said.textContent = t(inCall > 0 ? "lobby.roomCallSaid" : "lobby.roomSaid", { count: room.count, inCall });
  }

  private relabel(): void {
    // A room's link asks only for a name: no room field, no other rooms.
    this.section.toggleAttribute("data-invite", this.invitedRoom !== null);
    if (this.invitedRoom !== null) {
      this.title.textContent = t("lobby.inviteTitle", isolated({ room: this.invitedRoom }));
      this.inviteHint.hidden = false;
    } else {
      this.title.textContent = t("lobby.joinTitle");
      this.inviteHint.hidden = true;
    }
    this.enterButton.textContent = t(this.busy ? "lobby.entering" : "lobby.enter");
    for (const room of this.directory.rooms) {
      const item = this.list.querySelector<HTMLLIElement>(`li[data-room="${CSS.escape(room.name)}"]`);
      if (item) this.updateItem(item, room);
    }
    this.relabelMore();
  }

  private relabelMore(): void {
    const shown = this.directory.rooms.length;
    this.more.hidden = !(shown > 0 && this.directory.total > shown);
    this.more.textContent = this.more.hidden ? "" : t("lobby.directoryMore", { shown });
  }

  private focusFirstField(): void {
    // Phones would pop the keyboard up on every visit: only focus where a pointer is precise.
    if (!window.matchMedia("(pointer: fine)").matches) return;
    if (this.invitedRoom !== null) this.nickname.focus();
    else if (this.nickname.value.trim() === "") this.nickname.focus();
    else this.roomName.focus();
  }
}
