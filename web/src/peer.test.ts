import { describe, expect, it } from "vitest";
import { connectionLabel, connectTimeout, isPolite, MAX_RESTARTS, restartDelay } from "./peer";

describe("isPolite", () => {
  it("makes the id that sorts first impolite, the other polite", () => {
    expect(isPolite("a", "b")).toBe(false);
    expect(isPolite("b", "a")).toBe(true);
  });
  it("compares as strings, not as numbers or case-blind", () => {
    expect(isPolite("10", "9")).toBe(false); // "10" < "9" as strings
    expect(isPolite("Z", "a")).toBe(false); // upper case sorts before lower case
    expect(isPolite("abc", "ab")).toBe(true); // a prefix sorts first
  });
  it("gives exactly one polite side in every pair", () => {
    const ids = ["x9-Fq", "AbC_1", "abc_1", "-dash", "_under"];
    for (const a of ids) {
      for (const b of ids) {
        if (a === b) continue;
        expect(isPolite(a, b)).not.toBe(isPolite(b, a));
      }
    }
  });
});

describe("restartDelay", () => {
  it("backs off and levels out", () => {
    expect([1, 2, 3, 4, 5, 6].map(restartDelay)).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(restartDelay(0)).toBe(1000);
  });
  it("gives up after a few attempts, within a minute or so", () => {
    let total = 0;
    for (let i = 1; i <= MAX_RESTARTS; i++) total += restartDelay(i);
    expect(MAX_RESTARTS).toBeGreaterThanOrEqual(3);
    expect(total).toBeLessThan(60_000);
  });
});

describe("connectionLabel", () => {
  it("maps connection states to the tile's words", () => {
    expect(connectionLabel("new", "new")).toBe("new");
    expect(connectionLabel("connecting", "checking")).toBe("connecting");
    expect(connectionLabel("connected", "connected")).toBe("connected");
    expect(connectionLabel("disconnected", "disconnected")).toBe("connecting");
    expect(connectionLabel("failed", "failed")).toBe("failed");
    expect(connectionLabel("closed", "closed")).toBe("failed");
  });
  it("falls back to the ICE state where connectionState is missing", () => {
    expect(connectionLabel(undefined, "completed")).toBe("connected");
    expect(connectionLabel(undefined, "checking")).toBe("connecting");
    expect(connectionLabel(undefined, "failed")).toBe("failed");
  });
});

describe("connectTimeout", () => {
  it("lets the impolite side restart a stuck connection first, well before the polite one", () => {
    expect(connectTimeout(false)).toBeLessThan(connectTimeout(true));
    expect(connectTimeout(true) - connectTimeout(false)).toBeGreaterThanOrEqual(restartDelay(1) + 2000);
  });
});
