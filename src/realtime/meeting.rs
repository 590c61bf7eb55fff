//! Running a meeting: hosts' controls (who else hosts, the lock, the password, the waiting room,
//! removing someone, ending the meeting, muting, asking), the checks of a password or a host key
//! on the way in, and everyone's raised hand and reactions.
//!
//! Each is checked here, on the asker's node, made in the room state, told to everyone here (the
//! asker too: its page shows what the room shows) and, as an op, to the other nodes, which make
//! it as told (`replica`). Whatever concerns one person (being taken out, being asked something)
//! is done by their own node.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::changes::RoomChange;
use super::room_home::Told;
use super::{
    AckSender, EventDef, EventKind, Flavour, Hub, Session, SocketRef, Source, now_ms, outbox, person, refuse, reply,
    resume_key_of, room_key,
};
use crate::cluster::Op;
use crate::events;
use crate::requests::Control;
use crate::rooms::{Ask, Entry, Participant, PersonId, RoomInfo, Rooms, Waiter, not_in_room};
use crate::validate::{ApiError, ErrorCode};

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: events::noom::ROOM_HOST, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_LOCK, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_REMOVE, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_END, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_HAND, kind: EventKind::Noom },
    EventDef { name: events::noom::CALL_MUTE, kind: EventKind::Noom },
    EventDef { name: events::noom::CALL_ASK, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_WAITING_ROOM, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_ADMIT, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_REACT, kind: EventKind::Noom },
    EventDef { name: events::noom::ROOM_PASSWORD, kind: EventKind::Noom },
];

/// Why someone was taken out of a room, as `room:closed` says.
pub(super) const REMOVED: &str = "removed";
pub(super) const ENDED: &str = "ended";

/// The answer to a control: what it did.
#[derive(Serialize, Default)]
struct Done {
    /// The room as it now is (`room:lock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<RoomInfo>,
    /// How many people it reached (`call:mute`, `room:end`).
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}

pub(super) async fn control(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (room, control): (String, Control),
    ack: AckSender,
) {
    let done = match control {
        Control::React { emoji } => hub.react(&s, &session, &room, emoji).await.map(|()| Done::default()),
        Control::Password { password } => hub.set_password(&s, &room, password).await,
        control => hub.run_control(&s, &room, control),
    };
    match done {
        Ok(done) => reply(ack, &done),
        Err(e) => refuse(ack, &e),
    }
}

/// The person a control aims at, by the id sent.
fn target(id: &str, room: &str) -> Result<PersonId, ApiError> {
    id.parse().map_err(|()| ApiError::new(ErrorCode::NotFound, format!("that person is not in room {room:?}")))
}

impl Hub {
    /// A reaction: everyone else in the room, on every node, sees it over the sender; nothing of
    /// it is kept.
    async fn react(&self, s: &SocketRef, session: &Session, room: &str, emoji: &str) -> Result<(), ApiError> {
        let me = person(s);
        if !self.rooms.lock().is_member(me, room) {
            return Err(not_in_room(room));
        }
        if !session.reactions.lock().try_take() {
            return Err(ApiError::new(ErrorCode::RateLimited, "too many reactions; slow down"));
        }
        let reaction = serde_json::json!({ "room": room, "from": me, "emoji": emoji });
        self.everywhere(s, room_key(Flavour::Noom, room), events::noom::ROOM_REACTION, &reaction).await;
        Ok(())
    }

    /// The hash of the room's password that `password` matched, if the room needs one of them;
    /// wrong or missing, a refusal. Guesses cost: a few, then one every twelve seconds.
    pub(super) async fn check_password(
        &self,
        s: &SocketRef,
        session: &Session,
        room: &str,
        password: Option<String>,
    ) -> Result<Option<Arc<str>>, ApiError> {
        let Some(hash) = self.rooms.lock().password_for(person(s), room, resume_key_of(s).as_deref()) else {
            return Ok(None);
        };
        let Some(password) = password else {
            return Err(ApiError::new(ErrorCode::PasswordRequired, "this room needs its password"));
        };
        self.count_guess(session)?;
        if crate::passwords::matches(password, hash.clone()).await {
            Ok(Some(hash))
        } else {
            tracing::info!(room, client = ?session.address, "a wrong room password");
            Err(ApiError::new(ErrorCode::WrongPassword, "that is not the room's password"))
        }
    }

    /// Whether `key` is the host key of the open room: true makes its giver a host; a room not open
    /// is theirs to open anyway. Wrong, a refusal; guesses cost as passwords do.
    pub(super) fn check_host_key(&self, session: &Session, room: &str, key: &str) -> Result<bool, ApiError> {
        let hash = crate::passwords::host_key_hash(key);
        let rooms = self.rooms.lock();
        if rooms.room_info(room).is_none() {
            return Ok(false);
        }
        self.count_guess(session)?;
        if rooms.host_key_is(room, &hash) {
            return Ok(true);
        }
        tracing::info!(room, client = ?session.address, "a wrong host key");
        Err(ApiError::new(ErrorCode::BadHostKey, "that host link is not this room's"))
    }

    /// A host sets the room's password (kept as its hash only), or takes it away.
    async fn set_password(&self, s: &SocketRef, room: &str, password: Option<String>) -> Result<Done, ApiError> {
        let me = person(s);
        self.rooms.lock().check_host(me, room)?;
        let hash = match password {
            Some(password) => Some(crate::passwords::hash(password).await.map_err(|e| {
                tracing::error!("a room password could not be hashed: {e}");
                ApiError::new(ErrorCode::Overloaded, "the password could not be set; try again")
            })?),
            None => None,
        };
        self.with_rooms(|r, told| {
            // Still a host, once the hash is made.
            r.check_host(me, room)?;
            if let Some(info) = r.set_password(room, hash.as_deref().map(Arc::from))? {
                tracing::info!(room, password = info.password, "a host set or removed a room's password");
                self.link.publish_op(Op::Password { room: room.to_owned(), hash });
                self.tell(told, Source::Everyone, RoomChange::Settings(&info));
            }
            Ok(Done { room: r.room_info(room), count: None })
        })
    }

    fn run_control(&self, s: &SocketRef, room: &str, control: Control) -> Result<Done, ApiError> {
        let me = person(s);
        let room_name = room.to_owned();
        match control {
            Control::Hand { raised } => self.with_rooms(|r, told| {
                let raised = raised.then(now_ms);
                if let Some(p) = r.set_hand(me, room, raised).map_err(|_| not_in_room(room))? {
                    self.link.publish_op(Op::Hand { room: room_name, id: me, raised });
                    self.tell_updated(told, Source::Everyone, room, &[p]);
                }
                Ok(Done::default())
            }),
            Control::Host { id, host } => {
                let id = target(&id, room)?;
                self.with_rooms(|r, told| {
                    r.check_host(me, room)?;
                    let changed = r.set_host(room, id, host)?;
                    if !changed.is_empty() {
                        self.link.publish_op(Op::Host { room: room_name, id, host });
                    }
                    self.tell_updated(told, Source::Everyone, room, &changed);
                    if !r.waiting(room).is_empty() {
                        self.tell_waiting(r, told, room);
                    }
                    Ok(Done::default())
                })
            }
            Control::Lock { locked } => self.with_rooms(|r, told| {
                r.check_host(me, room)?;
                if let Some(info) = r.set_locked(room, locked)? {
                    tracing::info!(room, locked, "a host locked or unlocked a room");
                    self.link.publish_op(Op::Lock { room: room_name, locked });
                    self.tell(told, Source::Everyone, RoomChange::Settings(&info));
                }
                Ok(Done { room: r.room_info(room), count: None })
            }),
            Control::Mute { id } => {
                let muted = self.with_rooms(|r, told| {
                    r.check_host(me, room)?;
                    let whom = match id {
                        Some(id) => {
                            let id = target(&id, room)?;
                            r.check_member(id, room)?;
                            vec![id]
                        }
                        None => r.guests_in_call(room),
                    };
                    Ok(self.set_muted(r, told, room, &whom, true))
                })?;
                Ok(Done { room: None, count: Some(muted) })
            }
            Control::Ask { id, ask } => {
                let id = target(&id, room)?;
                self.with_rooms(|r, told| {
                    r.check_host(me, room)?;
                    r.check_member(id, room)?;
                    if ask == Ask::Unmute {
                        self.set_muted(r, told, room, &[id], false);
                    }
                    self.link.publish_op(Op::Ask { room: room_name, id, ask });
                    self.tell_asked(told, room, id, ask);
                    Ok(Done::default())
                })
            }
            Control::Remove { id, bar } => {
                let id = target(&id, room)?;
                self.with_rooms(|r, _| {
                    r.check_host(me, room)?;
                    r.check_member(id, room)?;
                    if id == me {
                        return Err(ApiError::bad_request("to leave the room, leave it"));
                    }
                    if bar {
                        r.bar(room, id);
                    }
                    Ok(())
                })?;
                tracing::info!(room, %id, bar, "a host removed someone from a room");
                self.link.publish_op(Op::Remove { room: room_name, id, bar });
                self.remove_here(room, id);
                Ok(Done::default())
            }
            Control::WaitingRoom { on } => self.with_rooms(|r, told| {
                r.check_host(me, room)?;
                if let Some((info, admitted)) = r.set_waiting_room(room, on)? {
                    self.link.publish_op(Op::WaitingRoom { room: room_name, on });
                    self.waiting_room_set(r, told, &info, &admitted);
                }
                Ok(Done { room: r.room_info(room), count: None })
            }),
            Control::Admit { id, admit } => {
                let not_waiting = || ApiError::new(ErrorCode::NotFound, "that person is not waiting to enter");
                let id = id.parse().map_err(|()| not_waiting())?;
                self.with_rooms(|r, told| {
                    r.check_host(me, room)?;
                    r.answer_waiter(room, id, admit).ok_or_else(not_waiting)?;
                    self.link.publish_op(Op::Admit { room: room_name, id, admit });
                    self.answered_here(r, told, room, id, admit);
                    Ok(Done::default())
                })
            }
            Control::React { .. } | Control::Password { .. } => unreachable!("answered by `control`"),
            Control::End => {
                let count = {
                    let rooms = self.rooms.lock();
                    rooms.check_host(me, room)?;
                    rooms.room_info(room).map_or(0, |info| info.count)
                };
                self.link.publish_op(Op::CloseRoom { room: room_name, ended: true });
                self.close_room_here(room, ENDED);
                Ok(Done { room: None, count: Some(count) })
            }
        }
    }

    /// Mutes or unmutes each of `whom` who is not so already, here and on the other nodes;
    /// returns how many changed.
    fn set_muted(&self, r: &mut Rooms, told: &mut Told, room: &str, whom: &[PersonId], muted: bool) -> usize {
        let mut changed = 0;
        for id in whom {
            if let Ok(Some(p)) = r.set_muted(room, *id, muted) {
                self.link.publish_op(Op::Mute { room: room.to_owned(), id: *id, muted });
                self.muted_here(told, room, &p);
                changed += 1;
            }
        }
        changed
    }

    /// Someone was muted or unmuted, here or on another node: the room hears it, and the media
    /// server, if it carries their voice, forwards it or not.
    pub(super) fn muted_here(&self, told: &mut Told, room: &str, p: &Participant) {
        self.tell_updated(told, Source::Everyone, room, std::slice::from_ref(p));
        self.silence(room, p.id, p.muted);
    }

    /// Tells the media server whether to forward `id`'s voice in `room`'s call (it carries it or
    /// not; if not, its node's does, and does the same).
    pub(super) fn silence(&self, room: &str, id: PersonId, muted: bool) {
        if let Some(media) = &self.media {
            media.silence(room, id, muted);
        }
    }

    /// Queues what the room hears of people whose role, hand or mute changed.
    pub(super) fn tell_updated(&self, told: &mut Told, source: Source<'_>, room: &str, changed: &[Participant]) {
        for participant in changed {
            self.tell(told, source, RoomChange::Updated { room, participant });
        }
    }

    /// Queues, in the room's order, a push to `id` alone, if they are connected here.
    pub(super) fn tell_one(&self, told: &mut Told, room: &str, id: PersonId, event: &'static str, notice: Value) {
        if let Some(s) = self.socket_of(id) {
            told.queue(room, move || outbox::push(&s, event, &notice));
        }
    }

    /// Queues a host's ask to `id`.
    pub(super) fn tell_asked(&self, told: &mut Told, room: &str, id: PersonId, ask: Ask) {
        self.tell_one(told, room, id, events::noom::CALL_ASKED, json!({ "room": room, "ask": ask }));
    }

    /// Queues, for one waiting to enter, why they wait no more.
    pub(super) fn tell_refused(&self, told: &mut Told, room: &str, id: PersonId, reason: &'static str) {
        self.tell_one(told, room, id, events::noom::ROOM_REFUSED, json!({ "room": room, "reason": reason }));
    }

    /// Queues, for `hosts`, who waits to enter the room now.
    pub(super) fn tell_waiting_to(&self, told: &mut Told, room: &str, hosts: &[PersonId], waiting: &[Waiter]) {
        let notice = json!({ "room": room, "waiting": waiting });
        for host in hosts {
            self.tell_one(told, room, *host, events::noom::ROOM_WAITING, notice.clone());
        }
    }

    /// Queues, for the room's hosts connected here, who waits to enter it now.
    pub(super) fn tell_waiting(&self, r: &Rooms, told: &mut Told, room: &str) {
        self.tell_waiting_to(told, room, &r.hosts_of(room), &r.waiting(room));
    }

    /// A host let in someone waiting, or turned them away: they are told, if they are here, and
    /// the hosts here see the queue as it now is.
    pub(super) fn answered_here(&self, r: &Rooms, told: &mut Told, room: &str, id: PersonId, admit: bool) {
        if admit {
            self.tell_one(told, room, id, events::noom::ROOM_ADMITTED, json!({ "room": room }));
        } else {
            self.tell_refused(told, room, id, "refused");
        }
        self.tell_waiting(r, told, room);
    }

    /// A room's waiting room was turned on or off: everyone hears it, and those it let in (off)
    /// are told.
    pub(super) fn waiting_room_set(&self, r: &Rooms, told: &mut Told, info: &RoomInfo, admitted: &[Waiter]) {
        self.tell(told, Source::Everyone, RoomChange::Settings(info));
        for waiter in admitted {
            self.answered_here(r, told, &info.name, waiter.id, true);
        }
        self.tell_waiting(r, told, &info.name);
    }

    /// Someone of this node asks to enter a room whose newcomers wait for a host: they wait, and
    /// are turned away after `--waiting-timeout`. False if the room does not make them wait.
    pub(super) fn wait_to_enter(self: &Arc<Self>, s: &SocketRef, room: &str, password: Option<&str>) -> bool {
        let me = person(s);
        let since = now_ms();
        let waits = self.with_rooms(|r, told| {
            let key = resume_key_of(s);
            let entry = Entry { resume: key.as_deref(), password, host: false };
            if !r.may_enter(me, room, entry).is_err_and(|e| e.code == ErrorCode::WaitingRoom) {
                return false;
            }
            let Some(nickname) = r.participant(me).map(|p| p.nickname) else { return false };
            let waiter = Waiter { id: me, nickname, since };
            if r.wait(room, waiter.clone()) {
                self.link.publish_op(Op::Wait { room: room.to_owned(), waiter });
                self.tell_waiting(r, told, room);
            }
            true
        });
        if waits {
            let (hub, room) = (Arc::downgrade(self), room.to_owned());
            let timeout = std::time::Duration::from_secs(self.config.waiting_timeout);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(hub) = hub.upgrade() {
                    hub.waited_too_long(me, &room, since);
                }
            });
        }
        waits
    }

    /// Turns away someone of this node who still waits, as they began waiting at `since`.
    fn waited_too_long(&self, id: PersonId, room: &str, since: u64) {
        self.with_rooms(|r, told| {
            if !r.waiting(room).iter().any(|w| w.id == id && w.since == since) {
                return;
            }
            self.stop_waiting_here(r, told, id, Some(room));
            self.tell_refused(told, room, id, "timeout");
        });
    }

    /// Someone of this node waits no more (in `room`, or anywhere): the other nodes and the hosts
    /// here are told. Returns whether they were waiting.
    pub(super) fn stop_waiting_here(&self, r: &mut Rooms, told: &mut Told, id: PersonId, room: Option<&str>) -> bool {
        let rooms = r.stop_waiting(id, room);
        for room in &rooms {
            self.link.publish_op(Op::Unwait { room: room.to_string(), id });
            self.tell_waiting(r, told, room);
        }
        !rooms.is_empty()
    }

    /// Takes someone connected here out of a room a host removed them from, telling them why.
    pub(super) fn remove_here(&self, room: &str, id: PersonId) {
        if let Some(s) = self.socket_of(id) {
            self.take_out(&s, room, REMOVED);
        }
    }
}
