// The lobby view (#lobby): the nickname and room form, and the live directory of open rooms.
import { byId, el, syncKeyed } from "./dom";
import { initial } from "./format";
import { onLangChange, t } from "./lang";
import { isolated } from "./names";
import type { Directory, DirectoryRoom } from "./protocol";

export type EnterRequest = { nickname: string; room: string; unlisted: boolean };

export class LobbyView {
  private readonly section = byId("lobby", HTMLElement);
  private readonly form = byId("lobby-form", HTMLFormElement);
  private readonly title = byId("lobby-title", HTMLElement);
  private readonly inviteHint = byId("invite-hint", HTMLElement);
  private readonly nickname = byId("nickname", HTMLInputElement);
  private readonly roomName = byId("room-name", HTMLInputElement);
  private readonly unlisted = byId("unlisted", HTMLInputElement);
  private readonly enterButton = byId("enter-room", HTMLButtonElement);
  private readonly list = byId("directory", HTMLUListElement);
  private readonly total = byId("room-total", HTMLElement);
  private readonly empty = byId("directory-empty", HTMLElement);
  private readonly more = byId("directory-more", HTMLElement);

  private invitedRoom: string | null = null;
  private busy = false;
  private directory: Directory = { rooms: [], total: 0 };
  private enterHandler: (request: EnterRequest) => void = () => {};

  constructor() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(this.roomName.value, this.unlisted.checked);
    });
    this.list.addEventListener("click", (event) => {
      const item = this.itemFrom(event.target);
      if (item) this.submit(item.dataset.room ?? "", false);
    });
    this.list.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      const item = this.itemFrom(event.target);
      if (!item) return;
      event.preventDefault();
      this.submit(item.dataset.room ?? "", false);
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
  }

  /** Opens the nickname step for a room link (or goes back to the plain lobby with null). */
  setInvite(room: string | null): void {
    this.invitedRoom = room;
    if (room !== null) {
      this.roomName.value = room;
      this.unlisted.checked = false;
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

  private submit(room: string, unlisted: boolean): void {
    if (this.busy) return;
    this.enterHandler({ nickname: this.nickname.value, room, unlisted });
  }

  private itemFrom(target: EventTarget | null): HTMLLIElement | null {
    if (!(target instanceof Element)) return null;
    const item = target.closest("li[data-room]");
    return item instanceof HTMLLIElement && this.list.contains(item) ? item : null;
  }

  private makeItem(room: DirectoryRoom): HTMLLIElement {
    return el(
      "li",
      { className: "directory-item", attrs: { "data-room": room.name, role: "button", tabindex: "0" } },
      // The badge letter is drawn by CSS from data-initial, so the item's text stays name and count.
      el("span", { className: "room-avatar", attrs: { "aria-hidden": "true", "data-initial": initial(room.name) } }),
      el("span", { className: "room-name", text: room.name }),
      el("span", { className: "room-count", text: String(room.count) }),
    );
  }

  private updateItem(item: HTMLLIElement, room: DirectoryRoom): void {
    const count = item.querySelector(".room-count");
    if (count) count.textContent = String(room.count);
    item.setAttribute("aria-label", t("lobby.enterRoomAria", { room: room.name, count: room.count }));
    item.title = room.name;
  }

  private relabel(): void {
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
