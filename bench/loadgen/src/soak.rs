//! The soak: a few thousand simulated users joining rooms, chatting, calling, moving, leaving and
//! reconnecting against one Noom for a long time, while the server's memory, CPU time and own
//! gauges are sampled; then everyone goes, and the server must come back to holding nothing. A
//! server whose sockets, rooms and participants all return to zero, and whose memory and idle CPU
//! return to where they started, leaks no rooms, sockets, history or timers.
//!
//! Every user runs on its own random schedule (reproducible from `--seed`), one request at a time,
//! each answer checked. Memory the allocator keeps after a load is not a leak, but looks like one
//! on a single curve. Two things tell them apart: a second, shorter load in the same process
//! (kept memory is reused, a leak grows again), and, where gdb may attach to the server, glibc's
//! own account of its heap (`malloc_stats()`: how much of it is in use) and a `malloc_trim(0)` at
//! the end, which gives free memory back to the system.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Target, json_string};
use crate::report::thousands;
use crate::servers::{self, Server, own_cpu_s};

#[derive(clap::Args)]
pub struct Args {
    /// A short run (100 users, 20 s, a 5 s second load, 5 s cooldowns) that checks the soak still
    /// works; its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Simulated users [default: 3000; with --smoke 100].
    #[arg(long)]
    users: Option<usize>,
    /// How long the load runs, e.g. 90s or 10m [default: 10m; with --smoke 20s].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How long to keep sampling once everyone has gone [default: 60s; with --smoke 5s].
    #[arg(long, value_parser = parse_duration)]
    cooldown: Option<Duration>,
    /// A second load in the same process after the cooldown, then a cooldown again, to tell
    /// memory the allocator keeps for reuse from memory that grows; 0s for none [default: 2m;
    /// with --smoke 5s].
    #[arg(long, value_parser = parse_duration)]
    second_load: Option<Duration>,
    /// Idle time after start-up before the baseline is read [default: 5s; with --smoke 2s].
    #[arg(long, value_parser = parse_duration)]
    baseline: Option<Duration>,
    /// Time between two samples [default: 2s; with --smoke 1s].
    #[arg(long, value_parser = parse_duration)]
    sample_every: Option<Duration>,
    /// Do not ask glibc, through gdb, how much of the server's heap is in use, nor to give its
    /// free memory back at the end. --smoke never asks: gdb's call into the server interrupts a
    /// wait whose error a debug build asserts on, and it panics.
    #[arg(long)]
    no_malloc_stats: bool,
    /// Where soak.csv, soak.md and soak.svg go.
    #[arg(long, default_value = "bench/results/soak")]
    out: PathBuf,
    #[arg(long, default_value = "target/release/noom")]
    noom_bin: PathBuf,
    /// Seed of the users' schedules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    pub cores: crate::servers::Cores,
    /// The command line to print in the report (the script that called this).
    #[arg(long)]
    command_line: Option<String>,
}

/// Durations as `90s`, `10m`, `1h`, `500ms` or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration such as 90s or 10m"))?;
    let seconds = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(number * seconds))
}

/// What one run does, once `--smoke` and the flags given are settled.
struct Plan {
    users: usize,
    load: Duration,
    second_load: Duration,
    cooldown: Duration,
    baseline: Duration,
    sample_every: Duration,
    malloc_stats: bool,
}

impl Plan {
    fn of(args: &Args) -> Plan {
        let s = |seconds: u64| Duration::from_secs(seconds);
        let (users, load, second_load, cooldown, baseline, every) =
            if args.smoke { (100, s(20), s(5), s(5), s(2), s(1)) } else { (3000, s(600), s(120), s(60), s(5), s(2)) };
        Plan {
            users: args.users.unwrap_or(users),
            load: args.duration.unwrap_or(load),
            second_load: args.second_load.unwrap_or(second_load),
            cooldown: args.cooldown.unwrap_or(cooldown),
            baseline: args.baseline.unwrap_or(baseline),
            sample_every: args.sample_every.unwrap_or(every),
            malloc_stats: !args.smoke && !args.no_malloc_stats,
        }
    }
}

/// Short Engine.IO timeouts, so that a connection dropped without a word is found within 10 s
/// rather than 45: the cooldown then shows the server without it.
const PING_INTERVAL_S: u64 = 5;
const PING_TIMEOUT_S: u64 = 5;

/// The users' habits, as mean times of exponential waits. A user in a room acts every few
/// seconds, so chat stays far below the server's limit of 5 a second (burst 10) per socket.
const ACTION_EVERY_S: f64 = 3.0;
const SESSION_S: f64 = 60.0;
const OFFLINE_S: f64 = 10.0;
const LOBBY_S: f64 = 3.0;
/// Users per room of the pool, and one room in this many unlisted. The pool has a room for every
/// seven users, picked unevenly (see `pick_room`): the busiest hold about ten, the least
/// busy are often empty, so rooms open and close all the time.
const USERS_PER_ROOM: usize = 7;
const UNLISTED_EVERY: usize = 5;
/// How long an answer, or the handshake, may take before it counts as missing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Users come in over this much of the load's start (at most a tenth of it), not all at once.
const RAMP: Duration = Duration::from_secs(10);
/// Answers that a busy server gives by design: counted, not unexpected.
const EXPECTED_ERRORS: [&str; 2] = ["rate_limited", "call_full"];

/// A small xorshift generator: each user's own reproducible stream, without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 spreads nearby seeds (user numbers) apart and never gives the stuck zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// An exponential wait of the given mean: a user's next act, independent of the last.
    fn wait(&mut self, mean_s: f64) -> Duration {
        Duration::from_secs_f64(-mean_s * (1.0 - self.unit()).ln())
    }
}

/// What the generator saw, summed over every user.
#[derive(Default)]
struct Tally {
    /// User tasks still running, and of them the ones connected.
    users: Cell<u64>,
    online: Cell<u64>,
    connections: Cell<u64>,
    failed_connections: Cell<u64>,
    /// How sessions ended: a WebSocket close, the TCP connection dropped without one, the socket
    /// left open but silent (the server must find it by its ping timeout, or by the resume token
    /// of the user's next connection), or closed by the server or the network.
    clean: Cell<u64>,
    dropped: Cell<u64>,
    silent: Cell<u64>,
    lost: Cell<u64>,
    /// Silent sockets still held open.
    held: Cell<u64>,
    /// Answers by event: fine, or an error by code (`no_answer` when none came in time).
    answered: RefCell<BTreeMap<&'static str, u64>>,
    errors: RefCell<BTreeMap<(&'static str, String), u64>>,
    chat_received: Cell<u64>,
    pushes: Cell<u64>,
}

fn add(cell: &Cell<u64>, n: i64) {
    cell.set(cell.get().saturating_add_signed(n));
}

impl Tally {
    fn answer(&self, event: &'static str, error: Option<String>) {
        match error {
            None => *self.answered.borrow_mut().entry(event).or_default() += 1,
            Some(code) => *self.errors.borrow_mut().entry((event, code)).or_default() += 1,
        }
    }

    fn unexpected_errors(&self) -> u64 {
        self.errors
            .borrow()
            .iter()
            .filter(|((_, code), _)| !EXPECTED_ERRORS.contains(&code.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
}

/// What every user of a load shares: where to connect, what to count, the size of the room pool,
/// and the seed their schedules come from.
struct Crowd {
    target: Target,
    tally: Tally,
    rooms: usize,
    seed: u64,
}

/// What a user asks of the server; its answer, if not an error, changes where the user is.
#[derive(Clone, Copy)]
enum Request {
    Join(usize),
    Leave,
    Chat,
    CallJoin,
    CallMedia,
    CallLeave,
}

impl Request {
    fn event(self) -> &'static str {
        match self {
            Request::Join(_) => "room:join",
            Request::Leave => "room:leave",
            Request::Chat => "chat:send",
            Request::CallJoin => "call:join",
            Request::CallMedia => "call:media",
            Request::CallLeave => "call:leave",
        }
    }
}

/// How a session ended, which decides how the user comes back.
enum Ending {
    /// The user closed it; it comes back as a new page, with a new resume token.
    Clean,
    /// The connection went without a close (dropped, silent, by the server's doing) or never
    /// opened; the same page tries again, with its resume token.
    Broken,
    /// The load is over: the user closed and stays away.
    LoadOver,
}

/// The name of a room of the pool. An unlisted one ends as the server ends a new unlisted room's
/// name (ten letters and digits), which it keeps as asked: everyone who picks it shares it, as
/// people sharing its link would.
fn room_name(room: usize) -> String {
    if is_unlisted(room) { format!("soak-{room}-Unlisted00") } else { format!("soak-{room}") }
}

fn is_unlisted(room: usize) -> bool {
    room.is_multiple_of(UNLISTED_EVERY)
}

/// Lower rooms are likelier (the smaller of two uniform picks): a few busy rooms, a long tail of
/// quiet ones that empty and close.
fn pick_room(rng: &mut Rng, rooms: usize, not: Option<usize>) -> usize {
    loop {
        let room = rng.below(rooms).min(rng.below(rooms));
        if Some(room) != not || rooms == 1 {
            return room;
        }
    }
}

/// One user from its first connection to the end of the load.
async fn live(crowd: Rc<Crowd>, id: usize, end: Instant) {
    let tally = &crowd.tally;
    add(&tally.users, 1);
    let mut rng = Rng::new(crowd.seed ^ (id as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let nickname = format!("user-{id}");
    let mut page = 0u32;
    let ramp = RAMP.min(end.saturating_duration_since(Instant::now()) / 10);
    tokio::time::sleep(ramp.mul_f64(rng.unit())).await;
    while Instant::now() < end {
        let resume = format!("{:x}-{id}-{page}", crowd.seed);
        match session(&crowd, &mut rng, &nickname, &resume, end).await {
            Ending::Clean => page += 1,
            Ending::Broken => {}
            Ending::LoadOver => break,
        }
        let back = Instant::now() + rng.wait(OFFLINE_S);
        tokio::time::sleep_until(back.min(end).into()).await;
    }
    add(&tally.users, -1);
}

type Socket = WebSocketStream<TcpStream>;

/// One connection: the handshake, then requests on the user's schedule until the session's
/// time is up, ended in one of the ways a real one ends.
async fn session(crowd: &Rc<Crowd>, rng: &mut Rng, nickname: &str, resume: &str, end: Instant) -> Ending {
    let tally = &crowd.tally;
    let Some(mut ws) = client::open(&crowd.target).await else {
        add(&tally.failed_connections, 1);
        return Ending::Broken;
    };
    let leave_at = (Instant::now() + rng.wait(SESSION_S)).min(end);
    // Until connected, the wake-up is the handshake's deadline.
    let mut next = Instant::now() + ANSWER_TIMEOUT;
    let mut connected = false;
    let mut room: Option<usize> = None;
    let mut in_call = false;
    let mut pending: Option<(u64, Request)> = None;
    let mut ack = 0u64;
    // Whatever breaks the connection before the server let the user in, the connection failed.
    let broken = |connected: bool| if connected { &tally.lost } else { &tally.failed_connections };
    let ending = loop {
        tokio::select! {
            () = tokio::time::sleep_until(next.min(if connected && pending.is_none() { leave_at } else { end }).into()) => {
                let now = Instant::now();
                if now >= end {
                    close(ws).await;
                    break Ending::LoadOver;
                }
                if !connected {
                    add(&tally.failed_connections, 1);
                    return Ending::Broken;
                }
                if let Some((_, request)) = pending.take() {
                    tally.answer(request.event(), Some("no_answer".into()));
                    next = now + rng.wait(ACTION_EVERY_S);
                    continue;
                }
                if now >= leave_at {
                    break end_session(ws, rng, crowd, end).await;
                }
                let request = match room {
                    None => Request::Join(pick_room(rng, crowd.rooms, None)),
                    Some(current) => choose(rng, current, in_call, crowd.rooms),
                };
                ack += 1;
                let frame = request_frame(request, ack, room, nickname, rng);
                if ws.send(Message::text(frame)).await.is_err() {
                    add(&tally.lost, 1);
                    break Ending::Broken;
                }
                pending = Some((ack, request));
                next = now + ANSWER_TIMEOUT;
            }
            incoming = ws.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        add(broken(connected), 1);
                        break Ending::Broken;
                    }
                    Some(Ok(_)) => continue,
                };
                let reply = match text.as_bytes() {
                    [b'2'] => Some("3".to_string()),
                    [b'0', ..] if !connected => {
                        Some(format!(r#"40{{"protocol":"noom/1","resume":{}}}"#, json_string(resume)))
                    }
                    [b'4', b'0', ..] if !connected => {
                        connected = true;
                        add(&tally.connections, 1);
                        add(&tally.online, 1);
                        next = Instant::now() + rng.wait(LOBBY_S);
                        None
                    }
                    [b'4', b'3', ..] => {
                        let Some((id, request)) = pending else { continue };
                        if let Some((answered, error)) = parse_answer(&text[2..])
                            && answered == id
                        {
                            pending = None;
                            tally.answer(request.event(), error.clone());
                            if error.is_none() {
                                match request {
                                    Request::Join(r) => (room, in_call) = (Some(r), false),
                                    Request::Leave => (room, in_call) = (None, false),
                                    Request::CallJoin => in_call = true,
                                    Request::CallLeave => in_call = false,
                                    Request::Chat | Request::CallMedia => {}
                                }
                            }
                            next = Instant::now() + rng.wait(if room.is_some() { ACTION_EVERY_S } else { LOBBY_S });
                        }
                        None
                    }
                    [b'4', b'2', ..] => {
                        add(&tally.pushes, 1);
                        if text.starts_with(r#"42["chat:message""#) {
                            add(&tally.chat_received, 1);
                        }
                        None
                    }
                    // A CONNECT refused, a disconnection by the server, or Engine.IO's close.
                    [b'4', b'4', ..] | [b'4', b'1', ..] | [b'1', ..] => {
                        add(broken(connected), 1);
                        break Ending::Broken;
                    }
                    _ => None,
                };
                if let Some(reply) = reply
                    && ws.send(Message::text(reply)).await.is_err()
                {
                    add(broken(connected), 1);
                    break Ending::Broken;
                }
            }
        }
    };
    if connected {
        add(&tally.online, -1);
    }
    ending
}

/// What a user in a room does next: mostly chat; now and then the call (join it, change what it
/// sends, leave it), another room, or the lobby.
fn choose(rng: &mut Rng, current: usize, in_call: bool, rooms: usize) -> Request {
    let r = rng.unit();
    match r {
        _ if r < 0.06 => Request::Join(pick_room(rng, rooms, Some(current))),
        _ if r < 0.12 => Request::Leave,
        _ if in_call && r < 0.20 => Request::CallLeave,
        _ if in_call && r < 0.32 => Request::CallMedia,
        _ if !in_call && r < 0.16 => Request::CallJoin,
        _ => Request::Chat,
    }
}

/// Chat texts are slices of this, of varied lengths, so the history holds strings of every size.
const WORDS: &str = "the quick brown fox jumps over the lazy dog while the meeting goes on and on, \
    someone shares a screen, someone else is muted, and the chat fills with links, jokes, questions \
    and answers that nobody will read again once the room is closed and its history goes with it";

fn request_frame(request: Request, ack: u64, room: Option<usize>, nickname: &str, rng: &mut Rng) -> String {
    let here = room.map(room_name).unwrap_or_default();
    let media =
        |rng: &mut Rng| format!(r#""audio":{},"video":{},"screen":{}"#, rng.coin(), rng.coin(), rng.unit() < 0.1);
    let body = match request {
        Request::Join(r) => {
            format!(r#"{{"room":"{}","unlisted":{},"nickname":"{nickname}"}}"#, room_name(r), is_unlisted(r))
        }
        Request::Leave => "{}".to_string(),
        Request::Chat => {
            let text = format!("{} ({ack})", &WORDS[..1 + rng.below(WORDS.len())]);
            format!(r#"{{"room":"{here}","text":{}}}"#, json_string(&text))
        }
        Request::CallJoin => format!(r#"{{"room":"{here}","media":{{{}}}}}"#, media(rng)),
        Request::CallMedia => format!(r#"{{"room":"{here}",{}}}"#, media(rng)),
        Request::CallLeave => format!(r#"{{"room":"{here}"}}"#),
    };
    format!(r#"42{ack}["{}",{body}]"#, request.event())
}

/// An acknowledgement's id and its error code, if it is an error: `<id>[{"error":{"code":…}}]`.
fn parse_answer(ack: &str) -> Option<(u64, Option<String>)> {
    let digits = ack.bytes().take_while(u8::is_ascii_digit).count();
    let id = ack[..digits].parse().ok()?;
    let args: serde_json::Value = serde_json::from_str(&ack[digits..]).ok()?;
    let error = args[0]["error"]["code"].as_str().map(str::to_string);
    Some((id, error))
}

/// Ends a session in one of three ways: a clean close (half the time), the TCP connection
/// dropped without a WebSocket close, or the socket kept open and silent until the server's ping
/// timeout must have found it, as a laptop lid closing does.
async fn end_session(ws: Socket, rng: &mut Rng, crowd: &Rc<Crowd>, end: Instant) -> Ending {
    let tally = &crowd.tally;
    let r = rng.unit();
    if r < 0.5 {
        add(&tally.clean, 1);
        close(ws).await;
        Ending::Clean
    } else if r < 0.75 {
        add(&tally.dropped, 1);
        drop(ws);
        Ending::Broken
    } else {
        add(&tally.silent, 1);
        add(&tally.held, 1);
        let hold = Duration::from_secs(PING_INTERVAL_S + PING_TIMEOUT_S + 2);
        let until = (Instant::now() + hold).min(end);
        let crowd = crowd.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(until.into()).await;
            drop(ws);
            add(&crowd.tally.held, -1);
        });
        Ending::Broken
    }
}

/// A WebSocket close, then what the server still sends until its own close, for a few seconds.
async fn close(mut ws: Socket) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// The parts of a run, as the CSV names them; loads and what follows them are numbered from 1.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Baseline,
    Load(u8),
    /// Between the load's end and the last user gone.
    Closing(u8),
    Cooldown(u8),
    /// After the last cooldown, once glibc was asked to give its free memory back.
    Trimmed,
}

impl Phase {
    fn name(self) -> String {
        let (name, round) = match self {
            Phase::Baseline => return "baseline".into(),
            Phase::Trimmed => return "trimmed".into(),
            Phase::Load(n) => ("load", n),
            Phase::Closing(n) => ("closing", n),
            Phase::Cooldown(n) => ("cooldown", n),
        };
        if round == 1 { name.into() } else { format!("{name}-{round}") }
    }

    fn round(self) -> Option<u8> {
        match self {
            Phase::Baseline | Phase::Trimmed => None,
            Phase::Load(n) | Phase::Closing(n) | Phase::Cooldown(n) => Some(n),
        }
    }
}

/// What the server's `/metrics` says it holds.
#[derive(Clone, Copy, Default)]
struct Gauges {
    sockets: u64,
    rooms: u64,
    participants: u64,
    call_participants: u64,
    chat_messages: u64,
    open_fds: Option<u64>,
}

impl Gauges {
    fn parse(page: &str) -> Option<Gauges> {
        let value = |name: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                .map(|v| v as u64)
        };
        Some(Gauges {
            sockets: value("noom_sockets")?,
            rooms: value("noom_rooms")?,
            participants: value("noom_participants")?,
            call_participants: value("noom_call_participants")?,
            chat_messages: value("noom_chat_messages_total")?,
            open_fds: value("process_open_fds"),
        })
    }

    /// Nobody and nothing left: the proof that a load leaves nothing behind.
    fn empty(&self) -> bool {
        self.sockets == 0 && self.rooms == 0 && self.participants == 0 && self.call_participants == 0
    }
}

/// glibc's account of the server's heap, from `malloc_stats()` (its "Total (incl. mmap)").
#[derive(Clone, Copy)]
struct Heap {
    /// Taken from the system, and of it, handed out and not freed.
    system_kb: u64,
    in_use_kb: u64,
}

/// Runs `call` in the server through gdb, on its main thread; false without gdb. The server
/// stops for the fraction of a second this takes: only ask it idle. The main thread's wait in a
/// release build takes the error gdb leaves it as a spurious wake-up; a debug build asserts on
/// it, so this is for release builds only. What gdb says is no sign of the call: on some virtual
/// machines it cannot restore the thread's AVX registers afterwards (which a thread inside a
/// system call does not use), fails, and prints no value, though the call ran. Its effect is.
fn gdb_call(pid: u32, call: &str) -> bool {
    let quiet = std::process::Stdio::null;
    std::process::Command::new("gdb")
        .args(["-nx", "-batch", "-p", &pid.to_string(), "-ex", "thread 1", "-ex", call])
        .stdin(quiet())
        .stdout(quiet())
        .stderr(quiet())
        .status()
        .is_ok()
}

/// The server's heap as glibc sees it. `malloc_stats()` prints on the server's standard error,
/// which is its log: the answer is read from what the log gained.
fn ask_heap(pid: u32, log: &Path) -> Option<Heap> {
    let before = std::fs::metadata(log).ok()?.len();
    if !gdb_call(pid, "call (void) malloc_stats()") {
        return None;
    }
    let text = std::fs::read(log).ok()?;
    Heap::parse(&String::from_utf8_lossy(text.get(before as usize..)?))
}

impl Heap {
    /// The totals of the last `malloc_stats()` report in `text`.
    fn parse(text: &str) -> Option<Heap> {
        let total = text.rsplit("Total (incl. mmap):").next().filter(|t| t.len() < text.len())?;
        let kb = |name: &str| -> Option<u64> {
            let line = total.lines().find(|l| l.trim_start().starts_with(name))?;
            line.split('=').nth(1)?.trim().parse::<u64>().ok().map(|bytes| bytes / 1024)
        };
        Some(Heap { system_kb: kb("system bytes")?, in_use_kb: kb("in use bytes")? })
    }
}

struct Sample {
    t_s: f64,
    phase: Phase,
    rss_kb: Option<u64>,
    cpu_s: Option<f64>,
    gauges: Option<Gauges>,
    online: u64,
    generator_cpu_s: f64,
}

/// The server and what was read of it so far.
struct Watch {
    server: Server,
    addr: SocketAddr,
    began: Instant,
    every: Duration,
    samples: Vec<Sample>,
    /// The users of the load under way (or the last one), whose counts the samples show.
    crowd: Option<Rc<Crowd>>,
    died: bool,
    /// The server's log, where `malloc_stats()` prints; none when glibc is not to be asked.
    malloc_stats_log: Option<PathBuf>,
}

impl Watch {
    fn heap(&self) -> Option<Heap> {
        ask_heap(*self.server.probe.pids.first()?, self.malloc_stats_log.as_deref()?)
    }

    /// Asks glibc to give the server's free memory back, then samples; the RSS it reaches. Only
    /// once glibc answered `malloc_stats()`: that shows gdb may call into this server, and that
    /// its allocator is glibc's.
    async fn trim(&mut self) -> Option<u64> {
        let pid = *self.server.probe.pids.first()?;
        if self.died || self.heap().is_none() || !gdb_call(pid, "call (int) malloc_trim(0)") {
            return None;
        }
        self.sample(Phase::Trimmed).await;
        self.samples.last()?.rss_kb
    }

    async fn sample(&mut self, phase: Phase) {
        let addr = self.addr;
        // The scrape blocks for up to a second; the users must not.
        let page =
            tokio::task::spawn_blocking(move || servers::http_get(addr, "/metrics")).await.ok().and_then(Result::ok);
        let probe = &self.server.probe;
        self.samples.push(Sample {
            t_s: self.began.elapsed().as_secs_f64(),
            phase,
            rss_kb: probe.rss_kb(),
            cpu_s: probe.cpu_s(),
            gauges: page.as_deref().and_then(Gauges::parse),
            online: self.crowd.as_ref().map_or(0, |c| c.tally.online.get()),
            generator_cpu_s: own_cpu_s(),
        });
        self.died |= !self.server.alive();
    }

    /// Samples through `phase` until `until`, or until `done` (asked every 100 ms); false when
    /// the server died.
    async fn through(&mut self, phase: Phase, until: Instant, done: &dyn Fn(&Crowd) -> bool) -> bool {
        let mut next = Instant::now();
        loop {
            if Instant::now() >= next {
                self.sample(phase).await;
                next += self.every;
            }
            if self.died {
                return false;
            }
            let now = Instant::now();
            if now >= until || self.crowd.as_deref().is_some_and(done) {
                return true;
            }
            let wake = next.min(until).min(now + Duration::from_millis(100));
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    fn round(&self, n: u8) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.phase.round() == Some(n))
    }
}

/// One load and its cooldown, as measured.
struct Round {
    number: u8,
    load: Duration,
    /// When the load ran, in seconds from the server's start.
    span_s: (f64, f64),
    crowd: Rc<Crowd>,
    /// The highest resident memory sampled during the load and its closing.
    peak_rss_kb: Option<u64>,
    rss_end_of_load_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    gauges_after: Option<Gauges>,
    heap_after: Option<Heap>,
    /// From the load's end to the first sample with nothing left, in seconds.
    empty_after_s: Option<f64>,
    /// The highest of each gauge during the load and its closing (the counters left at 0).
    peak: Gauges,
    server_cpu_pct: Option<f64>,
    generator_cpu_pct: Option<f64>,
    /// Chat messages the server counted during the load.
    server_messages: Option<u64>,
}

async fn round(watch: &mut Watch, number: u8, plan: &Plan, load: Duration, target: Target, seed: u64) -> Round {
    let crowd = Rc::new(Crowd {
        target,
        tally: Tally::default(),
        rooms: plan.users.div_ceil(USERS_PER_ROOM).max(1),
        seed: seed ^ u64::from(number) << 56,
    });
    watch.crowd = Some(crowd.clone());
    let start_t = watch.began.elapsed().as_secs_f64();
    let end = Instant::now() + load;
    for id in 0..plan.users {
        tokio::task::spawn_local(live(crowd.clone(), id, end));
    }
    let never = |_: &Crowd| false;
    let gone = |c: &Crowd| c.tally.users.get() == 0 && c.tally.held.get() == 0;
    eprintln!("soak: load {number}: {} users for {} s", plan.users, load.as_secs());
    if watch.through(Phase::Load(number), end, &never).await {
        watch.through(Phase::Closing(number), end + Duration::from_secs(30), &gone).await;
        eprintln!("soak: everyone gone; cooldown {} s", plan.cooldown.as_secs());
        let until = Instant::now() + plan.cooldown;
        if watch.through(Phase::Cooldown(number), until, &never).await {
            watch.sample(Phase::Cooldown(number)).await;
        }
    }
    let heap_after = watch.heap();
    let end_t = end.duration_since(watch.began).as_secs_f64();
    let samples: Vec<&Sample> = watch.round(number).collect();
    let loaded = || samples.iter().filter(|s| !matches!(s.phase, Phase::Cooldown(_)));
    let during = |s: &&&Sample| s.phase == Phase::Load(number);
    let (first, last_loaded) = (samples.iter().find(during), samples.iter().rfind(during));
    let rate = |pick: fn(&Sample) -> Option<f64>| {
        let (a, b) = (first?, last_loaded?);
        Some((pick(b)? - pick(a)?) * 100.0 / (b.t_s - a.t_s).max(1e-9))
    };
    let peak = |pick: fn(&Gauges) -> u64| loaded().filter_map(|s| s.gauges.as_ref().map(pick)).max().unwrap_or(0);
    Round {
        number,
        load,
        span_s: (start_t, end_t),
        peak_rss_kb: loaded().filter_map(|s| s.rss_kb).max(),
        rss_end_of_load_kb: last_loaded.and_then(|s| s.rss_kb),
        rss_after_kb: samples.last().and_then(|s| s.rss_kb),
        gauges_after: samples.last().and_then(|s| s.gauges),
        heap_after,
        empty_after_s: samples
            .iter()
            .find(|s| s.t_s >= end_t && s.gauges.is_some_and(|g| g.empty()))
            .map(|s| s.t_s - end_t),
        peak: Gauges {
            sockets: peak(|g| g.sockets),
            rooms: peak(|g| g.rooms),
            participants: peak(|g| g.participants),
            call_participants: peak(|g| g.call_participants),
            chat_messages: 0,
            open_fds: None,
        },
        server_cpu_pct: rate(|s| s.cpu_s),
        generator_cpu_pct: rate(|s| Some(s.generator_cpu_s)),
        server_messages: match (first.and_then(|s| s.gauges), samples.last().and_then(|s| s.gauges)) {
            (Some(a), Some(b)) => Some(b.chat_messages - a.chat_messages),
            _ => None,
        },
        crowd,
    }
}

/// Everything a run found, for the report.
struct Soak {
    command: String,
    smoke: bool,
    machine: crate::report::Machine,
    plan: Plan,
    samples: Vec<Sample>,
    baseline_rss_kb: Option<u64>,
    baseline_fds: Option<u64>,
    baseline_cpu_pct: Option<f64>,
    baseline_heap: Option<Heap>,
    /// RSS at the very end, once `malloc_trim(0)` gave free memory back.
    trimmed_rss_kb: Option<u64>,
    /// Over the second half of the last cooldown: what the server spends holding nothing.
    idle_cpu_pct: Option<f64>,
    /// The highest resident memory of the server's life: VmHWM, or a sample above it.
    lifetime_peak_rss_kb: Option<u64>,
    rounds: Vec<Round>,
    died: bool,
}

impl Soak {
    /// What must hold for the run to pass: the server alive, and holding nothing after each
    /// load. Memory is reported, not judged: what the allocator keeps is not a leak.
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.died {
            out.push("the server died during the run".into());
        }
        for r in &self.rounds {
            match r.gauges_after {
                Some(g) if g.empty() => {}
                Some(g) => out.push(format!(
                    "after load {}'s cooldown the server still holds {} sockets, {} rooms, {} participants, {} in calls",
                    r.number, g.sockets, g.rooms, g.participants, g.call_participants
                )),
                None => out.push(format!("after load {}'s cooldown /metrics could not be read", r.number)),
            }
            if r.crowd.tally.connections.get() == 0 {
                out.push(format!("load {}: no user connected", r.number));
            }
            let unexpected = r.crowd.tally.unexpected_errors();
            if unexpected > 0 {
                out.push(format!(
                    "load {}: {unexpected} answers the server should not have given (see Errors)",
                    r.number
                ));
            }
        }
        out
    }
}

/// Starts Noom, reads its baseline, runs the load (twice with `--second-load`), and writes
/// what it saw; false when the server died, kept something after a load, or gave an answer it
/// should not have (an error but those a busy server gives by design).
pub async fn run(args: Args) -> Result<bool> {
    let plan = Plan::of(&args);
    let load_before = crate::load_average();
    let files = servers::raise_file_limit(65_536);
    // Silent sockets are held while their users connect again: up to twice the users at once.
    if files < 2 * plan.users as u64 + 100 {
        bail!(
            "the open-file limit is {files}, and {} users need {}: raise it (ulimit -n)",
            plan.users,
            2 * plan.users + 100
        );
    }
    let pin = args.cores.server();
    let (interval, timeout) = (PING_INTERVAL_S.to_string(), PING_TIMEOUT_S.to_string());
    let server = Server::start_noom(
        &args.noom_bin,
        &["--ping-interval", &interval, "--ping-timeout", &timeout],
        pin,
        &args.out.join("logs"),
    )?;
    let addr = server.addrs[0];
    let mut watch = Watch {
        server,
        addr,
        began: Instant::now(),
        every: plan.sample_every,
        samples: Vec::new(),
        crowd: None,
        died: false,
        malloc_stats_log: plan
            .malloc_stats
            .then(|| args.out.join("logs").join(format!("{}.log", servers::Kind::Noom.name()))),
    };
    eprintln!("soak: Noom at {addr}; baseline for {} s", plan.baseline.as_secs());
    watch.through(Phase::Baseline, Instant::now() + plan.baseline, &|_| false).await;
    watch.sample(Phase::Baseline).await;
    let base: Vec<&Sample> = watch.samples.iter().filter(|s| s.phase == Phase::Baseline).collect();
    let baseline_rss_kb = base.last().and_then(|s| s.rss_kb);
    let baseline_fds = base.last().and_then(|s| s.gauges?.open_fds);
    let baseline_cpu_pct = cpu_pct(&base);
    let baseline_heap = watch.heap();
    let mut rounds = Vec::new();
    for (number, load) in [(1, plan.load), (2, plan.second_load)] {
        if load.is_zero() || watch.died {
            continue;
        }
        rounds.push(round(&mut watch, number, &plan, load, Target::new(addr), args.seed).await);
    }
    let last_cooldown: Vec<&Sample> = watch.samples.iter().filter(|s| matches!(s.phase, Phase::Cooldown(_))).collect();
    let last_cooldown: Vec<&Sample> = match last_cooldown.last() {
        Some(last) => last_cooldown.iter().copied().filter(|s| s.phase == last.phase).collect(),
        None => Vec::new(),
    };
    let idle_cpu_pct = cpu_pct(&last_cooldown[last_cooldown.len() / 2..]);
    // The kernel updates VmHWM lazily: a sample may have seen more.
    let lifetime_peak_rss_kb =
        watch.server.probe.peak_rss_kb().into_iter().chain(watch.samples.iter().filter_map(|s| s.rss_kb)).max();
    let trimmed_rss_kb = watch.trim().await;
    let died = watch.died;
    watch.server.stop();
    let mut machine = crate::machine(load_before, pin, args.cores.generator());
    machine.load_after = crate::load_average();
    let soak = Soak {
        command: args.command_line.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        smoke: args.smoke,
        machine,
        plan,
        samples: watch.samples,
        baseline_rss_kb,
        baseline_fds,
        baseline_cpu_pct,
        baseline_heap,
        trimmed_rss_kb,
        idle_cpu_pct,
        lifetime_peak_rss_kb,
        rounds,
        died,
    };
    write(&args.out, &soak)?;
    let failures = soak.failures();
    for line in verdict(&soak) {
        println!("{line}");
    }
    for failure in &failures {
        eprintln!("soak: {failure}");
    }
    println!("Full results: {}", args.out.join("soak.md").display());
    Ok(failures.is_empty())
}

/// The server's CPU time over a stretch of samples, as a share of one core.
fn cpu_pct(samples: &[&Sample]) -> Option<f64> {
    let (a, b) = (samples.first()?, samples.last()?);
    if b.t_s <= a.t_s {
        return None;
    }
    Some((b.cpu_s? - a.cpu_s?) * 100.0 / (b.t_s - a.t_s))
}

fn write(out: &Path, soak: &Soak) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("soak.csv"), csv(&soak.samples))?;
    std::fs::write(out.join("soak.md"), markdown(soak))?;
    std::fs::write(out.join("soak.svg"), svg(soak))?;
    Ok(())
}

fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "t_s,phase,rss_kb,server_cpu_s,sockets,rooms,participants,call_participants,chat_messages_total,open_fds,users_online,generator_cpu_s\n",
    );
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for s in samples {
        let g = s.gauges;
        let _ = writeln!(
            out,
            "{:.1},{},{},{},{},{},{},{},{},{},{},{:.2}",
            s.t_s,
            s.phase.name(),
            opt(s.rss_kb),
            s.cpu_s.map(|c| format!("{c:.2}")).unwrap_or_default(),
            opt(g.map(|g| g.sockets)),
            opt(g.map(|g| g.rooms)),
            opt(g.map(|g| g.participants)),
            opt(g.map(|g| g.call_participants)),
            opt(g.map(|g| g.chat_messages)),
            opt(g.and_then(|g| g.open_fds)),
            s.online,
            s.generator_cpu_s
        );
    }
    out
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("—".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}"))
}

/// Two figures of memory count as the same when within this much: pages come and go.
fn close_to(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= (b / 20).max(2048)
}

/// The run's conclusions, one line each: what was held after each load, what memory did, what
/// the idle server spends, and any answer that should not have come.
fn verdict(soak: &Soak) -> Vec<String> {
    let mut lines = Vec::new();
    if soak.died {
        lines.push("**The server died during the run.**".to_string());
    }
    for r in &soak.rounds {
        lines.push(match (r.gauges_after, r.empty_after_s) {
            (Some(g), Some(after)) if g.empty() => format!(
                "Load {}: sockets, rooms, participants and call participants back to 0 within {after:.1} s of the load's end, \
                 and still 0 at the end of the cooldown: nothing held.",
                r.number
            ),
            (Some(g), _) => format!(
                "**Load {}: a leak**: at the end of the cooldown the server still holds {} sockets, {} rooms, {} participants, {} in calls.",
                r.number, g.sockets, g.rooms, g.participants, g.call_participants
            ),
            (None, _) => format!("**Load {}: /metrics could not be read at the end of the cooldown.**", r.number),
        });
    }
    let base = soak.baseline_rss_kb;
    if let (Some(base), Some(first)) = (base, soak.rounds.first())
        && let Some(after) = first.rss_after_kb
    {
        let change = format!(
            "RSS {} MB at the baseline, {} MB at the first load's peak, {} MB after its cooldown",
            mb(Some(base)),
            mb(first.peak_rss_kb),
            mb(Some(after))
        );
        lines.push(if close_to(after, base) {
            format!("{change}: back to the baseline.")
        } else {
            format!("{change}: {:+.1} MB from the baseline.", (after as f64 - base as f64) / 1024.0)
        });
    }
    if let (Some(base), Some(heap)) = (soak.baseline_heap, soak.rounds.first().and_then(|r| r.heap_after)) {
        lines.push(format!(
            "glibc's heap after the first load's cooldown: {} MB taken from the system, of which {} MB in use ({} MB at \
             the baseline); the other {} MB are free, kept by glibc for reuse.",
            mb(Some(heap.system_kb)),
            mb(Some(heap.in_use_kb)),
            mb(Some(base.in_use_kb)),
            mb(Some(heap.system_kb.saturating_sub(heap.in_use_kb)))
        ));
    }
    if let [first, second, ..] = soak.rounds.as_slice() {
        // What stays in use is what a leak would be; RSS stands in for it when glibc was not asked.
        let rss = format!(
            "The second load peaked at {} MB of RSS and left {} MB ({} MB after the first)",
            mb(second.peak_rss_kb),
            mb(second.rss_after_kb),
            mb(first.rss_after_kb)
        );
        let kept = match (first.heap_after, second.heap_after) {
            (Some(a), Some(b)) => Some((
                format!(
                    "{rss}; glibc's heap in use {} MB after it, {} MB after the first",
                    mb(Some(b.in_use_kb)),
                    mb(Some(a.in_use_kb))
                ),
                a.in_use_kb,
                b.in_use_kb,
            )),
            _ => first.rss_after_kb.zip(second.rss_after_kb).map(|(a, b)| (rss, a, b)),
        };
        if let Some((figures, a1, a2)) = kept {
            lines.push(if a2 <= a1 || close_to(a2, a1) {
                format!("{figures}: not growing from one load to the next.")
            } else {
                format!("**{figures}: growing from one load to the next; look for a leak.**")
            });
        }
    }
    if let Some(trimmed) = soak.trimmed_rss_kb {
        lines.push(format!(
            "`malloc_trim(0)` at the end, glibc asked to give its free memory back: RSS from {} MB to {} MB (baseline {} MB).",
            mb(soak.rounds.last().and_then(|r| r.rss_after_kb)),
            mb(Some(trimmed)),
            mb(base)
        ));
    }
    lines.push(format!(
        "Server CPU while idle: {}% of a core before the load, {}% at the end of the last cooldown (leftover timers would show here).",
        pct(soak.baseline_cpu_pct),
        pct(soak.idle_cpu_pct)
    ));
    let unexpected: u64 = soak.rounds.iter().map(|r| r.crowd.tally.unexpected_errors()).sum();
    lines.push(if unexpected == 0 {
        format!("No unexpected answer (expected now and then: {}).", EXPECTED_ERRORS.join(", "))
    } else {
        format!("**{unexpected} unexpected answers** (see Errors).")
    });
    lines
}

fn markdown(soak: &Soak) -> String {
    let (p, m) = (&soak.plan, &soak.machine);
    let mut out = String::new();
    let _ =
        writeln!(out, "# Noom soak{}\n", if soak.smoke { " (smoke run: tiny load, figures mean nothing)" } else { "" });
    let _ = writeln!(out, "Command: `{}`\n", soak.command);
    let core = |c: Option<usize>| c.map_or("any core".into(), |c| format!("core {c}"));
    let _ = writeln!(
        out,
        "Machine: {}, {} cores, {:.0} GiB, Linux {}; {}. Server on {}, generator on {}. Load average (1, 5, 15 min) \
         before: {}; after: {}.\n",
        m.cpu,
        m.cores,
        m.memory_gib,
        m.kernel,
        m.date,
        core(m.server_core),
        core(m.generator_core),
        m.load_before,
        m.load_after
    );
    let second = if p.second_load.is_zero() {
        String::new()
    } else {
        format!(", then a second load of {} s and a cooldown again", p.second_load.as_secs())
    };
    let _ = writeln!(
        out,
        "{} users for {} s, then everyone disconnects and the server is watched idle for {} s{second}; a sample every \
         {} s. Noom runs with `--ping-interval {PING_INTERVAL_S} --ping-timeout {PING_TIMEOUT_S}` and no per-address \
         limits (every user comes from 127.0.0.1), its other limits at their defaults. Each user, on its own random \
         schedule: connects (`auth: {{protocol: \"noom/1\", resume}}`), waits in the lobby about {LOBBY_S} s, joins one \
         of {} rooms with its nickname (lower-numbered rooms likelier, so the busiest hold about ten and the quiet \
         ones open and close; one in {UNLISTED_EVERY} unlisted), then acts every {ACTION_EVERY_S} s or so: chats, \
         joins the call, changes its media, leaves the call, moves to another room or back to the lobby. After about \
         {SESSION_S} s connected it ends the session: half the time with a clean close, a quarter by dropping the TCP \
         connection, a quarter by going silent (the socket held open, unanswered, for {} s), and comes back about \
         {OFFLINE_S} s later (with its resume token, unless it closed cleanly). One request at a time, every answer \
         checked.\n",
        thousands(p.users as f64),
        p.load.as_secs(),
        p.cooldown.as_secs(),
        p.sample_every.as_secs_f64(),
        thousands(p.users.div_ceil(USERS_PER_ROOM) as f64),
        PING_INTERVAL_S + PING_TIMEOUT_S + 2
    );
    out.push_str("## Verdict\n\n");
    for line in verdict(soak) {
        let _ = writeln!(out, "- {line}");
    }
    let rounds = &soak.rounds;
    let head = |out: &mut String| {
        out.push_str("| |");
        for r in rounds {
            let _ = write!(out, " load {} ({} s) |", r.number, r.load.as_secs());
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(rounds.len()));
        out.push('\n');
    };
    let row = |out: &mut String, label: &str, cell: &dyn Fn(&Round) -> String| {
        let _ = write!(out, "| {label} |");
        for r in rounds {
            let _ = write!(out, " {} |", cell(r));
        }
        out.push('\n');
    };
    let _ = writeln!(
        out,
        "\n## Memory and what the server holds\n\nBaseline (after start-up and {} s idle): RSS {} MB, glibc heap {} MB \
         of which {} MB in use, {} open files, server CPU {}% of a core. Highest RSS of the server's life (VmHWM, or a sample above it): {} MB. \
         RSS at the very end, after `malloc_trim(0)`: {} MB. The glibc figures are its `malloc_stats()` totals, asked \
         through gdb while the server is idle (— with `--smoke` or `--no-malloc-stats`, or where gdb is missing or may \
         not attach).\n",
        p.baseline.as_secs(),
        mb(soak.baseline_rss_kb),
        mb(soak.baseline_heap.map(|h| h.system_kb)),
        mb(soak.baseline_heap.map(|h| h.in_use_kb)),
        soak.baseline_fds.map_or("—".into(), |f| f.to_string()),
        pct(soak.baseline_cpu_pct),
        mb(soak.lifetime_peak_rss_kb),
        mb(soak.trimmed_rss_kb)
    );
    head(&mut out);
    let gauge =
        |pick: fn(&Gauges) -> u64| move |r: &Round| r.gauges_after.map_or("—".into(), |g| pick(&g).to_string());
    row(&mut out, "RSS peak, sampled (MB)", &|r| mb(r.peak_rss_kb));
    row(&mut out, "RSS at the end of the load (MB)", &|r| mb(r.rss_end_of_load_kb));
    row(&mut out, "RSS at the end of the cooldown (MB)", &|r| mb(r.rss_after_kb));
    let heap = |pick: fn(&Heap) -> u64| move |r: &Round| mb(r.heap_after.as_ref().map(pick));
    row(&mut out, "glibc heap taken from the system at the end of the cooldown (MB)", &heap(|h| h.system_kb));
    row(&mut out, "glibc heap in use at the end of the cooldown (MB)", &heap(|h| h.in_use_kb));
    row(&mut out, "sockets at the end of the cooldown", &gauge(|g| g.sockets));
    row(&mut out, "rooms at the end of the cooldown", &gauge(|g| g.rooms));
    row(&mut out, "participants at the end of the cooldown", &gauge(|g| g.participants));
    row(&mut out, "call participants at the end of the cooldown", &gauge(|g| g.call_participants));
    row(&mut out, "open files at the end of the cooldown", &|r| {
        r.gauges_after.and_then(|g| g.open_fds).map_or("—".into(), |f| f.to_string())
    });
    row(&mut out, "seconds from the load's end to nothing held", &|r| {
        r.empty_after_s.map_or("never".into(), |s| format!("{s:.1}"))
    });
    out.push_str("\n## The load\n\n");
    head(&mut out);
    let count = |pick: fn(&Tally) -> u64| move |r: &Round| thousands(pick(&r.crowd.tally) as f64);
    let answered = |event: &'static str| {
        move |r: &Round| thousands(r.crowd.tally.answered.borrow().get(event).copied().unwrap_or(0) as f64)
    };
    row(&mut out, "connections", &count(|t| t.connections.get()));
    row(&mut out, "connections that failed", &count(|t| t.failed_connections.get()));
    row(&mut out, "sessions closed cleanly", &count(|t| t.clean.get()));
    row(&mut out, "sessions dropped (TCP closed, no WebSocket close)", &count(|t| t.dropped.get()));
    row(&mut out, "sessions gone silent", &count(|t| t.silent.get()));
    row(&mut out, "sessions closed by the server or the network", &count(|t| t.lost.get()));
    row(&mut out, "highest sockets, rooms, participants, in calls", &|r| {
        let p = &r.peak;
        [p.sockets, p.rooms, p.participants, p.call_participants].map(|n| thousands(n as f64)).join(" / ")
    });
    row(&mut out, "rooms joined (`room:join`)", &answered("room:join"));
    row(&mut out, "back to the lobby (`room:leave`)", &answered("room:leave"));
    row(&mut out, "chat messages sent (acknowledged)", &answered("chat:send"));
    row(&mut out, "chat messages counted by the server", &|r| {
        r.server_messages.map_or("—".into(), |n| thousands(n as f64))
    });
    row(&mut out, "chat messages received", &count(|t| t.chat_received.get()));
    row(&mut out, "pushes received (all events)", &count(|t| t.pushes.get()));
    row(&mut out, "calls joined, media changes, calls left", &|r| {
        let a = r.crowd.tally.answered.borrow();
        let n = |e: &str| thousands(a.get(e).copied().unwrap_or(0) as f64);
        format!("{} / {} / {}", n("call:join"), n("call:media"), n("call:leave"))
    });
    row(&mut out, "server CPU during the load (% of a core)", &|r| pct(r.server_cpu_pct));
    row(&mut out, "generator CPU during the load (% of a core)", &|r| pct(r.generator_cpu_pct));
    out.push_str(
        "\n## Errors\n\nEvery answer that was an error, by event and code (`no_answer`: none within 10 s).\n\n",
    );
    let mut keys: Vec<(&'static str, String)> =
        rounds.iter().flat_map(|r| r.crowd.tally.errors.borrow().keys().cloned().collect::<Vec<_>>()).collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| event | code | expected |");
        for r in rounds {
            let _ = write!(out, " load {} |", r.number);
        }
        out.push_str("\n|---|---|---|");
        out.push_str(&"---:|".repeat(rounds.len()));
        out.push('\n');
        for (event, code) in &keys {
            let expected = if EXPECTED_ERRORS.contains(&code.as_str()) { "yes" } else { "**no**" };
            let _ = write!(out, "| `{event}` | `{code}` | {expected} |");
            for r in rounds {
                let n = r.crowd.tally.errors.borrow().get(&(*event, code.clone())).copied().unwrap_or(0);
                let _ = write!(out, " {} |", thousands(n as f64));
            }
            out.push('\n');
        }
    }
    out.push_str("\n![Server RSS and sockets over time](soak.svg)\n\nEvery sample: `soak.csv`.\n");
    out
}

/// A round number above `max / 5`: a tick step that gives a handful of ticks.
fn tick_step(max: f64) -> f64 {
    let rough = (max / 5.0).max(1e-9);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|&s| s >= rough).unwrap_or(10.0 * power)
}

/// Server RSS (left axis) and sockets (right axis) against time, the loads shaded and the
/// baseline dashed.
fn svg(soak: &Soak) -> String {
    let (left, top, w, h) = (70.0, 50.0, 760.0, 280.0);
    let (width, height) = (left + w + 80.0, top + h + 90.0);
    let samples = &soak.samples;
    let t_max = samples.last().map_or(1.0, |s| s.t_s).max(1.0);
    let rss_max = samples.iter().filter_map(|s| s.rss_kb).max().unwrap_or(1) as f64 / 1024.0 * 1.1;
    let sockets_max = samples.iter().filter_map(|s| s.gauges.map(|g| g.sockets)).max().unwrap_or(1).max(1) as f64 * 1.1;
    let x = |t: f64| left + t / t_max * w;
    let y_rss = |mb: f64| top + h - mb / rss_max * h;
    let y_sockets = |n: f64| top + h - n / sockets_max * h;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="15" text-anchor="middle">Noom under a soak: server memory and sockets over time</text>
"#,
        left + w / 2.0
    );
    for r in &soak.rounds {
        let (a, b) = r.span_s;
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{h}" fill="#e7f5ff"/><text x="{:.1}" y="{}" fill="#1864ab">load {}</text>"##,
            x(a),
            x(b) - x(a),
            x(a) + 4.0,
            top + 14.0,
            r.number
        );
    }
    let step = tick_step(rss_max);
    let mut v = 0.0;
    while v <= rss_max {
        let yy = y_rss(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#1971c2">{v}</text>"##,
            left + w,
            left - 6.0,
            yy + 4.0
        );
        v += step;
    }
    let step = tick_step(sockets_max);
    let mut n = 0.0;
    while n <= sockets_max {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{:.1}" fill="#e8590c">{}</text>"##,
            left + w + 6.0,
            y_sockets(n) + 4.0,
            thousands(n)
        );
        n += step;
    }
    let step = tick_step(t_max);
    let mut t = 0.0;
    while t <= t_max {
        let _ = writeln!(out, r##"<text x="{:.1}" y="{}" text-anchor="middle">{t}</text>"##, x(t), top + h + 16.0);
        t += step;
    }
    let _ = writeln!(out, r##"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#333"/>"##);
    if let Some(base) = soak.baseline_rss_kb {
        let yy = y_rss(base as f64 / 1024.0);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#1971c2" stroke-dasharray="5 4"/>"##,
            left + w
        );
    }
    let line = |points: Vec<String>, colour: &str| {
        format!(r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##, points.join(" "))
    };
    let rss: Vec<String> = samples
        .iter()
        .filter_map(|s| Some(format!("{:.1},{:.1}", x(s.t_s), y_rss(s.rss_kb? as f64 / 1024.0))))
        .collect();
    let sockets: Vec<String> = samples
        .iter()
        .filter_map(|s| Some(format!("{:.1},{:.1}", x(s.t_s), y_sockets(s.gauges?.sockets as f64))))
        .collect();
    let _ = writeln!(out, "{}", line(sockets, "#e8590c"));
    let _ = writeln!(out, "{}", line(rss, "#1971c2"));
    if let Some(trimmed) = soak.trimmed_rss_kb {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#1971c2">malloc_trim(0)</text>"##,
            x(t_max) - 4.0,
            y_rss(trimmed as f64 / 1024.0) - 6.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle">seconds</text>
<text x="18" y="{}" fill="#1971c2" transform="rotate(-90 18 {})" text-anchor="middle">server RSS (MB)</text>
<text x="{}" y="{}" fill="#e8590c" transform="rotate(90 {} {})" text-anchor="middle">sockets</text>"##,
        left + w / 2.0,
        top + h + 36.0,
        top + h / 2.0,
        top + h / 2.0,
        width - 14.0,
        top + h / 2.0,
        width - 14.0,
        top + h / 2.0
    );
    let ly = top + h + 64.0;
    let _ = writeln!(
        out,
        r##"<line x1="{left}" x2="{}" y1="{ly}" y2="{ly}" stroke="#1971c2" stroke-width="3"/><text x="{}" y="{}">server RSS</text>
<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="#1971c2" stroke-dasharray="5 4"/><text x="{}" y="{}">its baseline</text>
<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="#e8590c" stroke-width="3"/><text x="{}" y="{}">sockets (noom_sockets)</text>"##,
        left + 24.0,
        left + 30.0,
        ly + 4.0,
        left + 130.0,
        left + 154.0,
        left + 160.0,
        ly + 4.0,
        left + 260.0,
        left + 284.0,
        left + 290.0,
        ly + 4.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("10d").is_err());
    }

    #[test]
    fn answers_give_their_id_and_error_code() {
        assert_eq!(parse_answer(r#"12[{"message":{"id":"x"}}]"#), Some((12, None)));
        let refused = r#"7[{"error":{"code":"rate_limited","message":"slow down"}}]"#;
        assert_eq!(parse_answer(refused), Some((7, Some("rate_limited".into()))));
        assert_eq!(parse_answer("x[]"), None);
    }

    #[test]
    fn gauges_are_read_from_the_metrics_page() {
        let page = "# TYPE noom_sockets gauge\nnoom_sockets 3\nnoom_connections_total 9\nnoom_rooms 1\n\
                    noom_participants 2\nnoom_calls 0\nnoom_call_participants 0\nnoom_chat_messages_total 40\n\
                    process_open_fds 17\n";
        let g = Gauges::parse(page).expect("every gauge is there");
        assert_eq!((g.sockets, g.rooms, g.participants, g.chat_messages, g.open_fds), (3, 1, 2, 40, Some(17)));
        assert!(!g.empty());
        assert!(Gauges::parse("noom_sockets 0\n").is_none());
    }

    #[test]
    fn the_heap_is_read_from_glibcs_report() {
        let log = "INFO listening\nArena 0:\nsystem bytes     =     274432\nin use bytes     =     145952\n\
                   Total (incl. mmap):\nsystem bytes     =  144498688\nin use bytes     =    2545792\n\
                   max mmap regions =          5\n";
        let heap = Heap::parse(log).expect("a report");
        assert_eq!((heap.system_kb, heap.in_use_kb), (141_112, 2_486));
        assert!(Heap::parse("INFO listening\n").is_none());
    }

    #[test]
    fn requests_are_socket_io_events_with_an_ack_id() {
        let mut rng = Rng::new(1);
        let join = request_frame(Request::Join(UNLISTED_EVERY), 3, None, "user-1", &mut rng);
        assert_eq!(join, r#"423["room:join",{"room":"soak-5-Unlisted00","unlisted":true,"nickname":"user-1"}]"#);
        let chat = request_frame(Request::Chat, 4, Some(2), "user-1", &mut rng);
        let args: serde_json::Value = serde_json::from_str(chat.strip_prefix("424").unwrap()).unwrap();
        assert_eq!(args[0], "chat:send");
        assert_eq!(args[1]["room"], "soak-2");
        assert!(args[1]["text"].as_str().unwrap().ends_with("(4)"));
    }

    #[test]
    fn rooms_are_picked_unevenly_and_never_the_current_one() {
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            counts[pick_room(&mut rng, 10, Some(9))] += 1;
        }
        assert_eq!(counts[9], 0);
        assert!(counts[0] > 3 * counts[8], "{counts:?}");
    }
}
