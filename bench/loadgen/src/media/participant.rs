//! One synthetic participant of a call through Noom's media server: a str0m peer that speaks
//! real WebRTC (ICE, DTLS, SRTP, RTCP, TWCC) over its own UDP socket, signalled over Socket.IO
//! as the web client is (`room:join`, `call:join`, `sfu:join`, then the server's `sfu:offer`s
//! answered, `sfu:view` for what it shows, `sfu:layers` obeyed).
//!
//! A publisher sends the prepared camera in three simulcast layers and the prepared voice, at
//! their own pace; each frame carries a stamp at its end (see `stamp`), so that a receiver
//! matches every frame it gets to its sending and reads the latency the path added.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::encoded::{AUDIO_FRAME_MS, Encoded, LAYERS, VIDEO_FPS};
use super::pace::{Due, Policer, Sends};
use super::sio::{Push, Socket};
use super::stamp::{self, Stamp};
use super::stats::Seen;
use crate::client::now_ns;

/// Who a participant is in its scenario.
#[derive(Clone)]
pub struct Plan {
    pub index: u32,
    pub room: String,
    pub publishes: bool,
    /// Behind a slow link: what arrives beyond this rate (kbit/s) is dropped, as a policer at
    /// the participant's access link would.
    pub slow_kbps: Option<u32>,
}

/// What the driver tells a participant once everyone is in: what to show.
pub struct Show {
    /// Whom (by index), at which height in pixels.
    pub tiles: Vec<(u32, u32)>,
    /// Whose voices it hears (by index): what a media server forwards, which the floor is told.
    pub voices: Vec<u32>,
    /// The layers of its camera anyone shows, lowest 0: what the floor's publishers send.
    pub layers: Vec<u8>,
}

/// What every participant of a run shares.
pub struct Shared {
    /// Noom's web port, or the floor's relay.
    pub server: SocketAddr,
    pub media: Rc<Encoded>,
    /// Each participant's person id once in its room, by index.
    pub ids: RefCell<HashMap<u32, String>>,
}

/// Joins the call and runs until the driver drops its sender of orders; says so through
/// `joined` once in the call.
pub async fn run(
    plan: Plan,
    shared: Rc<Shared>,
    seen: Rc<RefCell<Seen>>,
    joined: tokio::sync::oneshot::Sender<()>,
    mut orders: mpsc::UnboundedReceiver<Show>,
) -> Result<()> {
    let (sio, mut pushes) = Socket::connect(shared.server).await?;
    let nickname = format!("load {}", plan.index);
    let entered = sio.call("room:join", json!({ "room": plan.room, "nickname": nickname })).await?;
    let id = entered["self"]["id"].as_str().context("room:join answered no id")?.to_string();
    let media = json!({ "audio": plan.publishes, "video": plan.publishes, "screen": false });
    let call = sio.call("call:join", json!({ "room": plan.room, "media": media })).await?;
    if call["via"] != "sfu" {
        bail!("the call is not through the media server: {call}");
    }
    shared.ids.borrow_mut().insert(plan.index, id);

    let udp = udp_socket().await?;
    let local = udp.local_addr()?;
    let start = Instant::now();
    let mut rtc = RtcConfig::new().set_stats_interval(Some(Duration::from_secs(1))).build(start);
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut simulcast = Simulcast::new();
    for layer in LAYERS {
        simulcast.add_send_layer(SimulcastLayer::new(layer.rid));
    }
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(simulcast));
    let (offer, pending) = api.apply().context("no offer")?;
    seen.borrow_mut().asked_ns = now_ns();
    let answer = sio.call("sfu:join", json!({ "room": plan.room, "sdp": offer.to_sdp_string() })).await?;
    let answer = SdpAnswer::from_sdp_string(answer["sdp"].as_str().context("sfu:join answered no sdp")?)?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    let _ = joined.send(());

    let mut peer = Peer {
        plan,
        rtc,
        udp,
        local,
        media: shared.media.clone(),
        seen,
        audio,
        video,
        sends: Sends::new(start),
        active: LAYERS.iter().map(|l| l.rid.to_string()).collect(),
        policer: None,
        nacks: HashMap::new(),
    };
    peer.policer = peer.plan.slow_kbps.map(|kbps| Policer::new(kbps, start));
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = peer.drain()?;
        let wake = timeout.min(peer.sends.next());
        tokio::select! {
            received = peer.udp.recv_from(&mut buf) => {
                let (n, source) = received?;
                peer.receive(source, &buf[..n])?;
                // Whatever else waits is taken now, before time is handed to str0m again.
                while let Ok((n, source)) = peer.udp.try_recv_from(&mut buf) {
                    peer.receive(source, &buf[..n])?;
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                peer.rtc.handle_input(Input::Timeout(now))?;
                peer.send_due(now)?;
            }
            push = pushes.recv() => match push {
                Some(push) => peer.obey(&sio, push)?,
                None => bail!("the signalling connection closed"),
            },
            order = orders.recv() => match order {
                Some(show) => {
                    let ids = shared.ids.borrow();
                    let tiles: Vec<_> = show.tiles.iter()
                        .filter_map(|(who, height)| Some(json!({ "id": ids.get(who)?, "height": height })))
                        .collect();
                    sio.emit("sfu:view", json!({ "room": peer.plan.room, "tiles": tiles }))?;
                }
                None => return Ok(()),
            },
        }
    }
}

struct Peer {
    plan: Plan,
    rtc: Rtc,
    udp: UdpSocket,
    local: SocketAddr,
    media: Rc<Encoded>,
    seen: Rc<RefCell<Seen>>,
    audio: Mid,
    video: Mid,
    sends: Sends,
    /// The camera's layers the server wants sent (`sfu:layers`).
    active: Vec<String>,
    policer: Option<Policer>,
    /// The NACKs sent so far, by stream: str0m's counts are totals.
    nacks: HashMap<(Mid, Option<Rid>), u64>,
}

impl Peer {
    /// Hands str0m's datagrams to the socket and its events to the counts, until it asks to
    /// be woken.
    fn drain(&mut self) -> Result<Instant> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(t) => {
                    // A datagram the kernel does not take now is lost, as on a network.
                    let _ = self.udp.try_send_to(&t.contents, t.destination);
                }
                Output::Event(event) => self.note(event),
            }
        }
    }

    fn note(&mut self, event: Event) {
        let mut seen = self.seen.borrow_mut();
        match event {
            Event::MediaData(data) => {
                if let Some(stamp) = stamp::read(&data.data) {
                    seen.frame(now_ns(), data.data.len(), stamp);
                }
            }
            Event::KeyframeRequest(request) => {
                seen.keyframe_requests += 1;
                self.sends.restart(request.rid);
            }
            Event::MediaIngressStats(stats) => {
                let total = self.nacks.entry((stats.mid, stats.rid)).or_default();
                seen.nacks_sent += stats.nacks.saturating_sub(*total);
                *total = stats.nacks;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => seen.disconnected = true,
            _ => {}
        }
    }

    fn receive(&mut self, source: SocketAddr, datagram: &[u8]) -> Result<()> {
        let now = Instant::now();
        if let Some(policer) = &mut self.policer
            && !policer.admit(now, datagram.len())
        {
            return Ok(());
        }
        let Ok(contents) = datagram.try_into() else { return Ok(()) };
        let receive = Receive { proto: Protocol::Udp, source, destination: self.local, contents };
        self.rtc.handle_input(Input::Receive(now, receive))?;
        Ok(())
    }

    /// The frames whose time has come, of each layer the server wants and of the voice.
    fn send_due(&mut self, now: Instant) -> Result<()> {
        if !self.plan.publishes || !self.rtc.is_connected() {
            self.sends.skip_to(now);
            return Ok(());
        }
        let vp8 = self.rtc.codec_config().find(|p| p.spec().codec == Codec::Vp8).map(|p| p.pt());
        let opus = self.rtc.codec_config().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
        let (Some(vp8), Some(opus)) = (vp8, opus) else { return Ok(()) };
        while let Some(due) = self.sends.due(now) {
            let (mid, pt, rid, frame, time, n) = match due {
                Due::Audio { n } => {
                    let frame = &self.media.audio[n as usize % self.media.audio.len()];
                    let time = MediaTime::new(n * 48 * AUDIO_FRAME_MS as u64, Frequency::FORTY_EIGHT_KHZ);
                    (self.audio, opus, None, frame, time, n)
                }
                Due::Video { layer, at, n } => {
                    let rid = LAYERS[layer].rid;
                    if !self.active.iter().any(|a| a == rid) {
                        continue;
                    }
                    let frames = &self.media.video[layer];
                    let time = MediaTime::new(n * 90_000 / VIDEO_FPS as u64, Frequency::NINETY_KHZ);
                    (self.video, vp8, Some(Rid::from(rid)), &frames[at % frames.len()], time, n)
                }
            };
            let layer = rid.map_or(stamp::AUDIO, |r| LAYERS.iter().position(|l| *l.rid == *r).unwrap_or(0) as u8);
            let stamp = Stamp { layer, publisher: self.plan.index, seq: n as u32, sent_ns: now_ns() };
            let stamped = stamp.append_to(&frame.data);
            let Some(mut writer) = self.rtc.writer(mid) else { continue };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            if mid == self.audio {
                writer = writer.audio_level(-30, true);
            }
            writer.write(pt, now, time, stamped)?;
        }
        Ok(())
    }

    fn obey(&mut self, sio: &Socket, (event, data): Push) -> Result<()> {
        match event.as_str() {
            "sfu:offer" => {
                let offer = SdpOffer::from_sdp_string(data["sdp"].as_str().context("an offer without sdp")?)?;
                let answer = self.rtc.sdp_api().accept_offer(offer)?;
                sio.emit("sfu:answer", json!({ "room": self.plan.room, "sdp": answer.to_sdp_string() }))?;
            }
            "sfu:layers" => {
                let active = data["active"].as_array().context("sfu:layers without active")?;
                self.active = active.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
            }
            "sfu:closed" => bail!("the media server closed the connection"),
            super::sio::CLOSED => bail!("the signalling connection closed: {data}"),
            _ => {}
        }
        Ok(())
    }
}

/// A participant's UDP socket, with buffers large enough for a keyframe's burst of every stream
/// it receives: the kernel's default drops them while the generator's one thread is busy.
pub async fn udp_socket() -> Result<tokio::net::UdpSocket> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    set_buffers(&socket, 4 << 20);
    Ok(socket)
}

fn set_buffers(socket: &impl std::os::fd::AsRawFd, bytes: libc::c_int) {
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: setsockopt reads an int of the size given from the pointer given.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}
