import { describe, expect, it } from "vitest";
import { meterOf, peakLevel, SPEAKING, SpeakingDetector } from "./speaking";

describe("SpeakingDetector", () => {
  it("starts at the upper threshold only", () => {
    const d = new SpeakingDetector();
    expect(d.update(0, 0)).toBe(false);
    expect(d.update(SPEAKING.off, 250)).toBe(false);
    expect(d.update((SPEAKING.on + SPEAKING.off) / 2, 500)).toBe(false);
    expect(d.update(SPEAKING.on, 750)).toBe(true);
  });
  it("keeps going through a level between the thresholds", () => {
    const d = new SpeakingDetector();
    d.update(0.2, 0);
    for (let t = 250; t <= 5000; t += 250) expect(d.update((SPEAKING.on + SPEAKING.off) / 2, t)).toBe(true);
  });
  it("stops only after a quiet hold, and a word in between resets it", () => {
    const d = new SpeakingDetector({ on: 0.1, off: 0.05, holdMs: 600 });
    expect(d.update(0.3, 0)).toBe(true);
    expect(d.update(0.01, 250)).toBe(true);
    expect(d.update(0.01, 500)).toBe(true);
    expect(d.update(0.2, 750)).toBe(true); // speaks again: the quiet starts over
    expect(d.update(0.01, 1000)).toBe(true);
    expect(d.update(0.01, 1500)).toBe(true);
    expect(d.update(0.01, 1600)).toBe(false);
    expect(d.update(0.07, 1850)).toBe(false); // above off but below on: still quiet
  });
});

describe("peakLevel", () => {
  it("measures loudness as a root mean square", () => {
    expect(peakLevel([0, 0, 0], 3)).toBe(0);
    expect(peakLevel([0.5, -0.5, 0.5, -0.5], 4)).toBeCloseTo(0.5);
    expect(peakLevel(new Float32Array([1, 0, 0, 0]), 4)).toBeCloseTo(0.5);
  });
  it("finds a short sound in a long quiet window", () => {
    const samples = new Float32Array(8192);
    for (let i = 4096; i < 5120; i++) samples[i] = i % 2 ? 0.4 : -0.4;
    expect(peakLevel(samples, samples.length)).toBeLessThan(0.15);
    expect(peakLevel(samples, 1024)).toBeCloseTo(0.4);
    expect(peakLevel(new Float32Array(0), 1024)).toBe(0);
  });
});

describe("meterOf", () => {
  it("shows loudness in decibels: silence empty, full scale full, speech in between", () => {
    expect(meterOf(0)).toBe(0);
    expect(meterOf(Number.NaN)).toBe(0);
    expect(meterOf(1)).toBe(1);
    expect(meterOf(2)).toBe(1);
    expect(meterOf(0.001)).toBeCloseTo(0, 5);
    expect(meterOf(0.1)).toBeCloseTo(2 / 3, 5);
    expect(meterOf(SPEAKING.on)).toBeGreaterThan(0.4);
  });
});
