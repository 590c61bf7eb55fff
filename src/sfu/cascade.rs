//! The connections between nodes' media servers, for calls that span nodes (cascading): one TCP
//! connection per pair of nodes, whatever the calls, carrying the frames of [`super::relay`].
//!
//! A node reaches another at the address that node advertises through the cluster (its web port:
//! the connection's first byte, [`MAGIC`], tells it from HTTP, TLS and browsers' media), and
//! proves itself with the key advertised alongside, which only nodes of the cluster hear. Either
//! node dials when it has something for the other and no connection; should both dial at once,
//! the connection dialed by the node whose name sorts first is kept, by both. What went over the
//! other may be lost with it: each new connection is told to the media server ([`FromNode::Up`]),
//! whose calls then tell the node again what they had told it.
//!
//! Media is dropped, as the network would drop it, when a connection falls behind; control
//! messages never are (they are few, and each changes what the other node does).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, mpsc};

use super::relay::{self, Control, Frame, MAGIC};
use crate::metrics::COUNTERS;

/// Media frames waiting for one connection; more are dropped. Two seconds of a few cameras.
const MEDIA_QUEUE: usize = 4096;
/// How long a dial may take, and how long the dialed node waits for the dialer's hello.
const CONNECT_WITHIN: Duration = Duration::from_secs(3);
/// A connection that carried nothing this long (not even a keepalive) is dead.
const SILENT_AT_MOST: Duration = Duration::from_secs(6);
/// How often an idle connection says it is alive.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(2);

/// Where a node's media server is reached, and the key it takes, as the node advertises them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayAt {
    pub address: SocketAddr,
    pub key: String,
}

/// What the connections hand to the media server.
#[derive(Debug)]
pub enum FromNode {
    /// A connection to `node` is up: each call it shares with this one tells it its tracks.
    Up(Arc<str>),
    /// A frame from `node`.
    Frame(Arc<str>, Frame),
    /// The connection to `node` is gone: its people's tracks stop.
    Down(Arc<str>),
}

/// This node's connections to the others.
pub struct Cascade {
    node: Arc<str>,
    /// What a node dialing this one must say.
    key: String,
    /// Where each node is reached, as last heard.
    directory: Mutex<HashMap<Arc<str>, RelayAt>>,
    links: Mutex<HashMap<Arc<str>, Link>>,
    /// Bytes of media from and to each node, across its connections.
    traffic: Mutex<HashMap<Arc<str>, Arc<Traffic>>>,
    /// Nodes being dialed.
    dialing: Mutex<HashSet<Arc<str>>>,
    next_link: AtomicU64,
    events: mpsc::UnboundedSender<FromNode>,
}

#[derive(Clone)]
struct Link {
    id: u64,
    /// Dialed by the node whose name sorts first (see the module's text).
    dialed_by: Arc<str>,
    control: mpsc::UnboundedSender<Vec<u8>>,
    media: mpsc::Sender<Vec<u8>>,
    traffic: Arc<Traffic>,
    /// Ends it: it was replaced, or its node forgotten.
    closing: Arc<Notify>,
}

#[derive(Default)]
struct Traffic {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Cascade {
    pub fn new(node: &str) -> (Arc<Self>, mpsc::UnboundedReceiver<FromNode>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let key = format!("{:032x}", rand::random::<u128>());
        let cascade = Self {
            node: Arc::from(node),
            key,
            directory: Mutex::default(),
            links: Mutex::default(),
            traffic: Mutex::default(),
            dialing: Mutex::default(),
            next_link: AtomicU64::new(1),
            events,
        };
        (Arc::new(cascade), receiver)
    }

    /// What this node advertises, reached at `address`.
    pub fn advertised(&self, address: SocketAddr) -> RelayAt {
        RelayAt { address, key: self.key.clone() }
    }

    /// Where `node` is reached, as it advertised.
    pub fn heard(&self, node: &str, at: RelayAt) {
        if node != &*self.node {
            self.directory.lock().insert(Arc::from(node), at);
        }
    }

    /// `node` is gone from the cluster: its connection is dropped.
    pub fn forget(self: &Arc<Self>, node: &str) {
        self.directory.lock().remove(node);
        self.traffic.lock().remove(node);
        let mut links = self.links.lock();
        if let Some(link) = links.remove(node) {
            link.closing.notify_one();
            let _ = self.events.send(FromNode::Down(Arc::from(node)));
        }
    }

    /// Bytes of media from and to each other node: `(node, in, out)`.
    pub fn traffic(&self) -> Vec<(String, u64, u64)> {
        let traffic = self.traffic.lock();
        let mut all: Vec<_> = traffic
            .iter()
            .map(|(node, t)| {
                (node.to_string(), t.bytes_in.load(Ordering::Relaxed), t.bytes_out.load(Ordering::Relaxed))
            })
            .collect();
        all.sort_unstable();
        all
    }

    /// Connections up now.
    pub fn connections(&self) -> usize {
        self.links.lock().len()
    }

    /// Makes sure a connection to `node` is up or coming: dials it if not.
    pub fn ensure(self: &Arc<Self>, node: &str) {
        if node == &*self.node || self.links.lock().contains_key(node) {
            return;
        }
        let Some(at) = self.directory.lock().get(node).cloned() else { return };
        let node: Arc<str> = Arc::from(node);
        if !self.dialing.lock().insert(node.clone()) {
            return;
        }
        let cascade = self.clone();
        tokio::spawn(async move {
            cascade.clone().dial(node.clone(), at).await;
            cascade.dialing.lock().remove(&node);
        });
    }

    /// Dials `node`, and carries the connection until it ends.
    async fn dial(self: Arc<Self>, node: Arc<str>, at: RelayAt) {
        let dialed = tokio::time::timeout(CONNECT_WITHIN, tokio::net::TcpStream::connect(at.address)).await;
        let stream = match dialed {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return tracing::warn!(%node, address = %at.address, "cannot reach the node's media server: {e}");
            }
            Err(_) => return tracing::warn!(%node, address = %at.address, "the node's media server did not answer"),
        };
        let mut stream = stream;
        let _ = stream.set_nodelay(true);
        let hello = Control::Hello { node: self.node.to_string(), key: at.key, version: relay::VERSION };
        let mut first = vec![MAGIC];
        first.extend(Frame::Control(hello).encode());
        // The dialed node's hello back says it took this one's.
        let answered = tokio::time::timeout(CONNECT_WITHIN, async {
            stream.write_all(&first).await.ok()?;
            read_frame(&mut stream, &mut Vec::new()).await
        })
        .await;
        match answered {
            Ok(Some(Frame::Control(Control::Hello { node: answered, .. }))) if *answered == *node => {}
            _ => return tracing::warn!(%node, address = %at.address, "the node's media server refused this one"),
        }
        let dialed_by = self.node.clone();
        self.run(stream, node, dialed_by).await;
    }

    /// Sends a control message to `node`, dialing it first if need be; false if there is no
    /// connection yet (the call concerned tells it again once the connection is up).
    pub fn send_control(self: &Arc<Self>, node: &str, control: Control) -> bool {
        let link = self.links.lock().get(node).cloned();
        match link {
            Some(link) => link.control.send(Frame::Control(control).encode()).is_ok(),
            None => {
                self.ensure(node);
                false
            }
        }
    }

    /// Sends a media frame to `node`, or drops it if the connection is not up or falls behind.
    pub fn send_media(&self, node: &str, frame: &Frame) {
        let links = self.links.lock();
        let Some(link) = links.get(node) else { return };
        let bytes = frame.encode();
        let size = bytes.len();
        if link.media.try_send(bytes).is_ok() {
            COUNTERS.relay_out();
            link.traffic.bytes_out.fetch_add(size as u64, Ordering::Relaxed);
        } else {
            COUNTERS.relay_dropped();
        }
    }

    /// A connection whose first byte said it comes from another node: served once its hello
    /// names a node of the cluster with this node's key.
    pub fn serve<S>(self: &Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let cascade = self.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let mut magic = [0; 1];
            let mut buffer = Vec::new();
            let hello = tokio::time::timeout(CONNECT_WITHIN, async {
                stream.read_exact(&mut magic).await.ok()?;
                read_frame(&mut stream, &mut buffer).await
            })
            .await;
            let Ok(Some(Frame::Control(Control::Hello { node, key, version }))) = hello else {
                return tracing::warn!(%peer, "a media server connection without a hello: closed");
            };
            if key != cascade.key || version != relay::VERSION || magic[0] != MAGIC || *node == *cascade.node {
                return tracing::warn!(%peer, %node, "a media server connection refused: wrong key or version");
            }
            let node: Arc<str> = Arc::from(node.as_str());
            let hello = Control::Hello { node: cascade.node.to_string(), key: String::new(), version: relay::VERSION };
            if stream.write_all(&Frame::Control(hello).encode()).await.is_err() {
                return;
            }
            cascade.run(stream, node.clone(), node).await;
        });
    }

    /// Carries a connection to `node` until it ends: its frames to the media server, and what is
    /// sent to `node` to it.
    async fn run<S>(self: Arc<Self>, stream: S, node: Arc<str>, dialed_by: Arc<str>)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let (control, control_queue) = mpsc::unbounded_channel();
        let (media, media_queue) = mpsc::channel(MEDIA_QUEUE);
        let traffic = self.traffic.lock().entry(node.clone()).or_default().clone();
        let closing = Arc::new(Notify::new());
        let link = Link {
            id,
            dialed_by: dialed_by.clone(),
            control,
            media,
            traffic: traffic.clone(),
            closing: closing.clone(),
        };
        {
            let mut links = self.links.lock();
            // Two at once: the one dialed by the node whose name sorts first stays.
            if let Some(other) = links.get(&node)
                && other.dialed_by < dialed_by
            {
                return;
            }
            if let Some(replaced) = links.insert(node.clone(), link) {
                replaced.closing.notify_one();
            }
            // Told under the lock, so that the media server hears of connections coming and
            // going in the order they did (an old one's end after the new one's start would
            // stop the tracks the new one carries).
            let _ = self.events.send(FromNode::Up(node.clone()));
        }
        tracing::info!(%node, "media server connection to the node up");
        let (reader, writer) = tokio::io::split(stream);
        let writing = tokio::spawn(write(writer, control_queue, media_queue));
        tokio::select! {
            () = self.read(reader, &node, &traffic) => {}
            () = closing.notified() => {}
        }
        writing.abort();
        let mut links = self.links.lock();
        if links.get(&node).is_some_and(|link| link.id == id) {
            links.remove(&node);
            let _ = self.events.send(FromNode::Down(node.clone()));
            drop(links);
            tracing::warn!(%node, "media server connection to the node lost");
        }
    }

    async fn read<R: AsyncRead + Unpin>(&self, mut reader: R, node: &Arc<str>, traffic: &Traffic) {
        let mut buffer = Vec::new();
        loop {
            let frame = match tokio::time::timeout(SILENT_AT_MOST, read_frame(&mut reader, &mut buffer)).await {
                Ok(Some(frame)) => frame,
                Ok(None) | Err(_) => return,
            };
            match frame {
                Frame::Control(Control::Hello { .. } | Control::Keepalive) => {}
                Frame::Media(_) => {
                    COUNTERS.relay_in();
                    traffic.bytes_in.fetch_add(4 + buffer.len() as u64, Ordering::Relaxed);
                    let _ = self.events.send(FromNode::Frame(node.clone(), frame));
                }
                frame => {
                    let _ = self.events.send(FromNode::Frame(node.clone(), frame));
                }
            }
        }
    }
}

/// Reads the next frame (its body into `buffer`); `None` at the end, or at a malformed one.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, buffer: &mut Vec<u8>) -> Option<Frame> {
    let mut length = [0; 4];
    reader.read_exact(&mut length).await.ok()?;
    let length = u32::from_be_bytes(length) as usize;
    if length > relay::FRAME_AT_MOST {
        tracing::warn!(length, "a relay frame too long: the connection is closed");
        return None;
    }
    buffer.resize(length, 0);
    reader.read_exact(buffer).await.ok()?;
    match Frame::decode(buffer) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::warn!("{e}: the connection is closed");
            None
        }
    }
}

/// Writes what is queued for a connection, control messages first, and a keepalive when idle.
async fn write<W: AsyncWrite + Unpin>(
    writer: W,
    mut control: mpsc::UnboundedReceiver<Vec<u8>>,
    mut media: mpsc::Receiver<Vec<u8>>,
) {
    let mut writer = BufWriter::new(writer);
    let keepalive = Frame::Control(Control::Keepalive).encode();
    loop {
        if writer.flush().await.is_err() {
            return;
        }
        let bytes = tokio::select! {
            biased;
            bytes = control.recv() => bytes,
            bytes = media.recv() => bytes,
            () = tokio::time::sleep(KEEPALIVE_EVERY) => Some(keepalive.clone()),
        };
        let Some(bytes) = bytes else { return };
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
        // What else is queued goes in the same write.
        while let Ok(bytes) = control.try_recv().or_else(|_| media.try_recv()) {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A node's cascade, taking connections on a port of its own as the web port would.
    async fn node(name: &str) -> (Arc<Cascade>, mpsc::UnboundedReceiver<FromNode>, RelayAt) {
        let (cascade, events) = Cascade::new(name);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = cascade.advertised(listener.local_addr().unwrap());
        let serving = cascade.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let mut first = [0; 1];
                if stream.peek(&mut first).await.is_ok() && first[0] == MAGIC {
                    serving.serve(stream, peer);
                }
            }
        });
        (cascade, events, at)
    }

    async fn next(events: &mut mpsc::UnboundedReceiver<FromNode>) -> FromNode {
        tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("an event in time").unwrap()
    }

    fn left(call: &str) -> Control {
        Control::Left { call: call.into() }
    }

    #[tokio::test]
    async fn a_node_dials_another_once_and_what_it_sends_arrives_in_order() {
        let (a, mut a_events, a_at) = node("a").await;
        let (b, mut b_events, b_at) = node("b").await;
        a.heard("b", b_at);
        b.heard("a", a_at);

        assert!(!a.send_control("b", left("first")), "no connection yet: nothing sent, one dialed");
        assert!(matches!(next(&mut a_events).await, FromNode::Up(node) if &*node == "b"));
        assert!(matches!(next(&mut b_events).await, FromNode::Up(node) if &*node == "a"));
        for call in ["one", "two"] {
            assert!(a.send_control("b", left(call)));
        }
        for call in ["one", "two"] {
            match next(&mut b_events).await {
                FromNode::Frame(node, Frame::Control(control)) => {
                    assert_eq!(&*node, "a");
                    assert_eq!(control, left(call));
                }
                other => panic!("expected {call}, got {other:?}"),
            }
        }
        // The other way, over the same connection: b dials nothing.
        assert!(b.send_control("a", left("back")));
        assert!(matches!(next(&mut a_events).await, FromNode::Frame(_, Frame::Control(c)) if c == left("back")));
        assert_eq!((a.connections(), b.connections()), (1, 1));

        let media = relay::Media {
            call: "one".into(),
            owner: crate::rooms::PersonId::from_bytes([1; 16]),
            mid: str0m::media::Mid::from("0"),
            rid: None,
            packet: relay::Packet { sequence: 7, payload: vec![1; 100].into(), ..relay::Packet::default() },
        };
        a.send_media("b", &Frame::Media(media.clone()));
        assert!(matches!(next(&mut b_events).await, FromNode::Frame(_, Frame::Media(m)) if m == media));
        let size = Frame::Media(media).encode().len() as u64;
        assert_eq!(a.traffic(), [("b".to_owned(), 0, size)]);
        assert_eq!(b.traffic(), [("a".to_owned(), size, 0)]);

        b.forget("a");
        assert!(matches!(next(&mut b_events).await, FromNode::Down(node) if &*node == "a"));
        assert!(matches!(next(&mut a_events).await, FromNode::Down(node) if &*node == "b"), "a sees it gone");
    }

    /// Whatever the order the two connections come up and go in, one stays, carrying both ways,
    /// and each node hears last that it is up: its calls then tell the other what they need
    /// again, and no word of the closed one's end stops what the kept one carries.
    #[tokio::test]
    async fn two_nodes_dialing_each_other_at_once_keep_one_connection_and_each_hears_last_that_it_is_up() {
        for _ in 0..20 {
            let (a, mut a_events, a_at) = node("a").await;
            let (b, mut b_events, b_at) = node("b").await;
            a.heard("b", b_at);
            b.heard("a", a_at);
            a.ensure("b");
            b.ensure("a");
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!((a.connections(), b.connections()), (1, 1));
            for events in [&mut a_events, &mut b_events] {
                let mut last = None;
                while let Ok(event) = events.try_recv() {
                    last = Some(event);
                }
                assert!(matches!(last, Some(FromNode::Up(_))), "the last event is the connection up: {last:?}");
            }
            assert!(a.send_control("b", left("x")));
            assert!(b.send_control("a", left("y")));
            assert!(matches!(next(&mut b_events).await, FromNode::Frame(_, Frame::Control(c)) if c == left("x")));
            assert!(matches!(next(&mut a_events).await, FromNode::Frame(_, Frame::Control(c)) if c == left("y")));
        }
    }

    #[tokio::test]
    async fn a_node_with_the_wrong_key_is_refused() {
        let (a, mut a_events, _) = node("a").await;
        let (b, mut b_events, b_at) = node("b").await;
        a.heard("b", RelayAt { key: "not b's".into(), ..b_at });
        a.ensure("b");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(a_events.try_recv().is_err() && b_events.try_recv().is_err(), "neither sees a connection");
        assert_eq!((a.connections(), b.connections()), (0, 0));
    }
}
