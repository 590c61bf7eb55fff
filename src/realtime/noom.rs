//! Noom's own events: structured, acknowledged, for our web client.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AckSender, Answer, Args, EventDef, EventKind, Hub, Session, SocketRef, refuse, reply};
use crate::rooms::{ChatMessage, Participant, RoomInfo};
use crate::validate::{self, ApiError};

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: "user:rename", kind: EventKind::Noom, run: |h, se, s, a, k| Box::pin(rename(h, se, s, a, k)) },
    EventDef { name: "room:join", kind: EventKind::Noom, run: |h, se, s, a, k| Box::pin(join(h, se, s, a, k)) },
    EventDef { name: "room:leave", kind: EventKind::Noom, run: |h, se, s, a, k| Box::pin(leave(h, se, s, a, k)) },
    EventDef { name: "chat:send", kind: EventKind::Noom, run: |h, se, s, a, k| Box::pin(send(h, se, s, a, k)) },
    EventDef {
        name: "directory:get",
        kind: EventKind::Noom,
        run: |h, se, s, a, k| Box::pin(directory(h, se, s, a, k)),
    },
];

fn answer<T: Serialize>(ack: AckSender, result: Result<T, ApiError>) {
    match result {
        Ok(v) => reply(ack, &v),
        Err(e) => refuse(ack, &e),
    }
}

#[derive(Deserialize)]
struct RenameRequest {
    nickname: String,
}

#[derive(Serialize)]
struct Renamed {
    nickname: Arc<str>,
}

async fn rename(hub: Arc<Hub>, _: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let result = async {
        let req: RenameRequest = args.object()?;
        let name = validate::nickname(&req.nickname)?;
        let me = hub.rename(&s, &name).await?;
        Ok(Renamed { nickname: me.nickname })
    };
    answer(ack, result.await);
}

#[derive(Deserialize)]
struct JoinRequest {
    room: String,
    #[serde(default)]
    unlisted: bool,
    nickname: Option<String>,
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

async fn join(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let req: JoinRequest = args.object()?;
        let room = validate::room_name(&req.room)?;
        let nickname = req.nickname.as_deref().map(validate::nickname).transpose()?;
        if let Some(nickname) = nickname {
            hub.rename(&s, &nickname).await?;
        }
        let others: Vec<_> = hub.rooms.lock().rooms_of(s.id).into_iter().filter(|r| **r != *room).collect();
        for other in others {
            hub.leave(&s, &session, Some(&other), false).await?;
        }
        hub.enter(&s, &session, &room, req.unlisted, |entered, rooms| {
            answer.ok(&Joined {
                room: entered.room.clone(),
                me: entered.me.clone(),
                participants: rooms.participants(&room),
                history: rooms.history(&room),
                call_limit: hub.config.call_size,
            })
        })
        .await
    };
    let result = result.await;
    answer.finish(result);
}

#[derive(Deserialize)]
struct LeaveRequest {
    room: Option<String>,
}

#[derive(Serialize)]
struct LeftRooms {
    left: Vec<Arc<str>>,
}

async fn leave(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let result = async {
        let req: LeaveRequest = args.object()?;
        let room = req.room.as_deref().map(validate::room_name).transpose()?;
        let left = hub.leave(&s, &session, room.as_deref(), true).await?;
        Ok(LeftRooms { left })
    };
    answer(ack, result.await);
}

#[derive(Deserialize)]
struct SendRequest {
    room: String,
    text: String,
}

#[derive(Serialize)]
struct Sent<'a> {
    message: &'a ChatMessage,
}

async fn send(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let req: SendRequest = args.object()?;
        hub.post(&s, &session, &req.room, &req.text, |message| answer.ok(&Sent { message })).await
    };
    let result = result.await;
    answer.finish(result);
}

async fn directory(hub: Arc<Hub>, _: Arc<Session>, _: SocketRef, _: Args, ack: AckSender) {
    reply(ack, &hub.directory());
}
