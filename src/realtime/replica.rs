//! This node's copy of the people on other nodes: their ops applied in arrival order, and what
//! each changes told to the sockets on this node, as it is applied (every node tells its own
//! sockets, so that each socket hears of changes in the order its node made them).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::changes::RoomChange;
use super::room_home::Told;
use super::{Hub, Source, resume_key_of};
use crate::cluster::{MEDIA_NODE_TIMEOUT, NODE_TIMEOUT, Op, PersonState, Replica, RoomPresence};
use crate::rooms::{ChatMessage, Media, PersonId, Rooms};

impl Replica for Hub {
    fn apply(self: Arc<Self>, from: &str, op: Op) {
        // Shutting down, with no socket left to tell: only another node's request of this node's
        // media server, which still forwards the calls it handed over, is served.
        if !self.serving() && !matches!(op, Op::MediaAsk { .. } | Op::MediaAnswer { .. }) {
            return;
        }
        let new_node = self.nodes.lock().heard(from, Instant::now());
        match op {
            Op::Hello => self.link.publish_op(self.snapshot()),
            Op::Heartbeat => {
                // A node this one had given up on, back without saying hello: ask everyone again.
                if new_node {
                    self.link.publish_op(Op::Hello);
                }
            }
            Op::Snapshot { people, history } => self.apply_snapshot(from, people, history),
            Op::Enter { id, nickname, room, unlisted, resume, host } => {
                let mut nodes = self.nodes.lock();
                nodes.own(from, id);
                if let Some(key) = &resume {
                    nodes.set_resume(id, key.clone());
                }
                drop(nodes);
                self.with_rooms(|r, told| {
                    r.connect(id);
                    let _ = r.rename(id, &nickname);
                    self.enter_here(r, told, id, &room, unlisted);
                    if let Some(key) = &resume {
                        r.note_key(&room, id, key);
                    }
                    let changed = r.set_host_as_told(&room, id, host);
                    self.tell_updated(told, Source::Replica, &room, &changed);
                });
            }
            Op::Leave { id, room } => self.with_rooms(|r, told| {
                if let Ok(left) = r.leave(id, &room) {
                    self.tell(told, Source::Replica, RoomChange::Left(&left));
                }
            }),
            Op::Disconnect { id } => {
                self.with_rooms(|r, told| {
                    for room in r.stop_waiting(id, None) {
                        self.tell_waiting(r, told, &room);
                    }
                    for left in r.disconnect(id) {
                        self.tell(told, Source::Replica, RoomChange::Left(&left));
                    }
                });
                self.nodes.lock().disown(id);
            }
            Op::Rename { id, nickname } => self.with_rooms(|r, told| {
                if r.rename(id, &nickname).is_ok() {
                    self.announce_renamed(told, Source::Replica, r, id);
                }
            }),
            Op::Call { id, room, media } => self.with_rooms(|r, told| self.set_call_here(r, told, id, &room, media)),
            Op::Chat { message } => self.with_rooms(|r, told| {
                let message = Arc::new(message);
                if r.record(&message) {
                    self.tell(told, Source::Replica, RoomChange::Message(&message));
                }
            }),
            Op::CloseRoom { room, ended } => {
                self.close_room_here(&room, if ended { super::meeting::ENDED } else { super::moderation::BY_ADMIN })
            }
            Op::Host { room, id, host } => self.with_rooms(|r, told| {
                let changed = r.set_host(&room, id, host).unwrap_or_default();
                self.tell_updated(told, Source::Replica, &room, &changed);
                if !r.waiting(&room).is_empty() {
                    self.tell_waiting(r, told, &room);
                }
            }),
            Op::Lock { room, locked } => self.with_rooms(|r, told| {
                if let Ok(Some(info)) = r.set_locked(&room, locked) {
                    self.tell(told, Source::Replica, RoomChange::Settings(&info));
                }
            }),
            Op::Hand { room, id, raised } => self.with_rooms(|r, told| {
                if let Ok(Some(p)) = r.set_hand(id, &room, raised) {
                    self.tell_updated(told, Source::Replica, &room, &[p]);
                }
            }),
            Op::Mute { room, id, muted } => self.with_rooms(|r, told| {
                if let Ok(Some(p)) = r.set_muted(&room, id, muted) {
                    self.muted_here(told, &room, &p);
                }
            }),
            Op::Ask { room, id, ask } => self.with_rooms(|_, told| self.tell_asked(told, &room, id, ask)),
            Op::WaitingRoom { room, on } => self.with_rooms(|r, told| {
                if let Ok(Some((info, admitted))) = r.set_waiting_room(&room, on) {
                    self.waiting_room_set(r, told, &info, &admitted);
                }
            }),
            Op::Wait { room, waiter } => self.with_rooms(|r, told| {
                if r.wait(&room, waiter) {
                    self.tell_waiting(r, told, &room);
                }
            }),
            Op::Admit { room, id, admit } => self.with_rooms(|r, told| {
                if r.answer_waiter(&room, id, admit).is_some() {
                    self.answered_here(r, told, &room, id, admit);
                }
            }),
            Op::Unwait { room, id } => self.with_rooms(|r, told| {
                if !r.stop_waiting(id, Some(&room)).is_empty() {
                    self.tell_waiting(r, told, &room);
                }
            }),
            Op::HostKey { room, hash } => {
                self.rooms.lock().set_host_key(&room, &hash);
            }
            Op::Password { room, hash } => self.with_rooms(|r, told| {
                if let Ok(Some(info)) = r.set_password(&room, hash.map(Arc::from)) {
                    self.tell(told, Source::Replica, RoomChange::Settings(&info));
                }
            }),
            Op::Remove { room, id, bar } => {
                if bar {
                    self.rooms.lock().bar(&room, id);
                }
                self.remove_here(&room, id);
            }
            Op::Kick { id } => self.kick_here(id),
            Op::Resumed { token } => self.resumed_elsewhere(&token),
            Op::MediaAsk { node, ask, id, room, request } => {
                if node == self.link.node() {
                    self.media_asked(from, ask, id, room, request);
                }
            }
            Op::MediaAnswer { node, ask, result } => {
                if node == self.link.node() {
                    self.media_answered(ask, result);
                }
            }
            Op::MediaLost { id, room } => {
                // Only from the node that carries their media: one they moved away from lets go of
                // the connection they left.
                if self.media_carried_by(id, &room, from)
                    && let Some(s) = self.socket_of(id)
                {
                    tokio::spawn(async move { super::media::lost(&self, &s, &room).await });
                }
            }
            Op::MediaMoved { room, to } => self.media_moved(&room, &to),
            Op::MediaRelay { address, key } => self.relay_heard(from, address, key),
            Op::Gone => self.forget_node(from),
        }
    }

    fn snapshot(&self) -> Op {
        self.with_own_people(|rooms, own| {
            let mut people = Vec::new();
            let mut history = Vec::new();
            let mut rooms_seen = HashSet::new();
            for id in own {
                let in_rooms = rooms.rooms_of(id);
                // In the lobby, where no one else needs to know of them.
                if in_rooms.is_empty() {
                    continue;
                }
                let Some(me) = rooms.participant(id) else { continue };
                let presence = in_rooms
                    .iter()
                    .map(|room| {
                        let member = rooms.member(id, room);
                        RoomPresence {
                            name: room.to_string(),
                            unlisted: rooms.is_unlisted(room),
                            call: member.as_ref().and_then(|m| m.call),
                            call_since: member
                                .as_ref()
                                .filter(|m| m.call.is_some())
                                .and_then(|_| rooms.call_since(room)),
                            host: member.as_ref().is_some_and(|m| m.host),
                            hand: member.as_ref().and_then(|m| m.hand),
                            muted: member.as_ref().is_some_and(|m| m.muted),
                            locked: rooms.room_info(room).is_some_and(|info| info.locked),
                            waiting_room: rooms.room_info(room).is_some_and(|info| info.waiting_room),
                            password: rooms.password_hash(room).map(|hash| hash.to_string()),
                            host_key: rooms.host_key_hash(room).map(|hash| hash.to_string()),
                        }
                    })
                    .collect();
                let resume = self.socket_of(id).as_ref().and_then(resume_key_of);
                people.push(PersonState { id, nickname: me.nickname.to_string(), resume, rooms: presence });
                for room in in_rooms {
                    if rooms_seen.insert(room.clone()) {
                        history.extend(rooms.history(&room));
                    }
                }
            }
            Op::Snapshot { people, history }
        })
    }

    fn call_places(&self) -> Vec<(String, PersonId)> {
        self.with_own_people(|rooms, own| {
            let mut places = Vec::new();
            for id in own {
                for room in rooms.rooms_of(id) {
                    if rooms.member(id, &room).is_some_and(|m| m.call.is_some()) {
                        places.push((room.to_string(), id));
                    }
                }
            }
            places
        })
    }

    fn drop_silent(&self, now: Instant) {
        if !self.serving() {
            return;
        }
        // Others quiet while this node's own link was down, or just after, says nothing of them.
        if self.link.up_for(now).is_some_and(|up| up > MEDIA_NODE_TIMEOUT) {
            let quiet = self.nodes.lock().silent(now, MEDIA_NODE_TIMEOUT);
            for node in quiet {
                self.media_node_gone(&node);
                // Whose pages came back elsewhere: gone for sure, and no one else will say so.
                let replaced = self.nodes.lock().replaced_of(&node);
                for id in replaced {
                    self.forget_replaced(id);
                }
            }
        }
        let silent = self.nodes.lock().silent(now, NODE_TIMEOUT);
        for node in silent {
            tracing::warn!(%node, "node not heard from for {NODE_TIMEOUT:?}: its people leave");
            self.forget_node(&node);
        }
    }

    fn keep_calls(self: Arc<Self>) {
        tokio::spawn(async move { Hub::keep_calls(&self).await });
    }
}

impl Hub {
    /// Runs `f` on the room state and the people connected to this node.
    pub(super) fn with_own_people<T>(&self, f: impl FnOnce(&Rooms, Vec<PersonId>) -> T) -> T {
        let nodes = self.nodes.lock();
        let rooms = self.rooms.lock();
        let own = rooms.ids().into_iter().filter(|id| nodes.owner(*id).is_none()).collect();
        f(&rooms, own)
    }

    /// Someone of another node's role, hand and mute in a room, and the room's lock, as their
    /// node's snapshot has them.
    fn meeting_as_told(&self, r: &mut Rooms, told: &mut Told, id: PersonId, presence: &RoomPresence) {
        let room = &presence.name;
        if let Some(hash) = &presence.host_key {
            r.set_host_key(room, hash);
        }
        let mut changed = r.set_host_as_told(room, id, presence.host);
        changed.extend(r.set_hand(id, room, presence.hand).ok().flatten());
        self.tell_updated(told, Source::Replica, room, &changed);
        if let Ok(Some(p)) = r.set_muted(room, id, presence.muted) {
            self.muted_here(told, room, &p);
        }
        if presence.locked
            && let Ok(Some(info)) = r.set_locked(room, true)
        {
            self.tell(told, Source::Replica, RoomChange::Settings(&info));
        }
        if presence.waiting_room
            && let Ok(Some((info, _))) = r.set_waiting_room(room, true)
        {
            self.tell(told, Source::Replica, RoomChange::Settings(&info));
        }
        if let Some(hash) = &presence.password
            && let Ok(Some(info)) = r.set_password(room, Some(hash.as_str().into()))
        {
            self.tell(told, Source::Replica, RoomChange::Settings(&info));
        }
    }

    /// Someone of another node enters a room here, as it has it.
    fn enter_here(&self, r: &mut Rooms, told: &mut Told, id: PersonId, room: &str, unlisted: bool) {
        let Ok(entered) = r.enter(id, room, unlisted) else { return };
        if unlisted {
            r.mark_unlisted(room);
        }
        if entered.is_new {
            self.tell(told, Source::Replica, RoomChange::Entered(&entered));
        }
    }

    /// Someone of another node joined a call (or changed their media), or left it.
    fn set_call_here(&self, r: &mut Rooms, told: &mut Told, id: PersonId, room: &str, media: Option<Media>) {
        let was_in_call = r.member(id, room).is_some_and(|m| m.call.is_some());
        let changed = match media {
            // Their node took the place.
            Some(media) => r.join_call(id, room, media, false, super::now_ms()).is_ok_and(|c| c.changed),
            None => r.leave_call(id, room).is_ok(),
        };
        if changed && let Some(member) = r.member(id, room) {
            self.tell_call_change(r, told, Source::Replica, room, &member, was_in_call);
        }
    }

    /// Replaces what this node knew of `from`'s people with its snapshot.
    fn apply_snapshot(&self, from: &str, people: Vec<PersonState>, history: Vec<ChatMessage>) {
        let listed: HashSet<PersonId> = people.iter().map(|p| p.id).collect();
        let gone: Vec<PersonId> =
            self.nodes.lock().people_of(from).into_iter().filter(|id| !listed.contains(id)).collect();
        for id in gone {
            self.forget_person(id);
        }
        for person in people {
            let mut nodes = self.nodes.lock();
            nodes.own(from, person.id);
            if let Some(key) = &person.resume {
                nodes.set_resume(person.id, key.clone());
            }
            drop(nodes);
            self.with_rooms(|r, told| {
                r.connect(person.id);
                let renamed = r.participant(person.id).is_some_and(|p| *p.nickname != *person.nickname);
                let _ = r.rename(person.id, &person.nickname);
                for room in r.rooms_of(person.id) {
                    if !person.rooms.iter().any(|p| *p.name == *room)
                        && let Ok(left) = r.leave(person.id, &room)
                    {
                        self.tell(told, Source::Replica, RoomChange::Left(&left));
                    }
                }
                if renamed {
                    self.announce_renamed(told, Source::Replica, r, person.id);
                }
                for presence in &person.rooms {
                    self.enter_here(r, told, person.id, &presence.name, presence.unlisted);
                    if let Some(key) = &person.resume {
                        r.note_key(&presence.name, person.id, key);
                    }
                    let before = r.member(person.id, &presence.name).and_then(|m| m.call);
                    if before != presence.call {
                        self.set_call_here(r, told, person.id, &presence.name, presence.call);
                    }
                    if let Some(since) = presence.call_since {
                        r.call_began_by(&presence.name, since);
                    }
                    self.meeting_as_told(r, told, person.id, presence);
                }
            });
        }
        self.rooms.lock().merge_history(history);
    }

    /// Someone of a quiet node whose page came back elsewhere: they are gone, and so are their
    /// places in calls, which their node would have given back.
    pub(super) fn forget_replaced(&self, id: PersonId) {
        let places: Vec<Arc<str>> = {
            let rooms = self.rooms.lock();
            rooms
                .rooms_of(id)
                .into_iter()
                .filter(|room| rooms.member(id, room).is_some_and(|m| m.call.is_some()))
                .collect()
        };
        for room in places {
            self.link.release_call_place(&room, id);
        }
        self.forget_person(id);
    }

    /// Someone of another node is gone: they leave every room, and the sockets here are told.
    fn forget_person(&self, id: PersonId) {
        self.nodes.lock().disown(id);
        self.with_rooms(|r, told| {
            for left in r.disconnect(id) {
                self.tell(told, Source::Replica, RoomChange::Left(&left));
            }
        });
    }

    /// A node is gone, and its people with it; so are the calls its media server carried.
    fn forget_node(&self, node: &str) {
        let people = self.nodes.lock().remove(node);
        for id in people {
            self.forget_person(id);
        }
        self.media_node_gone(node);
    }
}
