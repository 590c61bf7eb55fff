// The error banner (#error): shows one error at a time in the current language, until it is
// dismissed or a later action succeeds.
import { byId } from "./dom";
import { errorText } from "./format";
import type { Key, Params } from "./i18n";
import { lang, onLangChange, t } from "./lang";
import type { ProtocolError } from "./protocol";

type Shown = { kind: "protocol"; error: ProtocolError } | { kind: "text"; key: Key; params?: Params };

let shown: Shown | null = null;
let box: HTMLElement;
let text: HTMLElement;

function render(): void {
  if (!shown) {
    box.hidden = true;
    text.textContent = "";
    return;
  }
  text.textContent = shown.kind === "protocol" ? errorText(shown.error, lang()) : t(shown.key, shown.params);
  box.hidden = false;
}

export function initBanner(): void {
  box = byId("error", HTMLElement);
  text = byId("error-text", HTMLElement);
  byId("error-close", HTMLButtonElement).addEventListener("click", clearError);
  onLangChange(render);
  render();
}

/** Shows an error from an acknowledgement (or a local check using the same codes). */
export function showError(error: ProtocolError): void {
  shown = { kind: "protocol", error };
  render();
}

export function showMessage(key: Key, params?: Params): void {
  shown = { kind: "text", key, params };
  render();
}

export function clearError(): void {
  shown = null;
  render();
}
