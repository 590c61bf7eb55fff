//! The seed's events, exactly as the original tutorial front ends send them: its chat stage and
//! its one-to-one call stage.

use std::sync::Arc;

use serde::Serialize;

use super::changes::Entering;
use super::{AckSender, Answer, EventDef, EventKind, Flavour, Hub, NO_ARGS, Session, SocketRef, person, room_key};
use crate::config::IceTransportPolicy;
use crate::events;
use crate::ice::{self, IceServer};
use crate::requests::SeedSignal;
use crate::rooms::not_in_room;

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: events::seed::NICKNAME, kind: EventKind::Seed },
    EventDef { name: events::seed::ENTER_ROOM, kind: EventKind::Seed },
    EventDef { name: events::seed::NEW_MESSAGE, kind: EventKind::Seed },
    // The call stage: entering is the same, and signals go to everyone else in the room.
    EventDef { name: events::seed::JOIN_ROOM, kind: EventKind::Seed },
    EventDef { name: events::seed::OFFER, kind: EventKind::SeedSignal },
    EventDef { name: events::seed::ANSWER, kind: EventKind::SeedSignal },
    EventDef { name: events::seed::ICE, kind: EventKind::SeedSignal },
    EventDef { name: events::seed::ICE_SERVERS, kind: EventKind::Seed },
];

// Each answers `done()` on success and `done({ error })` otherwise; without a callback nothing
// is sent.

pub(super) async fn nickname(hub: Arc<Hub>, s: SocketRef, nickname: String, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = hub.rename(&s, &nickname).map(|_| answer.ok(&NO_ARGS));
    answer.finish(result);
}

pub(super) async fn enter_room(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, room: String, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let already_in = hub.rooms.lock().is_member(person(&s), &room);
        hub.count_entry(&session, already_in)?;
        hub.enter(&s, &session, Entering { room: &room, ..Entering::default() }, |_, _| answer.later(NO_ARGS))
    };
    let result = result.await;
    answer.finish(result);
}

pub(super) async fn new_message(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (text, room): (String, String),
    ack: AckSender,
) {
    let mut answer = Answer::new(ack);
    let result = hub.post(&s, &session, &room, text, |_| answer.later(NO_ARGS));
    answer.finish(result);
}

/// `offer(description, roomName)`, `answer(description, roomName)` or `ice(candidate, roomName)`:
/// relayed, rebuilt from its known fields, to the seed sockets in the room but the sender.
pub(super) async fn relay(
    hub: Arc<Hub>,
    s: SocketRef,
    (kind, signal, room): (SeedSignal, serde_json::Value, String),
    ack: AckSender,
) {
    let mut answer = Answer::new(ack);
    let result = async {
        if !hub.rooms.lock().is_member(person(&s), &room) {
            return Err(not_in_room(&room));
        }
        hub.everywhere(&s, room_key(Flavour::Seed, &room), kind.event(), &signal).await;
        crate::metrics::COUNTERS.signal_relayed();
        answer.ok(&NO_ARGS);
        Ok(())
    };
    let result = result.await;
    answer.finish(result);
}

/// A configuration for `new RTCPeerConnection(…)`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RtcConfiguration {
    ice_servers: Vec<IceServer>,
    ice_transport_policy: IceTransportPolicy,
}

/// `ice_servers(done)`: `done({ iceServers, iceTransportPolicy })`, the configuration to call
/// with, TURN credentials included, as Noom's own client has it with `call:join`. Not the
/// original's, whose STUN servers were written into its page: a front end that asks can call
/// across networks that need a relay.
pub(super) fn ice_servers(hub: &Hub, s: &SocketRef, ack: AckSender) {
    let ice_servers = ice::servers_for(&hub.config, &person(s).to_string(), super::now_ms() / 1000);
    let configuration = RtcConfiguration { ice_servers, ice_transport_policy: hub.config.ice_transport_policy };
    super::reply(ack, &configuration);
}
