// The page's current language: chosen from storage or the browser, switched with #lang-switch,
// applied to static markup through data-i18n attributes, and announced to the views.
import { isKey, isLang, pickLanguage, translate, type Key, type Lang, type Params } from "./i18n";
import { load, save } from "./storage";

let current: Lang = "en";
const listeners: Array<(lang: Lang) => void> = [];

export function lang(): Lang {
  return current;
}

/** Translates in the current language. */
export function t(key: Key, params?: Params): string {
  return translate(current, key, params);
}

export function onLangChange(listener: (lang: Lang) => void): void {
  listeners.push(listener);
}

/**
 * Fills static markup: `data-i18n` sets the text, `data-i18n-placeholder`, `data-i18n-aria-label`
 * and `data-i18n-title` set those attributes.
 */
export function applyStatic(root: ParentNode = document): void {
  const pairs: Array<[string, (node: HTMLElement, text: string) => void]> = [
    ["data-i18n", (node, text) => (node.textContent = text)],
    ["data-i18n-placeholder", (node, text) => node.setAttribute("placeholder", text)],
    ["data-i18n-aria-label", (node, text) => node.setAttribute("aria-label", text)],
    ["data-i18n-title", (node, text) => node.setAttribute("title", text)],
  ];
  for (const [attr, apply] of pairs) {
    root.querySelectorAll<HTMLElement>(`[${attr}]`).forEach((node) => {
      const key = node.getAttribute(attr) ?? "";
      if (isKey(key)) apply(node, t(key));
    });
  }
}

export function setLang(next: Lang, remember = true): void {
  current = next;
  if (remember) save("lang", next);
  document.documentElement.lang = next;
  applyStatic();
  for (const listener of listeners) listener(next);
}

/** Picks the starting language and wires the switch. */
export function initLang(select: HTMLSelectElement): void {
  current = pickLanguage(load("lang"), navigator.language);
  document.documentElement.lang = current;
  select.value = current;
  applyStatic();
  select.addEventListener("change", () => {
    if (isLang(select.value)) setLang(select.value);
  });
}
