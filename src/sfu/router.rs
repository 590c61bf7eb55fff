//! One call through the media server: a peer connection (a str0m [`Rtc`]) per participant, the
//! tracks each publishes, and the tracks of the others each receives.
//!
//! A browser offers its own tracks when it joins ([`CallRouter::join`]); the router answers. When
//! tracks come or go, the router offers each participant concerned the change and waits for its
//! answer ([`CallRouter::answer`]) before offering the next: the server drives renegotiation, so
//! offers never cross. Media is forwarded frame by frame (str0m's frame mode): str0m
//! depacketises what a publisher sends and packetises it again for each receiver, with its own
//! sequence numbers, NACK/RTX history, pacing and RTCP per peer, so a receiver's losses are
//! repaired from the server and never reach the publisher. A receiver that joins a track, or
//! loses frames of it, has the publisher asked for a keyframe, at most every
//! [`KEYFRAME_REQUEST_EVERY`].
//!
//! Datagrams are matched to a participant by their source address once its ICE has found it,
//! and before that by str0m's own check (the ICE user name of a STUN request).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use super::allocator::{self, Demand, Hysteresis};
use super::speakers::Speakers;
use super::track::{Ceiling, Negotiation, Published, RateMeter, Receiving, Sent, Take, Wanted, vp8_keyframe_height};
use crate::metrics::COUNTERS;
use crate::rooms::PersonId;

/// A publisher's track is asked for a keyframe at most this often, however many receivers ask.
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);
/// A participant whose connection is not up this long after joining is gone, as one whose ICE
/// dies is.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(15);
/// The most one participant may publish, in bits a second over a second: a camera's three layers
/// and a microphone take under 2.5 Mbit/s, a sharp shared screen a few more. Past it the
/// participant is cut off: what it sends costs everyone who receives it. Only media that passed
/// SRTP counts, so nobody can get someone else cut off by forging their address.
pub const PUBLISH_MAX: u64 = 20_000_000;
/// Each receiver's bandwidth estimate starts here, and grows as str0m probes for more.
pub const INITIAL_ESTIMATE: u64 = 1_000_000;
/// A layer nobody has needed for this long is paused at its publisher; one needed again is
/// resumed at once.
pub const PAUSE_UNNEEDED_AFTER: Duration = Duration::from_secs(5);
/// In a call of more people than its router's `all_voices_up_to`, only this many voices are
/// forwarded: the loudest, and those last told as speaking.
pub const VOICES_FORWARDED: usize = 3;
/// How often the loudest voices are ranked again, in a large call.
const RANK_VOICES_EVERY: Duration = Duration::from_millis(100);
/// How often str0m reports each track's figures (bytes, loss, NACKs).
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How often each receiver's layers are allocated again (the layers' bitrates move).
const ALLOCATE_EVERY: Duration = Duration::from_secs(1);

/// What the router has for its IO to do.
#[derive(Debug)]
pub enum RouterOutput {
    /// A datagram to send from the media port.
    Transmit { source: SocketAddr, destination: SocketAddr, contents: Vec<u8> },
    /// Tracks came or went: `to`'s browser is to answer this offer ([`CallRouter::answer`]).
    Offer { to: PersonId, offer: SdpOffer },
    /// The participant's connection ended (its ICE gave up, or str0m closed it): it is out of
    /// the call.
    Gone(PersonId),
    /// Who is speaking now, the loudest first (see [`Speakers`]).
    Speakers(Vec<PersonId>),
    /// Of `to`'s simulcast track `mid`, the layers someone receives (or may soon): the browser is
    /// to send those and pause the rest, which nobody needs.
    Layers { to: PersonId, mid: Mid, active: Vec<Rid> },
}

/// One participant's media, as the admin panel shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantStats {
    pub id: PersonId,
    pub connected: bool,
    /// Its connection's bandwidth estimate, bits a second.
    pub estimate: Option<u64>,
    /// What it publishes, all tracks, bits a second.
    pub publishing: Option<u64>,
    pub published: Vec<PublishedStats>,
    pub receiving: Vec<ReceivingStats>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishedStats {
    pub kind: &'static str,
    /// Its layers, lowest first (one, named `null`, without simulcast).
    pub layers: Vec<LayerStats>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerStats {
    pub rid: Option<String>,
    /// Bits a second, as received.
    pub bitrate: Option<u64>,
    /// Picture height, from its last keyframe.
    pub height: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceivingStats {
    pub from: PersonId,
    pub kind: &'static str,
    /// The layer it is sent now, if any.
    pub layer: Option<String>,
    /// Whether its frames go to the receiver now.
    pub sending: bool,
    /// Bits a second, as sent.
    pub bitrate: Option<u64>,
    /// The share lost on the way, as the receiver reported it (0 to 1).
    pub loss: Option<f32>,
}

fn kind_name(kind: MediaKind) -> &'static str {
    if kind == MediaKind::Audio { "audio" } else { "video" }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterError {
    NotInCall,
    AlreadyInCall,
    /// No offer of the router's awaits an answer from this participant.
    NoOfferPending,
    /// The participant receives no such track.
    NoSuchTrack,
    /// The session description could not be used.
    Sdp(String),
}

impl std::fmt::Display for RouterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouterError::NotInCall => f.write_str("not in the call"),
            RouterError::AlreadyInCall => f.write_str("already in the call"),
            RouterError::NoOfferPending => f.write_str("no offer awaits an answer"),
            RouterError::NoSuchTrack => f.write_str("no such track"),
            RouterError::Sdp(why) => write!(f, "session description refused: {why}"),
        }
    }
}

impl std::error::Error for RouterError {}

/// One call's media.
pub struct CallRouter {
    /// Where browsers reach the media port: each is a host candidate of every connection.
    addresses: Vec<SocketAddr>,
    participants: Vec<Participant>,
    /// The participant behind each source address its ICE has used.
    by_source: HashMap<SocketAddr, PersonId>,
    speakers: Speakers,
    /// The speakers last told, loudest first: served first by the allocator.
    speaking: Vec<PersonId>,
    outputs: VecDeque<RouterOutput>,
    next_allocation: Option<Instant>,
    /// Whether receivers' bandwidth is estimated (and their layers allocated within it).
    estimating: bool,
    /// In a call of more people than this, only the loudest few voices are forwarded.
    all_voices_up_to: usize,
    /// In such a call, whose voices are forwarded, and when that was decided.
    audible: Vec<PersonId>,
    audible_at: Option<Instant>,
}

struct Participant {
    id: PersonId,
    rtc: Rtc,
    /// The first part of its connection's ICE user name, chosen here.
    ufrag: String,
    /// When str0m next wants time to pass.
    timeout: Instant,
    /// When it joined: its connection must be up within [`CONNECT_WITHIN`].
    joined: Instant,
    connected: bool,
    /// The tracks it sends.
    published: Vec<Published>,
    /// The tracks of others it receives, or is to be offered.
    receiving: Vec<Receiving>,
    /// The router's offer that awaits its answer.
    pending: Option<SdpPendingOffer>,
    /// What it publishes, all tracks together.
    publishing: RateMeter,
    /// Its connection's bandwidth estimate, bits a second (str0m's, from TWCC feedback).
    estimate: Option<u64>,
    /// The layers its estimate allows, kept from flapping.
    allocation: Hysteresis,
}

impl CallRouter {
    pub fn new(addresses: Vec<SocketAddr>) -> Self {
        Self {
            addresses,
            participants: Vec::new(),
            by_source: HashMap::new(),
            speakers: Speakers::default(),
            speaking: Vec::new(),
            outputs: VecDeque::new(),
            next_allocation: None,
            estimating: true,
            all_voices_up_to: usize::MAX,
            audible: Vec::new(),
            audible_at: None,
        }
    }

    /// Above `people` in the call, only the loudest [`VOICES_FORWARDED`] voices are forwarded:
    /// nobody can follow more at once, and each costs every receiver its bandwidth and decoding.
    pub fn with_all_voices_up_to(mut self, people: usize) -> Self {
        self.all_voices_up_to = people;
        self
    }

    /// A router that sends each receiver what its tiles want, whatever its bandwidth: for tests
    /// of forwarding alone, on a simulated network whose timing the estimator would misread.
    pub fn without_bandwidth_estimation(mut self) -> Self {
        self.estimating = false;
        self
    }

    pub fn len(&self) -> usize {
        self.participants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn contains(&self, id: PersonId) -> bool {
        self.index(id).is_some()
    }

    /// The first part of the ICE user name of `id`'s connection: what the media port routes its
    /// first datagrams by (see [`super::demux`]).
    pub fn ufrag(&self, id: PersonId) -> Option<&str> {
        self.index(id).map(|at| self.participants[at].ufrag.as_str())
    }

    /// Someone joins with their browser's offer (its tracks to publish); returns the answer.
    /// The tracks of those already in the call are offered to them once connected.
    pub fn join(&mut self, id: PersonId, offer: SdpOffer, now: Instant) -> Result<SdpAnswer, RouterError> {
        if self.contains(id) {
            return Err(RouterError::AlreadyInCall);
        }
        // The server's address is known to the browser from its candidates: it needs no ICE
        // checks of its own (ICE lite, as media servers do).
        let credentials = IceCreds::new();
        let ufrag = credentials.ufrag.clone();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(credentials)
            .enable_bwe(self.estimating.then(|| Bitrate::bps(INITIAL_ESTIMATE)))
            .set_stats_interval(Some(STATS_EVERY))
            .build(now);
        for address in &self.addresses {
            if let Ok(candidate) = Candidate::host(*address, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| RouterError::Sdp(e.to_string()))?;
        let receiving = self
            .participants
            .iter()
            .flat_map(|p| p.published.iter().map(move |track| (p.id, track)))
            .map(|(from, track)| Receiving::new(from, track))
            .collect();
        self.participants.push(Participant {
            id,
            rtc,
            ufrag,
            timeout: now,
            joined: now,
            connected: false,
            published: Vec::new(),
            receiving,
            pending: None,
            publishing: RateMeter::default(),
            estimate: None,
            allocation: Hysteresis::default(),
        });
        self.drive(vec![self.participants.len() - 1], now);
        Ok(answer)
    }

    /// A participant's browser answers the router's offer.
    pub fn answer(&mut self, id: PersonId, answer: SdpAnswer, now: Instant) -> Result<(), RouterError> {
        let at = self.index(id).ok_or(RouterError::NotInCall)?;
        let me = &mut self.participants[at];
        let pending = me.pending.take().ok_or(RouterError::NoOfferPending)?;
        if let Err(e) = me.rtc.sdp_api().accept_answer(pending, answer) {
            // The offer is void: what it carried is offered again, in the next one.
            for track in &mut me.receiving {
                track.state = match track.state {
                    Negotiation::Offered(_) => Negotiation::ToOffer,
                    Negotiation::Stopping(mid) => Negotiation::ToStop(mid),
                    other => other,
                };
            }
            self.drive(vec![at], now);
            return Err(RouterError::Sdp(e.to_string()));
        }
        let mut opened = Vec::new();
        me.receiving.retain_mut(|track| match track.state {
            Negotiation::Offered(mid) => {
                track.state = Negotiation::Open(mid);
                opened.push((track.from, track.from_mid, track.current, track.wanted.clone()));
                true
            }
            Negotiation::Stopping(_) => false,
            Negotiation::ToOffer | Negotiation::Open(_) | Negotiation::ToStop(_) => true,
        });
        // A new receiver can show nothing until the next keyframe.
        for (from, mid, current, wanted) in opened {
            self.ask_keyframe(from, mid, current, &wanted, now);
        }
        self.drive(vec![at], now);
        Ok(())
    }

    /// What `receiver` wants of `from`'s track `from_mid` (its mid in `from`'s own session): a
    /// layer, anything, or nothing (a tile it does not show). The publisher is asked for a
    /// keyframe of a layer newly wanted, which the switch waits for.
    pub fn set_wanted(
        &mut self,
        receiver: PersonId,
        from: PersonId,
        from_mid: Mid,
        wanted: Wanted,
        now: Instant,
    ) -> Result<(), RouterError> {
        let at = self.index(receiver).ok_or(RouterError::NotInCall)?;
        let track = self.participants[at]
            .receiving
            .iter_mut()
            .find(|t| t.from == from && t.from_mid == from_mid)
            .ok_or(RouterError::NoSuchTrack)?;
        track.wanted = wanted.clone();
        let current = track.current;
        let layer = self.published_track(from, from_mid).map(|t| t.resolve(&wanted));
        if let Some(Wanted::Layer(rid)) = layer
            && current != Some(rid)
        {
            self.request_keyframe(from, from_mid, Some(rid), now);
        }
        Ok(())
    }

    /// Shows `from` to `receiver` in a tile `height` pixels high, or not at all: each of their
    /// video tracks is sent in the layer that fits, or paused. Audio is not concerned.
    pub fn show(
        &mut self,
        receiver: PersonId,
        from: PersonId,
        height: Option<u32>,
        now: Instant,
    ) -> Result<(), RouterError> {
        let at = self.index(receiver).ok_or(RouterError::NotInCall)?;
        let mids: Vec<Mid> = self.participants[at]
            .receiving
            .iter()
            .filter(|t| t.from == from && t.kind == MediaKind::Video)
            .map(|t| t.from_mid)
            .collect();
        let wanted = height.map_or(Wanted::Paused, Wanted::Fit);
        for mid in mids {
            self.set_wanted(receiver, from, mid, wanted.clone(), now)?;
        }
        self.allocate(at, now);
        Ok(())
    }

    /// Each participant's media: what they publish, what they receive, how fast, with what loss.
    pub fn stats(&self) -> Vec<ParticipantStats> {
        self.participants
            .iter()
            .map(|p| ParticipantStats {
                id: p.id,
                connected: p.connected,
                estimate: p.estimate,
                publishing: p.publishing.bitrate,
                published: p
                    .published
                    .iter()
                    .map(|track| {
                        let rids: Vec<Option<Rid>> = if track.layers.is_empty() {
                            vec![None]
                        } else {
                            track.layers.iter().copied().map(Some).collect()
                        };
                        let layers = rids
                            .into_iter()
                            .map(|rid| LayerStats {
                                rid: rid.map(|r| r.to_string()),
                                bitrate: track.rates.iter().find(|(l, _)| *l == rid).and_then(|(_, m)| m.bitrate),
                                height: rid.and_then(|r| track.heights.iter().find(|(l, _)| *l == r).map(|(_, h)| *h)),
                            })
                            .collect();
                        PublishedStats { kind: kind_name(track.kind), layers }
                    })
                    .collect(),
                receiving: p
                    .receiving
                    .iter()
                    .filter(|t| matches!(t.state, Negotiation::Open(_)))
                    .map(|t| ReceivingStats {
                        from: t.from,
                        kind: kind_name(t.kind),
                        layer: t.current.map(|r| r.to_string()),
                        sending: t.wanted != Wanted::Paused && t.ceiling != Ceiling::Off,
                        bitrate: t.sent.bitrate,
                        loss: t.sent.loss,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Everyone in the call.
    pub fn ids(&self) -> impl Iterator<Item = PersonId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    fn published_track(&self, from: PersonId, mid: Mid) -> Option<&Published> {
        self.index(from).and_then(|at| self.participants[at].published.iter().find(|t| t.mid == mid))
    }

    /// Someone leaves the call: the others stop receiving their tracks.
    pub fn leave(&mut self, id: PersonId, now: Instant) {
        let Some(at) = self.index(id) else { return };
        let mut gone = self.participants.remove(at);
        gone.rtc.disconnect();
        self.forget(id, now);
    }

    /// A datagram came to the media port; false if it belongs to nobody in this call.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, bytes: &[u8]) -> bool {
        let Ok(contents) = bytes.try_into() else { return false };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        let known = self.by_source.get(&source).and_then(|id| self.index(*id));
        let at = match known {
            Some(at) => at,
            None => match self.participants.iter().position(|p| p.rtc.accepts(&input)) {
                Some(at) => {
                    self.by_source.insert(source, self.participants[at].id);
                    at
                }
                None => return false,
            },
        };
        // A datagram that cannot be read is dropped: its source may be forged, and one bad
        // datagram must not end a call. What ends the connection for good, str0m says by no
        // longer being alive, which `drive` acts on.
        if let Err(e) = self.participants[at].rtc.handle_input(input) {
            tracing::debug!(id = %self.participants[at].id, "a media datagram refused: {e}");
        }
        self.drive(vec![at], now);
        true
    }

    /// Time passed: whoever's timeout is due is told.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_allocation.is_none_or(|next| next <= now) {
            self.next_allocation = Some(now + ALLOCATE_EVERY);
            for at in 0..self.participants.len() {
                self.allocate(at, now);
            }
            self.pause_unneeded_layers(now);
        }
        for p in &mut self.participants {
            if !p.connected && now.duration_since(p.joined) >= CONNECT_WITHIN {
                tracing::info!(id = %p.id, "media connection not up in time");
                p.rtc.disconnect();
                p.timeout = now;
            }
        }
        let due: Vec<usize> = (0..self.participants.len()).filter(|at| self.participants[*at].timeout <= now).collect();
        for &at in &due {
            let _ = self.participants[at].rtc.handle_input(Input::Timeout(now));
        }
        self.drive(due, now);
    }

    /// When [`CallRouter::handle_timeout`] is next wanted.
    pub fn next_timeout(&self) -> Option<Instant> {
        let allocation = self.next_allocation.filter(|_| !self.participants.is_empty());
        let connect_by = self.participants.iter().filter(|p| !p.connected).map(|p| p.joined + CONNECT_WITHIN);
        self.participants.iter().map(|p| p.timeout).chain(allocation).chain(connect_by).min()
    }

    pub fn poll_output(&mut self) -> Option<RouterOutput> {
        self.outputs.pop_front()
    }

    /// Shares `at`'s bandwidth estimate among the video tracks it shows (see [`allocator`]), and
    /// tells str0m what to probe for.
    fn allocate(&mut self, at: usize, now: Instant) {
        let Some(estimate) = self.participants[at].estimate else { return };
        let mut shown = Vec::new();
        let mut demands = Vec::new();
        for (index, track) in self.participants[at].receiving.iter().enumerate() {
            if track.kind != MediaKind::Video || !matches!(track.state, Negotiation::Open(_)) {
                continue;
            }
            let Some(published) = self.published_track(track.from, track.from_mid) else { continue };
            let Some(wanted) = published.wanted_index(&track.wanted) else { continue };
            let first = self.speaking.first() == Some(&track.from);
            shown.push(index);
            demands.push(Demand { layers: published.bitrates(), wanted, first });
        }
        let desired: u64 = demands.iter().map(|d| d.layers[d.wanted.min(d.layers.len() - 1)]).sum();
        let allocation = allocator::allocate(estimate, &demands);
        let me = &mut self.participants[at];
        let applied = me.allocation.update(allocation, now).clone();
        // str0m pads up to `minimum`: enough to show whether the next step up would fit, so that
        // the estimate can grow while the media sent is less than it (a sender that sends only
        // what the estimate allows never learns that more would go through).
        let (spent, step) = allocator::cost_and_next_step(&demands, &applied);
        let minimum = allocator::estimate_for(spent + step.unwrap_or(0));
        let desired = allocator::estimate_for(desired).max(minimum);
        for track in &mut me.receiving {
            track.ceiling = Ceiling::None;
        }
        for (index, layer) in shown.into_iter().zip(applied) {
            me.receiving[index].ceiling = layer.map_or(Ceiling::Off, Ceiling::Layer);
        }
        me.rtc.bwe().set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
    }

    /// Tells each publisher which layers of its simulcast tracks anyone receives, so that it stops
    /// encoding and sending the others (LiveKit calls this dynacast).
    fn pause_unneeded_layers(&mut self, now: Instant) {
        let mut told = Vec::new();
        for at in 0..self.participants.len() {
            for t in 0..self.participants[at].published.len() {
                let track = &self.participants[at].published[t];
                if track.layers.is_empty() {
                    continue;
                }
                let (from, mid) = (self.participants[at].id, track.mid);
                let mut needed = vec![false; track.layers.len()];
                for receiving in self.participants.iter().flat_map(|p| &p.receiving) {
                    if receiving.from != from || receiving.from_mid != mid {
                        continue;
                    }
                    let index = |rid: Rid| track.layers.iter().position(|l| *l == rid);
                    if let Some(current) = receiving.current.and_then(index) {
                        needed[current] = true;
                    }
                    let wanted = match receiving.state {
                        Negotiation::Open(_) => track.capped(track.resolve(&receiving.wanted), receiving.ceiling),
                        // About to receive it: the lowest layer, to start with.
                        Negotiation::ToOffer | Negotiation::Offered(_) => Wanted::Any,
                        Negotiation::ToStop(_) | Negotiation::Stopping(_) => Wanted::Paused,
                    };
                    match wanted {
                        Wanted::Layer(rid) => needed[index(rid).unwrap_or(0)] = true,
                        Wanted::Any | Wanted::Fit(_) => needed[0] = true,
                        Wanted::Paused => {}
                    }
                }
                let track = &mut self.participants[at].published[t];
                let mut active = Vec::with_capacity(needed.len());
                for (layer, needed) in needed.into_iter().enumerate() {
                    let since = &mut track.unneeded_since[layer];
                    *since = if needed { None } else { Some(since.unwrap_or(now)) };
                    active.push(since.is_none_or(|since| now.duration_since(since) < PAUSE_UNNEEDED_AFTER));
                }
                let unchanged = track.told_active.as_ref().map_or(active.iter().all(|a| *a), |told| *told == active);
                if !unchanged {
                    let rids = track.layers.iter().zip(&active).filter(|(_, a)| **a).map(|(rid, _)| *rid).collect();
                    track.told_active = Some(active);
                    told.push(RouterOutput::Layers { to: from, mid, active: rids });
                }
            }
        }
        self.outputs.extend(told);
    }

    /// A receiver's bandwidth estimate, as str0m's would say it.
    #[cfg(test)]
    fn estimated(&mut self, id: PersonId, bitrate: u64, now: Instant) {
        let at = self.index(id).expect("in the call");
        self.participants[at].estimate = Some(bitrate);
        self.allocate(at, now);
    }

    fn index(&self, id: PersonId) -> Option<usize> {
        self.participants.iter().position(|p| p.id == id)
    }

    /// Polls each participant in `work` until str0m wants time to pass, acting on what it says;
    /// those it writes frames to are polled in turn.
    fn drive(&mut self, mut work: Vec<usize>, now: Instant) {
        while let Some(at) = work.pop() {
            let mut events = Vec::new();
            let me = &mut self.participants[at];
            loop {
                match me.rtc.poll_output() {
                    Ok(Output::Timeout(when)) => {
                        me.timeout = when;
                        break;
                    }
                    Ok(Output::Transmit(t)) => self.outputs.push_back(RouterOutput::Transmit {
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.to_vec(),
                    }),
                    Ok(Output::Event(event)) => events.push(event),
                    Err(e) => {
                        tracing::info!(id = %me.id, "media connection ended: {e}");
                        me.rtc.disconnect();
                        break;
                    }
                }
            }
            if !self.participants[at].rtc.is_alive() {
                self.drop_participant(at, now);
                // Indices after it moved down by one.
                work.retain(|w| *w != at);
                work.iter_mut().filter(|w| **w > at).for_each(|w| *w -= 1);
                continue;
            }
            for event in events {
                self.on_event(at, event, now, &mut work);
            }
        }
        // What was published or has gone may concern anyone.
        for at in 0..self.participants.len() {
            self.offer_if_needed(at);
        }
        if let Some(speakers) = self.speakers.update(now) {
            self.speaking.clone_from(&speakers);
            self.outputs.push_back(RouterOutput::Speakers(speakers));
        }
    }

    fn on_event(&mut self, at: usize, event: Event, now: Instant, work: &mut Vec<usize>) {
        match event {
            Event::Connected => {
                self.participants[at].connected = true;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.participants[at].rtc.disconnect();
                work.push(at);
            }
            Event::MediaAdded(added) => {
                // Our own offers add tracks we send; a browser's, tracks it sends us.
                if matches!(added.direction, Direction::RecvOnly | Direction::SendRecv) {
                    // Its simulcast layers, as we receive them.
                    let layers = added.simulcast.map(|s| s.recv.iter().map(|layer| layer.rid).collect());
                    self.published(at, added.mid, added.kind, layers.unwrap_or_default());
                }
            }
            Event::MediaData(data) => self.forward(at, data, now, work),
            Event::MediaEgressStats(stats) => {
                let me = &mut self.participants[at];
                if let Some(track) = me.receiving.iter_mut().find(|t| t.state == Negotiation::Open(stats.mid)) {
                    COUNTERS.media_nacks(stats.nacks.saturating_sub(track.sent.nacks));
                    let elapsed = track.sent.at.map(|at| stats.timestamp.saturating_duration_since(at).as_secs_f64());
                    track.sent.bitrate = elapsed
                        .filter(|e| *e > 0.0)
                        .map(|e| (stats.bytes.saturating_sub(track.sent.bytes) as f64 * 8.0 / e) as u64);
                    track.sent = Sent {
                        bytes: stats.bytes,
                        nacks: stats.nacks,
                        loss: stats.loss,
                        at: Some(stats.timestamp),
                        ..track.sent
                    };
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.participants[at].estimate = Some(estimate.as_u64());
                COUNTERS.media_estimate(estimate.as_u64());
                self.allocate(at, now);
            }
            Event::KeyframeRequest(request) => {
                let me = &self.participants[at];
                let asked = me.receiving.iter().find(|t| t.state == Negotiation::Open(request.mid));
                if let Some(track) = asked {
                    let (from, mid, current, wanted) =
                        (track.from, track.from_mid, track.current, track.wanted.clone());
                    self.ask_keyframe(from, mid, current, &wanted, now);
                }
            }
            _ => {}
        }
    }

    /// A participant publishes a new track: everyone else is to be offered it.
    fn published(&mut self, at: usize, mid: Mid, kind: MediaKind, layers: Vec<Rid>) {
        let me = &mut self.participants[at];
        if me.published.iter().any(|t| t.mid == mid) {
            return;
        }
        let track = Published {
            mid,
            kind,
            unneeded_since: vec![None; layers.len()],
            layers,
            heights: Vec::new(),
            rates: Vec::new(),
            told_active: None,
            keyframe_requests: Vec::new(),
        };
        let from = me.id;
        for (other, p) in self.participants.iter_mut().enumerate() {
            if other != at {
                p.receiving.push(Receiving::new(from, &track));
            }
        }
        self.participants[at].published.push(track);
    }

    /// Writes a publisher's frame to everyone receiving that track.
    fn forward(&mut self, at: usize, data: MediaData, now: Instant, work: &mut Vec<usize>) {
        let from = self.participants[at].id;
        let me = &mut self.participants[at];
        me.publishing.add(data.data.len(), now);
        if me.publishing.bitrate.is_some_and(|rate| rate > PUBLISH_MAX) {
            tracing::warn!(id = %from, bitrate = me.publishing.bitrate, "publishes more than allowed: cut off");
            me.rtc.disconnect();
            return;
        }
        if let Some(level) = data.ext_vals.audio_level {
            self.speakers.heard(from, level, data.ext_vals.voice_activity.unwrap_or(true), now);
        }
        if data.ext_vals.audio_level.is_some() && !self.audible_now(from, now) {
            return;
        }
        if !data.contiguous {
            // Frames were lost on the way in: receivers need a fresh start.
            self.request_keyframe(from, data.mid, data.rid, now);
        }
        let Some(track) = self.participants[at].published.iter_mut().find(|t| t.mid == data.mid) else { return };
        match track.rates.iter_mut().find(|(layer, _)| *layer == data.rid) {
            Some((_, meter)) => meter.add(data.data.len(), now),
            None => {
                let mut meter = RateMeter::default();
                meter.add(data.data.len(), now);
                track.rates.push((data.rid, meter));
            }
        }
        if let (Some(rid), Some(height)) = (data.rid, vp8_keyframe_height(&data)) {
            match track.heights.iter_mut().find(|(layer, _)| *layer == rid) {
                Some((_, known)) => *known = height,
                None => track.heights.push((rid, height)),
            }
        }
        let publisher = track.clone();
        // The first frames of a layer may come before its keyframe can be asked for.
        let mut needs_keyframe = false;
        for (to, p) in self.participants.iter_mut().enumerate() {
            if to == at {
                continue;
            }
            for track in &mut p.receiving {
                let Negotiation::Open(mid) = track.state else { continue };
                if track.from != from || track.from_mid != data.mid {
                    continue;
                }
                let wanted = publisher.capped(publisher.resolve(&track.wanted), track.ceiling);
                match track.takes(&data, &wanted) {
                    Take::Frame => {}
                    Take::Nothing => continue,
                    Take::FrameButNeedsKeyframe => needs_keyframe = true,
                    Take::NothingUntilKeyframe => {
                        needs_keyframe = true;
                        continue;
                    }
                }
                let time = track.time_of(&data);
                let Some(writer) = p.rtc.writer(mid) else { continue };
                let Some(pt) = writer.match_params(data.params) else { continue };
                // Kept, so that the receiving browser can tell who is loud as well.
                let writer = match data.ext_vals.audio_level {
                    Some(level) => writer.audio_level(level, data.ext_vals.voice_activity.unwrap_or(true)),
                    None => writer,
                };
                if writer.write(pt, data.network_time, time, data.data.clone()).is_ok() && !work.contains(&to) {
                    work.push(to);
                }
            }
        }
        // Of audio, which has no keyframes, `request_keyframe` asks nothing.
        if needs_keyframe {
            self.request_keyframe(from, data.mid, data.rid, now);
        }
    }

    /// Whether `from`'s voice is forwarded now: always in a call small enough, else when among
    /// the loudest or those told as speaking.
    fn audible_now(&mut self, from: PersonId, now: Instant) -> bool {
        if self.participants.len() <= self.all_voices_up_to {
            return true;
        }
        if self.audible_at.is_none_or(|at| now.duration_since(at) >= RANK_VOICES_EVERY) {
            self.audible = self.speakers.loudest(VOICES_FORWARDED, now);
            for id in &self.speaking {
                if !self.audible.contains(id) {
                    self.audible.push(*id);
                }
            }
            self.audible_at = Some(now);
        }
        self.audible.contains(&from)
    }

    /// Asks a publisher for a keyframe a receiver needs: of the layer it gets or wants; of every
    /// layer when it wants any and has none yet (the first keyframe decides).
    fn ask_keyframe(&mut self, from: PersonId, mid: Mid, current: Option<Rid>, wanted: &Wanted, now: Instant) {
        let Some(track) = self.published_track(from, mid) else { return };
        let (layers, wanted) = (track.layers.clone(), track.resolve(wanted));
        let rids: Vec<Option<Rid>> = match &wanted {
            Wanted::Paused => Vec::new(),
            Wanted::Layer(rid) => vec![Some(*rid)],
            Wanted::Any if current.is_some() || layers.is_empty() => vec![current],
            Wanted::Any => layers.into_iter().map(Some).collect(),
            // Resolved above.
            Wanted::Fit(_) => Vec::new(),
        };
        for rid in rids {
            self.request_keyframe(from, mid, rid, now);
        }
    }

    fn request_keyframe(&mut self, from: PersonId, mid: Mid, rid: Option<Rid>, now: Instant) {
        let Some(at) = self.index(from) else { return };
        let publisher = &mut self.participants[at];
        let Some(track) = publisher.published.iter_mut().find(|t| t.mid == mid) else { return };
        let last = track.keyframe_requests.iter_mut().find(|(layer, _)| *layer == rid);
        if track.kind != MediaKind::Video
            || last.as_ref().is_some_and(|(_, last)| now.duration_since(*last) < KEYFRAME_REQUEST_EVERY)
        {
            return;
        }
        let Some(mut writer) = publisher.rtc.writer(mid) else { return };
        if writer.request_keyframe(rid, KeyframeRequestKind::Pli).is_ok() {
            COUNTERS.media_keyframe_request();
            match last {
                Some((_, last)) => *last = now,
                None => track.keyframe_requests.push((rid, now)),
            }
        }
    }

    /// Offers a participant the tracks that came or went, unless an offer of the router's still
    /// awaits its answer. A newcomer is offered the tracks already there at once, without waiting
    /// for its connection: the round trip of the offer overlaps ICE and DTLS.
    fn offer_if_needed(&mut self, at: usize) {
        let me = &mut self.participants[at];
        if me.pending.is_some() {
            return;
        }
        let mut api = me.rtc.sdp_api();
        for track in &mut me.receiving {
            match track.state {
                Negotiation::ToOffer => {
                    // The browser tells whose a track is by its stream, and which by its id.
                    let stream = track.from.to_string();
                    let id = format!("{stream}-{}", track.from_mid);
                    let mid = api.add_media(track.kind, Direction::SendOnly, Some(stream), Some(id), None);
                    track.state = Negotiation::Offered(mid);
                }
                Negotiation::ToStop(mid) => {
                    api.stop_media(mid);
                    track.state = Negotiation::Stopping(mid);
                }
                Negotiation::Offered(_) | Negotiation::Open(_) | Negotiation::Stopping(_) => {}
            }
        }
        if let Some((offer, pending)) = api.apply() {
            me.pending = Some(pending);
            self.outputs.push_back(RouterOutput::Offer { to: me.id, offer });
        }
    }

    /// Takes out a participant whose connection ended, and tells the IO.
    fn drop_participant(&mut self, at: usize, now: Instant) {
        let gone = self.participants.remove(at);
        self.outputs.push_back(RouterOutput::Gone(gone.id));
        self.forget(gone.id, now);
    }

    /// The others stop receiving what `id` published.
    fn forget(&mut self, id: PersonId, now: Instant) {
        self.by_source.retain(|_, owner| *owner != id);
        self.speakers.forget(id);
        for p in &mut self.participants {
            p.receiving.retain_mut(|track| {
                if track.from != id {
                    return true;
                }
                match track.state {
                    // Never in a session description: nothing to stop.
                    Negotiation::ToOffer => false,
                    Negotiation::Offered(mid) | Negotiation::Open(mid) | Negotiation::ToStop(mid) => {
                        track.state = Negotiation::ToStop(mid);
                        true
                    }
                    Negotiation::Stopping(_) => true,
                }
            });
        }
        let all = (0..self.participants.len()).collect();
        self.drive(all, now);
    }
}

#[cfg(test)]
mod tests {
    //! Browsers played by str0m peers, on a network that delivers every datagram at once: real
    //! ICE, DTLS, SRTP and RTP between them and the router, and time that passes only when the
    //! test says.

    use super::*;
    use str0m::format::Codec;
    use str0m::media::{Frequency, MediaTime, Simulcast, SimulcastLayer};

    const SERVER: &str = "192.0.2.1:3000";
    const STEP: Duration = Duration::from_millis(5);

    struct Browser {
        id: PersonId,
        rtc: Rtc,
        address: SocketAddr,
        /// The track it publishes.
        sends: Option<(Mid, MediaKind)>,
        /// Of a simulcast track: each layer's rid and frame size (so that a receiver can tell
        /// which it got).
        layers: Vec<(&'static str, usize)>,
        /// Frames received, by the mid they came on.
        heard: HashMap<Mid, Vec<Heard>>,
        keyframe_requests: usize,
        /// Layers to send a keyframe of next (`None`: the track without simulcast).
        keyframes_asked: Vec<Option<Rid>>,
        /// The audio level its audio frames say (RFC 6464: 0 the loudest).
        level: i8,
        /// How many of the router's offers it answers with an answer to something else.
        bad_answers: usize,
        /// The layers the router last told it to send (`None`: all).
        active_layers: Option<Vec<String>>,
    }

    /// An answer to another offer than the router's.
    fn unrelated_answer(now: Instant) -> SdpAnswer {
        let (mut offerer, mut answerer) = (Rtc::new(now), Rtc::new(now));
        let mut api = offerer.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, _) = api.apply().unwrap();
        answerer.sdp_api().accept_offer(offer).unwrap()
    }

    #[derive(Debug, Clone, Copy)]
    struct Heard {
        size: usize,
        keyframe: bool,
        time: u64,
    }

    /// A VP8 frame's first byte: its lowest bit clear on a key frame.
    const KEY: u8 = 0x10;
    const DELTA: u8 = 0x11;

    struct Call {
        router: CallRouter,
        browsers: Vec<Browser>,
        start: Instant,
        now: Instant,
        gone: Vec<PersonId>,
        speakers: Vec<Vec<PersonId>>,
        /// The user names of the STUN requests browsers sent (their first part).
        ufrags_seen: std::collections::HashSet<String>,
    }

    impl Call {
        fn new() -> Self {
            let now = Instant::now();
            Self {
                router: CallRouter::new(vec![SERVER.parse().unwrap()]).without_bandwidth_estimation(),
                browsers: Vec::new(),
                start: now,
                now,
                gone: Vec::new(),
                speakers: Vec::new(),
                ufrags_seen: Default::default(),
            }
        }

        /// A call of `n` browsers, each publishing audio.
        fn with_audio(n: usize) -> Self {
            let mut call = Self::new();
            for _ in 0..n {
                call.join(MediaKind::Audio);
            }
            call
        }

        /// A browser joins, publishing one track of `kind`.
        fn join(&mut self, kind: MediaKind) -> usize {
            self.join_with_layers(kind, &[])
        }

        /// A browser joins, publishing one track of `kind`, in these simulcast layers if any.
        fn join_with_layers(&mut self, kind: MediaKind, layers: &[(&'static str, usize)]) -> usize {
            let n = self.browsers.len();
            let address: SocketAddr = format!("198.51.100.{}:5000", n + 1).parse().unwrap();
            let mut rtc = Rtc::new(self.now);
            rtc.add_local_candidate(Candidate::host(address, "udp").unwrap());
            let mut api = rtc.sdp_api();
            let simulcast = (!layers.is_empty()).then(|| {
                let mut simulcast = Simulcast::new();
                for (rid, _) in layers {
                    simulcast.add_send_layer(SimulcastLayer::new(rid));
                }
                simulcast
            });
            let mid = api.add_media(kind, Direction::SendOnly, None, None, simulcast);
            let (offer, pending) = api.apply().unwrap();
            let id = PersonId::random();
            let answer = self.router.join(id, offer, self.now).unwrap();
            rtc.sdp_api().accept_answer(pending, answer).unwrap();
            self.browsers.push(Browser {
                id,
                rtc,
                address,
                sends: Some((mid, kind)),
                layers: layers.to_vec(),
                heard: HashMap::new(),
                keyframe_requests: 0,
                keyframes_asked: vec![None],
                level: -100,
                bad_answers: 0,
                active_layers: None,
            });
            n
        }

        /// Lets `duration` pass, each browser sending a frame of its track every 20 ms.
        fn run(&mut self, duration: Duration) {
            let until = self.now + duration;
            while self.now < until {
                self.now += STEP;
                let since = self.now - self.start;
                if since.as_millis().is_multiple_of(20) {
                    for b in &mut self.browsers {
                        send_frame(b, self.now, since);
                    }
                }
                self.exchange();
            }
        }

        /// Moves datagrams and offers until nothing is left to move.
        fn exchange(&mut self) {
            let now = self.now;
            for b in &mut self.browsers {
                let _ = b.rtc.handle_input(Input::Timeout(now));
            }
            self.router.handle_timeout(now);
            loop {
                let mut moved = false;
                for at in 0..self.browsers.len() {
                    for (source, destination, contents) in poll_browser(&mut self.browsers[at]) {
                        moved = true;
                        if let Some(ufrag) = crate::sfu::demux::stun_ufrag(&contents) {
                            self.ufrags_seen.insert(ufrag.to_owned());
                        }
                        self.router.handle_receive(now, source, destination, &contents);
                    }
                }
                while let Some(output) = self.router.poll_output() {
                    moved = true;
                    match output {
                        RouterOutput::Transmit { source, destination, contents } => {
                            let Some(b) = self.browsers.iter_mut().find(|b| b.address == destination) else { continue };
                            let input = Input::Receive(
                                now,
                                Receive {
                                    proto: Protocol::Udp,
                                    source,
                                    destination,
                                    contents: (&contents[..]).try_into().unwrap(),
                                },
                            );
                            b.rtc.handle_input(input).unwrap();
                        }
                        RouterOutput::Offer { to, offer } => {
                            // One the test joined without a browser answers nothing.
                            let Some(b) = self.browsers.iter_mut().find(|b| b.id == to) else { continue };
                            if b.bad_answers > 0 {
                                b.bad_answers -= 1;
                                let refused = self.router.answer(to, unrelated_answer(now), now);
                                assert!(matches!(refused, Err(RouterError::Sdp(_))), "{refused:?}");
                                continue;
                            }
                            let answer = b.rtc.sdp_api().accept_offer(offer).unwrap();
                            self.router.answer(to, answer, now).unwrap();
                        }
                        RouterOutput::Gone(id) => self.gone.push(id),
                        RouterOutput::Speakers(speakers) => self.speakers.push(speakers),
                        RouterOutput::Layers { to, active, .. } => {
                            let b = self.browsers.iter_mut().find(|b| b.id == to).unwrap();
                            b.active_layers = Some(active.iter().map(|r| r.to_string()).collect());
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        /// How many of the others' tracks browser `at` received at least `frames` frames of.
        fn tracks_heard(&self, at: usize, frames: usize) -> usize {
            self.browsers[at].heard.values().filter(|heard| heard.len() >= frames).count()
        }

        /// Frames received so far by browser `at`, by mid.
        fn counts(&self, at: usize) -> HashMap<Mid, usize> {
            self.browsers[at].heard.iter().map(|(mid, heard)| (*mid, heard.len())).collect()
        }

        /// How many of browser `at`'s tracks received more than `frames` frames since `before`.
        fn tracks_going_on(&self, at: usize, before: &HashMap<Mid, usize>, frames: usize) -> usize {
            let now = self.counts(at);
            now.iter().filter(|(mid, n)| **n > before.get(*mid).copied().unwrap_or(0) + frames).count()
        }
    }

    /// A frame of the browser's track (of each layer), a keyframe where one was asked for.
    fn send_frame(b: &mut Browser, now: Instant, since: Duration) {
        let Some((mid, kind)) = b.sends else { return };
        if !b.rtc.is_connected() {
            return;
        }
        let codec = if kind == MediaKind::Audio { Codec::Opus } else { Codec::Vp8 };
        let Some(pt) = b.rtc.codec_config().find(|p| p.spec().codec == codec).map(|p| p.pt()) else { return };
        let rate = if kind == MediaKind::Audio { 48_000 } else { 90_000 };
        let time = MediaTime::new(since.as_micros() as u64 * rate / 1_000_000, Frequency::new(rate as u32).unwrap());
        let layers: Vec<(Option<Rid>, usize)> = if b.layers.is_empty() {
            vec![(None, if kind == MediaKind::Audio { 80 } else { 1200 })]
        } else {
            b.layers
                .iter()
                .filter(|(rid, _)| b.active_layers.as_ref().is_none_or(|active| active.iter().any(|a| a == rid)))
                .map(|(rid, size)| (Some(Rid::from(*rid)), *size))
                .collect()
        };
        for (rid, size) in layers {
            let key = kind == MediaKind::Video && b.keyframes_asked.contains(&rid);
            let mut frame = vec![if key { KEY } else { DELTA }; size];
            if kind == MediaKind::Audio {
                frame.fill(1);
            }
            let Some(mut writer) = b.rtc.writer(mid) else { return };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            if kind == MediaKind::Audio {
                writer = writer.audio_level(b.level, b.level > -60);
            }
            writer.write(pt, now, time, frame).unwrap();
            if key {
                b.keyframes_asked.retain(|asked| *asked != rid);
            }
        }
    }

    /// Everything the browser has to send, and what it heard.
    fn poll_browser(b: &mut Browser) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match b.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return out,
                Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
                Output::Event(Event::MediaData(data)) => b.heard.entry(data.mid).or_default().push(Heard {
                    size: data.data.len(),
                    keyframe: data.data.first().is_some_and(|first| first & 1 == 0),
                    time: data.time.numer(),
                }),
                Output::Event(Event::KeyframeRequest(request)) => {
                    b.keyframe_requests += 1;
                    b.keyframes_asked.push(request.rid);
                }
                Output::Event(_) => {}
            }
        }
    }

    #[test]
    fn three_people_each_hear_the_two_others_through_the_router() {
        let mut call = Call::with_audio(3);
        call.run(Duration::from_secs(3));
        for at in 0..3 {
            assert_eq!(call.tracks_heard(at, 50), 2, "browser {at} heard {:?}", call.browsers[at].heard);
            // What the media port will route a browser's first datagrams by.
            let ufrag = call.router.ufrag(call.browsers[at].id).unwrap();
            assert!(call.ufrags_seen.contains(ufrag), "{ufrag} not in {:?}", call.ufrags_seen);
        }
        assert!(call.gone.is_empty());
    }

    #[test]
    fn someone_who_joins_later_is_offered_the_tracks_already_there_and_the_publisher_asked_for_a_keyframe() {
        let mut call = Call::new();
        let first = call.join(MediaKind::Video);
        call.join(MediaKind::Video);
        call.run(Duration::from_secs(2));
        let asked = call.browsers[first].keyframe_requests;
        let late = call.join(MediaKind::Video);
        call.run(Duration::from_secs(2));
        assert_eq!(call.tracks_heard(late, 20), 2, "the latecomer heard {:?}", call.browsers[late].heard);
        assert!(call.browsers[first].keyframe_requests > asked, "the publisher was asked for a keyframe");
        for at in 0..2 {
            assert_eq!(call.tracks_heard(at, 20), 2, "browser {at} heard {:?}", call.browsers[at].heard);
        }
    }

    #[test]
    fn an_answer_that_does_not_fit_is_refused_and_the_tracks_are_offered_again() {
        let mut call = Call::with_audio(2);
        call.run(Duration::from_secs(1));
        let late = call.join(MediaKind::Audio);
        call.browsers[late].bad_answers = 1;
        call.run(Duration::from_secs(2));
        assert_eq!(call.browsers[late].bad_answers, 0, "a bad answer was given");
        assert_eq!(call.tracks_heard(late, 50), 2, "the latecomer heard {:?}", call.browsers[late].heard);
        assert!(call.gone.is_empty());
    }

    #[test]
    fn when_someone_leaves_the_others_stop_receiving_them_and_go_on_with_the_rest() {
        let mut call = Call::with_audio(3);
        call.run(Duration::from_secs(2));
        let leaving = call.browsers[2].id;
        call.router.leave(leaving, call.now);
        call.browsers[2].sends = None;
        let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
        call.run(Duration::from_secs(2));
        for (at, before) in before.iter().enumerate() {
            assert_eq!(call.tracks_going_on(at, before, 50), 1, "browser {at} goes on hearing the one other left");
        }
        assert_eq!(call.router.len(), 2);
    }

    #[test]
    fn someone_whose_network_dies_is_gone_within_15_seconds_and_the_others_carry_on() {
        let mut call = Call::with_audio(3);
        call.run(Duration::from_secs(2));
        // Its browser is killed: nothing more comes from it, and nothing reaches it.
        let dead = call.browsers.remove(2);
        let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
        call.run(Duration::from_secs(15));
        assert_eq!(call.gone, vec![dead.id]);
        assert!(!call.router.contains(dead.id));
        for (at, before) in before.iter().enumerate() {
            assert_eq!(call.tracks_going_on(at, before, 50), 1, "browser {at} goes on hearing the one other left");
        }
    }

    #[test]
    fn in_a_large_call_only_the_loudest_voices_are_forwarded() {
        let mut call = Call::new();
        call.router =
            CallRouter::new(vec![SERVER.parse().unwrap()]).without_bandwidth_estimation().with_all_voices_up_to(4);
        for _ in 0..6 {
            call.join(MediaKind::Audio);
        }
        // Everyone sends audio; two of them speak.
        call.browsers[1].level = -20;
        call.browsers[2].level = -30;
        call.run(Duration::from_secs(2));
        let before = call.counts(0);
        call.run(Duration::from_secs(1));
        assert_eq!(call.tracks_going_on(0, &before, 20), 2, "the two who speak, not the three who do not");
        // A third speaks up, louder: heard at once.
        call.browsers[3].level = -10;
        call.run(Duration::from_millis(500));
        let before = call.counts(0);
        call.run(Duration::from_secs(1));
        assert_eq!(call.tracks_going_on(0, &before, 20), 3);

        // In a call small enough, every voice goes.
        let mut small = Call::with_audio(4);
        small.run(Duration::from_secs(2));
        let before = small.counts(0);
        small.run(Duration::from_secs(1));
        assert_eq!(small.tracks_going_on(0, &before, 20), 3, "every other voice, speaking or not");
    }

    #[test]
    fn a_publisher_that_floods_is_cut_off_and_the_others_carry_on() {
        let mut call = Call::with_audio(2);
        // 30 kB every 20 ms: 12 Mbit/s on each of two layers.
        let flooder = call.join_with_layers(MediaKind::Video, &[("a", 30_000), ("b", 30_000)]);
        let flooder = call.browsers[flooder].id;
        call.run(Duration::from_secs(3));
        assert_eq!(call.gone, vec![flooder]);
        assert!(!call.router.contains(flooder));
        let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
        call.run(Duration::from_secs(1));
        for (at, before) in before.iter().enumerate() {
            assert_eq!(call.tracks_going_on(at, before, 30), 1, "browser {at} goes on hearing the other");
        }
    }

    #[test]
    fn someone_whose_connection_never_comes_up_is_gone_within_15_seconds() {
        let mut call = Call::with_audio(2);
        call.run(Duration::from_secs(1));
        // An offer, and then nothing: no datagram ever comes (a network that drops UDP).
        let mut rtc = Rtc::new(call.now);
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _) = api.apply().unwrap();
        let silent = PersonId::random();
        call.router.join(silent, offer, call.now).unwrap();
        call.run(CONNECT_WITHIN - Duration::from_millis(100));
        assert!(call.router.contains(silent), "still waited for");
        call.run(Duration::from_millis(200));
        assert_eq!(call.gone, vec![silent]);
        assert!(!call.router.contains(silent));
    }

    #[test]
    fn the_others_are_told_who_speaks_from_the_audio_levels_of_the_packets() {
        let mut call = Call::with_audio(3);
        call.browsers[1].level = -20;
        call.run(Duration::from_secs(2));
        assert_eq!(call.speakers.last(), Some(&vec![call.browsers[1].id]));
        call.browsers[1].level = -100;
        call.browsers[2].level = -25;
        call.run(Duration::from_secs(2));
        assert_eq!(call.speakers.last(), Some(&vec![call.browsers[2].id]));
        assert!(call.speakers.len() <= 4, "told only as it changed: {:?}", call.speakers);
    }

    const LAYERS: [(&str, usize); 3] = [("l", 300), ("m", 1_500), ("h", 6_000)];

    #[test]
    fn a_receiver_gets_the_layer_it_wants_switching_only_at_a_keyframe_of_it_and_nothing_when_paused() {
        let mut call = Call::new();
        let publisher = call.join_with_layers(MediaKind::Video, &LAYERS);
        let receiver = call.join(MediaKind::Audio);
        call.run(Duration::from_secs(1));
        let (from, (from_mid, _)) = (call.browsers[publisher].id, call.browsers[publisher].sends.unwrap());
        let to = call.browsers[receiver].id;
        let mid = *call.browsers[receiver]
            .heard
            .keys()
            .find(|mid| call.browsers[receiver].heard[*mid].iter().any(|h| h.size >= 300))
            .expect("some video");

        for (rid, size) in [("h", 6_000), ("l", 300), ("m", 1_500)] {
            call.router.set_wanted(to, from, from_mid, Wanted::Layer(Rid::from(rid)), call.now).unwrap();
            let start = call.browsers[receiver].heard[&mid].len();
            call.run(Duration::from_secs(1));
            let heard = &call.browsers[receiver].heard[&mid][start..];
            let switched =
                heard.iter().position(|h| h.size == size).unwrap_or_else(|| panic!("no frame of {rid}: {heard:?}"));
            assert!(heard[switched].keyframe, "the switch to {rid} is at a keyframe");
            assert!(heard[switched..].iter().all(|h| h.size == size), "{rid} alone once switched");
            assert!(heard[..switched].iter().all(|h| h.size == heard[0].size), "one layer until then");
        }
        let all = &call.browsers[receiver].heard[&mid];
        for pair in all.windows(2) {
            let step = pair[1].time as i64 - pair[0].time as i64;
            assert!((1..=9_000).contains(&step), "the receiver's clock runs on smoothly: {pair:?}");
        }

        call.router.set_wanted(to, from, from_mid, Wanted::Paused, call.now).unwrap();
        call.run(Duration::from_millis(100));
        let paused = call.browsers[receiver].heard[&mid].len();
        call.run(Duration::from_secs(1));
        assert_eq!(call.browsers[receiver].heard[&mid].len(), paused, "nothing while paused");
        assert_eq!(
            call.router.set_wanted(to, from, Mid::from("nope"), Wanted::Any, call.now),
            Err(RouterError::NoSuchTrack)
        );
    }

    #[test]
    fn a_receiver_gets_what_its_bandwidth_allows_lower_at_once_higher_once_it_held() {
        // The layers cost 120 kbit/s, 600 kbit/s and 2.4 Mbit/s (a frame every 20 ms).
        let mut call = Call::new();
        let publisher = call.join_with_layers(MediaKind::Video, &LAYERS);
        let receiver = call.join(MediaKind::Audio);
        call.run(Duration::from_secs(2));
        let (from, to) = (call.browsers[publisher].id, call.browsers[receiver].id);
        call.router.show(to, from, Some(720), call.now).unwrap();
        let mid = *call.browsers[receiver]
            .heard
            .keys()
            .find(|m| call.browsers[receiver].heard[*m].iter().any(|h| h.size >= 300))
            .unwrap();
        let last_size = |call: &Call, since: usize| {
            let heard = &call.browsers[receiver].heard[&mid];
            heard[since..].last().map(|h| h.size)
        };
        call.run(Duration::from_secs(1));
        assert_eq!(last_size(&call, 0), Some(6_000), "no estimate yet: the layer the tile wants");

        call.router.estimated(to, 500_000, call.now);
        let start = call.browsers[receiver].heard[&mid].len();
        call.run(Duration::from_secs(1));
        assert_eq!(last_size(&call, start), Some(300), "500 kbit/s holds the lowest layer only, at once");

        call.router.estimated(to, 5_000_000, call.now);
        call.run(allocator::UP_AFTER / 2);
        assert_eq!(last_size(&call, start), Some(300), "not up before the estimate held");
        call.run(allocator::UP_AFTER);
        assert_eq!(last_size(&call, start), Some(6_000), "up once it held");

        call.router.estimated(to, 50_000, call.now);
        call.run(Duration::from_millis(200));
        let off = call.browsers[receiver].heard[&mid].len();
        call.run(Duration::from_secs(1));
        assert_eq!(call.browsers[receiver].heard[&mid].len(), off, "too little for any layer: nothing");
    }

    #[test]
    fn layers_nobody_receives_are_paused_at_the_publisher_and_resumed_when_wanted() {
        let mut call = Call::new();
        let publisher = call.join_with_layers(MediaKind::Video, &LAYERS);
        let receiver = call.join(MediaKind::Audio);
        call.run(Duration::from_secs(2));
        let (from, to) = (call.browsers[publisher].id, call.browsers[receiver].id);
        // LAYERS' heights are not in their frames: taken as 180, 360 and 720 pixels.
        call.router.show(to, from, Some(150), call.now).unwrap();
        call.run(PAUSE_UNNEEDED_AFTER - Duration::from_secs(1));
        assert_eq!(call.browsers[publisher].active_layers, None, "not paused before a while");
        call.run(Duration::from_secs(2));
        assert_eq!(call.browsers[publisher].active_layers, Some(vec!["l".to_owned()]));
        let mid = *call.browsers[receiver]
            .heard
            .keys()
            .find(|m| call.browsers[receiver].heard[*m].iter().any(|h| h.size >= 300))
            .unwrap();
        let start = call.browsers[receiver].heard[&mid].len();
        call.run(Duration::from_secs(1));
        assert!(call.browsers[receiver].heard[&mid][start..].iter().any(|h| h.size == 300), "the low layer goes on");

        call.router.show(to, from, Some(720), call.now).unwrap();
        call.run(Duration::from_millis(1100));
        assert_eq!(
            call.browsers[publisher].active_layers,
            Some(vec!["l".to_owned(), "h".to_owned()]),
            "resumed at once"
        );
        let start = call.browsers[receiver].heard[&mid].len();
        call.run(Duration::from_secs(1));
        assert_eq!(call.browsers[receiver].heard[&mid].last().map(|h| h.size), Some(6_000), "and received");
        assert!(call.browsers[receiver].heard[&mid].len() > start);

        // Nobody left to receive it: everything is paused, in time.
        call.router.leave(to, call.now);
        call.run(PAUSE_UNNEEDED_AFTER + Duration::from_secs(2));
        assert_eq!(call.browsers[publisher].active_layers, Some(vec![]));
    }

    #[test]
    fn datagrams_of_nobody_in_the_call_are_refused_and_harm_nothing() {
        let mut call = Call::new();
        call.join(MediaKind::Audio);
        call.join(MediaKind::Audio);
        let stranger: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let server: SocketAddr = SERVER.parse().unwrap();
        let junk: [&[u8]; 6] = [
            b"",
            &[0u8; 1],
            // An RTP header, a DTLS record, a STUN header, and bytes of nothing.
            &[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9, 9],
            &[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200],
            &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            &[0xff; 1500],
        ];
        for datagram in junk {
            assert!(!call.router.handle_receive(call.now, stranger, server, datagram));
        }
        call.run(Duration::from_secs(1));
        // The same from a participant's own address (a forged source): dropped, the call goes on.
        let victim = call.browsers[0].address;
        for datagram in junk {
            call.router.handle_receive(call.now, victim, server, datagram);
        }
        let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
        call.run(Duration::from_secs(2));
        assert!(call.gone.is_empty() && call.router.len() == 2);
        for (at, before) in before.iter().enumerate() {
            assert_eq!(call.tracks_going_on(at, before, 50), 1, "browser {at} goes on hearing the other");
        }
    }
}
