//! Calls through the media server: starting it, the signalling between a browser and it
//! (`sfu:join`, `sfu:answer`, `sfu:view`), and what its calls' media tells the room (offers,
//! speakers, connections lost).
//!
//! Presence stays where it is: who is in a call, with what media, is the room state's
//! (`call:join` and the others in `call`). The media server only carries the media of those the
//! room state has in the call, and drops anyone the moment the room state no longer does (see
//! [`Hub::tell`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};

use serde::Serialize;
use serde_json::Map;
use tokio::sync::mpsc;

use super::{AckSender, EventDef, EventKind, Hub, Session, SocketRef, outbox, refuse, reply};
use crate::cluster::{MediaRequest, Op};
use crate::config::{Calls, Config};
use crate::events;
use crate::rooms::{CallChange, PersonId};
use crate::sfu::{MediaAddresses, MediaEvent, MediaServer};

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: events::noom::SFU_JOIN, kind: EventKind::NoomSignal },
    EventDef { name: events::noom::SFU_ANSWER, kind: EventKind::NoomSignal },
    EventDef { name: events::noom::SFU_VIEW, kind: EventKind::NoomSignal },
];

/// Starts the media server, unless calls are to be a mesh; a server that cannot bind its port
/// runs the mesh, and says so.
pub(super) async fn start(
    config: &Config,
    http_port: u16,
    node: &str,
) -> Option<(Arc<MediaServer>, mpsc::UnboundedReceiver<MediaEvent>)> {
    if config.calls == Calls::Mesh {
        return None;
    }
    let port = config.media_port.unwrap_or(http_port);
    let ips = crate::ice::public_addresses(config);
    // Media over TCP comes to the web port, for networks that drop UDP.
    let addresses = MediaAddresses {
        udp: ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
        tcp: ips.iter().map(|ip| SocketAddr::new(*ip, http_port)).collect(),
    };
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    // Only in a cluster do calls span nodes.
    let cascading = (config.cascade && config.redis_url.is_some()).then_some(node);
    match MediaServer::bind_cascading(bind, addresses, config.all_voices_up_to.into(), cascading).await {
        Ok(started) => {
            let advertised: Vec<String> = ips.iter().map(ToString::to_string).collect();
            println!(
                "noom media on udp port {port} (and tcp port {http_port}, the web port's), reached at {}{}",
                advertised.join(", "),
                if cascading.is_some() { "; calls span nodes (cascading)" } else { "" }
            );
            Some(started)
        }
        Err(e) => {
            println!("noom: cannot bind the media port udp {bind} ({e}): calls are browser to browser (a mesh)");
            tracing::warn!(%bind, "media port unavailable: {e}");
            None
        }
    }
}

#[derive(Serialize)]
struct Sdp {
    sdp: String,
}

#[derive(Serialize)]
struct Offered<'a> {
    room: &'a str,
    sdp: &'a str,
}

#[derive(Serialize)]
struct Speaking<'a> {
    room: &'a str,
    speakers: &'a [PersonId],
}

#[derive(Serialize)]
struct Layers<'a> {
    room: &'a str,
    active: &'a [String],
}

#[derive(Serialize)]
struct Closed<'a> {
    room: &'a str,
}

impl Hub {
    /// Calls whose media goes through this node's media server now.
    pub fn media_calls(&self) -> usize {
        self.media.as_ref().map_or(0, |media| media.calls())
    }

    /// The media server, which takes the web port's media connections over TCP.
    pub fn media_server(&self) -> Option<Arc<MediaServer>> {
        self.media.clone()
    }

    /// Whether calls go through the media server.
    pub(super) fn calls_via_media_server(&self) -> bool {
        self.media.is_some()
    }
}

pub(super) async fn join(
    hub: Arc<Hub>,
    session: Arc<Session>,
    s: SocketRef,
    (room, sdp, tiles): (String, String, Option<Vec<(String, u32)>>),
    ack: AckSender,
) {
    let tiles = tiles.map(known_tiles);
    let result = async {
        let answer = hub.ask_media(&s, &room, MediaRequest::Join { sdp, tiles }).await?.unwrap_or_default();
        // The server's answer is large: what a browser that stops reading is made to hold.
        session.spend_bulk(&hub, answer.len())?;
        Ok(Sdp { sdp: answer })
    };
    match result.await {
        Ok(answer) => reply(ack, &answer),
        Err(e) => refuse(ack, &e),
    }
}

pub(super) async fn answer(hub: Arc<Hub>, s: SocketRef, (room, sdp): (String, String), ack: AckSender) {
    match hub.ask_media(&s, &room, MediaRequest::Answer { sdp }).await {
        Ok(_) => reply(ack, &Map::new()),
        Err(e) => refuse(ack, &e),
    }
}

pub(super) async fn view(
    hub: Arc<Hub>,
    s: SocketRef,
    (room, tiles, people): (String, Vec<(String, u32)>, Vec<String>),
    ack: AckSender,
) {
    let tiles = known_tiles(tiles);
    let people: Vec<PersonId> = people.iter().filter_map(|id| id.parse().ok()).collect();
    match hub.ask_media(&s, &room, MediaRequest::View { tiles: tiles.clone() }).await {
        Ok(_) => {
            hub.shows(&s, &room, &tiles, &people);
            reply(ack, &Map::new());
        }
        Err(e) => refuse(ack, &e),
    }
}

/// The tiles of a view by person: an id that names nobody shows nobody.
fn known_tiles(tiles: Vec<(String, u32)>) -> Vec<(PersonId, u32)> {
    tiles.into_iter().filter_map(|(id, height)| Some((id.parse().ok()?, height))).collect()
}

/// Delivers what the calls' media tells: to each browser its offers, to those in a call who
/// speaks, and to one whose connection was lost that it is out of the call (as everyone else
/// is told). Some may be connected to other nodes.
pub(super) async fn relay_events(hub: Weak<Hub>, mut events: mpsc::UnboundedReceiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        match event {
            MediaEvent::Offer { room, to, sdp } => {
                hub.send_to(to, events::noom::SFU_OFFER, &Offered { room: &room, sdp: &sdp }).await;
            }
            MediaEvent::Speakers { room, speakers, listeners } => {
                let event = Speaking { room: &room, speakers: &speakers };
                hub.send_to_all(&listeners, events::noom::SFU_SPEAKERS, &event).await;
            }
            MediaEvent::Layers { room, to, active } => {
                hub.send_to(to, events::noom::SFU_LAYERS, &Layers { room: &room, active: &active }).await;
            }
            MediaEvent::Gone { room, id } => match hub.socket_of(id) {
                Some(s) => lost(&hub, &s, &room).await,
                None => hub.link.publish_op(Op::MediaLost { id, room: room.to_string() }),
            },
        }
    }
}

/// The media server lost the connection of `s`, of this node: out of the call they go.
pub(super) async fn lost(hub: &Hub, s: &SocketRef, room: &str) {
    let id = super::person(s);
    let left = hub.change_call(s, room, false, |rooms, _| {
        let me = rooms.leave_call(id, room)?;
        Ok((CallChange { me, changed: true }, Box::new(|| {})))
    });
    if left.await.is_ok() {
        outbox::push(s, events::noom::SFU_CLOSED, &Closed { room });
    }
}
