//! One track as the router sees it: what its publisher sends (its layers, their sizes and
//! bitrates), what each receiver wants of it and is sent, and which of its packets goes to whom.
//! Pure: no str0m connection is touched here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;

use super::rewrite::Rewriter;
use crate::metrics::COUNTERS;
use crate::rooms::PersonId;

/// A publisher's track is asked for a keyframe at most this often, however many receivers ask.
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);

/// A video frame's length in RTP clock ticks (90 kHz), at the web client's 30 frames a second:
/// a receiver's clock goes on this far across a switch of layer.
const VIDEO_FRAME_TICKS: u32 = 90_000 / 30;

/// What a layer is taken to cost before it has been measured, lowest first: the web client's
/// limits for its camera's three layers.
const ASSUMED_LAYER_BITRATES: [u64; 3] = [150_000, 500_000, 1_700_000];
/// What a track without simulcast is taken to cost before it has been measured.
const ASSUMED_TRACK_BITRATE: u64 = 1_000_000;

/// How long a video packet sent is kept to answer the receiver's NACKs, in steps (str0m
/// starts its history afresh at each change, so a round trip that wavers must not change it
/// again and again). The longest is also the start, before the receiver first reports its round
/// trip. A second is also the ceiling of Janus's NACK queue.
const RESEND_WINDOWS: [Duration; 3] = [Duration::from_millis(250), Duration::from_millis(500), RESEND_WINDOW_LONGEST];
const RESEND_WINDOW_LONGEST: Duration = Duration::from_secs(1);
/// What the window holds on top of two round trips (a NACK, and a NACK of the resend): the
/// receiver's wait before it asks, and jitter.
const RESEND_MARGIN: Duration = Duration::from_millis(100);

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
    /// Of a track published here: the other nodes of the call that want layers of it, and which
    /// (`None`: the track, without simulcast).
    pub(super) relayed: Vec<(Arc<str>, Vec<Option<Rid>>)>,
    /// Of a track of another node's: the layers last asked of that node.
    pub(super) asked: Option<Vec<Option<Rid>>>,
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
    /// Without simulcast: packets are forwarded (they start at a keyframe, and stop while
    /// paused).
    pub(super) started: bool,
    /// A frame was begun and not finished: a pause waits for its end, so that the receiver is
    /// not left with half a frame (which it would count as loss).
    pub(super) in_frame: bool,
    /// The numbers its packets are sent with.
    pub(super) rewriter: Rewriter,
    /// Of video: how long its packets are kept to be sent again ([`RESEND_WINDOWS`]).
    pub(super) resend_window: Duration,
    /// Where its packets go in the receiver's connection, once open.
    pub(super) sending: Option<SendStream>,
    /// When a packet was last written to it (or it opened).
    pub(super) last_written: Option<Instant>,
    /// Its send stream is out of str0m while it carries nothing (`router::idle`).
    pub(super) set_aside: bool,
}

/// A receiver's send stream for one track, in its connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendStream {
    pub(super) ssrc: Ssrc,
    /// Its resends' stream (video).
    pub(super) rtx: Option<Ssrc>,
    /// The payload type the receiver agreed to for the track's codec.
    pub(super) pt: Pt,
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
    /// Agreed: packets are written to this mid.
    Open(Mid),
    /// Its publisher is gone, and it is to be stopped at the next offer.
    ToStop(Mid),
    /// Stopped in the offer that awaits an answer.
    Stopping(Mid),
}

impl Published {
    /// A track a publisher's offer adds, of which nothing has come yet.
    pub(super) fn new(mid: Mid, kind: MediaKind, layers: Vec<Rid>, now: Instant) -> Self {
        Self {
            mid,
            kind,
            unneeded_since: vec![None; layers.len()],
            layers,
            heights: Vec::new(),
            rates: Vec::new(),
            told_active: None,
            keyframe_requests: Vec::new(),
            published_at: now,
            resumed_at: None,
            heard: false,
            relayed: Vec::new(),
            asked: None,
        }
    }

    /// Whether a keyframe of layer `rid` may be asked for now: of video only, and at most every
    /// [`KEYFRAME_REQUEST_EVERY`] however many receivers ask.
    pub(super) fn keyframe_due(&self, rid: Option<Rid>, now: Instant) -> bool {
        let last = self.keyframe_requests.iter().find(|(layer, _)| *layer == rid);
        self.kind == MediaKind::Video
            && last.is_none_or(|(_, last)| now.duration_since(*last) >= KEYFRAME_REQUEST_EVERY)
    }

    pub(super) fn keyframe_asked(&mut self, rid: Option<Rid>, now: Instant) {
        match self.keyframe_requests.iter_mut().find(|(layer, _)| *layer == rid) {
            Some((_, last)) => *last = now,
            None => self.keyframe_requests.push((rid, now)),
        }
    }

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

/// The height of a VP8 key frame's picture, from its header (RFC 6386 9.1), when `payload` (an
/// RTP packet's) starts one.
pub(super) fn vp8_keyframe_height(payload: &[u8]) -> Option<u32> {
    let frame = payload.get(vp8_descriptor_len(payload)?..)?;
    let keyframe = frame.first().is_some_and(|tag| tag & 1 == 0);
    if !keyframe || frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some(u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff))
}

/// The length of the VP8 payload descriptor at the start of an RTP packet's payload (RFC 7741
/// 4.2), when the packet starts a frame (its first partition's first packet).
fn vp8_descriptor_len(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return None;
    }
    if first & 0x80 == 0 {
        return Some(1);
    }
    let extension = *payload.get(1)?;
    let picture = match extension & 0x80 {
        0 => 0,
        _ if payload.get(2)? & 0x80 != 0 => 2,
        _ => 1,
    };
    let tl0 = usize::from(extension & 0x40 != 0);
    let tid_key = usize::from(extension & 0x30 != 0);
    Some(2 + picture + tl0 + tid_key)
}

/// What becomes of one packet for one receiver.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Take {
    Packet,
    Nothing,
    /// Of the layer wanted, but not the start of a keyframe: nothing until one comes.
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
            started: false,
            in_frame: false,
            // Audio never changes source: one voice per track, no layers.
            rewriter: Rewriter::new(if track.kind == MediaKind::Video { VIDEO_FRAME_TICKS } else { 0 }),
            resend_window: RESEND_WINDOW_LONGEST,
            sending: None,
            last_written: None,
            set_aside: false,
        }
    }

    /// Whether the receiver's next offer changes this track: it is to be offered (video only
    /// once the receiver shows it) or stopped.
    pub(super) fn changes_next_offer(&self) -> bool {
        match self.state {
            Negotiation::ToOffer => !(self.kind == MediaKind::Video && self.wanted == Wanted::Paused),
            Negotiation::ToStop(_) => true,
            Negotiation::Silent | Negotiation::Offered(_) | Negotiation::Open(_) | Negotiation::Stopping(_) => false,
        }
    }

    /// The receiver reported its round trip: the window its resends need, if it is to change.
    /// Two round trips and a margin, as Janus sizes its NACK queue (one round trip and 100 ms,
    /// within 200 ms and a second); a longer window at once, a shorter one only once the round
    /// trip is well inside it.
    pub(super) fn resend_window_for(&self, rtt: Duration) -> Option<Duration> {
        let needed = rtt * 2 + RESEND_MARGIN;
        let longer = RESEND_WINDOWS.into_iter().find(|w| *w >= needed).unwrap_or(RESEND_WINDOW_LONGEST);
        let shorter = RESEND_WINDOWS.into_iter().find(|w| needed * 5 <= *w * 4).unwrap_or(RESEND_WINDOW_LONGEST);
        if longer > self.resend_window { Some(longer) } else { (shorter < self.resend_window).then_some(shorter) }
    }

    /// Whether a packet of the track's layer `rid` is to be forwarded to this receiver; switches
    /// layer at the start of a keyframe of the one wanted. `keyframe`: the packet starts a
    /// keyframe (every audio packet stands alone); `last`: it ends a frame (RTP's marker).
    pub(super) fn takes(&mut self, rid: Option<Rid>, keyframe: bool, last: bool, wanted: &Wanted) -> Take {
        let take = self.decide(rid, keyframe, wanted);
        if take == Take::Packet {
            self.in_frame = !last;
        }
        take
    }

    fn decide(&mut self, rid: Option<Rid>, keyframe: bool, wanted: &Wanted) -> Take {
        let of_current = if rid.is_none() { self.started } else { rid == self.current };
        if *wanted == Wanted::Paused {
            if self.in_frame && of_current {
                return Take::Packet;
            }
            // Taken up again at a keyframe, numbered on as a new source.
            if std::mem::take(&mut self.started) | self.current.take().is_some() {
                self.rewriter.switch();
            }
            return Take::Nothing;
        }
        if rid.is_none() {
            if !self.started && !keyframe {
                return Take::NothingUntilKeyframe;
            }
            if !self.started {
                self.started = true;
                self.rewriter.switch();
            }
            return Take::Packet;
        }
        let wanted = match wanted {
            Wanted::Any | Wanted::Fit(_) => self.current.or(rid),
            Wanted::Layer(layer) => Some(*layer),
            Wanted::Paused => None,
        };
        if of_current {
            // Until the wanted layer's keyframe comes, the current one goes on.
            return Take::Packet;
        }
        if rid != wanted {
            return Take::Nothing;
        }
        if !keyframe {
            return Take::NothingUntilKeyframe;
        }
        if self.current.is_some() {
            COUNTERS.media_layer_switch();
        }
        self.current = rid;
        self.rewriter.switch();
        Take::Packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first packet of a VP8 frame: a descriptor with a 15-bit picture id, TL0PICIDX and
    /// TID, then the frame's header.
    fn first_packet(keyframe: bool, height: u16) -> Vec<u8> {
        let mut packet = vec![0x90, 0xe0, 0x80 | 0x12, 0x34, 0x07, 0x20];
        let tag = if keyframe { 0x10 } else { 0x11 };
        packet.extend([tag, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02]);
        packet.extend(height.to_le_bytes());
        packet.extend([0; 20]);
        packet
    }

    #[test]
    fn a_keyframes_height_is_read_from_its_first_packet_and_nothing_from_others() {
        assert_eq!(vp8_keyframe_height(&first_packet(true, 360)), Some(360));
        assert_eq!(vp8_keyframe_height(&first_packet(false, 360)), None, "a delta frame");
        let mut later = first_packet(true, 360);
        later[0] &= !0x10;
        assert_eq!(vp8_keyframe_height(&later), None, "not the frame's first packet");
        assert_eq!(vp8_keyframe_height(&[0x90]), None, "too short");
        assert_eq!(vp8_keyframe_height(&[]), None);
    }

    #[test]
    fn a_resend_window_holds_two_round_trips_and_moves_only_by_clear_steps() {
        let published = Published::new(Mid::from("0"), MediaKind::Video, Vec::new(), Instant::now());
        let mut track = Receiving::new(PersonId::random(), &published);
        let ms = Duration::from_millis;
        assert_eq!(track.resend_window, ms(1000), "the longest before a round trip is known");
        assert_eq!(track.resend_window_for(ms(1)), Some(ms(250)), "on a LAN");
        track.resend_window = ms(250);
        assert_eq!(track.resend_window_for(ms(60)), None, "two round trips and the margin fit");
        assert_eq!(track.resend_window_for(ms(80)), Some(ms(500)), "260 ms do not");
        track.resend_window = ms(500);
        assert_eq!(track.resend_window_for(ms(70)), None, "240 ms: too near 250 to shrink to it");
        assert_eq!(track.resend_window_for(ms(40)), Some(ms(250)));
        assert_eq!(track.resend_window_for(ms(300)), Some(ms(1000)));
        track.resend_window = ms(1000);
        assert_eq!(track.resend_window_for(ms(2000)), None, "never past a second");
    }
}
