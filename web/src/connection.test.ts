import { beforeEach, describe, expect, it, vi } from "vitest";
import { isJoinAck, type Result } from "./protocol";

type Ack = (err: Error | null, answer?: unknown) => void;

// A stand-in for the socket.io-client socket: it keeps each request's acknowledgement callback
// so a test can answer it.
const fake = vi.hoisted(() => ({
  connected: true,
  active: true,
  acks: [] as Array<(err: Error | null, answer?: unknown) => void>,
  handlers: new Map<string, (...args: unknown[]) => void>(),
  connects: 0,
  disconnects: 0,
  retryDelays: [] as number[],
}));

vi.mock("socket.io-client", () => ({
  io: () => ({
    get connected() {
      return fake.connected;
    },
    get active() {
      return fake.active;
    },
    on: (event: string, handler: (...args: unknown[]) => void) => fake.handlers.set(event, handler),
    connect: () => {
      fake.connects++;
    },
    disconnect: () => {
      fake.disconnects++;
    },
    io: {
      on: (event: string, handler: (...args: unknown[]) => void) => fake.handlers.set(`io:${event}`, handler),
      reconnectionDelay: (ms: number) => fake.retryDelays.push(ms),
    },
    timeout: () => ({
      emit: (_event: string, _payload: unknown, ack: Ack) => fake.acks.push(ack),
    }),
  }),
}));

const { Connection, CUT_RETRY_MS, RESTART_RETRY_MS } = await import("./connection");

const joinAck = {
  room: { name: "r", unlisted: false, count: 1 },
  self: { id: "me", nickname: "Mina" },
  participants: [{ id: "me", nickname: "Mina" }],
  history: [],
};

beforeEach(() => {
  fake.connected = true;
  fake.acks = [];
  fake.connects = 0;
  fake.disconnects = 0;
  fake.retryDelays = [];
});

const fire = (event: string, ...args: unknown[]) => fake.handlers.get(event)?.(...args);

describe("Connection.request", () => {
  it("hands the answer over inside the acknowledgement, before the packets behind it", async () => {
    const conn = new Connection();
    const order: string[] = [];
    const done = conn.request("room:join", { room: "r" }, isJoinAck, {
      onAnswer: (res) => order.push(`answer ${res.ok}`),
    });
    void done.then(() => order.push("promise"));
    // Long-polling: the acknowledgement and a push behind it are handled in one go.
    fake.acks[0]?.(null, joinAck);
    order.push("push");
    const res = await done;
    expect(res.ok).toBe(true);
    expect(order).toEqual(["answer true", "push", "promise"]);
  });

  it("hands over failures too: lost connection, server error, not connected", async () => {
    const conn = new Connection();
    const seen: Array<Result<unknown>> = [];
    const onAnswer = (res: Result<unknown>) => seen.push(res);

    const lost = conn.request("room:join", {}, isJoinAck, { onAnswer });
    fake.connected = false;
    fake.acks[0]?.(new Error("socket has been disconnected"));
    expect(await lost).toEqual({ ok: false, error: { code: "disconnected", message: "socket has been disconnected" } });

    fake.connected = true;
    const refused = conn.request("room:join", {}, isJoinAck, { onAnswer });
    fake.acks[1]?.(null, { error: { code: "invalid_room", message: "bad name" } });
    expect((await refused).ok).toBe(false);

    fake.connected = false;
    const offline = await conn.request("chat:send", {}, isJoinAck, { onAnswer, needConnected: true });
    expect(offline).toEqual({ ok: false, error: { code: "disconnected", message: "not connected" } });

    expect(seen.map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["disconnected", "invalid_room", "disconnected"]);
  });
});

describe("Connection states", () => {
  it("says the server is restarting from its notice until connected again, whatever happens meanwhile", () => {
    const conn = new Connection();
    const states: string[] = [];
    conn.onState((state) => states.push(state));
    fire("connect");
    fire("disconnect", "transport close");
    fire("io:reconnect_attempt");
    fire("connect");
    fire("server:restarting");
    fire("disconnect", "io server disconnect");
    fire("connect_error");
    fire("io:reconnect_attempt");
    fire("connect");
    fire("disconnect", "transport close");
    expect(states).toEqual([
      "connected",
      "disconnected",
      "reconnecting",
      "connected",
      "restarting",
      "restarting",
      "restarting",
      "restarting",
      "connected",
      "disconnected",
    ]);
  });

  it("tries again soon after a cut, and at the usual pace after a restart notice", () => {
    new Connection();
    fire("connect");
    fire("disconnect", "transport close");
    fire("connect");
    fire("server:restarting");
    fire("disconnect", "transport close");
    fire("connect");
    fire("disconnect", "ping timeout");
    expect(fake.retryDelays).toEqual([CUT_RETRY_MS, RESTART_RETRY_MS, CUT_RETRY_MS]);
    expect(CUT_RETRY_MS).toBeLessThan(RESTART_RETRY_MS);
  });

  it("connects again when the server closes the socket without saying more", () => {
    const conn = new Connection();
    fire("connect");
    fire("disconnect", "io server disconnect");
    expect(fake.connects).toBe(1);
    expect(conn.dismissed).toBe(false);
  });

  it("stays disconnected after the server said it lets this page go", () => {
    const conn = new Connection();
    const states: string[] = [];
    conn.onState((state) => states.push(state));
    fire("connect");
    fire("server:disconnected", { reason: "admin" });
    expect(conn.dismissed).toBe(true);
    fire("disconnect", "io server disconnect");
    expect(fake.connects).toBe(0);
    // Whatever socket.io-client would still try is stopped, and never shown as reconnecting.
    expect(fake.disconnects).toBe(1);
    fire("io:reconnect_attempt");
    fire("connect_error");
    expect(states).toEqual(["connected", "disconnected", "disconnected", "disconnected"]);
  });

  it("also stays disconnected when the transport closed first, or after a restart notice", () => {
    const conn = new Connection();
    const states: string[] = [];
    conn.onState((state) => states.push(state));
    fire("connect");
    fire("server:restarting");
    fire("server:disconnected", { reason: "admin" });
    fire("disconnect", "transport close");
    expect(fake.connects).toBe(0);
    expect(fake.disconnects).toBe(1);
    expect(states).toEqual(["connected", "restarting", "disconnected"]);
  });

  it("ignores a malformed server:disconnected", () => {
    const conn = new Connection();
    fire("connect");
    fire("server:disconnected", { reason: 5 });
    fire("server:disconnected", null);
    expect(conn.dismissed).toBe(false);
    fire("disconnect", "io server disconnect");
    expect(fake.connects).toBe(1);
  });
});
