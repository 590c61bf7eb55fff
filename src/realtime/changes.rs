//! What this node's sockets do to rooms (enter, leave, rename, post) and how each change is told:
//! to the sockets here in both flavours, and to the other nodes as an op.
//!
//! Each change is made inside [`Hub::with_rooms`], and what it tells is queued in the room's home
//! (see [`super::room_home`]) as it is made, so that everyone here hears a room's changes in the
//! order they were made.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::room_home::{Delivery, Told};
use super::{Flavour, Hub, LOBBY, Session, SocketRef, Source, now_ms, outbox, person, resume_key_of, room_key};
use crate::cluster::Op;
use crate::events::{noom, seed};
use crate::metrics::COUNTERS;
use crate::rooms::{ChatMessage, Entered, Entry, Left, Participant, PersonId, RoomInfo, Rooms, not_in_room};
use crate::validate::{ApiError, ErrorCode};

#[derive(Serialize)]
struct ParticipantEvent<'a> {
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
    /// Shared by everyone it is told to: a message is the one change that is not small.
    Message(&'a Arc<ChatMessage>),
    /// The room's settings (its lock).
    Settings(&'a RoomInfo),
}

/// How someone enters a room, besides who they are.
#[derive(Default)]
pub(super) struct Entering<'a> {
    pub(super) room: &'a str,
    pub(super) unlisted: bool,
    /// The hash of the room's password that the password they gave matched.
    pub(super) password: Option<&'a str>,
    /// They gave the room's host key.
    pub(super) host: bool,
    /// The hash of a host key for the room they open, if they asked for one.
    pub(super) new_host_key: Option<&'a str>,
}

impl Hub {
    /// Puts the socket in a room and tells the others there. `answer` is made from the entry and
    /// the room state right after it, and queued after the others are told: the newcomer hears
    /// its answer before anything that happens in the room later, and nothing that happened
    /// before.
    pub(super) fn enter(
        &self,
        s: &SocketRef,
        session: &Session,
        how: Entering<'_>,
        answer: impl FnOnce(&Entered, &Rooms) -> Delivery,
    ) -> Result<(), ApiError> {
        let me = person(s);
        let room = how.room;
        self.with_rooms(|r, told| {
            let key = resume_key_of(s);
            r.may_enter(me, room, Entry { resume: key.as_deref(), password: how.password, host: how.host })?;
            let mut entered = r.enter(me, room, how.unlisted)?;
            if let Some(key) = &key {
                r.note_key(room, me, key);
            }
            if how.host && !entered.me.host {
                let changed = r.set_host_as_told(room, me, true);
                entered.me.host = true;
                if !entered.is_new {
                    self.link.publish_op(Op::Host { room: room.to_owned(), id: me, host: true });
                    self.tell_updated(told, Source::Everyone, room, &changed);
                }
            }
            // Its opener asked for a host key.
            let new_host_key = how.new_host_key.filter(|hash| entered.room.count == 1 && r.set_host_key(room, hash));
            let answer = answer(&entered, r);
            if entered.is_new {
                self.link.publish_op(Op::Enter {
                    id: me,
                    nickname: entered.me.nickname.to_string(),
                    room: entered.room.name.to_string(),
                    unlisted: entered.room.unlisted,
                    resume: resume_key_of(s),
                    host: entered.me.host,
                });
                if let Some(hash) = new_host_key {
                    self.link.publish_op(Op::HostKey { room: room.to_owned(), hash: hash.to_owned() });
                }
                self.tell(told, Source::Socket(s), RoomChange::Entered(&entered));
            }
            told.queue(room, answer);
            if entered.is_new {
                let (socket, key, noom) =
                    (s.clone(), room_key(session.flavour(), room), session.flavour() == Flavour::Noom);
                told.queue(room, move || {
                    socket.join(key);
                    if noom {
                        socket.leave(LOBBY);
                    }
                });
            }
            Ok(())
        })
    }

    /// Takes the socket out of one room, or all, and tells those left behind. A Noom socket left
    /// in no room is back in the lobby, unless it is on its way to another room.
    pub(super) fn leave(
        &self,
        s: &SocketRef,
        session: &Session,
        room: Option<&str>,
        to_lobby: bool,
    ) -> Result<Vec<Arc<str>>, ApiError> {
        let me = person(s);
        let flavour = session.flavour();
        let left = self.with_rooms(|r, told| {
            let rooms = match room {
                Some(room) if !r.is_member(me, room) => {
                    return Err(not_in_room(room));
                }
                Some(room) => vec![Arc::from(room)],
                None => r.rooms_of(me),
            };
            Ok(rooms.iter().filter_map(|room| self.leave_room(r, told, s, flavour, room)).collect::<Vec<_>>())
        })?;
        if to_lobby && flavour == Flavour::Noom && !left.is_empty() {
            self.back_to_lobby(s);
        }
        Ok(left)
    }

    /// Takes the socket out of one room, if it is in it, and tells those left behind.
    pub(super) fn leave_room(
        &self,
        r: &mut Rooms,
        told: &mut Told,
        s: &SocketRef,
        flavour: Flavour,
        room: &str,
    ) -> Option<Arc<str>> {
        let me = person(s);
        let left = r.leave(me, room).ok()?;
        let (socket, key) = (s.clone(), room_key(flavour, room));
        told.queue(room, move || socket.leave(key));
        self.published_leave(me, room);
        self.tell(told, Source::Socket(s), RoomChange::Left(&left));
        Some(left.room)
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

    pub(super) fn rename(&self, s: &SocketRef, nickname: &str) -> Result<Participant, ApiError> {
        let id = person(s);
        self.with_rooms(|r, told| {
            let me = r.rename(id, nickname)?;
            self.link.publish_op(Op::Rename { id, nickname: nickname.to_owned() });
            self.announce_renamed(told, Source::Socket(s), r, id);
            Ok(me)
        })
    }

    /// Tells each room someone is in of their new name, with their call state there.
    pub(super) fn announce_renamed(&self, told: &mut Told, source: Source<'_>, rooms: &Rooms, id: PersonId) {
        for room in rooms.rooms_of(id) {
            if let Some(member) = rooms.member(id, &room) {
                self.tell(told, source, RoomChange::Updated { room: &room, participant: &member });
            }
        }
    }

    /// Records a (checked) chat message and delivers it to the others in its room; `answer` is
    /// queued right after it. Only a message that would be delivered costs against the chat
    /// rate.
    pub(super) fn post(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        text: String,
        answer: impl FnOnce(&Arc<ChatMessage>) -> Delivery,
    ) -> Result<(), ApiError> {
        let me = person(s);
        self.with_rooms(|r, told| {
            if !r.is_member(me, room) {
                return Err(not_in_room(room));
            }
            if !session.chat.lock().try_take() {
                return Err(ApiError::new(ErrorCode::RateLimited, "too many messages; slow down"));
            }
            let id = format!("{:x}-{:x}", self.boot_ms, self.next_message.fetch_add(1, Ordering::Relaxed));
            let message = Arc::new(r.post(me, room, text, id, now_ms())?);
            self.link.publish_op(Op::Chat { message: (*message).clone() });
            COUNTERS.chat_message();
            self.tell(told, Source::Socket(s), RoomChange::Message(&message));
            told.queue(room, answer(&message));
            Ok(())
        })
    }

    /// Takes a socket that is gone out of every room, and tells those left behind.
    pub(super) fn disconnect(&self, s: SocketRef) {
        let me = person(&s);
        self.with_rooms(|r, told| {
            self.stop_waiting_here(r, told, me, None);
            // Gone as a dropped connection is (its page may come back in, see `Rooms::may_enter`),
            // here and, by the op below, on the other nodes.
            for left in r.disconnect(me) {
                self.link.release_call_place(&left.room, me);
                self.tell(told, Source::Socket(&s), RoomChange::Left(&left));
            }
        });
        self.link.publish_op(Op::Disconnect { id: me });
    }
}

impl Hub {
    /// Queues, in the room's order, what the sockets of this node in the room but its source
    /// hear of a change: each flavour in its dialect. The seed's knows arrivals, departures and
    /// messages only.
    pub(super) fn tell(&self, told: &mut Told, source: Source<'_>, change: RoomChange<'_>) {
        let (seed, noom) = (Flavour::Seed, Flavour::Noom);
        match change {
            RoomChange::Entered(Entered { room, me, .. }) => {
                let arrival = (seed::WELCOME, noom::PARTICIPANT_JOINED);
                self.tell_presence(told, source, &room.name, me, room.count, arrival);
            }
            RoomChange::Left(Left { room, me, count, new_host, waiting }) => {
                self.tell_presence(told, source, room, me, *count, (seed::BYE, noom::PARTICIPANT_LEFT));
                self.left_media(room, me.id);
                if let Some(host) = new_host {
                    self.tell(told, source, RoomChange::Updated { room, participant: host });
                    if !waiting.is_empty() {
                        self.tell_waiting_to(told, room, &[host.id], waiting);
                    }
                }
                if *count == 0 {
                    // The room is gone: nobody is left to let them in.
                    for waiter in waiting {
                        self.tell_refused(told, room, waiter.id, "closed");
                    }
                }
            }
            RoomChange::Settings(info) => {
                let (to_noom, info) = (self.audience(source, noom, &info.name), (*info).clone());
                told.queue(&info.name.clone(), move || {
                    outbox::broadcast(to_noom, noom::ROOM_UPDATED, &serde_json::json!({ "room": info }));
                });
            }
            RoomChange::Updated { room, participant } => {
                if participant.call.is_none() {
                    self.left_media(room, participant.id);
                }
                let (to_noom, participant, name) =
                    (self.audience(source, noom, room), participant.clone(), room.to_owned());
                told.queue(room, move || {
                    let event = ParticipantEvent { room: &name, participant: &participant, count: None };
                    outbox::broadcast(to_noom, noom::PARTICIPANT_UPDATED, &event);
                });
            }
            RoomChange::Message(message) => {
                let room = &*message.room;
                let (to_seed, to_noom, message) =
                    (self.audience(source, seed, room), self.audience(source, noom, room), message.clone());
                told.queue(room, move || {
                    let line = format!("{}: {}", message.sender.nickname, message.text);
                    outbox::broadcast(to_seed, seed::NEW_MESSAGE, &line);
                    outbox::broadcast(to_noom, noom::CHAT_MESSAGE, &message);
                });
            }
        }
    }

    /// Queues what the room hears of an arrival or a departure: the seed's event with the name
    /// and the new count, Noom's with the participant.
    fn tell_presence(
        &self,
        told: &mut Told,
        source: Source<'_>,
        room: &Arc<str>,
        who: &Participant,
        count: usize,
        (seed_event, noom_event): (&'static str, &'static str),
    ) {
        let to_seed = self.audience(source, Flavour::Seed, room);
        let to_noom = self.audience(source, Flavour::Noom, room);
        let (name, who) = (room.clone(), who.clone());
        told.queue(room, move || {
            outbox::broadcast(to_seed, seed_event, &(&who.nickname, count));
            let event = ParticipantEvent { room: &name, participant: &who, count: Some(count) };
            outbox::broadcast(to_noom, noom_event, &event);
        });
    }
}
