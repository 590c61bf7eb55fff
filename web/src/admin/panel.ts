// The admin page's controller: signing in and out with the token (kept for this tab only), the
// live state (a long-poll loop that retries with a growing pause when the server cannot be
// reached), and the Close room and Disconnect actions, each confirmed first.
import { t } from "../lang";
import type { ProtocolError } from "../protocol";
import { loadSession, saveSession } from "../storage";
import { AdminApi, POLL_PAUSE_MS, retryDelay, type AdminState } from "./api";
import { closedText, failedText, nameOf, signInErrorText, type Text } from "./summary";
import { AdminView } from "./view";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}

export class AdminPanel {
  private readonly view = new AdminView({
    signIn: (token) => void this.signIn(token, true),
    signOut: () => this.signOut(null),
    closeRoom: (room) => void this.closeRoom(room),
    disconnect: (id) => void this.disconnect(id),
  });
  private api: AdminApi | null = null;
  private state: AdminState | null = null;
  /** Bumped by every sign-in and sign-out, so that the loop of an earlier one stops. */
  private session = 0;
  /** Cancels the state request in flight (it may be waiting up to 25 s). */
  private pending: AbortController | null = null;

  start(): void {
    const token = loadSession("adminToken");
    if (token) void this.signIn(token, false);
    else this.view.showLogin(null);
  }

  /** `typed`: from the form (a failure is said there), else the token kept from earlier. */
  private async signIn(token: string, typed: boolean): Promise<void> {
    if (token === "") return this.view.showLogin({ key: "admin.tokenMissing" });
    const session = ++this.session;
    this.pending?.abort();
    this.view.setSigningIn(true);
    const api = new AdminApi(token);
    const first = await api.state(null);
    if (session !== this.session) return;
    this.view.setSigningIn(false);
    // A kept token the server cannot check just now is tried again by the loop.
    if (!first.ok && (typed || first.error.code === "unauthorized")) {
      if (first.error.code === "unauthorized") saveSession("adminToken", null);
      return this.view.showLogin(signInErrorText(first.error));
    }
    saveSession("adminToken", token);
    this.api = api;
    this.view.showMain();
    if (first.ok) this.show(first.value);
    void this.follow(session, api, first.ok ? 0 : 1);
  }

  private signOut(reason: Text | null): void {
    this.session++;
    this.pending?.abort();
    this.pending = null;
    this.api = null;
    this.state = null;
    saveSession("adminToken", null);
    this.view.showLogin(reason);
  }

  /** Asks for each new state as soon as there is one, until signed out. */
  private async follow(session: number, api: AdminApi, failures: number): Promise<void> {
    if (failures > 0) {
      this.view.setLive(false);
      await sleep(retryDelay(failures));
    }
    while (session === this.session) {
      const pending = new AbortController();
      this.pending = pending;
      const res = await api.state(this.state?.version ?? null, pending.signal);
      if (session !== this.session) return;
      if (res.ok) {
        failures = 0;
        this.show(res.value);
        await sleep(POLL_PAUSE_MS);
        continue;
      }
      // The server restarted with another token, or it was changed: the form asks again.
      if (res.error.code === "unauthorized") return this.signOut({ key: "admin.wrongToken" });
      failures++;
      this.view.setLive(false);
      await sleep(retryDelay(failures));
    }
  }

  private show(state: AdminState): void {
    this.state = state;
    this.view.setLive(true);
    this.view.render(state);
  }

  private async closeRoom(room: string): Promise<void> {
    const api = this.api;
    if (!api || !window.confirm(t("admin.confirmClose", { room }))) return;
    const res = await api.closeRoom(room);
    if (api !== this.api) return;
    if (res.ok) this.view.setStatus({ text: closedText(res.value), kind: "ok" });
    else this.failed(res.error);
  }

  private async disconnect(id: string): Promise<void> {
    const api = this.api;
    const name = nameOf(this.state, id);
    if (!api || !window.confirm(t("admin.confirmDisconnect", { name }))) return;
    const res = await api.disconnect(id);
    if (api !== this.api) return;
    if (res.ok) this.view.setStatus({ text: { key: "admin.disconnected", params: { name } }, kind: "ok" });
    else this.failed(res.error);
  }

  private failed(error: ProtocolError): void {
    if (error.code === "unauthorized") return this.signOut({ key: "admin.wrongToken" });
    this.view.setStatus({ text: failedText(error), kind: "error" });
  }
}
