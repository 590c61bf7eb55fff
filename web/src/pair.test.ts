import { describe, expect, it, vi } from "vitest";
import { CLOSE_AFTER_MS, PairTransport, QUIET_FOR_MS, SWITCH_WITHIN_MS, WATCH_EVERY_MS, type CountingTransport, type ServerTransport } from "./pair";
import type { Signal } from "./protocol";
import { NOTHING_RECEIVED, type Received } from "./peer";
import { QUALITY_EVERY_MS, type TransportEvents } from "./transport";
import { useFakeWindowTimers } from "./testing";

type Fake<T> = T & { events: TransportEvents; received: Map<string, Received>; calls: string[]; held?: boolean; closed: boolean };

function fakePath(events: TransportEvents): Fake<CountingTransport> {
  const fake: Fake<CountingTransport> = {
    events,
    received: new Map(),
    calls: [],
    closed: false,
    joined: (_config, others) => void fake.calls.push(`joined ${others.join(",")}`),
    present: (id) => void fake.calls.push(`present ${id}`),
    gone: (id) => void fake.calls.push(`gone ${id}`),
    signal: (sig) => void fake.calls.push(`signal ${sig.from}`),
    publish: () => {},
    renewIce: () => {},
    audioLevel: () => 0,
    remotes: () => [],
    close: () => void (fake.closed = true),
    mediaFrom: (id) => Promise.resolve(fake.received.get(id) ?? NOTHING_RECEIVED),
  };
  return fake;
}

const stream = (name: string) => ({ id: name }) as unknown as MediaStream;

function pair(self = "a", allowed = () => true) {
  const shown = new Map<string, MediaStream>();
  const labels = new Map<string, string>();
  const qualities: string[] = [];
  let server!: Fake<ServerTransport>;
  const directs: Fake<CountingTransport>[] = [];
  const transport = new PairTransport({
    server: (events) => {
      const path = fakePath(events) as Fake<ServerTransport>;
      path.held = false;
      path.hold = (held) => void (path.held = held);
      server = path;
      return path;
    },
    direct: (events) => {
      const path = fakePath(events);
      directs.push(path);
      return path;
    },
    selfId: () => self,
    directAllowed: allowed,
    events: {
      arriving: () => {},
      stream: (id, s) => void shown.set(id, s),
      connection: (id, label) => void labels.set(id, label),
      quality: (id, q) => void qualities.push(`${id} ${q}`),
    },
  });
  return { transport, server: () => server, directs, shown, labels, qualities };
}

/** Media from `id` arriving on `paths` for a while: video and sound, or sound only. */
async function flows(paths: Fake<CountingTransport> | Fake<CountingTransport>[], id: string, ms = WATCH_EVERY_MS * 4, video = true) {
  for (let t = 0; t < ms; t += WATCH_EVERY_MS) {
    for (const path of [paths].flat()) {
      const was = path.received.get(id) ?? NOTHING_RECEIVED;
      path.received.set(id, { frames: was.frames + (video ? 7 : 0), audio: was.audio + 1000, packets: was.packets + 12, lost: was.lost });
    }
    await vi.advanceTimersByTimeAsync(WATCH_EVERY_MS);
  }
}

/** `path` to "b" comes up, with the stream `name`, and b's media flows on it. */
async function connects(path: Fake<CountingTransport>, name: string) {
  path.events.stream("b", stream(name));
  path.events.connection("b", "connected");
  await flows(path, "b");
}

/** Two people, "a" (us) and "b", talking directly. */
async function talkingDirectly(self = "a") {
  const p = pair(self);
  p.transport.joined({}, ["b"]);
  p.server().events.stream("b", stream("server b"));
  p.server().events.connection("b", "connected");
  const direct = p.directs[0]!;
  await connects(direct, "direct b");
  return { ...p, direct };
}

describe("PairTransport", () => {
  useFakeWindowTimers();

  it("with one other person, shows the server's media until the direct path's arrives, then holds the server", async () => {
    const { transport, server, directs, shown } = pair("a");
    transport.joined({}, ["b"]);
    expect(directs).toHaveLength(1);
    // "a" sorts first: it offers.
    expect(directs[0]!.calls).toEqual(["joined b"]);
    server().events.stream("b", stream("server b"));
    directs[0]!.events.stream("b", stream("direct b"));
    expect(shown.get("b")?.id).toBe("server b");
    // Connected, but nothing arrives yet: still the server.
    directs[0]!.events.connection("b", "connected");
    await vi.advanceTimersByTimeAsync(WATCH_EVERY_MS * 4);
    expect(shown.get("b")?.id).toBe("server b");
    expect(server().held).toBe(false);
    await flows(directs[0]!, "b");
    expect(shown.get("b")?.id).toBe("direct b");
    expect(server().held).toBe(true);
  });

  it("someone who sends nothing (no camera, no microphone): the direct path is taken once it has been up a while", async () => {
    const { transport, server, directs, shown } = pair("a");
    transport.joined({}, ["b"]);
    server().events.stream("b", stream("server b"));
    directs[0]!.events.stream("b", stream("direct b"));
    directs[0]!.events.connection("b", "connected");
    await vi.advanceTimersByTimeAsync(QUIET_FOR_MS + WATCH_EVERY_MS * 2);
    expect(shown.get("b")?.id).toBe("direct b");
    expect(server().held).toBe(true);
  });

  it("the one whose id sorts second waits for the other's offer, and passes it on", () => {
    const { transport, directs } = pair("z");
    transport.joined({}, ["b"]);
    expect(directs[0]!.calls).toEqual(["joined ", "present b"]);
    transport.signal({ room: "r", from: "b", description: { type: "offer", sdp: "v=0" } } as Signal);
    expect(directs[0]!.calls.at(-1)).toBe("signal b");
  });

  it("an offer from the only other person before we saw them join starts the direct path", () => {
    const { transport, directs } = pair("z");
    transport.joined({}, []);
    expect(directs).toHaveLength(0);
    transport.signal({ room: "r", from: "b", description: { type: "offer", sdp: "v=0" } } as Signal);
    expect(directs).toHaveLength(1);
    expect(directs[0]!.calls.at(-1)).toBe("signal b");
  });

  it("a third person: the server carries our media again at once, the direct path is shown until the server's media arrives, then closed", async () => {
    const { transport, server, direct, shown } = await talkingDirectly();
    transport.present("c", true);
    expect(server().held).toBe(false);
    await vi.advanceTimersByTimeAsync(WATCH_EVERY_MS * 2);
    expect(shown.get("b")?.id).toBe("direct b");
    // Their sound comes through the server before their video: still the direct path.
    await flows(direct, "b", WATCH_EVERY_MS * 2);
    const fromServer = server().received;
    fromServer.set("b", { ...NOTHING_RECEIVED, audio: 5000, packets: 60 });
    await flows(direct, "b", WATCH_EVERY_MS * 2);
    expect(shown.get("b")?.id).toBe("direct b");
    await flows([direct, server()], "b", WATCH_EVERY_MS * 2);
    expect(shown.get("b")?.id).toBe("server b");
    expect(direct.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(CLOSE_AFTER_MS);
    expect(direct.closed).toBe(true);
  });

  it("someone who sends sound only is shown by the server's path once their sound comes through it", async () => {
    const { transport, shown, server, direct } = await talkingDirectly();
    transport.present("c", true);
    await flows([direct, server()], "b", WATCH_EVERY_MS * 3, false);
    expect(shown.get("b")?.id).toBe("server b");
  });

  it("when the server's media never comes, the move still happens within its time", async () => {
    const { transport, shown } = await talkingDirectly();
    transport.present("c", true);
    await vi.advanceTimersByTimeAsync(SWITCH_WITHIN_MS + WATCH_EVERY_MS * 2);
    expect(shown.get("b")?.id).toBe("server b");
  });

  it("two again: a new direct path, shown once its media flows", async () => {
    const { transport, directs, shown, server } = await talkingDirectly();
    transport.present("c", true);
    await vi.advanceTimersByTimeAsync(SWITCH_WITHIN_MS + CLOSE_AFTER_MS + WATCH_EVERY_MS * 2);
    transport.gone("c");
    expect(directs).toHaveLength(2);
    await connects(directs[1]!, "direct b again");
    expect(shown.get("b")?.id).toBe("direct b again");
    expect(server().held).toBe(true);
  });

  it("a direct path that breaks: the server's media is shown at once, the direct path's again once it is back", async () => {
    const { server, direct, shown } = await talkingDirectly();
    direct.events.connection("b", "connecting");
    expect(server().held).toBe(false);
    expect(shown.get("b")?.id).toBe("server b");
    direct.events.connection("b", "connected");
    await flows(direct, "b");
    expect(shown.get("b")?.id).toBe("direct b");
    expect(server().held).toBe(true);
  });

  it("the partner leaving closes the direct path at once", async () => {
    const { transport, direct, server } = await talkingDirectly();
    transport.gone("b");
    expect(direct.closed).toBe(true);
    expect(server().held).toBe(false);
  });

  it("no direct path while the data saver wants less than everyone's video; one when it is off again", () => {
    let allowed = false;
    const { transport, directs } = pair("a", () => allowed);
    transport.joined({}, ["b"]);
    expect(directs).toHaveLength(0);
    allowed = true;
    transport.reconsider();
    expect(directs).toHaveLength(1);
    allowed = false;
    transport.reconsider();
    expect(directs[0]!.closed).toBe(true);
  });

  it("while the direct path carries everything, quality is the direct path's, not the idle server path's", async () => {
    const { server, direct, qualities } = await talkingDirectly();
    expect(qualities).toEqual(["self good"]);
    server().events.quality?.("self", "poor");
    server().events.quality?.("b", "poor");
    await flows(direct, "b", QUALITY_EVERY_MS * 2);
    expect(qualities.at(-1)).toBe("b good");
    // A fifth of their sound lost on the way.
    const was = direct.received.get("b")!;
    direct.received.set("b", { ...was, packets: was.packets + 40, lost: was.lost + 10 });
    await vi.advanceTimersByTimeAsync(QUALITY_EVERY_MS);
    expect(qualities.at(-1)).toBe("b poor");
    expect(qualities.filter((q) => q.startsWith("self"))).toEqual(["self good"]);
  });
});
