// The room view (#room-view): header with name and live count, participant list (with who is in
// the call and their microphone and camera), rename control, chat log with pending/sent/failed
// states and system lines, and the message box.
import { byId, el, isNearBottom, scrollToBottom, setMediaData } from "./dom";
import { errorText, formatDateTime, formatTime, initial } from "./format";
import type { Key, Params } from "./i18n";
import { lang, onLangChange, t } from "./lang";
import { isolated, tellApart } from "./names";
import { callIcons } from "./people";
import type { ChatMessage, ProtocolError } from "./protocol";
import type { RoomState } from "./roomState";

/** How many lines the chat log keeps; older ones are dropped from the page. */
const MAX_LOG_ITEMS = 500;
const COPIED_MS = 2500;

export type PendingMessage = {
  /** The server accepted it. */
  sent(message: ChatMessage): void;
  /** It was refused or lost; `retryable` offers Retry (else Edit, to fix the text). */
  failed(error: ProtocolError, retryable: boolean): void;
};

export class RoomView {
  private readonly section = byId("room-view", HTMLElement);
  private readonly title = byId("room-title", HTMLElement);
  private readonly unlistedTag = byId("room-unlisted", HTMLElement);
  private readonly count = byId("room-count", HTMLElement);
  private readonly people = byId("participants", HTMLUListElement);
  private readonly selfView = byId("self-view", HTMLElement);
  private readonly selfNick = byId("self-nick", HTMLElement);
  private readonly renameButton = byId("rename", HTMLButtonElement);
  private readonly renameForm = byId("rename-form", HTMLFormElement);
  private readonly renameInput = byId("rename-input", HTMLInputElement);
  private readonly renameSave = byId("rename-save", HTMLButtonElement);
  private readonly renameCancel = byId("rename-cancel", HTMLButtonElement);
  private readonly log = byId("chat-log", HTMLOListElement);
  private readonly composer = byId("composer", HTMLFormElement);
  private readonly message = byId("message", HTMLTextAreaElement);
  private readonly copyButton = byId("copy-link", HTMLButtonElement);
  private readonly leaveButton = byId("leave", HTMLButtonElement);

  /** How to redo each line's text when the language changes. */
  private relabelers = new WeakMap<Element, () => void>();
  private state: RoomState | null = null;
  private copiedTimer: number | undefined;
  /** Whether the chat log was last seen scrolled to its end. */
  private atBottom = true;
  /** Whose entries in the list of people (with their microphone and camera) are on screen. */
  private readonly peopleInView = new Set<string>();
  private readonly peopleWatcher =
    typeof IntersectionObserver === "undefined"
      ? null
      : new IntersectionObserver((entries) => {
          for (const entry of entries) {
            const id = (entry.target as HTMLElement).dataset.id;
            if (!id) continue;
            if (entry.isIntersecting) this.peopleInView.add(id);
            else this.peopleInView.delete(id);
          }
        });

  /** `retry` is true for a failed message sent again, false for the message box's text. */
  private sendHandler: (text: string, retry: boolean) => void = () => {};
  private renameHandler: (nickname: string) => void = () => {};
  private leaveHandler: () => void = () => {};
  private copyHandler: () => void = () => {};

  constructor() {
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendHandler(this.message.value, false);
    });
    this.message.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey) return;
      // Enter that confirms an input-method composition (Korean, Japanese…) must not send.
      if (event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.sendHandler(this.message.value, false);
    });
    this.message.addEventListener("input", () => this.fitMessageBox());

    this.renameButton.addEventListener("click", () => this.openRename());
    this.renameCancel.addEventListener("click", () => this.closeRename());
    this.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.renameHandler(this.renameInput.value);
    });
    this.renameInput.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.closeRename();
      }
    });

    this.leaveButton.addEventListener("click", () => this.leaveHandler());
    this.copyButton.addEventListener("click", () => this.copyHandler());

    onLangChange(() => this.relabelAll());

    // The log changes size when a call opens or closes beside it: whoever was reading the latest
    // lines keeps seeing them.
    this.log.addEventListener("scroll", () => (this.atBottom = isNearBottom(this.log)), { passive: true });
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        if (this.atBottom) scrollToBottom(this.log);
      }).observe(this.log);
    }
  }

  onSend(handler: (text: string, retry: boolean) => void): void {
    this.sendHandler = handler;
  }
  onRename(handler: (nickname: string) => void): void {
    this.renameHandler = handler;
  }
  onLeave(handler: () => void): void {
    this.leaveHandler = handler;
  }
  onCopy(handler: () => void): void {
    this.copyHandler = handler;
  }

  /** Opens the view for a room just joined, with its history. */
  enter(state: RoomState, history: readonly ChatMessage[]): void {
    this.state = state;
    this.log.replaceChildren();
    this.message.value = "";
    this.fitMessageBox();
    this.closeRename();
    this.resetCopyButton();
    this.renderHeader();
    this.renderPeople();
    for (const m of history) this.showMessage(m);
    this.system("sys.welcome", { room: state.name });
    this.section.hidden = false;
    scrollToBottom(this.log);
    if (window.matchMedia("(pointer: fine)").matches) this.message.focus();
  }

  /** Brings the view up to date after the room was joined again on a new connection. */
  rejoined(history: readonly ChatMessage[]): void {
    this.renderHeader();
    this.renderPeople();
    for (const m of history) this.showMessage(m);
    this.system("sys.rejoined");
  }

  hide(): void {
    this.section.hidden = true;
    this.state = null;
    this.closeRename();
  }

  /** Redraws the room name, the count and the own nickname. */
  renderHeader(): void {
    const state = this.state;
    if (!state) return;
    this.title.textContent = state.name;
    this.unlistedTag.hidden = !state.unlisted;
    this.count.textContent = String(state.count);
    this.selfNick.textContent = state.self.nickname;
  }

  /** The people whose entries in the list (with their media state) are on screen now. */
  peopleShown(): string[] {
    return [...this.peopleInView];
  }

  /** Redraws the participant list from the state. */
  renderPeople(): void {
    const state = this.state;
    if (!state) return;
    const labels = tellApart(state.participants);
    const items = state.participants.map((p) => {
      const self = state.isSelf(p.id);
      const item = el(
        "li",
        { className: self ? "person self" : "person", attrs: { "data-id": p.id, "data-in-call": String(!!p.call) } },
        el("span", { className: "avatar", attrs: { "aria-hidden": "true", "data-initial": initial(p.nickname) } }),
        el("span", { className: "nick", text: labels.get(p.id) ?? p.nickname }),
      );
      if (self) {
        const badge = el("span", { className: "you-badge", text: t("room.you") });
        item.append(badge);
        this.relabelers.set(badge, () => (badge.textContent = t("room.you")));
      }
      if (p.call) {
        setMediaData(item, p.call);
        item.append(callIcons(p.call));
      }
      return item;
    });
    this.people.replaceChildren(...items);
    if (this.peopleWatcher) {
      // New entries: the watcher says again which are on screen.
      this.peopleWatcher.disconnect();
      this.peopleInView.clear();
      for (const item of items) this.peopleWatcher.observe(item);
    }
    this.renderHeader();
  }

  /** Adds a system line (arrivals, departures, renames, connection news). */
  system(key: Key, params?: Params): void {
    const item = el("li", { className: "system" });
    const relabel = () => (item.textContent = t(key, isolated(params)));
    relabel();
    this.relabelers.set(item, relabel);
    this.append(item, false);
  }

  /** Shows a message from the server (history or live), unless it is already shown. */
  showMessage(message: ChatMessage): void {
    const state = this.state;
    if (!state || !state.remember(message)) return;
    const own = state.isOwn(message);
    const item = this.messageItem(state.label(message.sender.id, message.sender.nickname), message.text, own);
    item.classList.add(own ? "sent" : "received");
    this.setSent(item, message);
    this.append(item, own);
  }

  /** Shows an own message at once, as pending, and returns how to settle it. */
  pending(text: string): PendingMessage {
    const nickname = this.state?.self.nickname ?? "";
    const item = this.messageItem(nickname, text, true);
    item.classList.add("pending");
    const status = item.querySelector<HTMLElement>(".msg-status");
    const relabelPending = () => {
      if (status) status.textContent = t("msg.sending");
    };
    relabelPending();
    this.relabelers.set(item, relabelPending);
    this.append(item, true);

    return {
      sent: (message) => {
        this.state?.remember(message);
        item.classList.remove("pending");
        item.classList.add("sent");
        this.setSent(item, message);
      },
      failed: (error, retryable) => {
        item.classList.remove("pending");
        item.classList.add("failed");
        this.setFailed(item, text, error, retryable);
      },
    };
  }

  takeMessageText(): string {
    return this.message.value;
  }

  clearMessage(): void {
    this.message.value = "";
    this.fitMessageBox();
  }

  focusMessage(): void {
    this.message.focus();
  }

  openRename(): void {
    if (!this.state) return;
    this.renameInput.value = this.state.self.nickname;
    this.selfView.hidden = true;
    this.renameForm.hidden = false;
    this.setRenameBusy(false);
    this.renameInput.focus();
    this.renameInput.select();
  }

  closeRename(): void {
    const wasOpen = !this.renameForm.hidden;
    this.renameForm.hidden = true;
    this.selfView.hidden = false;
    this.setRenameBusy(false);
    if (wasOpen && !this.section.hidden) this.renameButton.focus();
  }

  setRenameBusy(busy: boolean): void {
    this.renameInput.disabled = busy;
    this.renameSave.disabled = busy;
  }

  /** Says "Copied" on the copy button for a moment. */
  flashCopied(): void {
    this.copyButton.textContent = t("room.copied");
    this.copyButton.classList.add("done");
    window.clearTimeout(this.copiedTimer);
    this.copiedTimer = window.setTimeout(() => this.resetCopyButton(), COPIED_MS);
  }

  private resetCopyButton(): void {
    window.clearTimeout(this.copiedTimer);
    this.copiedTimer = undefined;
    this.copyButton.textContent = t("room.copyLink");
    this.copyButton.classList.remove("done");
  }

  private messageItem(sender: string, text: string, own: boolean): HTMLLIElement {
    return el(
      "li",
      { className: own ? "msg own" : "msg" },
      el(
        "div",
        { className: "msg-meta" },
        el("span", { className: "msg-sender", text: sender }),
        el("time", { className: "msg-time" }),
      ),
      el("div", { className: "msg-text", text }),
      own ? el("div", { className: "msg-status" }) : null,
    );
  }

  private setSent(item: HTMLLIElement, message: ChatMessage): void {
    item.dataset.id = message.id;
    const sender = item.querySelector(".msg-sender");
    if (sender) sender.textContent = this.state?.label(message.sender.id, message.sender.nickname) ?? message.sender.nickname;
    const time = item.querySelector<HTMLTimeElement>(".msg-time");
    const status = item.querySelector<HTMLElement>(".msg-status");
    const relabel = () => {
      if (time) {
        time.dateTime = new Date(message.ts).toISOString();
        time.textContent = formatTime(message.ts, lang());
        time.title = formatDateTime(message.ts, lang());
      }
    };
    relabel();
    if (status) status.replaceChildren();
    this.relabelers.set(item, relabel);
  }

  private setFailed(item: HTMLLIElement, text: string, error: ProtocolError, retryable: boolean): void {
    const status = item.querySelector<HTMLElement>(".msg-status");
    if (!status) return;
    const reason = el("span", { className: "msg-error" });
    const action = el("button", { className: "link-button", attrs: { type: "button" } });
    action.addEventListener("click", () => {
      item.remove();
      if (retryable) {
        this.sendHandler(text, true);
      } else {
        this.message.value = text;
        this.fitMessageBox();
        this.message.focus();
      }
    });
    const relabel = () => {
      reason.textContent = t("msg.failed", { reason: errorText(error, lang()) });
      action.textContent = t(retryable ? "msg.retry" : "msg.edit");
    };
    relabel();
    status.replaceChildren(reason, " ", action);
    this.relabelers.set(item, relabel);
  }

  private append(item: HTMLLIElement, forceScroll: boolean): void {
    const stick = forceScroll || isNearBottom(this.log);
    this.log.append(item);
    while (this.log.children.length > MAX_LOG_ITEMS) this.log.firstElementChild?.remove();
    if (stick) scrollToBottom(this.log);
  }

  private relabelAll(): void {
    this.renderPeople();
    for (const node of Array.from(this.log.children)) this.relabelers.get(node)?.();
    this.people.querySelectorAll(".you-badge").forEach((node) => this.relabelers.get(node)?.());
    if (!this.copyButton.classList.contains("done")) this.copyButton.textContent = t("room.copyLink");
    else this.copyButton.textContent = t("room.copied");
  }

  /** Grows the message box with its text, up to a few lines. */
  private fitMessageBox(): void {
    this.message.style.height = "auto";
    const max = 160;
    this.message.style.height = `${Math.min(this.message.scrollHeight, max)}px`;
    this.message.style.overflowY = this.message.scrollHeight > max ? "auto" : "hidden";
  }
}
