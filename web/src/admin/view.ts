// The admin page's DOM: the sign-in form, the live indicator, this node and the others, the
// totals, and one card per room with its people and the Close room and Disconnect buttons. Only
// DOM; panel.ts decides what happens. Names come from users and go in as text only.
import { byId, el, setMediaData, syncKeyed } from "../dom";
import { initial } from "../format";
import { onLangChange, t } from "../lang";
import { callIcons } from "../people";
import type { AdminNode, AdminParticipant, AdminRoom, AdminState } from "./api";
import { mediaTexts, redisText, summarize, type Text } from "./summary";

export type AdminViewHandlers = {
  signIn(token: string): void;
  signOut(): void;
  closeRoom(room: string): void;
  disconnect(id: string): void;
};

type Status = { text: Text; kind: "ok" | "error" };

function say(text: Text): string {
  return t(text.key, text.params);
}

/** The element of `root` that `selector` finds; the cards below are all made here, so it exists. */
function part<T extends HTMLElement = HTMLElement>(root: HTMLElement, selector: string): T {
  const node = root.querySelector<T>(selector);
  if (!node) throw new Error(`missing ${selector}`);
  return node;
}

export class AdminView {
  private readonly login = byId("admin-login", HTMLFormElement);
  private readonly token = byId("admin-token", HTMLInputElement);
  private readonly loginError = byId("admin-login-error", HTMLElement);
  private readonly signInButton = byId("admin-sign-in", HTMLButtonElement);
  private readonly signOutButton = byId("admin-sign-out", HTMLButtonElement);
  private readonly live = byId("admin-live", HTMLElement);
  private readonly liveLabel = byId("admin-live-label", HTMLElement);
  private readonly main = byId("admin-main", HTMLElement);
  private readonly node = byId("admin-node", HTMLElement);
  private readonly redis = byId("admin-redis", HTMLElement);
  private readonly connections = byId("admin-connections", HTMLElement);
  private readonly nodes = byId("admin-nodes", HTMLUListElement);
  private readonly roomCount = byId("admin-room-count", HTMLElement);
  private readonly people = byId("admin-people", HTMLElement);
  private readonly inCall = byId("admin-in-call", HTMLElement);
  private readonly status = byId("admin-status", HTMLElement);
  private readonly rooms = byId("admin-rooms", HTMLElement);
  private readonly empty = byId("admin-empty", HTMLElement);

  private state: AdminState | null = null;
  private loginText: Text | null = null;
  private statusShown: Status | null = null;
  private isLive = false;
  private signingIn = false;

  constructor(handlers: AdminViewHandlers) {
    this.login.addEventListener("submit", (event) => {
      event.preventDefault();
      handlers.signIn(this.token.value.trim());
    });
    this.signOutButton.addEventListener("click", () => handlers.signOut());
    this.rooms.addEventListener("click", (event) => {
      if (!(event.target instanceof Element)) return;
      const close = event.target.closest(".admin-close-room");
      const room = close?.closest<HTMLElement>(".admin-room")?.dataset.room;
      if (room !== undefined) return handlers.closeRoom(room);
      const disconnect = event.target.closest(".admin-disconnect");
      const id = disconnect?.closest<HTMLElement>(".admin-participant")?.dataset.id;
      if (id !== undefined) handlers.disconnect(id);
    });
    onLangChange(() => {
      this.relabel();
      if (this.state) this.render(this.state);
    });
    this.relabel();
  }

  /** Back to the sign-in form, with why (or nothing); whatever was shown of a state goes. */
  showLogin(error: Text | null): void {
    this.state = null;
    this.statusShown = null;
    this.loginText = error;
    this.main.hidden = true;
    this.signOutButton.hidden = true;
    this.live.hidden = true;
    this.rooms.replaceChildren();
    this.nodes.replaceChildren();
    this.login.hidden = false;
    this.setSigningIn(false);
    this.relabel();
    this.token.select();
    this.token.focus();
  }

  setSigningIn(busy: boolean): void {
    this.signingIn = busy;
    this.signInButton.disabled = busy;
    this.login.setAttribute("aria-busy", String(busy));
    this.relabel();
  }

  showMain(): void {
    this.login.hidden = true;
    this.token.value = "";
    this.loginText = null;
    this.main.hidden = false;
    this.signOutButton.hidden = false;
    this.live.hidden = false;
  }

  /** Whether the state is coming in: "Live", or "Connection lost, retrying…". */
  setLive(live: boolean): void {
    this.isLive = live;
    this.relabel();
  }

  /** The line that says how an action went (null: nothing to say). */
  setStatus(status: Status | null): void {
    this.statusShown = status;
    this.relabel();
  }

  render(state: AdminState): void {
    this.state = state;
    this.node.textContent = state.node;
    this.redis.dataset.state = state.redis;
    this.redis.textContent = say(redisText(state.redis));
    this.connections.textContent = String(state.connections);
    syncKeyed(
      this.nodes,
      state.nodes,
      "data-node",
      (node) => node.id,
      () =>
        el(
          "li",
          { className: "admin-node" },
          el("code", { className: "admin-node-id" }),
          el("span", { className: "tag" }),
          el("span", { className: "muted small admin-node-people" }),
        ),
      (item, node) => this.updateNode(item, node),
    );
    const totals = summarize(state);
    this.roomCount.textContent = String(totals.rooms);
    this.people.textContent = String(totals.people);
    this.inCall.textContent = String(totals.inCall);
    syncKeyed(
      this.rooms,
      state.rooms,
      "data-room",
      (room) => room.name,
      () => this.makeRoom(),
      (card, room) => this.updateRoom(card, room),
    );
    this.empty.hidden = state.rooms.length > 0;
  }

  private updateNode(item: HTMLElement, node: AdminNode): void {
    item.dataset.self = String(node.self);
    part(item, ".admin-node-id").textContent = node.id;
    const tag = part(item, ".tag");
    tag.hidden = !node.self;
    tag.textContent = t("admin.thisNode");
    part(item, ".admin-node-people").textContent = t("admin.nodePeople", { count: node.people });
  }

  private makeRoom(): HTMLElement {
    return el(
      "article",
      { className: "card admin-room" },
      el(
        "div",
        { className: "card-head" },
        el(
          "h2",
          { className: "card-title admin-room-title" },
          el("span", { className: "admin-room-name" }),
          el("span", { className: "tag admin-unlisted" }),
        ),
        el("button", { className: "btn btn-small btn-danger admin-close-room", attrs: { type: "button" } }),
      ),
      el("p", { className: "muted small admin-room-counts" }),
      el("ul", { className: "admin-participants" }),
    );
  }

  private updateRoom(card: HTMLElement, room: AdminRoom): void {
    card.dataset.count = String(room.count);
    card.dataset.inCall = String(room.inCall);
    part(card, ".admin-room-name").textContent = room.name;
    const unlisted = part(card, ".admin-unlisted");
    unlisted.hidden = !room.unlisted;
    unlisted.textContent = t("room.unlisted");
    part(card, ".admin-close-room").textContent = t("admin.closeRoom");
    part(card, ".admin-room-counts").textContent = t("admin.roomCounts", { count: room.count, inCall: room.inCall });
    const list = part(card, ".admin-participants");
    list.setAttribute("aria-label", t("admin.people", { room: room.name }));
    syncKeyed(
      list,
      room.participants,
      "data-id",
      (p) => p.id,
      () => this.makeParticipant(),
      (item, p) => this.updateParticipant(item, p),
    );
  }

  private makeParticipant(): HTMLElement {
    return el(
      "li",
      { className: "admin-participant" },
      el("span", { className: "avatar", attrs: { "aria-hidden": "true" } }),
      el(
        "span",
        { className: "admin-who" },
        el("span", { className: "nick" }),
        el("code", { className: "admin-id" }),
      ),
      el("code", { className: "admin-participant-node" }),
      el("span", { className: "admin-media" }),
      el("button", { className: "btn btn-small btn-danger admin-disconnect", attrs: { type: "button" } }),
      el("ul", { className: "admin-media-stats small muted" }),
    );
  }

  private updateParticipant(item: HTMLElement, p: AdminParticipant): void {
    item.dataset.node = p.node;
    item.dataset.inCall = String(Boolean(p.call));
    setMediaData(item, p.call);
    part(item, ".avatar").dataset.initial = initial(p.nickname);
    part(item, ".nick").textContent = p.nickname;
    part(item, ".admin-id").textContent = p.id;
    const node = part(item, ".admin-participant-node");
    node.textContent = p.node;
    node.title = t("admin.onNode", { node: p.node });
    part(item, ".admin-media").replaceChildren(
      p.call ? callIcons(p.call) : el("span", { className: "muted small", text: t("admin.notInCall") }),
    );
    part(item, ".admin-disconnect").textContent = t("admin.disconnect");
    const stats = part(item, ".admin-media-stats");
    stats.hidden = !p.media;
    stats.replaceChildren(...(p.media ? mediaTexts(p.media).map((line) => el("li", { text: say(line) })) : []));
  }

  /** Redraws the texts around the state: the form's, the live indicator's, the status line's. */
  private relabel(): void {
    this.loginError.hidden = this.loginText === null;
    this.loginError.textContent = this.loginText ? say(this.loginText) : "";
    this.signInButton.textContent = t(this.signingIn ? "admin.signingIn" : "admin.signIn");
    this.live.dataset.state = this.isLive ? "connected" : "reconnecting";
    this.liveLabel.textContent = t(this.isLive ? "admin.live" : "admin.retrying");
    this.status.hidden = this.statusShown === null;
    this.status.dataset.kind = this.statusShown?.kind ?? "";
    this.status.textContent = this.statusShown ? say(this.statusShown.text) : "";
  }
}
