import { describe, expect, it } from "vitest";
import { isAdminState, isClosedRoom, isDisconnectedPerson, readAnswer, retryDelay } from "./api";
import { sampleState } from "./sampleState";

/** The sample with the value at `path` replaced (undefined: removed). */
function withField(path: Array<string | number>, value: unknown): unknown {
  const copy: unknown = structuredClone(sampleState);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] ?? "";
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

describe("isAdminState", () => {
  it("accepts a well-formed state, empty or not", () => {
    expect(isAdminState(sampleState)).toBe(true);
    expect(isAdminState({ ...sampleState, nodes: [], rooms: [], redis: "off" })).toBe(true);
  });
  it("accepts a call given as null (not in the call)", () => {
    expect(isAdminState(withField(["rooms", 0, "participants", 1, "call"], null))).toBe(true);
  });
  it("refuses malformed states", () => {
    expect(isAdminState(null)).toBe(false);
    expect(isAdminState([])).toBe(false);
    expect(isAdminState("{}")).toBe(false);
    expect(isAdminState(withField(["version"], undefined))).toBe(false);
    expect(isAdminState(withField(["version"], "7"))).toBe(false);
    expect(isAdminState(withField(["redis"], "maybe"))).toBe(false);
    expect(isAdminState(withField(["connections"], -1))).toBe(false);
    expect(isAdminState(withField(["connections"], 1.5))).toBe(false);
    expect(isAdminState(withField(["nodes"], {}))).toBe(false);
    expect(isAdminState(withField(["nodes", 0, "self"], "yes"))).toBe(false);
    expect(isAdminState(withField(["rooms"], null))).toBe(false);
    expect(isAdminState(withField(["rooms", 0, "inCall"], undefined))).toBe(false);
    expect(isAdminState(withField(["rooms", 0, "unlisted"], 0))).toBe(false);
    expect(isAdminState(withField(["rooms", 0, "participants"], "Rosa"))).toBe(false);
    expect(isAdminState(withField(["rooms", 0, "participants", 0, "node"], undefined))).toBe(false);
    expect(isAdminState(withField(["rooms", 0, "participants", 0, "nickname"], 1))).toBe(false);
    const halfMedia = withField(["rooms", 0, "participants", 0, "call"], { audio: true });
    expect(isAdminState(halfMedia)).toBe(false);
  });
});

describe("action answers", () => {
  it("reads close-room and disconnect answers", () => {
    expect(isClosedRoom({ room: "standup", people: 3 })).toBe(true);
    expect(isClosedRoom({ room: "standup" })).toBe(false);
    expect(isClosedRoom({ room: "standup", people: "3" })).toBe(false);
    expect(isDisconnectedPerson({ id: "a", node: "n1" })).toBe(true);
    expect(isDisconnectedPerson({ id: "a" })).toBe(false);
  });
});

describe("readAnswer", () => {
  it("takes a success that passes the check", () => {
    const answer = { room: "r", people: 1 };
    expect(readAnswer(200, answer, isClosedRoom)).toEqual({ ok: true, value: answer });
  });
  it("turns a malformed success into bad_response", () => {
    const res = readAnswer(200, { room: "r" }, isClosedRoom);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.code).toBe("bad_response");
    expect(readAnswer(200, null, isAdminState).ok).toBe(false);
  });
  it("reads the API's errors", () => {
    expect(readAnswer(401, { error: { code: "unauthorized", message: "wrong token" } }, isAdminState)).toEqual({
      ok: false,
      error: { code: "unauthorized", message: "wrong token" },
    });
    expect(readAnswer(404, { error: { code: "not_found", message: "no such room" } }, isClosedRoom)).toEqual({
      ok: false,
      error: { code: "not_found", message: "no such room" },
    });
  });
  it("tells an error page without the API's JSON by its status", () => {
    const code = (status: number, body: unknown) => {
      const res = readAnswer(status, body, isAdminState);
      return res.ok ? "ok" : res.error.code;
    };
    expect(code(401, null)).toBe("unauthorized");
    expect(code(404, "<html>")).toBe("not_found");
    expect(code(502, null)).toBe("http_502");
    // Even a body that looks like a state is not a success on an error status.
    expect(code(500, sampleState)).toBe("http_500");
  });
});

describe("retryDelay", () => {
  it("waits 1 s, 2 s, 4 s, then 5 s at most", () => {
    expect([1, 2, 3, 4, 5, 20].map(retryDelay)).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
    expect(retryDelay(0)).toBe(1000);
  });
});
