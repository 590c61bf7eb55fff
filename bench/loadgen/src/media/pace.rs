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
    pub fn new(start: Instant) -> Self {
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
