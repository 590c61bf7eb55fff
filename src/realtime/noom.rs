//! Noom's own events: structured, acknowledged, for our web client.

use std::sync::Arc;

use serde::Serialize;

use super::changes::Entering;
use super::{AckSender, Answer, EventDef, EventKind, Hub, Session, SocketRef, person, refuse, reply};
use crate::events;
use crate::rooms::unlisted_suffix;
use crate::rooms::{ChatMessage, Participant, RoomInfo};
use crate::validate::ApiError;

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: events::noom::USER_RENAME, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_JOIN, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_LEAVE, kind: EventKind::Noom },
    EventDef { name: events::noom::CHAT_SEND, kind: EventKind::Noom },
    EventDef { name: events::noom::DIRECTORY_GET, kind: EventKind::Noom },
];

fn answer<T: Serialize>(ack: AckSender, result: Result<T, ApiError>) {
    match result {
        Ok(v) => reply(ack, &v),
        Err(e) => refuse(ack, &e),
    }
}

#[derive(Serialize)]
struct Renamed {
    nickname: Arc<str>,
}

pub(super) async fn rename(hub: Arc<Hub>, s: SocketRef, nickname: String, ack: AckSender) {
    let result = hub.rename(&s, &nickname).map(|me| Renamed { nickname: me.nickname });
    answer(ack, result);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Joined {
    room: RoomInfo,
    #[serde(rename = "self")]
    me: Participant,
    participants: Vec<Participant>,
    history: Vec<ChatMessage>,
    call_limit: u16,
    /// While a call is going: when it began (milliseconds since the epoch), for its timer.
    #[serde(skip_serializing_if = "Option::is_none")]
    call_since: Option<u64>,
    /// The room's host key, to its opener who asked for one: the only time it is told.
    #[serde(skip_serializing_if = "Option::is_none")]
    host_key: Option<String>,
}

/// What `room:join` asks (see [`crate::requests::Request::Join`]).
pub(super) struct JoinAsked {
    pub(super) room: String,
    pub(super) unlisted: bool,
    pub(super) nickname: Option<String>,
    pub(super) password: Option<String>,
    pub(super) host_key: Option<String>,
    pub(super) with_host_key: bool,
}

pub(super) async fn join(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, asked: JoinAsked, ack: AckSender) {
    let JoinAsked { room, unlisted, nickname, password, host_key, with_host_key } = asked;
    let mut answer = Answer::new(ack);
    let result = async {
        if let Some(nickname) = nickname {
            hub.rename(&s, &nickname)?;
        }
        let (room, others, already_in, cost) = {
            let rooms = hub.rooms.lock();
            let room = if unlisted { rooms.unlisted_name(&room, &unlisted_suffix()) } else { room };
            let mine = rooms.rooms_of(person(&s));
            let already_in = mine.iter().any(|r| **r == *room);
            let others: Vec<_> = mine.into_iter().filter(|r| **r != *room).collect();
            let cost = rooms.entry_cost(&room);
            (room, others, already_in, cost)
        };
        hub.count_entry(&session, already_in)?;
        let host = match host_key {
            Some(key) => hub.check_host_key(&session, &room, &key)?,
            None => false,
        };
        let password = if host { None } else { hub.check_password(&s, &session, &room, password).await? };
        let password = password.as_deref();
        let new_host_key = with_host_key.then(crate::passwords::new_host_key);
        let new_host_key_hash = new_host_key.as_deref().map(crate::passwords::host_key_hash);
        // A room whose newcomers wait: the answer says so, and a host's word comes later
        // (`room:admitted`, then this event again, or `room:refused`).
        if !already_in && !host && hub.wait_to_enter(&s, &room, password) {
            answer.ok(&serde_json::json!({ "waiting": { "room": room } }));
            return Ok(());
        }
        // One already in is not sent the history again: it has it.
        if !already_in {
            session.spend_bulk(&hub, cost)?;
        }
        for other in others {
            hub.leave(&s, &session, Some(&other), false)?;
        }
        let how = Entering { room: &room, unlisted, password, host, new_host_key: new_host_key_hash.as_deref() };
        hub.enter(&s, &session, how, |entered, rooms| {
            let key_given = new_host_key_hash.as_deref().is_some_and(|hash| rooms.host_key_is(&room, hash));
            answer.later(Joined {
                room: entered.room.clone(),
                me: entered.me.clone(),
                participants: rooms.participants(&room),
                history: if entered.is_new { rooms.history(&room) } else { Vec::new() },
                call_limit: hub.call_size,
                call_since: rooms.call_since(&room),
                host_key: new_host_key.filter(|_| key_given),
            })
        })
    };
    let result = result.await;
    answer.finish(result);
}

#[derive(Serialize)]
struct LeftRooms {
    left: Vec<Arc<str>>,
}

pub(super) async fn leave(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, room: Option<String>, ack: AckSender) {
    // One waiting to enter gives up waiting.
    let gave_up = hub.with_rooms(|r, told| hub.stop_waiting_here(r, told, person(&s), room.as_deref()));
    if gave_up && room.is_some() {
        return answer(ack, Ok(LeftRooms { left: Vec::new() }));
    }
    let result = hub.leave(&s, &session, room.as_deref(), true).map(|left| LeftRooms { left });
    answer(ack, result);
}

#[derive(Serialize)]
struct Sent {
    message: Arc<ChatMessage>,
}

pub(super) async fn send(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (room, text): (String, String),
    ack: AckSender,
) {
    let mut answer = Answer::new(ack);
    let result = hub.post(&s, &session, &room, text, |message| answer.later(Sent { message: message.clone() }));
    answer.finish(result);
}

pub(super) fn directory(hub: &Hub, ack: AckSender) {
    reply(ack, &hub.directory());
}
