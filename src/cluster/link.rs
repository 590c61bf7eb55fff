//! The node's one connection to Redis: it reconnects by itself, publishes in order, and hands
//! what arrives to the socketioxide-redis adapter (as its [`Driver`]) or, for Noom's own ops, to
//! the [`Replica`], in arrival order.
//!
//! While the link is down nothing is queued: the node serves its own users alone, and the
//! snapshots exchanged when the link comes back make up for what was missed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use parking_lot::{Mutex, RwLock};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{Notify, mpsc};

use super::{Envelope, HEARTBEAT, MEDIA_NODE_TIMEOUT, NODE_TIMEOUT, Op, PREFIX, PROTOCOL};
use crate::rooms::PersonId;

/// Commands waiting to be written to Redis. Past this, Redis is not keeping up, and what does
/// not fit is dropped (cross-node delivery is best effort; the node's own users are not slowed).
const OUTBOX: usize = 65_536;
/// Commands sent to Redis in one write.
const BATCH: usize = 512;
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Below [`MEDIA_NODE_TIMEOUT`]: after Redis comes back, the nodes' links come up within this of
/// each other, so that none judges another quiet that is only still retrying.
const RETRY_MAX: Duration = Duration::from_secs(1);
/// A Redis that does not answer for this long is treated as gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a node does with the other nodes' ops; the link calls it in arrival order, from the
/// connection's own task, so it must not block.
pub trait Replica: Send + Sync + 'static {
    fn apply(self: Arc<Self>, from: &str, op: Op);
    /// Everything this node owns, as an [`Op::Snapshot`].
    fn snapshot(&self) -> Op;
    /// The places in calls this node's people hold: `(room, id)`.
    fn call_places(&self) -> Vec<(String, PersonId)>;
    /// Forgets the nodes not heard from for [`NODE_TIMEOUT`], and moves the calls of those not
    /// heard from for [`MEDIA_NODE_TIMEOUT`] (once the link has been up for as long).
    fn drop_silent(&self, now: Instant);
    /// The link is up again: the calls this node's media server carries are named in Redis
    /// again, or follow the node Redis names.
    fn keep_calls(self: Arc<Self>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No Redis configured: a node alone.
    Off,
    Down,
    Up,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Off => "off",
            LinkState::Down => "down",
            LinkState::Up => "up",
        }
    }
}

/// A cheap handle; clones share the connection.
#[derive(Clone)]
pub struct Link(Arc<Inner>);

struct Inner {
    node: String,
    client: Option<redis::Client>,
    state: AtomicU8,
    /// When the link last came up, while it is up.
    up_since: Mutex<Option<Instant>>,
    /// Nodes heard speaking another version of the protocol (said once each).
    other_versions: Mutex<std::collections::HashSet<String>>,
    outbox: mpsc::Sender<Cmd>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Cmd>>>,
    /// The adapter's channels and where their messages go.
    handlers: RwLock<HashMap<String, mpsc::Sender<ChanItem>>>,
    conn: Mutex<Option<MultiplexedConnection>>,
    replica: OnceLock<Arc<dyn Replica>>,
    lost: Notify,
    /// Messages to other nodes dropped because Redis did not keep up.
    dropped_out: Dropped,
    /// Messages from other nodes dropped because they came faster than they were delivered.
    dropped_in: Dropped,
}

/// Counts losses of one kind and says so in the log once, then at most every
/// [`Dropped::EVERY`] with how many since: a slow Redis drops thousands of messages a second,
/// and a line for each would bury everything else.
struct Dropped {
    what: &'static str,
    count: std::sync::atomic::AtomicU64,
    last_said: Mutex<Option<Instant>>,
}

impl Dropped {
    const EVERY: Duration = Duration::from_secs(10);

    const fn new(what: &'static str) -> Self {
        Self { what, count: std::sync::atomic::AtomicU64::new(0), last_said: Mutex::new(None) }
    }

    fn one(&self, now: Instant) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_said.lock();
        if last.is_none_or(|at| now.duration_since(at) >= Self::EVERY) {
            *last = Some(now);
            self.count.fetch_sub(count, Ordering::Relaxed);
            tracing::warn!(dropped = count, "{}", self.what);
        }
    }
}

/// Takes a place in a room's call if fewer than `ARGV[3]` live people hold one. Places of nodes
/// whose liveness key has expired are freed on the way, so a node that died leaves no ghosts.
const CLAIM_PLACE: &str = r"
local holders = redis.call('HGETALL', KEYS[1])
local live = 0
for i = 1, #holders, 2 do
  if redis.call('EXISTS', ARGV[4] .. holders[i + 1]) == 1 then
    live = live + 1
  else
    redis.call('HDEL', KEYS[1], holders[i])
  end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if live >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// The node whose media server carries a call: the one named, while it lives (its liveness key
/// is in Redis, or it is among `ARGV[4..]`, which the asker heard lately: a Redis that came back
/// empty has no liveness keys yet) and is not `ARGV[3]`, which the asker knows is quiet; else
/// the asker (`ARGV[1]`), which carries it from now on.
const MEDIA_NODE: &str = r"
local node = redis.call('GET', KEYS[1])
if node and node ~= ARGV[3] then
  if redis.call('EXISTS', ARGV[2] .. node) == 1 then return node end
  for i = 4, #ARGV do
    if ARGV[i] == node then return node end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// The node named as carrying a call, or `ARGV[1]` if none is: for a node that carries calls
/// while its link comes back up (to a Redis that may have lost them).
const KEEP_MEDIA: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

/// Frees a place in a call; a call left empty is carried by no node any more.
const RELEASE_PLACE: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
";

/// The channel of Noom's ops.
const STATE_CHANNEL: &str = "noom#state";

fn node_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}")
}

fn call_key(room: &str) -> String {
    format!("{PREFIX}:call:{room}")
}

fn media_key(room: &str) -> String {
    format!("{PREFIX}:media:{room}")
}

/// The URL with RESP3 asked for: pushes (pub/sub messages) share the connection with commands.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

impl Link {
    /// A link to the Redis at `url`, or none (a node alone); over TLS (`rediss://`), its
    /// certificate is checked against `ca` (a PEM file) if given, else against the system's
    /// trusted authorities. Connects once [`Link::start`]ed.
    pub fn new(name: &str, url: Option<&str>, ca: Option<&Path>) -> anyhow::Result<Link> {
        let client = url
            .map(|url| {
                let bad = || "--redis-url is not a Redis URL".to_owned();
                match ca {
                    None => redis::Client::open(resp3(url)).with_context(bad),
                    Some(ca) => {
                        let root_cert = std::fs::read(ca).with_context(|| format!("--redis-ca {}", ca.display()))?;
                        let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
                        redis::Client::build_with_tls(resp3(url), certificates).with_context(bad)
                    }
                }
            })
            .transpose()?;
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        let state = if client.is_some() { LinkState::Down } else { LinkState::Off };
        Ok(Link(Arc::new(Inner {
            // The name, and what makes this start of it unique.
            node: format!("{name}-{}", &socketioxide::socket::Sid::new().to_string()[..6]),
            client,
            state: AtomicU8::new(state as u8),
            up_since: Mutex::new(None),
            other_versions: Mutex::new(Default::default()),
            outbox,
            outbox_rx: Mutex::new(Some(outbox_rx)),
            handlers: RwLock::new(HashMap::new()),
            conn: Mutex::new(None),
            replica: OnceLock::new(),
            lost: Notify::new(),
            dropped_out: Dropped::new("Redis is not keeping up: messages to other nodes were dropped"),
            dropped_in: Dropped::new(
                "messages from other nodes are arriving faster than they are delivered: some were dropped",
            ),
        })))
    }

    /// This node's name in the cluster.
    pub fn node(&self) -> &str {
        &self.0.node
    }

    pub fn is_clustered(&self) -> bool {
        self.0.client.is_some()
    }

    pub fn state(&self) -> LinkState {
        match self.0.state.load(Ordering::Acquire) {
            s if s == LinkState::Up as u8 => LinkState::Up,
            s if s == LinkState::Down as u8 => LinkState::Down,
            _ => LinkState::Off,
        }
    }

    fn set_state(&self, state: LinkState) {
        self.0.state.store(state as u8, Ordering::Release);
        let mut up_since = self.0.up_since.lock();
        match state {
            LinkState::Up => *up_since = up_since.or(Some(Instant::now())),
            _ => *up_since = None,
        }
    }

    /// How long the link has been up at `now`; `None` while it is down (or off).
    pub fn up_for(&self, now: Instant) -> Option<Duration> {
        self.0.up_since.lock().map(|since| now.saturating_duration_since(since))
    }

    /// Connects, and keeps connecting, feeding `replica`; does nothing for a node alone.
    pub fn start(&self, replica: Arc<dyn Replica>) {
        let Some(client) = self.0.client.clone() else { return };
        if self.0.replica.set(replica.clone()).is_err() {
            return;
        }
        let outbox = self.0.outbox_rx.lock().take().expect("started once");
        tokio::spawn(self.clone().run(client, outbox));
        // Other nodes can go silent while this one's link is down too.
        tokio::spawn(async move {
            // Often enough that a call's media moves soon after its node falls quiet.
            let mut tick = tokio::time::interval(MEDIA_NODE_TIMEOUT / 8);
            loop {
                tick.tick().await;
                replica.drop_silent(Instant::now());
            }
        });
    }

    /// Queues a command if the link is up; drops it otherwise.
    fn send(&self, cmd: Cmd) {
        if self.state() == LinkState::Up && self.0.outbox.try_send(cmd).is_err() {
            self.0.dropped_out.one(Instant::now());
        }
    }

    /// Tells the other nodes of a change to this node's people.
    pub fn publish_op(&self, op: Op) {
        if self.is_clustered() {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(STATE_CHANNEL).arg(Envelope::encode(&self.0.node, op));
            self.send(cmd);
        }
    }

    /// Takes a place in `room`'s call for `id`, for the whole cluster: `Some(false)` if the call
    /// is full, `None` if Redis cannot decide now (the node then decides alone).
    pub async fn claim_call_place(&self, room: &str, id: PersonId, limit: usize) -> Option<bool> {
        if self.state() != LinkState::Up {
            return None;
        }
        let mut conn = self.0.conn.lock().clone()?;
        let script = redis::Script::new(CLAIM_PLACE);
        let mut invocation = script.key(call_key(room));
        invocation.arg(id.to_string()).arg(&self.0.node).arg(limit).arg(format!("{PREFIX}:node:"));
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(claimed) => Some(claimed == 1),
            Err(e) => {
                tracing::warn!("could not claim a call place in Redis: {e}");
                None
            }
        }
    }

    pub fn release_call_place(&self, room: &str, id: PersonId) {
        if self.is_clustered() {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RELEASE_PLACE).arg(2).arg(call_key(room)).arg(media_key(room)).arg(id.to_string());
            self.send(cmd);
        }
    }

    /// The node whose media server carries `room`'s call, for the whole cluster: `candidate` if no
    /// live node does yet, or only `gone`, which this node knows is quiet (Redis may not yet).
    /// `alive` are the nodes this one heard lately. `None` if Redis cannot say now (the node then
    /// carries it itself).
    pub async fn media_node(
        &self,
        room: &str,
        candidate: &str,
        gone: Option<&str>,
        alive: &[String],
    ) -> Option<String> {
        let script = redis::Script::new(MEDIA_NODE);
        let mut invocation = script.key(media_key(room));
        invocation.arg(candidate).arg(format!("{PREFIX}:node:")).arg(gone.unwrap_or_default()).arg(alive);
        self.invoke(&invocation).await
    }

    /// The node Redis names as carrying `room`'s call, this one if none is.
    pub async fn keep_media(&self, room: &str) -> Option<String> {
        let script = redis::Script::new(KEEP_MEDIA);
        let mut invocation = script.key(media_key(room));
        invocation.arg(&self.0.node);
        self.invoke(&invocation).await
    }

    /// Names `node` as carrying `room`'s call, after what was queued before.
    pub fn hand_media_to(&self, room: &str, node: &str) {
        if self.is_clustered() {
            let mut cmd = redis::cmd("SET");
            cmd.arg(media_key(room)).arg(node);
            self.send(cmd);
        }
    }

    /// Runs a script about which node carries a call.
    async fn invoke(&self, invocation: &redis::ScriptInvocation<'_>) -> Option<String> {
        if self.state() != LinkState::Up {
            return None;
        }
        let mut conn = self.0.conn.lock().clone()?;
        match invocation.invoke_async::<String>(&mut conn).await {
            Ok(node) => Some(node),
            Err(e) => {
                tracing::warn!("could not ask Redis which node carries a call's media: {e}");
                None
            }
        }
    }

    /// Tells the other nodes that this one's people are gone, for a clean shutdown, after what
    /// was queued before (for at most a second).
    pub async fn leave_cluster(&self) {
        if self.state() != LinkState::Up {
            return;
        }
        self.publish_op(Op::Gone);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(node_key(&self.0.node));
        self.send(cmd);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.0.outbox.capacity() < self.0.outbox.max_capacity() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The last batch was taken from the queue; let it be written.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn run(self, client: redis::Client, mut outbox: mpsc::Receiver<Cmd>) {
        let mut retry = RETRY_MIN;
        // Said once for each time Redis cannot be reached, not at every retry.
        let mut said_unreachable = false;
        loop {
            match self.session(&client, &mut outbox).await {
                Ok(()) => {}
                Err(e) if self.state() == LinkState::Up => {
                    tracing::warn!("Redis link lost: {e:#}; the other nodes are out of reach until it is back");
                    said_unreachable = true;
                }
                Err(e) if !said_unreachable => {
                    tracing::warn!("Redis unreachable: {e:#}; retrying every {RETRY_MAX:?} at most");
                    said_unreachable = true;
                }
                Err(e) => tracing::debug!("Redis still unreachable: {e:#}"),
            }
            if self.state() == LinkState::Up {
                retry = RETRY_MIN;
            }
            if self.state() == LinkState::Up {
                retry = RETRY_MIN;
            }
            self.set_state(LinkState::Down);
            *self.0.conn.lock() = None;
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// One connection, from connecting until it fails.
    async fn session(&self, client: &redis::Client, outbox: &mut mpsc::Receiver<Cmd>) -> anyhow::Result<()> {
        let link = self.clone();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(move |push: PushInfo| {
                link.receive(push);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.context("connecting")?;
        *self.0.conn.lock() = Some(conn.clone());
        conn.subscribe(STATE_CHANNEL).await.context("subscribing")?;
        let channels: Vec<String> = self.0.handlers.read().keys().cloned().collect();
        for channel in channels {
            conn.subscribe(channel).await.context("subscribing")?;
        }
        // Whatever waited from before the link went down is covered by the snapshot below.
        while outbox.try_recv().is_ok() {}
        self.set_state(LinkState::Up);
        tracing::info!(node = %self.0.node, "Redis link up");
        let replica = self.0.replica.get().expect("started with a replica");
        self.publish_op(Op::Hello);
        self.publish_op(replica.snapshot());
        for (room, id) in replica.call_places() {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(call_key(&room)).arg(id.to_string()).arg(&self.0.node);
            self.send(cmd);
        }
        replica.clone().keep_calls();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = self.0.lost.notified() => anyhow::bail!("connection closed"),
                _ = heartbeat.tick() => {
                    self.publish_op(Op::Heartbeat);
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(node_key(&self.0.node)).arg(1).arg("EX").arg(NODE_TIMEOUT.as_secs());
                    self.send(cmd);
                }
                first = outbox.recv() => {
                    let Some(first) = first else { return Ok(()) };
                    let mut pipe = redis::pipe();
                    pipe.add_command(first).ignore();
                    while pipe.len() < BATCH {
                        let Ok(cmd) = outbox.try_recv() else { break };
                        pipe.add_command(cmd).ignore();
                    }
                    pipe.query_async::<()>(&mut conn).await.context("writing")?;
                }
            }
        }
    }

    /// A push from Redis, in arrival order.
    fn receive(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else { return };
                let (Ok(channel), Ok(payload)) =
                    (String::from_redis_value(channel), Vec::<u8>::from_redis_value(payload))
                else {
                    return;
                };
                if channel == STATE_CHANNEL {
                    self.receive_op(&payload);
                } else if let Some(tx) = self.0.handlers.read().get(&channel)
                    && tx.try_send((channel, payload)).is_err()
                {
                    self.0.dropped_in.one(Instant::now());
                }
            }
            PushKind::Disconnection => self.0.lost.notify_one(),
            _ => {}
        }
    }

    fn receive_op(&self, payload: &[u8]) {
        match Envelope::decode(payload) {
            Ok(envelope) if envelope.from == self.0.node => {}
            Ok(envelope) if envelope.v != PROTOCOL => {
                // Said once a node: it heartbeats twice a second.
                if self.0.other_versions.lock().insert(envelope.from.clone()) {
                    tracing::error!(
                        node = envelope.from,
                        its_protocol = envelope.v,
                        our_protocol = PROTOCOL,
                        "a node of another version shares this Redis: it is not heard, and its people and this \
                         node's do not see each other; run one version in a cluster (docs/operating.md, \
                         \"Upgrading\")"
                    );
                }
            }
            Ok(envelope) => {
                if let Some(replica) = self.0.replica.get() {
                    replica.clone().apply(&envelope.from, envelope.op);
                }
            }
            Err(e) => tracing::warn!("an unreadable op from another node: {e}"),
        }
    }
}

impl Driver for Link {
    type Error = redis::RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(chan).arg(val);
        self.send(cmd);
        Ok(())
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, Self::Error> {
        // Bounded well above the adapter's default: a burst must not be dropped while it waits.
        let (tx, rx) = mpsc::channel(size.max(OUTBOX));
        self.0.handlers.write().insert(chan.clone(), tx);
        // A link that is up now subscribed before this handler existed.
        let conn = self.0.conn.lock().clone();
        if let Some(mut conn) = conn {
            conn.subscribe(chan).await?;
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.0.handlers.write().remove(&chan);
        let conn = self.0.conn.lock().clone();
        if let Some(mut conn) = conn {
            conn.unsubscribe(chan).await?;
        }
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let conn = self.0.conn.lock().clone();
        // With the link down no other node can be reached: a request that counts the answers it
        // awaits (the adapter's fetch of remote sockets) then waits for this node's alone, at once,
        // rather than for nodes that cannot answer until its timeout.
        let Some(mut conn) = conn else { return Ok(1) };
        let (_, count): (String, u16) = redis::cmd("PUBSUB").arg("NUMSUB").arg(chan).query_async(&mut conn).await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_told_once_then_counted_every_ten_seconds() {
        let dropped = Dropped::new("test");
        let start = Instant::now();
        dropped.one(start);
        assert_eq!(dropped.count.load(Ordering::Relaxed), 0, "the first is told at once");
        for i in 1..=1000 {
            dropped.one(start + Duration::from_millis(i));
        }
        assert_eq!(dropped.count.load(Ordering::Relaxed), 1000, "the next ones are counted, not told");
        dropped.one(start + Dropped::EVERY);
        assert_eq!(dropped.count.load(Ordering::Relaxed), 0, "then told with their count");
    }

    #[test]
    fn the_ops_channel_is_under_the_prefix() {
        assert_eq!(STATE_CHANNEL, format!("{PREFIX}#state"));
    }

    #[test]
    fn resp3_is_asked_for_once() {
        assert_eq!(resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(resp3("redis://h:1/2?x=1"), "redis://h:1/2?x=1&protocol=resp3");
        assert_eq!(resp3("redis://h:1?protocol=resp3"), "redis://h:1?protocol=resp3");
    }

    #[test]
    fn a_bad_url_names_the_option() {
        let e = Link::new("test", Some("http://nope"), None).err().unwrap();
        assert!(format!("{e:#}").contains("--redis-url"));
        assert_eq!(Link::new("test", None, None).unwrap().state(), LinkState::Off);
    }
}
