//! The media port and the calls behind it: the IO around the sans-IO routers.
//!
//! One UDP socket takes every call's datagrams, and TCP connections from the web port take those
//! of browsers whose network drops UDP ([`super::tcp`]). The receiving task finds each datagram's
//! call ([`Demux`]) and hands it to that call's task, which owns the call's [`CallRouter`]: the task
//! feeds it datagrams, signalling and time, sends what it transmits, and reports the rest
//! ([`MediaEvent`]) to the signalling side. Calls never share a router, so one busy call runs
//! on its own thread while others run on theirs. When calls span nodes, what other nodes' media
//! servers send ([`Cascade`]) goes to the call it names, and what the router has for them back.
//!
//! Nothing here blocks on a participant: a call whose queue of datagrams is full drops the
//! next (as the network would), and a datagram the kernel cannot take at once is dropped
//! rather than waited for (str0m's NACKs and keyframe requests repair what matters).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Mid, Rid};
use str0m::net::Protocol;
use tokio::sync::{mpsc, oneshot};

use super::cascade::{Cascade, FromNode};
use super::demux::{Datagram, Demux};
use super::port::{Port, Received};
use super::relay::{self, Control, Frame, TrackInfo};
use super::router::{CallRouter, MediaAddresses, ParticipantStats, RouterError, RouterOutput, ToNode};
use super::tcp::{self, Links};
use crate::metrics::COUNTERS;
use crate::rooms::PersonId;

/// Datagrams waiting for one call's task; more are dropped. A second of a 25-person call's
/// video at full rate is about this many.
const CALL_QUEUE: usize = 4096;
/// Datagrams a call's task takes at once before it sends what they caused. The first of them
/// waits for all the others' forwarding: in a room of 20 each datagram costs some 150 µs, so 64 held
/// the first for 10 ms under load. 16 gave the same CPU and a lower worst case (media benchmark,
/// room of 20, three runs each way: video max 21, 33 and 45 ms against 50, 53 and 59).
const BATCH: usize = 16;
/// How often each call's figures are copied out for the admin panel.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// What a call's media has for the signalling side.
#[derive(Debug)]
pub enum MediaEvent {
    /// `to`'s browser is to answer this offer (`sfu:answer`).
    Offer { room: Arc<str>, to: PersonId, sdp: String },
    /// `id`'s connection ended: they are out of the call.
    Gone { room: Arc<str>, id: PersonId },
    /// Who speaks now, loudest first, for everyone in the call (`listeners`).
    Speakers { room: Arc<str>, speakers: Vec<PersonId>, listeners: Vec<PersonId> },
    /// `to`'s browser is to send these layers of its camera (rids) and pause the others.
    Layers { room: Arc<str>, to: PersonId, active: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The session description could not be read or used.
    Sdp(String),
    /// Refused by the call's router.
    Router(RouterError),
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaError::Sdp(why) => write!(f, "session description refused: {why}"),
            MediaError::Router(e) => e.fmt(f),
        }
    }
}

/// The media server: its port, and a task per call.
pub struct MediaServer {
    port: Arc<Port>,
    /// Where browsers reach the server: advertised as the candidates of every connection.
    addresses: MediaAddresses,
    /// Its TCP connections.
    links: Arc<Links>,
    /// See [`CallRouter::with_all_voices_up_to`].
    all_voices_up_to: usize,
    table: Mutex<Table>,
    next_call: AtomicU64,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// Everyone's media figures, as their call last copied them out.
    stats: Mutex<HashMap<PersonId, ParticipantStats>>,
    /// The connections to other nodes' media servers, when calls span nodes (cascading).
    cascade: Option<Arc<Cascade>>,
}

/// The calls: by room, and by the number the port routes datagrams by.
#[derive(Default)]
struct Table {
    demux: Demux<u64>,
    calls: HashMap<u64, CallHandle>,
    by_room: HashMap<Arc<str>, u64>,
}

#[derive(Clone)]
struct CallHandle {
    commands: mpsc::UnboundedSender<Command>,
    datagrams: mpsc::Sender<Datagram>,
    /// Media other nodes relay for the call.
    relayed: mpsc::Sender<(Arc<str>, relay::Media)>,
}

enum Command {
    Join {
        id: PersonId,
        offer: SdpOffer,
        tiles: Option<Vec<(PersonId, u32)>>,
        answer: oneshot::Sender<Result<SdpAnswer, RouterError>>,
    },
    Answer {
        id: PersonId,
        answer: SdpAnswer,
        done: oneshot::Sender<Result<(), RouterError>>,
    },
    Show {
        id: PersonId,
        tiles: Vec<(PersonId, u32)>,
    },
    Leave {
        id: PersonId,
    },
    Silence {
        id: PersonId,
        silenced: bool,
    },
    /// Everyone leaves: the call is carried elsewhere now.
    Close,
    /// The other nodes whose people are in the call now, as the room state has them.
    Peers(Vec<String>),
    /// A connection to another node came up, or went.
    NodeUp(Arc<str>),
    NodeDown(Arc<str>),
    /// A control message of another node's about the call.
    FromNode(Arc<str>, Control),
    /// A fault in the call's media, for the test of what follows one.
    #[cfg(test)]
    Fail,
}

impl MediaServer {
    /// Binds the media port and starts receiving on it. Events for the signalling side come out
    /// of the receiver returned. Media over TCP comes from the web port's listener, which hands
    /// over the connections that carry it ([`MediaServer::serve_tcp`]).
    pub async fn bind(
        bind: SocketAddr,
        addresses: MediaAddresses,
        all_voices_up_to: usize,
    ) -> io::Result<(Arc<Self>, mpsc::UnboundedReceiver<MediaEvent>)> {
        Self::bind_cascading(bind, addresses, all_voices_up_to, None).await
    }

    /// A media server whose calls span nodes, each person's media going through their own node's
    /// (`node`: this node's name in the cluster).
    pub async fn bind_cascading(
        bind: SocketAddr,
        addresses: MediaAddresses,
        all_voices_up_to: usize,
        node: Option<&str>,
    ) -> io::Result<(Arc<Self>, mpsc::UnboundedReceiver<MediaEvent>)> {
        let port = Arc::new(Port::bind(bind).await?);
        let (events, receiver) = mpsc::unbounded_channel();
        let (cascade, from_nodes) = node.map(Cascade::new).unzip();
        let server = Arc::new(Self {
            port,
            addresses,
            links: Arc::default(),
            all_voices_up_to,
            table: Mutex::new(Table::default()),
            next_call: AtomicU64::new(1),
            events,
            stats: Mutex::new(HashMap::new()),
            cascade,
        });
        tokio::spawn(receive(Arc::downgrade(&server), server.port.clone()));
        if let Some(from_nodes) = from_nodes {
            tokio::spawn(hear_nodes(Arc::downgrade(&server), from_nodes));
        }
        Ok((server, receiver))
    }

    pub fn addresses(&self) -> &MediaAddresses {
        &self.addresses
    }

    /// Serves a TCP connection of the web port whose first byte says it carries media (see
    /// [`super::tcp`]).
    pub fn serve_tcp<S>(self: &Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let server = self.clone();
        tokio::spawn(tcp::serve(stream, peer, self.links.clone(), move |first| server.call_named(first)));
    }

    /// The connections to other nodes' media servers, if calls span nodes.
    pub fn cascade(&self) -> Option<&Arc<Cascade>> {
        self.cascade.as_ref()
    }

    /// The other nodes whose people are in `room`'s call: each is told the tracks of this node's
    /// people, and tells its own.
    pub fn set_peers(self: &Arc<Self>, room: &str, nodes: Vec<String>) {
        if self.cascade.is_some() {
            self.send(room, Command::Peers(nodes), false);
        }
    }

    /// Media connections over TCP open now.
    pub fn tcp_connections(&self) -> usize {
        self.links.len()
    }

    /// The queue of the call whose connection a STUN request names by its user name.
    fn call_named(&self, stun: &[u8]) -> Option<mpsc::Sender<Datagram>> {
        let table = self.table.lock();
        let call = table.demux.named(stun)?;
        table.calls.get(&call).map(|handle| handle.datagrams.clone())
    }

    /// `id`'s media figures, as of the last second or so.
    pub fn stats_of(&self, id: PersonId) -> Option<ParticipantStats> {
        self.stats.lock().get(&id).cloned()
    }

    /// Calls with media going through the server now.
    pub fn calls(&self) -> usize {
        self.table.lock().calls.len()
    }

    /// `id` joins `room`'s call with their browser's offer, and the tiles it shows if it said;
    /// the answer comes back. Someone already connected starts again with the new offer (a page
    /// that rebuilt its connection).
    pub async fn join(
        self: &Arc<Self>,
        room: &str,
        id: PersonId,
        offer: &str,
        tiles: Option<Vec<(PersonId, u32)>>,
    ) -> Result<String, MediaError> {
        let read = || SdpOffer::from_sdp_string(offer).map_err(|e| MediaError::Sdp(e.to_string()));
        read()?;
        // A call's task may end (its last participant gone) just as this reaches it: a new
        // call then starts.
        for _ in 0..2 {
            let (answer, answered) = oneshot::channel();
            let command = Command::Join { id, offer: read()?, tiles: tiles.clone(), answer };
            if !self.send(room, command, true) {
                continue;
            }
            if let Ok(result) = answered.await {
                return result.map(|a| a.to_sdp_string()).map_err(MediaError::Router);
            }
        }
        Err(MediaError::Router(RouterError::NotInCall))
    }

    /// `id`'s browser answers the router's offer.
    pub async fn answer(self: &Arc<Self>, room: &str, id: PersonId, answer: &str) -> Result<(), MediaError> {
        let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| MediaError::Sdp(e.to_string()))?;
        let (done, answered) = oneshot::channel();
        if !self.send(room, Command::Answer { id, answer, done }, false) {
            return Err(MediaError::Router(RouterError::NotInCall));
        }
        answered.await.unwrap_or(Err(RouterError::NotInCall)).map_err(MediaError::Router)
    }

    /// What `id` shows of the others: each one's tile height in pixels; anyone not listed is
    /// not shown, and is sent no video.
    pub fn show(self: &Arc<Self>, room: &str, id: PersonId, tiles: Vec<(PersonId, u32)>) {
        self.send(room, Command::Show { id, tiles }, false);
    }

    /// Whether `id`'s voice in `room`'s call is forwarded: not once a host muted them, until a
    /// host asks them to unmute. Said again when they join the call here.
    pub fn silence(self: &Arc<Self>, room: &str, id: PersonId, silenced: bool) {
        self.send(room, Command::Silence { id, silenced }, false);
    }

    /// `id` is out of `room`'s call (or was never in it).
    pub fn leave(self: &Arc<Self>, room: &str, id: PersonId) {
        self.send(room, Command::Leave { id }, false);
    }

    /// The rooms whose calls go through this server now.
    pub fn rooms(&self) -> Vec<String> {
        self.table.lock().by_room.keys().map(|room| room.to_string()).collect()
    }

    /// Ends `room`'s call here without a word to anyone: it is carried by another node now, where
    /// its people are connecting.
    pub fn close_call(self: &Arc<Self>, room: &str) {
        self.send(room, Command::Close, false);
    }

    /// Hands a command to the room's call, starting the call if `start`; false if there is no
    /// call to take it.
    fn send(self: &Arc<Self>, room: &str, command: Command, start: bool) -> bool {
        let mut table = self.table.lock();
        let handle = match table.by_room.get(room).and_then(|call| table.calls.get(call)) {
            Some(handle) => handle.clone(),
            None if start => self.start_call(&mut table, room),
            None => return false,
        };
        handle.commands.send(command).is_ok()
    }

    fn start_call(self: &Arc<Self>, table: &mut Table, room: &str) -> CallHandle {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (commands, command_queue) = mpsc::unbounded_channel();
        let (datagrams, datagram_queue) = mpsc::channel(CALL_QUEUE);
        let (relayed, relayed_queue) = mpsc::channel(CALL_QUEUE);
        let handle = CallHandle { commands, datagrams, relayed };
        let room: Arc<str> = Arc::from(room);
        table.calls.insert(call, handle.clone());
        table.by_room.insert(room.clone(), call);
        let task = CallTask {
            server: self.clone(),
            room,
            call,
            router: CallRouter::new(self.addresses.clone()).with_all_voices_up_to(self.all_voices_up_to),
            ufrags: HashMap::new(),
            outgoing: Vec::new(),
            peers: Vec::new(),
        };
        tokio::spawn(task.run(command_queue, datagram_queue, relayed_queue));
        handle
    }

    /// The address a datagram from `source` came to: the advertised one of its family and
    /// transport (the sockets listen on all addresses; ICE only needs the pair to match what was
    /// advertised).
    fn destination(&self, proto: Protocol, source: SocketAddr) -> Option<SocketAddr> {
        let addresses = if proto == Protocol::Tcp { &self.addresses.tcp } else { &self.addresses.udp };
        addresses.iter().find(|a| a.is_ipv4() == source.is_ipv4()).copied()
    }
}

/// The port's receiving loop: each datagram to its call, or dropped.
async fn receive(server: std::sync::Weak<MediaServer>, port: Arc<Port>) {
    let mut received = Received::new();
    loop {
        match port.receive(&mut received).await {
            Ok(_) => {}
            // An ICMP error from an earlier send (a peer gone), on some systems: not ours to end.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => {
                tracing::error!("the media port stopped receiving: {e}");
                return;
            }
        }
        let Some(server) = server.upgrade() else { return };
        // Once for the batch: the table changes only as people come and go, and queueing a
        // datagram for its call never waits.
        let mut table = server.table.lock();
        for (source, datagram) in received.iter() {
            COUNTERS.media_in(datagram.len());
            let call = table.demux.route(source, datagram);
            match call.and_then(|call| table.calls.get(&call)) {
                Some(handle) => {
                    if handle.datagrams.try_send((Protocol::Udp, source, datagram.to_vec())).is_err() {
                        COUNTERS.media_queue_full();
                    }
                }
                None => COUNTERS.media_unrouted(),
            }
        }
        drop(table);
    }
}

/// What other nodes' media servers send, to the calls concerned.
async fn hear_nodes(server: std::sync::Weak<MediaServer>, mut from_nodes: mpsc::UnboundedReceiver<FromNode>) {
    while let Some(heard) = from_nodes.recv().await {
        let Some(server) = server.upgrade() else { return };
        let table = server.table.lock();
        match heard {
            FromNode::Up(node) => {
                for handle in table.calls.values() {
                    let _ = handle.commands.send(Command::NodeUp(node.clone()));
                }
            }
            FromNode::Down(node) => {
                for handle in table.calls.values() {
                    let _ = handle.commands.send(Command::NodeDown(node.clone()));
                }
            }
            FromNode::Frame(node, Frame::Media(media)) => {
                let call = table.by_room.get(media.call.as_str()).and_then(|call| table.calls.get(call));
                if let Some(handle) = call
                    && handle.relayed.try_send((node, media)).is_err()
                {
                    COUNTERS.media_queue_full();
                }
            }
            FromNode::Frame(node, Frame::Control(control)) => {
                let room = match &control {
                    Control::Tracks { call, .. }
                    | Control::Left { call }
                    | Control::Want { call, .. }
                    | Control::Keyframe { call, .. } => call.as_str(),
                    Control::Hello { .. } | Control::Keepalive => continue,
                };
                // A call with nobody here: the other node is told nothing, and tells again once
                // someone here joins (see `Command::Peers`).
                if let Some(handle) = table.by_room.get(room).and_then(|call| table.calls.get(call)) {
                    let _ = handle.commands.send(Command::FromNode(node, control));
                }
            }
        }
    }
}

/// Why a call's task woke.
enum Turn {
    Command(Command),
    /// Datagrams are in the batch.
    Datagrams,
    /// Media relayed by other nodes is in the relay batch.
    Relayed,
    Timeout,
    CopyStats,
}

/// One call's task: the only owner of its router.
struct CallTask {
    server: Arc<MediaServer>,
    room: Arc<str>,
    call: u64,
    router: CallRouter,
    /// Each participant's ICE user name, to forget in the port's table when they go.
    ufrags: HashMap<PersonId, String>,
    /// Datagrams the router transmitted to the media port, sent together when its turn ends
    /// (kept for its capacity).
    outgoing: Vec<(SocketAddr, Vec<u8>)>,
    /// The other nodes carrying people of the call (cascading).
    peers: Vec<Arc<str>>,
}

impl CallTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut datagrams: mpsc::Receiver<Datagram>,
        mut relayed: mpsc::Receiver<(Arc<str>, relay::Media)>,
    ) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut relay_batch = Vec::with_capacity(BATCH);
        let mut counted = 0;
        let mut copy_stats = tokio::time::interval(STATS_EVERY);
        loop {
            let wake = self.router.next_timeout().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let turn = tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => Turn::Command(command),
                    None => break,
                },
                count = datagrams.recv_many(&mut batch, BATCH) => {
                    if count == 0 {
                        break;
                    }
                    Turn::Datagrams
                }
                count = relayed.recv_many(&mut relay_batch, BATCH) => {
                    if count == 0 {
                        break;
                    }
                    Turn::Relayed
                }
                () = tokio::time::sleep_until(wake.into()) => Turn::Timeout,
                _ = copy_stats.tick() => Turn::CopyStats,
            };
            // A fault in the call's media must not take the media of other calls, nor leave
            // this call's people waiting for media that will never come: they are told their
            // connection is lost (`sfu:closed`), as when their network fails, and may join
            // again, into a new call.
            let turned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.turn(turn, &mut batch, &mut relay_batch);
            }));
            if turned.is_err() {
                tracing::error!(room = %self.room, "the call's media failed (a panic): everyone in it is told it ended");
                self.fail();
                COUNTERS.media_participants(-(counted as i64));
                return;
            }
            let now_in = self.router.len();
            COUNTERS.media_participants(now_in as i64 - counted as i64);
            counted = now_in;
            if self.router.is_empty() && self.end(&commands) {
                self.tell_peers(|room| Control::Left { call: room.to_owned() });
                return;
            }
        }
        COUNTERS.media_participants(-(counted as i64));
    }

    /// What one wake-up of the task brought, handed to the router; what it caused sent.
    fn turn(&mut self, turn: Turn, batch: &mut Vec<Datagram>, relay_batch: &mut Vec<(Arc<str>, relay::Media)>) {
        match turn {
            Turn::Relayed => {
                let now = Instant::now();
                // Taken a node at a time, in order: the batch is most often of one node.
                while let Some((node, _)) = relay_batch.first() {
                    let node = node.clone();
                    let end = relay_batch.iter().position(|(n, _)| *n != node).unwrap_or(relay_batch.len());
                    let packets = relay_batch.drain(..end).map(|(_, m)| (m.owner, m.mid, m.rid, m.packet));
                    self.router.relayed(&node, packets, now);
                }
            }
            Turn::Command(command) => self.command(command),
            Turn::Datagrams => {
                let server = &self.server;
                let datagrams = batch.drain(..).filter_map(|(proto, source, datagram)| {
                    server.destination(proto, source).map(|destination| (proto, source, destination, datagram))
                });
                self.router.handle_receive_batch(Instant::now(), datagrams);
            }
            Turn::Timeout => self.router.handle_timeout(Instant::now()),
            Turn::CopyStats => self.copy_stats(),
        }
        self.flush();
    }

    /// After a panic: everyone the call had is gone from it, and the call from the table, so that
    /// a join starts a new one. The router is not touched again.
    fn fail(&mut self) {
        let ids: Vec<PersonId> = self.ufrags.keys().copied().collect();
        for id in ids {
            self.forget(id);
            self.report(MediaEvent::Gone { room: self.room.clone(), id });
        }
        self.leave_table(&mut self.server.table.lock());
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Join { id, offer, tiles, answer } => {
                if self.router.contains(id) {
                    self.forget(id);
                    self.router.leave(id, now);
                }
                let result = self.router.join(id, offer, tiles, now);
                if let Some(ufrag) = self.router.ufrag(id) {
                    self.server.table.lock().demux.register(ufrag, self.call);
                    self.ufrags.insert(id, ufrag.to_owned());
                }
                let _ = answer.send(result);
            }
            Command::Answer { id, answer, done } => {
                let _ = done.send(self.router.answer(id, answer, now));
            }
            Command::Show { id, tiles } => {
                // A viewer not in the call shows nothing.
                let _ = self.router.show_tiles(id, tiles, now);
            }
            Command::Silence { id, silenced } => self.router.silence(id, silenced),
            Command::Leave { id } => {
                self.forget(id);
                self.router.leave(id, now);
            }
            Command::Close => {
                let ids: Vec<PersonId> = self.router.ids().collect();
                for id in ids {
                    self.forget(id);
                    self.router.leave(id, now);
                }
            }
            Command::Peers(nodes) => self.set_peers(nodes, now),
            Command::NodeUp(node) => {
                if self.peers.contains(&node) {
                    self.tell_tracks(&node, true);
                }
                self.router.node_connected(&node, now);
            }
            Command::NodeDown(node) => self.router.node_left(&node, now),
            Command::FromNode(node, control) => self.heard_from(node, control, now),
            #[cfg(test)]
            Command::Fail => panic!("a fault in the call's media, on purpose"),
        }
    }

    /// The other nodes with people in the call: those new are told the tracks of this node's
    /// people (and tell theirs), those gone no longer send any.
    fn set_peers(&mut self, nodes: Vec<String>, now: Instant) {
        let Some(cascade) = self.server.cascade.clone() else { return };
        let nodes: Vec<Arc<str>> = nodes.into_iter().map(Arc::from).collect();
        for gone in self.peers.extract_if(.., |peer| !nodes.contains(peer)).collect::<Vec<_>>() {
            self.router.node_left(&gone, now);
        }
        for node in nodes {
            if !self.peers.contains(&node) {
                self.peers.push(node.clone());
                self.tell_tracks(&node, true);
            } else {
                cascade.ensure(&node);
            }
        }
    }

    fn heard_from(&mut self, node: Arc<str>, control: Control, now: Instant) {
        match control {
            Control::Tracks { tracks, reply, .. } => {
                if !self.peers.contains(&node) {
                    self.peers.push(node.clone());
                }
                self.router.remote_tracks(&node, tracks, now);
                if reply {
                    self.tell_tracks(&node, false);
                }
            }
            Control::Left { .. } => {
                self.peers.retain(|peer| *peer != node);
                self.router.node_left(&node, now);
            }
            Control::Want { owner, mid, layers, .. } => {
                let layers = layers.iter().map(|rid| rid.as_deref().map(Rid::from)).collect();
                self.router.node_wants(&node, owner, Mid::from(mid.as_str()), layers, now);
            }
            Control::Keyframe { owner, mid, rid, .. } => {
                self.router.node_needs_keyframe(owner, Mid::from(mid.as_str()), rid.as_deref().map(Rid::from), now);
            }
            Control::Hello { .. } | Control::Keepalive => {}
        }
    }

    /// Tells `node` the tracks this node's people publish in the call; `reply`: and asks for its.
    fn tell_tracks(&self, node: &str, reply: bool) {
        let Some(cascade) = &self.server.cascade else { return };
        let tracks: Vec<TrackInfo> = self.router.local_tracks();
        cascade.send_control(node, Control::Tracks { call: self.room.to_string(), tracks, reply });
    }

    /// Tells every other node of the call the same thing.
    fn tell_peers(&self, control: impl Fn(&str) -> Control) {
        let Some(cascade) = &self.server.cascade else { return };
        for node in &self.peers {
            cascade.send_control(node, control(&self.room));
        }
    }

    /// Sends what the router transmits, in batches, and reports the rest.
    fn flush(&mut self) {
        while let Some(output) = self.router.poll_output() {
            match output {
                RouterOutput::Transmit { proto: Protocol::Tcp, destination, contents, .. } => {
                    let bytes = contents.len();
                    if self.server.links.send(destination, contents) {
                        COUNTERS.media_out(1, bytes);
                    } else {
                        COUNTERS.media_send_failed(1);
                    }
                }
                RouterOutput::Transmit { destination, contents, .. } => {
                    self.outgoing.push((destination, contents));
                }
                RouterOutput::Offer { to, offer } => {
                    self.report(MediaEvent::Offer { room: self.room.clone(), to, sdp: offer.to_sdp_string() });
                }
                RouterOutput::Gone(id) => {
                    self.forget(id);
                    self.report(MediaEvent::Gone { room: self.room.clone(), id });
                }
                RouterOutput::Layers { to, active, .. } => {
                    let active = active.iter().map(ToString::to_string).collect();
                    self.report(MediaEvent::Layers { room: self.room.clone(), to, active });
                }
                RouterOutput::Speakers(speakers) => {
                    let listeners = self.router.ids().collect();
                    self.report(MediaEvent::Speakers { room: self.room.clone(), speakers, listeners });
                }
                RouterOutput::TracksChanged => {
                    let tracks = self.router.local_tracks();
                    self.tell_peers(|room| Control::Tracks {
                        call: room.to_owned(),
                        tracks: tracks.clone(),
                        reply: false,
                    });
                }
                RouterOutput::ToNode { to, message } => self.to_node(&to, message),
            }
        }
        if self.outgoing.is_empty() {
            return;
        }
        let sent = self.server.port.send(&self.outgoing);
        COUNTERS.media_out(sent.datagrams, sent.bytes);
        if sent.dropped > 0 {
            COUNTERS.media_send_failed(sent.dropped);
        }
        self.outgoing.clear();
    }

    fn to_node(&self, node: &str, message: ToNode) {
        let Some(cascade) = &self.server.cascade else { return };
        let call = self.room.to_string();
        match message {
            ToNode::Media { owner, mid, rid, packet } => {
                cascade.send_media(node, &Frame::Media(relay::Media { call, owner, mid, rid, packet }));
            }
            ToNode::Want { owner, mid, layers } => {
                let layers = layers.iter().map(|rid| rid.map(|rid| rid.to_string())).collect();
                cascade.send_control(node, Control::Want { call, owner, mid: mid.to_string(), layers });
            }
            ToNode::Keyframe { owner, mid, rid } => {
                let rid = rid.map(|rid| rid.to_string());
                cascade.send_control(node, Control::Keyframe { call, owner, mid: mid.to_string(), rid });
            }
        }
    }

    fn copy_stats(&self) {
        let mut stats = self.server.stats.lock();
        for participant in self.router.stats() {
            stats.insert(participant.id, participant);
        }
    }

    fn report(&self, event: MediaEvent) {
        let _ = self.server.events.send(event);
    }

    fn forget(&mut self, id: PersonId) {
        if let Some(ufrag) = self.ufrags.remove(&id) {
            self.server.table.lock().demux.unregister(&ufrag);
        }
        self.server.stats.lock().remove(&id);
    }

    /// Ends the call, unless a command came meanwhile (commands are sent with the table locked,
    /// so none can come once it is gone from the table).
    fn end(&self, commands: &mpsc::UnboundedReceiver<Command>) -> bool {
        let mut table = self.server.table.lock();
        if !commands.is_empty() {
            return false;
        }
        self.leave_table(&mut table);
        true
    }

    /// The call is no longer reached: by its room, by its number, nor by the port.
    fn leave_table(&self, table: &mut Table) {
        table.calls.remove(&self.call);
        if table.by_room.get(&self.room) == Some(&self.call) {
            table.by_room.remove(&self.room);
        }
        table.demux.forget_call(&self.call);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use str0m::Rtc;
    use str0m::media::{Direction, MediaKind};

    use super::*;

    fn offer() -> String {
        let mut rtc = Rtc::new(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _) = api.apply().expect("an offer");
        offer.to_sdp_string()
    }

    /// A server with Ann and Bob in the call of "room", and Ann in that of "other room".
    async fn two_calls() -> (Arc<MediaServer>, mpsc::UnboundedReceiver<MediaEvent>, PersonId, PersonId) {
        let bind = "127.0.0.1:0".parse().unwrap();
        let addresses = MediaAddresses::udp(vec!["127.0.0.1:9".parse().unwrap()]);
        let (server, events) = MediaServer::bind(bind, addresses, 12).await.unwrap();
        let (ann, bob) = (PersonId::random(), PersonId::random());
        server.join("room", ann, &offer(), None).await.unwrap();
        server.join("room", bob, &offer(), None).await.unwrap();
        server.join("other room", ann, &offer(), None).await.unwrap();
        (server, events, ann, bob)
    }

    #[tokio::test]
    async fn a_call_whose_media_fails_tells_everyone_they_are_out_and_a_join_starts_a_new_call() {
        let (server, mut events, ann, bob) = two_calls().await;
        assert_eq!(server.calls(), 2);

        assert!(server.send("room", Command::Fail, false));
        let mut gone = Vec::new();
        while gone.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(MediaEvent::Gone { room, id })) if &*room == "room" => gone.push(id),
                Ok(Some(_)) => {}
                other => panic!("expected both to be told their media ended, got {other:?}"),
            }
        }
        gone.sort_by_key(|id| id.to_string());
        let mut both = vec![ann, bob];
        both.sort_by_key(|id| id.to_string());
        assert_eq!(gone, both);
        assert_eq!(server.calls(), 1, "the other room's call goes on");

        server.join("room", bob, &offer(), None).await.expect("a join after the fault starts a new call");
        assert_eq!(server.calls(), 2);
    }

    #[tokio::test]
    async fn a_call_closed_because_it_moved_ends_without_telling_anyone_they_are_out() {
        let (server, mut events, _, _) = two_calls().await;
        let mut rooms = server.rooms();
        rooms.sort();
        assert_eq!(rooms, ["other room", "room"]);

        server.close_call("room");
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.calls() > 1 {
            assert!(Instant::now() < deadline, "the closed call ends");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.rooms(), ["other room"]);
        while let Ok(event) = events.try_recv() {
            assert!(!matches!(event, MediaEvent::Gone { .. }), "nobody is told they are out: {event:?}");
        }
    }
}
