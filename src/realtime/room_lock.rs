//! One lock per room, held while a change to the room is made and told to its members.
//!
//! The room state itself sits behind one short synchronous lock, but telling people about a
//! change is a broadcast that takes an await. Without this lock two people entering at the same
//! moment could each be told of the other although each also sees the other in the
//! participant list of their own answer; holding the room's lock from the change to the end of
//! its broadcast makes every member's view the same sequence of events. Locks of different rooms
//! are independent, and a room nobody is waiting on costs no lock.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct RoomLocks {
    table: Mutex<HashMap<Box<str>, Weak<AsyncMutex<()>>>>,
}

pub struct RoomGuard<'a> {
    guard: Option<OwnedMutexGuard<()>>,
    lock: Arc<AsyncMutex<()>>,
    locks: &'a RoomLocks,
    room: Box<str>,
}

impl RoomLocks {
    /// Waits for the room's turn. Everyone asking for the same room while a lock for it is held
    /// or awaited gets that same lock.
    pub async fn lock(&self, room: &str) -> RoomGuard<'_> {
        let lock = {
            let mut table = self.table.lock();
            match table.get(room).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    table.insert(room.into(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        let guard = lock.clone().lock_owned().await;
        RoomGuard { guard: Some(guard), lock, locks: self, room: room.into() }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().len()
    }
}

impl Drop for RoomGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut table = self.locks.table.lock();
        // Nobody else holds or awaits it (they would hold a clone): forget the room's lock.
        // Upgrading the table's weak reference needs the table lock, which is held here.
        if Arc::strong_count(&self.lock) == 1 {
            table.remove(&self.room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_room_at_a_time_and_nothing_left_behind() {
        let locks = Arc::new(RoomLocks::default());
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    let room = if i % 2 == 0 { "even" } else { "odd" };
                    let _guard = locks.lock(room).await;
                    let now = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert!(now < 2, "two tasks of one room inside at once");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(locks.len(), 0);
    }
}
