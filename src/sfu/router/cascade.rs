//! A call that spans nodes (cascading, as Jitsi's Octo and LiveKit's relays do): each person's
//! browser connects to their own node's router, and the routers of a call forward each other the
//! tracks their people publish. A track crosses to another node once, whoever there watches it,
//! and only in the layers someone there needs; what its people need of it the node says
//! ([`ToNode::Want`]), and a keyframe one of them waits for is asked of the publisher's node
//! ([`ToNode::Keyframe`]), which asks the browser.
//!
//! To the router, someone of another node is a publisher without a connection: their tracks
//! ([`RemotePublisher`]) are offered, allocated and forwarded here as anyone's are, from the
//! packets their node relays. Which nodes share a call, and the connections between them, are the
//! IO's (`super::super::cascade`).

use std::sync::Arc;
use std::time::Instant;

use str0m::media::{MediaKind, Mid, Rid};

use super::{CallRouter, PAUSE_UNNEEDED_AFTER, RouterOutput};
use crate::rooms::PersonId;
use crate::sfu::relay::{Packet, TrackInfo};
use crate::sfu::track::{Negotiation, Published, Receiving};

/// What the router has for another node of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToNode {
    /// A packet of a track published here, of a layer the node wants.
    Media { owner: PersonId, mid: Mid, rid: Option<Rid>, packet: Packet },
    /// The layers of the node's track its people here need now (none: stop sending it).
    Want { owner: PersonId, mid: Mid, layers: Vec<Option<Rid>> },
    /// Someone here waits for a keyframe of that layer of the node's track.
    Keyframe { owner: PersonId, mid: Mid, rid: Option<Rid> },
}

/// Someone of another node in the call: the tracks they publish, relayed by their node.
pub(super) struct RemotePublisher {
    pub(super) node: Arc<str>,
    pub(super) owner: PersonId,
    pub(super) published: Vec<Published>,
}

impl CallRouter {
    /// The tracks this router's people publish (once media of them came), as the call's other
    /// nodes are to offer them.
    pub fn local_tracks(&self) -> Vec<TrackInfo> {
        self.participants
            .iter()
            .flat_map(|p| p.published.iter().filter(|t| t.heard).map(move |t| (p.id, t)))
            .map(|(owner, t)| TrackInfo {
                owner,
                mid: t.mid.to_string(),
                video: t.kind == MediaKind::Video,
                layers: t.layers.iter().map(ToString::to_string).collect(),
            })
            .collect()
    }

    /// The tracks people of `node` publish in the call, all of them: the new ones are offered to
    /// everyone here, those gone are stopped. Someone who is here themselves is left out (a node
    /// slow to notice that they moved).
    pub fn remote_tracks(&mut self, node: &str, tracks: Vec<TrackInfo>, now: Instant) {
        let node: Arc<str> = Arc::from(node);
        let listed = |owner: PersonId, mid: Mid| tracks.iter().any(|t| t.owner == owner && Mid::from(&*t.mid) == mid);
        // Tracks gone, and those of people now listed by another node.
        let mut gone = Vec::new();
        for r in &mut self.remote {
            let owner = r.owner;
            let moved = r.node != node && tracks.iter().any(|t| t.owner == owner);
            r.published.retain(|t| {
                let keep = if r.node == node { listed(owner, t.mid) } else { !moved };
                if !keep {
                    gone.push((owner, t.mid));
                }
                keep
            });
        }
        self.remote.retain(|r| !r.published.is_empty());
        for (owner, mid) in gone {
            self.stop_receiving(owner, Some(mid));
        }
        for info in tracks {
            let mid = Mid::from(&*info.mid);
            if self.contains(info.owner) || self.published_track(info.owner, mid).is_some() {
                continue;
            }
            let layers = info.layers.iter().map(|rid| Rid::from(&**rid)).collect();
            let mut track = Published::new(mid, info.kind(), layers, now);
            // Its node tells of it once media of it came there.
            track.heard = true;
            for p in &mut self.participants {
                p.receiving
                    .push(Receiving { wanted: p.wants(info.owner, track.kind), ..Receiving::new(info.owner, &track) });
            }
            match self.remote.iter_mut().find(|r| r.owner == info.owner) {
                Some(r) => r.published.push(track),
                None => {
                    self.remote.push(RemotePublisher { node: node.clone(), owner: info.owner, published: vec![track] })
                }
            }
        }
        self.negotiating = true;
        self.ask_nodes_for_layers(now);
        self.drive(Vec::new(), now);
    }

    /// `node` carries nobody of the call any more, or the connection to it is gone: its people's
    /// tracks stop here, and nothing more is sent to it.
    pub fn node_left(&mut self, node: &str, now: Instant) {
        self.remote_tracks(node, Vec::new(), now);
        for track in self.participants.iter_mut().flat_map(|p| &mut p.published) {
            track.relayed.retain(|(to, _)| &**to != node);
        }
    }

    /// A new connection to `node` is up: what went over the one before may have been lost with
    /// it (when two nodes dial each other at once, one of the two connections is closed), so
    /// `node` is told again the layers of its tracks needed here.
    pub fn node_connected(&mut self, node: &str, now: Instant) {
        for r in self.remote.iter().filter(|r| &*r.node == node) {
            for track in &r.published {
                if let Some(layers) = &track.asked {
                    let message = ToNode::Want { owner: r.owner, mid: track.mid, layers: layers.clone() };
                    self.outputs.push_back(RouterOutput::ToNode { to: r.node.clone(), message });
                }
            }
        }
        self.ask_nodes_for_layers(now);
        self.drive(Vec::new(), now);
    }

    /// The nodes whose people publish here now.
    pub fn remote_nodes(&self) -> Vec<Arc<str>> {
        let mut nodes: Vec<Arc<str>> = self.remote.iter().map(|r| r.node.clone()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Packets `node` relays of its people's tracks: forwarded to everyone here who receives
    /// them, as a local publisher's are. Packets of a track not (or no longer) known are dropped.
    pub fn relayed(
        &mut self,
        node: &str,
        packets: impl IntoIterator<Item = (PersonId, Mid, Option<Rid>, Packet)>,
        now: Instant,
    ) {
        self.holding_writes(now, |router| {
            for (owner, mid, rid, packet) in packets {
                let Some(r) = router.remote.iter().position(|r| r.owner == owner && &*r.node == node) else { continue };
                let Some(index) = router.remote[r].published.iter().position(|t| t.mid == mid) else { continue };
                let mut published = std::mem::take(&mut router.remote[r].published);
                let needs_keyframe = router.distribute(owner, None, &mut published[index], rid, packet, now, now);
                router.remote[r].published = published;
                if needs_keyframe {
                    router.request_keyframe(owner, mid, rid, now);
                }
            }
        });
    }

    /// `node`'s people need these layers of `owner`'s track `mid` (someone here): only those are
    /// relayed to it from now on.
    pub fn node_wants(&mut self, node: &str, owner: PersonId, mid: Mid, layers: Vec<Option<Rid>>, now: Instant) {
        let Some(at) = self.index(owner) else { return };
        let Some(track) = self.participants[at].published.iter_mut().find(|t| t.mid == mid) else { return };
        track.relayed.retain(|(to, _)| &**to != node);
        if !layers.is_empty() {
            track.relayed.push((Arc::from(node), layers));
        }
        // A layer paused at the browser for want of receivers is resumed at once.
        self.pause_unneeded_layers(now);
        self.drive(Vec::new(), now);
    }

    /// Someone on another node waits for a keyframe of `owner`'s track `mid` (someone here).
    pub fn node_needs_keyframe(&mut self, owner: PersonId, mid: Mid, rid: Option<Rid>, now: Instant) {
        if self.contains(owner) {
            self.request_keyframe(owner, mid, rid, now);
            self.drive(Vec::new(), now);
        }
    }

    /// A packet of participant `at`'s track `index`, to each node that wants its layer.
    pub(super) fn relay(&mut self, at: usize, index: usize, rid: Option<Rid>, packet: &Packet) {
        let p = &self.participants[at];
        let track = &p.published[index];
        for (node, layers) in &track.relayed {
            if layers.contains(&rid) {
                let message = ToNode::Media { owner: p.id, mid: track.mid, rid, packet: packet.clone() };
                self.outputs.push_back(RouterOutput::ToNode { to: node.clone(), message });
            }
        }
    }

    /// Asks the node of `from` (someone of another node) for a keyframe, at most as often as a
    /// browser is asked; the layers needed are told first, so that the keyframe's layer crosses.
    pub(super) fn request_remote_keyframe(&mut self, from: PersonId, mid: Mid, rid: Option<Rid>, now: Instant) {
        let Some(track) = self.published_track(from, mid) else { return };
        if !track.keyframe_due(rid, now) {
            return;
        }
        self.ask_nodes_for_layers(now);
        let Some(r) = self.remote.iter_mut().find(|r| r.owner == from) else { return };
        let Some(track) = r.published.iter_mut().find(|t| t.mid == mid) else { return };
        track.keyframe_asked(rid, now);
        let message = ToNode::Keyframe { owner: from, mid, rid };
        self.outputs.push_back(RouterOutput::ToNode { to: r.node.clone(), message });
    }

    /// Tells each node whose people publish here the layers of their tracks needed here, where
    /// that changed. A layer no longer needed goes on crossing for [`PAUSE_UNNEEDED_AFTER`], as a
    /// browser's does, so that a receiver switching back and forth does not wait for it each time.
    pub(super) fn ask_nodes_for_layers(&mut self, now: Instant) {
        let mut told = Vec::new();
        for r in 0..self.remote.len() {
            for t in 0..self.remote[r].published.len() {
                let owner = self.remote[r].owner;
                let needed = self.needed_layers(owner, &self.remote[r].published[t]);
                let track = &mut self.remote[r].published[t];
                let options: Vec<Option<Rid>> = match track.layers.is_empty() {
                    true => vec![None],
                    false => track.layers.iter().copied().map(Some).collect(),
                };
                let mut layers = Vec::new();
                for (layer, (rid, needed)) in options.into_iter().zip(needed).enumerate() {
                    let was_asked = track.asked.as_ref().is_some_and(|asked| asked.contains(&rid));
                    let since = track.unneeded_since.get_mut(layer);
                    let lingering = match since {
                        Some(since) => {
                            *since = if needed { None } else { Some(since.unwrap_or(now)) };
                            since.is_some_and(|since| now.duration_since(since) < PAUSE_UNNEEDED_AFTER)
                        }
                        None => false,
                    };
                    if needed || (was_asked && lingering) {
                        layers.push(rid);
                    }
                }
                if track.asked.as_ref() != Some(&layers) && !(track.asked.is_none() && layers.is_empty()) {
                    track.asked = Some(layers.clone());
                    let message = ToNode::Want { owner, mid: track.mid, layers };
                    told.push(RouterOutput::ToNode { to: self.remote[r].node.clone(), message });
                }
            }
        }
        self.outputs.extend(told);
    }

    /// The others stop receiving `from`'s track `mid`, or all of `from`'s tracks (offered at the
    /// end of the next drive).
    pub(super) fn stop_receiving(&mut self, from: PersonId, mid: Option<Mid>) {
        for p in &mut self.participants {
            p.receiving.retain_mut(|track| {
                if track.from != from || mid.is_some_and(|mid| mid != track.from_mid) {
                    return true;
                }
                match track.state {
                    // Never in a session description: nothing to stop.
                    Negotiation::Silent | Negotiation::ToOffer => false,
                    Negotiation::Offered(mid) | Negotiation::Open(mid) | Negotiation::ToStop(mid) => {
                        track.state = Negotiation::ToStop(mid);
                        true
                    }
                    Negotiation::Stopping(_) => true,
                }
            });
        }
        if !self.remote.iter().any(|r| r.owner == from) && !self.contains(from) {
            self.speakers.forget(from);
        }
        self.negotiating = true;
    }
}
