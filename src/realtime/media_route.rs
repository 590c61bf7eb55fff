//! Which media server carries a call, and the way to it from here.
//!
//! A call's media meets in one router, on one node: the first of the cluster to be asked for it
//! (Redis keeps which, see [`crate::cluster::Link::media_node`]). A browser connected to another
//! node sends its media straight to that node's UDP port; only its signalling comes through its
//! own node, which hands each request on as an [`Op::MediaAsk`] and waits for the
//! [`Op::MediaAnswer`]. What the router tells a browser of another node reaches it as any
//! targeted push does (its socket is in the adapter's room named by its person id); a connection
//! the router lost comes back to its node as [`Op::MediaLost`], which takes the person out of the
//! call as the room state owns them. When the media node itself falls quiet, its calls' people on
//! other nodes are told to connect again (`sfu:moved`): their next join makes a live node the
//! carrier, which says so to all ([`Op::MediaMoved`]), and they never leave the call. A node
//! shutting down hands its calls over the same way, and one whose link to Redis comes back names
//! itself again for the calls it carries.
//!
//! The ops travel on the one ordered channel of the cluster, so the media node hears of a
//! person joining a call before their first request, and of their leaving after their last.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{Hub, SocketRef, outbox, person};
use crate::cluster::{LinkState, MEDIA_NODE_TIMEOUT, MediaRequest, Op};
use crate::events;
use crate::rooms::PersonId;
use crate::sfu::{MediaError, MediaServer, RouterError};
use crate::validate::{ApiError, ErrorCode};

/// How long a browser's request waits for another node's media server before it is refused.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

type Answered = Result<Option<String>, ApiError>;

const MEDIA_NODE_GONE: &str = "the node carrying this call's media did not answer";

#[derive(serde::Serialize)]
struct Moved<'a> {
    room: &'a str,
}

/// The requests this node's people have in flight to other nodes' media servers, and which node
/// carries each of their calls when not this one. A leaf lock each: taken alone, or under the
/// hub's, and nothing is locked while they are held.
#[derive(Default)]
pub(super) struct MediaRoutes {
    next_ask: AtomicU64,
    /// Each request's node, and where its answer goes.
    asks: Mutex<HashMap<u64, (String, oneshot::Sender<Answered>)>>,
    elsewhere: Mutex<HashMap<(PersonId, String), String>>,
}

impl Hub {
    /// Does what `s`'s browser asks of the media server of `room`'s call, wherever it runs:
    /// a join finds (or makes this node) the call's media node; the rest follow the join.
    pub(super) async fn ask_media(&self, s: &SocketRef, room: &str, request: MediaRequest) -> Answered {
        let me = person(s);
        self.media_for(me, room)?;
        let key = (me, room.to_owned());
        let route = if self.cascading() {
            // Each person's media goes through their own node.
            None
        } else if matches!(request, MediaRequest::Join { .. }) {
            let node = self.carrier_of(room).await.filter(|node| node != self.link.node());
            match &node {
                Some(node) => self.routes.elsewhere.lock().insert(key, node.clone()),
                None => self.routes.elsewhere.lock().remove(&key),
            };
            node
        } else {
            self.routes.elsewhere.lock().get(&key).cloned()
        };
        let Some(node) = route else { return self.serve_media(me, room, request).await };
        let wants_answer = !matches!(request, MediaRequest::View { .. });
        let ask = wants_answer.then(|| self.routes.next_ask.fetch_add(1, Ordering::Relaxed));
        let answered = ask.map(|ask| {
            let (answer, answered) = oneshot::channel();
            self.routes.asks.lock().insert(ask, (node.clone(), answer));
            answered
        });
        self.link.publish_op(Op::MediaAsk { node, ask, id: me, room: room.to_owned(), request });
        let (Some(ask), Some(answered)) = (ask, answered) else { return Ok(None) };
        let answer = tokio::time::timeout(ASK_TIMEOUT, answered).await;
        self.routes.asks.lock().remove(&ask);
        answer
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| Err(ApiError::new(ErrorCode::ClusterUnavailable, MEDIA_NODE_GONE)))
    }

    /// The node whose media server carries `room`'s call, as Redis names it, or this one if none
    /// does; `None` if Redis cannot say now (this node then carries it). A node named there that
    /// this one has heard of, but not lately, is passed over: the call is this node's from now
    /// on, and every node is told so that whoever's media still goes elsewhere follows.
    async fn carrier_of(&self, room: &str) -> Option<String> {
        let now = Instant::now();
        let alive = self.nodes.lock().heard_lately(now, MEDIA_NODE_TIMEOUT);
        let candidate = self.carrier_for_new_call(&alive);
        let node = self.link.media_node(room, &candidate, None, &alive).await?;
        // A node never heard of has just started, or this one has: Redis knows better. So does
        // it while this node's own link has just come up, before anyone was heard again.
        let quiet = node != self.link.node()
            && !alive.contains(&node)
            && self.nodes.lock().knows(&node)
            && self.link.up_for(now).is_some_and(|up| up > MEDIA_NODE_TIMEOUT);
        if !quiet {
            return Some(node);
        }
        let carrier = self.link.media_node(room, &candidate, Some(&node), &alive).await?;
        if carrier == self.link.node() {
            tracing::warn!(%room, from = %node, "a call's media moves to this node: its node is quiet");
            self.link.publish_op(Op::MediaMoved { room: room.to_owned(), to: carrier.clone() });
        }
        Some(carrier)
    }

    /// The node to carry a call nobody carries yet: the node of whoever starts it (this one), unless
    /// this one is draining: then a live node, whichever, or this one if it is alone.
    fn carrier_for_new_call(&self, alive: &[String]) -> String {
        let me = self.link.node();
        if !self.is_draining() {
            return me.to_owned();
        }
        let others: Vec<&String> = alive.iter().filter(|node| *node != me).collect();
        match others.len() {
            0 => me.to_owned(),
            n => others[rand::random_range(0..n)].clone(),
        }
    }

    /// What this node's media server makes of a request from someone in `room`'s call, whichever
    /// node they are connected to.
    async fn serve_media(&self, id: PersonId, room: &str, request: MediaRequest) -> Answered {
        match request {
            MediaRequest::Join { sdp, tiles } => {
                let media = self.media_for(id, room)?;
                let answer = media.join(room, id, &sdp, tiles).await.map_err(media_error)?;
                // Taken out of the call while its offer was read: out of the media server too.
                if let Err(e) = self.media_for(id, room) {
                    media.leave(room, id);
                    return Err(e);
                }
                // Before its media can flow (its connection is not up yet).
                if self.rooms.lock().is_muted(id, room) {
                    media.silence(room, id, true);
                }
                self.keep_peers_of(room);
                Ok(Some(answer))
            }
            MediaRequest::Answer { sdp } => {
                self.media_for(id, room)?.answer(room, id, &sdp).await.map(|()| None).map_err(media_error)
            }
            MediaRequest::View { tiles } => self.serve_view(id, room, tiles).map(|()| None),
        }
    }

    /// What someone in `room`'s call shows, for this node's media server: it waits for nothing.
    fn serve_view(&self, id: PersonId, room: &str, tiles: Vec<(PersonId, u32)>) -> Result<(), ApiError> {
        self.media_for(id, room)?.show(room, id, tiles);
        Ok(())
    }

    /// This node's media server, for someone the room state has in `room`'s call.
    fn media_for(&self, id: PersonId, room: &str) -> Result<Arc<MediaServer>, ApiError> {
        let media = self.media.clone().ok_or_else(|| {
            ApiError::bad_request("calls on this server are browser to browser: there is no media server")
        })?;
        if self.rooms.lock().member(id, room).is_none_or(|m| m.call.is_none()) {
            return Err(ApiError::new(ErrorCode::NotInCall, format!("not in the call of room {room:?}")));
        }
        Ok(media)
    }

    /// Another node's browser asks this node's media server. Its node sends a join or an answer
    /// only once the one before is answered, so only views can be in flight together.
    pub(super) fn media_asked(
        self: Arc<Self>,
        from: &str,
        ask: Option<u64>,
        id: PersonId,
        room: String,
        request: MediaRequest,
    ) {
        // A view waits for nothing: applied at once, it stays in order with the asker's other
        // views and with a join or answer that follows it (which its node sends only after).
        if let MediaRequest::View { tiles } = request {
            let _ = self.serve_view(id, &room, tiles);
            return;
        }
        let from = from.to_owned();
        tokio::spawn(async move {
            let result = self.serve_media(id, &room, request).await;
            if let Some(ask) = ask {
                let result = result.map_err(|e| (e.code, e.message));
                self.link.publish_op(Op::MediaAnswer { node: from, ask, result });
            }
        });
    }

    /// Another node's media server answers a request of this node's.
    pub(super) fn media_answered(&self, ask: u64, result: Result<Option<String>, (ErrorCode, String)>) {
        if let Some((_, answer)) = self.routes.asks.lock().remove(&ask) {
            let _ = answer.send(result.map_err(|(code, message)| ApiError::new(code, message)));
        }
    }

    /// The node whose media server carried calls of this node's people is gone, or quiet, their
    /// media with it: they stay in those calls, and their browsers are told to connect again,
    /// which makes a live node the carrier.
    pub(super) fn media_node_gone(&self, node: &str) {
        self.relay_gone(node);
        let lost: Vec<(PersonId, String)> =
            self.routes.elsewhere.lock().extract_if(|_, carrier| carrier == node).map(|(key, _)| key).collect();
        if !lost.is_empty() {
            tracing::warn!(%node, people = lost.len(), "the node carrying calls of people here is quiet: they connect again");
        }
        // A request waiting for it would hold up its socket's next events, the new join among them.
        let waiting: Vec<oneshot::Sender<Answered>> =
            self.routes.asks.lock().extract_if(|_, (asked, _)| asked == node).map(|(_, (_, answer))| answer).collect();
        for answer in waiting {
            let _ = answer.send(Err(ApiError::new(ErrorCode::ClusterUnavailable, MEDIA_NODE_GONE)));
        }
        for (id, room) in lost {
            self.tell_moved(id, &room);
        }
    }

    /// `room`'s call is carried by `to` from now on: this node's people in it whose media goes
    /// anywhere else connect again, and this node's media server lets the call go.
    pub(super) fn media_moved(&self, room: &str, to: &str) {
        let mut moving: Vec<PersonId> = self
            .routes
            .elsewhere
            .lock()
            .extract_if(|(_, r), carrier| r == room && carrier != to)
            .map(|((id, _), _)| id)
            .collect();
        if let Some(media) = &self.media
            && to != self.link.node()
            && media.rooms().iter().any(|r| r == room)
        {
            let in_call = self.with_own_people(|rooms, own| {
                own.into_iter()
                    .filter(|id| rooms.member(*id, room).is_some_and(|m| m.call.is_some()))
                    .collect::<Vec<_>>()
            });
            let routed = self.routes.elsewhere.lock();
            let here: Vec<PersonId> =
                in_call.into_iter().filter(|id| !routed.contains_key(&(*id, room.to_owned()))).collect();
            drop(routed);
            moving.extend(here);
            media.close_call(room);
        }
        for id in moving {
            self.tell_moved(id, room);
        }
    }

    /// The link to Redis is up again: each call this node's media server carries is named as
    /// this node's again (a Redis that restarted lost the names), unless another node took it
    /// meanwhile, which its people here then follow.
    pub(super) async fn keep_calls(&self) {
        let Some(media) = self.media.as_ref().filter(|_| !self.cascading()) else { return };
        for room in media.rooms() {
            if let Some(carrier) = self.link.keep_media(&room).await
                && carrier != self.link.node()
            {
                self.media_moved(&room, &carrier);
            }
        }
    }

    /// At shutdown: each call this node's media server carries goes to the live node with most
    /// of its people, whose browsers connect to it while this node still forwards their media.
    /// A call whose people are all on this node is left: they come back through another node.
    pub(super) fn hand_over_calls(&self) {
        // Cascading, nobody else's media comes here: this node's people come back through
        // another node when their connections are cut, and their media with them.
        let Some(media) = self.media.as_ref().filter(|_| !self.cascading()) else { return };
        if self.link.state() != LinkState::Up {
            return;
        }
        let alive = self.nodes.lock().heard_lately(Instant::now(), MEDIA_NODE_TIMEOUT);
        for room in media.rooms() {
            let callers: Vec<PersonId> = {
                let rooms = self.rooms.lock();
                rooms.participants(&room).into_iter().filter(|p| p.call.is_some()).map(|p| p.id).collect()
            };
            let mut count: HashMap<&str, usize> = HashMap::new();
            let nodes = self.nodes.lock();
            for id in callers {
                if let Some(node) = nodes.owner(id).filter(|node| alive.iter().any(|a| a == node)) {
                    *count.entry(node).or_default() += 1;
                }
            }
            let Some(to) = count
                .into_iter()
                .max_by_key(|&(node, n)| (n, std::cmp::Reverse(node)))
                .map(|(node, _)| node.to_owned())
            else {
                continue;
            };
            drop(nodes);
            tracing::info!(%room, %to, "shutting down: the call's media moves to another node");
            self.link.hand_media_to(&room, &to);
            self.link.publish_op(Op::MediaMoved { room, to });
        }
    }

    /// Whether `node` carries the media of `id` (someone of this node) in `room`'s call.
    pub(super) fn media_carried_by(&self, id: PersonId, room: &str, node: &str) -> bool {
        self.routes.elsewhere.lock().get(&(id, room.to_owned())).is_some_and(|carrier| carrier == node)
    }

    fn tell_moved(&self, id: PersonId, room: &str) {
        if let Some(s) = self.socket_of(id) {
            outbox::push(&s, events::noom::SFU_MOVED, &Moved { room });
        }
    }

    /// Someone is out of `room`'s call, as the room state has it (every node hears): this node's
    /// media server stops carrying them, and this node forgets where it sent theirs.
    pub(super) fn left_media(&self, room: &str, id: PersonId) {
        self.routes.elsewhere.lock().remove(&(id, room.to_owned()));
        self.shows_nothing(room, id);
        if let Some(media) = &self.media {
            media.leave(room, id);
        }
    }
}

fn media_error(e: MediaError) -> ApiError {
    match e {
        MediaError::Sdp(why) | MediaError::Router(RouterError::Sdp(why)) => {
            ApiError::new(ErrorCode::InvalidSignal, format!("session description refused: {why}"))
        }
        MediaError::Router(RouterError::NotInCall) => {
            ApiError::new(ErrorCode::NotInCall, "not connected to the media server (sfu:join first)")
        }
        MediaError::Router(e) => ApiError::bad_request(e.to_string()),
    }
}
