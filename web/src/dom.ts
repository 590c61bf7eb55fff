// Small DOM helpers. User text always goes in through textContent, never as HTML.
import type { Media } from "./protocol";

type Child = Node | string | null | undefined | false;

export type ElOptions = {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
};

/** Creates an element; strings among the children become text nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: ElOptions = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  if (options.attrs) {
    for (const [name, value] of Object.entries(options.attrs)) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/**
 * Replaces `container`'s children. When the focus was inside it, it stays on the new element with
 * the same value of `attr` (or, lacking one, on what `fallback` picks): a list redrawn for an
 * unrelated change does not throw a keyboard user out of it.
 */
export function replaceKeepingFocus(
  container: HTMLElement,
  children: Node[],
  attr = "data-focus-key",
  fallback?: () => HTMLElement | null,
): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.getAttribute(attr) : null;
  container.replaceChildren(...children);
  if (key === null) return;
  (container.querySelector<HTMLElement>(`[${attr}="${CSS.escape(key)}"]`) ?? fallback?.())?.focus();
}

/** The element with this id, checked to be of the expected kind. */
export function byId<T extends HTMLElement>(id: string, kind: { new (): T; prototype: T }): T {
  const node = document.getElementById(id);
  if (!(node instanceof kind)) throw new Error(`missing #${id}`);
  return node;
}

/** Marks a person's element with their call media: data-audio, data-video, data-screen, "on" or "off". */
export function setMediaData(node: HTMLElement, media: Media | null | undefined): void {
  node.dataset.audio = media?.audio ? "on" : "off";
  node.dataset.video = media?.video ? "on" : "off";
  node.dataset.screen = media?.screen ? "on" : "off";
}

/**
 * What a video element should play to show `track`: the stream it already plays if that shows
 * the track (a new one would restart the picture), else a new one holding just the track.
 */
export function streamShowing(current: MediaProvider | null, track: MediaStreamTrack | null): MediaStream | null {
  if (!track) return null;
  if (current instanceof MediaStream && current.getVideoTracks()[0] === track) return current;
  return new MediaStream([track]);
}

/**
 * Makes `parent`'s children one element per value, in order: an element whose `keyAttr` is the
 * value's key is kept and updated (so focus and a half-done click survive a redraw), the others
 * are made, and those whose value is gone are removed. `parent` holds only such elements.
 */
export function syncKeyed<T, N extends HTMLElement>(
  parent: HTMLElement,
  values: readonly T[],
  keyAttr: string,
  keyOf: (value: T) => string,
  make: (value: T) => N,
  update: (node: N, value: T) => void,
): void {
  const existing = new Map<string, N>();
  for (const child of Array.from(parent.children)) {
    const key = child.getAttribute(keyAttr);
    if (key !== null) existing.set(key, child as N);
  }
  const nodes = values.map((value) => {
    const key = keyOf(value);
    const node = existing.get(key) ?? make(value);
    existing.delete(key);
    node.setAttribute(keyAttr, key);
    update(node, value);
    return node;
  });
  for (const stale of existing.values()) stale.remove();
  // Moves only the elements out of place.
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] ?? null);
  });
}

/** Shows or hides through the `hidden` attribute. */
export function setHidden(node: HTMLElement, hidden: boolean): void {
  node.hidden = hidden;
}

/** Whether the list is scrolled (nearly) to its end. */
export function isNearBottom(node: HTMLElement, slack = 48): boolean {
  return node.scrollHeight - node.scrollTop - node.clientHeight <= slack;
}

export function scrollToBottom(node: HTMLElement): void {
  node.scrollTop = node.scrollHeight;
}
