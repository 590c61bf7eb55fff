//! What each synthetic participant saw, and what a run's participants saw together.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::scenarios::{CARRIED_LOSS_UNDER, CARRIED_P99_UNDER_MS, GENERATOR_BOUND_AT};
use super::stamp::{AUDIO, Stamp};

/// The measuring window, in this process's nanoseconds: only frames received inside it count
/// towards latency, loss and throughput.
#[derive(Default)]
pub struct Window {
    start: Cell<u64>,
    end: Cell<u64>,
}

impl Window {
    pub fn open(&self, now: u64) {
        self.start.set(now);
        self.end.set(u64::MAX);
    }

    pub fn close(&self, now: u64) {
        self.end.set(now);
    }

    fn holds(&self, ns: u64) -> bool {
        self.start.get() != 0 && ns >= self.start.get() && ns < self.end.get()
    }
}

#[derive(Default)]
pub struct Seen {
    window: Rc<Window>,
    pub slow: bool,
    /// Whether it shows anyone (a webinar's speaker shows nobody).
    pub shows_video: bool,
    /// When it asked for media (its `sfu:join`, or its subscriptions to the floor).
    pub asked_ns: u64,
    /// From then to the first video frame received.
    pub first_video_ns: Option<u64>,
    pub keyframe_requests: u64,
    pub nacks_sent: u64,
    pub disconnected: bool,
    /// Every frame received, inside the window or not.
    pub all_frames: u64,
    /// Inside the window:
    pub frames: u64,
    pub bytes: u64,
    pub video_latency_us: Vec<u32>,
    pub audio_latency_us: Vec<u32>,
    /// Frames of a stream missing between two received (their number skipped) where packets
    /// went missing on the way, and frames expected.
    pub lost: u64,
    pub expected: u64,
    /// Frames the server chose not to send (a track paused for the viewer's bandwidth, a voice
    /// not forwarded): skipped while the stream's packets kept their sequence.
    pub withheld: u64,
    /// Each stream received: (publisher, audio or not).
    pub streams: HashSet<(u32, bool)>,
    /// The layer and number of each stream's last frame.
    last: HashMap<(u32, bool), (u8, u32)>,
}

impl Seen {
    pub fn new(window: Rc<Window>, slow: bool) -> Self {
        Seen { window, slow, ..Seen::default() }
    }

    /// A whole frame received at `now`; `unbroken` when no packet of its stream went missing
    /// since the last frame (a WebRTC receiver knows from the RTP sequence numbers; a plain
    /// relay's receiver cannot tell, and says false: every gap is loss).
    pub fn frame(&mut self, now: u64, size: usize, stamp: Stamp, unbroken: bool) {
        let key = (stamp.publisher, stamp.layer == AUDIO);
        let last = self.last.insert(key, (stamp.layer, stamp.seq));
        self.all_frames += 1;
        if stamp.layer != AUDIO && self.first_video_ns.is_none() {
            self.first_video_ns = Some(now.saturating_sub(self.asked_ns));
        }
        if !self.window.holds(now) {
            return;
        }
        self.frames += 1;
        self.bytes += size as u64;
        let latency = (now.saturating_sub(stamp.sent_ns) / 1000).min(u32::MAX as u64) as u32;
        if stamp.layer == AUDIO {
            self.audio_latency_us.push(latency);
        } else {
            self.video_latency_us.push(latency);
        }
        self.streams.insert(key);
        // A layer switched to starts afresh (a switch waits for its keyframe: frames skipped
        // on purpose); a frame late or repeated skips nothing.
        if let Some((layer, last)) = last
            && layer == stamp.layer
            && stamp.seq > last
        {
            let skipped = (stamp.seq - last - 1) as u64;
            if unbroken {
                self.withheld += skipped;
                self.expected += 1;
            } else {
                self.expected += skipped + 1;
                self.lost += skipped;
            }
        }
    }
}

/// A group of participants' figures over the window.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
pub struct Summary {
    pub participants: usize,
    pub video_streams: usize,
    pub audio_streams: usize,
    pub frames: u64,
    pub megabits_per_s: f64,
    /// Frames lost per frames expected, in percent: over the group, and its worst participant.
    pub loss_percent: f64,
    pub worst_loss_percent: f64,
    /// Frames the server chose not to send, per frames expected and those, in percent.
    #[serde(default)]
    pub withheld_percent: f64,
    pub nacks_sent: u64,
    pub keyframe_requests: u64,
    pub video_latency_ms: Percentiles,
    pub audio_latency_ms: Percentiles,
    /// From `sfu:join` to the first video frame; None when none came.
    pub first_video_ms: Percentiles,
    pub without_video: usize,
    pub disconnected: usize,
}

#[derive(Serialize, Deserialize, Clone, Default, Debug)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of_us(mut values: Vec<u32>) -> Self {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Percentiles { p50: at(0.5), p99: at(0.99), max: at(1.0) }
    }
}

pub fn summarise<'a>(group: impl Iterator<Item = &'a Seen>, window_s: f64) -> Summary {
    let mut s = Summary::default();
    let (mut video, mut audio, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut expected, mut withheld, mut bytes) = (0, 0, 0, 0);
    for seen in group {
        s.participants += 1;
        s.video_streams += seen.streams.iter().filter(|(_, audio)| !audio).count();
        s.audio_streams += seen.streams.iter().filter(|(_, audio)| *audio).count();
        s.frames += seen.frames;
        bytes += seen.bytes;
        lost += seen.lost;
        expected += seen.expected;
        withheld += seen.withheld;
        if seen.expected > 0 {
            s.worst_loss_percent = s.worst_loss_percent.max(100.0 * seen.lost as f64 / seen.expected as f64);
        }
        s.nacks_sent += seen.nacks_sent;
        s.keyframe_requests += seen.keyframe_requests;
        video.extend_from_slice(&seen.video_latency_us);
        audio.extend_from_slice(&seen.audio_latency_us);
        match seen.first_video_ns {
            Some(ns) => first.push((ns / 1000).min(u32::MAX as u64) as u32),
            None if seen.shows_video => s.without_video += 1,
            None => {}
        }
        s.disconnected += seen.disconnected as usize;
    }
    s.megabits_per_s = bytes as f64 * 8.0 / 1e6 / window_s.max(1e-9);
    s.loss_percent = if expected > 0 { 100.0 * lost as f64 / expected as f64 } else { 0.0 };
    let due = expected + withheld;
    s.withheld_percent = if due > 0 { 100.0 * withheld as f64 / due as f64 } else { 0.0 };
    s.video_latency_ms = Percentiles::of_us(video);
    s.audio_latency_ms = Percentiles::of_us(audio);
    s.first_video_ms = Percentiles::of_us(first);
    s
}

/// One server in one scenario.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Outcome {
    pub server: String,
    pub scenario: String,
    pub participants: usize,
    pub seconds: f64,
    /// Everyone, then (in the slow-link scenario) those on good links and the slow ones.
    pub all: Summary,
    pub others: Option<Summary>,
    pub slow: Option<Summary>,
    pub server_cpu_s: Option<f64>,
    pub server_rss_kb: Option<u64>,
    /// Anonymous resident memory (heap, stacks: not the program's code) the participants added,
    /// per participant, at the end of the window.
    pub kb_per_participant: Option<f64>,
    /// How much that grew from the window's start to its end, per participant.
    #[serde(default)]
    pub kb_growth_per_participant: Option<f64>,
    pub generator_cpu_s: f64,
    pub errors: Vec<String>,
}

impl Outcome {
    /// Video and audio streams forwarded at the end of the window, all subscribers together.
    pub fn streams(&self) -> usize {
        self.all.video_streams + self.all.audio_streams
    }

    /// The server's CPU over the window, in milliseconds of CPU per second (1,000: one core).
    pub fn server_cpu_ms_per_s(&self) -> Option<f64> {
        Some(self.server_cpu_s? * 1000.0 / self.seconds)
    }

    /// The server's CPU per forwarded stream, in milliseconds of CPU per second.
    pub fn cpu_ms_per_stream(&self) -> Option<f64> {
        let streams = self.streams();
        (streams > 0).then_some(self.server_cpu_ms_per_s()? / streams as f64)
    }

    /// Whether the server carried the call within the goals' loss and latency, everyone seeing
    /// video and nobody failing.
    pub fn carried(&self) -> bool {
        self.why_not_carried().is_none()
    }

    /// What the server missed of carrying the call, first thing first.
    pub fn why_not_carried(&self) -> Option<String> {
        let s = &self.all;
        if !self.errors.is_empty() || s.disconnected > 0 {
            Some("participants failed".into())
        } else if s.without_video > 0 {
            Some(format!("{} without video", s.without_video))
        } else if s.loss_percent >= CARRIED_LOSS_UNDER {
            Some(format!("loss {:.2}%", s.loss_percent))
        } else if s.video_latency_ms.p99 >= CARRIED_P99_UNDER_MS {
            Some(format!("p99 {:.1} ms", s.video_latency_ms.p99))
        } else {
            None
        }
    }

    /// Whether the generator was at its own limit: the figures then say as much of it as of the
    /// server.
    pub fn generator_bound(&self) -> bool {
        self.generator_cpu_s >= GENERATOR_BOUND_AT * self.seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames the server chose not to send (the stream's packets unbroken) are not loss; frames
    /// missing after packets went missing are.
    #[test]
    fn a_gap_is_loss_only_when_packets_went_missing() {
        let window = Rc::new(Window::default());
        window.open(1);
        let mut seen = Seen::new(window, false);
        let stamp = |seq| Stamp { layer: 0, publisher: 1, seq, sent_ns: 0 };
        seen.frame(1, 100, stamp(1), false);
        seen.frame(2, 100, stamp(2), true);
        // Paused for the viewer's bandwidth: frames 3 to 9 were never sent.
        seen.frame(3, 100, stamp(10), true);
        // Packets lost on the way: frames 11 and 12 could not be put together.
        seen.frame(4, 100, stamp(13), false);
        assert_eq!((seen.lost, seen.expected, seen.withheld), (2, 5, 7));
        let summary = summarise([&seen].into_iter(), 1.0);
        assert_eq!(summary.loss_percent, 40.0);
        assert_eq!(summary.withheld_percent, 7.0 / 12.0 * 100.0);
    }
}
