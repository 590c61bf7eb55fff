// The room view (#room-view): header with name, live count and the call's running time,
// participant list (with who is in the call and their microphone and camera), rename control,
// chat log with pending/waiting/sent/failed states and system lines, the message box (over the
// call, behind its Chat button, on a phone), and a new meeting's link to copy.
import { continuesGroup, linkParts, type LineOf } from "./chat";
import { byId, el, isNearBottom, replaceKeepingFocus, scrollToBottom, setMediaData } from "./dom";
import { FieldCheck } from "./forms";
import { errorText, formatDateTime, formatDuration, formatTime, initial } from "./format";
import type { Key, Params } from "./i18n";
import { lang, onLangChange, t } from "./lang";
import { hueOf, isolated, tellApart } from "./names";
import { callIcons } from "./people";
import type { ChatMessage, Participant, ProtocolError } from "./protocol";
import type { RoomState } from "./roomState";
import { LIMITS, messageProblem, nameProblem } from "./validate";

/** How many lines the chat log keeps; older ones are dropped from the page. */
const MAX_LOG_ITEMS = 500;
const COPIED_MS = 2500;

export type PendingMessage = {
  /** It waits for the connection to come back. */
  queued(): void;
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
  private readonly chatCard = byId("chat-card", HTMLElement);
  private readonly chatButton = byId("call-chat", HTMLButtonElement);
  private readonly chatUnread = byId("call-chat-unread", HTMLElement);
  private readonly callSection = byId("call", HTMLElement);
  /** A phone's width: during a call the chat is behind a button (#call-chat), over the call when open. */
  private readonly narrow = window.matchMedia("(max-width: 859px)");
  private chatOpen = false;
  /** Messages that came while the chat was out of sight. */
  private unread = 0;
  private readonly ready = byId("meeting-ready", HTMLElement);
  private readonly readyLink = byId("meeting-link", HTMLInputElement);
  private readonly readyCopy = byId("meeting-link-copy", HTMLButtonElement);
  /** The call's running time, in the header. */
  private readonly callTimer = byId("call-timer", HTMLElement);
  private readonly callTimerTime = byId("call-timer-time", HTMLTimeElement);
  private clockTimer: number | undefined;

  private readonly renameCheck = new FieldCheck(this.renameInput, (v) => nameProblem(v, LIMITS.nickname, true), {
    maxLength: LIMITS.nickname,
    after: this.renameForm,
  });
  // No maxlength on the message box: a long text pasted in would be cut without a word. It is
  // kept whole, and the box says how much too long it is.
  private readonly messageCheck = new FieldCheck(this.message, messageProblem, { after: this.composer });

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
  /** A person's badges of the meeting (host, hand, a host's actions), and what follows each drawing. */
  private badges: (state: RoomState, p: Participant) => HTMLElement[] = () => [];
  private peopleDrawn: () => void = () => {};

  constructor() {
    this.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendTyped();
    });
    this.message.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey) return;
      // Enter that confirms an input-method composition (Korean, Japanese…) must not send.
      if (event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      this.sendTyped();
    });
    this.message.addEventListener("input", () => this.fitMessageBox());

    this.renameButton.addEventListener("click", () => this.openRename());
    this.renameCancel.addEventListener("click", () => this.closeRename());
    this.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.renameCheck.refresh(true)) return this.renameInput.focus();
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
    this.readyCopy.addEventListener("click", () => this.copyHandler());
    this.chatButton.addEventListener("click", () => this.setChatOpen(!this.chatOpen));
    byId("chat-close", HTMLButtonElement).addEventListener("click", () => this.setChatOpen(false));
    this.chatCard.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.chatOpen) {
        event.preventDefault();
        this.setChatOpen(false);
      }
    });
    this.readyLink.addEventListener("focus", () => this.readyLink.select());
    byId("meeting-ready-close", HTMLButtonElement).addEventListener("click", () => {
      this.ready.hidden = true;
      this.message.focus();
    });

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
  withMeeting(badges: (state: RoomState, p: Participant) => HTMLElement[], drawn: () => void): void {
    this.badges = badges;
    this.peopleDrawn = drawn;
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
    window.clearInterval(this.clockTimer);
    this.clockTimer = window.setInterval(() => this.renderCallTime(), 1000);
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

  /** Offline, the count and the list may be out of date: they are shown greyed. */
  setOnline(online: boolean): void {
    this.section.dataset.offline = String(!online);
  }

  /** Opens the chat over the call (a phone's width), or closes it back to the call. */
  private setChatOpen(open: boolean): void {
    this.chatOpen = open;
    this.section.dataset.chatOpen = String(open);
    this.chatButton.setAttribute("aria-expanded", String(open));
    if (open) {
      this.setUnread(0);
      scrollToBottom(this.log);
      this.message.focus();
    } else if (!this.callSection.hidden) {
      this.chatButton.focus();
    }
  }

  /** Whether the chat is on screen: always beside the call on a wide screen, or outside a call. */
  private chatInSight(): boolean {
    return this.chatOpen || !this.narrow.matches || this.callSection.hidden;
  }

  private setUnread(count: number): void {
    this.unread = count;
    this.chatUnread.hidden = count === 0;
    this.chatUnread.replaceChildren(
      el("span", { text: count > 99 ? "99+" : String(count), attrs: { "aria-hidden": "true" } }),
      el("span", { className: "sr-only", text: t("call.unread", { count }) }),
    );
  }

  /** A new meeting: its link, offered to copy until closed. */
  showReady(url: string): void {
    this.readyLink.value = url;
    this.ready.hidden = false;
    this.readyCopy.focus();
  }

  hide(): void {
    window.clearInterval(this.clockTimer);
    this.clockTimer = undefined;
    this.ready.hidden = true;
    this.chatOpen = false;
    this.section.dataset.chatOpen = "false";
    this.chatButton.setAttribute("aria-expanded", "false");
    this.setUnread(0);
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
    this.renderCallTime();
  }

  /** The call's running time in the header, while one is going. */
  private renderCallTime(): void {
    const since = this.state?.callSince(Date.now()) ?? null;
    this.callTimer.hidden = since === null;
    if (since === null) return;
    const text = formatDuration(Date.now() - since);
    if (this.callTimerTime.textContent !== text) this.callTimerTime.textContent = text;
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
        avatarOf(p.id, p.nickname, "avatar"),
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
      item.append(...this.badges(state, p));
      return item;
    });
    replaceKeepingFocus(this.people, items);
    if (this.peopleWatcher) {
      // New entries: the watcher says again which are on screen.
      this.peopleWatcher.disconnect();
      this.peopleInView.clear();
      for (const item of items) this.peopleWatcher.observe(item);
    }
    this.renderHeader();
    this.peopleDrawn();
  }

  /** Adds a system line (arrivals, departures, renames, connection news). */
  system(key: Key, params?: Params): void {
    const item = el("li", { className: "system" });
    const relabel = () => (item.textContent = t(key, isolated(params)));
    relabel();
    this.relabelers.set(item, relabel);
    this.append(item, false);
  }

  /** Shows a message from the server (history, or `live`), unless it is already shown. */
  showMessage(message: ChatMessage, live = false): void {
    const state = this.state;
    if (!state || !state.remember(message)) return;
    const own = state.isOwn(message);
    if (live && !own && !this.chatInSight()) this.setUnread(this.unread + 1);
    const from = { id: message.sender.id, label: state.label(message.sender.id, message.sender.nickname) };
    const item = this.messageItem(from, message.text, own, message.ts);
    item.classList.add(own ? "sent" : "received");
    this.setSent(item, message);
    this.append(item, own);
  }

  /** Shows an own message at once, as pending, and returns how to settle it. */
  pending(text: string): PendingMessage {
    const self = this.state?.self;
    const item = this.messageItem({ id: self?.id ?? "", label: self?.nickname ?? "" }, text, true, Date.now());
    item.classList.add("pending");
    const status = item.querySelector<HTMLElement>(".msg-status");
    const relabelPending = () => {
      if (status) status.textContent = t("msg.sending");
    };
    relabelPending();
    this.relabelers.set(item, relabelPending);
    this.append(item, true);

    return {
      queued: () => {
        const relabelQueued = () => {
          if (status) status.textContent = t("msg.queued");
        };
        relabelQueued();
        this.relabelers.set(item, relabelQueued);
      },
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

  /** The message box's text, unless it says what is wrong with it (the text stays, to fix). */
  private sendTyped(): void {
    if (!this.messageCheck.refresh(true)) return;
    this.sendHandler(this.message.value, false);
  }

  takeMessageText(): string {
    return this.message.value;
  }

  clearMessage(): void {
    this.message.value = "";
    this.messageCheck.clear();
    this.fitMessageBox();
  }

  focusMessage(): void {
    this.message.focus();
  }

  openRename(): void {
    if (!this.state) return;
    this.renameInput.value = this.state.self.nickname;
    this.renameCheck.clear();
    this.selfView.hidden = true;
    this.renameForm.hidden = false;
    this.setRenameBusy(false);
    this.renameInput.focus();
    this.renameInput.select();
  }

  closeRename(): void {
    const wasOpen = !this.renameForm.hidden;
    this.renameForm.hidden = true;
    this.renameCheck.clear();
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
    for (const button of [this.copyButton, this.readyCopy]) button.textContent = t("room.copied");
    this.copyButton.classList.add("done");
    window.clearTimeout(this.copiedTimer);
    this.copiedTimer = window.setTimeout(() => this.resetCopyButton(), COPIED_MS);
  }

  private resetCopyButton(): void {
    window.clearTimeout(this.copiedTimer);
    this.copiedTimer = undefined;
    for (const button of [this.copyButton, this.readyCopy]) button.textContent = t("room.copyLink");
    this.copyButton.classList.remove("done");
  }

  /** A message's line: grouped with the line before it when the same person sent both. */
  private messageItem(from: { id: string; label: string }, text: string, own: boolean, ts: number): HTMLLIElement {
    const avatar = avatarOf(from.id, from.label, "avatar msg-avatar");
    const you = own ? el("span", { className: "msg-you", text: t("room.you") }) : null;
    const item = el(
      "li",
      { className: own ? "msg own" : "msg", attrs: { "data-sender": from.id, "data-ts": String(ts) } },
      el("div", { className: "msg-meta" }, avatar, el("span", { className: "msg-sender", text: from.label }), you, el("time", { className: "msg-time" })),
      el("div", { className: "msg-text" }, ...linkParts(text).map((part) => ("href" in part ? link(part.href, part.text) : part.text))),
      own ? el("div", { className: "msg-status" }) : null,
    );
    if (you) this.relabelers.set(you, () => (you.textContent = t("room.you")));
    return item;
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
    const line = lineOf(item);
    if (line && continuesGroup(lineOf(this.log.lastElementChild), line)) item.classList.add("continued");
    this.log.append(item);
    while (this.log.children.length > MAX_LOG_ITEMS) this.log.firstElementChild?.remove();
    if (stick) scrollToBottom(this.log);
  }

  private relabelAll(): void {
    this.renderPeople();
    for (const node of Array.from(this.log.children)) this.relabelers.get(node)?.();
    this.people.querySelectorAll(".you-badge").forEach((node) => this.relabelers.get(node)?.());
    this.log.querySelectorAll(".msg-you").forEach((node) => this.relabelers.get(node)?.());
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

/** A person's avatar: the first letter of their name, on their colour. */
function avatarOf(id: string, name: string, className: string): HTMLElement {
  const avatar = el("span", { className, attrs: { "aria-hidden": "true", "data-initial": initial(name) } });
  avatar.style.setProperty("--hue", String(hueOf(id)));
  return avatar;
}

/** A web address in a message: opened in a new tab, which gets no hold on this page. */
function link(href: string, text: string): HTMLAnchorElement {
  return el("a", { text, attrs: { href, target: "_blank", rel: "noopener noreferrer" } });
}

/** A message line's sender and time, for grouping; null for a system line. */
function lineOf(item: Element | null): LineOf | null {
  if (!(item instanceof HTMLElement) || !item.classList.contains("msg")) return null;
  const { sender, ts } = item.dataset;
  return sender === undefined || ts === undefined ? null : { sender, ts: Number(ts) };
}
