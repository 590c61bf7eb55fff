//! Who each socket is and how it is served: the handshake, the person id it is known by, a page
//! coming back with its resume token, the flavour of pushes it gets, and the lobby.

use std::future::ready;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Deserialize;
use socketioxide::socket::{DisconnectReason, Sid};

use super::limits::{
    BULK_BURST, BULK_RATE, ClientAddress, EVENT_BURST_SECONDS, PASSWORD_GUESS_BURST, PASSWORD_GUESS_RATE,
    REACTION_BURST, REACTION_RATE, SIGNAL_BURST, SIGNAL_RATE,
};
use super::outbox::Outbox;
use super::serial::SerialQueue;
use super::{Hub, LOBBY, SEED_SOCKETS, SocketRef, outbox, room_key};
use crate::admission;
use crate::cluster::{MEDIA_NODE_TIMEOUT, Op};
use crate::events;
use crate::metrics::COUNTERS;
use crate::ratelimit::TokenBucket;
use crate::rooms::PersonId;
use crate::stall::Written;

/// The handshake's `auth` payload.
#[derive(Default, Deserialize)]
pub(super) struct Handshake {
    /// `"noom/1"` asks for Noom pushes.
    protocol: Option<String>,
    /// A random token a page keeps for its lifetime: a new connection with it replaces the old one.
    resume: Option<String>,
}

/// Which family of pushes a socket receives (see `docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    Seed,
    Noom,
}

/// A connected socket's own state: its flavour, its budgets, its queue of events.
pub(super) struct Session {
    pub(super) noom: AtomicBool,
    pub(super) chat: Mutex<TokenBucket>,
    pub(super) events: Mutex<TokenBucket>,
    pub(super) signals: Mutex<TokenBucket>,
    pub(super) reactions: Mutex<TokenBucket>,
    /// Room passwords tried.
    pub(super) password_guesses: Mutex<TokenBucket>,
    /// Bytes, see [`BULK_BURST`].
    pub(super) bulk: Mutex<TokenBucket>,
    /// The client's address as per-address limits on bulky output and room entries count it:
    /// none for a client on this machine (the operator's tools, tests, a proxy that does not say
    /// whom it forwards) or a connection the gate did not see.
    pub(super) address: Option<IpAddr>,
    pub(super) queue: Arc<SerialQueue>,
}

/// Who a socket is to everyone else (set when it connects, before any of its events).
pub(super) fn person(s: &SocketRef) -> PersonId {
    s.extensions.get::<PersonId>().expect("every socket is given a person id as it connects")
}

/// The [`crate::cluster::resume_key`] of a socket's resume token, for the other nodes.
#[derive(Clone)]
struct ResumeKey(String);

/// The resume key of a socket whose page sent a token.
pub(super) fn resume_key_of(s: &SocketRef) -> Option<String> {
    s.extensions.get::<ResumeKey>().map(|k| k.0)
}

/// Tells a socket who it is to everyone else, first thing once connected.
pub(super) fn tell_session(s: &SocketRef) {
    outbox::push(s, events::noom::SESSION, &serde_json::json!({ "id": person(s) }));
}

impl Session {
    pub(super) fn flavour(&self) -> Flavour {
        if self.noom.load(Ordering::Relaxed) { Flavour::Noom } else { Flavour::Seed }
    }
}

impl Hub {
    pub(super) fn accept(self: Arc<Self>, s: SocketRef, auth: Option<serde_json::Value>) {
        // The gate admitted the request; connections admitted at the same moment may still make
        // one too many.
        let address = s.req_parts().extensions.get::<ClientAddress>().map(|a| a.0);
        if let Some(ip) = address
            && !self.admission.opened(ip, std::time::Instant::now())
        {
            self.admission.closed(ip);
            COUNTERS.refused_connection(admission::Refusal::TooManyOpen, ip);
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
            if let Some(old) = previous.and_then(|id| self.local_socket(id)) {
                let _ = old.disconnect();
            }
            // Or on another node, behind a load balancer that sent this connection elsewhere.
            self.link.publish_op(Op::Resumed { token: token.clone() });
            self.resumed_away_from_others(token);
            s.extensions.insert(ResumeKey(crate::cluster::resume_key(token)));
        }
        let session = Arc::new(Session {
            noom: AtomicBool::new(false),
            chat: Mutex::new(TokenBucket::new(self.config.chat_burst, self.config.chat_rate)),
            events: Mutex::new(TokenBucket::new(
                (self.config.event_rate * EVENT_BURST_SECONDS) as u32,
                self.config.event_rate,
            )),
            signals: Mutex::new(TokenBucket::new(SIGNAL_BURST, SIGNAL_RATE)),
            reactions: Mutex::new(TokenBucket::new(REACTION_BURST, REACTION_RATE)),
            password_guesses: Mutex::new(TokenBucket::new(PASSWORD_GUESS_BURST, PASSWORD_GUESS_RATE)),
            bulk: Mutex::new(TokenBucket::new(BULK_BURST, BULK_RATE)),
            address: address
                .filter(|ip| !ip.to_canonical().is_loopback())
                .map(|ip| admission::address_key(ip, self.config.ipv6_prefix)),
            queue: Arc::new(SerialQueue::default()),
        });
        let outbox = Outbox::new(session.address.map(|address| self.waiting.of(address)));
        if s.transport_type() == socketioxide::TransportType::Websocket
            && let Some(written) = s.req_parts().extensions.get::<Written>()
        {
            outbox.streams_on(written);
        }
        s.extensions.insert(outbox);
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
        let (transport, flavour) = (s.transport_type(), if wants_noom { "noom" } else { "seed" });
        tracing::info!(sid = %s.id, person = %me, client = address.map(display), ?transport, flavour, "socket connected");
        let since = Instant::now();
        s.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
            COUNTERS.disconnected();
            let seconds = since.elapsed().as_secs();
            tracing::info!(sid = %s.id, person = %me, client = address.map(display), ?reason, seconds, "socket disconnected");
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
            let _ = queue.push(usize::MAX, async move { hub.disconnect(s) });
            ready(())
        });
    }

    /// A page came back on another node: its connection here, if any, is dead.
    pub(super) fn resumed_elsewhere(&self, token: &str) {
        let old = self.resumable.lock().remove(token);
        if let Some(old) = old.and_then(|id| self.local_socket(id)) {
            let _ = old.disconnect();
        }
        self.resumed_away_from_others(token);
    }

    /// A page came back on some node: its connection on a third node is dead. That node says so
    /// itself, unless it is quiet: then its person is forgotten when it turns quiet, or now if it
    /// is already.
    fn resumed_away_from_others(&self, token: &str) {
        let replaced = {
            let mut nodes = self.nodes.lock();
            nodes.resumed(&crate::cluster::resume_key(token)).filter(|id| {
                nodes.owner(*id).is_some_and(|node| !nodes.heard_within(node, Instant::now(), MEDIA_NODE_TIMEOUT))
            })
        };
        if let Some(id) = replaced {
            self.forget_replaced(id);
        }
    }

    /// Switches a socket to Noom pushes; in the lobby, it gets the directory at once.
    pub(super) async fn become_noom(&self, s: &SocketRef, session: &Session) {
        session.noom.store(true, Ordering::Relaxed);
        s.leave(SEED_SOCKETS);
        let in_rooms = self.with_rooms(|r, told| {
            let rooms = r.rooms_of(person(s));
            for room in &rooms {
                let (s, seed, noom) = (s.clone(), room_key(Flavour::Seed, room), room_key(Flavour::Noom, room));
                told.queue(room, move || {
                    s.leave(seed);
                    s.join(noom);
                });
            }
            !rooms.is_empty()
        });
        if !in_rooms {
            self.enter_lobby(s);
        }
    }

    pub(super) fn enter_lobby(&self, s: &SocketRef) {
        s.join(LOBBY);
        self.send_directory(s);
    }

    pub(super) fn send_directory(&self, s: &SocketRef) {
        outbox::push(s, events::noom::DIRECTORY, &self.directory());
    }

    /// The socket of someone connected to this node.
    pub(super) fn socket_of(&self, id: PersonId) -> Option<SocketRef> {
        let sid = self.here.lock().get(&id).copied()?;
        self.local_socket(sid)
    }

    /// A socket of this node, while it serves any (its namespace is gone at shutdown).
    pub(super) fn local_socket(&self, sid: Sid) -> Option<SocketRef> {
        self.io.of("/")?.get_socket(sid)
    }

    /// Whether this node still serves sockets: its namespace is gone at shutdown, and anything
    /// sent through it then (to a room, to another node's socket) would panic.
    pub(super) fn serving(&self) -> bool {
        self.io.of("/").is_some()
    }
}
