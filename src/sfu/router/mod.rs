//! One call through the media server: a peer connection (a str0m [`Rtc`]) per participant, the
//! tracks each publishes, and the tracks of the others each receives.
//!
//! A browser offers its own tracks when it joins ([`CallRouter::join`]); the router answers. When
//! tracks come (with their first media) or go, the router offers each participant concerned the
//! change and waits for its answer ([`CallRouter::answer`]) before offering the next: the server
//! drives renegotiation, so offers never cross. Media is forwarded packet by packet (str0m's RTP
//! mode): a publisher's RTP packets go to each receiver as they came, with their numbers moved
//! for that receiver (`super::rewrite`), so that switching layers or leaving packets out never
//! shows as a gap; str0m keeps a send history per receiver, answers its NACKs from it, and does
//! its RTCP, so a receiver's losses are repaired from the server and never reach the publisher.
//! A receiver that joins a track, or switches layer, has the publisher asked for a keyframe, at
//! most every [`KEYFRAME_REQUEST_EVERY`].
//!
//! Datagrams are matched to a participant by their source address once its ICE has found it,
//! and before that by str0m's own check (the ICE user name of a STUN request).
//!
//! Here: the connections, their negotiation and forwarding. Beside it: `layers` (which layers
//! each receiver gets, which publishers need not send, which voices go in a large call), `idle`
//! (send streams out of str0m while they carry nothing),
//! `cascade` (people of other nodes, whose tracks their nodes relay, and what this router relays
//! them), `stats` (what the admin panel shows), `tests` (the router against str0m peers).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, StreamTx, Vp8Descriptor, Vp8Patch};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use super::allocator::Hysteresis;
use super::relay::Packet;
use super::rewrite::{Numbers, Rewritten};
use super::speakers::Speakers;
pub use super::track::KEYFRAME_REQUEST_EVERY;
use super::track::{Negotiation, Published, RateMeter, Receiving, SendStream, Sent, Take, Wanted, vp8_keyframe_height};
use crate::metrics::COUNTERS;
use crate::rooms::PersonId;

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
/// The most video packets a stream sent keeps to answer NACKs from, whatever its window
/// (`track::RESEND_WINDOWS`): a second of 4 Mbit/s. str0m's default kept three seconds of each
/// stream, up to 1,000 packets.
const RESEND_PACKETS_AT_MOST: usize = 400;
/// Resends queued are dropped once they would be more than this share of what a stream sends
/// (str0m's default).
const RESEND_SHARE_AT_MOST: Option<f32> = Some(0.15);
/// How often each receiver's layers are allocated again (the layers' bitrates move).
const ALLOCATE_EVERY: Duration = Duration::from_secs(1);

/// How early a participant's str0m is woken: what it asks for within this is done at once.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// How many times one participant's str0m may ask for time already due within one turn of
/// [`CallRouter::drive`] before the turn ends: more than a burst of packets ever needs, and a
/// bound should it keep asking.
const DUE_NOW_AT_MOST: usize = 1_000;

/// What the router has for its IO to do.
#[derive(Debug)]
pub enum RouterOutput {
    /// A datagram to send: from the media port (UDP), or as a frame on the TCP connection
    /// from `destination`.
    Transmit { proto: Protocol, source: SocketAddr, destination: SocketAddr, contents: Vec<u8> },
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
    /// For another node's media server, carrying people of the same call (see `cascade`).
    ToNode { to: Arc<str>, message: ToNode },
    /// The tracks this router's people publish changed: each other node of the call is to be
    /// told them all again ([`CallRouter::local_tracks`]).
    TracksChanged,
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

/// Where browsers reach the media server: each address is a host candidate of every connection.
#[derive(Debug, Clone, Default)]
pub struct MediaAddresses {
    /// The media port's.
    pub udp: Vec<SocketAddr>,
    /// The web port's, which takes media over TCP too (ICE-TCP, RFC 6544), for networks that
    /// drop UDP: offered as passive candidates, the browser connecting.
    pub tcp: Vec<SocketAddr>,
}

impl MediaAddresses {
    /// Candidates on UDP only.
    pub fn udp(udp: Vec<SocketAddr>) -> Self {
        Self { udp, tcp: Vec::new() }
    }

    fn candidates(&self) -> impl Iterator<Item = Candidate> + '_ {
        let udp = self.udp.iter().filter_map(|a| Candidate::host(*a, "udp").ok());
        let tcp =
            self.tcp.iter().filter_map(|a| Candidate::builder().tcp().host(*a).tcptype(TcpType::Passive).build().ok());
        udp.chain(tcp)
    }
}

/// One call's media.
pub struct CallRouter {
    addresses: MediaAddresses,
    participants: Vec<Participant>,
    /// The participant behind each source its ICE has used (a UDP address, or a TCP connection's).
    by_source: HashMap<(Protocol, SocketAddr), PersonId>,
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
    /// Whether anyone may have tracks to offer or stop: set where tracks come and go and where
    /// an answer settles an offer, so that the datagrams in between do not look through every
    /// participant's every track (in a call of 50, 5,000 checks a datagram).
    negotiating: bool,
    /// Those packets were written to since they were last polled: polled at the end of the drive,
    /// or of the batch of datagrams while `holding`.
    written: Vec<PersonId>,
    holding: bool,
    /// The people of other nodes in the call, whose tracks come from their nodes (`cascade`).
    remote: Vec<RemotePublisher>,
    /// Those a host muted: their voice is not forwarded, whatever their browser sends.
    silenced: Vec<PersonId>,
}

struct Participant {
    id: PersonId,
    rtc: Rtc,
    /// The first part of its connection's ICE user name, chosen here.
    ufrag: String,
    /// When str0m next wants time to pass.
    timeout: Instant,
    /// The latest time its str0m was given: woken early (`TIMER_SLACK`), it may be ahead of
    /// the call's clock, and str0m's time never goes back.
    clock: Instant,
    /// When it joined: its connection must be up within [`CONNECT_WITHIN`].
    joined: Instant,
    connected: bool,
    /// How its media comes and goes (UDP, or TCP where its network drops UDP), and from where,
    /// as its ICE chose.
    transport: Option<(Protocol, SocketAddr)>,
    /// Whether a datagram of its connection came over UDP: then TCP is not answered.
    heard_over_udp: bool,
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
    /// What str0m was last asked to probe for, at least and at most (bits a second).
    probing: (u64, u64),
    /// The tiles it last said it shows ([`CallRouter::show_tiles`]); `None`: it has not said.
    tiles: Option<Vec<(PersonId, u32)>>,
}

impl Participant {
    /// What it wants of `from`'s track of `kind`, from its tiles: the layer that fits the tile,
    /// nothing without a tile, and anything before it has said what it shows.
    fn wants(&self, from: PersonId, kind: MediaKind) -> Wanted {
        match &self.tiles {
            Some(tiles) if kind == MediaKind::Video => tiles
                .iter()
                .find(|(shown, _)| *shown == from)
                .map_or(Wanted::Paused, |(_, height)| Wanted::Fit(*height)),
            _ => Wanted::Any,
        }
    }

    /// The time to give its str0m for `now`: never earlier than what it was given before.
    fn time(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }
}

impl CallRouter {
    pub fn new(addresses: MediaAddresses) -> Self {
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
            negotiating: false,
            written: Vec::new(),
            holding: false,
            remote: Vec::new(),
            silenced: Vec::new(),
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

    /// Forwards `id`'s voice no more (a host muted them), or again. Kept whether or not they are
    /// in the call yet.
    pub fn silence(&mut self, id: PersonId, silenced: bool) {
        self.silenced.retain(|m| *m != id);
        if silenced {
            self.silenced.push(id);
        }
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

    /// Someone joins with their browser's offer (its tracks to publish), and the tiles it shows
    /// if it said (as [`CallRouter::show_tiles`]); returns the answer. The tracks of those
    /// already in the call are offered to them at once, video only of those it shows.
    pub fn join(
        &mut self,
        id: PersonId,
        offer: SdpOffer,
        tiles: Option<Vec<(PersonId, u32)>>,
        now: Instant,
    ) -> Result<SdpAnswer, RouterError> {
        if self.contains(id) {
            return Err(RouterError::AlreadyInCall);
        }
        // The server's address is known to the browser from its candidates: it needs no ICE
        // checks of its own (ICE lite, as media servers do).
        let credentials = IceCreds::new();
        let ufrag = credentials.ufrag.clone();
        // Only what is forwarded is offered (the layers are read from VP8 keyframes): every
        // codec str0m knows, in every person's two m-lines, made a call of 25 an offer of 115 KB.
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_ice_lite(true)
            .set_local_ice_credentials(credentials)
            .enable_bwe(self.estimating.then(|| Bitrate::bps(INITIAL_ESTIMATE)))
            .set_stats_interval(Some(STATS_EVERY))
            .set_rtp_mode(true)
            .build(now);
        for candidate in self.addresses.candidates() {
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| RouterError::Sdp(e.to_string()))?;
        self.participants.push(Participant {
            id,
            rtc,
            ufrag,
            timeout: now,
            clock: now,
            joined: now,
            connected: false,
            transport: None,
            heard_over_udp: false,
            published: Vec::new(),
            receiving: Vec::new(),
            pending: None,
            publishing: RateMeter::default(),
            estimate: None,
            allocation: Hysteresis::default(),
            probing: (0, 0),
            tiles,
        });
        let newest = self.participants.len() - 1;
        let (others, me) = self.participants.split_at_mut(newest);
        let here = others.iter().flat_map(|p| p.published.iter().map(move |track| (p.id, track)));
        let elsewhere = self.remote.iter().flat_map(|r| r.published.iter().map(move |track| (r.owner, track)));
        let receiving = here
            .chain(elsewhere)
            .map(|(from, track)| Receiving { wanted: me[0].wants(from, track.kind), ..Receiving::new(from, track) })
            .collect();
        me[0].receiving = receiving;
        // The newcomer is told who speaks now, not only when that changes.
        self.speakers.tell_again();
        self.negotiating = true;
        self.drive(vec![self.participants.len() - 1], now);
        Ok(answer)
    }

    /// A participant's browser answers the router's offer.
    pub fn answer(&mut self, id: PersonId, answer: SdpAnswer, now: Instant) -> Result<(), RouterError> {
        let at = self.index(id).ok_or(RouterError::NotInCall)?;
        let me = &mut self.participants[at];
        let pending = me.pending.take().ok_or(RouterError::NoOfferPending)?;
        self.negotiating = true;
        let me = &mut self.participants[at];
        idle::take_all_back(&mut me.rtc, &mut me.receiving, now);
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
        let rtc = &mut me.rtc;
        me.receiving.retain_mut(|track| match track.state {
            Negotiation::Offered(mid) => {
                track.state = Negotiation::Open(mid);
                track.sending = send_stream(rtc, mid, track.kind, track.resend_window);
                track.last_written = Some(now);
                opened.push((track.from, track.from_mid, track.current, track.wanted.clone()));
                true
            }
            Negotiation::Stopping(_) => false,
            Negotiation::Silent | Negotiation::ToOffer | Negotiation::Open(_) | Negotiation::ToStop(_) => true,
        });
        // A new receiver can show nothing until the next keyframe.
        for (from, mid, current, wanted) in opened {
            self.ask_keyframe(from, mid, current, &wanted, now);
        }
        self.drive(vec![at], now);
        Ok(())
    }

    /// Everyone in the call.
    pub fn ids(&self) -> impl Iterator<Item = PersonId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    /// `from`'s track `mid`, whether `from` is here or on another node.
    fn published_track(&self, from: PersonId, mid: Mid) -> Option<&Published> {
        let published = match self.index(from) {
            Some(at) => &self.participants[at].published,
            None => &self.remote.iter().find(|r| r.owner == from)?.published,
        };
        published.iter().find(|t| t.mid == mid)
    }

    /// Someone leaves the call: the others stop receiving their tracks.
    pub fn leave(&mut self, id: PersonId, now: Instant) {
        let Some(at) = self.index(id) else { return };
        let mut gone = self.participants.remove(at);
        gone.rtc.disconnect();
        self.forget(id);
        if gone.published.iter().any(|t| t.heard) {
            self.outputs.push_back(RouterOutput::TracksChanged);
        }
        self.drive((0..self.participants.len()).collect(), now);
    }

    /// Datagrams that came together: each is given to its participant's str0m and polled, and
    /// those they carried packets for are polled once, after the last, rather than after each
    /// packet (each poll looks through every stream of the connection). What they send goes out
    /// after the batch either way.
    pub fn handle_receive_batch<D: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (Protocol, SocketAddr, SocketAddr, D)>,
    ) {
        self.holding_writes(now, |router| {
            for (proto, source, destination, datagram) in datagrams {
                router.handle_receive(now, proto, source, destination, datagram.as_ref());
            }
        });
    }

    /// Runs `work`, which writes packets to receivers, then polls each receiver written to once.
    fn holding_writes(&mut self, now: Instant, work: impl FnOnce(&mut Self)) {
        self.holding = true;
        work(self);
        self.holding = false;
        self.drive(Vec::new(), now);
    }

    /// The next participant packets were written to, to poll now (none while holding them for the
    /// end of a batch).
    fn next_written(&mut self) -> Option<usize> {
        while !self.holding {
            let id = self.written.pop()?;
            if let Some(at) = self.index(id) {
                return Some(at);
            }
        }
        None
    }

    /// A datagram came to the media port (or a frame on a TCP connection, `proto` says); false
    /// if it belongs to nobody in this call.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        let Ok(contents) = bytes.try_into() else { return false };
        let input = Input::Receive(now, Receive { proto, source, destination, contents });
        let known = self.by_source.get(&(proto, source)).and_then(|id| self.index(*id));
        let at = match known {
            Some(at) => at,
            None => match self.participants.iter().position(|p| p.rtc.accepts(&input)) {
                Some(at) => {
                    self.by_source.insert((proto, source), self.participants[at].id);
                    at
                }
                None => return false,
            },
        };
        let me = &mut self.participants[at];
        // A connection whose UDP works is not answered over TCP: its browser would otherwise
        // move its media to TCP once both paths answer (Chrome did, on loopback and on a LAN,
        // though UDP ranks higher), where one lost segment holds up everything after it.
        match proto {
            Protocol::Udp => me.heard_over_udp = true,
            _ if me.heard_over_udp => return true,
            _ => {}
        }
        let input = match input {
            Input::Receive(_, receive) => Input::Receive(me.time(now), receive),
            input => input,
        };
        // A datagram that cannot be read is dropped: its source may be forged, and one bad
        // datagram must not end a call. What ends the connection for good, str0m says by no
        // longer being alive, which `drive` acts on.
        if let Err(e) = me.rtc.handle_input(input) {
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
            self.ask_nodes_for_layers(now);
            self.set_aside_idle_streams(now);
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
            let me = &mut self.participants[at];
            let at_time = me.time(now);
            let _ = me.rtc.handle_input(Input::Timeout(at_time));
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

    fn index(&self, id: PersonId) -> Option<usize> {
        self.participants.iter().position(|p| p.id == id)
    }

    /// Polls each participant in `work` until str0m wants time to pass, acting on what it says;
    /// those it writes packets to are polled in turn.
    fn drive(&mut self, mut work: Vec<usize>, now: Instant) {
        while let Some(at) = work.pop().or_else(|| self.next_written()) {
            let mut events = Vec::new();
            let me = &mut self.participants[at];
            let mut due_now = 0;
            loop {
                match me.rtc.poll_output() {
                    // str0m asks for time after each packet it lets out, and most often for a
                    // wake-up less than a millisecond away (its pacer, its estimator): given
                    // here at once, so that a frame's packets go out together instead of one
                    // per turn of the call task's timer, whose grain is a millisecond. Measured
                    // in the media benchmark: docs/media.md.
                    Ok(Output::Timeout(when)) if when <= now + TIMER_SLACK && due_now < DUE_NOW_AT_MOST => {
                        due_now += 1;
                        let at_time = me.time(when);
                        let _ = me.rtc.handle_input(Input::Timeout(at_time));
                    }
                    Ok(Output::Timeout(when)) => {
                        me.timeout = when;
                        break;
                    }
                    Ok(Output::Transmit(t)) => self.outputs.push_back(RouterOutput::Transmit {
                        proto: t.proto,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
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
                self.drop_participant(at);
                // Indices after it moved down by one; and what it published has gone, which
                // concerns everyone left. Polled in this same loop: a drive within a drive
                // would leave this one's indices stale when the inner one drops someone too.
                work.retain(|w| *w != at);
                work.iter_mut().filter(|w| **w > at).for_each(|w| *w -= 1);
                for other in 0..self.participants.len() {
                    if !work.contains(&other) {
                        work.push(other);
                    }
                }
                continue;
            }
            for event in events {
                self.on_event(at, event, now, &mut work);
            }
        }
        // What was published or has gone may concern anyone.
        if std::mem::take(&mut self.negotiating) {
            for at in 0..self.participants.len() {
                self.offer_if_needed(at, now);
            }
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
                    self.published(at, added.mid, added.kind, layers.unwrap_or_default(), now);
                }
            }
            Event::RtpPacket(packet) => self.forward(at, packet, now),
            Event::PeerStats(stats) => {
                if let Some(pair) = stats.selected_candidate_pair {
                    self.participants[at].transport = Some((pair.protocol, pair.remote.addr));
                }
            }
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
                    // Its packets are kept as long as the receiver's resends need: their
                    // payloads were most of a participant's memory (docs/media.md).
                    let window = stats
                        .rtt
                        .filter(|_| track.kind == MediaKind::Video)
                        .and_then(|rtt| track.resend_window_for(rtt));
                    if let (Some(window), Some(sending)) = (window, track.sending) {
                        if let Some(stream) = me.rtc.direct_api().stream_tx(&sending.ssrc) {
                            keep_for_resends(stream, window);
                        }
                        track.resend_window = window;
                    }
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

    /// A participant's offer adds a track: everyone else is to be offered it once its media comes.
    fn published(&mut self, at: usize, mid: Mid, kind: MediaKind, layers: Vec<Rid>, now: Instant) {
        let me = &mut self.participants[at];
        if me.published.iter().any(|t| t.mid == mid) {
            return;
        }
        let track = Published::new(mid, kind, layers, now);
        let from = me.id;
        for (other, p) in self.participants.iter_mut().enumerate() {
            if other != at {
                let receiving = Receiving { wanted: p.wants(from, kind), ..Receiving::new(from, &track) };
                p.receiving.push(receiving);
            }
        }
        self.participants[at].published.push(track);
        self.negotiating = true;
    }

    /// A packet of a local publisher's: to the other nodes of the call that want its layer, and
    /// to everyone here receiving its track.
    fn forward(&mut self, at: usize, packet: RtpPacket, now: Instant) {
        let from = self.participants[at].id;
        let me = &mut self.participants[at];
        me.publishing.add(packet.payload.len(), now);
        if me.publishing.bitrate.is_some_and(|rate| rate > PUBLISH_MAX) {
            tracing::warn!(id = %from, bitrate = me.publishing.bitrate, "publishes more than allowed: cut off");
            me.rtc.disconnect();
            return;
        }
        // The packet's track and layer: its first packets name them, str0m keeps them by SSRC.
        let Some((mid, rid)) = me.rtc.direct_api().stream_rx(&packet.header.ssrc).map(|s| (s.mid(), s.rid())) else {
            return;
        };
        let Some(index) = self.participants[at].published.iter().position(|t| t.mid == mid) else { return };
        // Padding is no media: a track is offered once media of it comes.
        if !packet.payload.is_empty() {
            self.first_heard(at, index);
        }
        let ext = &packet.header.ext_vals;
        let arrived = packet.timestamp;
        // A muted voice goes on as padding does: numbered around, heard by nobody, not loud.
        let silenced = self.participants[at].published[index].kind == MediaKind::Audio && self.silenced.contains(&from);
        let packet = Packet {
            sequence: *packet.seq_no,
            time: packet.header.timestamp,
            marker: packet.header.marker,
            audio_level: if silenced { None } else { ext.audio_level },
            voice_activity: ext.voice_activity,
            video_orientation: ext.video_orientation,
            payload: if silenced { Arc::from([]) } else { packet.payload },
        };
        self.relay(at, index, rid, &packet);
        // Set aside while the others are written to (none of them is `at`), rather than copied
        // for each packet.
        let mut published = std::mem::take(&mut self.participants[at].published);
        let needs_keyframe = self.distribute(from, Some(at), &mut published[index], rid, packet, arrived, now);
        self.participants[at].published = published;
        // Of audio, which has no keyframes, `request_keyframe` asks nothing.
        if needs_keyframe {
            self.request_keyframe(from, mid, rid, now);
        }
    }

    /// Forwards a packet of `from`'s track (published here by participant `at`, or on another
    /// node) to everyone here receiving it, numbered for each (see [`super::rewrite`]). True if
    /// someone waits for a keyframe of its layer.
    #[allow(clippy::too_many_arguments)]
    fn distribute(
        &mut self,
        from: PersonId,
        at: Option<usize>,
        track: &mut Published,
        rid: Option<Rid>,
        packet: Packet,
        arrived: Instant,
        now: Instant,
    ) -> bool {
        let mid = track.mid;
        if let Some(level) = packet.audio_level {
            self.speakers.heard(from, level, packet.voice_activity.unwrap_or(true), now);
        }
        // Padding, and voices not forwarded in a large call: left out, numbered around.
        let left_out = packet.payload.is_empty() || (packet.audio_level.is_some() && !self.audible_now(from, now));
        let video = track.kind == MediaKind::Video;
        let descriptor = video.then(|| Vp8Descriptor::parse(&packet.payload).ok()).flatten();
        let keyframe = !video || descriptor.is_some_and(|d| d.starts_keyframe(&packet.payload));
        if !left_out {
            track.framed(now);
            match track.rates.iter_mut().find(|(layer, _)| *layer == rid) {
                Some((_, meter)) => meter.add(packet.payload.len(), now),
                None => {
                    let mut meter = RateMeter::default();
                    meter.add(packet.payload.len(), now);
                    track.rates.push((rid, meter));
                }
            }
        }
        if video
            && keyframe
            && let Some(rid) = rid
            && let Some(height) = vp8_keyframe_height(&packet.payload)
        {
            match track.heights.iter_mut().find(|(layer, _)| *layer == rid) {
                Some((_, known)) => *known = height,
                None => track.heights.push((rid, height)),
            }
        }
        let numbers = Numbers {
            sequence: packet.sequence,
            time: packet.time,
            picture: descriptor.and_then(|d| d.picture_id()),
            tl0: descriptor.and_then(|d| d.tl0_pic_idx()),
        };
        // Kept, so that the receiving browser can tell who is loud, and turn a phone's picture.
        let ext_vals = ExtensionValues {
            audio_level: packet.audio_level,
            voice_activity: packet.voice_activity,
            video_orientation: packet.video_orientation,
            ..Default::default()
        };
        let publisher: &Published = track;
        // The first packets of a layer may come before its keyframe can be asked for.
        let mut needs_keyframe = false;
        for (to, p) in self.participants.iter_mut().enumerate() {
            if Some(to) == at {
                continue;
            }
            for track in &mut p.receiving {
                if track.from != from || track.from_mid != mid {
                    continue;
                }
                let (Negotiation::Open(_), Some(sending)) = (track.state, track.sending) else { continue };
                if left_out {
                    track.rewriter.skip();
                    continue;
                }
                let wanted = publisher.capped(publisher.resolve(&track.wanted), track.ceiling);
                let wanted = publisher.available(wanted, now);
                match track.takes(rid, keyframe, packet.marker, &wanted) {
                    Take::Packet => {}
                    Take::Nothing => continue,
                    Take::NothingUntilKeyframe => {
                        needs_keyframe = true;
                        continue;
                    }
                }
                let Some(numbers) = track.rewriter.rewrite(numbers) else { continue };
                idle::take_back(&mut p.rtc, track, now);
                track.last_written = Some(now);
                let mut direct = p.rtc.direct_api();
                let Some(stream) = direct.stream_tx(&sending.ssrc) else { continue };
                let mut write =
                    RtpWrite::new(sending.pt, numbers.sequence.into(), numbers.time, arrived, packet.payload.clone())
                        .marker(packet.marker)
                        .ext_vals(ext_vals.clone())
                        .nackable(video);
                if let Some(patch) = descriptor.and_then(|d| vp8_patch(d, &numbers)) {
                    write = write.vp8_patch(patch);
                }
                stream.write_rtp(write);
                if !self.written.contains(&p.id) {
                    self.written.push(p.id);
                }
            }
        }
        needs_keyframe
    }

    /// Media of `at`'s track `index` comes: the first time, everyone else is to be offered it.
    fn first_heard(&mut self, at: usize, index: usize) {
        let me = &mut self.participants[at];
        let track = &mut me.published[index];
        if std::mem::replace(&mut track.heard, true) {
            return;
        }
        let (from, mid) = (me.id, track.mid);
        for receiving in self.participants.iter_mut().flat_map(|p| &mut p.receiving) {
            if receiving.from == from && receiving.from_mid == mid && receiving.state == Negotiation::Silent {
                receiving.state = Negotiation::ToOffer;
            }
        }
        self.negotiating = true;
        self.outputs.push_back(RouterOutput::TracksChanged);
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

    /// Asks `from`'s browser for a keyframe of `mid`'s layer `rid`, or their node if they are
    /// on another.
    fn request_keyframe(&mut self, from: PersonId, mid: Mid, rid: Option<Rid>, now: Instant) {
        let Some(at) = self.index(from) else {
            self.request_remote_keyframe(from, mid, rid, now);
            return;
        };
        let publisher = &mut self.participants[at];
        let Some(track) = publisher.published.iter_mut().find(|t| t.mid == mid) else { return };
        if !track.keyframe_due(rid, now) {
            return;
        }
        let mut direct = publisher.rtc.direct_api();
        let Some(stream) = direct.stream_rx_by_mid(mid, rid) else { return };
        stream.request_keyframe(KeyframeRequestKind::Pli);
        COUNTERS.media_keyframe_request();
        track.keyframe_asked(rid, now);
    }

    /// Offers a participant the tracks that came or went, unless an offer of the router's still
    /// awaits its answer. A newcomer is offered the tracks already there at once, without waiting
    /// for its connection: the round trip of the offer overlaps ICE and DTLS.
    fn offer_if_needed(&mut self, at: usize, now: Instant) {
        let me = &mut self.participants[at];
        if me.pending.is_some() {
            return;
        }
        if !me.receiving.iter().any(Receiving::changes_next_offer) {
            return;
        }
        idle::take_all_back(&mut me.rtc, &mut me.receiving, now);
        let mut api = me.rtc.sdp_api();
        for track in &mut me.receiving {
            match track.state {
                // Video it does not show is offered once it does (see `shown_changed`).
                Negotiation::ToOffer if !track.changes_next_offer() => {}
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
                Negotiation::Silent | Negotiation::Offered(_) | Negotiation::Open(_) | Negotiation::Stopping(_) => {}
            }
        }
        if let Some((offer, pending)) = api.apply() {
            me.pending = Some(pending);
            self.outputs.push_back(RouterOutput::Offer { to: me.id, offer });
        }
    }

    /// Takes out a participant whose connection ended, and tells the IO.
    fn drop_participant(&mut self, at: usize) {
        let gone = self.participants.remove(at);
        self.outputs.push_back(RouterOutput::Gone(gone.id));
        self.forget(gone.id);
        if gone.published.iter().any(|t| t.heard) {
            self.outputs.push_back(RouterOutput::TracksChanged);
        }
    }

    /// The others stop receiving what `id` published (offered at the end of the next drive).
    fn forget(&mut self, id: PersonId) {
        self.by_source.retain(|_, owner| *owner != id);
        self.stop_receiving(id, None);
    }
}

/// The VP8 descriptor's picture id and TL0PICIDX, as this receiver is to see them; `None` when
/// the descriptor has neither, or a value does not fit it (a 7-bit picture id).
fn vp8_patch(descriptor: Vp8Descriptor, numbers: &Rewritten) -> Option<Vp8Patch> {
    let mut patch = descriptor.patch();
    if let Some(picture) = numbers.picture {
        patch = patch.picture_id(picture);
    }
    if let Some(tl0) = numbers.tl0 {
        patch = patch.tl0_pic_idx(tl0);
    }
    patch.build().ok()
}

/// The stream a receiver's track is sent on in its connection, configured, and the payload type
/// the receiver agreed to for the track's codec.
fn send_stream(rtc: &mut Rtc, mid: Mid, kind: MediaKind, resend_window: Duration) -> Option<SendStream> {
    let codec = if kind == MediaKind::Audio { Codec::Opus } else { Codec::Vp8 };
    let agreed = rtc.media(mid)?.remote_pts().to_vec();
    let pt = rtc.codec_config().find(|p| p.spec().codec == codec && agreed.contains(&p.pt()))?.pt();
    let mut direct = rtc.direct_api();
    let stream = direct.stream_tx_by_mid(mid, None)?;
    configure_send_stream(stream, kind, resend_window);
    Some(SendStream { ssrc: stream.ssrc(), rtx: stream.rtx(), pt })
}

/// Makes a receiver's send stream unpaced, and of video, keeps its packets for `resend_window`.
fn configure_send_stream(stream: &mut StreamTx, kind: MediaKind, resend_window: Duration) {
    // Forwarded as it arrives, as Jitsi Videobridge and mediasoup do: the publisher's browser
    // paced it already, and the allocator keeps what is sent under the estimate. str0m's pacer,
    // at 1.1 times the estimate, held a receiver's frames behind one another: a p99 of 23 ms in
    // rooms of 4, seconds behind a slow link (measured: docs/media.md).
    stream.set_unpaced(true);
    if kind == MediaKind::Video {
        keep_for_resends(stream, resend_window);
    }
}

/// A video stream sent keeps its packets for `window`, to answer NACKs from (str0m empties what
/// it kept).
fn keep_for_resends(stream: &mut StreamTx, window: Duration) {
    stream.set_rtx_cache(RESEND_PACKETS_AT_MOST, window, RESEND_SHARE_AT_MOST);
}

mod cascade;
mod idle;
mod layers;
mod stats;
#[cfg(test)]
mod tests;

use cascade::RemotePublisher;
pub use cascade::ToNode;
pub use stats::{LayerStats, ParticipantStats, PublishedStats, ReceivingStats};
