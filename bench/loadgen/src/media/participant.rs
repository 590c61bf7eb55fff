//! What every synthetic participant is, whichever server it goes through: its `Plan` in the
//! scenario, what it is told to `Show`, and the WebRTC side of it (`Peer`): str0m connections
//! (one through Noom, a sending and a receiving one through Janus) on one UDP socket, which
//! send the prepared camera in three simulcast layers and the prepared voice at their own pace,
//! and count what arrives. Each frame carries a stamp at its end (see `stamp`), so that a
//! receiver matches every frame it gets to its sending and reads the latency the path added.
//!
//! The signalling that sets the connections up is each server's own (`noom_peer`,
//! `janus_peer`): it runs in its own task and steers the peer with `Command`s, so that the
//! media never waits for an answer from the server.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::encoded::{AUDIO_FRAME_MS, Encoded, LAYERS, VIDEO_FPS};
use super::pace::{Due, Policer, Sends};
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
    /// The tiles it shows (by index, and height in pixels), as the web client has them on screen
    /// when it joins: of those already in the call, it says so with its offer.
    pub tiles: Vec<(u32, u32)>,
}

/// What the driver tells a participant once everyone is in: what to show.
pub struct Show {
    /// Whom (by index), at which height in pixels.
    pub tiles: Vec<(u32, u32)>,
    /// Whose voices it hears (by index): what a media server forwards, which the floor and
    /// Janus are told.
    pub voices: Vec<u32>,
    /// The layers of its camera anyone shows, lowest 0: what the floor's publishers send.
    pub layers: Vec<u8>,
}

/// What every participant of a run shares.
pub struct Shared {
    /// Noom's web port, Janus's WebSocket API, or the floor's relay.
    pub server: SocketAddr,
    /// The address participants' sockets take: loopback, or the host's for Janus.
    pub address: IpAddr,
    pub media: Rc<Encoded>,
    /// How the server knows each participant, by index: its person id in Noom's room, its
    /// feed in Janus's.
    pub ids: RefCell<HashMap<u32, String>>,
    /// Each publisher's audio and video mids, by index: Janus subscribes to streams by them.
    pub mids: RefCell<HashMap<u32, (Mid, Mid)>>,
}

/// What the signalling tells the peer.
pub enum Command {
    /// A connection that sends the camera and the voice (and, through Noom, receives too).
    Send { rtc: Rtc, audio: Mid, video: Mid },
    /// A connection that only receives.
    Receive(Rtc),
    /// The server's new offer for the sending connection; the answer goes back.
    Offer(SdpOffer, oneshot::Sender<Result<SdpAnswer>>),
    /// The camera's layers the server wants sent, by rid.
    Layers(Vec<String>),
}

/// A new connection of a participant on `local`: full ICE (as a browser), statistics each second.
pub fn connection(local: SocketAddr) -> Result<Rtc> {
    let mut rtc = RtcConfig::new().set_stats_interval(Some(Duration::from_secs(1))).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    Ok(rtc)
}

/// A sending connection's offer: the voice, and the camera in `LAYERS` (lowest first).
pub fn offer_to_send(rtc: &mut Rtc) -> Result<(SdpOffer, SdpPendingOffer, Mid, Mid)> {
    let mut api = rtc.sdp_api();
    let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut simulcast = Simulcast::new();
    for layer in LAYERS {
        simulcast.add_send_layer(SimulcastLayer::new(layer.rid));
    }
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(simulcast));
    let (offer, pending) = api.apply().context("no offer")?;
    Ok((offer, pending, audio, video))
}

pub struct Peer {
    plan: Plan,
    /// The sending connection first, when there is one.
    rtcs: Vec<Rtc>,
    /// The sending connection's voice and camera.
    mids: Option<(Mid, Mid)>,
    udp: UdpSocket,
    local: SocketAddr,
    media: Rc<Encoded>,
    seen: Rc<RefCell<Seen>>,
    sends: Sends,
    /// The camera's layers the server wants sent.
    active: Vec<String>,
    policer: Option<Policer>,
    /// The NACKs sent so far, by connection and stream: str0m's counts are totals.
    nacks: HashMap<(usize, Mid, Option<Rid>), u64>,
}

impl Peer {
    pub async fn new(plan: Plan, shared: &Shared, seen: Rc<RefCell<Seen>>) -> Result<Peer> {
        let udp = udp_socket(shared.address).await?;
        let local = udp.local_addr()?;
        let (start, index) = (Instant::now(), plan.index);
        Ok(Peer {
            policer: plan.slow_kbps.map(|kbps| Policer::new(kbps, start)),
            plan,
            rtcs: Vec::new(),
            mids: None,
            udp,
            local,
            media: shared.media.clone(),
            seen,
            sends: Sends::new(start, index),
            active: LAYERS.iter().map(|l| l.rid.to_string()).collect(),
            nacks: HashMap::new(),
        })
    }

    /// Where its connections' candidate is.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Runs until the signalling drops its sender of commands.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) -> Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = self.drain()?;
            let wake = timeout.min(self.sends.next());
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => {
                    let (n, source) = received?;
                    self.receive(source, &buf[..n])?;
                    // Whatever else waits is taken now, before time is handed to str0m again.
                    while let Ok((n, source)) = self.udp.try_recv_from(&mut buf) {
                        self.receive(source, &buf[..n])?;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    for rtc in &mut self.rtcs {
                        rtc.handle_input(Input::Timeout(now))?;
                    }
                    self.send_due(now)?;
                }
                command = commands.recv() => match command {
                    Some(command) => self.obey(command),
                    None => return Ok(()),
                },
            }
        }
    }

    fn obey(&mut self, command: Command) {
        match command {
            Command::Send { rtc, audio, video } => {
                self.rtcs.insert(0, rtc);
                self.mids = Some((audio, video));
            }
            Command::Receive(rtc) => self.rtcs.push(rtc),
            Command::Offer(offer, answer) => {
                let answered = match self.rtcs.first_mut() {
                    Some(rtc) => rtc.sdp_api().accept_offer(offer).map_err(Into::into),
                    None => Err(anyhow::anyhow!("an offer before any connection")),
                };
                let _ = answer.send(answered);
            }
            Command::Layers(active) => self.active = active,
        }
    }

    /// Hands str0m's datagrams to the socket and its events to the counts, until each
    /// connection asks to be woken; the earliest of those.
    fn drain(&mut self) -> Result<Instant> {
        let mut wake = Instant::now() + Duration::from_secs(1);
        for at in 0..self.rtcs.len() {
            loop {
                match self.rtcs[at].poll_output()? {
                    Output::Timeout(when) => {
                        wake = wake.min(when);
                        break;
                    }
                    Output::Transmit(t) => {
                        // A datagram the kernel does not take now is lost, as on a network.
                        let _ = self.udp.try_send_to(&t.contents, t.destination);
                    }
                    Output::Event(event) => self.note(at, event),
                }
            }
        }
        Ok(wake)
    }

    fn note(&mut self, connection: usize, event: Event) {
        let mut seen = self.seen.borrow_mut();
        match event {
            Event::MediaData(data) => {
                if let Some(stamp) = stamp::read(&data.data) {
                    seen.frame(now_ns(), data.data.len(), stamp, data.contiguous);
                }
            }
            Event::KeyframeRequest(request) => {
                seen.keyframe_requests += 1;
                self.sends.restart(request.rid);
            }
            Event::MediaIngressStats(stats) => {
                let total = self.nacks.entry((connection, stats.mid, stats.rid)).or_default();
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
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: self.local, contents });
        // Each connection has its own ICE credentials and remote address: str0m tells which.
        if let Some(rtc) = self.rtcs.iter_mut().find(|rtc| rtc.accepts(&input)) {
            rtc.handle_input(input)?;
        }
        Ok(())
    }

    /// The frames whose time has come, of each layer the server wants and of the voice.
    fn send_due(&mut self, now: Instant) -> Result<()> {
        let (Some((audio, video)), Some(rtc)) = (self.mids, self.rtcs.first_mut()) else {
            self.sends.skip_to(now);
            return Ok(());
        };
        if !self.plan.publishes || !rtc.is_connected() {
            self.sends.skip_to(now);
            return Ok(());
        }
        let vp8 = rtc.codec_config().find(|p| p.spec().codec == Codec::Vp8).map(|p| p.pt());
        let opus = rtc.codec_config().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
        let (Some(vp8), Some(opus)) = (vp8, opus) else { return Ok(()) };
        while let Some(due) = self.sends.due(now) {
            let (mid, pt, rid, frame, time, n) = match due {
                Due::Audio { n } => {
                    let frame = &self.media.audio[n as usize % self.media.audio.len()];
                    let time = MediaTime::new(n * 48 * AUDIO_FRAME_MS as u64, Frequency::FORTY_EIGHT_KHZ);
                    (audio, opus, None, frame, time, n)
                }
                Due::Video { layer, at, n } => {
                    let rid = LAYERS[layer].rid;
                    if !self.active.iter().any(|a| a == rid) {
                        continue;
                    }
                    let frames = &self.media.video[layer];
                    let time = MediaTime::new(n * 90_000 / VIDEO_FPS as u64, Frequency::NINETY_KHZ);
                    (video, vp8, Some(Rid::from(rid)), &frames[at % frames.len()], time, n)
                }
            };
            let layer = rid.map_or(stamp::AUDIO, |r| LAYERS.iter().position(|l| *l.rid == *r).unwrap_or(0) as u8);
            let stamp = Stamp { layer, publisher: self.plan.index, seq: n as u32, sent_ns: now_ns() };
            let stamped = stamp.append_to(&frame.data);
            let Some(mut writer) = rtc.writer(mid) else { continue };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            if mid == audio {
                writer = writer.audio_level(-30, true);
            }
            writer.write(pt, now, time, stamped)?;
        }
        Ok(())
    }
}

/// A participant's UDP socket, with buffers large enough for a keyframe's burst of every stream
/// it receives: the kernel's default drops them while the generator's one thread is busy.
pub async fn udp_socket(address: IpAddr) -> Result<tokio::net::UdpSocket> {
    let socket = tokio::net::UdpSocket::bind((address, 0)).await?;
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
