// The Socket.IO connection to the server, as a Noom-flavoured client: requests that resolve to
// a Result (never throw), checked pushes, and the connection state for the indicator.
import { io, type Socket } from "socket.io-client";
import {
  Events,
  PROTOCOL,
  isServerDisconnected,
  parseAck,
  type ProtocolError,
  type Result,
} from "./protocol";

export type ConnState = "connecting" | "connected" | "disconnected" | "reconnecting" | "restarting";

export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The first try after a cut the server did not announce comes after about this long (half to
 * one and a half times it, doubling with each failed try): such a cut is a network blip or a
 * node gone from behind a load balancer, and another node is ready at once; every page of a
 * dead node spreads its tries over a quarter of a second. After a restart notice, the server
 * needs a while to come back: the tries start at the usual second.
 */
export const CUT_RETRY_MS = 250;
export const RESTART_RETRY_MS = 1_000;

export type RequestOptions<T = unknown> = {
  /**
   * Fail at once when the socket is not connected, instead of letting socket.io-client buffer
   * the event until it reconnects. Used for everything that depends on being in a room, since a
   * new connection starts outside every room.
   */
  needConnected?: boolean;
  timeoutMs?: number;
  /**
   * Called once with the result as soon as it is known: for an acknowledgement, inside it, before
   * any packet that came after it is handled. Long-polling hands over several packets at once and
   * a promise's continuation runs only after all of them, so state that the pushes behind an
   * answer build on (a join answer's room) is set up here, not after `await`.
   */
  onAnswer?: (result: Result<T>) => void;
};

export class Connection {
  private readonly socket: Socket;
  private stateListeners: Array<(state: ConnState) => void> = [];
  private connectListeners: Array<(again: boolean) => void> = [];
  private hasConnected = false;
  /** The server said it is restarting: until connected again, that is the state to show. */
  private restarting = false;
  /** The server said it is letting this page go for good (server:disconnected): no reconnecting. */
  private stayDisconnected = false;

  constructor() {
    // The same token on every reconnection of this page lets the server drop the connection a
    // network cut left behind at once, instead of showing us twice until its ping timeout.
    // WebSocket first, long-polling only where it cannot connect: no polling-to-WebSocket upgrade,
    // whose brief window can leave a page unaware that the server went away.
    this.socket = io({
      auth: { protocol: PROTOCOL, resume: resumeToken() },
      reconnectionDelay: RESTART_RETRY_MS,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
    });

    this.socket.on("connect", () => {
      const again = this.hasConnected;
      this.hasConnected = true;
      this.restarting = false;
      this.emitState("connected");
      for (const listener of this.connectListeners) listener(again);
    });
    this.socket.on(Events.restarting, () => {
      this.restarting = true;
      this.emitState("restarting");
    });
    this.socket.on(Events.disconnected, (payload: unknown) => {
      if (!isServerDisconnected(payload)) return;
      this.stayDisconnected = true;
      this.restarting = false;
    });
    this.socket.on("disconnect", (reason) => {
      // Read by socket.io-client right after this event, for its first try.
      this.socket.io.reconnectionDelay(this.restarting ? RESTART_RETRY_MS : CUT_RETRY_MS);
      this.emitState("disconnected");
      if (this.stayDisconnected) {
        // Should the transport have closed before the server's own disconnect arrived,
        // socket.io-client would reconnect by itself: this stops it too.
        this.socket.disconnect();
        return;
      }
      // The server closed this socket on purpose (e.g. a packet over its limit): socket.io-client
      // does not reconnect by itself then, but a fresh connection is what the person wants.
      if (reason === "io server disconnect") this.socket.connect();
    });
    this.socket.on("connect_error", () => {
      this.emitState(this.socket.active ? "reconnecting" : "disconnected");
    });
    this.socket.io.on("reconnect_attempt", () => this.emitState("reconnecting"));
    this.socket.io.on("reconnect_failed", () => this.emitState("disconnected"));
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Whether the server let this page go for good; it stays disconnected until reloaded. */
  get dismissed(): boolean {
    return this.stayDisconnected;
  }

  onState(listener: (state: ConnState) => void): void {
    this.stateListeners.push(listener);
  }

  /** Called on every successful connection; `again` is true for reconnections. */
  onConnect(listener: (again: boolean) => void): void {
    this.connectListeners.push(listener);
  }

  /** Listens to a push, passing on only payloads that pass the check. */
  on<T>(event: string, check: (v: unknown) => v is T, handler: (payload: T) => void): void {
    this.socket.on(event, (payload: unknown) => {
      if (check(payload)) handler(payload);
      else console.warn(`ignored a malformed "${event}" push`, payload);
    });
  }

  /**
   * Sends an event without waiting for an answer, and only while connected: socket.io-client
   * would otherwise hold it and send it on the next connection, where it no longer means anything.
   */
  emit(event: string, payload: object): boolean {
    if (!this.socket.connected) return false;
    this.socket.emit(event, payload);
    return true;
  }

  /** Sends an event with an acknowledgement and reads the answer. */
  request<T>(
    event: string,
    payload: object,
    check: (v: unknown) => v is T,
    options: RequestOptions<T> = {},
  ): Promise<Result<T>> {
    if (options.needConnected && !this.socket.connected) {
      const result = failure("disconnected", "not connected");
      options.onAnswer?.(result);
      return Promise.resolve(result);
    }
    const timeout = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    return new Promise((resolve) => {
      this.socket.timeout(timeout).emit(event, payload, (err: Error | null, ack: unknown) => {
        const result: Result<T> = err
          ? failure(this.socket.connected ? "timeout" : "disconnected", err.message)
          : parseAck(ack, check);
        try {
          options.onAnswer?.(result);
        } finally {
          resolve(result);
        }
      });
    });
  }

  private emitState(state: ConnState): void {
    if (this.stayDisconnected) state = "disconnected";
    else if (this.restarting && state !== "connected") state = "restarting";
    for (const listener of this.stateListeners) listener(state);
  }
}

function failure(code: string, message: string): { ok: false; error: ProtocolError } {
  return { ok: false, error: { code, message } };
}

/** 128 random bits as hex; `crypto.getRandomValues` works on plain-HTTP LAN pages too. */
function resumeToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
