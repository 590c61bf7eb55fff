//! The four loads, each run the same way against every server: idle crowds, chat in rooms of
//! ten at rising rates, churn under a watching lobby, and one large room.

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::{self, Role, Stats, Target, User, now_ns};
use crate::servers::{Probe, own_cpu_s};

/// Sizes, rates and durations of one run.
#[derive(Clone, Serialize, Deserialize)]
pub struct Params {
    pub room_size: usize,
    pub small_users: usize,
    pub large_users: usize,
    pub chat_rates: Vec<f64>,
    /// Deliveries per second asked of the large crowd.
    pub large_deliveries: f64,
    pub churn_watchers: usize,
    pub churn_rates: Vec<f64>,
    /// Rooms the churners enter, in turn, and how long each stays.
    pub churn_rooms: usize,
    pub churn_stay_s: f64,
    pub big_room: usize,
    pub big_rates: Vec<f64>,
    pub warmup_s: f64,
    pub window_s: f64,
    pub drain_s: f64,
    /// Idle time before memory is read as settled: long for the crowd compared with Node, whose
    /// V8 gives memory back only after a minute or so idle; short for the large crowd, which Node
    /// never finishes setting up.
    pub settle_s: f64,
    pub large_settle_s: f64,
    /// A short pause: for a collection to finish, or departures to be processed.
    pub pause_s: f64,
    pub setup_budget_s: f64,
    pub connecting_at_once: usize,
    pub churn_in_flight: usize,
    pub p99_limit_ms: f64,
    /// Above this share of its core the generator, not the server, may be what is measured.
    pub generator_limit_pct: f64,
    /// A step during which other processes took more than this share of the server's core is
    /// run again, up to `retries` times, keeping the least disturbed attempt: this machine is
    /// shared, and the server is pinned to one core.
    pub disturbed_pct: f64,
    pub retries: u32,
}

impl Params {
    pub fn full() -> Self {
        Params {
            room_size: 10,
            small_users: 1_000,
            large_users: 10_000,
            chat_rates: vec![1_000.0, 2_000.0, 5_000.0, 10_000.0, 15_000.0, 20_000.0, 25_000.0, 30_000.0],
            large_deliveries: 10_000.0,
            churn_watchers: 1_000,
            churn_rates: vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 3_000.0, 5_000.0],
            churn_rooms: 1_000,
            churn_stay_s: 1.0,
            big_room: 1_000,
            big_rates: vec![10.0, 20.0, 50.0, 100.0, 150.0, 200.0],
            warmup_s: 1.0,
            window_s: 4.0,
            drain_s: 2.0,
            settle_s: 90.0,
            large_settle_s: 10.0,
            pause_s: 1.0,
            setup_budget_s: 90.0,
            connecting_at_once: 100,
            churn_in_flight: 8_000,
            p99_limit_ms: 100.0,
            generator_limit_pct: 95.0,
            disturbed_pct: 15.0,
            retries: 2,
        }
    }

    /// Tiny loads that still go through every code path: for the test command.
    pub fn smoke() -> Self {
        Params {
            room_size: 10,
            small_users: 50,
            large_users: 200,
            chat_rates: vec![100.0, 400.0],
            large_deliveries: 500.0,
            churn_watchers: 20,
            churn_rates: vec![20.0, 50.0],
            churn_rooms: 10,
            churn_stay_s: 0.1,
            big_room: 50,
            big_rates: vec![5.0, 10.0],
            warmup_s: 0.2,
            window_s: 0.5,
            drain_s: 1.0,
            settle_s: 0.3,
            large_settle_s: 0.3,
            pause_s: 0.1,
            setup_budget_s: 10.0,
            connecting_at_once: 50,
            churn_in_flight: 200,
            p99_limit_ms: 100.0,
            generator_limit_pct: 95.0,
            disturbed_pct: 15.0,
            retries: 0,
        }
    }
}

/// What a scenario needs besides its parameters: where to connect, what to watch, and a way to
/// tell the server to collect its garbage (Node) before memory is read.
pub struct Bench<'a> {
    /// One address, or one per node of a cluster: see [`Bench::target`].
    pub targets: Vec<Rc<Target>>,
    pub stats: Rc<Stats>,
    pub probe: Probe,
    pub params: &'a Params,
    pub collect_garbage: &'a dyn Fn(),
}

impl Bench<'_> {
    /// Where the `i`th user of a crowd connects: users alternate between a cluster's nodes, so
    /// that each room of ten has people on both and every message crosses Redis.
    fn target(&self, i: usize) -> &Rc<Target> {
        &self.targets[i % self.targets.len()]
    }
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Setup {
    pub users: usize,
    pub reached: usize,
    pub failed: u64,
    pub complete: bool,
    pub seconds: f64,
    pub server_cpu_us_per_user: Option<f64>,
    pub generator_cpu_us_per_user: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub join_p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub join_p99_ms: f64,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Idle {
    pub setup: Setup,
    pub rss_before_kb: Option<u64>,
    pub rss_after_setup_kb: Option<u64>,
    pub rss_settled_kb: Option<u64>,
    pub kb_per_user_after_setup: Option<f64>,
    pub kb_per_user_settled: Option<f64>,
    pub idle_server_cpu_pct: Option<f64>,
    /// A cluster's Redis, settled: part of `rss_settled_kb`.
    pub redis_rss_settled_kb: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct ChatStep {
    pub rate: f64,
    pub sends: u64,
    pub expected: u64,
    pub delivered: u64,
    pub deliveries_per_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p99_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub max_ms: f64,
    pub server_cpu_pct: Option<f64>,
    pub server_us_per_delivery: Option<f64>,
    /// A cluster's Redis: its part of `server_cpu_pct` and of `server_us_per_delivery`.
    pub redis_cpu_pct: Option<f64>,
    pub redis_us_per_delivery: Option<f64>,
    pub generator_cpu_pct: f64,
    pub generator_us_per_delivery: f64,
    /// What other processes took of the server's core meanwhile.
    pub others_on_server_core_pct: Option<f64>,
    pub ack_errors: u64,
    pub lost_connections: u64,
    pub sustained: bool,
    pub stop: Option<String>,
    /// How many times the step ran (see `Params::disturbed_pct`).
    pub attempts: u32,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Chat {
    pub users: usize,
    pub room_size: usize,
    pub steps: Vec<ChatStep>,
    /// The highest rate that kept p99 under the limit and lost nothing.
    pub max_sustained: Option<f64>,
    /// True when the run stopped because the generator, not the server, ran out of CPU.
    pub generator_bound: bool,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct ChurnStep {
    pub rate: f64,
    pub joins: u64,
    pub joins_per_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub join_p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub join_p99_ms: f64,
    pub failed: u64,
    pub held_back: u64,
    pub directory_frames_per_s: f64,
    pub directory_bytes_per_s: f64,
    /// Room-list pushes each watcher got per join: 2 for a push on every entry and departure.
    pub directory_frames_per_join_per_watcher: f64,
    pub server_cpu_pct: Option<f64>,
    pub server_us_per_join: Option<f64>,
    pub generator_cpu_pct: f64,
    pub others_on_server_core_pct: Option<f64>,
    pub sustained: bool,
    pub stop: Option<String>,
    /// How many times the step ran (see `Params::disturbed_pct`).
    pub attempts: u32,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Churn {
    pub watchers: usize,
    pub watchers_setup: Setup,
    pub steps: Vec<ChurnStep>,
    pub max_sustained: Option<f64>,
    pub generator_bound: bool,
}

/// JSON has no NaN: serde_json writes a figure that could not be measured as null.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Where a user of a crowd sits: rooms are filled one after another.
fn room_of(i: usize, room_size: usize) -> Rc<str> {
    Rc::from(format!("r{}", i / room_size))
}

async fn sleep_s(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// Server and generator CPU and a counter, read at the start and the end of a window.
struct Meter {
    at: Instant,
    server: Option<f64>,
    redis: Option<f64>,
    core: Option<f64>,
    own: f64,
}

struct Reading {
    wall: f64,
    server: Option<f64>,
    /// A cluster's Redis: part of `server`.
    redis: Option<f64>,
    own: f64,
    /// Busy time of the server's core not spent by the server: other processes of the machine.
    others_pct: Option<f64>,
}

impl Meter {
    fn start(probe: &Probe) -> Self {
        Meter {
            at: Instant::now(),
            server: probe.cpu_s(),
            redis: probe.redis_cpu_s(),
            core: probe.core_busy_s(),
            own: own_cpu_s(),
        }
    }

    fn read(&self, probe: &Probe) -> Reading {
        let wall = self.at.elapsed().as_secs_f64();
        let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let server = delta(self.server, probe.cpu_s());
        let core = delta(self.core, probe.core_busy_s());
        let others_pct = match (core, server) {
            (Some(core), Some(server)) => Some(((core - server) * 100.0 / wall).max(0.0)),
            _ => None,
        };
        Reading { wall, server, redis: delta(self.redis, probe.redis_cpu_s()), own: own_cpu_s() - self.own, others_pct }
    }
}

/// Connects `n` users, `at_once` at a time, each entering `room(i)` (or none): what the set-up
/// cost and how long it took. Stops early at the budget: the seed's set-up is quadratic.
async fn populate(
    bench: &Bench<'_>,
    n: usize,
    role: Role,
    room: &dyn Fn(usize) -> Option<Rc<str>>,
) -> (Vec<User>, Setup) {
    let stats = &bench.stats;
    let params = bench.params;
    stats.open_window();
    let (ready0, failed0) = (stats.ready.get(), stats.failed.get());
    let meter = Meter::start(&bench.probe);
    let budget = Duration::from_secs_f64(params.setup_budget_s);
    let mut users = Vec::with_capacity(n);
    let mut complete = true;
    loop {
        let done = (stats.ready.get() - ready0 + stats.failed.get() - failed0) as usize;
        while users.len() < n && users.len() - done < params.connecting_at_once {
            let i = users.len();
            users.push(client::spawn(bench.target(i), room(i), role, stats));
        }
        if done >= n {
            break;
        }
        if meter.at.elapsed() > budget {
            complete = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let Reading { wall, server, own, .. } = meter.read(&bench.probe);
    stats.close_window();
    let reached = (stats.ready.get() - ready0) as usize;
    let mut joins = std::mem::take(&mut *stats.join_latencies_us.borrow_mut());
    joins.sort_unstable();
    let setup = Setup {
        users: n,
        reached,
        failed: stats.failed.get() - failed0,
        complete: complete && reached == n,
        seconds: wall,
        server_cpu_us_per_user: server.map(|s| s * 1e6 / reached.max(1) as f64),
        generator_cpu_us_per_user: own * 1e6 / reached.max(1) as f64,
        join_p50_ms: percentile_ms(&joins, 0.50),
        join_p99_ms: percentile_ms(&joins, 0.99),
    };
    (users, setup)
}

/// Disconnects a crowd and waits until every connection is closed.
async fn disperse(bench: &Bench<'_>, users: Vec<User>) {
    drop(users);
    let deadline = Instant::now() + Duration::from_secs(20);
    while bench.stats.live.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the server finish its departures before the next load starts.
    sleep_s(bench.params.pause_s).await;
}

/// Memory with the crowd connected: right after set-up, and settled (after a pause and, for
/// Node, a forced full collection).
async fn measure_idle(bench: &Bench<'_>, setup: Setup, rss_before: Option<u64>, settle_s: f64) -> Idle {
    let rss_after_setup = bench.probe.rss_kb();
    let meter = Meter::start(&bench.probe);
    sleep_s(settle_s).await;
    let Reading { wall, server, .. } = meter.read(&bench.probe);
    (bench.collect_garbage)();
    sleep_s(bench.params.pause_s).await;
    let (rss_settled, redis_rss_settled) = (bench.probe.rss_kb(), bench.probe.redis_rss_kb());
    let per_user = |rss: Option<u64>| match (rss, rss_before) {
        (Some(after), Some(before)) if setup.reached > 0 => Some((after as f64 - before as f64) / setup.reached as f64),
        _ => None,
    };
    Idle {
        kb_per_user_after_setup: per_user(rss_after_setup),
        kb_per_user_settled: per_user(rss_settled),
        rss_before_kb: rss_before,
        rss_after_setup_kb: rss_after_setup,
        rss_settled_kb: rss_settled,
        idle_server_cpu_pct: server.map(|s| s * 100.0 / wall),
        redis_rss_settled_kb: redis_rss_settled,
        setup,
    }
}

async fn baseline_rss(bench: &Bench<'_>) -> Option<u64> {
    sleep_s(bench.params.pause_s).await;
    (bench.collect_garbage)();
    sleep_s(bench.params.pause_s).await;
    bench.probe.rss_kb()
}

/// Idle crowd in rooms, then chat at rising rates on the same crowd.
pub async fn idle_and_chat(bench: &Bench<'_>, users: usize, rates: &[f64], settle_s: f64) -> (Idle, Chat) {
    let p = bench.params;
    let rss_before = baseline_rss(bench).await;
    let (crowd, setup) = populate(bench, users, Role::Member, &|i| Some(room_of(i, p.room_size))).await;
    let complete = setup.complete;
    let idle = measure_idle(bench, setup, rss_before, settle_s).await;
    let mut chat = Chat { users, room_size: p.room_size, ..Chat::default() };
    if complete {
        // One sender from each room in turn, so that every room is busy all the time.
        let rooms = users / p.room_size;
        let order: Vec<usize> = (0..users).map(|k| (k % rooms) * p.room_size + k / rooms).collect();
        chat = chat_steps(bench, &crowd, &order, p.room_size, rates).await;
        chat.users = users;
    }
    disperse(bench, crowd).await;
    (idle, chat)
}

/// One room of `n`, chatting at rising rates.
pub async fn big_room(bench: &Bench<'_>) -> (Setup, Chat) {
    let p = bench.params;
    let n = p.big_room;
    let room: Rc<str> = Rc::from("big");
    let (crowd, setup) = populate(bench, n, Role::Member, &|_| Some(room.clone())).await;
    let mut chat = Chat { users: n, room_size: n, ..Chat::default() };
    if setup.complete {
        let order: Vec<usize> = (0..n).collect();
        chat = chat_steps(bench, &crowd, &order, n, &p.big_rates).await;
    }
    disperse(bench, crowd).await;
    (setup, chat)
}

fn disturbed(params: &Params, others_pct: Option<f64>, attempts: u32) -> bool {
    let disturbed = others_pct.is_some_and(|o| o > params.disturbed_pct);
    if disturbed && attempts <= params.retries {
        eprintln!("  other processes took {:.0}% of the server's core: again", others_pct.unwrap_or(0.0));
    }
    disturbed && attempts <= params.retries
}

async fn chat_steps(bench: &Bench<'_>, crowd: &[User], order: &[usize], room_size: usize, rates: &[f64]) -> Chat {
    let mut chat = Chat { users: crowd.len(), room_size, ..Chat::default() };
    for &rate in rates {
        let mut step = chat_step(bench, crowd, order, room_size, rate).await;
        while disturbed(bench.params, step.others_on_server_core_pct, step.attempts) {
            let again = chat_step(bench, crowd, order, room_size, rate).await;
            let attempts = step.attempts + 1;
            if again.others_on_server_core_pct < step.others_on_server_core_pct {
                step = again;
            }
            step.attempts = attempts;
        }
        let sustained = step.sustained;
        if sustained {
            chat.max_sustained = Some(rate);
        } else if step.generator_cpu_pct >= bench.params.generator_limit_pct {
            chat.generator_bound = true;
        }
        // A step lost to the rest of the machine says nothing of the server: go on.
        let lost_to_others = step.others_on_server_core_pct.is_some_and(|o| o > bench.params.disturbed_pct);
        chat.steps.push(step);
        if !sustained && !lost_to_others {
            break;
        }
    }
    chat
}

/// Sends at `rate` for a warm-up and a measured window, open loop (the schedule does not wait
/// for the server), then waits for the window's deliveries.
async fn chat_step(bench: &Bench<'_>, crowd: &[User], order: &[usize], room_size: usize, rate: f64) -> ChatStep {
    let (stats, probe, p) = (&bench.stats, &bench.probe, bench.params);
    let recipients = (room_size - 1) as u64;
    let (acks_errors0, lost0) = (stats.ack_errors.get(), stats.lost.get());
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(p.warmup_s);
    let end = warmup + Duration::from_secs_f64(p.window_s);
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut sent, mut next, mut window_sends) = (0u64, 0usize, 0u64);
    let mut window: Option<(Meter, u64)> = None;
    let measured = loop {
        ticker.tick().await;
        let elapsed = start.elapsed();
        if window.is_none() && elapsed >= warmup {
            stats.open_window();
            window = Some((Meter::start(probe), stats.deliveries.get()));
        }
        if elapsed >= end {
            stats.close_window();
            let (meter, deliveries0) = window.take().expect("the window opens before it ends");
            break (meter.read(probe), stats.deliveries.get() - deliveries0);
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while sent < due {
            crowd[order[next]].chat(now_ns());
            next = (next + 1) % order.len();
            sent += 1;
            if window.is_some() {
                window_sends += 1;
            }
        }
    };
    let (Reading { wall, server: server_cpu, redis: redis_cpu, own: own_cpu, others_pct }, received) = measured;
    let expected = window_sends * recipients;
    let deadline = Instant::now() + Duration::from_secs_f64(p.drain_s);
    while stats.window_deliveries.get() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = stats.window_deliveries.get();
    let mut latencies = std::mem::take(&mut *stats.latencies_us.borrow_mut());
    latencies.sort_unstable();
    let mut step = ChatStep {
        rate,
        sends: window_sends,
        expected,
        delivered,
        deliveries_per_s: received as f64 / wall,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: latencies.last().map_or(f64::NAN, |&us| us as f64 / 1000.0),
        server_cpu_pct: server_cpu.map(|s| s * 100.0 / wall),
        server_us_per_delivery: server_cpu.map(|s| s * 1e6 / received.max(1) as f64),
        redis_cpu_pct: redis_cpu.map(|s| s * 100.0 / wall),
        redis_us_per_delivery: redis_cpu.map(|s| s * 1e6 / received.max(1) as f64),
        generator_cpu_pct: own_cpu * 100.0 / wall,
        generator_us_per_delivery: own_cpu * 1e6 / received.max(1) as f64,
        others_on_server_core_pct: others_pct,
        ack_errors: stats.ack_errors.get() - acks_errors0,
        lost_connections: stats.lost.get() - lost0,
        sustained: false,
        stop: None,
        attempts: 1,
    };
    step.stop = if delivered < expected {
        Some(format!("{} of {} deliveries missing", expected - delivered, expected))
    } else if step.ack_errors > 0 {
        Some(format!("{} sends refused", step.ack_errors))
    } else if step.lost_connections > 0 {
        Some(format!("{} connections lost", step.lost_connections))
    } else if step.p99_ms.is_nan() || step.p99_ms > p.p99_limit_ms {
        Some(format!("p99 {:.1} ms over {} ms", step.p99_ms, p.p99_limit_ms))
    } else if step.generator_cpu_pct >= p.generator_limit_pct {
        Some(format!("generator at {:.0}% of its core", step.generator_cpu_pct))
    } else {
        None
    };
    step.sustained = step.stop.is_none();
    step
}

/// A lobby of watchers (connected, in no room) sees the room list change while users join and
/// leave at rising rates: each churner connects, enters the next of a set of rooms (in turn, so
/// that rooms open and close as well as change size), stays a moment and disconnects, as the
/// seed's users left.
pub async fn churn(bench: &Bench<'_>) -> Churn {
    let p = bench.params;
    let (watchers, setup) = populate(bench, p.churn_watchers, Role::Watcher, &|_| None).await;
    let mut churn = Churn { watchers: p.churn_watchers, watchers_setup: setup.clone(), ..Churn::default() };
    if setup.complete {
        sleep_s(p.pause_s).await;
        let mut next_room = 0u64;
        for &rate in &p.churn_rates {
            let mut step = churn_step(bench, rate, &mut next_room).await;
            while disturbed(p, step.others_on_server_core_pct, step.attempts) {
                let again = churn_step(bench, rate, &mut next_room).await;
                let attempts = step.attempts + 1;
                if again.others_on_server_core_pct < step.others_on_server_core_pct {
                    step = again;
                }
                step.attempts = attempts;
            }
            let sustained = step.sustained;
            if sustained {
                churn.max_sustained = Some(rate);
            } else if step.generator_cpu_pct >= p.generator_limit_pct {
                churn.generator_bound = true;
            }
            let lost_to_others = step.others_on_server_core_pct.is_some_and(|o| o > p.disturbed_pct);
            churn.steps.push(step);
            if !sustained && !lost_to_others {
                break;
            }
        }
    }
    disperse(bench, watchers).await;
    churn
}

async fn churn_step(bench: &Bench<'_>, rate: f64, next_room: &mut u64) -> ChurnStep {
    let (stats, probe, p) = (&bench.stats, &bench.probe, bench.params);
    let watchers = p.churn_watchers as u64;
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(p.warmup_s);
    let end = warmup + Duration::from_secs_f64(p.window_s);
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stay = Duration::from_secs_f64(p.churn_stay_s);
    let (mut started, mut held_back) = (0u64, 0u64);
    let mut window: Option<(Meter, [u64; 4])> = None;
    let counters = || {
        [stats.joins.get(), stats.failed.get(), stats.watcher_room_changes.get(), stats.watcher_room_change_bytes.get()]
    };
    let (measured, window_held_back) = loop {
        ticker.tick().await;
        let elapsed = start.elapsed();
        if window.is_none() && elapsed >= warmup {
            stats.open_window();
            window = Some((Meter::start(probe), counters()));
            held_back = 0;
        }
        if elapsed >= end {
            stats.close_window();
            let (meter, before) = window.take().expect("the window opens before it ends");
            let after = counters();
            let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
            break ((meter.read(probe), delta), held_back);
        }
        let due = (rate * elapsed.as_secs_f64()) as u64;
        while started < due {
            started += 1;
            let in_flight = stats.live.get().saturating_sub(watchers) as usize;
            if in_flight >= p.churn_in_flight {
                held_back += 1;
                continue;
            }
            let churner = *next_room;
            *next_room += 1;
            let room = format!("c{}", churner % p.churn_rooms as u64);
            // The handle may go at once: a churner leaves on its own.
            client::spawn(bench.target(churner as usize), Some(Rc::from(room)), Role::Churner(stay), stats);
        }
    };
    let (Reading { wall, server: server_cpu, own: own_cpu, others_pct, .. }, delta) = measured;
    let (joins, failed, frames, bytes) = (delta[0], delta[1], delta[2], delta[3]);
    // Late churners still count their latency: they started in the window.
    let deadline = Instant::now() + stay + Duration::from_secs(5);
    while stats.live.get() > watchers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = std::mem::take(&mut *stats.join_latencies_us.borrow_mut());
    latencies.sort_unstable();
    let mut step = ChurnStep {
        rate,
        joins,
        joins_per_s: joins as f64 / wall,
        join_p50_ms: percentile_ms(&latencies, 0.50),
        join_p99_ms: percentile_ms(&latencies, 0.99),
        failed,
        held_back: window_held_back,
        directory_frames_per_s: frames as f64 / wall,
        directory_bytes_per_s: bytes as f64 / wall,
        directory_frames_per_join_per_watcher: frames as f64 / joins.max(1) as f64 / watchers.max(1) as f64,
        server_cpu_pct: server_cpu.map(|s| s * 100.0 / wall),
        server_us_per_join: server_cpu.map(|s| s * 1e6 / joins.max(1) as f64),
        generator_cpu_pct: own_cpu * 100.0 / wall,
        others_on_server_core_pct: others_pct,
        sustained: false,
        stop: None,
        attempts: 1,
    };
    step.stop = if step.failed > 0 {
        Some(format!("{} joins failed", step.failed))
    } else if step.held_back > 0 || step.joins_per_s < 0.95 * rate {
        Some(format!("{:.0} joins/s of {rate:.0} asked", step.joins_per_s))
    } else if step.join_p99_ms.is_nan() || step.join_p99_ms > p.p99_limit_ms {
        Some(format!("join p99 {:.1} ms over {} ms", step.join_p99_ms, p.p99_limit_ms))
    } else if step.generator_cpu_pct >= p.generator_limit_pct {
        Some(format!("generator at {:.0}% of its core", step.generator_cpu_pct))
    } else {
        None
    };
    step.sustained = step.stop.is_none();
    step
}
