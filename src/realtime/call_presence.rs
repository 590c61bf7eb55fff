//! Media state in large calls: batched, and told only to those who show it.
//!
//! In a call of more than [`LARGE_CALL`] people, a change of someone's microphone, camera or
//! screen is not pushed at once to everyone in the room: the changes of [`BATCH_EVERY`] go out
//! together, one `participants:updated` per socket, listing only the people that socket shows
//! (their tile, or their entry in its list of people, on its screen, as its last `sfu:view`
//! said). A phone showing six tiles of a hundred is woken a few times a second at most, for those
//! six. Someone it starts to show comes with their state as it is then. Who joins or leaves
//! the call, and renames, are still told at once to everyone: they change the tiles themselves.
//!
//! Each batch reads the state as it is when it goes, in the room's order (see
//! [`super::room_home`]): a change told after someone left the call would show them in it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::changes::RoomChange;
use super::room_home::Told;
use super::{Flavour, Hub, SocketRef, Source, outbox, person};
use crate::events::noom;
use crate::rooms::{Participant, PersonId, Rooms};

/// A call of more people than this has its media state batched.
pub(super) const LARGE_CALL: usize = 12;
/// How often a large call's media-state changes go out.
pub(super) const BATCH_EVERY: Duration = Duration::from_millis(250);

/// Leaf locks: taken alone, or under the hub's; nothing is locked while one is held.
#[derive(Default)]
pub(super) struct CallPresence {
    /// Who changed their media in each large call since the last batch.
    changed: Mutex<HashMap<Arc<str>, HashSet<PersonId>>>,
    /// What each person of this node shows of each call they are in, by their last `sfu:view`.
    /// At most twice [`crate::requests::VIEW_TILES_MAX`] people each.
    shown: Mutex<HashMap<(PersonId, Arc<str>), Shown>>,
}

/// Whose tiles, or entries in the list of people, are on a socket's screen.
struct Shown(HashSet<PersonId>);

#[derive(Serialize)]
struct Batch<'a> {
    room: &'a str,
    participants: &'a [Participant],
}

impl Hub {
    /// Tells the room how `member` now is in its call: a change of media of someone who was in a
    /// large call already goes with the next batch; joining, leaving, and any change in a smaller
    /// call, at once.
    pub(super) fn tell_call_change(
        &self,
        rooms: &Rooms,
        told: &mut Told,
        source: Source<'_>,
        room: &str,
        member: &Participant,
        was_in_call: bool,
    ) {
        if was_in_call && member.call.is_some() && rooms.call_len(room) > LARGE_CALL {
            self.call_presence.changed.lock().entry(Arc::from(room)).or_default().insert(member.id);
        } else {
            self.tell(told, source, RoomChange::Updated { room, participant: member });
        }
    }

    /// Sends each large call's batch of media-state changes (every [`BATCH_EVERY`]).
    pub(super) fn send_media_batches(&self) {
        if !self.serving() {
            return;
        }
        let changed = std::mem::take(&mut *self.call_presence.changed.lock());
        for (room, ids) in changed {
            self.with_rooms(|r, told| {
                let states: Vec<Participant> =
                    ids.iter().filter_map(|id| r.member(*id, &room)).filter(|p| p.call.is_some()).collect();
                let sockets = self.audience(Source::Replica, Flavour::Noom, &room).sockets();
                self.tell_shown(told, &room, sockets, &states);
            });
        }
    }

    /// Queues, in `room`'s order, to each of `sockets` the states among `states` it shows, but
    /// its own.
    fn tell_shown(&self, told: &mut Told, room: &Arc<str>, sockets: Vec<SocketRef>, states: &[Participant]) {
        if states.is_empty() {
            return;
        }
        let deliveries: Vec<(SocketRef, Vec<Participant>)> = {
            let shown = self.call_presence.shown.lock();
            sockets
                .into_iter()
                .filter_map(|s| {
                    let me = person(&s);
                    let view = shown.get(&(me, room.clone()));
                    let states: Vec<Participant> = states
                        .iter()
                        .filter(|p| p.id != me && view.is_none_or(|v| v.0.contains(&p.id)))
                        .cloned()
                        .collect();
                    (!states.is_empty()).then_some((s, states))
                })
                .collect()
        };
        let name = room.clone();
        told.queue(room, move || {
            for (s, participants) in deliveries {
                outbox::push(&s, noom::PARTICIPANTS_UPDATED, &Batch { room: &name, participants: &participants });
            }
        });
    }

    /// `s` shows these tiles of `room`'s call, and these entries of its list of people: in a
    /// large call, the state of those it did not show before comes now, as it is.
    pub(super) fn shows(&self, s: &SocketRef, room: &str, tiles: &[(PersonId, u32)], people: &[PersonId]) {
        let me = person(s);
        let room: Arc<str> = Arc::from(room);
        let now: HashSet<PersonId> = tiles.iter().map(|(id, _)| *id).chain(people.iter().copied()).collect();
        let before = self.call_presence.shown.lock().insert((me, room.clone()), Shown(now.clone()));
        // Until its first view, a socket is told everything.
        let Some(before) = before else { return };
        self.with_rooms(|r, told| {
            if r.call_len(&room) <= LARGE_CALL {
                return;
            }
            let newly: Vec<Participant> = r
                .participants(&room)
                .into_iter()
                .filter(|p| p.call.is_some() && now.contains(&p.id) && !before.0.contains(&p.id))
                .collect();
            self.tell_shown(told, &room, vec![s.clone()], &newly);
        });
    }

    /// Someone is out of `room`'s call: what they showed of it is forgotten.
    pub(super) fn shows_nothing(&self, room: &str, id: PersonId) {
        self.call_presence.shown.lock().remove(&(id, Arc::from(room)));
    }
}
