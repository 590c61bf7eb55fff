//! Who is connected, which rooms are open, who is in each, and what was said there.
//!
//! This is protocol state only, kept apart from sockets: every operation takes the caller's
//! input, changes the state and returns what the caller must tell others, so the rules are
//! tested without a network. The realtime layer holds it behind one lock and never across an
//! await.

pub mod history;
mod meeting;

pub use meeting::{Ask, Entry, Waiter};

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::validate::{ApiError, ErrorCode};
use history::Histories;

pub const DEFAULT_NICKNAME: &str = "Anon";

/// Who someone is to everyone else: in rooms, calls, signals, chat and the admin panel.
///
/// Random and of Noom's own, never the transport's session id: whoever knows an Engine.IO
/// session id can post and poll as that session over long-polling, and every member of a room
/// sees the ids of the others.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonId([u8; 16]);

impl PersonId {
    /// Characters of its text form: 128 random bits in URL-safe base64, unpadded.
    const LEN: usize = 22;

    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A chosen id, for tests and the fuzzer.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl std::fmt::Display for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine as _;
        let mut text = [0u8; Self::LEN];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut text)
            .expect("16 bytes are 22 characters");
        f.write_str(std::str::from_utf8(&text[..n]).expect("base64 is ASCII"))
    }
}

impl std::fmt::Debug for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for PersonId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        use base64::Engine as _;
        if text.len() != Self::LEN {
            return Err(());
        }
        let mut bytes = [0u8; 16];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(16) => Ok(Self(bytes)),
            _ => Err(()),
        }
    }
}

impl Serialize for PersonId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PersonId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(|()| serde::de::Error::custom("not a person id"))
    }
}

/// Someone in a room, as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: PersonId,
    pub nickname: Arc<str>,
    /// What they send, while they are in the room's call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<Media>,
    /// One of the room's hosts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub host: bool,
    /// Their hand is up, since this time (milliseconds since the epoch, their node's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
    /// A host muted them: their voice is not forwarded until a host asks them to unmute.
    #[serde(default, skip_serializing_if = "is_false")]
    pub muted: bool,
}

impl Participant {
    /// Someone as a chat message names them: no room, so no call and no role.
    pub fn named(id: PersonId, nickname: Arc<str>) -> Self {
        Self { id, nickname, call: None, host: false, hand: None, muted: false }
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// What someone in a call sends: part of their presence, so everyone sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Media {
    #[serde(default)]
    pub audio: bool,
    #[serde(default)]
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub name: Arc<str>,
    pub unlisted: bool,
    pub count: usize,
    /// Nobody new may enter.
    pub locked: bool,
    /// Newcomers wait until a host admits them.
    pub waiting_room: bool,
    /// Newcomers give a password.
    pub password: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    pub room: Arc<str>,
    pub sender: Participant,
    pub text: String,
    pub ts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntry {
    pub name: Arc<str>,
    pub count: usize,
    /// How many are in its call: the lobby shows which rooms have one going.
    pub in_call: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Directory {
    pub rooms: Vec<DirectoryEntry>,
    pub total: usize,
}

#[derive(Debug)]
struct Person {
    nickname: Arc<str>,
    /// Rooms in order of entry.
    rooms: Vec<Arc<str>>,
}

#[derive(Debug)]
struct Room {
    name: Arc<str>,
    unlisted: bool,
    /// In order of arrival.
    members: Vec<PersonId>,
    /// Who is in the room's call, in order of joining it.
    call: Vec<(PersonId, Media)>,
    /// When its call began (milliseconds since the epoch, this node's clock; this node's first
    /// word of it, for a call begun on another node); meaningless while nobody is in it.
    call_since: u64,
    /// Its hosts, in the order they became hosts; none: the longest present is (see
    /// [`Room::is_host`]).
    hosts: Vec<PersonId>,
    /// Raised hands, in the order raised, each with when.
    hands: Vec<(PersonId, u64)>,
    /// Members a host muted.
    muted: Vec<PersonId>,
    locked: bool,
    /// Removed by a host and not to come back while the room is open.
    barred: Vec<PersonId>,
    /// Newcomers wait until a host admits them.
    waiting_room: bool,
    /// Those waiting, in the order they came.
    waiting: Vec<Waiter>,
    /// Admitted, and not in yet: they may enter once.
    admitted: Vec<PersonId>,
    /// The resume key of each member's page, where known.
    keys: Vec<(PersonId, Arc<str>)>,
    /// The keys of pages whose connections dropped while in the room, newest last: they may come
    /// back in (at most [`RETURNING_AT_MOST`]).
    returning: Vec<Arc<str>>,
    /// The keys of pages removed for good.
    barred_keys: Vec<Arc<str>>,
    /// The hash of the password newcomers give, if a host set one.
    password: Option<Arc<str>>,
    /// The hash of its host key, if it was opened with one: whoever gives the key hosts it, and
    /// nobody else is made host for lack of one.
    host_key: Option<Arc<str>>,
}

/// Pages whose connections dropped a room keeps the way back in for.
const RETURNING_AT_MOST: usize = 256;

/// The outcome of entering a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    pub room: RoomInfo,
    pub me: Participant,
    /// False when the person was in the room already: nobody is to be told.
    pub is_new: bool,
}

/// The outcome of leaving a room: what the others still in it are to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub room: Arc<str>,
    pub me: Participant,
    pub count: usize,
    /// Who became host as the last host left.
    pub new_host: Option<Participant>,
    /// Those waiting to enter: for the new host, or, when the room closed with them waiting, for
    /// their nodes to tell them.
    pub waiting: Vec<Waiter>,
}

/// The outcome of a change to someone's place in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallChange {
    /// As the room now sees them.
    pub me: Participant,
    /// False when nothing changed: nobody is to be told.
    pub changed: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages each room keeps.
    pub history_size: usize,
    /// Bytes all rooms' histories keep together.
    pub history_memory: usize,
    pub rooms_per_person: usize,
    pub call_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { history_size: 50, history_memory: 64 << 20, rooms_per_person: 8, call_size: 6 }
    }
}

/// Every person and room on this server.
#[derive(Debug)]
pub struct Rooms {
    people: HashMap<PersonId, Person>,
    rooms: HashMap<Arc<str>, Room>,
    histories: Histories,
    limits: Limits,
    /// Bumped whenever the directory (public rooms and their counts) may have changed.
    directory_version: u64,
    /// Bumped whenever anyone's presence may have changed: rooms, names, calls, media.
    presence_version: u64,
}

impl Rooms {
    pub fn new(limits: Limits) -> Self {
        let histories =
            Histories::new(history::Limits { per_room: limits.history_size, total_bytes: limits.history_memory });
        Self {
            people: HashMap::new(),
            rooms: HashMap::new(),
            histories,
            limits,
            directory_version: 0,
            presence_version: 0,
        }
    }

    pub fn connect(&mut self, id: PersonId) {
        self.people.entry(id).or_insert_with(|| Person { nickname: DEFAULT_NICKNAME.into(), rooms: Vec::new() });
    }

    fn person(&self, id: PersonId) -> Result<&Person, ApiError> {
        self.people.get(&id).ok_or_else(|| ApiError::bad_request("not connected"))
    }

    /// Someone as a chat message names them: no room, so no call.
    pub fn participant(&self, id: PersonId) -> Option<Participant> {
        self.people.get(&id).map(|p| Participant::named(id, p.nickname.clone()))
    }

    /// Someone as the members of `room` see them, their call state and role included.
    pub fn member(&self, id: PersonId, room: &str) -> Option<Participant> {
        let mut me = self.participant(id)?;
        if let Some(r) = self.rooms.get(room).filter(|r| r.members.contains(&id)) {
            me.call = r.media_of(id);
            me.host = r.is_host(id);
            me.hand = r.hands.iter().find(|(m, _)| *m == id).map(|(_, at)| *at);
            me.muted = r.muted.contains(&id);
        }
        Some(me)
    }

    /// The rooms `id` is in, in order of entry.
    pub fn rooms_of(&self, id: PersonId) -> Vec<Arc<str>> {
        self.people.get(&id).map(|p| p.rooms.clone()).unwrap_or_default()
    }

    pub fn is_member(&self, id: PersonId, room: &str) -> bool {
        self.people.get(&id).is_some_and(|p| p.rooms.iter().any(|r| &**r == room))
    }

    /// Sets a (validated) nickname; returns the person as now named.
    pub fn rename(&mut self, id: PersonId, nickname: &str) -> Result<Participant, ApiError> {
        let person = self.people.get_mut(&id).ok_or_else(|| ApiError::bad_request("not connected"))?;
        if &*person.nickname != nickname {
            person.nickname = nickname.into();
            self.presence_version += 1;
        }
        Ok(Participant::named(id, person.nickname.clone()))
    }

    /// Enters a (validated) room, creating it if needed, as its host; `unlisted` only matters to
    /// its creator, and to a room of a link (a name ending in an unlisted suffix) that another
    /// node opened the moment before, public: the room ends unlisted, as its creator asked.
    /// Whether the room lets them in is [`Rooms::may_enter`]'s to say, on the node they are on.
    pub fn enter(&mut self, id: PersonId, name: &str, unlisted: bool) -> Result<Entered, ApiError> {
        let person = self.person(id)?;
        let mut me = Participant::named(id, person.nickname.clone());
        if let Some(room) = self.rooms.get(name)
            && person.rooms.iter().any(|r| &**r == name)
        {
            return Ok(Entered { room: room.info(), me, is_new: false });
        }
        if person.rooms.len() >= self.limits.rooms_per_person {
            return Err(ApiError::new(
                ErrorCode::TooManyRooms,
                format!("already in {} rooms", self.limits.rooms_per_person),
            ));
        }
        let room = self.rooms.entry(name.into()).or_insert_with_key(|name| Room {
            name: name.clone(),
            unlisted,
            members: Vec::new(),
            call: Vec::new(),
            call_since: 0,
            hosts: Vec::new(),
            hands: Vec::new(),
            muted: Vec::new(),
            locked: false,
            barred: Vec::new(),
            waiting_room: false,
            waiting: Vec::new(),
            admitted: Vec::new(),
            keys: Vec::new(),
            returning: Vec::new(),
            barred_keys: Vec::new(),
            password: None,
            host_key: None,
        });
        if room.members.is_empty() {
            room.hosts.push(id);
        }
        let hides = unlisted && !room.unlisted && has_unlisted_suffix(name);
        room.unlisted |= hides;
        room.members.push(id);
        room.admitted.retain(|m| *m != id);
        room.waiting.retain(|w| w.id != id);
        me.host = room.is_host(id);
        self.presence_version += 1;
        if hides {
            self.directory_version += 1;
        }
        let info = room.info();
        if !info.unlisted {
            self.directory_version += 1;
        }
        let name = room.name.clone();
        self.people.get_mut(&id).expect("checked above").rooms.push(name);
        Ok(Entered { room: info, me, is_new: true })
    }

    /// Leaves one room; an emptied room is gone at once, its history with it.
    pub fn leave(&mut self, id: PersonId, name: &str) -> Result<Left, ApiError> {
        self.leave_as(id, name, false)
    }

    /// Leaves one room, by choice, or because the connection dropped (`dropped`: the page may come
    /// back in).
    fn leave_as(&mut self, id: PersonId, name: &str, dropped: bool) -> Result<Left, ApiError> {
        let person = self.people.get_mut(&id).ok_or_else(|| ApiError::bad_request("not connected"))?;
        let Some(pos) = person.rooms.iter().position(|r| &**r == name) else {
            return Err(not_in_room(name));
        };
        let room_name = person.rooms.remove(pos);
        let me = Participant::named(id, person.nickname.clone());
        let room = self.rooms.get_mut(name).expect("a person's room is open");
        let hosts_before = room.hosts_now();
        room.members.retain(|m| *m != id);
        room.call.retain(|(m, _)| *m != id);
        room.hosts.retain(|m| *m != id);
        room.hands.retain(|(m, _)| *m != id);
        room.muted.retain(|m| *m != id);
        if let Some(at) = room.keys.iter().position(|(m, _)| *m == id) {
            let (_, key) = room.keys.remove(at);
            if dropped {
                room.returning.push(key);
                if room.returning.len() > RETURNING_AT_MOST {
                    room.returning.remove(0);
                }
            }
        }
        // The last host gone, the longest present is host now.
        let new_host = room.hosts_now().into_iter().find(|m| !hosts_before.contains(m));
        let waiting = if new_host.is_some() || room.members.is_empty() { room.waiting.clone() } else { Vec::new() };
        self.presence_version += 1;
        let count = room.members.len();
        if !room.unlisted {
            self.directory_version += 1;
        }
        if count == 0 {
            self.rooms.remove(name);
            self.histories.close(name);
        }
        let new_host = new_host.and_then(|host| self.member(host, name));
        Ok(Left { room: room_name, me, count, new_host, waiting })
    }

    /// Leaves every room; returns what each room is to be told, in order of entry.
    pub fn leave_all(&mut self, id: PersonId) -> Vec<Left> {
        self.rooms_of(id).iter().filter_map(|room| self.leave(id, room).ok()).collect()
    }

    /// Forgets a person who disconnected: their page may come back into their rooms.
    pub fn disconnect(&mut self, id: PersonId) -> Vec<Left> {
        let left = self.rooms_of(id).iter().filter_map(|room| self.leave_as(id, room, true).ok()).collect();
        self.people.remove(&id);
        left
    }

    /// Records a (validated) chat message from a member of the room.
    pub fn post(
        &mut self,
        id: PersonId,
        room: &str,
        text: String,
        msg_id: String,
        ts: u64,
    ) -> Result<ChatMessage, ApiError> {
        let sender = self.participant(id).ok_or_else(|| ApiError::bad_request("not connected"))?;
        if !self.is_member(id, room) {
            return Err(not_in_room(room));
        }
        let room = self.rooms[room].name.clone();
        let message = ChatMessage { id: msg_id, room: room.clone(), sender, text, ts };
        self.histories.push(&room, message.clone());
        Ok(message)
    }

    /// Records a message posted on another node, once; returns whether it is news (its room is
    /// open and it was not recorded before).
    pub fn record(&mut self, message: &ChatMessage) -> bool {
        let Some(room) = self.rooms.get(&*message.room) else { return false };
        if self.histories.contains(&room.name, &message.id) {
            return false;
        }
        let room = room.name.clone();
        self.histories.push(&room, message.clone());
        true
    }

    /// Makes a room unlisted, as another node has it: when two nodes open a room at once, one
    /// unlisted and one not, it ends unlisted on both, as its creator asked.
    pub fn mark_unlisted(&mut self, name: &str) {
        if let Some(room) = self.rooms.get_mut(name)
            && !room.unlisted
        {
            room.unlisted = true;
            self.directory_version += 1;
            self.presence_version += 1;
        }
    }

    /// Adds messages another node knows of to open rooms' histories: each once, in order of
    /// posting, the newest kept.
    pub fn merge_history(&mut self, messages: Vec<ChatMessage>) {
        let mut by_room: HashMap<Arc<str>, Vec<ChatMessage>> = HashMap::new();
        for message in messages {
            if let Some(room) = self.rooms.get(&*message.room) {
                by_room.entry(room.name.clone()).or_default().push(message);
            }
        }
        for (room, messages) in by_room {
            self.histories.merge(&room, messages);
        }
    }

    /// Everyone connected, in no order.
    pub fn ids(&self) -> Vec<PersonId> {
        self.people.keys().copied().collect()
    }

    pub fn is_unlisted(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.unlisted)
    }

    /// The name under which someone asking for an unlisted room `asked` enters: an open room of
    /// that name; else a new room whose name ends in `suffix`, random and not guessable, so that
    /// its link is its only way in (`asked` may end in such a suffix already: the room of a link,
    /// made again after it emptied).
    pub fn unlisted_name(&self, asked: &str, suffix: &str) -> String {
        if self.rooms.contains_key(asked) || has_unlisted_suffix(asked) {
            return asked.to_owned();
        }
        let keep = crate::validate::ROOM_NAME_MAX - UNLISTED_SUFFIX_LEN - 1;
        let base: String = asked.chars().take(keep).collect();
        format!("{}-{suffix}", base.trim_end())
    }

    /// Everyone in the room, in order of arrival, with their call state.
    pub fn participants(&self, room: &str) -> Vec<Participant> {
        let Some(r) = self.rooms.get(room) else { return Vec::new() };
        r.members.iter().filter_map(|id| self.member(*id, room)).collect()
    }

    /// When the room's call began, while one is going.
    pub fn call_since(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).filter(|r| !r.call.is_empty()).map(|r| r.call_since)
    }

    /// Another node says the room's call began at `since` (milliseconds since the epoch): earlier
    /// than this node heard of it, it is taken. Nothing while nobody is in the call.
    pub fn call_began_by(&mut self, room: &str, since: u64) {
        if let Some(r) = self.rooms.get_mut(room).filter(|r| !r.call.is_empty()) {
            r.call_since = r.call_since.min(since);
        }
    }

    pub fn call_len(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.call.len())
    }

    fn room_of_member(&mut self, id: PersonId, room: &str) -> Result<&mut Room, ApiError> {
        if !self.is_member(id, room) {
            return Err(not_in_room(room));
        }
        Ok(self.rooms.get_mut(room).expect("a person's room is open"))
    }

    /// Joins the call of a room one is in, or, for someone in it already, sets their media.
    /// `enforce_limit` is false where the place was taken elsewhere (by the cluster, or by the
    /// node that owns the person).
    pub fn join_call(
        &mut self,
        id: PersonId,
        room: &str,
        media: Media,
        enforce_limit: bool,
        now: u64,
    ) -> Result<CallChange, ApiError> {
        let limit = self.limits.call_size;
        let r = self.room_of_member(id, room)?;
        let changed = match r.call.iter().position(|(m, _)| *m == id) {
            Some(i) => std::mem::replace(&mut r.call[i].1, media) != media,
            None if enforce_limit && r.call.len() >= limit => return Err(call_full(limit)),
            None => {
                if r.call.is_empty() {
                    r.call_since = now;
                }
                r.call.push((id, media));
                // The lobby lists how many are in a public room's call.
                self.directory_version += u64::from(!r.unlisted);
                true
            }
        };
        self.presence_version += u64::from(changed);
        Ok(CallChange { me: self.member(id, room).expect("a member"), changed })
    }

    /// Sets the media of someone in a room's call.
    pub fn set_media(&mut self, id: PersonId, room: &str, media: Media) -> Result<CallChange, ApiError> {
        let r = self.room_of_member(id, room)?;
        let Some((_, current)) = r.call.iter_mut().find(|(m, _)| *m == id) else {
            return Err(not_in_call(room));
        };
        let changed = std::mem::replace(current, media) != media;
        self.presence_version += u64::from(changed);
        Ok(CallChange { me: self.member(id, room).expect("a member"), changed })
    }

    /// Leaves a room's call, staying in the room.
    pub fn leave_call(&mut self, id: PersonId, room: &str) -> Result<Participant, ApiError> {
        let r = self.room_of_member(id, room)?;
        let before = r.call.len();
        r.call.retain(|(m, _)| *m != id);
        if r.call.len() == before {
            return Err(not_in_call(room));
        }
        self.directory_version += u64::from(!r.unlisted);
        self.presence_version += 1;
        Ok(self.member(id, room).expect("a member"))
    }

    /// Whether `from` may signal `to` (`None`: not a person id) in `room`: both must be in its
    /// call. Returns the peer.
    pub fn check_signal(&self, from: PersonId, to: Option<PersonId>, room: &str) -> Result<PersonId, ApiError> {
        if !self.is_member(from, room) {
            return Err(not_in_room(room));
        }
        let r = &self.rooms[room];
        if r.media_of(from).is_none() {
            return Err(not_in_call(room));
        }
        match to {
            Some(to) if to != from && r.media_of(to).is_some() => Ok(to),
            _ => Err(ApiError::new(ErrorCode::PeerUnavailable, format!("that peer is not in the call of {room:?}"))),
        }
    }

    /// The room's last messages, oldest first.
    pub fn history(&self, room: &str) -> Vec<ChatMessage> {
        self.histories.of(room).cloned().collect()
    }

    /// About the bytes of what someone entering `room` is sent: its people and its history.
    pub fn entry_cost(&self, room: &str) -> usize {
        /// A participant's entry in the answer, at most.
        const PARTICIPANT: usize = 128;
        let people = self.rooms.get(room).map_or(0, |r| r.members.len());
        self.histories.bytes_of(room) + people * PARTICIPANT
    }

    /// Bytes all histories hold.
    pub fn history_bytes(&self) -> usize {
        self.histories.bytes()
    }

    pub fn directory_version(&self) -> u64 {
        self.directory_version
    }

    pub fn presence_version(&self) -> u64 {
        self.presence_version
    }

    /// Every open room, listed or not, by name.
    pub fn open_rooms(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self.rooms.values().map(Room::info).collect();
        rooms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    /// The `limit` largest public rooms (then by name), and how many public rooms are open.
    pub fn directory(&self, limit: usize) -> Directory {
        let mut rooms: Vec<DirectoryEntry> = self
            .rooms
            .values()
            .filter(|r| !r.unlisted)
            .map(|r| DirectoryEntry { name: r.name.clone(), count: r.members.len(), in_call: r.call.len() })
            .collect();
        let total = rooms.len();
        let by_size = |a: &DirectoryEntry, b: &DirectoryEntry| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name));
        if rooms.len() > limit {
            rooms.select_nth_unstable_by(limit, by_size);
            rooms.truncate(limit);
        }
        rooms.sort_unstable_by(by_size);
        Directory { rooms, total }
    }

    /// Every public room's name, sorted: what the seed's `room_change` carries.
    pub fn public_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self.rooms.values().filter(|r| !r.unlisted).map(|r| r.name.clone()).collect();
        names.sort_unstable();
        names
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// People in at least one room, and people in a call.
    pub fn presence_counts(&self) -> (usize, usize) {
        let in_rooms = self.people.values().filter(|p| !p.rooms.is_empty()).count();
        let in_calls = self.rooms.values().map(|r| r.call.len()).sum();
        (in_rooms, in_calls)
    }

    /// Everyone in a call, with the call's room.
    pub fn callers(&self) -> Vec<(PersonId, Arc<str>)> {
        self.rooms.values().flat_map(|r| r.call.iter().map(|(id, _)| (*id, r.name.clone()))).collect()
    }

    /// Rooms whose call has someone in it.
    pub fn call_count(&self) -> usize {
        self.rooms.values().filter(|r| !r.call.is_empty()).count()
    }

    pub fn people_count(&self) -> usize {
        self.people.len()
    }

    /// What must hold after any sequence of operations, whatever their input: for the tests and
    /// the fuzzer. Says what is broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (id, person) in &self.people {
            for (i, name) in person.rooms.iter().enumerate() {
                let room = self.rooms.get(name).ok_or_else(|| format!("{id} is in {name:?}, which is not open"))?;
                if !room.members.contains(id) {
                    return Err(format!("{id} lists {name:?}, which does not list them"));
                }
                if person.rooms[..i].contains(name) {
                    return Err(format!("{id} lists {name:?} twice"));
                }
            }
            if person.rooms.len() > self.limits.rooms_per_person {
                return Err(format!("{id} is in more rooms than allowed"));
            }
        }
        for (name, room) in &self.rooms {
            if room.members.is_empty() {
                return Err(format!("{name:?} is open and empty"));
            }
            if room.name != *name {
                return Err(format!("{name:?} is named {:?}", room.name));
            }
            for (i, id) in room.members.iter().enumerate() {
                if !self.is_member(*id, name) || room.members[..i].contains(id) {
                    return Err(format!("{name:?} lists {id} wrongly"));
                }
            }
            for (i, (id, _)) in room.call.iter().enumerate() {
                if !room.members.contains(id) || room.call[..i].iter().any(|(other, _)| other == id) {
                    return Err(format!("the call of {name:?} lists {id} wrongly"));
                }
            }
            room.check_invariants()?;
        }
        self.histories.check_invariants()?;
        if let Some(room) = self.histories.of_closed_rooms(&self.rooms) {
            return Err(format!("{room:?} is closed and keeps a history"));
        }
        let directory = self.directory(usize::MAX);
        if directory.total != self.rooms.values().filter(|r| !r.unlisted).count()
            || directory.rooms.iter().any(|e| self.rooms.get(&e.name).is_none_or(|r| r.members.len() != e.count))
        {
            return Err("the directory does not match the rooms".into());
        }
        Ok(())
    }
}

/// Characters of the random end of an unlisted room's name: letters and digits, about 59 bits.
pub const UNLISTED_SUFFIX_LEN: usize = 10;

/// A random end for an unlisted room's name.
pub fn unlisted_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..UNLISTED_SUFFIX_LEN).map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())])).collect()
}

/// Whether a name ends as [`Rooms::unlisted_name`] ends the names it makes.
fn has_unlisted_suffix(name: &str) -> bool {
    name.len() > UNLISTED_SUFFIX_LEN + 1
        && name.as_bytes()[name.len() - UNLISTED_SUFFIX_LEN - 1] == b'-'
        && name.as_bytes()[name.len() - UNLISTED_SUFFIX_LEN..].iter().all(u8::is_ascii_alphanumeric)
}

pub fn call_full(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::CallFull, format!("the call is full ({limit} people); you can still chat"))
}

/// The refusal of anything done in a room one is not in.
pub fn not_in_room(room: &str) -> ApiError {
    ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}"))
}

fn not_in_call(room: &str) -> ApiError {
    ApiError::new(ErrorCode::NotInCall, format!("not in the call of {room:?}"))
}

impl Room {
    fn info(&self) -> RoomInfo {
        RoomInfo {
            name: self.name.clone(),
            unlisted: self.unlisted,
            count: self.members.len(),
            locked: self.locked,
            waiting_room: self.waiting_room,
            password: self.password.is_some(),
        }
    }

    /// Whether `id` is a host: one made so, or, when none is (they left, or another node's word
    /// that someone is has not come yet), the longest present, unless the room has a host key.
    fn is_host(&self, id: PersonId) -> bool {
        if self.hosts.is_empty() && self.host_key.is_none() {
            self.members.first() == Some(&id)
        } else {
            self.hosts.contains(&id)
        }
    }

    fn hosts_now(&self) -> Vec<PersonId> {
        self.members.iter().copied().filter(|m| self.is_host(*m)).collect()
    }

    fn media_of(&self, id: PersonId) -> Option<Media> {
        self.call.iter().find(|(m, _)| *m == id).map(|(_, media)| *media)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(n: usize) -> (Rooms, Vec<PersonId>) {
        let mut rooms = Rooms::new(Limits { history_size: 3, rooms_per_person: 2, call_size: 2, ..Limits::default() });
        let ids: Vec<PersonId> = (0..n).map(|_| PersonId::random()).collect();
        ids.iter().for_each(|id| rooms.connect(*id));
        (rooms, ids)
    }

    #[test]
    fn a_person_id_is_random_and_reads_back_only_from_its_own_form() {
        let id = PersonId::random();
        assert_ne!(id, PersonId::random());
        let text = id.to_string();
        assert_eq!(text.len(), 22);
        assert_eq!(text.parse::<PersonId>(), Ok(id));
        assert_eq!(serde_json::from_value::<PersonId>(serde_json::to_value(id).unwrap()).unwrap(), id);
        // An Engine.IO session id (16 characters) names nobody.
        assert!("AAAAAAAAAAAAAAAA".parse::<PersonId>().is_err());
        assert!("".parse::<PersonId>().is_err());
        assert!(format!("{text}=").parse::<PersonId>().is_err());
        assert!("!!!!!!!!!!!!!!!!!!!!!!".parse::<PersonId>().is_err());
    }

    #[test]
    fn a_new_unlisted_room_gets_a_name_nobody_can_guess() {
        let (mut rooms, ids) = setup(1);
        let suffix = unlisted_suffix();
        assert_eq!(suffix.len(), UNLISTED_SUFFIX_LEN);
        assert_ne!(suffix, unlisted_suffix());
        let name = rooms.unlisted_name("family", &suffix);
        assert_eq!(name, format!("family-{suffix}"));
        rooms.enter(ids[0], &name, true).unwrap();
        assert_eq!(rooms.unlisted_name(&name, "other00000"), name, "its link enters it");
        assert_eq!(rooms.unlisted_name("family-0123456789", "other00000"), "family-0123456789", "one made again");
        let long = "x".repeat(crate::validate::ROOM_NAME_MAX);
        let made = rooms.unlisted_name(&long, &suffix);
        assert_eq!(made.chars().count(), crate::validate::ROOM_NAME_MAX);
        assert!(crate::validate::room_name(&made).is_ok());
    }

    #[test]
    fn entering_counts_people_and_keeps_arrival_order() {
        let (mut rooms, ids) = setup(3);
        rooms.rename(ids[1], "Bea").unwrap();
        let first = rooms.enter(ids[0], "hall", false).unwrap();
        assert!(first.is_new);
        assert_eq!(first.room.count, 1);
        assert_eq!(
            rooms.enter(ids[1], "hall", true).unwrap().room,
            RoomInfo {
                name: "hall".into(),
                unlisted: false,
                count: 2,
                locked: false,
                waiting_room: false,
                password: false
            }
        );
        let again = rooms.enter(ids[1], "hall", false).unwrap();
        assert!(!again.is_new);
        assert_eq!(again.room.count, 2);
        let names: Vec<_> = rooms.participants("hall").iter().map(|p| p.nickname.to_string()).collect();
        assert_eq!(names, ["Anon", "Bea"]);
    }

    #[test]
    fn an_emptied_room_is_gone_with_its_history() {
        let (mut rooms, ids) = setup(2);
        rooms.enter(ids[0], "r", false).unwrap();
        rooms.enter(ids[1], "r", false).unwrap();
        rooms.post(ids[0], "r", "hi".into(), "1".into(), 0).unwrap();
        assert_eq!(rooms.leave(ids[0], "r").unwrap().count, 1);
        assert_eq!(rooms.disconnect(ids[1]).len(), 1);
        assert_eq!(rooms.room_count(), 0);
        assert_eq!(rooms.people_count(), 1);
        rooms.enter(ids[0], "r", false).unwrap();
        assert!(rooms.history("r").is_empty());
    }

    #[test]
    fn history_keeps_the_last_messages_oldest_first() {
        let (mut rooms, ids) = setup(1);
        rooms.enter(ids[0], "r", false).unwrap();
        for i in 0..5 {
            rooms.post(ids[0], "r", format!("m{i}"), i.to_string(), i).unwrap();
        }
        let texts: Vec<_> = rooms.history("r").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["m2", "m3", "m4"]);
    }

    #[test]
    fn only_members_post_and_leave() {
        let (mut rooms, ids) = setup(2);
        rooms.enter(ids[0], "r", false).unwrap();
        assert_eq!(rooms.post(ids[1], "r", "x".into(), "1".into(), 0).unwrap_err().code, ErrorCode::NotInRoom);
        assert_eq!(rooms.leave(ids[1], "r").unwrap_err().code, ErrorCode::NotInRoom);
        assert_eq!(rooms.post(ids[1], "nowhere", "x".into(), "1".into(), 0).unwrap_err().code, ErrorCode::NotInRoom);
    }

    #[test]
    fn rooms_per_person_are_bounded() {
        let (mut rooms, ids) = setup(1);
        rooms.enter(ids[0], "a", false).unwrap();
        rooms.enter(ids[0], "b", false).unwrap();
        assert_eq!(rooms.enter(ids[0], "c", false).unwrap_err().code, ErrorCode::TooManyRooms);
        // Re-entering a room one is in is not a new room.
        assert!(rooms.enter(ids[0], "a", false).is_ok());
    }

    #[test]
    fn unlisted_rooms_stay_out_of_the_directory() {
        let (mut rooms, ids) = setup(3);
        rooms.enter(ids[0], "secret", true).unwrap();
        // A later entrant cannot make it public.
        rooms.enter(ids[1], "secret", false).unwrap();
        rooms.enter(ids[2], "open", false).unwrap();
        assert_eq!(rooms.public_names(), vec![Arc::<str>::from("open")]);
        let dir = rooms.directory(10);
        assert_eq!(dir.total, 1);
        assert_eq!(dir.rooms, vec![DirectoryEntry { name: "open".into(), count: 1, in_call: 0 }]);
    }

    #[test]
    fn directory_lists_the_largest_rooms_first() {
        let (mut rooms, ids) = setup(6);
        for (i, id) in ids.iter().enumerate() {
            let name = ["a", "b", "b", "c", "c", "c"][i];
            rooms.enter(*id, name, false).unwrap();
        }
        let dir = rooms.directory(2);
        assert_eq!(dir.total, 3);
        let names: Vec<_> = dir.rooms.iter().map(|r| (r.name.to_string(), r.count)).collect();
        assert_eq!(names, [("c".to_string(), 3), ("b".to_string(), 2)]);
    }

    #[test]
    fn the_directory_says_how_many_are_in_each_call_and_moves_when_that_changes() {
        let (mut rooms, ids) = setup(3);
        for &id in &ids {
            rooms.enter(id, "open", false).unwrap();
        }
        rooms.enter(ids[0], "hidden", true).unwrap();
        let calls = |rooms: &Rooms| {
            rooms.directory(10).rooms.iter().map(|r| (r.name.to_string(), r.in_call)).collect::<Vec<_>>()
        };
        assert_eq!(calls(&rooms), [("open".to_string(), 0)]);
        let version = rooms.directory_version();
        rooms.join_call(ids[1], "open", Media::default(), true, 0).unwrap();
        assert!(rooms.directory_version() > version, "a call begun shows in the lobby");
        assert_eq!(calls(&rooms), [("open".to_string(), 1)]);
        let version = rooms.directory_version();
        rooms.set_media(ids[1], "open", Media { audio: true, ..Media::default() }).unwrap();
        assert_eq!(rooms.directory_version(), version, "media changes are not the lobby's business");
        rooms.join_call(ids[0], "hidden", Media::default(), true, 0).unwrap();
        assert_eq!(rooms.directory_version(), version, "an unlisted room's call is nobody's business");
        rooms.leave_call(ids[1], "open").unwrap();
        assert!(rooms.directory_version() > version);
        assert_eq!(calls(&rooms), [("open".to_string(), 0)]);
    }

    #[test]
    fn a_call_began_when_its_first_person_joined_and_is_over_when_its_last_left() {
        let (mut rooms, ids) = setup(2);
        for &id in &ids {
            rooms.enter(id, "r", false).unwrap();
        }
        assert_eq!(rooms.call_since("r"), None);
        rooms.join_call(ids[0], "r", Media::default(), true, 1_000).unwrap();
        rooms.join_call(ids[1], "r", Media::default(), true, 5_000).unwrap();
        rooms.join_call(ids[0], "r", Media { audio: true, ..Media::default() }, true, 9_000).unwrap();
        assert_eq!(rooms.call_since("r"), Some(1_000), "the first to join began it");
        rooms.call_began_by("r", 3_000);
        assert_eq!(rooms.call_since("r"), Some(1_000), "another node's later word changes nothing");
        rooms.call_began_by("r", 500);
        assert_eq!(rooms.call_since("r"), Some(500), "an earlier one is taken");
        rooms.call_began_by("nowhere", 1);
        rooms.leave_call(ids[0], "r").unwrap();
        assert_eq!(rooms.call_since("r"), Some(500), "it goes on while anyone is in it");
        rooms.leave(ids[1], "r").unwrap();
        assert_eq!(rooms.call_since("r"), None);
        rooms.join_call(ids[0], "r", Media::default(), true, 20_000).unwrap();
        assert_eq!(rooms.call_since("r"), Some(20_000), "a new call, a new start");
    }

    #[test]
    fn directory_version_moves_only_for_public_rooms() {
        let (mut rooms, ids) = setup(2);
        let v0 = rooms.directory_version();
        rooms.enter(ids[0], "hidden", true).unwrap();
        rooms.rename(ids[0], "Zed").unwrap();
        assert_eq!(rooms.directory_version(), v0);
        rooms.enter(ids[1], "open", false).unwrap();
        assert!(rooms.directory_version() > v0);
    }

    #[test]
    fn presence_version_moves_with_every_change_anyone_sees_and_only_then() {
        let (mut rooms, ids) = setup(2);
        let mut version = rooms.presence_version();
        let mut moved = |rooms: &Rooms, expected: bool, what: &str| {
            assert_eq!(rooms.presence_version() != version, expected, "{what}");
            version = rooms.presence_version();
        };
        rooms.enter(ids[0], "hidden", true).unwrap();
        moved(&rooms, true, "entering an unlisted room");
        rooms.enter(ids[0], "hidden", true).unwrap();
        moved(&rooms, false, "entering it again");
        rooms.rename(ids[0], "Zed").unwrap();
        moved(&rooms, true, "a rename");
        rooms.rename(ids[0], "Zed").unwrap();
        moved(&rooms, false, "the same name");
        let media = Media { audio: true, ..Media::default() };
        rooms.join_call(ids[0], "hidden", media, true, 0).unwrap();
        moved(&rooms, true, "joining the call");
        rooms.set_media(ids[0], "hidden", media).unwrap();
        moved(&rooms, false, "the same media");
        rooms.set_media(ids[0], "hidden", Media::default()).unwrap();
        moved(&rooms, true, "other media");
        rooms.leave_call(ids[0], "hidden").unwrap();
        moved(&rooms, true, "leaving the call");
        rooms.post(ids[0], "hidden", "hi".into(), "m1".into(), 1).unwrap();
        moved(&rooms, false, "a chat message");
        rooms.disconnect(ids[0]);
        moved(&rooms, true, "a disconnection");
    }

    #[test]
    fn calls_are_bounded_and_their_media_is_presence() {
        let (mut rooms, ids) = setup(4);
        for id in &ids {
            rooms.enter(*id, "r", false).unwrap();
        }
        let cam = Media { audio: true, video: true, screen: false };
        assert_eq!(rooms.join_call(ids[3], "elsewhere", cam, true, 0).unwrap_err().code, ErrorCode::NotInRoom);
        assert!(rooms.join_call(ids[0], "r", cam, true, 0).unwrap().changed);
        assert!(!rooms.join_call(ids[0], "r", cam, true, 0).unwrap().changed);
        rooms.join_call(ids[1], "r", Media::default(), true, 0).unwrap();
        assert_eq!(rooms.join_call(ids[2], "r", cam, true, 0).unwrap_err().code, ErrorCode::CallFull);
        let muted = Media { audio: false, ..cam };
        assert_eq!(rooms.set_media(ids[0], "r", muted).unwrap().me.call, Some(muted));
        assert_eq!(rooms.set_media(ids[2], "r", muted).unwrap_err().code, ErrorCode::NotInCall);
        // Someone arriving later sees who is in the call and how.
        let calls: Vec<_> = rooms.participants("r").iter().map(|p| p.call).collect();
        assert_eq!(calls, [Some(muted), Some(Media::default()), None, None]);
        // A chat message's sender carries no call state.
        assert_eq!(rooms.post(ids[0], "r", "hi".into(), "1".into(), 0).unwrap().sender.call, None);
        // Leaving the room leaves its call, and frees a place.
        rooms.leave(ids[1], "r").unwrap();
        assert!(rooms.join_call(ids[2], "r", cam, true, 0).is_ok());
        assert_eq!(rooms.leave_call(ids[3], "r").unwrap_err().code, ErrorCode::NotInCall);
        assert_eq!(rooms.leave_call(ids[2], "r").unwrap().call, None);
    }

    #[test]
    fn signals_pass_only_between_two_people_in_one_call() {
        let (mut rooms, ids) = setup(4);
        for id in &ids[..3] {
            rooms.enter(*id, "r", false).unwrap();
        }
        rooms.enter(ids[3], "other", false).unwrap();
        rooms.join_call(ids[0], "r", Media::default(), true, 0).unwrap();
        rooms.join_call(ids[1], "r", Media::default(), true, 0).unwrap();
        rooms.join_call(ids[3], "other", Media::default(), true, 0).unwrap();
        assert_eq!(rooms.check_signal(ids[0], Some(ids[1]), "r").unwrap(), ids[1]);
        assert_eq!(rooms.check_signal(ids[0], None, "r").unwrap_err().code, ErrorCode::PeerUnavailable);
        let code =
            |from: usize, to: usize, room: &str| rooms.check_signal(ids[from], Some(ids[to]), room).unwrap_err().code;
        assert_eq!(code(0, 2, "r"), ErrorCode::PeerUnavailable); // in the room, not the call
        assert_eq!(code(0, 3, "r"), ErrorCode::PeerUnavailable); // in another room's call
        assert_eq!(code(0, 0, "r"), ErrorCode::PeerUnavailable);
        assert_eq!(code(2, 0, "r"), ErrorCode::NotInCall);
        assert_eq!(code(3, 0, "r"), ErrorCode::NotInRoom);
    }

    #[test]
    fn a_place_taken_elsewhere_passes_the_limit() {
        let (mut rooms, ids) = setup(3);
        for id in &ids {
            rooms.enter(*id, "r", false).unwrap();
        }
        rooms.join_call(ids[0], "r", Media::default(), true, 0).unwrap();
        rooms.join_call(ids[1], "r", Media::default(), true, 0).unwrap();
        assert_eq!(rooms.join_call(ids[2], "r", Media::default(), true, 0).unwrap_err().code, ErrorCode::CallFull);
        assert!(rooms.join_call(ids[2], "r", Media::default(), false, 0).unwrap().changed);
    }

    #[test]
    fn messages_from_other_nodes_are_kept_once_and_in_order() {
        let (mut rooms, ids) = setup(1);
        rooms.enter(ids[0], "r", false).unwrap();
        let sender = rooms.participant(ids[0]).unwrap();
        let msg = |id: &str, ts: u64| ChatMessage {
            id: id.into(),
            room: "r".into(),
            sender: sender.clone(),
            text: id.into(),
            ts,
        };
        assert!(rooms.record(&msg("b", 20)));
        assert!(!rooms.record(&msg("b", 20)));
        assert!(!rooms.record(&ChatMessage { room: "closed".into(), ..msg("x", 1) }));
        rooms.merge_history(vec![msg("a", 10), msg("c", 30), msg("b", 20), msg("d", 40)]);
        // The newest three (the history size), oldest first; a message of a closed room is dropped.
        let texts: Vec<String> = rooms.history("r").into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["b", "c", "d"]);
    }

    #[test]
    fn a_room_unlisted_anywhere_ends_unlisted() {
        let (mut rooms, ids) = setup(1);
        rooms.enter(ids[0], "r", false).unwrap();
        let version = rooms.directory_version();
        rooms.mark_unlisted("r");
        assert!(rooms.is_unlisted("r"));
        assert!(rooms.directory(10).rooms.is_empty());
        assert!(rooms.directory_version() > version);
        rooms.mark_unlisted("closed");
    }

    #[test]
    fn a_link_s_room_opened_public_elsewhere_a_moment_before_ends_unlisted_and_no_other_room_does() {
        let (mut rooms, ids) = setup(2);
        let link = format!("hidden-{}", unlisted_suffix());
        // Someone of another node got there first, asking for a public room.
        rooms.enter(ids[0], &link, false).unwrap();
        let version = rooms.directory_version();
        let entered = rooms.enter(ids[1], &link, true).unwrap();
        assert!(entered.room.unlisted && rooms.directory(10).rooms.is_empty());
        assert!(rooms.directory_version() > version);
        rooms.enter(ids[0], "hall", false).unwrap();
        assert!(!rooms.enter(ids[1], "hall", true).unwrap().room.unlisted, "a public room stays listed");
        rooms.check_invariants().unwrap();
    }
}
