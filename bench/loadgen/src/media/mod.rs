//! The media benchmark: synthetic participants (`participant.rs`, real WebRTC on str0m) in the
//! calls of each scenario (`scenarios.rs`), through Noom's media server (`noom_peer.rs`),
//! through Janus's VideoRoom (`janus.rs`, `janus_peer.rs`) and through the floor
//! (`floor_peer.rs`, a plain UDP relay), one server after the other on the same core, the
//! generator on another; what they saw and what each server cost (`report.rs`).
//!
//!   noom-bench media [--smoke] [--servers noom,janus,floor] [--scenarios grid,rooms-of-4,webinar,slow-tenth,capacity]

mod encoded;
mod floor_peer;
mod janus;
mod janus_peer;
mod noom_peer;
mod pace;
mod participant;
mod report;
mod scenarios;
mod sio;
mod stamp;
mod stats;
mod websocket;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{mpsc, oneshot};

use crate::client::now_ns;
use crate::servers::{self, Kind, Server};
use encoded::Encoded;
use participant::{Plan, Shared, Show};
use scenarios::{CAPACITY_LABEL, CAPACITY_SIZES, Name, Scenario, layer_for};
use stats::{Outcome, Seen, Window};

#[derive(clap::Args)]
pub struct Args {
    /// A few participants for a few seconds: checks that everything still works.
    #[arg(long)]
    smoke: bool,
    /// Servers, comma-separated, in the order they run: noom, janus, floor.
    #[arg(long, value_delimiter = ',', default_value = "noom,janus,floor")]
    servers: Vec<String>,
    /// Scenarios, comma-separated: grid, rooms-of-4, webinar, slow-tenth, capacity.
    #[arg(long, value_delimiter = ',', default_value = "grid,rooms-of-4,webinar,slow-tenth,capacity")]
    scenarios: Vec<String>,
    /// How many participants each scenario has, as a share of its full size (1: a room of 50,
    /// ten rooms of 4, 1 speaker + 99 listeners, a room of 20, rooms of 12 to 32 for capacity).
    #[arg(long)]
    scale: Option<f64>,
    /// Seconds measured in each scenario, after the call settled.
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds a call settles before it is measured: layers chosen, keyframes sent, each
    /// viewer's bandwidth estimate grown to what it is shown.
    #[arg(long)]
    settle: Option<f64>,
    #[arg(long, default_value = "target/release/noom")]
    pub noom_bin: PathBuf,
    #[arg(long, default_value = "target/release/noom-floor")]
    pub floor_bin: PathBuf,
    /// Janus, as Debian installs it (`apt-get install janus`).
    #[arg(long, default_value = "janus")]
    pub janus_bin: PathBuf,
    /// Where results.md, results.json and cpu.svg go.
    #[arg(long, default_value = "bench/results/media")]
    out: PathBuf,
    /// Where the prepared media is kept.
    #[arg(long, default_value = "target/bench-media")]
    media_dir: PathBuf,
    #[command(flatten)]
    pub cores: servers::Cores,
    /// The command line to print in the report (the script that called this).
    #[arg(long)]
    command_line: Option<String>,
    /// Writes results.md and cpu.svg again from this run's results.json, beside it, and runs
    /// nothing.
    #[arg(long)]
    rewrite_report: Option<PathBuf>,
    /// Prints the frames received each second, the server's CPU and its anonymous memory, while
    /// the call settles and is measured.
    #[arg(long)]
    timeline: bool,
}

pub async fn run(args: Args) -> Result<bool> {
    if let Some(json) = &args.rewrite_report {
        let text = std::fs::read_to_string(json).with_context(|| format!("cannot read {}", json.display()))?;
        let outcomes: Vec<Outcome> = serde_json::from_str(&text)?;
        let out = json.parent().unwrap_or(std::path::Path::new("."));
        let command = args.command_line.clone().unwrap_or_else(|| "./bench/media".into());
        report::write(out, &command, false, &outcomes)?;
        return Ok(true);
    }
    let scale = args.scale.unwrap_or(if args.smoke { 0.1 } else { 1.0 });
    let seconds = args.seconds.unwrap_or(if args.smoke { 3.0 } else { 20.0 });
    let media = Rc::new(Encoded::prepare(&args.media_dir)?);
    let cpu = args.cores.server();
    let logs = args.out.join("logs");
    let mut outcomes = Vec::new();
    let servers = args
        .servers
        .iter()
        .map(|server| match server.as_str() {
            "noom" => Ok(Kind::Noom),
            "janus" => Ok(Kind::Janus),
            "floor" => Ok(Kind::Floor),
            other => bail!("no server {other:?} (noom, janus, floor)"),
        })
        .collect::<Result<Vec<_>>>()?;
    for name in &args.scenarios {
        let name = Name::parse(name).with_context(|| format!("no scenario {name:?}"))?;
        if name == Name::Capacity {
            // A server at a time, each up its steps until one is not carried. The floor is left
            // out: it carries whatever the generator can send.
            for &server in servers.iter().filter(|&&s| s != Kind::Floor) {
                for scenario in sized(name, scale) {
                    let outcome = run_one(server, &scenario, &args, &media, cpu, &logs, seconds).await?;
                    eprintln!("{}", report::line(&outcome));
                    let (carried, generator_bound) = (outcome.carried(), outcome.generator_bound());
                    outcomes.push(outcome);
                    if !carried || generator_bound {
                        break;
                    }
                }
            }
            continue;
        }
        for scenario in sized(name, scale) {
            for &server in &servers {
                let outcome = run_one(server, &scenario, &args, &media, cpu, &logs, seconds).await?;
                eprintln!("{}", report::line(&outcome));
                outcomes.push(outcome);
            }
        }
    }
    let command = args.command_line.clone().unwrap_or_else(|| "noom-bench media".into());
    report::write(&args.out, &command, args.smoke, &outcomes)?;
    // A smoke passes when every participant of every server got video and nothing failed.
    let passed = outcomes.iter().all(|o| o.errors.is_empty() && o.all.without_video == 0 && o.all.frames > 0);
    if !passed {
        eprintln!("noom-bench: a participant failed, or got no video: see {}", args.out.join("results.md").display());
    }
    Ok(passed)
}

/// The scenario at `scale` of its full size; the slow-link room twice, without the slow link
/// and with it, so that the others' figures compare in one run.
fn sized(name: Name, scale: f64) -> Vec<Scenario> {
    let at_least = |full: f64, least: usize| ((full * scale).round() as usize).max(least);
    let one = |rooms, room_size, slow_kbps| Scenario { name, rooms, room_size, slow_kbps };
    match name {
        Name::Grid => vec![one(1, at_least(50.0, 4), None)],
        Name::SmallRooms => vec![one(at_least(10.0, 1), 4, None)],
        // The largest call Noom holds (`--call-size` goes up to 100).
        Name::Webinar => vec![one(1, at_least(100.0, 3), None)],
        Name::SlowTenth => {
            let size = at_least(20.0, 10);
            vec![one(1, size, None), one(1, size, Some(1_000))]
        }
        Name::Capacity => {
            let mut sizes: Vec<usize> = CAPACITY_SIZES.iter().map(|&n| at_least(n as f64, 3)).collect();
            sizes.dedup();
            sizes.into_iter().map(|size| one(1, size, None)).collect()
        }
    }
}

async fn run_one(
    kind: Kind,
    scenario: &Scenario,
    args: &Args,
    media: &Rc<Encoded>,
    cpu: Option<usize>,
    logs: &std::path::Path,
    seconds: f64,
) -> Result<Outcome> {
    let n = scenario.participants();
    let address = match kind {
        Kind::Janus => janus::host_address()?,
        _ => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let server = match kind {
        Kind::Noom => {
            let media_port = free_udp_port()?.to_string();
            let call_size = scenario.room_size.max(2).to_string();
            let noom_args = [
                "--media-port",
                &media_port,
                "--media-address",
                "127.0.0.1",
                "--call-size",
                &call_size,
                "--pairs",
                "server",
                "--event-rate",
                "1000000",
            ];
            Server::start_noom(&args.noom_bin, &noom_args, cpu, logs)?
        }
        Kind::Janus => {
            let server = janus::start(&args.janus_bin, address, cpu, logs)?;
            let rooms = (0..scenario.rooms).map(|room| room_name(scenario, room));
            janus_peer::create_rooms(server.addrs[0], rooms, scenario.room_size).await?;
            server
        }
        _ => Server::start_program(Kind::Floor, &args.floor_bin, &["--media-relay"], cpu, logs)?,
    };
    let anon_empty = server.probe.anon_kb();
    let window = Rc::new(Window::default());
    let shared = Rc::new(Shared {
        server: server.addrs[0],
        address,
        media: media.clone(),
        ids: RefCell::default(),
        mids: RefCell::default(),
    });
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let mut people = Vec::new();
    // Joined a room's worth at a time, as people arrive, not all in one instant.
    for room in 0..scenario.rooms {
        let mut joins = Vec::new();
        for at in 0..scenario.room_size {
            let index = (room * scenario.room_size + at) as u32;
            let plan = Plan {
                index,
                room: room_name(scenario, room),
                publishes: scenario.publishes(at),
                slow_kbps: scenario.slow(at).then_some(scenario.slow_kbps).flatten(),
                tiles: scenario
                    .view(at)
                    .into_iter()
                    .map(|(who, h)| ((room * scenario.room_size + who) as u32, h))
                    .collect(),
            };
            let seen = Rc::new(RefCell::new(Seen::new(window.clone(), plan.slow_kbps.is_some())));
            let (orders, ordered) = mpsc::unbounded_channel();
            let (joined, on_join) = oneshot::channel();
            let (shared, seen_by, errors) = (shared.clone(), seen.clone(), errors.clone());
            tokio::task::spawn_local(async move {
                let ran = match kind {
                    Kind::Noom => noom_peer::run(plan, shared, seen_by, joined, ordered).await,
                    Kind::Janus => janus_peer::run(plan, shared, seen_by, joined, ordered).await,
                    _ => floor_peer::run(plan, shared, seen_by, joined, ordered).await,
                };
                if let Err(e) = ran {
                    errors.borrow_mut().push(format!("{e:#}"));
                }
            });
            joins.push(on_join);
            people.push((room, at, seen, orders));
        }
        for join in joins {
            if tokio::time::timeout(Duration::from_secs(20), join).await.is_err() {
                errors.borrow_mut().push("a participant did not join within 20 s".into());
            }
        }
    }
    // What each shows, and so which layers each publisher's camera must send.
    let mut wanted = vec![Vec::<u8>::new(); n];
    for &(room, at, _, _) in &people {
        for (who, height) in scenario.view(at) {
            let (layers, layer) = (&mut wanted[room * scenario.room_size + who], layer_for(height));
            if !layers.contains(&layer) {
                layers.push(layer);
            }
        }
    }
    let base = |room: usize| (room * scenario.room_size) as u32;
    for (room, at, seen, orders) in &people {
        let show = Show {
            tiles: scenario.view(*at).into_iter().map(|(who, h)| (base(*room) + who as u32, h)).collect(),
            voices: scenario.voices(*at).into_iter().map(|who| base(*room) + who as u32).collect(),
            layers: wanted[room * scenario.room_size + at].clone(),
        };
        seen.borrow_mut().shows_video = !show.tiles.is_empty();
        let _ = orders.send(show);
    }
    // Layers settle, keyframes come, the bandwidth estimates find their level.
    let settle = args.settle.unwrap_or(if args.smoke { 2.0 } else { 20.0 });
    let frames = || people.iter().map(|(_, _, seen, _)| seen.borrow().all_frames).sum::<u64>();
    let wait = async |secs: f64| {
        if !args.timeline {
            return tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        }
        let until = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        while tokio::time::Instant::now() < until {
            let (f, cpu) = (frames(), server.probe.cpu_s().unwrap_or(0.0));
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cpu = server.probe.cpu_s().unwrap_or(0.0) - cpu;
            let anon = server.probe.anon_kb().map_or("?".into(), |kb| format!("{kb}"));
            eprintln!("  {} frames/s, server CPU {:.0} ms/s, memory {anon} KB", frames() - f, cpu * 1000.0);
        }
    };
    wait(settle).await;
    let (server_cpu_before, own_before) = (server.probe.cpu_s(), servers::own_cpu_s());
    let anon_before = server.probe.anon_kb();
    window.open(now_ns());
    wait(seconds).await;
    window.close(now_ns());
    let (server_cpu_after, own_after) = (server.probe.cpu_s(), servers::own_cpu_s());
    let (server_rss_kb, anon_after) = (server.probe.rss_kb(), server.probe.anon_kb());
    let seens: Vec<_> = people.iter().map(|(_, _, seen, _)| seen.clone()).collect();
    drop(people);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop();
    let seens: Vec<_> = seens.iter().map(|s| s.borrow()).collect();
    let group = |slow: Option<bool>| {
        stats::summarise(seens.iter().map(|s| &**s).filter(|s| slow.is_none_or(|slow| s.slow == slow)), seconds)
    };
    let has_slow = seens.iter().any(|s| s.slow);
    // The same failure of many participants is said once, with how many.
    let mut errors = errors.borrow().clone();
    errors.sort();
    let mut counted: Vec<(String, usize)> = Vec::new();
    for e in errors {
        match counted.last_mut() {
            Some((last, n)) if *last == e => *n += 1,
            _ => counted.push((e, 1)),
        }
    }
    let errors = counted.into_iter().map(|(e, n)| if n > 1 { format!("{n} participants: {e}") } else { e }).collect();
    Ok(Outcome {
        server: kind.label().into(),
        scenario: label(scenario),
        participants: n,
        seconds,
        all: group(None),
        others: has_slow.then(|| group(Some(false))),
        slow: has_slow.then(|| group(Some(true))),
        server_cpu_s: server_cpu_after.zip(server_cpu_before).map(|(a, b)| a - b),
        server_rss_kb,
        kb_per_participant: anon_after.zip(anon_empty).map(|(full, empty)| (full as f64 - empty as f64) / n as f64),
        kb_growth_per_participant: anon_after
            .zip(anon_before)
            .map(|(end, start)| (end as f64 - start as f64) / n as f64),
        generator_cpu_s: own_after - own_before,
        errors,
    })
}

fn label(s: &Scenario) -> String {
    match s.name {
        Name::Grid => format!("grid: 1 room of {}", s.room_size),
        Name::SmallRooms => format!("rooms of 4: {} rooms", s.rooms),
        Name::Webinar => format!("webinar: 1 speaker, {} listeners", s.room_size - 1),
        Name::SlowTenth => match s.slow_kbps {
            Some(kbps) => format!("slow tenth: room of {}, a tenth at {kbps} kbit/s", s.room_size),
            None => format!("slow tenth: room of {}, no slow link", s.room_size),
        },
        Name::Capacity => format!("{CAPACITY_LABEL}{}", s.room_size),
    }
}

fn room_name(scenario: &Scenario, room: usize) -> String {
    format!("load-{}-{room}", scenario.name.id())
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
