import { describe, expect, it, vi } from "vitest";
import { MeshTransport, OFFER_FALLBACK_MS, type MeshPeer } from "./mesh";
import { NOTHING_RECEIVED, type PeerOptions } from "./peer";
import type { Signal } from "./protocol";
import { useFakeWindowTimers } from "./testing";

type FakePeer = MeshPeer & { options: PeerOptions; closed: boolean; received: unknown[]; tracks: Record<string, unknown> };

function mesh(inCall: (id: string) => boolean = () => true) {
  const peers: FakePeer[] = [];
  const arriving: string[] = [];
  const transport = new MeshTransport({
    selfId: () => "me",
    inCall,
    send: () => {},
    events: { arriving: (id) => arriving.push(id), stream: () => {}, connection: () => {} },
    makePeer: (options) => {
      const peer: FakePeer = {
        options,
        closed: false,
        received: [],
        tracks: {},
        receive: (signal) => void peer.received.push(signal),
        setTrack: (kind, track) => void (peer.tracks[kind] = track),
        setSendLimits: () => {},
        renewIce: () => {},
        audioLevel: () => 0.5,
        mediaReceived: () => Promise.resolve(NOTHING_RECEIVED),
        close: () => void (peer.closed = true),
      };
      peers.push(peer);
      return peer;
    },
  });
  return { transport, peers, arriving };
}

const offer = (from: string): Signal => ({ room: "r", from, description: { type: "offer", sdp: "v=0" } });
const track = { kind: "audio" } as MediaStreamTrack;

describe("MeshTransport", () => {
  useFakeWindowTimers();

  it("a newcomer connects to everyone already in the call, offering, with its tracks", () => {
    const { transport, peers } = mesh();
    transport.publish({ audio: track, video: null, screen: false });
    transport.joined({}, ["a", "b"]);
    expect(peers.map((p) => [p.options.id, p.options.initiator, p.options.audio])).toEqual([
      ["a", true, track],
      ["b", true, track],
    ]);
    expect(transport.remotes()).toEqual(["a", "b"]);
  });

  it("an offer from someone new starts a connection that answers; a stray answer starts nothing", () => {
    const { transport, peers, arriving } = mesh();
    transport.joined({}, []);
    transport.signal({ room: "r", from: "x", description: { type: "answer", sdp: "v=0" } });
    expect(peers).toHaveLength(0);
    transport.signal(offer("c"));
    expect(arriving).toEqual(["c"]);
    expect(peers[0]?.options.initiator).toBe(false);
    expect(peers[0]?.received).toHaveLength(1);
  });

  it("offers itself when a newcomer's offer never comes, unless they left meanwhile", () => {
    let stillThere = true;
    const { transport, peers } = mesh(() => stillThere);
    transport.joined({}, []);
    transport.present("late", true);
    vi.advanceTimersByTime(OFFER_FALLBACK_MS);
    expect(peers.map((p) => [p.options.id, p.options.initiator])).toEqual([["late", true]]);
    transport.present("gone", true);
    stillThere = false;
    vi.advanceTimersByTime(OFFER_FALLBACK_MS);
    expect(peers).toHaveLength(1);
  });

  it("someone gone, or a new join without them, closes their connection; close closes all", () => {
    const { transport, peers } = mesh();
    transport.joined({}, ["a", "b", "c"]);
    transport.gone("a");
    expect(peers[0]?.closed).toBe(true);
    transport.joined({}, ["b"]);
    expect(peers.map((p) => p.closed)).toEqual([true, false, true]);
    transport.close();
    expect(peers.every((p) => p.closed)).toBe(true);
    transport.signal(offer("d"));
    expect(peers).toHaveLength(3);
  });

  it("new tracks reach every connection", () => {
    const { transport, peers } = mesh();
    transport.joined({}, ["a"]);
    transport.publish({ audio: track, video: null, screen: false });
    expect(peers[0]?.tracks).toEqual({ audio: track, video: null });
    expect(transport.audioLevel("a")).toBe(0.5);
    expect(transport.audioLevel("nobody")).toBe(0);
  });
});
