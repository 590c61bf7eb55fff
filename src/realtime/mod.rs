//! The live side of Noom: Socket.IO connections, their events, and what they cause.
//!
//! One [`Hub`] holds the room state and the Socket.IO handle. Each connected socket gets a
//! [`Session`] (its flavour, rate limits and ordered event queue) and one handler per event.
//! A handler checks rate and arguments at once, in arrival order, then queues the work, so one
//! socket's events take effect in the order sent (see [`serial`]).

mod call;
mod directory;
mod moderation;
mod noom;
pub mod plain_ws;
mod replica;
mod room_lock;
mod seed;
mod serial;

use std::collections::HashMap;
use std::future::ready;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use socketioxide::extract::{Event, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::Notify;

use crate::admission::{self, Admission};
use crate::cluster::{Link, Nodes, Op};
use crate::config::Config;
use crate::metrics::{COUNTERS, Gauges};
use crate::ratelimit::{PerAddress, TokenBucket};
use crate::requests::{self, Args, Request};
use crate::rooms::{ChatMessage, Entered, Left, Limits, Participant, PersonId, Rooms};
use crate::validate::{ApiError, ErrorCode};
use room_lock::RoomLocks;
use serial::SerialQueue;

/// Events one socket may have waiting before new ones are refused.
const QUEUE_LIMIT: usize = 64;
/// Signals come in bursts (a newcomer's offers and candidates for everyone in a call) and cost
/// little each, so more of them may wait.
const SIGNAL_QUEUE_LIMIT: usize = 256;
/// Every event of one socket but signals, chat included: bursts of this many seconds of
/// `--event-rate`.
const EVENT_BURST_SECONDS: f64 = 2.0;
/// Signalling events of one socket.
const SIGNAL_BURST: u32 = 400;
const SIGNAL_RATE: f64 = 100.0;
/// Bytes of bulky answers and relays one socket may cause (the history and people of a room it
/// enters, the session descriptions it sends), in a burst and a second sustained. This is what a
/// client that stops reading can make the server hold for it before its stalled writes cut it.
const BULK_BURST: u32 = 2 << 20;
const BULK_RATE: f64 = 256.0 * 1024.0;
/// The same for all the sockets of one client address together.
const BULK_BURST_PER_ADDRESS: u32 = 16 << 20;
const BULK_RATE_PER_ADDRESS: f64 = 2.0 * 1024.0 * 1024.0;
/// Rooms all the sockets of one client address may enter, in a burst (a class behind one NAT
/// arriving at once) and a second sustained: a bound on guessing room names.
const ENTRY_BURST_PER_ADDRESS: u32 = 120;
const ENTRY_RATE_PER_ADDRESS: f64 = 10.0;
/// The directory lists at most this many rooms.
pub const DIRECTORY_LIMIT: usize = 100;
/// Packets waiting to be written to one client before more are dropped. A busy room sends bursts
/// (30 people sending at once is 300 packets to each member); the queue allocates as it fills,
/// so the bound costs an idle socket nothing.
const SEND_BUFFER: usize = 8192;
/// Largest Socket.IO packet accepted: room for the largest session description accepted
/// ([`crate::signal::SDP_MAX`]), so that one too large is answered with an error rather than a
/// closed connection.
const MAX_PAYLOAD: u64 = 128 * 1024;

/// Bytes read from a WebSocket at a time. Chat packets are a few hundred bytes; the default of
/// 4 KiB is a tenth of an idle connection's memory.
const WS_READ_BUFFER: usize = 1024;

/// Socket.IO rooms (the adapter's, not ours) that group sockets for broadcasts.
const SEED_SOCKETS: &str = "f:seed";
const LOBBY: &str = "lobby";

/// The Socket.IO adapter: socketioxide-redis over our [`Link`]. A node alone uses it too; its
/// broadcasts are all marked local (see [`Hub::broadcast`]), so nothing is encoded for Redis.
pub type Adapter = CustomRedisAdapter<socketioxide::adapter::Emitter, Link>;
type SocketRef = socketioxide::extract::SocketRef<Adapter>;
type AckSender = socketioxide::extract::AckSender<Adapter>;
type SocketIo = socketioxide::SocketIo<Adapter>;

/// An acknowledgement with no argument: the seed's `done()`.
const NO_ARGS: [u8; 0] = [];

pub struct Hub {
    rooms: Mutex<Rooms>,
    config: Arc<Config>,
    io: SocketIo,
    directory_changed: Notify,
    room_locks: RoomLocks,
    /// Resume tokens of connected sockets (see [`Handshake`]).
    resumable: Mutex<HashMap<String, Sid>>,
    /// The socket of each person connected to this node.
    here: Mutex<HashMap<PersonId, Sid>>,
    next_message: AtomicU64,
    boot_ms: u64,
    link: Link,
    closing: AtomicBool,
    /// The other nodes of the cluster, and who is connected to each.
    nodes: Mutex<Nodes>,
    /// Connections per client address.
    admission: Arc<Admission>,
    /// Bytes of bulky output per client address (see [`BULK_BURST_PER_ADDRESS`]).
    bulk: PerAddress,
    /// Rooms entered per client address (see [`ENTRY_BURST_PER_ADDRESS`]).
    entries: PerAddress,
    /// Moves when anyone's presence does (see [`Rooms::presence_version`]), and at shutdown:
    /// what the admin panel's live view waits on.
    presence: tokio::sync::watch::Sender<u64>,
}

/// Where a push about a room comes from: a socket of this node (which does not hear its own
/// change), or this node's copy of another node's change. Either way only the sockets here hear
/// it: each node tells its own.
#[derive(Clone, Copy)]
enum Source<'a> {
    Socket(&'a SocketRef),
    Replica,
}

/// A connection's place in its address's count; given back when dropped.
pub struct Slot {
    hub: Arc<Hub>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.admission.closed(self.ip);
    }
}

/// The client's address, as the HTTP gate found it, for the connection's lifetime.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// The handshake's `auth` payload.
#[derive(Default, Deserialize)]
struct Handshake {
    /// `"noom/1"` asks for Noom pushes.
    protocol: Option<String>,
    /// A random token a page keeps for its lifetime: a new connection with it replaces the old one.
    resume: Option<String>,
}

/// Which family of pushes a socket receives (see `docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Seed,
    Noom,
}

struct Session {
    noom: AtomicBool,
    chat: Mutex<TokenBucket>,
    events: Mutex<TokenBucket>,
    signals: Mutex<TokenBucket>,
    /// Bytes, see [`BULK_BURST`].
    bulk: Mutex<TokenBucket>,
    /// The client's address as per-address limits on bulky output and room entries count it:
    /// none for a client on this machine (the operator's tools, tests, a proxy that does not say
    /// whom it forwards) or a connection the gate did not see.
    address: Option<IpAddr>,
    queue: Arc<SerialQueue>,
}

/// An event clients may emit (its request: [`crate::requests`]).
struct EventDef {
    name: &'static str,
    kind: EventKind,
}

fn find_event(name: &str) -> Option<&'static EventDef> {
    seed::EVENTS.iter().chain(noom::EVENTS).chain(call::EVENTS).find(|def| def.name == name)
}

/// What an event is, for its limits and the pushes its sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Seed,
    SeedSignal,
    /// Makes its sender Noom-flavoured.
    Noom,
    NoomSignal,
}

impl EventKind {
    fn is_noom(self) -> bool {
        matches!(self, EventKind::Noom | EventKind::NoomSignal)
    }

    fn is_signal(self) -> bool {
        matches!(self, EventKind::SeedSignal | EventKind::NoomSignal)
    }
}

impl Session {
    fn flavour(&self) -> Flavour {
        if self.noom.load(Ordering::Relaxed) { Flavour::Noom } else { Flavour::Seed }
    }

    /// Counts `bytes` of bulky output against this socket's budget and its address's; refuses
    /// past either.
    fn spend_bulk(&self, hub: &Hub, bytes: usize) -> Result<(), ApiError> {
        let now = std::time::Instant::now();
        let within = self.bulk.lock().try_take_many_at(bytes, now)
            && self.address.is_none_or(|address| hub.bulk.try_take_many_at(address, bytes, now));
        if within {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::RateLimited, "too much asked for at once; wait a few seconds"))
        }
    }
}

/// What a request does.
fn run(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, request: Request, ack: AckSender) -> BoxFuture<'static, ()> {
    match request {
        Request::Nickname { nickname } => Box::pin(seed::nickname(hub, s, nickname, ack)),
        Request::EnterRoom { room } => Box::pin(seed::enter_room(hub, session, s, room, ack)),
        Request::NewMessage { text, room } => Box::pin(seed::new_message(hub, session, s, (text, room), ack)),
        Request::SeedSignal { kind, signal, room } => Box::pin(seed::relay(hub, s, (kind, signal, room), ack)),
        Request::Rename { nickname } => Box::pin(noom::rename(hub, s, nickname, ack)),
        Request::Join { room, unlisted, nickname } => {
            Box::pin(noom::join(hub, session, s, (room, unlisted, nickname), ack))
        }
        Request::Leave { room } => Box::pin(noom::leave(hub, session, s, room, ack)),
        Request::Send { room, text } => Box::pin(noom::send(hub, session, s, (room, text), ack)),
        Request::Directory => {
            noom::directory(&hub, ack);
            Box::pin(ready(()))
        }
        Request::CallJoin { room, media } => Box::pin(call::join(hub, s, (room, media), ack)),
        Request::CallMedia { room, media } => Box::pin(call::media(hub, s, (room, media), ack)),
        Request::CallLeave { room } => Box::pin(call::leave(hub, s, room, ack)),
        Request::Signal { room, to, signal } => Box::pin(call::signal(hub, session, s, (room, to, signal), ack)),
    }
}

fn room_key(flavour: Flavour, room: &str) -> String {
    match flavour {
        Flavour::Seed => format!("s:{room}"),
        Flavour::Noom => format!("n:{room}"),
    }
}

fn reply<T: Serialize + ?Sized>(ack: AckSender, value: &T) {
    // The client may be gone already; nothing is owed to it then.
    let _ = ack.send(value);
}

/// Answers an input with the error it was refused with, and counts it.
fn refuse(ack: AckSender, error: &ApiError) {
    COUNTERS.rejected(error.code);
    reply(ack, error);
}

/// An acknowledgement answered once: with success from inside a room's turn (see
/// [`Hub::enter`]), or else with the error the operation ended in.
struct Answer(Option<AckSender>);

impl Answer {
    fn new(ack: AckSender) -> Self {
        Self(Some(ack))
    }

    fn ok<T: Serialize + ?Sized>(&mut self, value: &T) {
        if let Some(ack) = self.0.take() {
            reply(ack, value);
        }
    }

    fn finish(self, result: Result<(), ApiError>) {
        if let Err(e) = result {
            match self.0 {
                Some(ack) => refuse(ack, &e),
                None => COUNTERS.rejected(e.code),
            }
        }
    }
}

/// Who a socket is to everyone else (set when it connects, before any of its events).
fn person(s: &SocketRef) -> PersonId {
    s.extensions.get::<PersonId>().expect("every socket is given a person id as it connects")
}

/// Tells a socket who it is to everyone else, first thing once connected.
fn tell_session(s: &SocketRef) {
    let _ = s.emit("session", &serde_json::json!({ "id": person(s) }));
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// Builds the Socket.IO layer and the hub behind it, and starts the directory publisher and,
    /// with Redis, the link to the other nodes.
    pub async fn build(config: Arc<Config>) -> anyhow::Result<(SocketIoLayer<Adapter>, Arc<Hub>)> {
        let link = Link::new(config.redis_url.as_deref())?;
        let adapter = RedisAdapterCtr::new_with_driver(
            link.clone(),
            RedisAdapterConfig::new().with_prefix(crate::cluster::PREFIX),
        );
        let (layer, io) = socketioxide::SocketIo::builder()
            .ping_interval(Duration::from_secs(config.ping_interval))
            .ping_timeout(Duration::from_secs(config.ping_timeout))
            .max_payload(MAX_PAYLOAD)
            .max_buffer_size(SEND_BUFFER)
            .ws_max_message_size(MAX_PAYLOAD as usize)
            .ws_max_frame_size(MAX_PAYLOAD as usize)
            // Per connection; the read grows past it for a larger message.
            .ws_read_buffer_size(WS_READ_BUFFER)
            .with_adapter::<Adapter>(adapter)
            .build_layer();
        let limits = Limits {
            history_size: config.history_size,
            history_memory: config.history_memory << 20,
            rooms_per_person: config.rooms_per_person.into(),
            call_size: config.call_size.into(),
        };
        let admission = Arc::new(Admission::new(admission::Limits {
            open: config.max_connections_per_address,
            rate: config.connection_rate_per_address,
            ipv6_prefix: config.ipv6_prefix,
        }));
        let hub = Arc::new(Hub {
            rooms: Mutex::new(Rooms::new(limits)),
            bulk: PerAddress::new(BULK_BURST_PER_ADDRESS, BULK_RATE_PER_ADDRESS),
            entries: PerAddress::new(ENTRY_BURST_PER_ADDRESS, ENTRY_RATE_PER_ADDRESS),
            admission,
            config,
            io: io.clone(),
            directory_changed: Notify::new(),
            resumable: Mutex::new(HashMap::new()),
            here: Mutex::new(HashMap::new()),
            room_locks: RoomLocks::default(),
            next_message: AtomicU64::new(1),
            boot_ms: now_ms(),
            link,
            closing: AtomicBool::new(false),
            nodes: Mutex::new(Nodes::default()),
            presence: tokio::sync::watch::Sender::new(0),
        });
        let setup = {
            let hub = hub.clone();
            move |s: SocketRef, TryData(auth): TryData<serde_json::Value>| {
                hub.clone().accept(s, auth.ok());
                ready(Ok::<(), std::convert::Infallible>(()))
            }
        };
        let connected = {
            let hub = hub.clone();
            move |s: SocketRef| {
                // Nothing can be sent before the client is told it is connected.
                if s.extensions.get::<PersonId>().is_some() {
                    tell_session(&s);
                }
                if s.rooms().iter().any(|r| r == LOBBY) {
                    hub.send_directory(&s);
                }
                ready(())
            }
        };
        // Setting up in the middleware registers every handler before the client is told it is
        // connected, so no early event can miss its handler.
        // The adapter subscribes to its channels with the link, which registers them for every
        // connection it makes; it does not wait for Redis.
        io.ns("/", connected.with(setup)).await.map_err(|e| anyhow::anyhow!("Socket.IO adapter: {e}"))?;
        tokio::spawn(directory::publish(hub.clone()));
        if hub.config.turn_urls().next().is_some() {
            let ttl = Duration::from_secs(hub.config.turn_ttl);
            tokio::spawn(call::renew_ice_periodically(Arc::downgrade(&hub), ttl));
        }
        tokio::spawn({
            let hub = Arc::downgrade(&hub);
            async move {
                let mut every = tokio::time::interval(admission::SWEEP_EVERY);
                loop {
                    every.tick().await;
                    let Some(hub) = hub.upgrade() else { return };
                    hub.admission.sweep(std::time::Instant::now());
                }
            }
        });
        hub.link.start(hub.clone());
        Ok((layer, hub))
    }

    /// Disconnects every socket, for shutdown, and tells the other nodes.
    pub async fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        // Ends the admin panel's waiting requests, which would hold the connections open.
        self.presence.send_modify(|v| *v += 1);
        // So that pages say why they lost the connection, and come back by themselves.
        let _ = self.io.local().emit("server:restarting", &serde_json::json!({})).await;
        self.io.close().await;
        // The departures go out first, as the other nodes' users expect them; what is left
        // when this takes too long, the other nodes drop on hearing that this one is gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.link.is_clustered() && self.has_own_people() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.link.leave_cluster().await;
    }

    fn has_own_people(&self) -> bool {
        self.with_own_people(|_, own| !own.is_empty())
    }

    /// A page came back on another node: its connection here, if any, is dead.
    fn resumed_elsewhere(&self, token: &str) {
        let old = self.resumable.lock().remove(token);
        if let Some(old) = old.and_then(|id| self.io.get_socket(id)) {
            let _ = old.disconnect();
        }
    }

    /// What `/metrics` reads from the room state.
    pub fn gauges(&self) -> Gauges {
        let (rooms, participants, calls, in_calls) = {
            let r = self.rooms.lock();
            let (participants, in_calls) = r.presence_counts();
            (r.room_count(), participants, r.call_count(), in_calls)
        };
        let clustered = self.link.is_clustered();
        Gauges {
            rooms,
            participants,
            calls,
            in_calls,
            nodes: clustered.then(|| self.nodes.lock().count()),
            redis_up: clustered.then(|| self.link.state() == crate::cluster::LinkState::Up),
        }
    }

    /// Ready for new users: not shutting down, and linked to the other nodes where there are any.
    pub fn is_ready(&self) -> bool {
        !self.closing.load(Ordering::Relaxed) && self.link.state() != crate::cluster::LinkState::Down
    }

    /// `"off"`, `"up"` or `"down"`: this node's link to the other nodes.
    pub fn link_state(&self) -> &'static str {
        self.link.state().as_str()
    }

    /// Pushes to the sockets of this node in `room` (a Socket.IO room) but the source. Every node
    /// tells its own sockets of a change, as it applies it (see [`Hub::with_rooms`]): a local
    /// broadcast, which is done when it returns.
    fn broadcast<T: Serialize + ?Sized>(&self, source: Source, room: String, event: &'static str, data: &T) {
        let to = match source {
            Source::Socket(s) => s.local().to(room),
            Source::Replica => self.io.local().to(room),
        };
        if to.emit(event, data).now_or_never().is_none() {
            tracing::warn!(event, "a local broadcast did not complete at once");
        }
    }

    /// A broadcast to the sockets in `room` on every node but the sender: the seed's signals,
    /// which no node keeps a record of.
    fn everywhere(&self, s: &SocketRef, room: String) -> BroadcastOperators<Adapter> {
        if self.link.is_clustered() { s.to(room) } else { s.local().to(room) }
    }

    /// The per-address counts of connections, which the listener counts TCP connections in too.
    pub fn admission(&self) -> Arc<Admission> {
        self.admission.clone()
    }

    /// Whether a client at `ip` may open a new connection (see [`crate::admission`]).
    pub fn admit(&self, ip: IpAddr) -> Result<(), admission::Refusal> {
        self.admission.admit(ip, std::time::Instant::now())
    }

    /// Admits a connection that is not a Socket.IO session (the plain `/ws` chat): it counts as
    /// open for as long as the slot is kept.
    pub fn occupy(self: &Arc<Self>, ip: IpAddr) -> Result<Arc<Slot>, admission::Refusal> {
        let now = std::time::Instant::now();
        self.admission.admit(ip, now)?;
        // `opened` counts the connection even when it refuses it: the slot exists first, so that
        // dropping it, refused or not, takes the count back.
        let slot = Arc::new(Slot { hub: self.clone(), ip });
        if self.admission.opened(ip, now) { Ok(slot) } else { Err(admission::Refusal::TooManyOpen) }
    }

    fn accept(self: Arc<Self>, s: SocketRef, auth: Option<serde_json::Value>) {
        // The gate admitted the request; connections admitted at the same moment may still make
        // one too many.
        let address = s.req_parts().extensions.get::<ClientAddress>().map(|a| a.0);
        if let Some(ip) = address
            && !self.admission.opened(ip, std::time::Instant::now())
        {
            self.admission.closed(ip);
            COUNTERS.refused_connection(admission::Refusal::TooManyOpen);
            let _ = s.disconnect();
            return;
        }
        let handshake: Handshake = auth.and_then(|a| serde_json::from_value(a).ok()).unwrap_or_default();
        let wants_noom = handshake.protocol.as_deref() == Some("noom/1");
        let resume = handshake.resume.filter(|t| (1..=64).contains(&t.len()));
        if let Some(token) = &resume {
            let previous = self.resumable.lock().insert(token.clone(), s.id);
            // The same page connecting again: its old connection is dead (a network drop), and
            // the server would otherwise notice only at the ping timeout.
            if let Some(old) = previous.and_then(|id| self.io.get_socket(id)) {
                let _ = old.disconnect();
            }
            // Or on another node, behind a load balancer that sent this connection elsewhere.
            self.link.publish_op(Op::Resumed { token: token.clone() });
        }
        let session = Arc::new(Session {
            noom: AtomicBool::new(false),
            chat: Mutex::new(TokenBucket::new(self.config.chat_burst, self.config.chat_rate)),
            events: Mutex::new(TokenBucket::new(
                (self.config.event_rate * EVENT_BURST_SECONDS) as u32,
                self.config.event_rate,
            )),
            signals: Mutex::new(TokenBucket::new(SIGNAL_BURST, SIGNAL_RATE)),
            bulk: Mutex::new(TokenBucket::new(BULK_BURST, BULK_RATE)),
            address: address
                .filter(|ip| !ip.to_canonical().is_loopback())
                .map(|ip| admission::address_key(ip, self.config.ipv6_prefix)),
            queue: Arc::new(SerialQueue::default()),
        });
        // Who this socket is to everyone else: never its transport session id.
        let me = PersonId::random();
        s.extensions.insert(me);
        self.here.lock().insert(me, s.id);
        self.rooms.lock().connect(me);
        if wants_noom {
            // In no room yet: the lobby. The directory follows once connected.
            session.noom.store(true, Ordering::Relaxed);
            s.join(LOBBY);
        } else {
            s.join(SEED_SOCKETS);
        }
        self.listen(&s, &session);
        let hub = self.clone();
        let queue = session.queue.clone();
        COUNTERS.connected();
        s.on_disconnect(move |s: SocketRef| {
            COUNTERS.disconnected();
            if let Some(ip) = address {
                hub.admission.closed(ip);
            }
            if let Some(token) = &resume {
                let mut resumable = hub.resumable.lock();
                if resumable.get(token) == Some(&s.id) {
                    resumable.remove(token);
                }
            }
            hub.here.lock().remove(&me);
            // Behind every event already queued, whatever the limit.
            let hub = hub.clone();
            let _ = queue.push(usize::MAX, async move { hub.disconnect(s).await });
            ready(())
        });
    }

    /// Listens to every event of a socket with one handler (one per event would cost each idle
    /// connection a map and a dozen closures). Rate and arguments are checked on arrival, in
    /// order; the work is queued.
    fn listen(self: &Arc<Self>, s: &SocketRef, session: &Arc<Session>) {
        let hub = self.clone();
        let session = session.clone();
        s.on_fallback(move |s: SocketRef, Event(name): Event, TryData(args): TryData<Args>, ack: AckSender| {
            let def = find_event(&name);
            let kind = def.map_or(EventKind::Seed, |def| def.kind);
            let (bucket, queue_limit) =
                if kind.is_signal() { (&session.signals, SIGNAL_QUEUE_LIMIT) } else { (&session.events, QUEUE_LIMIT) };
            if !bucket.lock().try_take() {
                refuse(ack, &ApiError::new(ErrorCode::RateLimited, "too many messages; slow down"));
                return ready(());
            }
            let Some(def) = def else {
                refuse(ack, &ApiError::bad_request(format!("there is no event {name:?}")));
                return ready(());
            };
            if session.queue.is_full(queue_limit) {
                refuse(ack, &ApiError::new(ErrorCode::Overloaded, "too many events waiting; not processed"));
                return ready(());
            }
            let Ok(args) = args else {
                refuse(ack, &ApiError::bad_request("arguments could not be read"));
                return ready(());
            };
            let hub = hub.clone();
            let session = session.clone();
            let _ = session.clone().queue.push(queue_limit, async move {
                // Refusals are answered in turn too: answers come in the order of the events.
                let request = match requests::parse(def.name, &args) {
                    Some(Ok(request)) => request,
                    Some(Err(e)) => return refuse(ack, &e),
                    None => return,
                };
                if kind.is_noom() && session.flavour() == Flavour::Seed {
                    hub.become_noom(&s, &session).await;
                }
                run(hub, session, s, request, ack).await
            });
            ready(())
        });
    }

    /// Switches a socket to Noom pushes; in the lobby, it gets the directory at once.
    async fn become_noom(&self, s: &SocketRef, session: &Session) {
        session.noom.store(true, Ordering::Relaxed);
        s.leave(SEED_SOCKETS);
        let in_rooms = self.with_rooms(|r| {
            let rooms = r.rooms_of(person(s));
            for room in &rooms {
                s.leave(room_key(Flavour::Seed, room));
                s.join(room_key(Flavour::Noom, room));
            }
            !rooms.is_empty()
        });
        if !in_rooms {
            self.enter_lobby(s);
        }
    }

    fn enter_lobby(&self, s: &SocketRef) {
        s.join(LOBBY);
        self.send_directory(s);
    }

    fn send_directory(&self, s: &SocketRef) {
        let _ = s.emit("directory", &self.directory());
    }

    /// Runs `change` on the room state and wakes the directory publisher if it moved.
    ///
    /// What a change causes is told inside `change`, with the state still locked, so that the
    /// sockets here hear of changes in the order they were made, whichever node made them: an
    /// answer listing the room, then exactly what happened after it.
    fn with_rooms<T>(&self, change: impl FnOnce(&mut Rooms) -> T) -> T {
        let mut rooms = self.rooms.lock();
        let (directory, presence) = (rooms.directory_version(), rooms.presence_version());
        let out = change(&mut rooms);
        if rooms.directory_version() != directory {
            self.directory_changed.notify_one();
        }
        if rooms.presence_version() != presence {
            self.presence.send_modify(|v| *v += 1);
        }
        out
    }

    /// Counts an entry into a room the socket is not in against its address's entries (see
    /// [`ENTRY_BURST_PER_ADDRESS`]): checked before anything of the entry is done, a room:join's
    /// leaving of the other rooms included.
    fn count_entry(&self, session: &Session, already_in: bool) -> Result<(), ApiError> {
        match session.address {
            Some(address) if !already_in && !self.entries.try_take_at(address, std::time::Instant::now()) => {
                Err(ApiError::new(ErrorCode::RateLimited, "too many rooms entered from your address; wait a moment"))
            }
            _ => Ok(()),
        }
    }

    /// Puts the socket in a room and tells the others there. `answer` is called with the entry
    /// and the room state right after it: the newcomer's answer goes out before anything that
    /// happens in the room later.
    async fn enter(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        unlisted: bool,
        answer: impl FnOnce(&Entered, &Rooms),
    ) -> Result<(), ApiError> {
        let me = person(s);
        let _turn = self.room_locks.lock(room).await;
        self.with_rooms(|r| {
            let entered = r.enter(me, room, unlisted)?;
            answer(&entered, r);
            if entered.is_new {
                let flavour = session.flavour();
                s.join(room_key(flavour, room));
                if flavour == Flavour::Noom {
                    s.leave(LOBBY);
                }
                self.link.publish_op(Op::Enter {
                    id: me,
                    nickname: entered.me.nickname.to_string(),
                    room: entered.room.name.to_string(),
                    unlisted: entered.room.unlisted,
                });
                self.announce_entered(Source::Socket(s), &entered);
            }
            Ok(())
        })
    }

    fn announce_entered(&self, source: Source<'_>, entered: &Entered) {
        let (name, count) = (&entered.room.name, entered.room.count);
        self.broadcast(source, room_key(Flavour::Seed, name), "welcome", &(&entered.me.nickname, count));
        let joined = ParticipantEvent { room: name, participant: &entered.me, count: Some(count) };
        self.broadcast(source, room_key(Flavour::Noom, name), "participant:joined", &joined);
    }

    /// Takes the socket out of one room, or all, and tells those left behind. A Noom socket left
    /// in no room is back in the lobby, unless it is on its way to another room.
    async fn leave(
        &self,
        s: &SocketRef,
        session: &Session,
        room: Option<&str>,
        to_lobby: bool,
    ) -> Result<Vec<Arc<str>>, ApiError> {
        let me = person(s);
        let rooms = match room {
            Some(room) if !self.rooms.lock().is_member(me, room) => {
                return Err(ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}")));
            }
            Some(room) => vec![Arc::from(room)],
            None => self.rooms.lock().rooms_of(me),
        };
        let flavour = session.flavour();
        let mut left = Vec::with_capacity(rooms.len());
        for room in rooms {
            left.extend(self.leave_room(s, flavour, &room).await);
        }
        if to_lobby && flavour == Flavour::Noom && !left.is_empty() {
            self.back_to_lobby(s);
        }
        Ok(left)
    }

    /// Takes the socket out of one room, if it is in it, and tells those left behind.
    async fn leave_room(&self, s: &SocketRef, flavour: Flavour, room: &str) -> Option<Arc<str>> {
        let _turn = self.room_locks.lock(room).await;
        let me = person(s);
        self.with_rooms(|r| {
            let left = r.leave(me, room).ok()?;
            s.leave(room_key(flavour, room));
            self.published_leave(me, room);
            self.announce_left(Source::Socket(s), &left);
            Some(left.room)
        })
    }

    /// A Noom socket in no room any more is in the lobby.
    fn back_to_lobby(&self, s: &SocketRef) {
        if self.rooms.lock().rooms_of(person(s)).is_empty() {
            self.enter_lobby(s);
        }
    }

    /// Tells the other nodes that someone of this node left a room (and its call).
    fn published_leave(&self, id: PersonId, room: &str) {
        self.link.publish_op(Op::Leave { id, room: room.to_owned() });
        self.link.release_call_place(room, id);
    }

    fn announce_left(&self, source: Source<'_>, left: &Left) {
        self.broadcast(source, room_key(Flavour::Seed, &left.room), "bye", &(&left.me.nickname, left.count));
        let event = ParticipantEvent { room: &left.room, participant: &left.me, count: Some(left.count) };
        self.broadcast(source, room_key(Flavour::Noom, &left.room), "participant:left", &event);
    }

    async fn rename(&self, s: &SocketRef, nickname: &str) -> Result<Participant, ApiError> {
        let id = person(s);
        self.with_rooms(|r| {
            let me = r.rename(id, nickname)?;
            self.link.publish_op(Op::Rename { id, nickname: nickname.to_owned() });
            self.announce_renamed(Source::Socket(s), r, id);
            Ok(me)
        })
    }

    /// Tells each room someone is in of their new name, with their call state there.
    fn announce_renamed(&self, source: Source<'_>, rooms: &Rooms, id: PersonId) {
        for room in rooms.rooms_of(id) {
            if let Some(member) = rooms.member(id, &room) {
                self.announce_updated(source, &room, &member);
            }
        }
    }

    /// Tells the others in `room` how someone now is (name, call, media).
    fn announce_updated(&self, source: Source<'_>, room: &str, participant: &Participant) {
        let event = ParticipantEvent { room, participant, count: None };
        self.broadcast(source, room_key(Flavour::Noom, room), "participant:updated", &event);
    }

    /// Records a (checked) chat message and delivers it to the others in its room; `answer`
    /// runs before the room is unlocked. Only a message that would be delivered costs against
    /// the chat rate.
    async fn post(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        text: String,
        answer: impl FnOnce(&ChatMessage),
    ) -> Result<(), ApiError> {
        let _turn = self.room_locks.lock(room).await;
        let me = person(s);
        self.with_rooms(|r| {
            if !r.is_member(me, room) {
                return Err(ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}")));
            }
            if !session.chat.lock().try_take() {
                return Err(ApiError::new(ErrorCode::RateLimited, "too many messages; slow down"));
            }
            let id = format!("{:x}-{:x}", self.boot_ms, self.next_message.fetch_add(1, Ordering::Relaxed));
            let message = r.post(me, room, text, id, now_ms())?;
            self.link.publish_op(Op::Chat { message: message.clone() });
            COUNTERS.chat_message();
            self.announce_message(Source::Socket(s), &message);
            answer(&message);
            Ok(())
        })
    }

    fn announce_message(&self, source: Source<'_>, message: &ChatMessage) {
        let line = format!("{}: {}", message.sender.nickname, message.text);
        self.broadcast(source, room_key(Flavour::Seed, &message.room), "new_message", &line);
        self.broadcast(source, room_key(Flavour::Noom, &message.room), "chat:message", message);
    }

    async fn disconnect(&self, s: SocketRef) {
        let me = person(&s);
        let rooms = self.rooms.lock().rooms_of(me);
        for room in rooms {
            let _turn = self.room_locks.lock(&room).await;
            self.with_rooms(|r| {
                if let Ok(left) = r.leave(me, &room) {
                    self.published_leave(me, &room);
                    self.announce_left(Source::Socket(&s), &left);
                }
            });
        }
        self.with_rooms(|r| r.disconnect(me));
        self.link.publish_op(Op::Disconnect { id: me });
    }

    /// The socket of someone connected to this node.
    fn socket_of(&self, id: PersonId) -> Option<SocketRef> {
        let sid = self.here.lock().get(&id).copied()?;
        self.io.get_socket(sid)
    }

    fn directory(&self) -> crate::rooms::Directory {
        self.rooms.lock().directory(DIRECTORY_LIMIT)
    }
}

#[derive(Serialize)]
struct ParticipantEvent<'a> {
    room: &'a str,
    participant: &'a Participant,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}
