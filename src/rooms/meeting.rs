//! Running a meeting: who hosts a room, whether it lets anyone new in (its lock, password, waiting
//! room and host key, and the pages that may come back), raised hands, and whom a host muted or
//! removed.
//!
//! A host's control is checked ([`Rooms::check_host`]) on the node the host is connected to,
//! which makes it and tells the other nodes; they make it as told. What is made here is therefore
//! the same whoever asks: only the check is the asker's node's.

use std::sync::Arc;

use super::{Participant, PersonId, Room, RoomInfo, Rooms, not_in_room};
use crate::validate::{ApiError, ErrorCode};

/// What a host asks of someone in a call (`call:ask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ask {
    /// To unmute: a host muted them before, and now lets them speak.
    Unmute,
    /// To turn their camera off: their page does.
    StopCamera,
    /// To stop sharing their screen: their page does.
    StopScreen,
}

/// Someone waiting for a host to let them in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waiter {
    pub id: PersonId,
    pub nickname: Arc<str>,
    /// Since when (milliseconds since the epoch, their node's clock).
    pub since: u64,
}

/// What someone entering shows of themselves besides their id: their page's resume key (a page
/// whose connection dropped comes back in), and the password hash their password matched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<'a> {
    pub resume: Option<&'a str>,
    pub password: Option<&'a str>,
    /// They gave the room's host key.
    pub host: bool,
}

impl<'a> Entry<'a> {
    pub fn returning(resume: &'a str) -> Self {
        Self { resume: Some(resume), ..Self::default() }
    }
}

impl Rooms {
    fn open_room(&self, room: &str) -> Result<&Room, ApiError> {
        self.rooms.get(room).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no room {room:?} is open")))
    }

    /// Whether `id` is one of the room's hosts.
    pub fn is_host(&self, id: PersonId, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.members.contains(&id) && r.is_host(id))
    }

    /// Fails unless `id` is in the room and one of its hosts.
    pub fn check_host(&self, id: PersonId, room: &str) -> Result<(), ApiError> {
        if !self.is_member(id, room) {
            return Err(not_in_room(room));
        }
        if !self.is_host(id, room) {
            return Err(ApiError::new(ErrorCode::Forbidden, "only a host of the room can do that"));
        }
        Ok(())
    }

    /// Fails unless `id` is in the room too (the one a host's control is aimed at).
    pub fn check_member(&self, id: PersonId, room: &str) -> Result<(), ApiError> {
        match self.rooms.get(room) {
            Some(r) if r.members.contains(&id) => Ok(()),
            _ => Err(ApiError::new(ErrorCode::NotFound, format!("that person is not in room {room:?}"))),
        }
    }

    /// Whether the room lets `id` in now: anyone already in it, anyone whose page (by its resume
    /// `key`) was in it when its connection dropped, and anyone at all unless it is locked, has a
    /// waiting room, or a host removed them from it for good.
    pub fn may_enter(&self, id: PersonId, room: &str, entry: Entry<'_>) -> Result<(), ApiError> {
        let key = entry.resume;
        let Some(r) = self.rooms.get(room) else { return Ok(()) };
        if r.members.contains(&id) {
            return Ok(());
        }
        if r.barred.contains(&id) || key.is_some_and(|key| r.barred_keys.iter().any(|k| **k == *key)) {
            return Err(ApiError::new(ErrorCode::Barred, "a host removed you from this room; you cannot come back"));
        }
        // A page back after its connection dropped was in already, and a host is a host: a
        // lock, a password or a waiting room is for newcomers.
        if entry.host || key.is_some_and(|key| r.returning.iter().any(|k| **k == *key)) {
            return Ok(());
        }
        if r.locked {
            return Err(ApiError::new(ErrorCode::RoomLocked, "this room is locked: nobody new can enter"));
        }
        if let Some(hash) = &r.password
            && entry.password != Some(&**hash)
        {
            return Err(ApiError::new(ErrorCode::PasswordRequired, "this room needs its password"));
        }
        if r.waiting_room && !r.admitted.contains(&id) {
            return Err(ApiError::new(ErrorCode::WaitingRoom, "newcomers to this room wait until a host lets them in"));
        }
        Ok(())
    }

    /// The hash of the password `id` must give to enter the room now, if they must give one.
    pub fn password_for(&self, id: PersonId, room: &str, resume: Option<&str>) -> Option<Arc<str>> {
        let hash = self.rooms.get(room)?.password.clone()?;
        match self.may_enter(id, room, Entry { resume, ..Entry::default() }) {
            Err(e) if e.code == ErrorCode::PasswordRequired => Some(hash),
            _ => None,
        }
    }

    /// Sets the hash of the room's password, or takes the password away; the room as it now is,
    /// if that changed it.
    pub fn set_password(&mut self, room: &str, hash: Option<Arc<str>>) -> Result<Option<RoomInfo>, ApiError> {
        Ok(self.set_setting(room, hash, |r| &mut r.password)?.map(|r| r.info()))
    }

    /// Sets one of an open room's settings (`field` says which) to `value`; the room, if that
    /// changed it (a change is news to its members: the presence version moves on).
    fn set_setting<T: PartialEq>(
        &mut self,
        room: &str,
        value: T,
        field: impl FnOnce(&mut Room) -> &mut T,
    ) -> Result<Option<&mut Room>, ApiError> {
        self.open_room(room)?;
        let r = self.rooms.get_mut(room).expect("checked");
        let setting = field(r);
        if *setting == value {
            return Ok(None);
        }
        *setting = value;
        self.presence_version += 1;
        Ok(Some(r))
    }

    /// Whether `hash` is that of the room's host key.
    pub fn host_key_is(&self, room: &str, hash: &str) -> bool {
        self.rooms
            .get(room)
            .and_then(|r| r.host_key.as_deref())
            .is_some_and(|key| crate::passwords::same_secret(hash, key))
    }

    /// Gives the room a host key (its hash), as its opener asked; none once it has one.
    pub fn set_host_key(&mut self, room: &str, hash: &str) -> bool {
        match self.rooms.get_mut(room) {
            Some(r) if r.host_key.is_none() => {
                r.host_key = Some(hash.into());
                true
            }
            _ => false,
        }
    }

    /// The hash of the room's host key, if it has one (for the other nodes).
    pub fn host_key_hash(&self, room: &str) -> Option<Arc<str>> {
        self.rooms.get(room)?.host_key.clone()
    }

    /// The hash of the room's password, if it has one (for the other nodes).
    pub fn password_hash(&self, room: &str) -> Option<Arc<str>> {
        self.rooms.get(room)?.password.clone()
    }

    /// Turns the waiting room on or off; the room as it now is, if that changed it. Turned off,
    /// it lets in everyone waiting: returned, for their nodes to tell them.
    pub fn set_waiting_room(&mut self, room: &str, on: bool) -> Result<Option<(RoomInfo, Vec<Waiter>)>, ApiError> {
        let Some(r) = self.set_setting(room, on, |r| &mut r.waiting_room)? else { return Ok(None) };
        let admitted = if on { Vec::new() } else { std::mem::take(&mut r.waiting) };
        r.admitted.extend(admitted.iter().map(|w| w.id));
        Ok(Some((r.info(), admitted)))
    }

    /// `id` waits to enter; false if they were waiting already (or the room is gone).
    pub fn wait(&mut self, room: &str, waiter: Waiter) -> bool {
        let Some(r) = self.rooms.get_mut(room) else { return false };
        if r.waiting.iter().any(|w| w.id == waiter.id) || r.members.contains(&waiter.id) {
            return false;
        }
        r.waiting.push(waiter);
        self.presence_version += 1;
        true
    }

    /// A host lets in someone waiting (`admit`), or turns them away. Returns them, if they were
    /// waiting.
    pub fn answer_waiter(&mut self, room: &str, id: PersonId, admit: bool) -> Option<Waiter> {
        let r = self.rooms.get_mut(room)?;
        let at = r.waiting.iter().position(|w| w.id == id)?;
        let waiter = r.waiting.remove(at);
        if admit {
            r.admitted.push(id);
        }
        self.presence_version += 1;
        Some(waiter)
    }

    /// `id` waits no more (they gave up, timed out or disconnected): the rooms whose queues changed.
    pub fn stop_waiting(&mut self, id: PersonId, room: Option<&str>) -> Vec<Arc<str>> {
        let mut changed = Vec::new();
        for r in self.rooms.values_mut() {
            if room.is_some_and(|room| *r.name != *room) {
                continue;
            }
            let before = r.waiting.len();
            r.waiting.retain(|w| w.id != id);
            r.admitted.retain(|m| *m != id);
            if r.waiting.len() != before {
                changed.push(r.name.clone());
            }
        }
        if !changed.is_empty() {
            self.presence_version += 1;
        }
        changed
    }

    /// Those waiting to enter, in the order they came.
    pub fn waiting(&self, room: &str) -> Vec<Waiter> {
        self.rooms.get(room).map(|r| r.waiting.clone()).unwrap_or_default()
    }

    /// The room as its directory entry and its join answer show it.
    pub fn room_info(&self, room: &str) -> Option<RoomInfo> {
        self.rooms.get(room).map(Room::info)
    }

    /// Its hosts, longest present first.
    pub fn hosts_of(&self, room: &str) -> Vec<PersonId> {
        self.rooms.get(room).map(Room::hosts_now).unwrap_or_default()
    }

    /// Makes a member a host, or takes it back. A room always has one: taking it from the last
    /// leaves the longest present one. Returns everyone whose role changed, as the room now sees
    /// them.
    pub fn set_host(&mut self, room: &str, id: PersonId, host: bool) -> Result<Vec<Participant>, ApiError> {
        self.check_member(id, room)?;
        let r = self.rooms.get_mut(room).expect("checked");
        let before = r.hosts_now();
        // The longest present, host for lack of another, stays one when another is made one.
        if r.hosts.is_empty() {
            r.hosts.push(r.members[0]);
        }
        if host && !r.hosts.contains(&id) {
            r.hosts.push(id);
        } else if !host {
            r.hosts.retain(|m| *m != id);
        }
        Ok(self.role_changes(room, &before))
    }

    /// Sets a member's role as the node that made them enter said it (no host made elsewhere
    /// first). Returns whose role changed.
    pub fn set_host_as_told(&mut self, room: &str, id: PersonId, host: bool) -> Vec<Participant> {
        let Some(r) = self.rooms.get_mut(room).filter(|r| r.members.contains(&id)) else { return Vec::new() };
        let before = r.hosts_now();
        if host && !r.hosts.contains(&id) {
            r.hosts.push(id);
        } else if !host {
            r.hosts.retain(|m| *m != id);
        }
        self.role_changes(room, &before)
    }

    fn role_changes(&mut self, room: &str, before: &[PersonId]) -> Vec<Participant> {
        let after = self.rooms[room].hosts_now();
        let changed: Vec<PersonId> =
            before.iter().chain(&after).copied().filter(|m| before.contains(m) != after.contains(m)).collect();
        if !changed.is_empty() {
            self.presence_version += 1;
        }
        changed.into_iter().filter_map(|m| self.member(m, room)).collect()
    }

    /// Locks or unlocks a room; the room as it now is, if that changed it.
    pub fn set_locked(&mut self, room: &str, locked: bool) -> Result<Option<RoomInfo>, ApiError> {
        Ok(self.set_setting(room, locked, |r| &mut r.locked)?.map(|r| r.info()))
    }

    /// Raises someone's hand (`Some(when)`) or lowers it. Returns them as the room now sees them,
    /// if that changed them.
    pub fn set_hand(&mut self, id: PersonId, room: &str, raised: Option<u64>) -> Result<Option<Participant>, ApiError> {
        self.check_member(id, room)?;
        let r = self.rooms.get_mut(room).expect("checked");
        let had = r.hands.iter().position(|(m, _)| *m == id);
        match (had, raised) {
            (Some(_), Some(_)) | (None, None) => return Ok(None),
            (None, Some(at)) => r.hands.push((id, at)),
            (Some(i), None) => {
                r.hands.remove(i);
            }
        }
        self.presence_version += 1;
        Ok(self.member(id, room))
    }

    /// The raised hands, in the order raised.
    pub fn hands(&self, room: &str) -> Vec<PersonId> {
        self.rooms.get(room).map(|r| r.hands.iter().map(|(m, _)| *m).collect()).unwrap_or_default()
    }

    /// Marks a member muted by a host, or not. Returns them as the room now sees them, if that
    /// changed them.
    pub fn set_muted(&mut self, room: &str, id: PersonId, muted: bool) -> Result<Option<Participant>, ApiError> {
        self.check_member(id, room)?;
        let r = self.rooms.get_mut(room).expect("checked");
        if r.muted.contains(&id) == muted {
            return Ok(None);
        }
        if muted {
            r.muted.push(id);
        } else {
            r.muted.retain(|m| *m != id);
        }
        self.presence_version += 1;
        Ok(self.member(id, room))
    }

    pub fn is_muted(&self, id: PersonId, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.muted.contains(&id))
    }

    /// Everyone in the room's call who is not a host: whom "mute everyone" mutes.
    pub fn guests_in_call(&self, room: &str) -> Vec<PersonId> {
        self.rooms
            .get(room)
            .map(|r| r.call.iter().map(|(m, _)| *m).filter(|m| !r.is_host(*m)).collect())
            .unwrap_or_default()
    }

    /// Keeps `id` out of the room while it stays open (they are taken out by their node), and
    /// their page, if its resume key is known.
    pub fn bar(&mut self, room: &str, id: PersonId) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        if !r.barred.contains(&id) {
            r.barred.push(id);
        }
        if let Some((_, key)) = r.keys.iter().find(|(m, _)| *m == id) {
            r.barred_keys.push(key.clone());
        }
    }

    /// The resume key of a member's page: should their connection drop, the page comes back in
    /// with it, lock or waiting room notwithstanding.
    pub fn note_key(&mut self, room: &str, id: PersonId, key: &str) {
        let Some(r) = self.rooms.get_mut(room).filter(|r| r.members.contains(&id)) else { return };
        r.returning.retain(|k| **k != *key);
        r.keys.retain(|(m, _)| *m != id);
        r.keys.push((id, key.into()));
    }
}

impl Room {
    /// What must hold of a room's roles, hands and mutes: each names a member, once.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        let name = &self.name;
        let lists = [
            ("hosts", self.hosts.clone()),
            ("hands", self.hands.iter().map(|(m, _)| *m).collect()),
            ("muted", self.muted.clone()),
            ("keys", self.keys.iter().map(|(m, _)| *m).collect()),
        ];
        for (what, ids) in lists {
            for (i, id) in ids.iter().enumerate() {
                if !self.members.contains(id) || ids[..i].contains(id) {
                    return Err(format!("the {what} of {name:?} list {id} wrongly"));
                }
            }
        }
        if self.waiting.iter().any(|w| self.members.contains(&w.id)) {
            return Err(format!("someone in {name:?} waits to enter it"));
        }
        if !self.members.is_empty() && self.host_key.is_none() && self.hosts_now().is_empty() {
            return Err(format!("{name:?} has no host"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;

    fn room_of(n: usize) -> (Rooms, Vec<PersonId>) {
        let mut rooms = Rooms::new(Limits::default());
        let ids: Vec<PersonId> = (0..n).map(|_| PersonId::random()).collect();
        for id in &ids {
            rooms.connect(*id);
            rooms.enter(*id, "r", false).unwrap();
        }
        rooms.check_invariants().unwrap();
        (rooms, ids)
    }

    #[test]
    fn whoever_opens_a_room_hosts_it_and_the_longest_present_takes_over_when_the_last_host_leaves() {
        let (mut rooms, ids) = room_of(3);
        assert_eq!(rooms.hosts_of("r"), vec![ids[0]]);
        assert!(rooms.member(ids[0], "r").unwrap().host);
        assert!(!rooms.member(ids[1], "r").unwrap().host);
        let left = rooms.leave(ids[0], "r").unwrap();
        assert_eq!(left.new_host.map(|p| (p.id, p.host)), Some((ids[1], true)));
        assert_eq!(rooms.hosts_of("r"), vec![ids[1]]);
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn a_co_host_stays_host_when_the_first_leaves_and_nobody_else_becomes_one() {
        let (mut rooms, ids) = room_of(3);
        let changed = rooms.set_host("r", ids[2], true).unwrap();
        assert_eq!(changed.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ids[2]]);
        assert!(rooms.leave(ids[0], "r").unwrap().new_host.is_none());
        assert_eq!(rooms.hosts_of("r"), vec![ids[2]]);
        // Taking it from the last host leaves the longest present one.
        let changed = rooms.set_host("r", ids[2], false).unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(rooms.hosts_of("r"), vec![ids[1]]);
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn a_host_made_when_the_host_was_implicit_keeps_the_longest_present_a_host() {
        let (mut rooms, ids) = room_of(3);
        rooms.set_host_as_told("r", ids[0], false);
        assert_eq!(rooms.hosts_of("r"), vec![ids[0]], "for lack of another");
        rooms.set_host("r", ids[1], true).unwrap();
        assert_eq!(rooms.hosts_of("r"), vec![ids[0], ids[1]]);
    }

    #[test]
    fn only_hosts_pass_the_check_and_only_members_are_aimed_at() {
        let (rooms, ids) = room_of(2);
        assert!(rooms.check_host(ids[0], "r").is_ok());
        assert_eq!(rooms.check_host(ids[1], "r").unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(rooms.check_host(ids[0], "other").unwrap_err().code, ErrorCode::NotInRoom);
        assert_eq!(rooms.check_member(PersonId::random(), "r").unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn a_locked_room_keeps_newcomers_out_and_its_people_in() {
        let (mut rooms, ids) = room_of(2);
        assert!(rooms.set_locked("r", true).unwrap().is_some_and(|info| info.locked));
        assert!(rooms.set_locked("r", true).unwrap().is_none(), "no change");
        assert!(rooms.may_enter(ids[1], "r", Entry::default()).is_ok());
        assert_eq!(rooms.may_enter(PersonId::random(), "r", Entry::default()).unwrap_err().code, ErrorCode::RoomLocked);
        assert!(rooms.may_enter(PersonId::random(), "another", Entry::default()).is_ok());
        rooms.set_locked("r", false).unwrap();
        assert!(rooms.may_enter(PersonId::random(), "r", Entry::default()).is_ok());
    }

    #[test]
    fn a_page_whose_connection_dropped_comes_back_in_past_the_lock_and_the_waiting_room_unless_barred() {
        let (mut rooms, ids) = room_of(3);
        rooms.note_key("r", ids[1], "page-b");
        rooms.note_key("r", ids[2], "page-c");
        rooms.set_locked("r", true).unwrap();
        rooms.set_waiting_room("r", true).unwrap();
        rooms.disconnect(ids[1]);
        let back = PersonId::random();
        assert!(rooms.may_enter(back, "r", Entry::returning("page-b")).is_ok(), "its new connection may come back");
        assert_eq!(rooms.may_enter(back, "r", Entry::returning("page-x")).unwrap_err().code, ErrorCode::RoomLocked);
        rooms.leave(ids[2], "r").unwrap();
        assert!(rooms.may_enter(back, "r", Entry::returning("page-c")).is_err(), "leaving by choice is leaving");
        rooms.connect(back);
        rooms.enter(back, "r", false).unwrap();
        rooms.note_key("r", back, "page-b");
        rooms.bar("r", back);
        rooms.disconnect(back);
        assert_eq!(
            rooms.may_enter(PersonId::random(), "r", Entry::returning("page-b")).unwrap_err().code,
            ErrorCode::Barred
        );
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn a_room_with_a_password_lets_in_those_whose_password_matched_its_hash_and_those_in_it() {
        let (mut rooms, ids) = room_of(2);
        rooms.set_password("r", Some("hash-1".into())).unwrap();
        let newcomer = PersonId::random();
        assert_eq!(rooms.may_enter(newcomer, "r", Entry::default()).unwrap_err().code, ErrorCode::PasswordRequired);
        assert_eq!(rooms.password_for(newcomer, "r", None).as_deref(), Some("hash-1"));
        assert!(rooms.password_for(ids[1], "r", None).is_none(), "those in it need none");
        assert!(rooms.may_enter(newcomer, "r", Entry { password: Some("hash-1"), ..Entry::default() }).is_ok());
        rooms.set_password("r", Some("hash-2".into())).unwrap();
        assert!(
            rooms.may_enter(newcomer, "r", Entry { password: Some("hash-1"), ..Entry::default() }).is_err(),
            "an old one"
        );
        assert!(rooms.room_info("r").unwrap().password);
        rooms.set_password("r", None).unwrap();
        assert!(rooms.may_enter(newcomer, "r", Entry::default()).is_ok());
    }

    #[test]
    fn a_room_opened_with_a_host_key_hosts_whoever_gives_it_and_nobody_for_lack_of_a_host() {
        let (mut rooms, ids) = room_of(2);
        assert!(rooms.set_host_key("r", "key-hash"));
        assert!(!rooms.set_host_key("r", "another"), "one key, the opener's");
        assert!(rooms.host_key_is("r", "key-hash") && !rooms.host_key_is("r", "another"));
        rooms.set_locked("r", true).unwrap();
        let host = PersonId::random();
        assert!(rooms.may_enter(host, "r", Entry { host: true, ..Entry::default() }).is_ok(), "a host comes in");
        assert!(rooms.leave(ids[0], "r").unwrap().new_host.is_none(), "nobody is made host for lack of one");
        assert!(rooms.hosts_of("r").is_empty());
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn someone_barred_cannot_come_back_while_the_room_is_open() {
        let (mut rooms, ids) = room_of(2);
        rooms.bar("r", ids[1]);
        rooms.leave(ids[1], "r").unwrap();
        assert_eq!(rooms.may_enter(ids[1], "r", Entry::default()).unwrap_err().code, ErrorCode::Barred);
        rooms.leave(ids[0], "r").unwrap();
        assert!(rooms.may_enter(ids[1], "r", Entry::default()).is_ok(), "a room opened again is a new room");
    }

    fn waiter(id: PersonId, since: u64) -> Waiter {
        Waiter { id, nickname: "Cy".into(), since }
    }

    #[test]
    fn newcomers_to_a_waiting_room_wait_and_enter_once_admitted_and_those_turned_away_do_not() {
        let (mut rooms, ids) = room_of(2);
        assert!(rooms.set_waiting_room("r", true).unwrap().is_some_and(|(info, _)| info.waiting_room));
        let (cy, dee) = (PersonId::random(), PersonId::random());
        assert_eq!(rooms.may_enter(cy, "r", Entry::default()).unwrap_err().code, ErrorCode::WaitingRoom);
        assert!(rooms.may_enter(ids[1], "r", Entry::default()).is_ok(), "those in it are in it");
        assert!(rooms.wait("r", waiter(cy, 1)));
        assert!(!rooms.wait("r", waiter(cy, 2)), "once");
        assert!(rooms.wait("r", waiter(dee, 3)));
        assert_eq!(rooms.waiting("r").iter().map(|w| w.id).collect::<Vec<_>>(), vec![cy, dee]);
        assert_eq!(rooms.answer_waiter("r", cy, true).map(|w| w.since), Some(1));
        assert!(rooms.may_enter(cy, "r", Entry::default()).is_ok());
        assert!(rooms.answer_waiter("r", dee, false).is_some());
        assert_eq!(rooms.may_enter(dee, "r", Entry::default()).unwrap_err().code, ErrorCode::WaitingRoom);
        rooms.connect(cy);
        rooms.enter(cy, "r", false).unwrap();
        rooms.leave(cy, "r").unwrap();
        assert_eq!(
            rooms.may_enter(cy, "r", Entry::default()).unwrap_err().code,
            ErrorCode::WaitingRoom,
            "admitted once"
        );
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn a_waiting_room_turned_off_lets_everyone_waiting_in_and_a_waiter_who_goes_is_gone() {
        let (mut rooms, _) = room_of(1);
        rooms.set_waiting_room("r", true).unwrap();
        let (cy, dee) = (PersonId::random(), PersonId::random());
        rooms.wait("r", waiter(cy, 1));
        rooms.wait("r", waiter(dee, 2));
        assert_eq!(rooms.stop_waiting(dee, None), vec![Arc::<str>::from("r")]);
        let (_, admitted) = rooms.set_waiting_room("r", false).unwrap().unwrap();
        assert_eq!(admitted.iter().map(|w| w.id).collect::<Vec<_>>(), vec![cy]);
        assert!(
            rooms.may_enter(cy, "r", Entry::default()).is_ok() && rooms.may_enter(dee, "r", Entry::default()).is_ok()
        );
        assert!(rooms.waiting("r").is_empty());
    }

    #[test]
    fn hands_keep_the_order_raised_and_go_with_their_owner() {
        let (mut rooms, ids) = room_of(3);
        assert_eq!(rooms.set_hand(ids[2], "r", Some(10)).unwrap().and_then(|p| p.hand), Some(10));
        rooms.set_hand(ids[1], "r", Some(20)).unwrap();
        assert!(rooms.set_hand(ids[1], "r", Some(30)).unwrap().is_none(), "up already");
        assert_eq!(rooms.hands("r"), vec![ids[2], ids[1]]);
        rooms.set_hand(ids[2], "r", None).unwrap();
        rooms.set_hand(ids[2], "r", Some(40)).unwrap();
        assert_eq!(rooms.hands("r"), vec![ids[1], ids[2]]);
        rooms.leave(ids[1], "r").unwrap();
        assert_eq!(rooms.hands("r"), vec![ids[2]]);
        rooms.check_invariants().unwrap();
    }

    #[test]
    fn muting_everyone_leaves_out_the_hosts_and_a_mute_goes_with_its_owner() {
        let (mut rooms, ids) = room_of(3);
        for id in &ids {
            rooms.join_call(*id, "r", super::super::Media { audio: true, ..Default::default() }, true, 0).ok();
        }
        let guests = rooms.guests_in_call("r");
        assert!(!guests.contains(&ids[0]));
        assert!(rooms.set_muted("r", ids[1], true).unwrap().is_some_and(|p| p.muted));
        assert!(rooms.is_muted(ids[1], "r"));
        rooms.leave(ids[1], "r").unwrap();
        assert!(!rooms.is_muted(ids[1], "r"));
        rooms.check_invariants().unwrap();
    }
}
