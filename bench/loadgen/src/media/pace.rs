//! When a synthetic publisher's next frame is due, and which of its prepared frames it is; and
//! how fast a slow participant's link lets datagrams in.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use super::encoded::{AUDIO_FRAME_MS, LAYERS, VIDEO_FPS};

pub enum Due {
    Audio {
        n: u64,
    },
    /// Frame `at` of `layer`'s prepared frames, the `n`th frame sent.
    Video {
        layer: usize,
        at: usize,
        n: u64,
    },
}

/// When each next frame is due: the camera at 30 a second (each layer on its own place in its
/// prepared frames, so that a keyframe asked for comes next), the voice every 20 ms.
pub struct Sends {
    start: Instant,
    audio_n: u64,
    video_n: u64,
    /// Where each layer is in its frames.
    at: [usize; 3],
    /// The layers sent for the current video frame so far.
    layer: usize,
}

impl Sends {
    /// The `index`th participant's sends, from `now`. Each camera starts at its own place within
    /// a frame's interval, as cameras that are not synchronised do: started together, every
    /// publisher's frame would reach the server at the same instant, 30 times a second, a burst
    /// no real call makes.
    pub fn new(now: Instant, index: u32) -> Self {
        // The golden ratio's fraction spreads any number of participants evenly.
        let phase = (index as f64 * 0.618_033_988_7).fract();
        let start = now + Duration::from_secs_f64(phase / VIDEO_FPS as f64);
        Sends { start, audio_n: 0, video_n: 0, at: [0; 3], layer: 0 }
    }

    fn audio_at(&self, n: u64) -> Instant {
        self.start + Duration::from_millis(n * AUDIO_FRAME_MS as u64)
    }

    fn video_at(&self, n: u64) -> Instant {
        self.start + Duration::from_nanos(n * 1_000_000_000 / VIDEO_FPS as u64)
    }

    pub fn next(&self) -> Instant {
        self.audio_at(self.audio_n).min(self.video_at(self.video_n))
    }

    pub fn due(&mut self, now: Instant) -> Option<Due> {
        let (audio, video) = (self.audio_at(self.audio_n), self.video_at(self.video_n));
        if audio <= now && audio <= video {
            self.audio_n += 1;
            return Some(Due::Audio { n: self.audio_n - 1 });
        }
        if video > now {
            return None;
        }
        let layer = self.layer;
        let due = Due::Video { layer, at: self.at[layer], n: self.video_n };
        self.at[layer] += 1;
        self.layer += 1;
        if self.layer == LAYERS.len() {
            self.layer = 0;
            self.video_n += 1;
        }
        Some(due)
    }

    /// Nothing is sent for the time that passed (not connected yet, or a listener).
    pub fn skip_to(&mut self, now: Instant) {
        while self.audio_at(self.audio_n) <= now {
            self.audio_n += 1;
        }
        while self.video_at(self.video_n) <= now {
            self.video_n += 1;
        }
    }

    /// The layer asked for (all, when none is named) starts again at its first frame, a keyframe.
    pub fn restart(&mut self, rid: Option<Rid>) {
        for (at, layer) in self.at.iter_mut().zip(LAYERS) {
            if rid.is_none_or(|r| *r == *layer.rid) {
                *at = 0;
            }
        }
    }
}

/// A token bucket in front of a participant: what exceeds the rate, with a tenth of a second's
/// worth of burst, is dropped.
pub struct Policer {
    bytes_per_s: f64,
    depth: f64,
    tokens: f64,
    last: Instant,
}

impl Policer {
    pub fn new(kbps: u32, now: Instant) -> Self {
        let bytes_per_s = kbps as f64 * 1000.0 / 8.0;
        Policer { bytes_per_s, depth: bytes_per_s / 10.0, tokens: bytes_per_s / 10.0, last: now }
    }

    pub fn admit(&mut self, now: Instant, size: usize) -> bool {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.bytes_per_s).min(self.depth);
        if self.tokens < size as f64 {
            return false;
        }
        self.tokens -= size as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_start_spread_over_a_frame_interval() {
        let now = Instant::now();
        let interval = Duration::from_secs(1) / VIDEO_FPS;
        let mut starts: Vec<Duration> = (0..12).map(|i| Sends::new(now, i).next() - now).collect();
        assert!(starts.iter().all(|s| *s < interval), "{starts:?}");
        starts.sort();
        let closest = starts.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        assert!(closest > interval / 24, "twelve cameras at least a 24th of an interval apart: {starts:?}");
    }

    #[test]
    fn nothing_is_due_before_the_camera_starts() {
        let now = Instant::now();
        let mut sends = Sends::new(now, 1);
        assert!(sends.due(now).is_none());
        assert!(matches!(sends.due(sends.next()), Some(Due::Audio { n: 0 })));
    }
}
