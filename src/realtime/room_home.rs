//! Each room's home on this node: what the room's members here hear, in the order the room
//! changed, sent with no lock held; and the room's turn, for a change that must wait on
//! something (another node) between its check and its making. The media server's router for the
//! room's call is to live here too.
//!
//! A change to the room state is made under the state's lock, which is held for the change alone.
//! What the change has the members hear (a push to the others, the answer to the one who asked,
//! a socket joining or leaving the room's broadcast group) is queued in the room's home while the
//! state is still locked, so the queue's order is the order the room changed, whichever socket
//! or node changed it. Once the state is unlocked, the one who queued runs the room's queue,
//! unless someone else is running it already (that one then runs this work too). A busy room
//! keeps those who change it busy; no other room waits on it.
//!
//! A socket hears each room's changes in order; the changes of two rooms it is in may interleave
//! differently for two sockets, which the client never relies on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Something a room's members here are to hear, or a change to who hears the room: run once,
/// with no lock of the hub held.
pub type Delivery = Box<dyn FnOnce() + Send>;

/// Deliveries one run takes on before it hands the rest to a task of its own.
const RUN_AT_MOST: usize = 256;

/// How often the homes of rooms with nothing under way are let go. A room that changes often keeps
/// its home in between (making one for every message would cost more than the message).
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The homes of the rooms with something under way on this node, or lately. A room's home lives
/// while anything is queued in it, or it is someone's turn, and until the next sweep after; a room
/// quiet since costs nothing.
#[derive(Default)]
pub struct RoomHomes {
    table: Mutex<HashMap<Arc<str>, Arc<RoomHome>>>,
}

pub struct RoomHome {
    room: Arc<str>,
    turn: Arc<AsyncMutex<()>>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    deliveries: VecDeque<Delivery>,
    /// The buffer of the batch run last, kept for the next (a queue of a busy room allocates
    /// once).
    spare: VecDeque<Delivery>,
    /// Someone is running the queue: whoever queues more leaves it to them.
    running: bool,
}

/// A room's turn: while it is held, no other change that takes the turn is made to the room.
pub struct Turn {
    _guard: OwnedMutexGuard<()>,
    /// While someone has the turn, whoever asks for it waits on the same home.
    _home: Arc<RoomHome>,
}

impl RoomHomes {
    /// The room's home; everyone asking while it lives gets the same one.
    pub fn of(&self, room: &str) -> Arc<RoomHome> {
        let mut table = self.table.lock();
        if let Some(home) = table.get(room) {
            return home.clone();
        }
        let room: Arc<str> = room.into();
        let home = Arc::new(RoomHome {
            room: room.clone(),
            turn: Arc::new(AsyncMutex::new(())),
            queue: Mutex::new(Queue::default()),
        });
        table.insert(room, home.clone());
        home
    }

    /// Lets go of the homes nobody holds and nothing is queued in. One queued in a moment later
    /// gets a new home; nothing of the old one is left to run out of order.
    pub fn sweep(&self) {
        self.table.lock().retain(|_, home| {
            Arc::strong_count(home) > 1 || {
                let queue = home.queue.lock();
                queue.running || !queue.deliveries.is_empty()
            }
        });
    }

    /// Waits for the room's turn.
    pub async fn turn(&self, room: &str) -> Turn {
        let home = self.of(room);
        let guard = home.turn.clone().lock_owned().await;
        Turn { _guard: guard, _home: home }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().len()
    }
}

impl RoomHome {
    fn push(&self, delivery: Delivery) {
        self.queue.lock().deliveries.push_back(delivery);
    }

    /// Runs what is queued, in order, unless someone else is running it.
    pub fn run(self: &Arc<Self>) {
        {
            let mut queue = self.queue.lock();
            if queue.running {
                return;
            }
            queue.running = true;
        }
        self.run_queue();
    }

    /// Runs the queue, which this thread has the running of, a batch at a time. After
    /// [`RUN_AT_MOST`] deliveries with more waiting, a task of its own takes over: a socket whose
    /// change landed in a busy room is not kept from its own next event for long.
    fn run_queue(self: &Arc<Self>) {
        let mut ran = 0;
        loop {
            let mut batch = {
                let mut queue = self.queue.lock();
                if queue.deliveries.is_empty() {
                    queue.running = false;
                    return;
                }
                if ran >= RUN_AT_MOST {
                    break;
                }
                let spare = std::mem::take(&mut queue.spare);
                std::mem::replace(&mut queue.deliveries, spare)
            };
            ran += batch.len();
            for delivery in batch.drain(..) {
                delivery();
            }
            self.queue.lock().spare = batch;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let home = self.clone();
                runtime.spawn(async move { home.run_queue() });
            }
            // Outside a runtime (unit tests): run it all here.
            Err(_) => self.run_queue(),
        }
    }
}

/// What one change has each room's members hear: queued while the room state is locked, run by
/// [`Told::run`] once it is not.
pub struct Told<'a> {
    homes: &'a RoomHomes,
    /// The room most changes touch alone; the others, if any.
    first: Option<Arc<RoomHome>>,
    others: Vec<Arc<RoomHome>>,
}

impl<'a> Told<'a> {
    pub fn new(homes: &'a RoomHomes) -> Self {
        Self { homes, first: None, others: Vec::new() }
    }

    /// Queues `delivery` after everything queued before in `room`.
    pub fn queue(&mut self, room: &str, delivery: impl FnOnce() + Send + 'static) {
        self.home(room).push(Box::new(delivery));
    }

    fn home(&mut self, room: &str) -> &Arc<RoomHome> {
        let Some(first) = &self.first else { return self.first.insert(self.homes.of(room)) };
        if *first.room == *room {
            return self.first.as_ref().expect("just seen");
        }
        match self.others.iter().position(|home| *home.room == *room) {
            Some(at) => &self.others[at],
            None => {
                self.others.push(self.homes.of(room));
                self.others.last().expect("just pushed")
            }
        }
    }

    /// Runs the queues of the rooms this change touched. Call it with no lock held.
    pub fn run(self) {
        for home in self.first.into_iter().chain(self.others) {
            home.run();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn a_room_hears_its_changes_in_the_order_they_were_queued_whoever_runs_them() {
        let homes = Arc::new(RoomHomes::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        // The state's lock: queueing happens under it, running after it.
        let state = Arc::new(Mutex::new(0u32));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (homes, heard, state) = (homes.clone(), heard.clone(), state.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let mut told = Told::new(&homes);
                        {
                            let mut n = state.lock();
                            *n += 1;
                            let n = *n;
                            let heard = heard.clone();
                            told.queue("hall", move || heard.lock().push(n));
                        }
                        told.run();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*heard.lock(), (1..=4000).collect::<Vec<_>>());
        assert_eq!(homes.len(), 1, "kept until the sweep");
        homes.sweep();
        assert_eq!(homes.len(), 0, "a room with nothing under way keeps no home");
    }

    #[test]
    fn what_a_delivery_queues_in_its_own_room_runs_after_it() {
        let homes = Arc::new(RoomHomes::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let mut told = Told::new(&homes);
        let (inner_homes, inner_heard) = (homes.clone(), heard.clone());
        told.queue("hall", move || {
            let mut again = Told::new(&inner_homes);
            let h = inner_heard.clone();
            again.queue("hall", move || h.lock().push(2));
            again.run();
            inner_heard.lock().push(1);
        });
        told.run();
        assert_eq!(*heard.lock(), vec![1, 2]);
    }

    /// A room where each delivery leads to another change: the one who ran the first does not
    /// run them all.
    fn busy_room(homes: Arc<RoomHomes>, heard: Arc<Mutex<Vec<usize>>>, i: usize) {
        if i == RUN_AT_MOST * 4 {
            return;
        }
        let mut told = Told::new(&homes);
        let next = homes.clone();
        told.queue("hall", move || {
            heard.lock().push(i);
            busy_room(next, heard, i + 1);
        });
        told.run();
    }

    // One thread: the task taking over runs only once this test awaits.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_room_is_handed_to_a_task_of_its_own_and_still_runs_in_order() {
        let homes = Arc::new(RoomHomes::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        busy_room(homes, heard.clone(), 0);
        assert_eq!(heard.lock().len(), RUN_AT_MOST, "the one who queued ran only its share");
        while heard.lock().len() < RUN_AT_MOST * 4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(*heard.lock(), (0..RUN_AT_MOST * 4).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_turn_at_a_time_per_room_and_nothing_left_behind() {
        let homes = Arc::new(RoomHomes::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (homes, inside) = (homes.clone(), inside.clone());
                tokio::spawn(async move {
                    let room = if i % 2 == 0 { "even" } else { "odd" };
                    let _turn = homes.turn(room).await;
                    let now = inside.fetch_add(1, Ordering::SeqCst);
                    assert!(now < 2, "two tasks of one room inside at once");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        homes.sweep();
        assert_eq!(homes.len(), 0);
    }
}
