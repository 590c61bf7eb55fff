//! What an administrator sees and does: every open room with its people, their media and their
//! node; closing a room; disconnecting someone. Actions reach every node: each node carries them
//! out for the people connected to it, as it does their own changes.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use super::{Flavour, Hub, SEED_SOCKETS, SocketRef, outbox};
use crate::cluster::{LinkState, Op};
use crate::events;
use crate::metrics::COUNTERS;
use crate::rooms::{Media, PersonId};
use crate::validate::{self, ApiError, ErrorCode};

/// Why the server took someone out, as the pushes say.
pub(super) const BY_ADMIN: &str = "admin";

/// The whole cluster as this node knows it.
#[derive(Debug, Serialize)]
pub struct AdminState {
    /// Moves whenever anyone's presence does: the admin panel waits for it to move.
    pub version: u64,
    /// The node answering.
    pub node: String,
    pub redis: &'static str,
    /// Sockets connected to the node answering.
    pub connections: u64,
    pub nodes: Vec<NodeSummary>,
    pub rooms: Vec<AdminRoom>,
}

#[derive(Debug, Serialize)]
pub struct NodeSummary {
    pub id: String,
    #[serde(rename = "self")]
    pub is_self: bool,
    /// Its people in at least one room.
    pub people: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminRoom {
    pub name: Arc<str>,
    pub unlisted: bool,
    pub count: usize,
    pub in_call: usize,
    pub participants: Vec<AdminParticipant>,
}

#[derive(Debug, Serialize)]
pub struct AdminParticipant {
    pub id: PersonId,
    pub nickname: Arc<str>,
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<Media>,
    /// Their media through this node's media server: tracks, layers, bitrate, loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::sfu::ParticipantStats>,
}

impl Hub {
    /// Whether datagrams from `remote` come through a TURN relay: one of the built-in server's
    /// open relay ports, or else the address a `--turn-urls` URL names.
    fn relayed(&self, remote: SocketAddr) -> bool {
        match &self.turn_relays {
            Some(relays) => relays.holds(remote),
            None => crate::ice::turn_server_ips(&self.config).any(|ip| ip == remote.ip().to_canonical()),
        }
    }

    /// Every open room, its people, their media and node.
    pub fn admin_state(&self) -> AdminState {
        let me = self.link.node();
        let nodes = self.nodes.lock();
        let rooms = self.rooms.lock();
        let node_of = |id: PersonId| nodes.owner(id).unwrap_or(me).to_owned();
        let open = rooms.open_rooms();
        let mut own_people = 0;
        for id in rooms.ids() {
            if nodes.owner(id).is_none() && !rooms.rooms_of(id).is_empty() {
                own_people += 1;
            }
        }
        let mut summaries = vec![NodeSummary { id: me.to_owned(), is_self: true, people: own_people }];
        summaries.extend(nodes.list().into_iter().map(|(id, people)| NodeSummary { id, is_self: false, people }));
        AdminState {
            version: *self.presence.borrow(),
            node: me.to_owned(),
            redis: self.link_state(),
            connections: COUNTERS.sockets(),
            nodes: summaries,
            rooms: open
                .into_iter()
                .map(|room| {
                    let participants: Vec<AdminParticipant> = rooms
                        .participants(&room.name)
                        .into_iter()
                        .map(|p| AdminParticipant {
                            node: node_of(p.id),
                            media: p.call.and(self.media.as_ref()).and_then(|m| m.stats_of(p.id)).map(|mut media| {
                                if media.remote.is_some_and(|remote| self.relayed(remote)) {
                                    media.transport = Some("relay");
                                }
                                media
                            }),
                            id: p.id,
                            nickname: p.nickname,
                            call: p.call,
                        })
                        .collect();
                    AdminRoom {
                        in_call: participants.iter().filter(|p| p.call.is_some()).count(),
                        name: room.name,
                        unlisted: room.unlisted,
                        count: room.count,
                        participants,
                    }
                })
                .collect(),
        }
    }

    /// Waits until the state's version is not `seen` (at once if it is not already).
    pub async fn presence_changed(&self, seen: u64) {
        let mut rx = self.presence.subscribe();
        let _ = rx.wait_for(|v| *v != seen).await;
    }

    /// Closes a room everywhere: everyone in it is taken out (and out of its call) and told why.
    /// Returns how many people were in it.
    pub async fn close_room(&self, room: &str) -> Result<usize, ApiError> {
        let room = validate::room_name(room)?;
        let (count, remote) = {
            let nodes = self.nodes.lock();
            let people = self.rooms.lock().participants(&room);
            (people.len(), people.iter().filter(|p| nodes.owner(p.id).is_some()).count())
        };
        if count == 0 {
            return Err(ApiError::new(ErrorCode::NotFound, format!("no room {room:?} is open")));
        }
        // Half a closed room would be worse than none: those on other nodes would stay in it.
        if remote > 0 {
            self.reach_other_nodes(&format!("{remote} of the {count} people in {room:?} are on other nodes"))?;
        }
        self.link.publish_op(Op::CloseRoom { room: room.clone(), ended: false });
        self.close_room_here(&room, BY_ADMIN);
        Ok(count)
    }

    /// Takes this node's people out of a room (an administrator closed it, or a host ended its
    /// meeting: `reason`).
    pub(super) fn close_room_here(&self, room: &str, reason: &'static str) {
        let own: Vec<PersonId> = {
            let nodes = self.nodes.lock();
            let rooms = self.rooms.lock();
            rooms.participants(room).into_iter().map(|p| p.id).filter(|id| nodes.owner(*id).is_none()).collect()
        };
        tracing::info!(room, people = own.len(), reason, "a room closed");
        for s in own.into_iter().filter_map(|id| self.socket_of(id)) {
            self.take_out(&s, room, reason);
        }
    }

    /// Takes a socket out of a room as if it had left, and tells it why once it is out (so that
    /// nothing of the room reaches it after the notice).
    pub(super) fn take_out(&self, s: &SocketRef, room: &str, reason: &'static str) {
        let flavour = flavour_of(s);
        let closed = self.with_rooms(|r, told| {
            self.leave_room(r, told, s, flavour, room)?;
            if flavour == Flavour::Noom {
                let (s, notice) = (s.clone(), serde_json::json!({ "room": room, "reason": reason }));
                told.queue(room, move || outbox::push(&s, events::noom::ROOM_CLOSED, &notice));
            }
            Some(())
        });
        if closed.is_some() && flavour == Flavour::Noom {
            self.back_to_lobby(s);
        }
    }

    /// Disconnects someone, wherever they are connected; returns their node.
    pub fn kick(&self, id: &str) -> Result<String, ApiError> {
        let not_found = || ApiError::new(ErrorCode::NotFound, format!("nobody has the id {id:?}"));
        let id: PersonId = id.parse().map_err(|_| not_found())?;
        let owner = self.nodes.lock().owner(id).map(str::to_owned);
        match owner {
            Some(node) => {
                self.reach_other_nodes(&format!("{id} is on node {node}"))?;
                self.link.publish_op(Op::Kick { id });
                Ok(node)
            }
            None if self.socket_of(id).is_some() => {
                self.kick_here(id);
                Ok(self.link.node().to_owned())
            }
            None => Err(not_found()),
        }
    }

    /// Fails when ops cannot reach the other nodes now (their people would not be acted on, yet
    /// the answer would say they were).
    fn reach_other_nodes(&self, whom: &str) -> Result<(), ApiError> {
        match self.link.state() {
            LinkState::Down => Err(ApiError::new(
                ErrorCode::ClusterUnavailable,
                format!("{whom}, and the link to the other nodes (Redis) is down: try again once it is back"),
            )),
            LinkState::Up | LinkState::Off => Ok(()),
        }
    }

    /// Disconnects a socket of this node, telling it why first: a page told so does not
    /// reconnect by itself.
    pub(super) fn kick_here(&self, id: PersonId) {
        let Some(s) = self.socket_of(id) else { return };
        tracing::info!(%id, "an administrator disconnected someone");
        outbox::push(&s, events::noom::SERVER_DISCONNECTED, &serde_json::json!({ "reason": BY_ADMIN }));
        let _ = s.disconnect();
    }
}

fn flavour_of(s: &SocketRef) -> Flavour {
    if s.rooms().iter().any(|r| r == SEED_SOCKETS) { Flavour::Seed } else { Flavour::Noom }
}
