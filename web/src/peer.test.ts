import { describe, expect, it } from "vitest";
import {
  connectionLabel,
  connectTimeout,
  dtlsFingerprint,
  FAILED_AFTER_RESTARTS,
  isPolite,
  POLITE_RESTART_LAG_MS,
  restartDelay,
  restartWait,
  restartWatchdog,
  shownLabel,
} from "./peer";

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
  it("backs off and levels out, without ever giving up", () => {
    expect([1, 2, 3, 4, 5, 6].map(restartDelay)).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(restartDelay(0)).toBe(1000);
    expect(restartDelay(1000)).toBe(8000);
  });
});

describe("restartWait", () => {
  it("leaves restarts to the impolite side: the polite one waits its delay and then some", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      expect(restartWait(attempt, false)).toBe(restartDelay(attempt));
      expect(restartWait(attempt, true)).toBe(restartDelay(attempt) + POLITE_RESTART_LAG_MS);
    }
  });
  it("has the polite side restart only after the impolite side's restart of the same round, by seconds", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      expect(restartWait(attempt, true) - restartWait(attempt, false)).toBeGreaterThanOrEqual(3000);
    }
  });
  it("has the polite side wait out a restart longer than the impolite side takes to try the next one", () => {
    // After a restart (whoever made it), each side looks again after its watchdog and then waits
    // its restart delay: the impolite side's next try must come first, whatever the rounds.
    const latestImpolite = restartWatchdog(false) + restartWait(1000, false);
    const earliestPolite = restartWatchdog(true) + restartWait(1, true);
    expect(earliestPolite - latestImpolite).toBeGreaterThanOrEqual(2000);
  });
});

describe("connectTimeout", () => {
  it("lets the impolite side restart a stuck connection first, well before the polite one", () => {
    expect(connectTimeout(false) + restartWait(1, false)).toBeLessThan(connectTimeout(true) + restartWait(1, true));
    expect(connectTimeout(true) - connectTimeout(false)).toBeGreaterThanOrEqual(restartDelay(1) + 2000);
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

describe("shownLabel", () => {
  it("shows the connection's own state during the first restarts", () => {
    expect(shownLabel("connecting", 0)).toBe("connecting");
    expect(shownLabel("connecting", FAILED_AFTER_RESTARTS - 1)).toBe("connecting");
    expect(shownLabel("failed", 1)).toBe("failed");
    expect(shownLabel("new", 0)).toBe("new");
  });
  it("says failed once restarts keep not getting through, while they go on", () => {
    expect(FAILED_AFTER_RESTARTS).toBeGreaterThanOrEqual(3);
    expect(shownLabel("connecting", FAILED_AFTER_RESTARTS)).toBe("failed");
    expect(shownLabel("new", FAILED_AFTER_RESTARTS + 10)).toBe("failed");
  });
  it("shows a connection that is up as connected, however many restarts it took", () => {
    expect(shownLabel("connected", FAILED_AFTER_RESTARTS + 10)).toBe("connected");
  });
});

describe("dtlsFingerprint", () => {
  const sdp = (fingerprint: string) =>
    [
      "v=0",
      "o=- 1 2 IN IP4 127.0.0.1",
      "s=-",
      "t=0 0",
      "m=audio 9 UDP/TLS/RTP/SAVPF 111",
      `a=fingerprint:${fingerprint}`,
      "a=setup:actpass",
      "",
    ].join("\r\n");
  it("reads the fingerprint line, without its line ending", () => {
    expect(dtlsFingerprint(sdp("sha-256 AB:CD:EF"))).toBe("sha-256 AB:CD:EF");
  });
  it("tells a description of a new connection from another of the same one", () => {
    expect(dtlsFingerprint(sdp("sha-256 AB:CD"))).toBe(dtlsFingerprint(sdp("sha-256 AB:CD")));
    expect(dtlsFingerprint(sdp("sha-256 AB:CD"))).not.toBe(dtlsFingerprint(sdp("sha-256 12:34")));
  });
  it("gives null for a description without one", () => {
    expect(dtlsFingerprint("v=0\r\ns=-\r\n")).toBeNull();
  });
});
