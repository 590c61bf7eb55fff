//! What this node's sockets do to rooms (enter, leave, rename, post) and how each change is told:
//! to the sockets here in both flavours, and to the other nodes as an op.
//!
//! Each change is made and told within the room's turn (see [`super::room_lock`]) and inside
//! [`Hub::with_rooms`], so that everyone here hears a room's changes in the order they were made.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Flavour, Hub, LOBBY, Session, SocketRef, Source, now_ms, person, room_key};
use crate::cluster::Op;
use crate::events::{noom, seed};
use crate::metrics::COUNTERS;
use crate::rooms::{ChatMessage, Entered, Left, Participant, PersonId, Rooms};
use crate::validate::{ApiError, ErrorCode};

#[derive(Serialize)]
pub(super) struct ParticipantEvent<'a> {
    room: &'a str,
    participant: &'a Participant,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}

/// A change to a room, as the room state made it: on the node where it was asked for, and on
/// every other node as it applies the op that replicates it. Each audience reads it in its own
/// dialect (see [`Hub::tell`]).
#[derive(Clone, Copy)]
pub(super) enum RoomChange<'a> {
    Entered(&'a Entered),
    Left(&'a Left),
    /// How someone now is in the room: name, call, media.
    Updated {
        room: &'a str,
        participant: &'a Participant,
    },
    Message(&'a ChatMessage),
}

impl Hub {
    /// Puts the socket in a room and tells the others there. `answer` is called with the entry
    /// and the room state right after it: the newcomer's answer goes out before anything that
    /// happens in the room later.
    pub(super) async fn enter(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        unlisted: bool,
        answer: impl FnOnce(&Entered, &Rooms),
    ) -> Result<(), ApiError> {
        let me = person(s);
        let _turn = self.room_locks.lock(room).await;
        self.with_rooms(|r| {
            let entered = r.enter(me, room, unlisted)?;
            answer(&entered, r);
            if entered.is_new {
                let flavour = session.flavour();
                s.join(room_key(flavour, room));
                if flavour == Flavour::Noom {
                    s.leave(LOBBY);
                }
                self.link.publish_op(Op::Enter {
                    id: me,
                    nickname: entered.me.nickname.to_string(),
                    room: entered.room.name.to_string(),
                    unlisted: entered.room.unlisted,
                });
                self.tell(Source::Socket(s), RoomChange::Entered(&entered));
            }
            Ok(())
        })
    }

    /// Takes the socket out of one room, or all, and tells those left behind. A Noom socket left
    /// in no room is back in the lobby, unless it is on its way to another room.
    pub(super) async fn leave(
        &self,
        s: &SocketRef,
        session: &Session,
        room: Option<&str>,
        to_lobby: bool,
    ) -> Result<Vec<Arc<str>>, ApiError> {
        let me = person(s);
        let rooms = match room {
            Some(room) if !self.rooms.lock().is_member(me, room) => {
                return Err(ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}")));
            }
            Some(room) => vec![Arc::from(room)],
            None => self.rooms.lock().rooms_of(me),
        };
        let flavour = session.flavour();
        let mut left = Vec::with_capacity(rooms.len());
        for room in rooms {
            left.extend(self.leave_room(s, flavour, &room).await);
        }
        if to_lobby && flavour == Flavour::Noom && !left.is_empty() {
            self.back_to_lobby(s);
        }
        Ok(left)
    }

    /// Takes the socket out of one room, if it is in it, and tells those left behind.
    pub(super) async fn leave_room(&self, s: &SocketRef, flavour: Flavour, room: &str) -> Option<Arc<str>> {
        let _turn = self.room_locks.lock(room).await;
        let me = person(s);
        self.with_rooms(|r| {
            let left = r.leave(me, room).ok()?;
            s.leave(room_key(flavour, room));
            self.published_leave(me, room);
            self.tell(Source::Socket(s), RoomChange::Left(&left));
            Some(left.room)
        })
    }

    /// A Noom socket in no room any more is in the lobby.
    pub(super) fn back_to_lobby(&self, s: &SocketRef) {
        if self.rooms.lock().rooms_of(person(s)).is_empty() {
            self.enter_lobby(s);
        }
    }

    /// Tells the other nodes that someone of this node left a room (and its call).
    pub(super) fn published_leave(&self, id: PersonId, room: &str) {
        self.link.publish_op(Op::Leave { id, room: room.to_owned() });
        self.link.release_call_place(room, id);
    }

    pub(super) async fn rename(&self, s: &SocketRef, nickname: &str) -> Result<Participant, ApiError> {
        let id = person(s);
        self.with_rooms(|r| {
            let me = r.rename(id, nickname)?;
            self.link.publish_op(Op::Rename { id, nickname: nickname.to_owned() });
            self.announce_renamed(Source::Socket(s), r, id);
            Ok(me)
        })
    }

    /// Tells each room someone is in of their new name, with their call state there.
    pub(super) fn announce_renamed(&self, source: Source<'_>, rooms: &Rooms, id: PersonId) {
        for room in rooms.rooms_of(id) {
            if let Some(member) = rooms.member(id, &room) {
                self.tell(source, RoomChange::Updated { room: &room, participant: &member });
            }
        }
    }

    /// Records a (checked) chat message and delivers it to the others in its room; `answer`
    /// runs before the room is unlocked. Only a message that would be delivered costs against
    /// the chat rate.
    pub(super) async fn post(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        text: String,
        answer: impl FnOnce(&ChatMessage),
    ) -> Result<(), ApiError> {
        let _turn = self.room_locks.lock(room).await;
        let me = person(s);
        self.with_rooms(|r| {
            if !r.is_member(me, room) {
                return Err(ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}")));
            }
            if !session.chat.lock().try_take() {
                return Err(ApiError::new(ErrorCode::RateLimited, "too many messages; slow down"));
            }
            let id = format!("{:x}-{:x}", self.boot_ms, self.next_message.fetch_add(1, Ordering::Relaxed));
            let message = r.post(me, room, text, id, now_ms())?;
            self.link.publish_op(Op::Chat { message: message.clone() });
            COUNTERS.chat_message();
            self.tell(Source::Socket(s), RoomChange::Message(&message));
            answer(&message);
            Ok(())
        })
    }

    pub(super) async fn disconnect(&self, s: SocketRef) {
        let me = person(&s);
        let rooms = self.rooms.lock().rooms_of(me);
        for room in rooms {
            let _turn = self.room_locks.lock(&room).await;
            self.with_rooms(|r| {
                if let Ok(left) = r.leave(me, &room) {
                    self.published_leave(me, &room);
                    self.tell(Source::Socket(&s), RoomChange::Left(&left));
                }
            });
        }
        self.with_rooms(|r| r.disconnect(me));
        self.link.publish_op(Op::Disconnect { id: me });
    }
}

impl Hub {
    /// Tells the sockets of this node in the room of a change, but its source: each flavour in
    /// its dialect. The seed's knows arrivals, departures and messages only.
    pub(super) fn tell(&self, source: Source<'_>, change: RoomChange<'_>) {
        let room = match change {
            RoomChange::Entered(entered) => &*entered.room.name,
            RoomChange::Left(left) => &*left.room,
            RoomChange::Updated { room, .. } => room,
            RoomChange::Message(message) => &*message.room,
        };
        let (seed, noom) = (Flavour::Seed, Flavour::Noom);
        match change {
            RoomChange::Entered(Entered { me, room: info, .. }) => {
                self.broadcast(source, seed, room, seed::WELCOME, &(&me.nickname, info.count));
                let event = ParticipantEvent { room, participant: me, count: Some(info.count) };
                self.broadcast(source, noom, room, noom::PARTICIPANT_JOINED, &event);
            }
            RoomChange::Left(Left { me, count, .. }) => {
                self.broadcast(source, seed, room, seed::BYE, &(&me.nickname, *count));
                let event = ParticipantEvent { room, participant: me, count: Some(*count) };
                self.broadcast(source, noom, room, noom::PARTICIPANT_LEFT, &event);
            }
            RoomChange::Updated { participant, .. } => {
                let event = ParticipantEvent { room, participant, count: None };
                self.broadcast(source, noom, room, noom::PARTICIPANT_UPDATED, &event);
            }
            RoomChange::Message(message) => {
                let line = format!("{}: {}", message.sender.nickname, message.text);
                self.broadcast(source, seed, room, seed::NEW_MESSAGE, &line);
                self.broadcast(source, noom, room, noom::CHAT_MESSAGE, message);
            }
        }
    }
}
