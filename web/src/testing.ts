// Helpers for the unit tests; the client never imports this file.
import { afterEach, beforeEach, vi } from "vitest";

/** Fake timers, on a `window` that is the test's own global, for each test of the suite. */
export function useFakeWindowTimers(): void {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("window", globalThis);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
}
