//! Draining: a node about to be taken out (an upgrade, a smaller cluster) takes no new users and
//! carries no new calls, and stops once the calls it has are over, or at a deadline, as LiveKit
//! and Jitsi Videobridge do. Asked by SIGUSR1 or the admin API; the shutdown that follows is
//! SIGTERM's (what calls are left are handed to other nodes, and clients reconnect elsewhere).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Hub;
use crate::rooms::PersonId;

/// How often a draining node looks whether its calls are over.
const LOOK_EVERY: Duration = Duration::from_millis(500);

impl Hub {
    /// Starts draining, if not already; the deadline counts from the first ask.
    pub fn drain(&self) {
        let mut draining = self.draining.lock();
        if draining.is_some() {
            return;
        }
        *draining = Some(Instant::now());
        let deadline = self.config.drain_timeout;
        tracing::info!(
            calls = self.calls_here(),
            deadline_seconds = deadline,
            "draining: no new users or calls here; stopping once this node's calls are over, or at the deadline"
        );
        self.drain_asked.notify_one();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.lock().is_some()
    }

    /// Returns once this node has drained: asked to, and its calls over or its deadline passed.
    pub async fn drained(&self) {
        loop {
            let began = *self.draining.lock();
            let Some(began) = began else {
                self.drain_asked.notified().await;
                continue;
            };
            let calls = self.calls_here();
            if calls == 0 {
                tracing::info!("drained: no call left here");
                return;
            }
            if began.elapsed() >= Duration::from_secs(self.config.drain_timeout) {
                tracing::info!(calls, "drain deadline passed: the calls left move to other nodes");
                return;
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Calls that go through this node: those its media server carries, and those its own people
    /// are in (a call's signalling goes through each person's node).
    pub fn calls_here(&self) -> usize {
        let mut rooms: HashSet<Arc<str>> =
            self.media.as_ref().map(|media| media.rooms().into_iter().map(Arc::from).collect()).unwrap_or_default();
        self.with_own_people(|state, own| {
            let own: HashSet<PersonId> = own.into_iter().collect();
            rooms.extend(state.callers().into_iter().filter(|(id, _)| own.contains(id)).map(|(_, room)| room));
        });
        rooms.len()
    }
}
