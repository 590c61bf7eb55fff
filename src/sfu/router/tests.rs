//! Browsers played by str0m peers, on a network that delivers every datagram at once: real
//! ICE, DTLS, SRTP and RTP between them and the router, and time that passes only when the
//! test says.

use super::idle::SET_ASIDE_AFTER;
use super::*;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Simulcast, SimulcastLayer};

const SERVER: &str = "192.0.2.1:3000";
/// The web port, which takes media over TCP.
const SERVER_TCP: &str = "192.0.2.1:443";
const STEP: Duration = Duration::from_millis(5);

struct Browser {
    id: PersonId,
    rtc: Rtc,
    address: SocketAddr,
    /// How it reaches the router: UDP, or TCP where its network drops UDP.
    proto: Protocol,
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
    /// Sends nothing for now (`replaceTrack(null)`).
    sends_paused: bool,
    /// How many of the router's offers it got.
    offers: usize,
}

fn addresses() -> MediaAddresses {
    MediaAddresses { udp: vec![SERVER.parse().unwrap()], tcp: vec![SERVER_TCP.parse().unwrap()] }
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
    /// No packet of its stream went missing since the frame before (by the RTP sequence).
    contiguous: bool,
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
    /// What the router has for other nodes, in order.
    to_nodes: Vec<(Arc<str>, ToNode)>,
    /// Its people's tracks changed since the other nodes were last told.
    tracks_changed: bool,
}

impl Call {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            router: CallRouter::new(addresses()).without_bandwidth_estimation(),
            browsers: Vec::new(),
            start: now,
            now,
            gone: Vec::new(),
            speakers: Vec::new(),
            ufrags_seen: Default::default(),
            to_nodes: Vec::new(),
            tracks_changed: false,
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

    /// A call of `n` browsers each publishing audio, past the size where every voice goes: only
    /// the loudest are forwarded (from 5 people on).
    fn past_all_voices(n: usize) -> Self {
        let mut call = Self::new();
        call.router = CallRouter::new(addresses()).without_bandwidth_estimation().with_all_voices_up_to(4);
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
        self.join_as(PersonId::random(), kind, layers)
    }

    /// As [`Call::join_with_layers`], as the person `id`.
    fn join_as(&mut self, id: PersonId, kind: MediaKind, layers: &[(&'static str, usize)]) -> usize {
        self.join_showing(id, kind, layers, None)
    }

    /// As [`Call::join_as`], saying at once which tiles it shows (or not).
    fn join_showing(
        &mut self,
        id: PersonId,
        kind: MediaKind,
        layers: &[(&'static str, usize)],
        tiles: Option<Vec<(PersonId, u32)>>,
    ) -> usize {
        self.join_over(Protocol::Udp, id, kind, layers, tiles)
    }

    /// As [`Call::join_showing`], over UDP or TCP (an active candidate: the browser connects).
    fn join_over(
        &mut self,
        proto: Protocol,
        id: PersonId,
        kind: MediaKind,
        layers: &[(&'static str, usize)],
        tiles: Option<Vec<(PersonId, u32)>>,
    ) -> usize {
        let n = self.browsers.len();
        let address: SocketAddr = format!("198.51.100.{}:5000", n + 1).parse().unwrap();
        let mut rtc = Rtc::new(self.now);
        let candidate = match proto {
            Protocol::Tcp => Candidate::builder().tcp().host(address).tcptype(TcpType::Active).build(),
            _ => Candidate::host(address, "udp"),
        };
        rtc.add_local_candidate(candidate.unwrap());
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
        let answer = self.router.join(id, offer, tiles, self.now).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        self.browsers.push(Browser {
            id,
            rtc,
            address,
            proto,
            sends: Some((mid, kind)),
            layers: layers.to_vec(),
            heard: HashMap::new(),
            keyframe_requests: 0,
            keyframes_asked: vec![None],
            level: -100,
            bad_answers: 0,
            active_layers: None,
            sends_paused: false,
            offers: 0,
        });
        n
    }

    /// A camera sending `LAYERS` and a viewer, both connected: the call, the camera, the viewer.
    fn camera_and_viewer() -> (Self, usize, usize) {
        let mut call = Call::new();
        let camera = call.join_with_layers(MediaKind::Video, &LAYERS);
        let viewer = call.join(MediaKind::Audio);
        call.run(Duration::from_secs(2));
        (call, camera, viewer)
    }

    /// Lets `duration` pass, each browser sending a frame of its track every 20 ms.
    fn run(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.now < until {
            self.step();
        }
    }

    /// One [`STEP`] of [`Call::run`].
    fn step(&mut self) {
        self.now += STEP;
        let since = self.now - self.start;
        if since.as_millis().is_multiple_of(20) {
            for b in &mut self.browsers {
                send_frame(b, self.now, since);
            }
        }
        self.exchange();
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
            // What every browser sent comes to the router as one batch, as datagrams queued up
            // for a call's task do.
            let mut batch = Vec::new();
            for at in 0..self.browsers.len() {
                for (proto, source, destination, contents) in poll_browser(&mut self.browsers[at]) {
                    moved = true;
                    if let Some(ufrag) = crate::sfu::demux::stun_ufrag(&contents) {
                        self.ufrags_seen.insert(ufrag.to_owned());
                    }
                    batch.push((proto, source, destination, contents));
                }
            }
            self.router.handle_receive_batch(now, batch);
            while let Some(output) = self.router.poll_output() {
                moved = true;
                match output {
                    RouterOutput::Transmit { proto, source, destination, contents } => {
                        let Some(b) = self.browsers.iter_mut().find(|b| b.address == destination) else { continue };
                        assert_eq!(proto, b.proto, "the router answers each browser the way it came");
                        let input = Input::Receive(
                            now,
                            Receive { proto, source, destination, contents: (&contents[..]).try_into().unwrap() },
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
                        b.offers += 1;
                        let answer = b.rtc.sdp_api().accept_offer(offer).unwrap();
                        self.router.answer(to, answer, now).unwrap();
                    }
                    RouterOutput::Gone(id) => self.gone.push(id),
                    RouterOutput::Speakers(speakers) => self.speakers.push(speakers),
                    RouterOutput::Layers { to, active, .. } => {
                        let b = self.browsers.iter_mut().find(|b| b.id == to).unwrap();
                        b.active_layers = Some(active.iter().map(|r| r.to_string()).collect());
                    }
                    RouterOutput::ToNode { to, message } => self.to_nodes.push((to, message)),
                    RouterOutput::TracksChanged => self.tracks_changed = true,
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
    if !b.rtc.is_connected() || b.sends_paused {
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
fn poll_browser(b: &mut Browser) -> Vec<(Protocol, SocketAddr, SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        match b.rtc.poll_output().unwrap() {
            Output::Timeout(_) => return out,
            Output::Transmit(t) => out.push((t.proto, t.source, t.destination, t.contents.to_vec())),
            Output::Event(Event::MediaData(data)) => b.heard.entry(data.mid).or_default().push(Heard {
                size: data.data.len(),
                keyframe: data.data.first().is_some_and(|first| first & 1 == 0),
                time: data.time.numer(),
                contiguous: data.contiguous,
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
fn a_browser_whose_network_drops_udp_connects_over_tcp_and_hears_and_is_heard() {
    let mut call = Call::new();
    call.join(MediaKind::Audio);
    let over_tcp = call.join_over(Protocol::Tcp, PersonId::random(), MediaKind::Audio, &[], None);
    call.run(Duration::from_secs(3));
    for at in 0..2 {
        let heard = call.counts(at);
        assert_eq!(heard.len(), 1, "browser {at} hears the other: {heard:?}");
        assert!(heard.values().all(|n| *n > 50), "browser {at} hears the other: {heard:?}");
    }
    // Every datagram the router sent it went back over TCP (the exchange checks each).
    assert!(call.gone.is_empty());
    assert_eq!(call.browsers[over_tcp].proto, Protocol::Tcp);
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
fn a_track_is_offered_to_the_others_only_once_its_media_comes() {
    let mut call = Call::new();
    let camera = call.join(MediaKind::Video);
    // A camera turned off before joining, as a webinar's listener does.
    call.browsers[camera].sends_paused = true;
    let viewer = call.join(MediaKind::Audio);
    call.run(Duration::from_secs(2));
    assert_eq!(call.browsers[camera].offers, 1, "the camera was offered the viewer's voice");
    assert_eq!(call.tracks_heard(camera, 50), 1);
    assert_eq!(call.browsers[viewer].offers, 0, "the viewer was offered a track nobody sends");
    call.browsers[camera].sends_paused = false;
    call.run(Duration::from_secs(2));
    assert_eq!(call.browsers[viewer].offers, 1);
    assert_eq!(call.tracks_heard(viewer, 20), 1, "the viewer heard {:?}", call.browsers[viewer].heard);
    assert!(call.gone.is_empty());
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
    let mut call = Call::past_all_voices(6);
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
    // The one who spoke last falls silent and is left out while another speaks; heard again,
    // its packets are numbered on from the last it was sent: the receiver sees no loss.
    call.browsers[3].level = -100;
    call.browsers[4].level = -5;
    call.run(Duration::from_secs(2));
    call.browsers[3].level = -1;
    call.run(Duration::from_secs(1));
    let heard = &call.browsers[0].heard;
    let times = heard.values().map(|frames| frames.windows(2).map(|p| p[1].time - p[0].time).max().unwrap_or(0));
    assert!(times.max().unwrap() > 48_000, "a voice was left out for a while");
    assert!(heard.values().all(|frames| frames.iter().skip(1).all(|h| h.contiguous)), "no gap in any voice's numbers");

    // In a call small enough, every voice goes.
    let mut small = Call::with_audio(4);
    small.run(Duration::from_secs(2));
    let before = small.counts(0);
    small.run(Duration::from_secs(1));
    assert_eq!(small.tracks_going_on(0, &before, 20), 3, "every other voice, speaking or not");
}

/// Of the send streams open in `at`'s connection, how many are out of str0m now, and how many
/// there are.
fn set_aside(call: &mut Call, at: usize) -> (usize, usize) {
    let id = call.browsers[at].id;
    let me = call.router.participants.iter_mut().find(|p| p.id == id).unwrap();
    let open: Vec<_> = me.receiving.iter().filter_map(|t| t.sending).collect();
    let out = open.iter().filter(|s| me.rtc.direct_api().stream_tx(&s.ssrc).is_none()).count();
    (out, open.len())
}

#[test]
fn a_voice_left_out_for_a_while_is_out_of_the_listeners_connection_and_comes_back_where_it_stopped() {
    let mut call = Call::past_all_voices(6);
    call.browsers[1].level = -20;
    call.browsers[3].level = -10;
    call.run(SET_ASIDE_AFTER + Duration::from_secs(2));
    assert_eq!(set_aside(&mut call, 0), (3, 5), "of five voices, the three silent ones are out");
    let ssrcs = |call: &Call| {
        let me = &call.router.participants[0];
        me.receiving.iter().map(|t| t.sending.map(|s| (s.ssrc, s.rtx))).collect::<Vec<_>>()
    };
    let before = ssrcs(&call);

    // One of the two falls silent long enough to be set aside, then speaks again.
    call.browsers[3].level = -127;
    call.run(SET_ASIDE_AFTER + Duration::from_secs(2));
    assert_eq!(set_aside(&mut call, 0), (4, 5));
    call.browsers[3].level = -5;
    let heard = call.counts(0);
    call.run(Duration::from_secs(1));
    assert_eq!(set_aside(&mut call, 0).0, 3, "back as soon as it speaks");
    assert_eq!(call.tracks_going_on(0, &heard, 20), 2, "the listener hears both who speak");
    assert_eq!(ssrcs(&call), before, "each voice on the stream it had");
    let heard = &call.browsers[0].heard;
    assert!(heard.values().all(|frames| frames.iter().skip(1).all(|h| h.contiguous)), "no gap in any voice's numbers");
}

#[test]
fn video_a_viewer_stops_showing_is_out_of_its_connection_until_shown_again_from_a_keyframe() {
    let (mut call, camera, viewer) = Call::camera_and_viewer();
    let (from, (from_mid, _)) = (call.browsers[camera].id, call.browsers[camera].sends.unwrap());
    let to = call.browsers[viewer].id;
    assert_eq!(set_aside(&mut call, viewer), (0, 1));

    call.router.set_wanted(to, from, from_mid, Wanted::Paused, call.now).unwrap();
    call.run(SET_ASIDE_AFTER + Duration::from_secs(2));
    assert_eq!(set_aside(&mut call, viewer), (1, 1), "the camera no tile shows is out");
    // The camera's browser is not: its viewer's voice goes on.
    assert_eq!(set_aside(&mut call, camera), (0, 1));

    call.router.set_wanted(to, from, from_mid, Wanted::Layer(Rid::from("m")), call.now).unwrap();
    let before = call.counts(viewer);
    call.run(Duration::from_secs(1));
    assert_eq!(set_aside(&mut call, viewer), (0, 1));
    assert_eq!(call.tracks_going_on(viewer, &before, 20), 1, "the viewer sees the camera again");
    let frames = call.browsers[viewer].heard.values().find(|f| f.iter().any(|h| h.size == 1_500)).unwrap();
    let back = frames.iter().position(|h| h.size == 1_500).unwrap();
    assert!(frames[back].keyframe && frames[back].contiguous, "from a keyframe, numbered on: {:?}", frames[back]);
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

/// Someone who joins with an offer, and then sends nothing: no datagram ever comes (a network
/// that drops UDP).
fn join_silently(call: &mut Call) -> PersonId {
    let mut rtc = Rtc::new(call.now);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let id = PersonId::random();
    call.router.join(id, offer, None, call.now).unwrap();
    id
}

#[test]
fn someone_whose_connection_never_comes_up_is_gone_within_15_seconds() {
    let mut call = Call::with_audio(2);
    call.run(Duration::from_secs(1));
    let silent = join_silently(&mut call);
    call.run(CONNECT_WITHIN - Duration::from_millis(100));
    assert!(call.router.contains(silent), "still waited for");
    call.run(Duration::from_millis(200));
    assert_eq!(call.gone, vec![silent]);
    assert!(!call.router.contains(silent));
}

#[test]
fn several_whose_connections_never_come_up_are_gone_at_once_and_the_others_carry_on() {
    let mut call = Call::with_audio(2);
    call.run(Duration::from_secs(1));
    let mut silent: Vec<PersonId> = (0..3).map(|_| join_silently(&mut call)).collect();
    let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
    call.run(CONNECT_WITHIN + Duration::from_secs(1));
    let mut gone = call.gone.clone();
    gone.sort_by_key(|id| id.to_string());
    silent.sort_by_key(|id| id.to_string());
    assert_eq!(gone, silent);
    assert_eq!(call.router.len(), 2);
    for (at, before) in before.iter().enumerate() {
        assert_eq!(call.tracks_going_on(at, before, 50), 1, "browser {at} goes on hearing the other");
    }
}

#[test]
fn someone_who_joins_is_told_who_speaks_even_when_it_has_not_changed() {
    let mut call = Call::with_audio(2);
    call.browsers[1].level = -20;
    call.run(Duration::from_secs(2));
    assert_eq!(call.speakers.last(), Some(&vec![call.browsers[1].id]));
    let told = call.speakers.len();
    call.join(MediaKind::Audio);
    call.run(Duration::from_secs(1));
    assert_eq!(call.speakers.len(), told + 1, "told again, for the newcomer");
    assert_eq!(call.speakers.last(), Some(&vec![call.browsers[1].id]));
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

#[test]
fn a_voice_a_host_muted_reaches_nobody_and_is_not_taken_for_a_speaker_whatever_its_browser_sends() {
    let mut call = Call::with_audio(3);
    call.browsers[1].level = -20;
    call.run(Duration::from_secs(2));
    let muted = call.browsers[1].id;
    call.router.silence(muted, true);
    let before: Vec<HashMap<Mid, usize>> = (0..3).map(|at| call.counts(at)).collect();
    call.run(Duration::from_secs(2));
    for at in [0, 2] {
        assert_eq!(call.tracks_going_on(at, &before[at], 0), 1, "browser {at} hears only the one not muted");
    }
    assert_eq!(call.tracks_going_on(1, &before[1], 50), 2, "the muted one still hears both others");
    assert_ne!(call.speakers.last(), Some(&vec![muted]), "nor is it the speaker");
    call.router.silence(muted, false);
    let before: Vec<HashMap<Mid, usize>> = (0..3).map(|at| call.counts(at)).collect();
    call.run(Duration::from_secs(2));
    for at in [0, 2] {
        assert_eq!(call.tracks_going_on(at, &before[at], 50), 2, "browser {at} hears it again");
    }
}

const LAYERS: [(&str, usize); 3] = [("l", 300), ("m", 1_500), ("h", 6_000)];

#[test]
fn sent_video_is_kept_for_resends_as_long_as_the_receivers_round_trip_needs() {
    let (mut call, _camera, viewer) = Call::camera_and_viewer();
    let id = call.browsers[viewer].id;
    let window = |call: &Call| {
        let me = call.router.participants.iter().find(|p| p.id == id).unwrap();
        let video = me.receiving.iter().find(|t| t.kind == MediaKind::Video && t.sending.is_some());
        video.map(|t| t.resend_window)
    };
    // The receiver's reports give the round trip (nothing, here) within the call's first seconds:
    // str0m spaces them at random around a second, so the first may come after the second.
    for _ in 0..30 {
        if window(&call) == Some(Duration::from_millis(250)) {
            break;
        }
        call.run(Duration::from_millis(100));
    }
    assert_eq!(
        window(&call),
        Some(Duration::from_millis(250)),
        "the shortest, once the round trip is known (track.rs)"
    );
    let before = call.counts(viewer);
    call.run(Duration::from_secs(3));
    assert_eq!(window(&call), Some(Duration::from_millis(250)));
    assert_eq!(call.tracks_going_on(viewer, &before, 50), 1, "video goes on after the change");
}

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
        assert!(pair[1].contiguous, "its sequence numbers run on across the switches: {pair:?}");
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
    let (mut call, publisher, receiver) = Call::camera_and_viewer();
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
    call.run(crate::sfu::allocator::UP_AFTER / 2);
    assert_eq!(last_size(&call, start), Some(300), "not up before the estimate held");
    call.run(crate::sfu::allocator::UP_AFTER);
    assert_eq!(last_size(&call, start), Some(6_000), "up once it held");

    call.router.estimated(to, 50_000, call.now);
    let start = call.browsers[receiver].heard[&mid].len();
    call.run(Duration::from_secs(1));
    assert_eq!(
        last_size(&call, start),
        Some(300),
        "too little for any layer: the only picture at its lowest all the same"
    );
}

#[test]
fn what_a_viewer_shows_holds_for_those_who_join_the_call_after_it_said_so() {
    let mut call = Call::new();
    let viewer = call.join(MediaKind::Audio);
    let (shown, hidden) = (PersonId::random(), PersonId::random());
    // The web client shows a tile once someone is in the call, often before their media joins.
    let to = call.browsers[viewer].id;
    call.router.show_tiles(to, vec![(shown, 180)], call.now).unwrap();
    call.join_as(shown, MediaKind::Video, &LAYERS);
    call.join_as(hidden, MediaKind::Video, &LAYERS);
    call.run(Duration::from_secs(3));
    let heard = &call.browsers[viewer].heard;
    assert_eq!(heard.len(), 1, "only the one shown is sent, the other is paused");
    let frames = heard.values().next().unwrap();
    assert!(frames.len() > 50 && frames.iter().all(|h| h.size == LAYERS[0].1), "the layer of a small tile");
}

#[test]
fn video_a_viewer_does_not_show_is_offered_only_once_it_shows_it() {
    let mut call = Call::new();
    let viewer = call.join(MediaKind::Audio);
    let to = call.browsers[viewer].id;
    // A page of the grid that shows nobody yet: someone joins off it.
    call.router.show_tiles(to, Vec::new(), call.now).unwrap();
    let camera = call.join_with_layers(MediaKind::Video, &LAYERS);
    call.join(MediaKind::Audio);
    call.run(Duration::from_secs(2));
    assert_eq!(call.tracks_heard(viewer, 20), 1, "the voice is heard");
    let offers = call.browsers[viewer].offers;
    assert_eq!(offers, 1, "only the voice was offered");

    // Paged to them: their video is offered, and comes.
    let from = call.browsers[camera].id;
    call.router.show_tiles(to, vec![(from, 180)], call.now).unwrap();
    call.run(Duration::from_secs(2));
    assert_eq!(call.browsers[viewer].offers, offers + 1);
    assert_eq!(call.tracks_heard(viewer, 20), 2, "the video comes once shown");

    // Paged away and back: the m-line stays, paused and resumed without another offer.
    call.router.show_tiles(to, Vec::new(), call.now).unwrap();
    call.run(Duration::from_secs(1));
    let before = call.counts(viewer);
    call.router.show_tiles(to, vec![(from, 180)], call.now).unwrap();
    call.run(Duration::from_secs(1));
    assert_eq!(call.browsers[viewer].offers, offers + 1);
    assert_eq!(call.tracks_going_on(viewer, &before, 10), 2, "its video and the voice");
}

#[test]
fn someone_who_joins_saying_what_it_shows_is_offered_only_that_video() {
    let mut call = Call::new();
    let shown = call.join_with_layers(MediaKind::Video, &LAYERS);
    let hidden = call.join_with_layers(MediaKind::Video, &LAYERS);
    call.run(Duration::from_secs(2));
    let shown_id = call.browsers[shown].id;
    let viewer = call.join_showing(PersonId::random(), MediaKind::Audio, &[], Some(vec![(shown_id, 180)]));
    call.run(Duration::from_secs(2));
    assert_eq!(call.browsers[viewer].offers, 1);
    assert_eq!(call.tracks_heard(viewer, 20), 1, "the one it shows, and not the other");
    // Its view comes to list the other too: offered then.
    let hidden_id = call.browsers[hidden].id;
    let to = call.browsers[viewer].id;
    call.router.show_tiles(to, vec![(shown_id, 180), (hidden_id, 180)], call.now).unwrap();
    call.run(Duration::from_secs(2));
    assert_eq!(call.browsers[viewer].offers, 2);
    assert_eq!(call.tracks_heard(viewer, 20), 2);
}

#[test]
fn a_receiver_whose_layer_is_not_sent_gets_the_best_one_that_is_and_goes_back_when_it_is() {
    let (mut call, publisher, receiver) = Call::camera_and_viewer();
    let (from, to) = (call.browsers[publisher].id, call.browsers[receiver].id);
    call.router.show(to, from, Some(720), call.now).unwrap();
    call.run(Duration::from_secs(1));
    let mid = *call.browsers[receiver]
        .heard
        .keys()
        .find(|m| call.browsers[receiver].heard[*m].iter().any(|h| h.size >= 300))
        .unwrap();
    let last_size = |call: &Call| call.browsers[receiver].heard[&mid].last().map(|h| h.size);
    assert_eq!(last_size(&call), Some(6_000), "the top layer, for a large tile");

    // As a browser that sends again after a pause: its lowest layer first.
    call.browsers[publisher].layers.truncate(1);
    call.run(crate::sfu::track::LAYER_QUIET_AFTER + Duration::from_millis(500));
    assert_eq!(last_size(&call), Some(300), "the layer that is sent, rather than nothing");

    call.browsers[publisher].layers = LAYERS.to_vec();
    call.run(Duration::from_secs(1));
    assert_eq!(last_size(&call), Some(6_000), "back up once the wanted layer comes");
}

#[test]
fn a_picture_sent_again_after_a_pause_comes_first_when_only_one_fits() {
    // Two publishers told apart by their frames' sizes; a receiver whose estimate fits one
    // picture at its lowest layer, no more.
    let mut call = Call::new();
    let ann = call.join_with_layers(MediaKind::Video, &LAYERS);
    let bob = call.join_with_layers(MediaKind::Video, &[("l", 301), ("m", 1_501), ("h", 6_001)]);
    let receiver = call.join(MediaKind::Audio);
    // Past a young connection's floor (every lowest layer), which would show both.
    call.run(crate::sfu::allocator::YOUNG_FOR);
    let to = call.browsers[receiver].id;
    for from in [call.browsers[ann].id, call.browsers[bob].id] {
        call.router.show(to, from, Some(180), call.now).unwrap();
    }
    call.router.estimated(to, 100_000, call.now);
    let sizes_during = |call: &mut Call, duration: Duration| {
        let counts = |call: &Call| {
            call.browsers[receiver].heard.iter().map(|(mid, h)| (*mid, h.len())).collect::<HashMap<_, _>>()
        };
        let before = counts(call);
        call.run(duration);
        let heard = &call.browsers[receiver].heard;
        let mut sizes: Vec<usize> = heard
            .iter()
            .flat_map(|(mid, h)| h[before.get(mid).copied().unwrap_or(0)..].iter().map(|h| h.size))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    };
    call.run(Duration::from_secs(1));
    let shown = sizes_during(&mut call, Duration::from_secs(1));
    assert!(shown == [300] || shown == [301], "one picture alone: {shown:?}");
    // The other stops sending for a while (its viewers see it another way), then sends again.
    let (other, other_size) = if shown == [300] { (bob, 301) } else { (ann, 300) };
    call.browsers[other].sends_paused = true;
    call.run(crate::sfu::track::QUIET_AFTER + Duration::from_secs(1));
    call.browsers[other].sends_paused = false;
    call.run(Duration::from_secs(2));
    assert_eq!(sizes_during(&mut call, Duration::from_secs(1)), vec![other_size], "the picture sent again, first");
}

#[test]
fn a_track_whose_publisher_stops_sending_is_neither_allocated_nor_probed_for() {
    // As in a call of two whose media goes browser to browser: the server's connections stay up,
    // idle, and must stay idle.
    let (mut call, publisher, receiver) = Call::camera_and_viewer();
    let (from, to) = (call.browsers[publisher].id, call.browsers[receiver].id);
    call.router.show(to, from, Some(720), call.now).unwrap();
    call.router.estimated(to, 5_000_000, call.now);
    assert!(call.router.probing(to).1 > 0, "probes for the layers shown: {:?}", call.router.probing(to));

    call.browsers[publisher].sends = None;
    call.run(crate::sfu::track::QUIET_AFTER + Duration::from_secs(1));
    call.router.estimated(to, 5_000_000, call.now);
    assert_eq!(call.router.probing(to), (0, 0), "nothing to probe for");
}

#[test]
fn layers_nobody_receives_are_paused_at_the_publisher_and_resumed_when_wanted() {
    let (mut call, publisher, receiver) = Call::camera_and_viewer();
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
    assert_eq!(call.browsers[publisher].active_layers, Some(vec!["l".to_owned(), "h".to_owned()]), "resumed at once");
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
        assert!(!call.router.handle_receive(call.now, Protocol::Udp, stranger, server, datagram));
    }
    call.run(Duration::from_secs(1));
    // The same from a participant's own address (a forged source): dropped, the call goes on.
    let victim = call.browsers[0].address;
    for datagram in junk {
        call.router.handle_receive(call.now, Protocol::Udp, victim, server, datagram);
    }
    let before: Vec<HashMap<Mid, usize>> = (0..2).map(|at| call.counts(at)).collect();
    call.run(Duration::from_secs(2));
    assert!(call.gone.is_empty() && call.router.len() == 2);
    for (at, before) in before.iter().enumerate() {
        assert_eq!(call.tracks_going_on(at, before, 50), 1, "browser {at} goes on hearing the other");
    }
}

/// Two nodes of a call (cascading): a router each, with its own browsers, and what each has for
/// the other handed over at once, as their connection would.
struct TwoNodes {
    a: Call,
    b: Call,
    /// Media packets that crossed from `a` to `b`, by layer.
    crossed: HashMap<Option<Rid>, usize>,
    /// Keyframes `b` asked of `a`.
    keyframes_asked: usize,
}

impl TwoNodes {
    fn new() -> Self {
        let mut b = Call::new();
        let a = Call::new();
        (b.start, b.now) = (a.start, a.now);
        Self { a, b, crossed: HashMap::new(), keyframes_asked: 0 }
    }

    fn run(&mut self, duration: Duration) {
        let until = self.a.now + duration;
        while self.a.now < until {
            self.a.step();
            self.b.step();
            self.cross();
        }
    }

    /// Hands what each router has for the other over, until neither has anything.
    fn cross(&mut self) {
        loop {
            let mut moved = false;
            for (from, to) in [("a", "b"), ("b", "a")] {
                let (sender, receiver) =
                    if from == "a" { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
                let now = receiver.now;
                if std::mem::take(&mut sender.tracks_changed) {
                    moved = true;
                    receiver.router.remote_tracks(from, sender.router.local_tracks(), now);
                }
                for (node, message) in std::mem::take(&mut sender.to_nodes) {
                    moved = true;
                    assert_eq!(&*node, to, "the router names the node of the track");
                    match message {
                        ToNode::Media { owner, mid, rid, packet } => {
                            if from == "a" {
                                *self.crossed.entry(rid).or_default() += 1;
                            }
                            receiver.router.relayed(from, [(owner, mid, rid, packet)], now);
                        }
                        ToNode::Want { owner, mid, layers } => {
                            receiver.router.node_wants(from, owner, mid, layers, now)
                        }
                        ToNode::Keyframe { owner, mid, rid } => {
                            if from == "b" {
                                self.keyframes_asked += 1;
                            }
                            receiver.router.node_needs_keyframe(owner, mid, rid, now);
                        }
                    }
                }
                receiver.exchange();
            }
            if !moved {
                break;
            }
        }
    }
}

#[test]
fn a_track_watched_by_two_on_another_node_crosses_once_in_the_layer_they_need() {
    let mut nodes = TwoNodes::new();
    let camera = nodes.a.join_with_layers(MediaKind::Video, &LAYERS);
    let first = nodes.b.join(MediaKind::Audio);
    let second = nodes.b.join(MediaKind::Audio);
    nodes.run(Duration::from_secs(2));
    let (from, (from_mid, _)) = (nodes.a.browsers[camera].id, nodes.a.browsers[camera].sends.unwrap());
    for viewer in [first, second] {
        let to = nodes.b.browsers[viewer].id;
        // LAYERS' heights are not in their frames: taken as 180, 360 and 720 pixels.
        nodes.b.router.show(to, from, Some(150), nodes.b.now).unwrap();
    }
    // Past the while a layer no longer needed goes on crossing.
    nodes.run(PAUSE_UNNEEDED_AFTER + Duration::from_secs(1));
    nodes.crossed.clear();
    let before: Vec<_> = [first, second].map(|v| nodes.b.counts(v)).into();
    nodes.run(Duration::from_secs(2));

    for (viewer, before) in [first, second].into_iter().zip(&before) {
        assert_eq!(
            nodes.b.tracks_going_on(viewer, before, 50),
            2,
            "each viewer on b gets the camera on a, and the other's voice"
        );
        let heard = nodes.b.browsers[viewer].heard.values().flatten().filter(|h| h.size >= 300).last().copied();
        assert_eq!(heard.map(|h| h.size), Some(300), "in the layer that fits its tile");
    }
    let low = nodes.crossed.get(&Some(Rid::from("l"))).copied().unwrap_or(0);
    assert_eq!(nodes.crossed.keys().collect::<Vec<_>>(), [&Some(Rid::from("l"))], "only the low layer crosses");
    // A frame every 20 ms: 100 in 2 s, each in one packet, crossing once for both viewers.
    assert!((95..=105).contains(&low), "{low} packets crossed for two viewers of 100 frames");
    // The tracks the two viewers publish crossed too, the other way: the camera's browser hears them.
    assert_eq!(nodes.a.tracks_heard(camera, 20), 2);

    // One of them wants it sharper: the high layer crosses from its keyframe on, the other
    // viewer keeps the low one.
    let asked = nodes.keyframes_asked;
    let to = nodes.b.browsers[first].id;
    nodes.b.router.set_wanted(to, from, from_mid, Wanted::Layer(Rid::from("h")), nodes.b.now).unwrap();
    nodes.run(Duration::from_secs(1));
    assert!(nodes.keyframes_asked > asked, "b asks a for a keyframe of the high layer");
    let last =
        |viewer: usize| nodes.b.browsers[viewer].heard.values().flatten().filter(|h| h.size >= 300).last().copied();
    let sharp = last(first).unwrap();
    assert_eq!(sharp.size, 6_000);
    assert_eq!(last(second).map(|h| h.size), Some(300));
    let switched = nodes.b.browsers[first].heard.values().flatten().find(|h| h.size == 6_000).unwrap();
    assert!(switched.keyframe, "the switch across the hop is at a keyframe");

    // Someone who joins on b later is offered the camera on a at once.
    let late = nodes.b.join(MediaKind::Audio);
    nodes.run(Duration::from_secs(1));
    let video = nodes.b.browsers[late].heard.values().flatten().filter(|h| h.size >= 300).count();
    assert!(video > 20, "the latecomer on b gets the camera on a: {video} frames");
}

#[test]
fn when_a_node_leaves_its_tracks_stop_and_nothing_more_is_sent_to_it() {
    let mut nodes = TwoNodes::new();
    let camera = nodes.a.join(MediaKind::Video);
    let viewer = nodes.b.join(MediaKind::Audio);
    nodes.run(Duration::from_secs(2));
    assert_eq!(nodes.b.tracks_heard(viewer, 20), 1, "the viewer on b gets the camera on a");
    assert_eq!(nodes.a.tracks_heard(camera, 20), 1, "and the camera's browser the viewer's voice");
    assert_eq!(nodes.b.router.remote_nodes(), [Arc::from("a")]);

    let now = nodes.b.now;
    nodes.b.router.node_left("a", now);
    nodes.a.router.node_left("b", now);
    nodes.run(Duration::from_secs(1));
    assert!(nodes.b.router.remote_nodes().is_empty());
    nodes.crossed.clear();
    nodes.run(Duration::from_secs(1));
    assert!(nodes.crossed.is_empty(), "nothing crosses to a node gone: {:?}", nodes.crossed);
    assert!(nodes.b.browsers[viewer].offers >= 2, "the viewer was offered the camera's track stopped");
}

#[test]
fn what_a_node_asked_over_a_connection_lost_is_asked_again_over_the_next() {
    let mut nodes = TwoNodes::new();
    nodes.a.join(MediaKind::Video);
    let viewer = nodes.b.join(MediaKind::Audio);
    nodes.run(Duration::from_secs(2));
    assert_eq!(nodes.b.tracks_heard(viewer, 20), 1, "the viewer on b gets the camera on a");

    // Two connections at once, and a's end of the one closed seen as the connection lost: a
    // stops relaying to b, which was told nothing.
    let now = nodes.a.now;
    nodes.a.router.node_left("b", now);
    nodes.run(Duration::from_secs(1));
    nodes.crossed.clear();
    nodes.run(Duration::from_secs(1));
    assert!(nodes.crossed.is_empty(), "nothing crosses while a holds b gone");

    // The connection kept comes up at both.
    nodes.a.tracks_changed = true;
    nodes.b.tracks_changed = true;
    for (call, other) in [(&mut nodes.a, "b"), (&mut nodes.b, "a")] {
        call.router.node_connected(other, call.now);
    }
    nodes.run(Duration::from_secs(1));
    let before = nodes.b.counts(viewer);
    nodes.run(Duration::from_secs(1));
    assert_eq!(nodes.b.tracks_going_on(viewer, &before, 40), 1, "the viewer gets the camera again");
}

#[test]
fn a_call_spanning_nodes_counts_everyone_in_it_for_the_loudest_voices_rule() {
    let mut nodes = TwoNodes::new();
    for call in [&mut nodes.a, &mut nodes.b] {
        call.router = CallRouter::new(addresses()).without_bandwidth_estimation().with_all_voices_up_to(4);
    }
    // Three on a, two on b: a call of five, though each node has fewer than the limit.
    for _ in 0..3 {
        nodes.a.join(MediaKind::Audio);
    }
    let listener = nodes.b.join(MediaKind::Audio);
    nodes.b.join(MediaKind::Audio);
    nodes.a.browsers[0].level = -20;
    nodes.run(Duration::from_secs(2));
    let before = nodes.b.counts(listener);
    nodes.run(Duration::from_secs(1));
    assert_eq!(nodes.b.tracks_going_on(listener, &before, 20), 1, "only the one who speaks, of the four others");
}
