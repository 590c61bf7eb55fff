//! Many Noom nodes, one set of rooms.
//!
//! Nodes share a Redis (7 or later). Two things cross it, on one connection per node so that
//! everything a node publishes arrives everywhere in the order it was published:
//! - Socket.IO broadcasts and targeted messages, through the socketioxide-redis adapter, whose
//!   driver is our [`Link`];
//! - Noom's replication of room state: each node owns the people connected to it, applies their
//!   changes at once, and publishes each as an [`Op`]. Every node applies the others' ops, in
//!   order, to its copy of the rooms, before the broadcasts published after them are delivered.
//!
//! Liveness has no central record: a node heartbeats, a node not heard from for
//! [`MEDIA_NODE_TIMEOUT`] is quiet and carries no call any more, and one not heard from for
//! [`NODE_TIMEOUT`] is gone, its people with it. A node whose link comes (back) up says
//! [`Op::Hello`], everyone answers with a [`Op::Snapshot`] of what it owns, and the copies
//! converge. The only state kept in Redis itself is who holds a place in each call, so that the
//! call size limit is one decision for the whole cluster, and which node's media server carries
//! each call, so that a call's media meets in one place.

mod link;
mod nodes;

pub use link::{Link, LinkState, Replica};
pub use nodes::Nodes;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rooms::{Ask, ChatMessage, Media, PersonId, Waiter};
use crate::validate::ErrorCode;

/// Channels and keys in Redis, the adapter's included, are named under this prefix.
pub const PREFIX: &str = "noom";
/// The version of what nodes say to each other (the ops, the keys, the adapter's messages): it
/// moves with any change to them, and the CHANGELOG says so. Nodes of another version are not
/// heard: a cluster runs one version (docs/operating.md, "Upgrading").
pub const PROTOCOL: u32 = 4;
/// How often a node says it is alive: six times within [`MEDIA_NODE_TIMEOUT`], so that only a
/// node stalled or dead, never a heartbeat late on a busy machine, is judged quiet.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// A node not heard from for this long is gone: its people leave every room.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// A node not heard from for this long carries no call any more: each moves to a live node.
/// Far shorter than [`NODE_TIMEOUT`]: video frozen for seconds is worse than a call moved in
/// vain, which costs its people a second of video, while people taken out of a room in vain
/// lose their place in it.
pub const MEDIA_NODE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A change a node made to the people it owns, or a message about the node itself.
///
/// Every op is idempotent: a node's snapshot may already contain the effect of an op that
/// follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// This node's link came up: every other node answers with its snapshot.
    Hello,
    /// This node is alive.
    Heartbeat,
    /// Everything this node owns; replaces what others knew of it.
    Snapshot { people: Vec<PersonState>, history: Vec<ChatMessage> },
    /// Someone entered a room. `resume` is their page's [`resume_key`], if it sent a token.
    Enter {
        id: PersonId,
        nickname: String,
        room: String,
        unlisted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// They host the room (they opened it).
        #[serde(default)]
        host: bool,
    },
    /// Someone left a room.
    Leave { id: PersonId, room: String },
    /// Someone disconnected: they left all their rooms.
    Disconnect { id: PersonId },
    /// Someone changed their nickname.
    Rename { id: PersonId, nickname: String },
    /// Someone joined a room's call or changed their media (`Some`), or left it (`None`).
    Call { id: PersonId, room: String, media: Option<Media> },
    /// A message was posted: for the room's history.
    Chat { message: ChatMessage },
    /// An administrator closed a room, or a host ended its meeting (`ended`): each node takes its
    /// people out of it.
    CloseRoom {
        room: String,
        #[serde(default)]
        ended: bool,
    },
    /// A host made someone a host of a room, or took it back.
    Host { room: String, id: PersonId, host: bool },
    /// A host locked a room, or unlocked it.
    Lock { room: String, locked: bool },
    /// Someone raised their hand (`Some(when)`, milliseconds since the epoch) or lowered it.
    Hand { room: String, id: PersonId, raised: Option<u64> },
    /// A host muted someone, or asked them to unmute (`muted: false`).
    Mute { room: String, id: PersonId, muted: bool },
    /// A host asks something of someone: their node tells them.
    Ask { room: String, id: PersonId, ask: Ask },
    /// A host removed someone from a room: their node takes them out; with `bar`, every node
    /// keeps them out while the room is open.
    Remove { room: String, id: PersonId, bar: bool },
    /// A host turned the room's waiting room on or off (off: everyone waiting is let in).
    WaitingRoom { room: String, on: bool },
    /// Someone of the sending node waits to enter a room.
    Wait { room: String, waiter: Waiter },
    /// A host let in someone waiting (`admit`), or turned them away: their node tells them.
    Admit { room: String, id: PersonId, admit: bool },
    /// Someone of the sending node waits no more (they gave up, or waited too long).
    Unwait { room: String, id: PersonId },
    /// A host set the room's password (its hash), or took it away.
    Password { room: String, hash: Option<String> },
    /// The room was opened with a host key: its hash.
    HostKey { room: String, hash: String },
    /// An administrator disconnects someone: their node does it.
    Kick { id: PersonId },
    /// A page connected again with its resume token: its old connection, wherever it is, is dead.
    Resumed { token: String },
    /// A browser of the sending node asks `node`'s media server, which carries `room`'s call.
    /// `ask` numbers the question for its answer ([`Op::MediaAnswer`]); `None` wants none.
    MediaAsk { node: String, ask: Option<u64>, id: PersonId, room: String, request: MediaRequest },
    /// The answer to `node`'s question `ask`: a session description for a join, or why not.
    MediaAnswer { node: String, ask: u64, result: Result<Option<String>, (ErrorCode, String)> },
    /// The media server carrying `room`'s call lost `id`'s connection: their node takes them out
    /// of the call.
    MediaLost { id: PersonId, room: String },
    /// `room`'s call is carried by `to`'s media server from now on: whoever's media goes
    /// anywhere else connects again.
    MediaMoved { room: String, to: String },
    /// Where this node's media server takes other nodes' connections, and the key they give
    /// (calls spanning nodes, `--cascade`): said every second, as a heartbeat is.
    MediaRelay { address: std::net::SocketAddr, key: String },
    /// This node shuts down: its people are gone now.
    Gone,
}

/// What a browser asks of its call's media server (`sfu:join`, `sfu:answer`, `sfu:view`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaRequest {
    /// Its offer, and the tiles it shows if it said; the server's answer comes back.
    Join {
        sdp: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tiles: Option<Vec<(PersonId, u32)>>,
    },
    /// Its answer to the server's offer.
    Answer { sdp: String },
    /// The height of each tile it shows.
    View { tiles: Vec<(PersonId, u32)> },
}

/// One person a node owns, as its snapshot carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonState {
    pub id: PersonId,
    pub nickname: String,
    /// Their page's [`resume_key`], if it sent a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// The rooms they are in, in order of entry.
    pub rooms: Vec<RoomPresence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomPresence {
    pub name: String,
    pub unlisted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Media>,
    /// Of someone in the call: when it began, as the sending node knows it (milliseconds since
    /// the epoch), so that a node that hears of the call from this snapshot shows the call's age,
    /// not the snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_since: Option<u64>,
    #[serde(default)]
    pub host: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
    #[serde(default)]
    pub muted: bool,
    /// The room is locked.
    #[serde(default)]
    pub locked: bool,
    /// The room has a waiting room.
    #[serde(default)]
    pub waiting_room: bool,
    /// The hash of the room's password, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The hash of the room's host key, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

/// What other nodes know of a page's resume token: enough to match it when the page comes back
/// elsewhere ([`Op::Resumed`]), not the token itself.
pub fn resume_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// An op as it crosses Redis: who sent it, in which version of the protocol, and what.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub from: String,
    /// [`PROTOCOL`] of the sender; none from nodes older than this field.
    #[serde(default)]
    pub v: u32,
    #[serde(flatten)]
    pub op: Op,
}

impl Envelope {
    pub fn encode(from: &str, op: Op) -> Vec<u8> {
        serde_json::to_vec(&Envelope { from: from.to_owned(), v: PROTOCOL, op }).expect("ops serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_the_trip() {
        let id = PersonId::random();
        let ops = [
            Op::Hello,
            Op::Enter { id, nickname: "Ann".into(), room: "r".into(), unlisted: true, resume: None, host: true },
            Op::Enter {
                id,
                nickname: "Ann".into(),
                room: "r".into(),
                unlisted: false,
                resume: Some(resume_key("t")),
                host: false,
            },
            Op::Call { id, room: "r".into(), media: Some(Media { audio: true, video: false, screen: false }) },
            Op::Call { id, room: "r".into(), media: None },
            Op::CloseRoom { room: "r".into(), ended: true },
            Op::Host { room: "r".into(), id, host: true },
            Op::Lock { room: "r".into(), locked: true },
            Op::Hand { room: "r".into(), id, raised: Some(1_700_000_000_000) },
            Op::Hand { room: "r".into(), id, raised: None },
            Op::Mute { room: "r".into(), id, muted: true },
            Op::Ask { room: "r".into(), id, ask: crate::rooms::Ask::StopScreen },
            Op::Remove { room: "r".into(), id, bar: true },
            Op::WaitingRoom { room: "r".into(), on: true },
            Op::Wait { room: "r".into(), waiter: Waiter { id, nickname: "Cy".into(), since: 9 } },
            Op::Admit { room: "r".into(), id, admit: false },
            Op::Unwait { room: "r".into(), id },
            Op::HostKey { room: "r".into(), hash: "0123abcd".into() },
            Op::Password { room: "r".into(), hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()) },
            Op::Kick { id },
            Op::MediaAsk {
                node: "node-b".into(),
                ask: Some(7),
                id,
                room: "r".into(),
                request: MediaRequest::View { tiles: vec![(id, 360)] },
            },
            Op::MediaAsk {
                node: "node-b".into(),
                ask: None,
                id,
                room: "r".into(),
                request: MediaRequest::Join { sdp: "v=0".into(), tiles: None },
            },
            Op::MediaAnswer { node: "node-a".into(), ask: 7, result: Ok(Some("v=0".into())) },
            Op::MediaAnswer { node: "node-a".into(), ask: 8, result: Err((ErrorCode::NotInCall, "no".into())) },
            Op::MediaLost { id, room: "r".into() },
            Op::MediaMoved { room: "r".into(), to: "node-b".into() },
            Op::Snapshot {
                people: vec![PersonState {
                    id,
                    nickname: "Ann".into(),
                    resume: Some(resume_key("t")),
                    rooms: vec![RoomPresence {
                        name: "r".into(),
                        unlisted: false,
                        call: Some(Media { audio: true, video: true, screen: false }),
                        call_since: Some(1_700_000_000_000),
                        host: true,
                        hand: Some(5),
                        muted: true,
                        locked: true,
                        waiting_room: true,
                        password: None,
                        host_key: Some("0123abcd".into()),
                    }],
                }],
                history: vec![],
            },
            Op::Gone,
        ];
        for op in ops {
            let bytes = Envelope::encode("node-a", op.clone());
            let back = Envelope::decode(&bytes).unwrap();
            assert_eq!(back.from, "node-a");
            assert_eq!(back.op, op);
        }
    }

    #[test]
    fn a_resume_key_matches_its_token_only_and_does_not_show_it() {
        assert_eq!(resume_key("page-token"), resume_key("page-token"));
        assert_ne!(resume_key("page-token"), resume_key("page-tokem"));
        assert_eq!(resume_key("page-token").len(), 32);
        assert!(!resume_key("page-token").contains("page"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"{}", b"{\"from\":1}", b"{\"from\":\"a\",\"op\":\"nope\"}", b"\xff"] {
            assert!(Envelope::decode(bytes).is_err());
        }
    }
}
