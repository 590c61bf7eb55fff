//! Runs one socket's events one after another, in the order they arrived.
//!
//! socketioxide spawns a task per incoming event, so two events of one socket may run in either
//! order. Our handlers are plain closures, which socketioxide calls synchronously on the socket's
//! receive path, in arrival order; each pushes its work here. The work runs on a drain task that
//! exists only while there is work, so an idle socket costs no task.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
pub struct SerialQueue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    draining: bool,
}

/// The queue was full; the job was not taken.
#[derive(Debug)]
pub struct QueueFull;

impl SerialQueue {
    /// Queues `job` after every job pushed before it, unless `limit` jobs are waiting.
    pub fn push(
        self: &Arc<Self>,
        limit: usize,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), QueueFull> {
        let mut state = self.state.lock();
        if state.jobs.len() >= limit {
            return Err(QueueFull);
        }
        state.jobs.push_back(Box::pin(job));
        if !state.draining {
            state.draining = true;
            tokio::spawn(self.clone().drain());
        }
        Ok(())
    }

    /// Whether `limit` jobs are waiting. Only the socket's receive path pushes, so a check
    /// followed by a push cannot race another push.
    pub fn is_full(&self, limit: usize) -> bool {
        self.state.lock().jobs.len() >= limit
    }

    async fn drain(self: Arc<Self>) {
        loop {
            let job = {
                let mut state = self.state.lock();
                match state.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        state.draining = false;
                        return;
                    }
                }
            };
            job.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jobs_run_in_push_order_even_when_they_sleep() {
        let queue = Arc::new(SerialQueue::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..20u64 {
            let seen = seen.clone();
            queue
                .push(100, async move {
                    tokio::time::sleep(Duration::from_millis((20 - i) % 3)).await;
                    seen.lock().push(i);
                })
                .unwrap();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        queue.push(100, async move { tx.send(()).unwrap() }).unwrap();
        rx.await.unwrap();
        assert_eq!(*seen.lock(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_queue_refuses() {
        let queue = Arc::new(SerialQueue::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        queue
            .push(2, async move {
                rx.await.ok();
            })
            .unwrap();
        // The drain task may or may not have taken the first job yet; fill until refused.
        let mut taken = 0;
        while queue.push(2, async {}).is_ok() {
            taken += 1;
            assert!(taken <= 3);
        }
        tx.send(()).unwrap();
    }
}
