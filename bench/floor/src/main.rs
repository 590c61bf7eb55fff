//! The benchmark's floor: the least a server has to do to put the seed's chat frames on the wire.
//!
//! It speaks just enough Engine.IO v4 and Socket.IO v5 over WebSocket for the seed's chat:
//! the open packet, the namespace CONNECT, pings, `enter_room` (ack, `welcome` to the others),
//! `new_message` (ack, the line to the others, serialised once and shared by every recipient),
//! `bye` on disconnect and a `room_change` to everyone when the set of room names changed, at
//! most every 250 ms, as Noom does. No validation, no limits, no history, no long-polling: what
//! Noom costs beyond this is what its features and its framework cost.
//!
//!   noom-floor [--host 127.0.0.1] [--port 0]
//!   noom-floor --media-relay [--host 127.0.0.1]
//!
//! Prints `floor listening on http://ADDR`. With `--media-relay` it is the media benchmark's
//! floor instead (`media_relay.rs`), and prints `… listening on udp://ADDR`. One thread: pinned to one core, as the benchmark
//! runs it, a multi-threaded runtime would only add synchronisation.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const PING_INTERVAL: Duration = Duration::from_secs(25);
const ROOM_CHANGE_INTERVAL: Duration = Duration::from_millis(250);
/// Frames written before one flush: enough to batch a burst, few enough to keep reading.
const WRITE_BATCH: usize = 64;

type Tx = mpsc::UnboundedSender<Utf8Bytes>;

struct Conn {
    tx: Tx,
    nickname: Rc<str>,
    rooms: Vec<Rc<str>>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Conn>,
    /// Each room's members with their senders, so that a fan-out touches nothing else.
    rooms: HashMap<Rc<str>, Vec<(u64, Tx)>>,
    names_changed: bool,
    publisher: Rc<Notify>,
}

type Shared = Rc<RefCell<State>>;

mod media_relay;

fn main() -> std::io::Result<()> {
    let mut host = "127.0.0.1".to_string();
    let mut port = 0u16;
    let mut relay = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--media-relay" {
            relay = true;
            continue;
        }
        let value = args.next();
        match (arg.as_str(), value) {
            ("--host", Some(v)) => host = v,
            ("--port", Some(v)) => port = v.parse().map_err(|_| bad_arg("--port needs a number"))?,
            _ => return Err(bad_arg("usage: noom-floor [--media-relay] [--host ADDR] [--port N]")),
        }
    }
    if relay {
        return media_relay::run(&host);
    }
    let addr: SocketAddr = format!("{host}:{port}").parse().map_err(|_| bad_arg("bad --host"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(addr))
}

fn bad_arg(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_string())
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("floor listening on http://{}", listener.local_addr()?);
    let state: Shared = Rc::default();
    tokio::task::spawn_local(publish_room_changes(state.clone()));
    let mut next_id = 0u64;
    loop {
        let (tcp, _) = listener.accept().await?;
        next_id += 1;
        tokio::task::spawn_local(connection(state.clone(), tcp, next_id));
    }
}

fn frame(event_and_args: &impl serde::Serialize) -> Utf8Bytes {
    let mut text = String::from("42");
    text.push_str(&serde_json::to_string(event_and_args).unwrap_or_default());
    Utf8Bytes::from(text)
}

async fn connection(state: Shared, tcp: TcpStream, id: u64) {
    let _ = tcp.set_nodelay(true);
    // Clients send little; a small read buffer keeps an idle connection small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else { return };
    let sid = format!("floor{id:015}");
    let open = format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":{},"pingTimeout":20000,"maxPayload":1000000}}"#,
        PING_INTERVAL.as_millis()
    );
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    state.borrow_mut().conns.insert(id, Conn { tx, nickname: Rc::from("Anon"), rooms: Vec::new() });
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let sent = match handle(&state, id, &sid, &text) {
                        Some(Reply::Frame(reply)) => ws.send(Message::Text(reply)).await,
                        Some(Reply::Close) => break,
                        None => Ok(()),
                    };
                    if sent.is_err() { break }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            Some(out) = rx.recv() => {
                if ws.feed(Message::Text(out)).await.is_err() { break }
                let mut batched = 1;
                while batched < WRITE_BATCH {
                    let Ok(out) = rx.try_recv() else { break };
                    if ws.feed(Message::Text(out)).await.is_err() { break }
                    batched += 1;
                }
                if ws.flush().await.is_err() { break }
            }
            _ = ping.tick() => if ws.send(Message::text("2")).await.is_err() { break },
        }
    }
    leave_all(&state, id);
}

enum Reply {
    Frame(Utf8Bytes),
    Close,
}

/// Handles one Engine.IO packet; what goes back to the sender alone is returned.
fn handle(state: &Shared, id: u64, sid: &str, text: &str) -> Option<Reply> {
    let Some(packet) = text.strip_prefix('4') else {
        // "3" (pong) and anything else of Engine.IO needs no answer here; "1" is a close.
        return if text == "1" { Some(Reply::Close) } else { None };
    };
    match packet.as_bytes().first()? {
        b'0' => Some(Reply::Frame(Utf8Bytes::from(format!(r#"40{{"sid":"{sid}"}}"#)))),
        b'1' => Some(Reply::Close),
        b'2' => {
            let body = &packet[1..];
            let digits = body.bytes().take_while(u8::is_ascii_digit).count();
            let (ack, array) = body.split_at(digits);
            let args: Vec<String> = serde_json::from_str(array).ok()?;
            let done = (!ack.is_empty()).then(|| Reply::Frame(Utf8Bytes::from(format!("43{ack}[]"))));
            match args.first().map(String::as_str) {
                Some("new_message") if args.len() >= 3 => {
                    post(state, id, &args[1], &args[2]);
                    done
                }
                Some("enter_room") if args.len() >= 2 => {
                    enter(state, id, &args[1]);
                    done
                }
                Some("nickname") if args.len() >= 2 => {
                    if let Some(conn) = state.borrow_mut().conns.get_mut(&id) {
                        conn.nickname = Rc::from(args[1].as_str());
                    }
                    done
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn enter(state: &Shared, id: u64, room: &str) {
    let mut guard = state.borrow_mut();
    let st = &mut *guard;
    let Some(conn) = st.conns.get_mut(&id) else { return };
    if conn.rooms.iter().any(|r| &**r == room) {
        return;
    }
    let key: Rc<str> = match st.rooms.get_key_value(room) {
        Some((key, _)) => key.clone(),
        None => {
            st.names_changed = true;
            st.publisher.notify_one();
            Rc::from(room)
        }
    };
    conn.rooms.push(key.clone());
    let nickname = conn.nickname.clone();
    let members = st.rooms.entry(key).or_default();
    members.push((id, conn.tx.clone()));
    let welcome = frame(&("welcome", &*nickname, members.len()));
    for (other, tx) in members.iter() {
        if *other != id {
            let _ = tx.send(welcome.clone());
        }
    }
}

fn post(state: &Shared, id: u64, text: &str, room: &str) {
    let st = state.borrow();
    let Some(conn) = st.conns.get(&id) else { return };
    let Some(members) = st.rooms.get(room) else { return };
    if !conn.rooms.iter().any(|r| &**r == room) {
        return;
    }
    let line = frame(&("new_message", format!("{}: {text}", conn.nickname)));
    for (other, tx) in members {
        if *other != id {
            let _ = tx.send(line.clone());
        }
    }
}

fn leave_all(state: &Shared, id: u64) {
    let mut guard = state.borrow_mut();
    let st = &mut *guard;
    let Some(conn) = st.conns.remove(&id) else { return };
    for room in conn.rooms {
        let Some(members) = st.rooms.get_mut(&room) else { continue };
        members.retain(|(other, _)| *other != id);
        if members.is_empty() {
            st.rooms.remove(&room);
            st.names_changed = true;
            st.publisher.notify_one();
            continue;
        }
        let bye = frame(&("bye", &*conn.nickname, members.len()));
        for (_, tx) in members.iter() {
            let _ = tx.send(bye.clone());
        }
    }
}

/// Sends everyone the room names when they changed: the first change at once, then at most one
/// push per interval carrying all that changed meanwhile.
async fn publish_room_changes(state: Shared) {
    let publisher = state.borrow().publisher.clone();
    let mut last: BTreeSet<Rc<str>> = BTreeSet::new();
    loop {
        publisher.notified().await;
        {
            let mut st = state.borrow_mut();
            if !std::mem::take(&mut st.names_changed) {
                continue;
            }
            let names: BTreeSet<Rc<str>> = st.rooms.keys().cloned().collect();
            if names == last {
                continue;
            }
            let list: Vec<&str> = names.iter().map(|n| &**n).collect();
            let push = frame(&("room_change", list));
            for conn in st.conns.values() {
                let _ = conn.tx.send(push.clone());
            }
            last = names;
        }
        tokio::time::sleep(ROOM_CHANGE_INTERVAL).await;
    }
}
