// Who is speaking: audio levels, polled a few times a second, turned into a steady yes or no.
// Hysteresis (a higher level to start than to go on, and a pause before it stops) keeps the
// highlight from flickering between words.

export type SpeakingThresholds = {
  /** The level (0 to 1, linear, like RTP's audioLevel) at which someone starts speaking. */
  on: number;
  /** Below this they may have stopped… */
  off: number;
  /** …once it has stayed below for this long. */
  holdMs: number;
};

export const SPEAKING: SpeakingThresholds = { on: 0.035, off: 0.015, holdMs: 600 };

/** How often levels are read. */
export const POLL_MS = 250;

export class SpeakingDetector {
  private speaking = false;
  private quietSince: number | null = null;

  constructor(private readonly thresholds: SpeakingThresholds = SPEAKING) {}

  /** Takes one level reading at time `now` (ms) and says whether they are speaking. */
  update(level: number, now: number): boolean {
    const { on, off, holdMs } = this.thresholds;
    if (!this.speaking) {
      if (level >= on) {
        this.speaking = true;
        this.quietSince = null;
      }
    } else if (level >= off) {
      this.quietSince = null;
    } else {
      this.quietSince ??= now;
      if (now - this.quietSince >= holdMs) {
        this.speaking = false;
        this.quietSince = null;
      }
    }
    return this.speaking;
  }
}

/**
 * The loudest stretch of `chunk` samples, as a root mean square (about what audioLevel reports for
 * a packet): a short word inside a longer window still counts in full instead of being averaged
 * away with the silence around it. With `chunk` the whole length, the loudness of it all.
 */
export function peakLevel(samples: ArrayLike<number>, chunk: number): number {
  let peak = 0;
  for (let start = 0; start < samples.length; start += chunk) {
    const end = Math.min(samples.length, start + chunk);
    let sum = 0;
    for (let i = start; i < end; i++) {
      const s = samples[i] ?? 0;
      sum += s * s;
    }
    peak = Math.max(peak, Math.sqrt(sum / (end - start)));
  }
  return peak;
}

/** Samples per stretch in `peakLevel`: about 20 ms, the length of one audio packet. */
const CHUNK = 1024;

/**
 * The level of our own microphone, measured in the page (an AnalyserNode): no connection is
 * needed, so it works alone in a call too.
 */
export class LevelMeter {
  private readonly source: MediaStreamAudioSourceNode;
  private readonly analyser: AnalyserNode;
  private readonly buffer: Float32Array<ArrayBuffer>;

  constructor(
    context: AudioContext,
    readonly track: MediaStreamTrack,
  ) {
    this.source = context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = context.createAnalyser();
    // The window covers the time between two readings, so nothing said in between is missed.
    this.analyser.fftSize = 16384;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  level(): number {
    this.analyser.getFloatTimeDomainData(this.buffer);
    return peakLevel(this.buffer, CHUNK);
  }

  close(): void {
    this.source.disconnect();
  }
}

/** A level (0 to 1, linear) as a meter shows it: loudness in decibels, −60 dB to 0 dB as 0 to 1,
 * so that speech fills the meter as an ear would judge it. */
export function meterOf(level: number): number {
  if (!(level > 0)) return 0;
  const db = 20 * Math.log10(level);
  return Math.min(1, Math.max(0, (db + 60) / 60));
}

/** Plays two short soft notes on `context`'s output; resolves once they are over. */
export function playChime(context: AudioContext): Promise<void> {
  const start = context.currentTime + 0.05;
  const notes = [
    { at: 0, hz: 660 },
    { at: 0.22, hz: 880 },
  ];
  for (const { at, hz } of notes) {
    const tone = context.createOscillator();
    const gain = context.createGain();
    tone.frequency.value = hz;
    gain.gain.setValueAtTime(0, start + at);
    gain.gain.linearRampToValueAtTime(0.2, start + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.001, start + at + 0.5);
    tone.connect(gain).connect(context.destination);
    tone.start(start + at);
    tone.stop(start + at + 0.55);
  }
  return new Promise((resolve) => window.setTimeout(resolve, 900));
}
