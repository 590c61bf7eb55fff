//! One simulated user: a Socket.IO v5 client over a WebSocket (Engine.IO v4), written by hand so
//! that a whole crowd fits on one core with room to spare.
//!
//! A user connects, answers the open packet with a namespace CONNECT, enters its room (if it has
//! one) with an acknowledged `enter_room`, then sends `new_message` when told to and counts what
//! it receives. Chat lines carry their send time (monotonic nanoseconds of this process) as the
//! message text, so latency is read straight off each delivery. Everything runs on one thread:
//! counters are plain cells shared by every user.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Nanoseconds since this process first asked: one clock for sending and receiving.
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub struct Target {
    pub addr: SocketAddr,
    pub url: String,
}

impl Target {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, url: format!("ws://{addr}/socket.io/?EIO=4&transport=websocket") }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Enters its room and stays, chatting when told.
    Member,
    /// Stays in the lobby (no room), watching the room list: the seed's `room_change`, or, from
    /// Noom, its own lobby's `directory` (it asks for Noom's protocol, which the others ignore).
    Watcher,
    /// Enters its room, stays for the given time, and leaves by disconnecting.
    Churner(Duration),
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

/// What the crowd saw. Windows are set by the scenario: only messages sent inside the current
/// window count towards its latencies and its delivery check.
#[derive(Default)]
pub struct Stats {
    pub live: Cell<u64>,
    pub ready: Cell<u64>,
    pub failed: Cell<u64>,
    /// Connections the server closed, or that broke, while the user meant to stay.
    pub lost: Cell<u64>,
    pub deliveries: Cell<u64>,
    pub window_start: Cell<u64>,
    pub window_end: Cell<u64>,
    pub window_deliveries: Cell<u64>,
    pub latencies_us: RefCell<Vec<u32>>,
    pub acks: Cell<u64>,
    pub ack_errors: Cell<u64>,
    /// Entries (acknowledged `enter_room`) and their latency from the start of the TCP connect,
    /// for users started inside the window.
    pub joins: Cell<u64>,
    pub join_latencies_us: RefCell<Vec<u32>>,
    /// Room-list pushes (`room_change` or `directory`) that reached watchers, and their size.
    pub watcher_room_changes: Cell<u64>,
    pub watcher_room_change_bytes: Cell<u64>,
    pub room_changes: Cell<u64>,
    pub welcomes: Cell<u64>,
    pub byes: Cell<u64>,
    pub other_frames: Cell<u64>,
}

impl Stats {
    pub fn open_window(&self) {
        self.window_start.set(now_ns());
        self.window_end.set(u64::MAX);
        self.window_deliveries.set(0);
        self.latencies_us.borrow_mut().clear();
        self.join_latencies_us.borrow_mut().clear();
    }

    pub fn close_window(&self) {
        self.window_end.set(now_ns());
    }

    fn in_window(&self, ns: u64) -> bool {
        ns >= self.window_start.get() && ns < self.window_end.get()
    }
}

/// The driver's handle on a user: dropping it makes the user disconnect.
pub struct User {
    chat: mpsc::UnboundedSender<u64>,
}

impl User {
    /// Sends one chat line to the user's room, stamped `sent_ns`.
    pub fn chat(&self, sent_ns: u64) {
        let _ = self.chat.send(sent_ns);
    }
}

pub fn spawn(target: &Rc<Target>, room: Option<Rc<str>>, role: Role, stats: &Rc<Stats>) -> User {
    let (chat, orders) = mpsc::unbounded_channel();
    let (target, stats) = (target.clone(), stats.clone());
    tokio::task::spawn_local(async move {
        add(&stats.live, 1);
        run(&target, room, role, &stats, orders).await;
        stats.live.set(stats.live.get() - 1);
    });
    User { chat }
}

/// A WebSocket to the server's Socket.IO endpoint, before the Engine.IO open packet.
pub async fn open(target: &Target) -> Option<WebSocketStream<TcpStream>> {
    let tcp = TcpStream::connect(target.addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    // tungstenite zeroes the free part of its read buffer before every read: 4 KiB holds
    // a hundred chat lines and keeps that cheap.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::client_async_with_config(target.url.as_str(), tcp, Some(config)).await.ok()?;
    Some(ws)
}

#[derive(PartialEq, Eq)]
enum Phase {
    Opening,
    Connecting,
    Joining,
    Ready,
}

/// Lines written before one flush: a burst of orders goes out in few writes.
const WRITE_BATCH: usize = 64;

async fn run(
    target: &Target,
    room: Option<Rc<str>>,
    role: Role,
    stats: &Stats,
    mut orders: mpsc::UnboundedReceiver<u64>,
) {
    let started = now_ns();
    let Some(mut ws) = open(target).await else {
        add(&stats.failed, 1);
        return;
    };
    let mut phase = Phase::Opening;
    let mut next_ack = 0u64;
    let room_name = room.as_deref().unwrap_or("");
    let mut line = String::with_capacity(64);
    let leave = tokio::time::sleep(Duration::MAX);
    tokio::pin!(leave);
    let mut leaving = false;
    loop {
        tokio::select! {
            () = &mut leave, if leaving => {
                let _ = ws.close(None).await;
                return;
            }
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        add(if phase == Phase::Ready { &stats.lost } else { &stats.failed }, 1);
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                let reply = match on_frame(&text, &mut phase, role, stats) {
                    Step::Nothing => continue,
                    Step::Pong => "3".to_string(),
                    Step::Connect if role == Role::Watcher => r#"40{"protocol":"noom/1"}"#.to_string(),
                    Step::Connect => "40".to_string(),
                    Step::Enter => {
                        next_ack += 1;
                        format!(r#"42{next_ack}["enter_room",{}]"#, json_string(room_name))
                    }
                    Step::Joined => {
                        add(&stats.ready, 1);
                        add(&stats.joins, 1);
                        if stats.in_window(started) {
                            stats.join_latencies_us.borrow_mut().push(((now_ns() - started) / 1000) as u32);
                        }
                        if let Role::Churner(stay) = role {
                            leave.as_mut().reset(tokio::time::Instant::now() + stay);
                            leaving = true;
                        }
                        continue;
                    }
                    Step::Watching => {
                        add(&stats.ready, 1);
                        continue;
                    }
                    Step::Gone => {
                        add(&stats.lost, 1);
                        return;
                    }
                };
                if ws.send(Message::text(reply)).await.is_err() {
                    add(&stats.lost, 1);
                    return;
                }
            }
            // A churner's driver lets go of it at once; it leaves on its own.
            order = orders.recv(), if !matches!(role, Role::Churner(_)) => {
                let Some(sent) = order else {
                    let _ = ws.close(None).await;
                    return;
                };
                let mut batch = Some(sent);
                let mut written = 0;
                while let Some(sent) = batch {
                    next_ack += 1;
                    line.clear();
                    let _ = write!(line, r#"42{next_ack}["new_message","{sent}",{}]"#, json_string(room_name));
                    if ws.feed(Message::text(line.as_str())).await.is_err() {
                        add(&stats.lost, 1);
                        return;
                    }
                    written += 1;
                    batch = if written < WRITE_BATCH { orders.try_recv().ok() } else { None };
                }
                if ws.flush().await.is_err() {
                    add(&stats.lost, 1);
                    return;
                }
            }
        }
    }
}

enum Step {
    Nothing,
    Pong,
    Connect,
    Enter,
    Joined,
    Watching,
    Gone,
}

const NEW_MESSAGE: &str = r#"42["new_message",""#;

fn on_frame(text: &str, phase: &mut Phase, role: Role, stats: &Stats) -> Step {
    if let Some(rest) = text.strip_prefix(NEW_MESSAGE) {
        add(&stats.deliveries, 1);
        // "<nickname>: <sent ns>" as a JSON string; the nickname is the server's "Anon".
        if let Some(sent) = rest.rfind(": ").and_then(|i| leading_number(&rest[i + 2..]))
            && stats.in_window(sent)
        {
            add(&stats.window_deliveries, 1);
            let latency_us = (now_ns().saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
            stats.latencies_us.borrow_mut().push(latency_us);
        }
        return Step::Nothing;
    }
    match text.as_bytes() {
        [b'2'] => Step::Pong,
        [b'0', ..] if *phase == Phase::Opening => {
            *phase = Phase::Connecting;
            Step::Connect
        }
        [b'4', b'0', ..] if *phase == Phase::Connecting => {
            if role == Role::Watcher {
                *phase = Phase::Ready;
                Step::Watching
            } else {
                *phase = Phase::Joining;
                Step::Enter
            }
        }
        [b'4', b'3', ..] => {
            if *phase == Phase::Joining {
                *phase = Phase::Ready;
                return Step::Joined;
            }
            add(&stats.acks, 1);
            if text.contains("error") {
                add(&stats.ack_errors, 1);
            }
            Step::Nothing
        }
        [b'4', b'2', ..] => {
            let room_change = text.starts_with(r#"42["room_change""#);
            if room_change || text.starts_with(r#"42["directory""#) {
                if room_change {
                    add(&stats.room_changes, 1);
                }
                if role == Role::Watcher {
                    add(&stats.watcher_room_changes, 1);
                    add(&stats.watcher_room_change_bytes, text.len() as u64);
                }
            } else if text.starts_with(r#"42["welcome""#) {
                add(&stats.welcomes, 1);
            } else if text.starts_with(r#"42["bye""#) {
                add(&stats.byes, 1);
            } else {
                add(&stats.other_frames, 1);
            }
            Step::Nothing
        }
        [b'4', b'1', ..] | [b'1', ..] => Step::Gone,
        _ => {
            add(&stats.other_frames, 1);
            Step::Nothing
        }
    }
}

fn leading_number(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    s[..digits].parse().ok()
}

pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_in_the_window_records_its_latency() {
        let stats = Stats::default();
        let sent = now_ns();
        stats.window_start.set(sent);
        stats.window_end.set(u64::MAX);
        let mut phase = Phase::Ready;
        let frame = format!(r#"42["new_message","Anon: {sent}"]"#);
        assert!(matches!(on_frame(&frame, &mut phase, Role::Member, &stats), Step::Nothing));
        assert_eq!(stats.deliveries.get(), 1);
        assert_eq!(stats.window_deliveries.get(), 1);
        assert_eq!(stats.latencies_us.borrow().len(), 1);
    }

    #[test]
    fn the_handshake_runs_open_connect_enter_ack() {
        let stats = Stats::default();
        let mut phase = Phase::Opening;
        let open = r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
        assert!(matches!(on_frame(open, &mut phase, Role::Member, &stats), Step::Connect));
        assert!(matches!(on_frame(r#"40{"sid":"y"}"#, &mut phase, Role::Member, &stats), Step::Enter));
        assert!(matches!(on_frame("431[]", &mut phase, Role::Member, &stats), Step::Joined));
        assert!(matches!(on_frame("2", &mut phase, Role::Member, &stats), Step::Pong));
        on_frame(r#"432[{"error":{"code":"rate_limited"}}]"#, &mut phase, Role::Member, &stats);
        assert_eq!((stats.acks.get(), stats.ack_errors.get()), (1, 1));
    }
}
