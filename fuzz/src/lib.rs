//! The fuzz targets' bodies: each takes any bytes, drives one parser of network input as the
//! server does, and panics only when a rule the server relies on is broken. The targets in
//! `fuzz_targets/` call them under libFuzzer; `tests/regressions.rs` replays the inputs kept in
//! `seeds/` and `regressions/` under plain `cargo test`.

use arbitrary::{Arbitrary, Unstructured};
use noom::cluster::Envelope;
use noom::realtime::plain_ws::Frame;
use noom::requests::{self, Args, Request};
use noom::rooms::{Limits, Media, PersonId, Rooms};
use noom::signal::{CANDIDATE_MAX, SDP_MAX, Signal};
use noom::validate::{self, ApiError};
use socketioxide_core::Str;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

/// Every event a client may send, for inputs that pick one by number (new ones go at the end, so
/// that kept inputs keep picking the event they picked; a test holds it to `noom::events`).
pub const EVENTS: [&str; 31] = [
    "nickname",
    "enter_room",
    "join_room",
    "new_message",
    "offer",
    "answer",
    "ice",
    "user:rename",
    "room:join",
    "room:leave",
    "chat:send",
    "directory:get",
    "call:join",
    "call:media",
    "call:leave",
    "rtc:signal",
    "sfu:join",
    "sfu:answer",
    "sfu:view",
    "ice_servers",
    "room:host",
    "room:lock",
    "room:remove",
    "room:end",
    "room:hand",
    "call:mute",
    "call:ask",
    "room:waiting-room",
    "room:admit",
    "room:react",
    "room:password",
];

/// A Socket.IO packet as a WebSocket text frame carries it (after Engine.IO's `4`), through
/// socketioxide's parser and then [`requests::parse`], as the server reads an event. An input
/// whose first byte is below 0x20 is instead that event of [`EVENTS`] with the rest as its JSON
/// arguments, so that every event is reached at once.
pub fn event(data: &[u8]) {
    if let Some((&pick, rest)) = data.split_first()
        && pick < 0x20
    {
        let name = EVENTS[usize::from(pick) % EVENTS.len()];
        if let Ok(args) = serde_json::from_slice::<Args>(rest) {
            check_request(name, &args);
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parser = CommonParser;
    let state = ParserState::default();
    let Ok(packet) = parser.decode_str(&ParseConfig::default(), &state, Str::from(text.to_owned())) else {
        return;
    };
    if let PacketData::Event(mut value, _) | PacketData::BinaryEvent(mut value, _) = packet.inner {
        let Ok(name) = parser.read_event(&value).map(str::to_owned) else { return };
        if let Ok(args) = parser.decode_value::<Args>(&mut value, true) {
            check_request(&name, &args);
        }
    }
}

/// A request that passed its checks holds only valid values; a refusal is a well-formed answer.
fn check_request(name: &str, args: &Args) {
    let Some(result) = requests::parse(name, args) else {
        assert!(!EVENTS.contains(&name), "{name} is an event");
        return;
    };
    match result {
        Ok(request) => check_valid(&request),
        Err(error) => check_refusal(&error),
    }
}

fn check_valid(request: &Request) {
    let room = |room: &str| assert_eq!(validate::room_name(room).as_deref(), Ok(room), "a checked room name");
    let tiles = |tiles: &[(String, u32)]| {
        assert!(tiles.len() <= noom::requests::VIEW_TILES_MAX);
        assert!(tiles.iter().all(|(_, h)| (1..=noom::requests::TILE_HEIGHT_MAX).contains(h)));
    };
    let nickname = |name: &str| assert_eq!(validate::nickname(name).as_deref(), Ok(name), "a checked nickname");
    let text = |text: &str| assert!(validate::message(text).is_ok(), "a checked message");
    match request {
        Request::Nickname { nickname: n } | Request::Rename { nickname: n } => nickname(n),
        Request::EnterRoom { room: r }
        | Request::CallJoin { room: r, .. }
        | Request::CallMedia { room: r, .. }
        | Request::CallLeave { room: r } => room(r),
        Request::NewMessage { text: t, room: r } | Request::Send { room: r, text: t } => {
            room(r);
            text(t);
        }
        Request::SeedSignal { signal, room: r, .. } => {
            room(r);
            let size = serde_json::to_vec(signal).expect("a signal serialises").len();
            assert!(size <= SDP_MAX + 64, "a relayed seed signal of {size} bytes");
        }
        Request::Join { room: r, nickname: n, .. } => {
            room(r);
            if let Some(n) = n {
                nickname(n);
            }
        }
        Request::Leave { room: r } => {
            if let Some(r) = r {
                room(r);
            }
        }
        Request::Directory | Request::IceServers => {}
        Request::Signal { room: r, signal, .. } => {
            room(r);
            match signal {
                Signal::Description(d) => assert!(d.sdp.len() <= SDP_MAX),
                Signal::Candidate(Some(c)) => {
                    assert!(serde_json::to_vec(c).expect("a candidate serialises").len() <= CANDIDATE_MAX);
                }
                Signal::Candidate(None) => {}
            }
        }
        Request::SfuJoin { room: r, sdp, tiles: shown } => {
            room(r);
            assert!(!sdp.is_empty() && sdp.len() <= SDP_MAX, "an sdp of {} bytes", sdp.len());
            if let Some(shown) = shown {
                tiles(shown);
            }
        }
        Request::SfuAnswer { room: r, sdp } => {
            room(r);
            assert!(!sdp.is_empty() && sdp.len() <= SDP_MAX, "an sdp of {} bytes", sdp.len());
        }
        Request::SfuView { room: r, tiles: shown, people } => {
            room(r);
            tiles(shown);
            assert!(people.len() <= noom::requests::VIEW_TILES_MAX);
        }
        Request::Meeting { room: r, .. } => room(r),
    }
}

fn check_refusal(error: &ApiError) {
    assert!(!error.message.is_empty(), "a refusal says why");
    let json = serde_json::to_value(error).expect("a refusal serialises");
    assert!(json["error"]["code"].is_string());
}

/// What can happen to the room state, in the fuzzer's words.
#[derive(Debug, Arbitrary)]
enum Action {
    Connect(u8),
    Enter(u8, u8, bool),
    Leave(u8, u8),
    Disconnect(u8),
    Rename(u8, bool),
    JoinCall(u8, u8, bool, bool, bool),
    SetMedia(u8, u8, bool),
    LeaveCall(u8, u8),
    Post(u8, u8),
    Record(u8, u8, u8),
    MarkUnlisted(u8),
    Signal(u8, Option<u8>, u8),
    /// A host's control, checked as the asker's node checks it (`checked`) or made as told.
    Host(u8, u8, u8, bool, bool),
    Lock(u8, u8, bool),
    Hand(u8, u8, bool),
    Mute(u8, u8, u8, bool),
    Bar(u8, u8),
    /// Entering as the person's own node lets them: only if the room does.
    EnterChecked(u8, u8),
    WaitingRoom(u8, bool),
    Wait(u8, u8),
    Answer(u8, u8, bool),
    StopWaiting(u8),
    Password(u8, bool),
    HostKey(u8),
    NoteKey(u8, u8, u8),
}

const PEOPLE: u8 = 6;
const ROOMS: [&str; 4] = ["a", "b", "c", "d"];

fn person(i: u8) -> PersonId {
    PersonId::from_bytes([i % PEOPLE; 16])
}

fn room_of(i: u8) -> &'static str {
    ROOMS[usize::from(i) % ROOMS.len()]
}

/// Any sequence of operations on the room state, with every invariant checked after each, and
/// signalling allowed only between two people in the same call.
pub fn rooms(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(actions) = Vec::<Action>::arbitrary(&mut u) else { return };
    let mut rooms = Rooms::new(Limits { history_size: 3, history_memory: 2_000, rooms_per_person: 3, call_size: 3 });
    let mut next_message = 0u32;
    for action in actions {
        match action {
            Action::Connect(p) => rooms.connect(person(p)),
            Action::Enter(p, r, unlisted) => {
                let _ = rooms.enter(person(p), room_of(r), unlisted);
            }
            Action::Leave(p, r) => {
                let _ = rooms.leave(person(p), room_of(r));
            }
            Action::Disconnect(p) => {
                rooms.disconnect(person(p));
            }
            Action::Rename(p, short) => {
                let _ = rooms.rename(person(p), if short { "Al" } else { "Beatrice" });
            }
            Action::JoinCall(p, r, audio, video, enforce) => {
                let before = rooms.participants(room_of(r)).iter().filter(|m| m.call.is_some()).count();
                let joined = rooms.join_call(person(p), room_of(r), Media { audio, video, screen: false }, enforce, 0);
                if enforce && joined.is_ok() {
                    let after = rooms.participants(room_of(r)).iter().filter(|m| m.call.is_some()).count();
                    assert!(after <= 3 || after == before, "a call grew past its limit");
                }
            }
            Action::SetMedia(p, r, screen) => {
                let _ = rooms.set_media(person(p), room_of(r), Media { audio: false, video: false, screen });
            }
            Action::LeaveCall(p, r) => {
                let _ = rooms.leave_call(person(p), room_of(r));
            }
            Action::Post(p, r) => {
                next_message += 1;
                let posted = rooms.post(person(p), room_of(r), "hi".into(), format!("m{next_message}"), 1);
                assert_eq!(posted.is_ok(), rooms.is_member(person(p), room_of(r)));
            }
            Action::Record(p, r, id) => {
                if let Some(sender) = rooms.participant(person(p)) {
                    let message = noom::rooms::ChatMessage {
                        id: format!("r{id}"),
                        room: room_of(r).into(),
                        sender,
                        text: "there".into(),
                        ts: u64::from(id),
                    };
                    rooms.record(&message);
                }
            }
            Action::MarkUnlisted(r) => rooms.mark_unlisted(room_of(r)),
            Action::Signal(from, to, r) => {
                let (from, room) = (person(from), room_of(r));
                if let Ok(peer) = rooms.check_signal(from, to.map(person), room) {
                    let in_call = |id| rooms.member(id, room).is_some_and(|m| m.call.is_some());
                    assert!(peer != from && in_call(from) && in_call(peer), "a signal outside a call");
                }
            }
            Action::Host(asker, p, r, host, checked) => {
                let room = room_of(r);
                if checked && rooms.check_host(person(asker), room).is_err() {
                    continue;
                }
                let _ = rooms.set_host(room, person(p), host);
            }
            Action::Lock(asker, r, locked) => {
                if rooms.check_host(person(asker), room_of(r)).is_ok() {
                    let _ = rooms.set_locked(room_of(r), locked);
                }
            }
            Action::Hand(p, r, raised) => {
                let _ = rooms.set_hand(person(p), room_of(r), raised.then_some(7));
            }
            Action::Mute(asker, p, r, muted) => {
                if rooms.check_host(person(asker), room_of(r)).is_ok() {
                    let _ = rooms.set_muted(room_of(r), person(p), muted);
                }
            }
            Action::Bar(p, r) => rooms.bar(room_of(r), person(p)),
            Action::WaitingRoom(r, on) => {
                let _ = rooms.set_waiting_room(room_of(r), on);
            }
            Action::Wait(p, r) => {
                let waiter = noom::rooms::Waiter { id: person(p), nickname: "Cy".into(), since: 1 };
                rooms.wait(room_of(r), waiter);
            }
            Action::Answer(p, r, admit) => {
                rooms.answer_waiter(room_of(r), person(p), admit);
            }
            Action::StopWaiting(p) => {
                rooms.stop_waiting(person(p), None);
            }
            Action::Password(r, set) => {
                let _ = rooms.set_password(room_of(r), set.then(|| "hash".into()));
            }
            Action::HostKey(r) => {
                rooms.set_host_key(room_of(r), "key");
            }
            Action::NoteKey(p, r, key) => {
                rooms.note_key(room_of(r), person(p), ["k1", "k2", "k3"][usize::from(key % 3)])
            }
            Action::EnterChecked(p, r) => {
                let (id, room) = (person(p), room_of(r));
                if rooms.may_enter(id, room, noom::rooms::Entry::default()).is_ok() {
                    let _ = rooms.enter(id, room, false);
                } else {
                    assert!(!rooms.is_member(id, room), "someone in a room refused entry to it");
                }
            }
        }
        if let Err(broken) = rooms.check_invariants() {
            panic!("{broken}");
        }
    }
}

/// An op from another node, as Redis delivers it: read, and the same op after a round trip.
pub fn cluster_op(data: &[u8]) {
    if let Ok(envelope) = Envelope::decode(data) {
        let again = Envelope::decode(&Envelope::encode(&envelope.from, envelope.op.clone())).expect("an op re-reads");
        assert_eq!(again.op, envelope.op);
        assert_eq!(again.from, envelope.from);
    }
}

/// What another node's media server sends (`sfu::relay`): any bytes, split into frames as its
/// connection reads them. No panic; a frame read is written again as one read the same.
pub fn relay_frame(data: &[u8]) {
    use noom::sfu::relay::{Frame, next_frame};
    let mut rest = data;
    while let Ok(Some((body, used))) = next_frame(rest) {
        if let Ok(frame) = Frame::decode(body) {
            let again = frame.encode();
            let (body, whole) = next_frame(&again).expect("a frame written is read").expect("whole");
            assert_eq!(whole, again.len());
            assert_eq!(Frame::decode(body).as_ref(), Ok(&frame));
        }
        rest = &rest[used..];
    }
}

/// A text frame of the plain `/ws` chat: refused with a message, or valid.
pub fn ws_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Frame::read(text) {
        Ok(Frame::Nickname(name)) => assert_eq!(validate::nickname(&name).as_deref(), Ok(name.as_str())),
        Ok(Frame::NewMessage(message)) => assert!(validate::message(&message).is_ok()),
        Err(message) => assert!(!message.is_empty()),
    }
}

/// Datagrams at the media port (or frames of TCP connections), for a call of two whose browsers
/// have offered: any sequence of datagrams, from either browser's address (a forged source) or
/// another, over UDP or TCP, with time passing,
/// routed as the port does (`sfu::demux`) and given to the call's router. No panic; the port
/// gives a stranger's address to the call only for a STUN request naming one of its
/// connections; the router refuses a datagram from nobody in the call; nobody is taken out of
/// the call by what they did not send.
pub fn media_datagram(data: &[u8]) {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use noom::sfu::demux::{Demux, stun_ufrag};
    use noom::sfu::{CallRouter, MediaAddresses, RouterOutput};
    use str0m::media::{Direction, MediaKind};
    use str0m::net::Protocol;
    use str0m::{Candidate, Rtc};

    let server: SocketAddr = "192.0.2.1:3000".parse().expect("an address");
    let browsers: [SocketAddr; 2] =
        ["198.51.100.1:5000".parse().expect("an address"), "198.51.100.2:5000".parse().expect("an address")];
    let stranger: SocketAddr = "203.0.113.9:4000".parse().expect("an address");
    let mut now = Instant::now();
    let web: SocketAddr = "192.0.2.1:443".parse().expect("an address");
    let mut router = CallRouter::new(MediaAddresses { udp: vec![server], tcp: vec![web] });
    let mut demux = Demux::default();
    let mut ufrags = Vec::new();
    for address in browsers {
        let mut rtc = Rtc::new(now);
        rtc.add_local_candidate(Candidate::host(address, "udp").expect("a candidate"));
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, _) = api.apply().expect("an offer");
        let id = PersonId::random();
        router.join(id, offer, None, now).expect("an answer");
        let ufrag = router.ufrag(id).expect("in the call").to_owned();
        demux.register(&ufrag, "the call");
        ufrags.push(ufrag);
    }
    // Each datagram: a byte saying where from, over UDP or TCP (and whether time passes first), a
    // length byte, then the datagram.
    let mut rest = data;
    while let [head, len, tail @ ..] = rest {
        let len = (*len as usize).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        if head & 0x80 != 0 {
            now += Duration::from_millis(10 * u64::from(head & 0x0f));
            router.handle_timeout(now);
        }
        let source = match head % 3 {
            0 => browsers[0],
            1 => browsers[1],
            _ => stranger,
        };
        if source == stranger && demux.route(source, datagram).is_some() {
            let named = stun_ufrag(datagram).expect("a STUN request");
            assert!(ufrags.iter().any(|u| u == named), "routed by a user name of nobody");
        }
        let (proto, to) = if head & 0x40 != 0 { (Protocol::Tcp, web) } else { (Protocol::Udp, server) };
        let taken = router.handle_receive(now, proto, source, to, datagram);
        assert!(!taken || source != stranger, "a datagram of nobody in the call was taken");
    }
    while let Some(output) = router.poll_output() {
        assert!(!matches!(output, RouterOutput::Gone(_)), "someone was taken out by datagrams they did not send");
    }
    assert_eq!(router.len(), 2);
}

/// Messages at the built-in TURN server: any sequence of them, from a client over UDP or TCP or
/// from a peer at a relay port, through the credential check Noom does first
/// (`turn::credentials`) and into the TURN protocol (`turn-server-proto`), with time passing.
/// No panic; a refusal is a well-formed STUN error response to the request it answers.
pub fn turn_message(data: &[u8]) {
    use std::net::SocketAddr;
    use std::time::Duration;

    use noom::turn::credentials::{integrity_holds, password, stun_username, unauthorized};
    use turn_server_proto::api::{Transmit, TurnServerApi, TurnServerPollRet};
    use turn_server_proto::server::TurnServer;
    use turn_server_proto::types::Instant;
    use turn_server_proto::types::stun::TransportType;

    let listen: SocketAddr = "192.0.2.1:3478".parse().expect("an address");
    let client: SocketAddr = "198.51.100.1:5000".parse().expect("an address");
    let peer: SocketAddr = "203.0.113.9:4000".parse().expect("an address");
    let relayed: SocketAddr = "192.0.2.1:50000".parse().expect("an address");
    let mut servers = [
        TurnServer::new(TransportType::Udp, listen, "noom".into()),
        TurnServer::new(TransportType::Tcp, listen, "noom".into()),
    ];
    let mut now = Instant::from_nanos(0);
    // Each message: a byte saying how it comes (and whether time passes first), a length byte,
    // then the message.
    let mut rest = data;
    while let [head, len, tail @ ..] = rest {
        let len = (*len as usize).min(tail.len());
        let (message, next) = tail.split_at(len);
        rest = next;
        if head & 0x80 != 0 {
            now += Duration::from_millis(100 * u64::from(head & 0x0f));
        }
        if let Some(username) = stun_username(message) {
            if let Ok(password) = password("secret", username, 1_000) {
                let _ = integrity_holds(message, username, "noom", &password);
                for server in &mut servers {
                    server.add_user(username.to_owned(), password.clone());
                }
            }
            if let Some(response) = unauthorized(message) {
                assert_eq!(response.len() % 4, 0, "a STUN message is whole words");
                assert_eq!(stun_username(&response), None);
                assert_eq!(response[8..20], message[8..20], "the response answers that request");
            }
        }
        let server = &mut servers[usize::from(head & 0x10 != 0)];
        let transport = server.transport();
        let transmit = if head & 0x20 != 0 {
            Transmit { data: message, transport: TransportType::Udp, from: peer, to: relayed }
        } else {
            Transmit { data: message, transport, from: client, to: listen }
        };
        if let Some(out) = server.recv(transmit, now) {
            let _ = out.build();
        }
        // What the protocol asks for: a relay port is given, so that later messages reach it.
        for _ in 0..100 {
            while server.poll_transmit(now).is_some() {}
            match server.poll(now) {
                TurnServerPollRet::WaitUntil(_) => break,
                TurnServerPollRet::AllocateSocket {
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                } => {
                    server.allocated_socket(
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                        Ok(relayed),
                        now,
                    );
                }
                TurnServerPollRet::TcpConnect { relayed_addr, peer_addr, listen_addr, client_addr } => {
                    let refused = Err(turn_server_proto::api::TcpConnectError::Forbidden);
                    server.tcp_connected(relayed_addr, peer_addr, listen_addr, client_addr, refused, now);
                }
                TurnServerPollRet::TcpClose { .. } | TurnServerPollRet::SocketClose { .. } => {}
            }
        }
    }
}
