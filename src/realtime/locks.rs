//! The hub's locks, and the one order they are taken in:
//!
//! 1. a room's turn ([`super::room_home`]): async, held across the awaits of a call change (a
//!    place claimed from the other nodes, then taken); one room's at a time;
//! 2. `nodes`: the other nodes, and who is connected to each;
//! 3. `rooms`: the room state, held while a change is made and what it tells is queued (in the
//!    changed rooms' homes, in the order the changes were made);
//! 4. `here`: which socket each person has;
//! 5. `resumable`: the resume tokens.
//!
//! Whatever else is locked while one of these is held takes no lock itself: an outbox's count, a
//! token bucket, a room's queue, Socket.IO's own maps. Nothing is sent to a socket while one of
//! these is held (a room's changes are queued, and sent once the state is unlocked: see
//! [`super::room_home`]). In debug builds, the ones the tests run, every lock of the hub checks
//! the order as it is taken, and every send checks that none is held; either panics otherwise: a
//! deadlock or a stall waiting to happen shows in any test that takes that path, not only when
//! two threads meet.

use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard};

/// Where a lock stands in the order: a lock may be taken only while every lock this thread
/// holds stands before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rank {
    Nodes = 2,
    Rooms = 3,
    Here = 4,
    Resumable = 5,
}

/// A mutex with its place in the order (checked in debug builds only).
pub(super) struct Ranked<T> {
    #[cfg(debug_assertions)]
    rank: Rank,
    inner: Mutex<T>,
}

pub(super) struct Guard<'a, T> {
    guard: MutexGuard<'a, T>,
    #[cfg(debug_assertions)]
    rank: Rank,
}

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::RefCell<Vec<Rank>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<T> Ranked<T> {
    #[cfg_attr(not(debug_assertions), allow(unused_variables))]
    pub const fn new(rank: Rank, value: T) -> Self {
        Self {
            #[cfg(debug_assertions)]
            rank,
            inner: Mutex::new(value),
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        #[cfg(debug_assertions)]
        HELD.with_borrow_mut(|held| {
            if let Some(last) = held.iter().max()
                && *last >= self.rank
            {
                panic!("lock order: {:?} taken while {last:?} is held (see realtime/locks.rs)", self.rank);
            }
            held.push(self.rank);
        });
        Guard {
            guard: self.inner.lock(),
            #[cfg(debug_assertions)]
            rank: self.rank,
        }
    }
}

/// Panics, in debug builds, if this thread holds a lock of the hub: `what` must not be done
/// under one (a send to a socket, which may wake other work or close the socket).
pub(super) fn assert_unlocked(what: &str) {
    #[cfg(debug_assertions)]
    HELD.with_borrow(|held| {
        if let Some(rank) = held.last() {
            panic!("{what} while {rank:?} is held (see realtime/locks.rs)");
        }
    });
    #[cfg(not(debug_assertions))]
    let _ = what;
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        HELD.with_borrow_mut(|held| {
            if let Some(at) = held.iter().rposition(|rank| *rank == self.rank) {
                held.remove(at);
            }
        });
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_order_are_fine_and_may_be_let_go_in_any_order() {
        let (nodes, rooms, here) =
            (Ranked::new(Rank::Nodes, ()), Ranked::new(Rank::Rooms, ()), Ranked::new(Rank::Here, ()));
        let n = nodes.lock();
        let r = rooms.lock();
        drop(n);
        let h = here.lock();
        drop(r);
        drop(h);
        // All let go: any lock may be taken first again.
        let _r = rooms.lock();
    }

    #[test]
    #[should_panic(expected = "lock order: Nodes taken while Rooms is held")]
    fn a_lock_taken_out_of_order_panics() {
        let (nodes, rooms) = (Ranked::new(Rank::Nodes, ()), Ranked::new(Rank::Rooms, ()));
        let _r = rooms.lock();
        let _n = nodes.lock();
    }

    #[test]
    #[should_panic(expected = "a send while Rooms is held")]
    fn nothing_is_sent_under_a_lock() {
        assert_unlocked("a send");
        let rooms = Ranked::new(Rank::Rooms, ());
        let _r = rooms.lock();
        assert_unlocked("a send");
    }

    #[test]
    #[should_panic(expected = "lock order")]
    fn a_lock_taken_twice_panics_instead_of_deadlocking() {
        let rooms = Ranked::new(Rank::Rooms, ());
        let _r = rooms.lock();
        let _again = rooms.lock();
    }
}
