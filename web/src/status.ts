// The connection indicator (#conn-status): a coloured dot and a word, with data-state set to
// "connected", "disconnected" or "reconnecting" (also while the server restarts, which it says).
import { byId } from "./dom";
import type { Key } from "./i18n";
import { onLangChange, t } from "./lang";
import type { ConnState } from "./connection";

const LABELS: Record<ConnState, Key> = {
  connecting: "status.connecting",
  connected: "status.connected",
  disconnected: "status.disconnected",
  reconnecting: "status.reconnecting",
  restarting: "status.restarting",
};

let node: HTMLElement;
let label: HTMLElement;
let state: ConnState = "connecting";

function render(): void {
  // Before the first connection the page counts as disconnected, though it says "Connecting"; a
  // server restarting is a reconnection whose reason is known.
  node.dataset.state = state === "connecting" ? "disconnected" : state === "restarting" ? "reconnecting" : state;
  label.textContent = t(LABELS[state]);
}

export function initStatus(): void {
  node = byId("conn-status", HTMLElement);
  label = byId("conn-label", HTMLElement);
  onLangChange(render);
  render();
}

export function setStatus(next: ConnState): void {
  state = next;
  render();
}
