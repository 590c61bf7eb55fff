//! This node's copy of the people on other nodes: their ops applied in arrival order, and what
//! a node's snapshot, departure or silence changes, told to the sockets on this node.
//!
//! An op from another node changes only the copy: the pushes it causes were broadcast by that
//! node, and arrive after it. A snapshot or a node's end is news no node broadcast, so each node
//! tells its own sockets.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use socketioxide::socket::Sid;

use super::{Hub, Source};
use crate::cluster::{NODE_TIMEOUT, Op, PersonState, Replica, RoomPresence};
use crate::rooms::{ChatMessage, Entered, Left, Participant};

/// Runs a push to this node's sockets at once: local broadcasts complete without waiting, and
/// the link's task, which calls the replica, must not wait.
fn push_now(push: impl Future<Output = ()>) {
    if push.now_or_never().is_none() {
        tracing::warn!("a push to local sockets did not complete at once");
    }
}

/// What a snapshot changed for one person, to tell the sockets here.
#[derive(Default)]
struct Changes {
    entered: Vec<Entered>,
    left: Vec<Left>,
    updated: Vec<(Arc<str>, Participant)>,
}

impl Replica for Hub {
    fn apply(&self, from: &str, op: Op) {
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
            Op::Enter { id, nickname, room, unlisted } => {
                self.nodes.lock().own(from, id);
                self.with_rooms(|r| {
                    r.connect(id);
                    let _ = r.rename(id, &nickname);
                    let _ = r.enter(id, &room, unlisted);
                });
            }
            Op::Leave { id, room } => self.with_rooms(|r| {
                let _ = r.leave(id, &room);
            }),
            Op::Disconnect { id } => {
                self.with_rooms(|r| r.disconnect(id));
                self.nodes.lock().disown(id);
            }
            Op::Rename { id, nickname } => self.with_rooms(|r| {
                let _ = r.rename(id, &nickname);
            }),
            Op::Call { id, room, media } => self.with_rooms(|r| {
                let _ = match media {
                    Some(media) => r.join_call(id, &room, media, false).map(drop),
                    None => r.leave_call(id, &room).map(drop),
                };
            }),
            Op::Chat { message } => self.rooms.lock().record(message),
            Op::Resumed { token } => self.resumed_elsewhere(&token),
            Op::Gone => self.forget_node(from),
        }
    }

    fn snapshot(&self) -> Op {
        let nodes = self.nodes.lock();
        let rooms = self.rooms.lock();
        let mut people = Vec::new();
        let mut history = Vec::new();
        let mut rooms_seen = HashSet::new();
        for id in rooms.ids() {
            let in_rooms = rooms.rooms_of(id);
            // Someone else's, or in the lobby, where no one else needs to know of them.
            if nodes.owner(id).is_some() || in_rooms.is_empty() {
                continue;
            }
            let Some(me) = rooms.participant(id) else { continue };
            let presence = in_rooms
                .iter()
                .map(|room| RoomPresence {
                    name: room.to_string(),
                    unlisted: rooms.is_unlisted(room),
                    call: rooms.member(id, room).and_then(|m| m.call),
                })
                .collect();
            people.push(PersonState { id, nickname: me.nickname.to_string(), rooms: presence });
            for room in in_rooms {
                if rooms_seen.insert(room.clone()) {
                    history.extend(rooms.history(&room));
                }
            }
        }
        Op::Snapshot { people, history }
    }

    fn call_places(&self) -> Vec<(String, Sid)> {
        let nodes = self.nodes.lock();
        let rooms = self.rooms.lock();
        let mut places = Vec::new();
        for id in rooms.ids().into_iter().filter(|id| nodes.owner(*id).is_none()) {
            for room in rooms.rooms_of(id) {
                if rooms.member(id, &room).is_some_and(|m| m.call.is_some()) {
                    places.push((room.to_string(), id));
                }
            }
        }
        places
    }

    fn drop_silent(&self, now: Instant) {
        let silent = self.nodes.lock().silent(now, NODE_TIMEOUT);
        for node in silent {
            tracing::warn!(%node, "node not heard from for {NODE_TIMEOUT:?}: its people leave");
            self.forget_node(&node);
        }
    }
}

impl Hub {
    /// Replaces what this node knew of `from`'s people with its snapshot.
    fn apply_snapshot(&self, from: &str, people: Vec<PersonState>, history: Vec<ChatMessage>) {
        let listed: HashSet<Sid> = people.iter().map(|p| p.id).collect();
        let gone: Vec<Sid> = self.nodes.lock().people_of(from).into_iter().filter(|id| !listed.contains(id)).collect();
        for id in gone {
            self.forget_person(id);
        }
        for person in people {
            self.nodes.lock().own(from, person.id);
            let changes = self.with_rooms(|r| {
                let mut changes = Changes::default();
                r.connect(person.id);
                let renamed = r.participant(person.id).is_some_and(|p| *p.nickname != *person.nickname);
                let _ = r.rename(person.id, &person.nickname);
                for room in r.rooms_of(person.id) {
                    if !person.rooms.iter().any(|p| *p.name == *room)
                        && let Ok(left) = r.leave(person.id, &room)
                    {
                        changes.left.push(left);
                    }
                }
                for presence in &person.rooms {
                    let Ok(entered) = r.enter(person.id, &presence.name, presence.unlisted) else { continue };
                    let before = r.member(person.id, &presence.name).and_then(|m| m.call);
                    if before != presence.call {
                        let _ = match presence.call {
                            Some(media) => r.join_call(person.id, &presence.name, media, false).map(drop),
                            None => r.leave_call(person.id, &presence.name).map(drop),
                        };
                    }
                    let now = r.member(person.id, &presence.name).expect("just entered");
                    // A newcomer's `participant:joined` carries no call state.
                    let news = if entered.is_new { now.call.is_some() } else { renamed || before != presence.call };
                    if news {
                        changes.updated.push((entered.room.name.clone(), now));
                    }
                    if entered.is_new {
                        changes.entered.push(entered);
                    }
                }
                changes
            });
            for left in &changes.left {
                push_now(self.announce_left(Source::Replica, left));
            }
            for entered in &changes.entered {
                push_now(self.announce_entered(Source::Replica, entered));
            }
            for (room, participant) in &changes.updated {
                push_now(self.announce_updated(Source::Replica, room, participant));
            }
        }
        self.rooms.lock().merge_history(history);
    }

    /// Someone of another node is gone: they leave every room, and the sockets here are told.
    fn forget_person(&self, id: Sid) {
        self.nodes.lock().disown(id);
        let left = self.with_rooms(|r| r.disconnect(id));
        for left in &left {
            push_now(self.announce_left(Source::Replica, left));
        }
    }

    fn forget_node(&self, node: &str) {
        let people = self.nodes.lock().remove(node);
        for id in people {
            self.forget_person(id);
        }
    }
}
