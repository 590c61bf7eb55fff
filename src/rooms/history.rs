//! What open rooms remember of their chat, for whoever enters next: each room's last messages,
//! and a bound on the bytes all of them hold together.
//!
//! Each room keeps at most `--history-size` messages. All rooms together keep at most
//! `--history-memory`: past it, the oldest messages of the whole server go first, whichever room
//! they are in, so that a few busy rooms cannot take every other room's history, nor grow the
//! server's memory with the number of rooms.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::ChatMessage;

/// What a message costs beyond its strings: the struct, its place in two queues, and its JSON.
const MESSAGE_OVERHEAD: usize = 160;

/// The bytes a message is counted as.
pub fn cost(message: &ChatMessage) -> usize {
    message.text.len() + message.sender.nickname.len() + message.id.len() + message.room.len() + MESSAGE_OVERHEAD
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages per room.
    pub per_room: usize,
    /// Bytes of all rooms together.
    pub total_bytes: usize,
}

#[derive(Debug, Default)]
struct RoomHistory {
    messages: VecDeque<ChatMessage>,
    bytes: usize,
}

/// The histories of every open room.
#[derive(Debug)]
pub struct Histories {
    limits: Limits,
    rooms: HashMap<Arc<str>, RoomHistory>,
    /// Every message kept, in the order it was added, to find the server's oldest: entries of
    /// messages already gone (their room closed, or pushed out by newer ones) are skipped when
    /// met, and the queue is rebuilt when they outnumber the live ones.
    order: VecDeque<(Arc<str>, String)>,
    bytes: usize,
    count: usize,
}

impl Histories {
    pub fn new(limits: Limits) -> Self {
        Self { limits, rooms: HashMap::new(), order: VecDeque::new(), bytes: 0, count: 0 }
    }

    /// The room's messages, oldest first.
    pub fn of(&self, room: &str) -> impl Iterator<Item = &ChatMessage> {
        self.rooms.get(room).into_iter().flat_map(|h| h.messages.iter())
    }

    /// Bytes the room's history is counted as.
    pub fn bytes_of(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |h| h.bytes)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, room: &str, id: &str) -> bool {
        self.rooms.get(room).is_some_and(|h| h.messages.iter().rev().any(|m| m.id == id))
    }

    /// Keeps a message as its room's newest, within the limits.
    pub fn push(&mut self, room: &Arc<str>, message: ChatMessage) {
        if self.limits.per_room == 0 || cost(&message) > self.limits.total_bytes {
            return;
        }
        self.insert(room, message);
        let history = self.rooms.get_mut(room).expect("just inserted");
        if history.messages.len() > self.limits.per_room {
            let oldest = history.messages.pop_front().expect("over the limit");
            self.forget(room, &oldest);
        }
        self.within_budget();
    }

    /// Adds messages another node knows of, each once, in order of posting; the newest kept.
    pub fn merge(&mut self, room: &Arc<str>, messages: impl IntoIterator<Item = ChatMessage>) {
        if self.limits.per_room == 0 {
            return;
        }
        let mut added = false;
        for message in messages {
            if !self.contains(room, &message.id) && cost(&message) <= self.limits.total_bytes {
                self.insert(room, message);
                added = true;
            }
        }
        if !added {
            return;
        }
        let history = self.rooms.get_mut(room).expect("added to");
        history.messages.make_contiguous().sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
        let excess = history.messages.len().saturating_sub(self.limits.per_room);
        let dropped: Vec<ChatMessage> = history.messages.drain(..excess).collect();
        for message in &dropped {
            self.forget(room, message);
        }
        self.within_budget();
    }

    /// Forgets a closed room's history.
    pub fn close(&mut self, room: &str) {
        if let Some(history) = self.rooms.remove(room) {
            self.bytes -= history.bytes;
            self.count -= history.messages.len();
        }
    }

    fn insert(&mut self, room: &Arc<str>, message: ChatMessage) {
        let size = cost(&message);
        self.order.push_back((room.clone(), message.id.clone()));
        let history = self.rooms.entry(room.clone()).or_default();
        history.bytes += size;
        history.messages.push_back(message);
        self.bytes += size;
        self.count += 1;
    }

    /// Counts out a message taken out of its room's queue.
    fn forget(&mut self, room: &str, message: &ChatMessage) {
        let size = cost(message);
        if let Some(history) = self.rooms.get_mut(room) {
            history.bytes -= size;
        }
        self.bytes -= size;
        self.count -= 1;
    }

    /// Takes out the server's oldest messages while all histories hold more than they may.
    fn within_budget(&mut self) {
        while self.bytes > self.limits.total_bytes {
            let Some((room, id)) = self.order.pop_front() else { break };
            let Some(history) = self.rooms.get_mut(&room) else { continue };
            let Some(pos) = history.messages.iter().position(|m| m.id == id) else { continue };
            let message = history.messages.remove(pos).expect("found");
            self.forget(&room, &message);
        }
        if self.order.len() > 2 * self.count + 1024 {
            self.rebuild_order();
        }
    }

    fn rebuild_order(&mut self) {
        let mut live: Vec<(&Arc<str>, &ChatMessage)> =
            self.rooms.iter().flat_map(|(room, h)| h.messages.iter().map(move |m| (room, m))).collect();
        live.sort_by(|(_, a), (_, b)| a.ts.cmp(&b.ts).then_with(|| a.id.cmp(&b.id)));
        self.order = live.into_iter().map(|(room, m)| (room.clone(), m.id.clone())).collect();
    }

    /// A room of these histories that is not open, if any: for the tests.
    pub fn of_closed_rooms<V>(&self, open: &HashMap<Arc<str>, V>) -> Option<&Arc<str>> {
        self.rooms.keys().find(|room| !open.contains_key(*room))
    }

    /// What must hold whatever happened: for the tests and the fuzzer.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut total = 0;
        let mut count = 0;
        for (room, history) in &self.rooms {
            let bytes: usize = history.messages.iter().map(cost).sum();
            if bytes != history.bytes {
                return Err(format!("the history of {room:?} counts {} bytes, not {bytes}", history.bytes));
            }
            if history.messages.len() > self.limits.per_room || history.messages.iter().any(|m| m.room != *room) {
                return Err(format!("the history of {room:?} is wrong"));
            }
            total += bytes;
            count += history.messages.len();
        }
        if total != self.bytes || count != self.count {
            return Err(format!(
                "histories count {} bytes and {} messages, not {total} and {count}",
                self.bytes, self.count
            ));
        }
        if self.bytes > self.limits.total_bytes {
            return Err(format!("histories hold {} bytes, over {}", self.bytes, self.limits.total_bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::{Participant, PersonId};

    fn message(room: &str, id: &str, ts: u64, text_len: usize) -> ChatMessage {
        ChatMessage {
            id: id.into(),
            room: room.into(),
            sender: Participant::named(PersonId::from_bytes([1; 16]), "Ann".into()),
            text: "x".repeat(text_len),
            ts,
        }
    }

    #[test]
    fn each_room_keeps_its_last_messages() {
        let mut h = Histories::new(Limits { per_room: 2, total_bytes: 1 << 20 });
        let room: Arc<str> = "r".into();
        for i in 0..5 {
            h.push(&room, message("r", &i.to_string(), i, 10));
        }
        let ids: Vec<&str> = h.of("r").map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["3", "4"]);
        h.check_invariants().unwrap();
        h.close("r");
        assert_eq!(h.bytes(), 0);
        h.check_invariants().unwrap();
    }

    #[test]
    fn past_the_budget_the_servers_oldest_messages_go_first() {
        let one = cost(&message("a", "0", 0, 1000));
        let mut h = Histories::new(Limits { per_room: 50, total_bytes: 3 * one });
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        h.push(&a, message("a", "0", 0, 1000));
        h.push(&a, message("a", "1", 1, 1000));
        h.push(&b, message("b", "2", 2, 1000));
        h.push(&b, message("b", "3", 3, 1000));
        assert_eq!(h.of("a").map(|m| m.id.as_str()).collect::<Vec<_>>(), ["1"]);
        assert_eq!(h.of("b").map(|m| m.id.as_str()).collect::<Vec<_>>(), ["2", "3"]);
        h.check_invariants().unwrap();
    }

    #[test]
    fn messages_of_closed_rooms_do_not_pile_up_in_the_order() {
        let mut h = Histories::new(Limits { per_room: 50, total_bytes: 1 << 30 });
        let quiet: Arc<str> = "quiet".into();
        h.push(&quiet, message("quiet", "q", 0, 10));
        for i in 0..10_000 {
            let room: Arc<str> = format!("busy{i}").into();
            h.push(&room, message(&room, &format!("m{i}"), i + 1, 10));
            h.close(&room);
        }
        assert!(h.order.len() <= 2 * h.count + 1024 + 1, "{} entries for {} messages", h.order.len(), h.count);
        h.check_invariants().unwrap();
    }
}
