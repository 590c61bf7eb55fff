//! What one socket and one client address may cost: connections admitted, events and signals a
//! second, bytes of bulky output, rooms entered. Each bound is named here with its number;
//! `docs/reliability.md` lists them all.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Hub, Session};
use crate::admission::{self, Admission};
use crate::validate::{ApiError, ErrorCode};

/// Every event of one socket but signals, chat included: bursts of this many seconds of
/// `--event-rate`.
pub(super) const EVENT_BURST_SECONDS: f64 = 2.0;

/// Signalling events of one socket.
pub(super) const SIGNAL_BURST: u32 = 400;
pub(super) const SIGNAL_RATE: f64 = 100.0;

/// Reactions of one socket: a few at once, then one every half second.
pub(super) const REACTION_BURST: u32 = 5;
pub(super) const REACTION_RATE: f64 = 2.0;

/// Room passwords one socket may try: a few at once, then one every twelve seconds.
pub(super) const PASSWORD_GUESS_BURST: u32 = 5;
pub(super) const PASSWORD_GUESS_RATE: f64 = 1.0 / 12.0;
/// The same for all the sockets of one client address together (a guesser opens connection
/// after connection): twenty, then one every six seconds.
pub(super) const PASSWORD_GUESS_BURST_PER_ADDRESS: u32 = 20;
pub(super) const PASSWORD_GUESS_RATE_PER_ADDRESS: f64 = 1.0 / 6.0;

/// Bytes of bulky answers and relays one socket may cause (the history and people of a room it
/// enters, the session descriptions it sends), in a burst and a second sustained. This is what a
/// client that stops reading can make the server hold for it before its stalled writes cut it.
pub(super) const BULK_BURST: u32 = 2 << 20;
pub(super) const BULK_RATE: f64 = 256.0 * 1024.0;

/// The same for all the sockets of one client address together.
pub(super) const BULK_BURST_PER_ADDRESS: u32 = 16 << 20;
pub(super) const BULK_RATE_PER_ADDRESS: f64 = 2.0 * 1024.0 * 1024.0;

/// Rooms all the sockets of one client address may enter, in a burst (a class behind one NAT
/// arriving at once) and a second sustained: a bound on guessing room names.
pub(super) const ENTRY_BURST_PER_ADDRESS: u32 = 120;
pub(super) const ENTRY_RATE_PER_ADDRESS: f64 = 10.0;

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

impl Session {
    /// Counts `bytes` of bulky output against this socket's budget and its address's; refuses
    /// past either.
    pub(super) fn spend_bulk(&self, hub: &Hub, bytes: usize) -> Result<(), ApiError> {
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

impl Hub {
    /// The per-address counts of connections, which the listener counts TCP connections in too.
    pub fn admission(&self) -> Arc<Admission> {
        self.admission.clone()
    }

    /// Where the listener lists every connection, for [`Hub::close`] to cut.
    pub fn connections(&self) -> crate::stall::OpenConnections {
        self.connections.clone()
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

    /// Counts an entry into a room the socket is not in against its address's entries (see
    /// [`ENTRY_BURST_PER_ADDRESS`]): checked before anything of the entry is done, a room:join's
    /// leaving of the other rooms included.
    /// A room password or host key tried: it costs the socket, and its address.
    pub(super) fn count_guess(&self, session: &Session) -> Result<(), ApiError> {
        let address_has = |address| self.guesses.try_take_at(address, std::time::Instant::now());
        if !session.password_guesses.lock().try_take() || !session.address.is_none_or(address_has) {
            return Err(ApiError::new(ErrorCode::RateLimited, "too many passwords or host links tried; wait a minute"));
        }
        Ok(())
    }

    pub(super) fn count_entry(&self, session: &Session, already_in: bool) -> Result<(), ApiError> {
        match session.address {
            Some(address) if !already_in && !self.entries.try_take_at(address, std::time::Instant::now()) => {
                Err(ApiError::new(ErrorCode::RateLimited, "too many rooms entered from your address; wait a moment"))
            }
            _ => Ok(()),
        }
    }
}
