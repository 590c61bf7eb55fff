// The call's keyboard shortcuts, as Google Meet has them: Ctrl+D (⌘+D on a Mac) turns the
// microphone on or off, Ctrl+E (⌘+E) the camera, `?` lists them, and holding Space while muted
// talks (push to talk). Keys are read by their place on the keyboard (`code`), so that they work
// with a Korean layout or input method as with an English one.

export type Shortcut = "mic" | "camera" | "help";

/** What a key event says; a `KeyboardEvent` is one. */
export type KeyLike = {
  key: string;
  code: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
  repeat?: boolean;
  target?: EventTarget | null;
};

const LETTERS: Record<string, Shortcut> = { KeyD: "mic", KeyE: "camera" };

/** Whether this is a Mac, whose shortcuts use ⌘ where others use Ctrl. */
export function isMac(platform: string = navigator.platform): boolean {
  return /^(Mac|iPhone|iPad|iPod)/i.test(platform);
}

/** The shortcut a key press asks for, if any. */
export function shortcutOf(event: KeyLike, mac: boolean): Shortcut | null {
  const command = mac ? event.metaKey && !event.ctrlKey : event.ctrlKey && !event.metaKey;
  if (command && !event.altKey && !event.shiftKey) return LETTERS[event.code] ?? null;
  if (event.key === "?" && !event.ctrlKey && !event.metaKey && !event.altKey && !typingIn(event.target)) return "help";
  return null;
}

/** Whether a key event is Space for push to talk: no modifier, and not where Space does something
 * of its own (typing, or pressing a button, a link or a list). */
export function isTalkKey(event: KeyLike): boolean {
  if (event.code !== "Space" || event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return false;
  return !typingIn(event.target) && !pressable(event.target);
}

/** How a shortcut's keys are written on this platform. */
export function keysOf(shortcut: "mic" | "camera", mac: boolean): string {
  const letter = shortcut === "mic" ? "D" : "E";
  return mac ? `⌘+${letter}` : `Ctrl+${letter}`;
}

function typingIn(target: EventTarget | null | undefined): boolean {
  if (!isElement(target)) return false;
  return target.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])") !== null;
}

function pressable(target: EventTarget | null | undefined): boolean {
  if (!isElement(target)) return false;
  return target.closest("button, a[href], summary, [role='button'], [role='link'], [role='menuitem'], [role='option'], [role='checkbox'], [role='switch'], [role='tab']") !== null;
}

function isElement(target: EventTarget | null | undefined): target is Element {
  return typeof Element !== "undefined" && target instanceof Element;
}

export type ShortcutHandlers = {
  /** Whether the shortcuts apply now (a call or its preview is open). */
  active(): boolean;
  toggle(what: "mic" | "camera"): void;
  help(): void;
  /** Whether the microphone is off now, and may be held on by Space. */
  canTalk(): boolean;
  /** Space held (true) or let go (false) while it talks. */
  talk(on: boolean): void;
};

/** Listens on `doc` for the shortcuts; returns how to stop. */
export function listenForShortcuts(doc: Document, mac: boolean, handlers: ShortcutHandlers): () => void {
  let talking = false;
  const release = () => {
    if (!talking) return;
    talking = false;
    handlers.talk(false);
  };
  const down = (event: KeyboardEvent) => {
    if (!handlers.active()) return release();
    const shortcut = shortcutOf(event, mac);
    if (shortcut) {
      event.preventDefault();
      if (event.repeat) return;
      if (shortcut === "help") handlers.help();
      else handlers.toggle(shortcut);
      return;
    }
    if (isTalkKey(event)) {
      // Space would scroll the page: held, it talks instead.
      if (talking || handlers.canTalk()) event.preventDefault();
      if (talking || event.repeat || !handlers.canTalk()) return;
      talking = true;
      handlers.talk(true);
    }
  };
  const up = (event: KeyboardEvent) => {
    if (event.code === "Space") release();
  };
  const view = doc.defaultView;
  doc.addEventListener("keydown", down);
  doc.addEventListener("keyup", up);
  // A key let go in another window never comes back as keyup here.
  view?.addEventListener("blur", release);
  return () => {
    release();
    doc.removeEventListener("keydown", down);
    doc.removeEventListener("keyup", up);
    view?.removeEventListener("blur", release);
  };
}
