//! Pushes the room directory to the lobby, and the seed's `room_change` to seed clients, only
//! when they changed, coalescing bursts: the first change goes out at once, then at most one
//! push per interval, carrying everything that changed meanwhile.

use std::sync::Arc;

use super::{DIRECTORY_LIMIT, Hub, LOBBY, SEED_SOCKETS, outbox};
use crate::events::{noom, seed};
use crate::rooms::Directory;

pub(super) async fn publish(hub: Arc<Hub>) {
    let interval = hub.config.directory_interval();
    let mut last_version = None;
    let mut last_directory = Directory::default();
    let mut last_names: Vec<Arc<str>> = Vec::new();
    loop {
        hub.directory_changed.notified().await;
        let (version, directory, names) = {
            let rooms = hub.rooms.lock();
            let version = rooms.directory_version();
            if last_version == Some(version) {
                continue;
            }
            (version, rooms.directory(DIRECTORY_LIMIT), rooms.public_names())
        };
        last_version = Some(version);
        if directory != last_directory {
            outbox::broadcast(hub.io.local().to(LOBBY), noom::DIRECTORY, &directory);
            last_directory = directory;
        }
        if names != last_names {
            outbox::broadcast(hub.io.local().to(SEED_SOCKETS), seed::ROOM_CHANGE, &names);
            last_names = names;
        }
        tokio::time::sleep(interval).await;
    }
}
