//! Calls spanning nodes (`--cascade`): each person's media goes through their own node's media
//! server, and the media servers of a call forward each other its tracks over one connection
//! per pair of nodes ([`crate::sfu::cascade`]). Here, what the room state says of it: which other
//! nodes have people in each call this node's media server carries, and where each node's media
//! server is reached, which every node says through the cluster ([`Op::MediaRelay`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Hub;
use crate::cluster::{MEDIA_NODE_TIMEOUT, Op};
use crate::sfu::cascade::{Cascade, RelayAt};

/// How often a node says where its media server is reached, and each call's other nodes are
/// looked at again (they are also at once, when someone here joins a call).
const PEERS_EVERY: Duration = Duration::from_secs(1);

/// Says where this node's media server is reached, and keeps each call's other nodes, until the
/// hub is gone.
pub(super) async fn keep_peers(hub: Weak<Hub>, http_port: u16) {
    let ip = {
        let Some(hub) = hub.upgrade() else { return };
        crate::ice::public_addresses(&hub.config).first().copied().unwrap_or(IpAddr::from([127, 0, 0, 1]))
    };
    let mut tick = tokio::time::interval(PEERS_EVERY);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let Some(cascade) = hub.cascade() else { return };
        let RelayAt { address, key } = cascade.advertised(SocketAddr::new(ip, http_port));
        hub.link.publish_op(Op::MediaRelay { address, key });
        if let Some(media) = &hub.media {
            for room in media.rooms() {
                hub.keep_peers_of(&room);
            }
        }
    }
}

impl Hub {
    pub(super) fn cascade(&self) -> Option<&Arc<Cascade>> {
        self.media.as_ref().and_then(|media| media.cascade())
    }

    /// Whether each person's media goes through their own node.
    pub(super) fn cascading(&self) -> bool {
        self.cascade().is_some()
    }

    /// Another node said where its media server is reached.
    pub(super) fn relay_heard(&self, from: &str, address: SocketAddr, key: String) {
        if let Some(cascade) = self.cascade() {
            cascade.heard(from, RelayAt { address, key });
        }
    }

    /// Tells this node's media server which other live nodes have people in `room`'s call.
    pub(super) fn keep_peers_of(&self, room: &str) {
        let Some(media) = &self.media else { return };
        let peers = {
            let nodes = self.nodes.lock();
            let alive = nodes.heard_lately(Instant::now(), MEDIA_NODE_TIMEOUT);
            let rooms = self.rooms.lock();
            let mut peers: Vec<String> = rooms
                .participants(room)
                .into_iter()
                .filter(|p| p.call.is_some())
                .filter_map(|p| nodes.owner(p.id).map(str::to_owned))
                .filter(|node| alive.contains(node))
                .collect();
            peers.sort_unstable();
            peers.dedup();
            peers
        };
        media.set_peers(room, peers);
    }

    /// A node fell quiet: its connection is dropped, and its people's tracks stop here.
    pub(super) fn relay_gone(&self, node: &str) {
        if let Some(cascade) = self.cascade() {
            cascade.forget(node);
        }
    }
}
