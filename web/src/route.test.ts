import { describe, expect, it } from "vitest";
import { parseRoute, roomPath, roomUrl, routePath, hostKeyOf, hostUrl } from "./route";

describe("parseRoute", () => {
  it("reads the lobby", () => {
    expect(parseRoute("/")).toEqual({ kind: "lobby" });
    expect(parseRoute("")).toEqual({ kind: "lobby" });
    expect(parseRoute("/r/")).toEqual({ kind: "lobby" });
    expect(parseRoute("/other")).toEqual({ kind: "lobby" });
    expect(parseRoute("/r")).toEqual({ kind: "lobby" });
  });
  it("reads a room, URL-decoded", () => {
    expect(parseRoute("/r/lobby-talk")).toEqual({ kind: "room", room: "lobby-talk" });
    expect(parseRoute("/r/coffee%20break")).toEqual({ kind: "room", room: "coffee break" });
    expect(parseRoute("/r/%ED%95%9C%EA%B5%AD%EC%96%B4")).toEqual({ kind: "room", room: "한국어" });
    expect(parseRoute("/r/a%2Fb")).toEqual({ kind: "room", room: "a/b" });
    expect(parseRoute("/r/a+b")).toEqual({ kind: "room", room: "a+b" });
  });
  it("keeps a malformed escape as it is", () => {
    expect(parseRoute("/r/100%")).toEqual({ kind: "room", room: "100%" });
  });
});

describe("roomPath and roomUrl", () => {
  it("encode the room name", () => {
    expect(roomPath("coffee break")).toBe("/r/coffee%20break");
    expect(roomPath("a/b?c#d")).toBe("/r/a%2Fb%3Fc%23d");
    expect(roomUrl("http://localhost:3000", "한국어")).toBe(
      "http://localhost:3000/r/%ED%95%9C%EA%B5%AD%EC%96%B4",
    );
  });
  it("round-trip through parseRoute", () => {
    for (const room of ["x", "coffee break", "a/b", "100%", "<img src=x onerror=alert(1)>", "😀 방", "a+b"]) {
      expect(parseRoute(roomPath(room))).toEqual({ kind: "room", room });
    }
  });
  it("routePath writes either kind", () => {
    expect(routePath({ kind: "lobby" })).toBe("/");
    expect(routePath({ kind: "room", room: "a b" })).toBe("/r/a%20b");
  });
});

describe("host links", () => {
  it("carry the room's host key, read back from the address", () => {
    const url = hostUrl("https://noom.example", "stand up", "k3y_-AbC");
    expect(url).toBe("https://noom.example/r/stand%20up?host=k3y_-AbC");
    expect(hostKeyOf(new URL(url).search)).toBe("k3y_-AbC");
    expect(hostKeyOf("")).toBeNull();
    expect(hostKeyOf(`?host=${"x".repeat(65)}`)).toBeNull();
  });
});
