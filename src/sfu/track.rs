//! One track as the router sees it: what its publisher sends (its layers, their sizes and
//! bitrates), what each receiver wants of it and is sent, and which of its frames goes to whom.
//! Pure: no str0m connection is touched here.

use std::time::{Duration, Instant};

use str0m::media::{MediaData, MediaKind, MediaTime, Mid, Rid};

use crate::metrics::COUNTERS;
use crate::rooms::PersonId;

/// What a layer is taken to cost before it has been measured, lowest first: the web client's
/// limits for its camera's three layers.
const ASSUMED_LAYER_BITRATES: [u64; 3] = [150_000, 500_000, 1_700_000];
/// What a track without simulcast is taken to cost before it has been measured.
const ASSUMED_TRACK_BITRATE: u64 = 1_000_000;

#[derive(Clone)]
pub(super) struct Published {
    pub(super) mid: Mid,
    pub(super) kind: MediaKind,
    /// Its simulcast layers' rids, lowest first; none without simulcast.
    pub(super) layers: Vec<Rid>,
    /// Each layer's picture height, as its last keyframe said.
    pub(super) heights: Vec<(Rid, u32)>,
    /// Each layer's bitrate as received (`None`: the track, without simulcast).
    pub(super) rates: Vec<(Option<Rid>, RateMeter)>,
    /// Of each layer (lowest first), since when nobody has needed it; `None`: needed now.
    pub(super) unneeded_since: Vec<Option<Instant>>,
    /// The layers the publisher was last told to send; `None`: not told yet (it sends all).
    pub(super) told_active: Option<Vec<bool>>,
    /// When each layer (`None`: the track, without simulcast) was last asked for a keyframe.
    pub(super) keyframe_requests: Vec<(Option<Rid>, Instant)>,
    /// When its publisher's offer added it.
    pub(super) published_at: Instant,
    /// When frames came again after a quiet spell (see [`Published::resumed`]).
    pub(super) resumed_at: Option<Instant>,
    /// Whether any media of it has come: until then it is offered to nobody
    /// ([`Negotiation::Silent`]).
    pub(super) heard: bool,
}

/// How long a track that was sent again counts as resumed.
pub(super) const RESUMED_FOR: Duration = Duration::from_secs(5);

/// A simulcast layer with no frame for this long is not being sent: a receiver that wants it
/// gets another meanwhile (a browser that starts sending again starts with its lowest layers).
pub(super) const LAYER_QUIET_AFTER: Duration = Duration::from_secs(1);

/// A track with no frame for this long is not being sent (a muted camera, or a call of two whose
/// media goes directly): nothing of it is allocated or probed for.
pub(super) const QUIET_AFTER: Duration = Duration::from_secs(2);

/// What a receiver wants of a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Whatever comes; of a simulcast track, the first layer heard.
    Any,
    /// Of a simulcast track, this layer.
    Layer(Rid),
    /// Of a simulcast track, the layer that best fills a tile this many pixels high.
    Fit(u32),
    /// Nothing: the receiver does not show it.
    Paused,
}

pub(super) struct Receiving {
    pub(super) from: PersonId,
    pub(super) from_mid: Mid,
    pub(super) kind: MediaKind,
    pub(super) state: Negotiation,
    pub(super) wanted: Wanted,
    /// The highest layer the receiver's bandwidth allows.
    pub(super) ceiling: Ceiling,
    /// What str0m last reported of sending it.
    pub(super) sent: Sent,
    /// Of a simulcast track, the layer forwarded now. A switch to another waits for a keyframe
    /// of it, so that the receiver never gets a frame it cannot decode.
    pub(super) current: Option<Rid>,
    /// Without simulcast: a keyframe has been forwarded (until then the receiver shows nothing,
    /// and the publisher is asked for one).
    pub(super) keyframe_seen: bool,
    /// Added to the publisher's media time: each layer has a clock of its own, and the
    /// receiver's must not jump at a switch.
    pub(super) time_offset: i64,
    /// The media time of the last frame written, after the offset.
    pub(super) last_time: Option<MediaTime>,
}

/// What a receiver's bandwidth allows of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ceiling {
    /// No estimate yet, or the track is not shown.
    None,
    /// At most this layer (an index, lowest first).
    Layer(usize),
    /// Nothing: not even its lowest layer fits.
    Off,
}

/// What str0m reported of sending one track to one receiver.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sent {
    pub(super) bytes: u64,
    pub(super) nacks: u64,
    /// The share lost on the way, as the receiver reported it.
    pub(super) loss: Option<f32>,
    pub(super) at: Option<Instant>,
    pub(super) bitrate: Option<u64>,
}

/// Bytes received over the last second or so, as a bitrate.
#[derive(Clone, Default)]
pub(super) struct RateMeter {
    pub(super) since: Option<Instant>,
    pub(super) bytes: u64,
    pub(super) bitrate: Option<u64>,
    /// When bytes last came.
    pub(super) last: Option<Instant>,
}

impl RateMeter {
    pub(super) fn add(&mut self, bytes: usize, now: Instant) {
        self.last = Some(now);
        let since = *self.since.get_or_insert(now);
        self.bytes += bytes as u64;
        let elapsed = now.duration_since(since);
        if elapsed >= Duration::from_secs(1) {
            self.bitrate = Some((self.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64);
            self.since = Some(now);
            self.bytes = 0;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Negotiation {
    /// Its publisher has sent none of it yet: nobody is offered it until the first frame comes.
    /// A webinar's listeners, and anyone whose camera is off, negotiate tracks they never send;
    /// offered to everyone, they gave each connection an m-line per person and track, which str0m
    /// visits for every packet it sends (a webinar of 100: 200 streams on each connection).
    Silent,
    /// Not offered yet.
    ToOffer,
    /// In the offer that awaits an answer, under this mid.
    Offered(Mid),
    /// Agreed: frames are written to this mid.
    Open(Mid),
    /// Its publisher is gone, and it is to be stopped at the next offer.
    ToStop(Mid),
    /// Stopped in the offer that awaits an answer.
    Stopping(Mid),
}

impl Published {
    /// When its last frame came, of any layer.
    fn last_frame(&self) -> Option<Instant> {
        self.rates.iter().filter_map(|(_, meter)| meter.last).max()
    }

    /// Whether frames of it come now.
    pub(super) fn sending(&self, now: Instant) -> bool {
        self.last_frame().is_some_and(|at| now.duration_since(at) < QUIET_AFTER)
    }

    /// A frame comes now: called before its layer's meter counts it.
    pub(super) fn framed(&mut self, now: Instant) {
        // Quiet since its last frame, or since it was added when it never had one (a call of two
        // that went direct before the server had anything of it).
        if now.duration_since(self.last_frame().unwrap_or(self.published_at)) >= QUIET_AFTER {
            self.resumed_at = Some(now);
        }
    }

    /// Sent (again) lately after a quiet spell: its viewers were most likely watching it another
    /// way meanwhile (a call of two talking directly, just joined by a third), and it should not
    /// stop for them now.
    pub(super) fn resumed(&self, now: Instant) -> bool {
        self.resumed_at.is_some_and(|at| now.duration_since(at) < RESUMED_FOR)
    }

    /// `wanted` if that layer is being sent; else the highest layer below it that is, or above it
    /// when none below is; `wanted` still when nothing is sent.
    pub(super) fn available(&self, wanted: Wanted, now: Instant) -> Wanted {
        let Wanted::Layer(rid) = wanted else { return wanted };
        let flowing = |layer: &Rid| {
            self.rates.iter().any(|(r, meter)| {
                *r == Some(*layer) && meter.last.is_some_and(|at| now.duration_since(at) < LAYER_QUIET_AFTER)
            })
        };
        let Some(at) = self.layers.iter().position(|l| *l == rid) else { return wanted };
        if flowing(&rid) {
            return wanted;
        }
        let below = self.layers[..at].iter().rev().find(|l| flowing(l));
        let above = || self.layers[at + 1..].iter().find(|l| flowing(l));
        below.or_else(above).map_or(wanted, |l| Wanted::Layer(*l))
    }

    /// What a receiver gets of `wanted` within what its bandwidth allows.
    pub(super) fn capped(&self, wanted: Wanted, ceiling: Ceiling) -> Wanted {
        let top = match ceiling {
            Ceiling::None => return wanted,
            Ceiling::Off => return Wanted::Paused,
            Ceiling::Layer(top) => top,
        };
        let Some(&highest) = self.layers.get(top) else { return wanted };
        match wanted {
            Wanted::Layer(rid) if self.layers.iter().position(|l| *l == rid).is_some_and(|at| at > top) => {
                Wanted::Layer(highest)
            }
            Wanted::Any | Wanted::Fit(_) => Wanted::Layer(highest),
            other => other,
        }
    }

    /// Each layer's bitrate, lowest first: as measured, or as assumed until it is.
    pub(super) fn bitrates(&self) -> Vec<u64> {
        let measured = |rid: Option<Rid>| {
            self.rates.iter().find(|(layer, _)| *layer == rid).and_then(|(_, meter)| meter.bitrate).filter(|b| *b > 0)
        };
        if self.layers.is_empty() {
            return vec![measured(None).unwrap_or(ASSUMED_TRACK_BITRATE)];
        }
        let top = self.layers.len() - 1;
        self.layers
            .iter()
            .enumerate()
            .map(|(at, rid)| {
                let assumed = ASSUMED_LAYER_BITRATES[ASSUMED_LAYER_BITRATES.len().saturating_sub(top + 1) + at.min(2)];
                measured(Some(*rid)).unwrap_or(assumed)
            })
            .collect()
    }

    /// The layer (an index, lowest first) `wanted` asks for at most.
    pub(super) fn wanted_index(&self, wanted: &Wanted) -> Option<usize> {
        match self.resolve(wanted) {
            Wanted::Paused => None,
            Wanted::Layer(rid) => Some(self.layers.iter().position(|l| *l == rid).unwrap_or(0)),
            Wanted::Any | Wanted::Fit(_) => Some(self.layers.len().saturating_sub(1)),
        }
    }

    /// What `wanted` comes to of this track: a tile's height becomes the layer for it, the
    /// lowest at least nearly as high (a little upscaling does not show); the highest when none
    /// is. A layer not yet seen in a keyframe is taken to be half as high as the next above it,
    /// the highest 720 pixels, as the web client sends them.
    pub(super) fn resolve(&self, wanted: &Wanted) -> Wanted {
        let Wanted::Fit(tile) = *wanted else { return wanted.clone() };
        if self.layers.is_empty() {
            return Wanted::Any;
        }
        let top = self.layers.len() - 1;
        let height = |at: usize, rid: &Rid| {
            self.heights.iter().find(|(layer, _)| layer == rid).map_or(720 >> (top - at), |(_, h)| *h)
        };
        let fits = self.layers.iter().enumerate().find(|(at, rid)| height(*at, rid) * 5 >= tile * 4);
        Wanted::Layer(fits.map_or(self.layers[top], |(_, rid)| *rid))
    }
}

/// The height of a VP8 key frame's picture, from its header (RFC 6386 9.1); `None` for any other
/// frame.
pub(super) fn vp8_keyframe_height(data: &MediaData) -> Option<u32> {
    if data.params.spec().codec != str0m::format::Codec::Vp8 {
        return None;
    }
    let frame = &data.data;
    let keyframe = frame.first().is_some_and(|tag| tag & 1 == 0);
    if !keyframe || frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some(u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff))
}

/// What becomes of one frame for one receiver.
pub(super) enum Take {
    Frame,
    Nothing,
    /// Forwarded, but the receiver still waits for a keyframe.
    FrameButNeedsKeyframe,
    /// Of the layer wanted, but not a keyframe: nothing until one comes.
    NothingUntilKeyframe,
}

impl Receiving {
    pub(super) fn new(from: PersonId, track: &Published) -> Self {
        Self {
            from,
            from_mid: track.mid,
            kind: track.kind,
            state: if track.heard { Negotiation::ToOffer } else { Negotiation::Silent },
            wanted: Wanted::Any,
            ceiling: Ceiling::None,
            sent: Sent::default(),
            current: None,
            keyframe_seen: false,
            time_offset: 0,
            last_time: None,
        }
    }

    /// Whether this frame of the track is to be forwarded to this receiver; switches layer at
    /// a keyframe of the one wanted.
    pub(super) fn takes(&mut self, data: &MediaData, wanted: &Wanted) -> Take {
        // Every audio frame stands alone.
        let keyframe = self.kind == MediaKind::Audio || data.is_keyframe();
        if data.rid.is_none() {
            // Without simulcast every frame goes, but a receiver that started between keyframes
            // shows nothing until the next.
            if *wanted == Wanted::Paused {
                return Take::Nothing;
            }
            self.keyframe_seen |= keyframe;
            return if self.keyframe_seen { Take::Frame } else { Take::FrameButNeedsKeyframe };
        }
        let wanted = match wanted {
            Wanted::Paused => return Take::Nothing,
            Wanted::Any | Wanted::Fit(_) => self.current.or(data.rid),
            Wanted::Layer(rid) => Some(*rid),
        };
        if data.rid == self.current {
            // Until the wanted layer's keyframe comes, the current one goes on.
            return Take::Frame;
        }
        if data.rid != wanted {
            return Take::Nothing;
        }
        if !keyframe {
            return Take::NothingUntilKeyframe;
        }
        // The switch: the new layer's clock goes on from where the old one stopped, a frame on.
        if let Some(last) = self.last_time {
            let frame = i64::from(data.time.frequency().get() / 30);
            self.time_offset = last.numer() as i64 + frame - data.time.numer() as i64;
        }
        if self.current.is_some() {
            COUNTERS.media_layer_switch();
        }
        self.current = data.rid;
        Take::Frame
    }

    /// The media time the receiver is given for this frame.
    pub(super) fn time_of(&mut self, data: &MediaData) -> MediaTime {
        let time = MediaTime::new((data.time.numer() as i64 + self.time_offset).max(0) as u64, data.time.frequency());
        self.last_time = Some(time);
        time
    }
}
