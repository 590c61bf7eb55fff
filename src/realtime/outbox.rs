//! Everything sent to a socket (pushes and answers alike) goes out through here, counted in
//! bytes against the socket's [`Outbox`].
//!
//! An outbox knows how many bytes were given to its socket's transport and how many the
//! transport has written: its WebSocket's connection (see [`crate::stall::Written`]), or the
//! long-polling answers the client fetched. The difference waits in this server's memory. Past
//! [`OUTBOX_LIMIT`] for one socket, or [`OUTBOX_LIMIT_PER_ADDRESS`] for all the sockets of one
//! client address, the socket is closed at once: a client that stops reading costs the server
//! no more than that, however busy its rooms. Socket.IO's own queue counts packets, which say
//! nothing of their size.
//!
//! What another node sends to a socket here (the seed's signals, a signal to someone whose
//! call is on this node) goes through the Redis adapter, not through here; its size is bounded
//! by its sender's budget on that node.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use socketioxide::handler::FromMessageParts;
use socketioxide::operators::BroadcastOperators;

use super::locks::assert_unlocked;
use super::{Adapter, Flavour, Hub, SocketRef, Source, room_key};
use crate::metrics::COUNTERS;
use crate::stall::Written;

/// Bytes that may wait for one socket. The largest single push or answer (a room's history and
/// people, see [`crate::rooms::Rooms::entry_cost`]) is well under it.
pub const OUTBOX_LIMIT: u64 = 4 << 20;
/// Bytes that may wait for all the sockets of one client address together (none counted for
/// clients on this machine).
pub const OUTBOX_LIMIT_PER_ADDRESS: u64 = 32 << 20;
/// How often the counts of addresses near their bound are brought up to date with what has been
/// written since (a socket's share is otherwise recounted only when it is sent something).
pub const RECOUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Addresses whose count is over this are recounted; below it, what a count holds of bytes
/// written since cannot bring the address to its bound.
const RECOUNT_FROM: i64 = (OUTBOX_LIMIT_PER_ADDRESS / 4) as i64;

/// What waits to be sent to one socket.
pub(super) struct Outbox {
    state: Mutex<State>,
    /// The client's address's count, with the other sockets of that address.
    address: Option<Arc<Tally>>,
}

/// What the sockets of one client address have waiting, as last counted, and those sockets.
#[derive(Default)]
pub(super) struct Tally {
    waiting: AtomicI64,
    sockets: Mutex<Vec<Weak<Outbox>>>,
}

#[derive(Default)]
struct State {
    /// Bytes given to the transport.
    given: u64,
    /// Bytes the client fetched in long-polling answers.
    polled: u64,
    /// The connection the socket's WebSocket runs on, and what it had written before.
    stream: Option<(Written, u64)>,
    /// What this socket adds to its address's count.
    counted: u64,
    /// Past a bound once: the socket is being closed, and nothing more is given to it.
    behind: bool,
}

/// What giving a socket more bytes comes to.
#[derive(Debug, PartialEq, Eq)]
enum Given {
    Within,
    /// Past a bound, for the first time: the socket is to be closed.
    Behind,
    /// Past a bound before: the socket is closing already.
    Closing,
}

impl State {
    fn waiting(&self) -> u64 {
        let streamed = self.stream.as_ref().map_or(0, |(written, before)| written.bytes().saturating_sub(*before));
        self.given.saturating_sub(self.polled + streamed)
    }
}

impl Outbox {
    pub fn new(address: Option<Arc<Tally>>) -> Arc<Self> {
        let outbox = Arc::new(Self { state: Mutex::new(State::default()), address });
        if let Some(tally) = &outbox.address {
            tally.sockets.lock().push(Arc::downgrade(&outbox));
        }
        outbox
    }

    /// Counts `bytes` more given to the transport, unless what waits for this socket, or for its
    /// address, would then be past its bound.
    fn give(&self, bytes: u64) -> Given {
        let mut state = self.state.lock();
        if state.behind {
            return Given::Closing;
        }
        state.given += bytes;
        let waiting = state.waiting();
        let for_address = self.recount(&mut state, waiting);
        if waiting <= OUTBOX_LIMIT && for_address <= OUTBOX_LIMIT_PER_ADDRESS as i64 {
            return Given::Within;
        }
        state.behind = true;
        // Nothing more will be sent; what was is the transport's to drop as the socket closes.
        state.given -= bytes;
        let waiting = state.waiting();
        self.recount(&mut state, waiting);
        Given::Behind
    }

    /// Brings the address's count up to date with what this socket has waiting; returns the
    /// address's new count.
    fn recount(&self, state: &mut State, waiting: u64) -> i64 {
        let Some(address) = &self.address else { return 0 };
        let change = waiting as i64 - state.counted as i64;
        state.counted = waiting;
        address.waiting.fetch_add(change, Ordering::Relaxed) + change
    }

    /// What has been written since the last count lowers the address's count.
    pub fn refresh(&self) {
        let mut state = self.state.lock();
        let waiting = state.waiting();
        self.recount(&mut state, waiting);
    }

    /// The client fetched a long-polling answer of `bytes`.
    pub fn polled(&self, bytes: u64) {
        self.state.lock().polled += bytes;
    }

    /// The socket's transport is now a WebSocket on the connection that wrote `written`.
    pub fn streams_on(&self, written: &Written) {
        self.state.lock().stream = Some((written.clone(), written.bytes()));
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if let Some(address) = &self.address {
            address.waiting.fetch_sub(self.state.get_mut().counted as i64, Ordering::Relaxed);
            // Its own entry, and any other of a socket gone meanwhile.
            address.sockets.lock().retain(|socket| socket.strong_count() > 0 && !std::ptr::eq(socket.as_ptr(), self));
        }
    }
}

/// The count of each client address with sockets (see [`Outbox::recount`]).
#[derive(Default)]
pub(super) struct PerAddress(Mutex<HashMap<IpAddr, Arc<Tally>>>);

impl PerAddress {
    pub fn of(&self, address: IpAddr) -> Arc<Tally> {
        self.0.lock().entry(address).or_default().clone()
    }

    /// Brings the counts of addresses near their bound up to date, and forgets the addresses
    /// with no socket left.
    pub fn recount(&self) {
        let near: Vec<Arc<Tally>> = {
            let mut map = self.0.lock();
            map.retain(|_, tally| Arc::strong_count(tally) > 1);
            map.values().filter(|tally| tally.waiting.load(Ordering::Relaxed) > RECOUNT_FROM).cloned().collect()
        };
        for tally in near {
            let sockets: Vec<Arc<Outbox>> = {
                let mut sockets = tally.sockets.lock();
                sockets.retain(|socket| socket.strong_count() > 0);
                sockets.iter().filter_map(Weak::upgrade).collect()
            };
            for outbox in sockets {
                outbox.refresh();
            }
        }
    }
}

/// Counts `bytes` for the socket `s`; closes it if that puts it past its bound.
fn charge(s: &SocketRef, bytes: u64) -> bool {
    let Some(outbox) = s.extensions.get::<Arc<Outbox>>() else { return true };
    match outbox.give(bytes) {
        Given::Within => return true,
        Given::Closing => return false,
        Given::Behind => {}
    }
    COUNTERS.fell_behind();
    tracing::info!(sid = %s.id, "closing a connection that does not read what it is sent");
    let _ = s.clone().disconnect();
    false
}

/// Sends one socket a push.
pub(super) fn push<T: Serialize + ?Sized>(s: &SocketRef, event: &str, data: &T) {
    assert_unlocked("a push");
    if charge(s, packet_size(event, data)) {
        let _ = s.emit(event, data);
    }
}

/// Sends a push to the sockets of this node that `to` names; done when it returns. The push is
/// encoded once for all of them.
pub(super) fn broadcast<T: Serialize + ?Sized>(to: BroadcastOperators<Adapter>, event: &'static str, data: &T) {
    assert_unlocked("a broadcast");
    charge_all(to.clone(), packet_size(event, data));
    if to.emit(event, data).now_or_never().is_none() {
        tracing::warn!(event, "a local broadcast did not complete at once");
    }
}

/// Sends a push to the sockets that `to` names on every node; `here` names those of this node,
/// which are counted.
pub(super) async fn broadcast_everywhere<T: Serialize + ?Sized>(
    here: BroadcastOperators<Adapter>,
    to: BroadcastOperators<Adapter>,
    event: &'static str,
    data: &T,
) {
    assert_unlocked("a broadcast");
    charge_all(here, packet_size(event, data));
    let _ = to.emit(event, data).await;
}

fn charge_all(to: BroadcastOperators<Adapter>, bytes: u64) {
    for s in to.sockets() {
        charge(&s, bytes);
    }
}

impl Hub {
    /// The sockets of this node of one flavour in `room` but the source, when a push is sent
    /// to them. Every node tells its own sockets of a change, as it applies it (see
    /// [`Hub::with_rooms`]).
    pub(super) fn audience(&self, source: Source, flavour: Flavour, room: &str) -> BroadcastOperators<Adapter> {
        let key = room_key(flavour, room);
        match source {
            Source::Socket(s) => s.local().to(key),
            Source::Replica | Source::Everyone => self.io.local().to(key),
        }
    }

    /// A long-polling client fetched `bytes` of what waited for its socket `sid`.
    pub fn polled(&self, sid: &str, bytes: u64) {
        if let Some(outbox) = self.outbox_of(sid) {
            outbox.polled(bytes);
        }
    }

    /// The socket `sid` moves to a WebSocket on the connection that wrote `written`.
    pub fn upgrading(&self, sid: &str, written: &Written) {
        if let Some(outbox) = self.outbox_of(sid) {
            outbox.streams_on(written);
        }
    }

    /// Whether the Socket.IO session `sid` is one of this node's.
    pub fn holds_socket(&self, sid: &str) -> bool {
        sid.parse().ok().and_then(|sid| self.local_socket(sid)).is_some()
    }

    pub(super) fn outbox_of(&self, sid: &str) -> Option<Arc<Outbox>> {
        self.local_socket(sid.parse().ok()?)?.extensions.get::<Arc<Outbox>>()
    }

    /// Pushes to the sockets in `room` on every node but the sender: the seed's signals, which no
    /// node keeps a record of.
    pub(super) async fn everywhere<T: Serialize + ?Sized>(
        &self,
        s: &SocketRef,
        room: String,
        event: &'static str,
        data: &T,
    ) {
        if self.link.is_clustered() {
            broadcast_everywhere(s.local().to(room.clone()), s.to(room), event, data).await;
        } else {
            broadcast(s.local().to(room), event, data);
        }
    }
}

/// An event's acknowledgement, counted as it is sent.
pub(super) struct AckSender {
    inner: socketioxide::extract::AckSender<Adapter>,
    socket: SocketRef,
    asked: Asked,
}

/// Whether an event came with a callback: only then is an answer sent (and counted).
#[derive(Clone, Copy)]
pub(super) struct Asked(bool);

impl FromMessageParts<Adapter> for Asked {
    type Error = Infallible;

    fn from_message_parts(
        _: &Arc<socketioxide::socket::Socket<Adapter>>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Asked(ack_id.is_some()))
    }
}

impl AckSender {
    pub fn new(inner: socketioxide::extract::AckSender<Adapter>, socket: SocketRef, asked: Asked) -> Self {
        Self { inner, socket, asked }
    }

    pub fn send<T: Serialize + ?Sized>(self, value: &T) {
        assert_unlocked("an answer");
        // The client may be gone already; nothing is owed to it then.
        if self.asked.0 && charge(&self.socket, packet_size("", value)) {
            let _ = self.inner.send(value);
        }
    }
}

/// About what a Socket.IO packet of `event` and `data` takes to send: its JSON, without
/// building it.
fn packet_size<T: Serialize + ?Sized>(event: &str, data: &T) -> u64 {
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, data);
    // `42["event",...]`, or an acknowledgement's `43<id>[...]`.
    counter.0 + event.len() as u64 + 8
}

struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_waits_is_what_was_given_less_what_was_written() {
        let outbox = Outbox::new(None);
        assert_eq!(outbox.give(1000), Given::Within);
        outbox.polled(400);
        assert_eq!(outbox.state.lock().waiting(), 600);
        let written = Written::default();
        outbox.streams_on(&written);
        assert_eq!(outbox.give(OUTBOX_LIMIT - 600), Given::Within, "up to the bound");
        assert_eq!(outbox.give(1), Given::Behind, "and not a byte past it");
        assert_eq!(outbox.give(1), Given::Closing, "told once");
    }

    #[test]
    fn an_address_counts_what_all_its_sockets_have_waiting() {
        let addresses = PerAddress::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let sockets: Vec<_> = (0..9).map(|_| Outbox::new(Some(addresses.of(ip)))).collect();
        for outbox in &sockets[..8] {
            assert_eq!(outbox.give(OUTBOX_LIMIT_PER_ADDRESS / 8), Given::Within, "each within its own bound");
        }
        assert_eq!(sockets[8].give(1), Given::Behind, "one byte more is past the address's");
        sockets[0].polled(OUTBOX_LIMIT_PER_ADDRESS / 8);
        addresses.recount();
        let tenth = Outbox::new(Some(addresses.of(ip)));
        assert_eq!(tenth.give(1), Given::Within, "what was fetched no longer counts");
        drop(tenth);
        drop(sockets);
        assert_eq!(addresses.of(ip).waiting.load(Ordering::Relaxed), 0, "closed sockets count nothing");
        assert!(addresses.of(ip).sockets.lock().is_empty(), "and are not kept");
        addresses.recount();
        assert!(addresses.0.lock().is_empty());
    }
}
