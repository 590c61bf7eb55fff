//! The live side of Noom: Socket.IO connections, their events, and what they cause.
//!
//! One [`Hub`] (here) owns the room state, the Socket.IO handle and the link to the other nodes;
//! the parts below extend it, each owning one concern:
//!
//! - `session`: who each socket is (its person id), its handshake and resume, its flavour.
//! - `dispatch`: every event in: which exist, their rate and queue, the order they run in.
//! - `limits`: what one socket and one client address may cost.
//! - `seed`, `noom`, `call`: what each event does (the seed's, Noom's, calls').
//! - `media`: calls through the media server: their signalling, and what their media tells.
//! - `media_route`: which node's media server carries a call, and the way to it from here.
//! - `cascade`: calls spanning nodes: which other nodes each call's media server shares it with.
//! - `call_presence`: media state in large calls, batched and told only to those who show it.
//! - `changes`: changes to rooms made here, and how each is told (the sockets here, other nodes).
//! - `replica`: changes made on other nodes, applied here and told to the sockets here.
//! - `moderation`: the admin's actions.
//! - `meeting`: running a meeting: hosts' controls, and everyone's hand.
//! - `drain`: a node on its way out: no new users or calls, and a stop once its calls are over.
//! - `directory`: the lobby's room list, pushed as it changes.
//! - `outbox`: everything sent to a socket, counted in bytes; a socket that falls behind is
//!   closed.
//! - `room_home`: each room's home: what its members hear, in the order it changed, sent with no
//!   lock held; its turn. (A call's media router has a task of its own: see [`crate::sfu`].)
//! - `serial`: a socket's events, in the order they came.
//! - `locks`: the hub's locks and the one order they are taken in.
//! - `plain_ws`: the plain WebSocket chat at `/ws`, apart from all of the above.

mod call;
mod call_presence;
mod cascade;
mod changes;
mod directory;
mod dispatch;
mod drain;
mod limits;
mod locks;
mod media;
mod media_route;
mod meeting;
mod moderation;
mod noom;
mod outbox;
pub mod plain_ws;
mod replica;
mod room_home;
mod seed;
mod serial;
mod session;

use dispatch::{Answer, EventDef, EventKind, NO_ARGS, refuse, reply};
use limits::{
    BULK_BURST_PER_ADDRESS, BULK_RATE_PER_ADDRESS, ENTRY_BURST_PER_ADDRESS, ENTRY_RATE_PER_ADDRESS,
    PASSWORD_GUESS_BURST_PER_ADDRESS, PASSWORD_GUESS_RATE_PER_ADDRESS,
};
pub use limits::{ClientAddress, Slot};
use locks::{Rank, Ranked};
use outbox::AckSender;
use session::{Flavour, Session, person, resume_key_of, tell_session};

use std::collections::HashMap;
use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socketioxide::extract::TryData;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Sid;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::sync::Notify;

use crate::admission::{self, Admission};
use crate::cluster::{Link, Nodes};
use crate::config::Config;
use crate::metrics::Gauges;
use crate::ratelimit::PerAddress;
use crate::rooms::{Limits, PersonId, Rooms};
use crate::sfu::MediaServer;
use crate::stall::OpenConnections;
use crate::turn::RelayPorts;
use room_home::{RoomHomes, Told};

/// The directory lists at most this many rooms.
pub const DIRECTORY_LIMIT: usize = 100;
/// Packets waiting to be written to one client before more are dropped. What they weigh is
/// bounded in bytes by the socket's [`outbox::Outbox`], which closes the socket first: this many
/// packets of 64 bytes or more are past its bound. The queue allocates as it fills, so the bound
/// costs an idle socket nothing.
const SEND_BUFFER: usize = 65_536;
/// Largest Socket.IO packet accepted: room for the largest session description accepted
/// ([`crate::signal::SFU_SDP_MAX`], with JSON's escapes), so that one too large is answered with
/// an error rather than a closed connection.
const MAX_PAYLOAD: u64 = 640 * 1024;

/// Bytes read from a WebSocket at a time. Chat packets are a few hundred bytes; the default of
/// 4 KiB is a tenth of an idle connection's memory.
const WS_READ_BUFFER: usize = 1024;

/// How long shutdown gives the farewell (`server:restarting`) to reach the sockets' connections
/// before cutting them.
const FAREWELL_FLUSH: Duration = Duration::from_millis(100);

/// Socket.IO rooms (the adapter's, not ours) that group sockets for broadcasts.
const SEED_SOCKETS: &str = "f:seed";
const LOBBY: &str = "lobby";

/// The Socket.IO adapter: socketioxide-redis over our [`Link`]. A node alone uses it too; its
/// broadcasts are all marked local (see `Hub::audience`), so nothing is encoded for Redis.
pub type Adapter = CustomRedisAdapter<socketioxide::adapter::Emitter, Link>;
type SocketRef = socketioxide::extract::SocketRef<Adapter>;
type SocketIo = socketioxide::SocketIo<Adapter>;
type RawAckSender = socketioxide::extract::AckSender<Adapter>;

/// This node's live state: the rooms (all nodes' view of them), the sockets connected here, the
/// link to the other nodes, and the per-address counts.
pub struct Hub {
    rooms: Ranked<Rooms>,
    config: Arc<Config>,
    io: SocketIo,
    directory_changed: Notify,
    /// Each room's home: its queue of what its members hear, and its turn.
    homes: RoomHomes,
    /// Resume tokens of connected sockets (see [`session::Handshake`]).
    resumable: Ranked<HashMap<String, Sid>>,
    /// The socket of each person connected to this node.
    here: Ranked<HashMap<PersonId, Sid>>,
    next_message: AtomicU64,
    boot_ms: u64,
    link: Link,
    closing: AtomicBool,
    /// The other nodes of the cluster, and who is connected to each.
    nodes: Ranked<Nodes>,
    /// Connections per client address.
    admission: Arc<Admission>,
    /// Every connection open, cut at shutdown.
    connections: OpenConnections,
    /// When this node began draining, if it is (see [`drain`]).
    draining: parking_lot::Mutex<Option<std::time::Instant>>,
    drain_asked: Notify,
    /// Bytes of bulky output per client address (see [`BULK_BURST_PER_ADDRESS`]).
    bulk: PerAddress,
    /// Rooms entered per client address (see [`ENTRY_BURST_PER_ADDRESS`]).
    entries: PerAddress,
    /// Room passwords and host keys tried per client address (see [`PASSWORD_GUESS_BURST_PER_ADDRESS`]).
    guesses: PerAddress,
    /// Bytes waiting to be sent per client address (see [`outbox`]).
    waiting: outbox::PerAddress,
    /// Moves when anyone's presence does (see [`Rooms::presence_version`]), and at shutdown:
    /// what the admin panel's live view waits on.
    presence: tokio::sync::watch::Sender<u64>,
    /// The media server, when calls go through it; `None`: calls are a mesh.
    media: Option<Arc<MediaServer>>,
    /// Requests to other nodes' media servers, for calls they carry.
    routes: media_route::MediaRoutes,
    /// Large calls' media-state changes waiting for their batch, and what each person shows.
    call_presence: call_presence::CallPresence,
    /// Most people in one call, as calls are carried.
    call_size: u16,
    /// The built-in TURN server's relay ports, when it runs: the admin panel tells relayed
    /// browsers by them.
    turn_relays: Option<RelayPorts>,
}

/// Where a push about a room comes from: a socket of this node (which does not hear its own
/// change), or this node's copy of another node's change. Either way only the sockets here hear
/// it: each node tells its own.
#[derive(Clone, Copy)]
enum Source<'a> {
    Socket(&'a SocketRef),
    Replica,
    /// A host's control, or a hand: everyone here hears it, whoever asked too, as their page shows
    /// what the room shows.
    Everyone,
}

fn room_key(flavour: Flavour, room: &str) -> String {
    match flavour {
        Flavour::Seed => format!("s:{room}"),
        Flavour::Noom => format!("n:{room}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// Builds the Socket.IO layer and the hub behind it, and starts the directory publisher, the
    /// media server (its port defaults to `http_port`) and, with Redis, the link to the other
    /// nodes.
    pub async fn build(
        config: Arc<Config>,
        http_port: u16,
        turn_relays: Option<RelayPorts>,
    ) -> anyhow::Result<(SocketIoLayer<Adapter>, Arc<Hub>)> {
        let link = Link::new(&config.node_name(), config.redis_url.as_deref(), config.redis_ca.as_deref())?;
        let (media, media_events) = media::start(&config, http_port, link.node()).await.unzip();
        let call_size = config.call_size(media.is_some());
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
            call_size: call_size.into(),
        };
        let admission = Arc::new(Admission::new(admission::Limits {
            open: config.max_connections_per_address,
            rate: config.connection_rate_per_address,
            ipv6_prefix: config.ipv6_prefix,
        }));
        let hub = Arc::new(Hub {
            rooms: Ranked::new(Rank::Rooms, Rooms::new(limits)),
            bulk: PerAddress::new(BULK_BURST_PER_ADDRESS, BULK_RATE_PER_ADDRESS),
            entries: PerAddress::new(ENTRY_BURST_PER_ADDRESS, ENTRY_RATE_PER_ADDRESS),
            guesses: PerAddress::new(PASSWORD_GUESS_BURST_PER_ADDRESS, PASSWORD_GUESS_RATE_PER_ADDRESS),
            waiting: outbox::PerAddress::default(),
            admission,
            connections: OpenConnections::default(),
            draining: parking_lot::Mutex::new(None),
            drain_asked: Notify::new(),
            config,
            io: io.clone(),
            directory_changed: Notify::new(),
            resumable: Ranked::new(Rank::Resumable, HashMap::new()),
            here: Ranked::new(Rank::Here, HashMap::new()),
            homes: RoomHomes::default(),
            next_message: AtomicU64::new(1),
            boot_ms: now_ms(),
            link,
            closing: AtomicBool::new(false),
            nodes: Ranked::new(Rank::Nodes, Nodes::default()),
            presence: tokio::sync::watch::Sender::new(0),
            media,
            routes: Default::default(),
            call_presence: Default::default(),
            call_size,
            turn_relays,
        });
        if let Some(events) = media_events {
            tokio::spawn(media::relay_events(Arc::downgrade(&hub), events));
        }
        if hub.media.as_ref().is_some_and(|media| media.cascade().is_some()) {
            tokio::spawn(cascade::keep_peers(Arc::downgrade(&hub), http_port));
        }
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
        hub.every(admission::SWEEP_EVERY, |hub| hub.admission.sweep(std::time::Instant::now()));
        hub.every(outbox::RECOUNT_EVERY, |hub| hub.waiting.recount());
        hub.every(room_home::SWEEP_EVERY, |hub| hub.homes.sweep());
        hub.every(call_presence::BATCH_EVERY, |hub| hub.send_media_batches());
        hub.link.start(hub.clone());
        Ok((layer, hub))
    }

    /// Runs `work` every `period` for as long as the hub lives.
    fn every(self: &Arc<Self>, period: Duration, work: fn(&Hub)) {
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            loop {
                every.tick().await;
                let Some(hub) = hub.upgrade() else { return };
                work(&hub);
            }
        });
    }

    /// Disconnects every socket, for shutdown, and tells the other nodes.
    pub async fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        // Ends the admin panel's waiting requests, which would hold the connections open.
        self.presence.send_modify(|v| *v += 1);
        // The calls carried here go first, while their people are still here to be counted and
        // this node still forwards their media.
        self.hand_over_calls();
        // So that pages say why they lost the connection.
        let _ = self.io.local().emit(crate::events::noom::SERVER_RESTARTING, &serde_json::json!({})).await;
        // Each socket's writer takes the notice from its queue as soon as it runs; cut under it,
        // the notice would be lost (the clients still come back).
        tokio::time::sleep(FAREWELL_FLUSH).await;
        // Connections cut under them, every Socket.IO client reconnects; told to disconnect, or
        // sent Engine.IO's close (what `io.close` sends), some never do (python-socketio).
        let cut = self.connections.cut_all();
        tracing::info!(connections = cut, "connections closed for the restart");
        // What is left of the sockets (long-polling ones, whose cut no request notices) closes
        // here; nothing reaches their clients any more.
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
            node: self.link.node().to_owned(),
            relay_connections: self.cascade().map(|cascade| cascade.connections()),
            relay_traffic: self.cascade().map(|cascade| cascade.traffic()).unwrap_or_default(),
        }
    }

    /// Ready for new users: not shutting down or draining, and linked to the other nodes where
    /// there are any.
    pub fn is_ready(&self) -> bool {
        !self.closing.load(Ordering::Relaxed)
            && !self.is_draining()
            && self.link.state() != crate::cluster::LinkState::Down
    }

    /// This node's id in the cluster: its name, and what makes this start of it unique.
    pub fn node(&self) -> &str {
        self.link.node()
    }

    /// `"off"`, `"up"` or `"down"`: this node's link to the other nodes.
    pub fn link_state(&self) -> &'static str {
        self.link.state().as_str()
    }

    /// Runs `change` on the room state, then sends what it told, and wakes the directory
    /// publisher if it moved.
    ///
    /// What a change causes is queued in `change`, with the state still locked, in the homes of
    /// the rooms it touched, so that the sockets here hear of changes in the order they were
    /// made, whichever node made them: an answer listing the room, then exactly what happened
    /// after it. It is sent once the state is unlocked.
    fn with_rooms<T>(&self, change: impl FnOnce(&mut Rooms, &mut Told) -> T) -> T {
        let mut told = Told::new(&self.homes);
        let (out, directory_moved, presence_moved) = {
            let mut rooms = self.rooms.lock();
            let (directory, presence) = (rooms.directory_version(), rooms.presence_version());
            let out = change(&mut rooms, &mut told);
            (out, rooms.directory_version() != directory, rooms.presence_version() != presence)
        };
        told.run();
        if directory_moved {
            self.directory_changed.notify_one();
        }
        if presence_moved {
            self.presence.send_modify(|v| *v += 1);
        }
        out
    }

    fn directory(&self) -> crate::rooms::Directory {
        self.rooms.lock().directory(DIRECTORY_LIMIT)
    }
}
