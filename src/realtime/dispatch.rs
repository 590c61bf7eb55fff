//! Events in, answers out: which events exist, what each may cost, and the order they run in.
//!
//! One handler takes every event of a socket. It checks rate and arguments at once, in arrival
//! order, then queues the work, so that one socket's events take effect in the order sent (see
//! [`super::serial`]); the answer to each is sent in that order too.

use std::future::ready;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use socketioxide::extract::{Event, TryData};

use super::outbox::{AckSender, Asked};
use super::room_home::Delivery;
use super::{Flavour, Hub, RawAckSender, Session, SocketRef, call, media, meeting, noom, seed};
use crate::metrics::COUNTERS;
use crate::requests::{self, Args, Request};
use crate::validate::{ApiError, ErrorCode};

/// Events one socket may have waiting before new ones are refused.
pub(super) const QUEUE_LIMIT: usize = 64;

/// Signals come in bursts (a newcomer's offers and candidates for everyone in a call) and cost
/// little each, so more of them may wait.
pub(super) const SIGNAL_QUEUE_LIMIT: usize = 256;

/// An event clients may emit (its request: [`crate::requests`]).
pub(super) struct EventDef {
    pub(super) name: &'static str,
    pub(super) kind: EventKind,
}

pub(super) fn find_event(name: &str) -> Option<&'static EventDef> {
    seed::EVENTS
        .iter()
        .chain(noom::EVENTS)
        .chain(call::EVENTS)
        .chain(media::EVENTS)
        .chain(meeting::EVENTS)
        .find(|def| def.name == name)
}

/// What an event is, for its limits and the pushes its sender gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventKind {
    Seed,
    SeedSignal,
    /// Makes its sender Noom-flavoured.
    Noom,
    NoomSignal,
}

impl EventKind {
    pub(super) fn is_noom(self) -> bool {
        matches!(self, EventKind::Noom | EventKind::NoomSignal)
    }

    pub(super) fn is_signal(self) -> bool {
        matches!(self, EventKind::SeedSignal | EventKind::NoomSignal)
    }
}

/// What a request does.
pub(super) fn run(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    request: Request,
    ack: AckSender,
) -> BoxFuture<'static, ()> {
    match request {
        Request::Nickname { nickname } => Box::pin(seed::nickname(hub, s, nickname, ack)),
        Request::EnterRoom { room } => Box::pin(seed::enter_room(hub, session, s, room, ack)),
        Request::NewMessage { text, room } => Box::pin(seed::new_message(hub, session, s, (text, room), ack)),
        Request::SeedSignal { kind, signal, room } => Box::pin(seed::relay(hub, s, (kind, signal, room), ack)),
        Request::IceServers => {
            seed::ice_servers(&hub, &s, ack);
            Box::pin(ready(()))
        }
        Request::Rename { nickname } => Box::pin(noom::rename(hub, s, nickname, ack)),
        Request::Join { room, unlisted, nickname, password, host_key, with_host_key } => {
            let asked = noom::JoinAsked { room, unlisted, nickname, password, host_key, with_host_key };
            Box::pin(noom::join(hub, session, s, asked, ack))
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
        Request::SfuJoin { room, sdp, tiles } => Box::pin(media::join(hub, session, s, (room, sdp, tiles), ack)),
        Request::SfuAnswer { room, sdp } => Box::pin(media::answer(hub, s, (room, sdp), ack)),
        Request::SfuView { room, tiles, people } => Box::pin(media::view(hub, s, (room, tiles, people), ack)),
        Request::Meeting { room, control } => Box::pin(meeting::control(hub, session, s, (room, control), ack)),
    }
}

pub(super) fn reply<T: Serialize + ?Sized>(ack: AckSender, value: &T) {
    ack.send(value);
}

/// Answers an input with the error it was refused with, and counts it.
pub(super) fn refuse(ack: AckSender, error: &ApiError) {
    COUNTERS.rejected(error.code);
    reply(ack, error);
}

/// An acknowledgement answered once: with success in its place in a room's queue (see
/// [`Hub::enter`]), or else with the error the operation ended in.
pub(super) struct Answer(Option<AckSender>);

impl Answer {
    pub(super) fn new(ack: AckSender) -> Self {
        Self(Some(ack))
    }

    pub(super) fn ok<T: Serialize + ?Sized>(&mut self, value: &T) {
        if let Some(ack) = self.0.take() {
            reply(ack, value);
        }
    }

    /// The success answer, to be sent when its turn in a room's queue comes.
    pub(super) fn later<T: Serialize + Send + 'static>(&mut self, value: T) -> Delivery {
        let ack = self.0.take();
        Box::new(move || {
            if let Some(ack) = ack {
                reply(ack, &value);
            }
        })
    }

    pub(super) fn finish(self, result: Result<(), ApiError>) {
        if let Err(e) = result {
            match self.0 {
                Some(ack) => refuse(ack, &e),
                None => COUNTERS.rejected(e.code),
            }
        }
    }
}

/// An acknowledgement with no argument: the seed's `done()`.
pub(super) const NO_ARGS: [u8; 0] = [];

impl Hub {
    /// Listens to every event of a socket with one handler (one per event would cost each idle
    /// connection a map and a dozen closures). Rate and arguments are checked on arrival, in
    /// order; the work is queued.
    pub(super) fn listen(self: &Arc<Self>, s: &SocketRef, session: &Arc<Session>) {
        let hub = self.clone();
        let session = session.clone();
        s.on_fallback(
            move |s: SocketRef, Event(name): Event, TryData(args): TryData<Args>, ack: RawAckSender, asked: Asked| {
                let ack = AckSender::new(ack, s.clone(), asked);
                let def = find_event(&name);
                let kind = def.map_or(EventKind::Seed, |def| def.kind);
                let (bucket, queue_limit) = if kind.is_signal() {
                    (&session.signals, SIGNAL_QUEUE_LIMIT)
                } else {
                    (&session.events, QUEUE_LIMIT)
                };
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
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_a_client_may_send_has_its_handler() {
        for name in crate::events::seed::EMITTED.iter().chain(crate::events::noom::EMITTED) {
            assert!(find_event(name).is_some(), "{name} has no handler");
        }
    }
}
