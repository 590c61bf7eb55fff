// Small DOM helpers. User text always goes in through textContent, never as HTML.

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

/** The element with this id, checked to be of the expected kind. */
export function byId<T extends HTMLElement>(id: string, kind: { new (): T; prototype: T }): T {
  const node = document.getElementById(id);
  if (!(node instanceof kind)) throw new Error(`missing #${id}`);
  return node;
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
