//! Calls: who is in each room's call and with what media, and the signalling between two of them.
//!
//! Media flows browser to browser (a mesh); the server only keeps presence, hands out ICE servers
//! and relays each signal to the one peer it names, and only between two people in the same call.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Map;

use super::room_home::Delivery;
use super::{
    AckSender, Answer, EventDef, EventKind, Hub, Session, SocketRef, Source, now_ms, outbox, person, refuse, reply,
};
use crate::cluster::Op;
use crate::config::{IceTransportPolicy, Pairs};
use crate::events;
use crate::ice::{self, IceServer};
use crate::metrics::COUNTERS;
use crate::rooms::{CallChange, Media, Participant, PersonId, Rooms};
use crate::signal::{Candidate, SessionDescription, Signal};
use crate::validate::{ApiError, ErrorCode};

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: events::noom::CALL_JOIN, kind: EventKind::Noom },
    EventDef { name: events::noom::CALL_MEDIA, kind: EventKind::Noom },
    EventDef { name: events::noom::CALL_LEAVE, kind: EventKind::Noom },
    EventDef { name: events::noom::RTC_SIGNAL, kind: EventKind::NoomSignal },
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Joined {
    participants: Vec<Participant>,
    ice_servers: Vec<IceServer>,
    ice_transport_policy: IceTransportPolicy,
    limit: u16,
    /// How the call's media travels: `sfu` through the media server (`sfu:join` next), `mesh`
    /// browser to browser (`rtc:signal`).
    via: &'static str,
    /// With `sfu`: whether a call of two talks browser to browser while the server stands by.
    pairs: Pairs,
}

pub(super) async fn join(hub: Arc<Hub>, s: SocketRef, (room, media): (String, Media), ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let me = person(&s);
        let ice_servers = ice::servers_for(&hub.config, &me.to_string(), now_ms() / 1000);
        hub.change_call(&s, &room, true, |rooms, limit_checked| {
            check_unmuted(rooms, me, &room, media)?;
            let change = rooms.join_call(me, &room, media, !limit_checked, now_ms())?;
            let answer = answer.later(Joined {
                participants: rooms.participants(&room),
                ice_servers,
                ice_transport_policy: hub.config.ice_transport_policy,
                limit: hub.call_size,
                via: if hub.calls_via_media_server() { "sfu" } else { "mesh" },
                pairs: hub.config.pairs,
            });
            Ok((change, answer))
        })
        .await
    };
    let result = result.await;
    answer.finish(result);
}

#[derive(Serialize)]
struct MediaSet {
    participant: Participant,
}

pub(super) async fn media(hub: Arc<Hub>, s: SocketRef, (room, media): (String, Media), ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        hub.change_call(&s, &room, false, |rooms, _| {
            check_unmuted(rooms, person(&s), &room, media)?;
            let change = rooms.set_media(person(&s), &room, media)?;
            let answer = answer.later(MediaSet { participant: change.me.clone() });
            Ok((change, answer))
        })
        .await
    };
    let result = result.await;
    answer.finish(result);
}

/// Someone a host muted may not say they send their voice, until a host asks them to unmute.
fn check_unmuted(rooms: &Rooms, id: PersonId, room: &str, media: Media) -> Result<(), ApiError> {
    if media.audio && rooms.is_muted(id, room) {
        return Err(ApiError::new(ErrorCode::Forbidden, "a host muted you: a host must ask you to unmute first"));
    }
    Ok(())
}

pub(super) async fn leave(hub: Arc<Hub>, s: SocketRef, room: String, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        hub.change_call(&s, &room, false, |rooms, _| {
            let me = rooms.leave_call(person(&s), &room)?;
            Ok((CallChange { me, changed: true }, answer.later(Map::new())))
        })
        .await
    };
    let result = result.await;
    answer.finish(result);
}

/// A signal as its peer receives it.
#[derive(Serialize)]
struct Relayed<'a> {
    room: &'a str,
    from: PersonId,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a SessionDescription>,
    /// Outer `None`: not a candidate; inner `None`: the end of candidates (`null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate: Option<&'a Option<Candidate>>,
}

pub(super) async fn signal(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (room, to, signal): (String, String, Signal),
    ack: AckSender,
) {
    let result = async {
        let me = person(&s);
        let peer = hub.rooms.lock().check_signal(me, to.parse().ok(), &room)?;
        let (description, candidate) = match &signal {
            Signal::Description(d) => {
                // Descriptions are large: what a peer that stops reading is made to hold.
                session.spend_bulk(&hub, d.sdp.len())?;
                (Some(d), None)
            }
            Signal::Candidate(c) => (None, Some(c)),
        };
        hub.send_to(peer, events::noom::RTC_SIGNAL, &Relayed { room: &room, from: me, description, candidate }).await;
        Ok(())
    };
    match result.await {
        Ok(()) => {
            COUNTERS.signal_relayed();
            reply(ack, &Map::new());
        }
        Err(e) => refuse(ack, &e),
    }
}

/// New TURN credentials for everyone of this node in a call, in time: each lasts `--turn-ttl`,
/// and a new one comes when half of it has passed (a relayed connection must restart its ICE with
/// it before the TURN server ends its allocation).
pub(super) async fn renew_ice_periodically(hub: std::sync::Weak<Hub>, ttl: std::time::Duration) {
    let mut every = tokio::time::interval(ttl / 2);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let callers = {
            let nodes = hub.nodes.lock();
            let rooms = hub.rooms.lock();
            rooms.callers().into_iter().filter(|(id, _)| nodes.owner(*id).is_none()).collect::<Vec<_>>()
        };
        let now = now_ms() / 1000;
        for (id, room) in callers {
            let Some(s) = hub.socket_of(id) else { continue };
            let ice_servers = ice::servers_for(&hub.config, &id.to_string(), now);
            outbox::push(&s, events::noom::CALL_ICE, &IceRenewed { room: &room, ice_servers });
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IceRenewed<'a> {
    room: &'a str,
    ice_servers: Vec<IceServer>,
}

impl Hub {
    /// Makes a change to someone's place in a room's call within the room's turn, answers with
    /// what `change` made of it, tells the others in the room if anything changed, and the other
    /// nodes.
    ///
    /// With `claim`, a place in the call is first taken for the whole cluster; `change` is told
    /// whether the size limit was checked so (it checks it itself otherwise: a node alone, or
    /// one whose link is down).
    pub(super) async fn change_call(
        &self,
        s: &SocketRef,
        room: &str,
        claim: bool,
        change: impl FnOnce(&mut crate::rooms::Rooms, bool) -> Result<(CallChange, Delivery), ApiError>,
    ) -> Result<(), ApiError> {
        let _turn = self.homes.turn(room).await;
        let me = person(s);
        let mut limit_checked = false;
        if claim && self.rooms.lock().is_member(me, room) {
            match self.link.claim_call_place(room, me, self.call_size.into()).await {
                Some(true) => limit_checked = true,
                Some(false) => return Err(crate::rooms::call_full(self.call_size.into())),
                None => {}
            }
        }
        self.with_rooms(|r, told| {
            let was_in_call = r.member(me, room).is_some_and(|m| m.call.is_some());
            let (outcome, answer) = match change(r, limit_checked) {
                Ok(outcome) => outcome,
                Err(e) => {
                    if limit_checked && r.member(me, room).is_none_or(|m| m.call.is_none()) {
                        self.link.release_call_place(room, me);
                    }
                    return Err(e);
                }
            };
            if outcome.changed {
                let media = outcome.me.call;
                self.link.publish_op(Op::Call { id: me, room: room.to_owned(), media });
                if media.is_none() {
                    self.link.release_call_place(room, me);
                } else if self.link.is_clustered() {
                    // Signals for this person from other nodes are addressed to them by name.
                    s.join(me.to_string());
                }
                self.tell_call_change(r, told, Source::Socket(s), room, &outcome.me, was_in_call);
            }
            // After the others are told: a signal the caller sends once answered reaches peers
            // that know of it.
            told.queue(room, answer);
            Ok(())
        })
    }

    /// Sends one person a push, wherever they are connected.
    pub(super) async fn send_to<T: Serialize + ?Sized>(&self, to: PersonId, event: &'static str, data: &T) {
        // A peer that vanished meanwhile is told by its departure; the sender learns of it so.
        if let Some(peer) = self.socket_of(to) {
            outbox::push(&peer, event, data);
        } else if self.link.is_clustered() && self.serving() {
            let _ = self.io.to(to.to_string()).emit(event, data).await;
        }
    }

    /// Sends several people a push, wherever they are connected: the ones of other nodes in one
    /// message through Redis.
    pub(super) async fn send_to_all<T: Serialize + ?Sized>(&self, to: &[PersonId], event: &'static str, data: &T) {
        let mut elsewhere = Vec::new();
        for &id in to {
            match self.socket_of(id) {
                Some(s) => outbox::push(&s, event, data),
                None => elsewhere.push(id.to_string()),
            }
        }
        if self.link.is_clustered() && !elsewhere.is_empty() && self.serving() {
            let _ = self.io.to(elsewhere).emit(event, data).await;
        }
    }
}
