//! `noom-bench`: Noom's benchmark. A load generator speaking Socket.IO over WebSocket (many
//! users in one process, on one thread, pinned to one core), and a driver that starts each
//! server under test in turn (Noom, two Noom nodes sharing a Redis, the Node.js reference, the
//! floor), pinned to another core, runs the same loads against each, and writes what it found.
//!
//!   noom-bench run [--smoke] [--servers noom,noom-cluster,node,floor] [--out DIR] ...
//!   noom-bench against --url ws://127.0.0.1:3000[,ws://127.0.0.1:3001] [--pid PID,...] [--smoke] [--out DIR]
//!   noom-bench soak [--smoke] [--users 3000] [--duration 10m] [--cooldown 60s] [--out DIR] ...
//!
//! `run` is what `bench/run` calls; `against` loads a server someone else started, or the nodes
//! of a cluster, users alternating between them (CPU and memory only when their pids are given);
//! `soak` is what `bench/soak` calls: a long mixed load on one Noom, and whether it gives
//! everything back afterwards.

mod client;
mod media;
mod report;
mod scenarios;
mod servers;
mod soak;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use client::{Stats, Target};
use report::{Machine, Report, ServerResult};
use scenarios::{Bench, Params};
use servers::{Kind, Paths, Probe, Server};

#[derive(Parser)]
#[command(
    name = "noom-bench",
    about = "Noom's benchmark: Noom, the Node.js reference and the floor under the same loads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// Tiny loads, a few seconds in all: checks that everything still works, measures nothing.
    #[arg(long)]
    smoke: bool,
    /// Where results.json, results.md and latency.svg go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Scenarios to run, comma-separated: idle (with chat in rooms of ten), large, churn, big.
    #[arg(long, value_delimiter = ',', default_value = "idle,large,churn,big")]
    scenarios: Vec<String>,
    /// The core the generator runs on.
    #[arg(long, default_value_t = 0)]
    generator_cpu: usize,
    /// Run without pinning anything.
    #[arg(long)]
    no_pin: bool,
    /// The command line to print in the report (the script that called this).
    #[arg(long)]
    command_line: Option<String>,
    /// Send rates for chat in rooms of ten, comma-separated, instead of the run's own.
    #[arg(long, value_delimiter = ',')]
    chat_rates: Vec<f64>,
    /// Users of the idle-and-chat scenario, instead of the run's own.
    #[arg(long)]
    users: Option<usize>,
    /// Seconds an idle crowd waits before its memory is read as settled, instead of the run's own.
    #[arg(long)]
    settle: Option<f64>,
}

impl Common {
    fn params(&self) -> Params {
        let mut params = if self.smoke { Params::smoke() } else { Params::full() };
        if !self.chat_rates.is_empty() {
            params.chat_rates = self.chat_rates.clone();
        }
        if let Some(settle) = self.settle {
            params.settle_s = settle;
        }
        if let Some(users) = self.users {
            params.small_users = users.div_ceil(params.room_size) * params.room_size;
        }
        params
    }
}

#[derive(Subcommand)]
enum Command {
    /// Starts each server in turn and runs every scenario against it.
    Run {
        #[command(flatten)]
        common: Common,
        /// Servers, comma-separated, in the order they run: noom, noom-cluster (two Noom nodes
        /// sharing a Redis), node, floor.
        #[arg(long, value_delimiter = ',', default_value = "noom,noom-cluster,node,floor")]
        servers: Vec<String>,
        #[arg(long, default_value = "target/release/noom")]
        noom_bin: PathBuf,
        #[arg(long, default_value = "target/release/noom-floor")]
        floor_bin: PathBuf,
        #[arg(long, default_value = "bench/reference-node/server.js")]
        node_server: PathBuf,
        /// The Redis server noom-cluster's nodes share.
        #[arg(long, default_value = "redis-server")]
        redis_bin: PathBuf,
        /// The core the servers run on.
        #[arg(long, default_value_t = 1)]
        server_cpu: usize,
    },
    /// Writes results.md and latency.svg again from a run's results.json.
    Report {
        /// The results.json of a run.
        #[arg(long, default_value = "bench/results/results.json")]
        json: PathBuf,
        /// Where results.md and latency.svg go (beside the JSON if not given).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs every scenario against a server that is already running.
    Against {
        #[command(flatten)]
        common: Common,
        /// The server, as ws://HOST:PORT or http://HOST:PORT; for a cluster, its nodes,
        /// comma-separated, between which users alternate.
        #[arg(long, value_delimiter = ',', required = true)]
        url: Vec<String>,
        /// The server's process ids, comma-separated (a cluster's nodes and its Redis), to read
        /// their CPU time and memory, summed.
        #[arg(long, value_delimiter = ',')]
        pid: Vec<u32>,
        /// The name the report gives it.
        #[arg(long, default_value = "Noom")]
        name: String,
    },
    /// Runs thousands of users joining, chatting, calling, leaving and reconnecting against one
    /// Noom for a long time, then checks that it holds nothing and how its memory came back.
    Soak(soak::Args),
    /// Synthetic participants speaking WebRTC in calls through Noom's media server and through
    /// the floor, a plain UDP relay: what each forwards, at what cost and latency.
    Media(media::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (no_pin, generator_cpu) = match &cli.command {
        Command::Run { common, .. } | Command::Against { common, .. } => (common.no_pin, common.generator_cpu),
        Command::Soak(args) => (args.cores.no_pin, args.cores.generator_cpu),
        Command::Media(args) => (args.cores.no_pin, args.cores.generator_cpu),
        Command::Report { json, out } => {
            return match rewrite_report(json, out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("noom-bench: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    if !no_pin && let Err(e) = servers::pin_self(generator_cpu) {
        eprintln!("noom-bench: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("noom-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("noom-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Idle,
    Large,
    Churn,
    Big,
}

fn stages(names: &[String]) -> Result<Vec<Stage>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "idle" => Ok(Stage::Idle),
            "large" => Ok(Stage::Large),
            "churn" => Ok(Stage::Churn),
            "big" => Ok(Stage::Big),
            other => bail!("unknown scenario {other:?} (idle, large, churn, big)"),
        })
        .collect()
}

/// Runs everything asked; false when a smoke run found something broken.
async fn run(command: Command) -> Result<bool> {
    let command = match command {
        Command::Soak(args) => return soak::run(args).await,
        Command::Media(args) => {
            servers::raise_file_limit(65_536);
            return media::run(args).await;
        }
        command => command,
    };
    let load_before = load_average();
    let files = servers::raise_file_limit(65_536);
    let (common, report) = match command {
        Command::Run { common, servers, noom_bin, floor_bin, node_server, redis_bin, server_cpu } => {
            let known = Kind::ALL.map(Kind::name).join(", ");
            let kinds: Vec<Kind> = servers
                .iter()
                .map(|s| Kind::parse(s).with_context(|| format!("unknown server {s:?} ({known})")))
                .collect::<Result<_>>()?;
            let params = common.params();
            check_files(files, &params)?;
            let paths = Paths {
                noom: noom_bin,
                floor: floor_bin,
                node_server,
                redis: redis_bin,
                logs: common.out.join("logs"),
            };
            let pin = (!common.no_pin).then_some(server_cpu);
            let mut results: Vec<ServerResult> =
                kinds.iter().map(|k| ServerResult { server: k.label().into(), ..Default::default() }).collect();
            for stage in stages(&common.scenarios)? {
                // Every server meets a stage before the next stage starts, so that drift in the
                // machine's load shows in all of them alike.
                for (kind, result) in kinds.iter().zip(results.iter_mut()) {
                    let mut server = match Server::start(*kind, &paths, pin) {
                        Ok(s) => s,
                        Err(e) => {
                            result.errors.push(format!("{e:#}"));
                            continue;
                        }
                    };
                    let began = std::time::Instant::now();
                    let collect = || server.collect_garbage();
                    let bench = Bench {
                        targets: targets(&server.addrs),
                        stats: Rc::new(Stats::default()),
                        probe: server.probe.clone(),
                        params: &params,
                        collect_garbage: &collect,
                    };
                    run_stage(stage, &bench, result).await;
                    if !server.alive() {
                        result.errors.push("the server died during the run".into());
                    }
                    let ran = began.elapsed().as_secs_f64();
                    server.stop();
                    eprintln!(
                        "{:?}: {} done in {ran:.1} s (+{:.1} s to stop)",
                        stage,
                        kind.label(),
                        began.elapsed().as_secs_f64() - ran
                    );
                }
            }
            let machine = machine(load_before, pin, (!common.no_pin).then_some(common.generator_cpu));
            (common, Report { command: String::new(), smoke: false, machine, params, servers: results })
        }
        Command::Report { .. } | Command::Soak(_) | Command::Media(_) => {
            unreachable!("answered before the runtime starts, or above")
        }
        Command::Against { common, url, pid, name } => {
            let params = common.params();
            check_files(files, &params)?;
            let addrs = url
                .iter()
                .map(|url| {
                    let host = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
                    host.to_socket_addrs()
                        .with_context(|| format!("cannot resolve {host}"))?
                        .next()
                        .with_context(|| format!("{host} has no address"))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut result = ServerResult { server: name, ..Default::default() };
            let nothing = || {};
            for stage in stages(&common.scenarios)? {
                let bench = Bench {
                    targets: targets(&addrs),
                    stats: Rc::new(Stats::default()),
                    probe: Probe { pids: pid.clone(), ..Probe::default() },
                    params: &params,
                    collect_garbage: &nothing,
                };
                run_stage(stage, &bench, &mut result).await;
            }
            let machine = machine(load_before, None, (!common.no_pin).then_some(common.generator_cpu));
            (common, Report { command: String::new(), smoke: false, machine, params, servers: vec![result] })
        }
    };
    let mut report = report;
    report.smoke = common.smoke;
    report.command = common.command_line.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    report.machine.load_after = load_average();
    write_results(&common.out, &report)?;
    println!("{}", report::summary_table(&report));
    println!("{}", report::stops(&report));
    println!("{}", report::targets_table(&report));
    println!("Load average before: {}; after: {}", report.machine.load_before, report.machine.load_after);
    println!("Full results: {}", common.out.join("results.md").display());
    Ok(!common.smoke || smoke_passed(&report))
}

async fn run_stage(stage: Stage, bench: &Bench<'_>, result: &mut ServerResult) {
    let p = bench.params;
    match stage {
        Stage::Idle => {
            let (idle, chat) = scenarios::idle_and_chat(bench, p.small_users, &p.chat_rates, p.settle_s).await;
            result.idle_small = Some(idle);
            result.chat = Some(chat);
        }
        Stage::Large => {
            let rate = p.large_deliveries / (p.room_size - 1) as f64;
            let (idle, chat) = scenarios::idle_and_chat(bench, p.large_users, &[rate], p.large_settle_s).await;
            result.idle_large = Some(idle);
            result.chat_large = Some(chat);
        }
        Stage::Churn => result.churn = Some(scenarios::churn(bench).await),
        Stage::Big => {
            let (setup, chat) = scenarios::big_room(bench).await;
            result.big_setup = Some(setup);
            result.big_room = Some(chat);
        }
    }
}

fn targets(addrs: &[SocketAddr]) -> Vec<Rc<Target>> {
    addrs.iter().map(|&addr| Rc::new(Target::new(addr))).collect()
}

fn check_files(limit: u64, params: &Params) -> Result<()> {
    let needed = params.large_users.max(params.churn_watchers + params.churn_in_flight) as u64 + 100;
    if limit < needed {
        bail!("the open-file limit is {limit}, and this run needs {needed}: raise it (ulimit -n)");
    }
    Ok(())
}

/// A smoke run passes when every scenario ran on every server and lost nothing at its first,
/// tiny, load.
fn smoke_passed(report: &Report) -> bool {
    let mut ok = true;
    for s in &report.servers {
        let mut fail = |what: &str| {
            eprintln!("smoke: {}: {what}", s.server);
            ok = false;
        };
        for e in &s.errors {
            fail(e);
        }
        // Only the scenarios asked for are there to check.
        for (name, chat) in [("chat", &s.chat), ("large", &s.chat_large), ("big room", &s.big_room)] {
            let Some(chat) = chat else { continue };
            match chat.steps.first() {
                Some(step) if step.delivered > 0 && step.delivered == step.expected && step.ack_errors == 0 => {}
                Some(step) => fail(&format!("{name}: {} of {} delivered", step.delivered, step.expected)),
                None => fail(&format!("{name}: did not run (set-up incomplete)")),
            }
        }
        if let Some(churn) = &s.churn {
            match churn.steps.first() {
                Some(step) if step.joins > 0 && step.failed == 0 => {}
                _ => fail("churn: no joins"),
            }
        }
    }
    ok
}

fn rewrite_report(json: &std::path::Path, out: Option<&std::path::Path>) -> Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("cannot read {}", json.display()))?;
    let report: Report =
        serde_json::from_str(&text).with_context(|| format!("{} is not a run's results", json.display()))?;
    let out = out.or(json.parent()).unwrap_or(std::path::Path::new("."));
    std::fs::write(out.join("results.md"), report::markdown(&report))?;
    std::fs::write(out.join("latency.svg"), report::svg(&report))?;
    Ok(())
}

fn write_results(out: &std::path::Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(out.join("results.json"), json + "\n")?;
    std::fs::write(out.join("results.md"), report::markdown(report))?;
    std::fs::write(out.join("latency.svg"), report::svg(report))?;
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

fn machine(load_before: String, server_core: Option<usize>, generator_core: Option<usize>) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let output = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    Machine {
        cpu,
        cores,
        memory_gib,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        node: output("node", &["--version"]),
        date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        load_before,
        load_after: String::new(),
        server_core,
        generator_core,
    }
}
