//! Noom's own events: structured, acknowledged, for our web client.

use std::sync::Arc;

use serde::Serialize;

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
}

pub(super) async fn join(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (room, unlisted, nickname): (String, bool, Option<String>),
    ack: AckSender,
) {
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
        // One already in is not sent the history again: it has it.
        if !already_in {
            session.spend_bulk(&hub, cost)?;
        }
        for other in others {
            hub.leave(&s, &session, Some(&other), false)?;
        }
        hub.enter(&s, &session, &room, unlisted, |entered, rooms| {
            answer.later(Joined {
                room: entered.room.clone(),
                me: entered.me.clone(),
                participants: rooms.participants(&room),
                history: if entered.is_new { rooms.history(&room) } else { Vec::new() },
                call_limit: hub.call_size,
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
