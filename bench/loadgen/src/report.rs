//! What a run found, written three ways: JSON with every figure, a Markdown report (the summary
//! with ratios, the targets, every step), and an SVG plot of latency against load.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scenarios::{Chat, ChatStep, Churn, Idle, Params, Setup};
use crate::servers::Kind;

#[derive(Serialize, Deserialize, Default, Clone)]
pub struct ServerResult {
    pub server: String,
    pub idle_small: Option<Idle>,
    pub chat: Option<Chat>,
    pub idle_large: Option<Idle>,
    pub chat_large: Option<Chat>,
    pub churn: Option<Churn>,
    pub big_setup: Option<Setup>,
    pub big_room: Option<Chat>,
    pub errors: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub node: String,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
    pub server_core: Option<usize>,
    pub generator_core: Option<usize>,
}

#[derive(Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    pub smoke: bool,
    pub machine: Machine,
    pub params: Params,
    pub servers: Vec<ServerResult>,
}

impl Report {
    fn server(&self, label: &str) -> Option<&ServerResult> {
        self.servers.iter().find(|s| s.server == label)
    }
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "—".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

fn step_at(chat: Option<&Chat>, rate: f64) -> Option<&ChatStep> {
    chat?.steps.iter().find(|s| s.rate == rate)
}

/// The rates the summary compares at: 5,000 and 10,000 sends/s in a full run, the first two
/// otherwise.
fn chat_points(params: &Params) -> Vec<f64> {
    let wanted = [5_000.0, 10_000.0];
    if wanted.iter().all(|w| params.chat_rates.contains(w)) {
        wanted.to_vec()
    } else {
        params.chat_rates.iter().take(2).copied().collect()
    }
}

fn big_point(params: &Params) -> f64 {
    if params.big_rates.contains(&50.0) { 50.0 } else { params.big_rates[0] }
}

/// The highest churn rate that every server was measured at, so their costs compare.
fn churn_point(report: &Report) -> Option<f64> {
    report.params.churn_rates.iter().copied().rfind(|&rate| {
        report.servers.iter().all(|s| s.churn.as_ref().is_some_and(|c| c.steps.iter().any(|st| st.rate == rate)))
    })
}

fn large_label(p: &Params) -> String {
    format!("{} users", thousands(p.large_users as f64))
}

pub fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

type Pick<'a> = Box<dyn Fn(&ServerResult) -> Option<f64> + 'a>;

struct Row<'a> {
    label: String,
    decimals: usize,
    pick: Pick<'a>,
}

fn summary_rows(report: &Report) -> Vec<Row<'_>> {
    let p = &report.params;
    let small = thousands(p.small_users as f64);
    let large = large_label(p);
    let mut rows: Vec<Row> = vec![
        Row {
            label: format!("Idle, {small} users in rooms of {}: RSS per user, settled (KB)", p.room_size),
            decimals: 1,
            pick: Box::new(|s| s.idle_small.as_ref()?.kb_per_user_settled),
        },
        Row {
            label: format!("Idle, {small} users: RSS per user right after set-up (KB)"),
            decimals: 1,
            pick: Box::new(|s| s.idle_small.as_ref()?.kb_per_user_after_setup),
        },
        Row {
            label: format!("Idle, {large}: RSS per user, settled (KB)"),
            decimals: 1,
            pick: Box::new(|s| s.idle_large.as_ref().filter(|i| i.setup.complete)?.kb_per_user_settled),
        },
        Row {
            label: format!("Set-up, {small} users: server CPU per user (µs)"),
            decimals: 0,
            pick: Box::new(|s| s.idle_small.as_ref()?.setup.server_cpu_us_per_user),
        },
        Row {
            label: format!("Set-up, {large}: users connected within {} s", p.setup_budget_s),
            decimals: 0,
            pick: Box::new(|s| Some(s.idle_large.as_ref()?.setup.reached as f64)),
        },
        Row {
            label: format!("Set-up, {large}: server CPU per user connected (µs)"),
            decimals: 0,
            pick: Box::new(|s| s.idle_large.as_ref()?.setup.server_cpu_us_per_user),
        },
        Row {
            label: format!("Set-up, {large}: seconds (— when not finished)"),
            decimals: 1,
            pick: Box::new(|s| Some(s.idle_large.as_ref().filter(|i| i.setup.complete)?.setup.seconds)),
        },
    ];
    for rate in chat_points(p) {
        let r = thousands(rate);
        rows.push(Row {
            label: format!("Chat {r} sends/s, rooms of {}: server CPU per delivery (µs)", p.room_size),
            decimals: 2,
            pick: Box::new(move |s| step_at(s.chat.as_ref(), rate)?.server_us_per_delivery),
        });
        rows.push(Row {
            label: format!("Chat {r} sends/s: delivery latency p50 (ms)"),
            decimals: 2,
            pick: Box::new(move |s| Some(step_at(s.chat.as_ref(), rate)?.p50_ms)),
        });
        rows.push(Row {
            label: format!("Chat {r} sends/s: delivery latency p99 (ms)"),
            decimals: 2,
            pick: Box::new(move |s| Some(step_at(s.chat.as_ref(), rate)?.p99_ms)),
        });
        rows.push(Row {
            label: format!("Chat {r} sends/s: generator CPU (% of its core)"),
            decimals: 0,
            pick: Box::new(move |s| Some(step_at(s.chat.as_ref(), rate)?.generator_cpu_pct)),
        });
    }
    rows.push(Row {
        label: format!("Chat, rooms of {}: highest rate sustained (sends/s)", p.room_size),
        decimals: 0,
        pick: Box::new(|s| s.chat.as_ref()?.max_sustained),
    });
    rows.push(Row {
        label: format!("{large} at {} deliveries/s: p99 (ms)", thousands(p.large_deliveries)),
        decimals: 2,
        pick: Box::new(|s| Some(s.chat_large.as_ref()?.steps.first()?.p99_ms)),
    });
    rows.push(Row {
        label: format!("{large} at {} deliveries/s: server CPU per delivery (µs)", thousands(p.large_deliveries)),
        decimals: 2,
        pick: Box::new(|s| s.chat_large.as_ref()?.steps.first()?.server_us_per_delivery),
    });
    rows.push(Row {
        label: format!("Churn, {} watching: highest rate sustained (joins/s)", thousands(p.churn_watchers as f64)),
        decimals: 0,
        pick: Box::new(|s| s.churn.as_ref()?.max_sustained),
    });
    if let Some(rate) = churn_point(report) {
        let r = thousands(rate);
        let at = move |s: &ServerResult| s.churn.as_ref()?.steps.iter().find(|st| st.rate == rate).cloned();
        rows.push(Row {
            label: format!("Churn at {r} joins/s: room-list pushes per join per watcher"),
            decimals: 3,
            pick: Box::new(move |s| Some(at(s)?.directory_frames_per_join_per_watcher)),
        });
        rows.push(Row {
            label: format!("Churn at {r} joins/s: room-list bytes per second to the lobby"),
            decimals: 0,
            pick: Box::new(move |s| Some(at(s)?.directory_bytes_per_s)),
        });
        rows.push(Row {
            label: format!("Churn at {r} joins/s: server CPU per join (µs)"),
            decimals: 0,
            pick: Box::new(move |s| at(s)?.server_us_per_join),
        });
    }
    let big = p.big_room;
    let bp = big_point(p);
    rows.push(Row {
        label: format!("Room of {}: highest rate sustained (sends/s)", thousands(big as f64)),
        decimals: 0,
        pick: Box::new(|s| s.big_room.as_ref()?.max_sustained),
    });
    rows.push(Row {
        label: format!("Room of {} at {bp} sends/s: server CPU per delivery (µs)", thousands(big as f64)),
        decimals: 2,
        pick: Box::new(move |s| step_at(s.big_room.as_ref(), bp)?.server_us_per_delivery),
    });
    rows.push(Row {
        label: format!("Room of {} at {bp} sends/s: p99 (ms)", thousands(big as f64)),
        decimals: 2,
        pick: Box::new(move |s| Some(step_at(s.big_room.as_ref(), bp)?.p99_ms)),
    });
    rows
}

/// The summary's ratio columns, each shown when both of its servers ran: Noom against the
/// original and the floor, and two Noom nodes through Redis against one.
const RATIOS: [(&str, Kind, Kind); 3] = [
    ("Noom/Node", Kind::Noom, Kind::Node),
    ("Noom/floor", Kind::Noom, Kind::Floor),
    ("cluster/Noom", Kind::NoomCluster, Kind::Noom),
];

pub fn summary_table(report: &Report) -> String {
    let present: Vec<&str> = Kind::ALL.map(Kind::label).into_iter().filter(|l| report.server(l).is_some()).collect();
    let ratios: Vec<_> = RATIOS
        .iter()
        .filter(|(_, a, b)| report.server(a.label()).is_some() && report.server(b.label()).is_some())
        .collect();
    let mut out = String::from("| |");
    for l in present.iter().copied().chain(ratios.iter().map(|r| r.0)) {
        let _ = write!(out, " {l} |");
    }
    out.push_str("\n|---|");
    for _ in 0..present.len() + ratios.len() {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in summary_rows(report) {
        let value = |label: &str| report.server(label).and_then(|s| (row.pick)(s));
        let _ = write!(out, "| {} |", row.label);
        for l in &present {
            let _ = write!(out, " {} |", fmt(value(l), row.decimals));
        }
        for (_, a, b) in &ratios {
            let _ = write!(out, " {} |", fmt(ratio(value(a.label()), value(b.label())), 2));
        }
        out.push('\n');
    }
    out
}

struct Target {
    what: String,
    figures: String,
    met: Option<bool>,
}

fn targets(report: &Report) -> Vec<Target> {
    let p = &report.params;
    let (noom, node, floor) = (report.server("Noom"), report.server("Node"), report.server("floor"));
    let pick = |s: Option<&ServerResult>, f: &dyn Fn(&ServerResult) -> Option<f64>| s.and_then(f);
    let mut out = Vec::new();
    let check = |what: String, a: Option<f64>, b: Option<f64>, limit: f64, unit: &str| {
        let r = ratio(a, b);
        Target {
            what,
            figures: format!(
                "Noom {} {unit}, other {} {unit}: ratio {} (target ≤ {limit})",
                fmt(a, 2),
                fmt(b, 2),
                fmt(r, 3)
            ),
            met: r.map(|r| r <= limit),
        }
    };
    for (label, idle) in [
        (
            thousands(p.small_users as f64),
            &(|s: &ServerResult| s.idle_small.clone()) as &dyn Fn(&ServerResult) -> Option<Idle>,
        ),
        (thousands(p.large_users as f64), &|s: &ServerResult| s.idle_large.clone().filter(|i| i.setup.complete)),
    ] {
        let kb = |s: &ServerResult| idle(s)?.kb_per_user_settled;
        out.push(check(
            format!("Idle memory per connection, {label} users, settled: ≤ 1/4 of Node's"),
            pick(noom, &kb),
            pick(node, &kb),
            0.25,
            "KB",
        ));
    }
    for rate in chat_points(p) {
        let cpu = move |s: &ServerResult| step_at(s.chat.as_ref(), rate)?.server_us_per_delivery;
        let p99 = move |s: &ServerResult| Some(step_at(s.chat.as_ref(), rate)?.p99_ms);
        let r = thousands(rate);
        out.push(check(
            format!("CPU per delivered message at {r} sends/s: ≤ 1/5 of Node's"),
            pick(noom, &cpu),
            pick(node, &cpu),
            0.2,
            "µs",
        ));
        out.push(check(
            format!("CPU per delivered message at {r} sends/s: ≤ 2× the floor's"),
            pick(noom, &cpu),
            pick(floor, &cpu),
            2.0,
            "µs",
        ));
        out.push(check(format!("p99 at {r} sends/s: ≤ 1/5 of Node's"), pick(noom, &p99), pick(node, &p99), 0.2, "ms"));
    }
    let setup_cpu = |i: Option<&Idle>| i.filter(|i| i.setup.complete)?.setup.server_cpu_us_per_user;
    let small = pick(noom, &|s| setup_cpu(s.idle_small.as_ref()));
    let large = pick(noom, &|s| setup_cpu(s.idle_large.as_ref()));
    let growth = ratio(large, small);
    out.push(Target {
        what: format!(
            "Set-up not quadratic: server CPU per user at {} users ≤ 2× that at {}",
            thousands(p.large_users as f64),
            thousands(p.small_users as f64)
        ),
        figures: format!("Noom {} µs then {} µs per user: ×{}", fmt(small, 0), fmt(large, 0), fmt(growth, 2)),
        met: growth.map(|g| g <= 2.0),
    });
    let churn_cost = noom.and_then(|s| s.churn.as_ref()).map(|c| {
        let sustained: Vec<_> = c.steps.iter().filter(|s| s.sustained).collect();
        (sustained.first().and_then(|s| s.server_us_per_join), sustained.last().and_then(|s| s.server_us_per_join))
    });
    let (first, last) = churn_cost.unwrap_or((None, None));
    let growth = ratio(last, first);
    out.push(Target {
        what: "Churn not quadratic: server CPU per join at the highest sustained rate ≤ 2× that at the lowest".into(),
        figures: format!("Noom {} µs then {} µs per join: ×{}", fmt(first, 0), fmt(last, 0), fmt(growth, 2)),
        met: growth.map(|g| g <= 2.0),
    });
    let large_p99 = pick(noom, &|s| Some(s.chat_large.as_ref()?.steps.first()?.p99_ms));
    out.push(Target {
        what: format!(
            "{} concurrent users at {} deliveries/s: p99 < 50 ms",
            thousands(p.large_users as f64),
            thousands(p.large_deliveries)
        ),
        figures: format!("Noom p99 {} ms", fmt(large_p99, 2)),
        met: large_p99.map(|v| v < 50.0),
    });
    out
}

pub fn targets_table(report: &Report) -> String {
    let mut out = String::from("| target | figures | met |\n|---|---|---|\n");
    for t in targets(report) {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", t.what, t.figures);
    }
    out
}

/// Two Noom nodes through Redis against one node, step by step: what the hop costs. Nothing
/// when either did not run.
fn cluster_section(report: &Report) -> Option<String> {
    let (one, two) = (report.server(Kind::Noom.label())?, report.server(Kind::NoomCluster.label())?);
    let p = &report.params;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: two Noom nodes sharing one Redis, the three on the server's core. Users alternate between the nodes, \
         so every room of {} has members on both and every message is delivered on both: on its sender's node, and \
         on the other through Redis. Server CPU and memory are those of the three processes together; \"of which \
         Redis\" is Redis's own part. ×: two nodes / one.\n",
        two.server, p.room_size
    );
    out.push_str(
        "| sends/s | server µs/delivery, one node | two nodes | of which Redis | × | p50 (ms), one node | two nodes | × | p99 (ms), one node | two nodes | × | sustained by |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for &rate in &p.chat_rates {
        let (a, b) = (step_at(one.chat.as_ref(), rate), step_at(two.chat.as_ref(), rate));
        if a.is_none() && b.is_none() {
            continue;
        }
        let cpu = |st: Option<&ChatStep>| st.and_then(|st| st.server_us_per_delivery);
        let p50 = |st: Option<&ChatStep>| st.map(|st| st.p50_ms);
        let p99 = |st: Option<&ChatStep>| st.map(|st| st.p99_ms);
        let sustained = |st: Option<&ChatStep>| st.is_some_and(|st| st.sustained);
        let by = match (sustained(a), sustained(b)) {
            (true, true) => "both",
            (true, false) => "one node only",
            (false, true) => "two nodes only",
            (false, false) => "neither",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {by} |",
            thousands(rate),
            fmt(cpu(a), 2),
            fmt(cpu(b), 2),
            fmt(b.and_then(|st| st.redis_us_per_delivery), 2),
            fmt(ratio(cpu(b), cpu(a)), 2),
            fmt(p50(a), 2),
            fmt(p50(b), 2),
            fmt(ratio(p50(b), p50(a)), 2),
            fmt(p99(a), 2),
            fmt(p99(b), 2),
            fmt(ratio(p99(b), p99(a)), 2),
        );
    }
    let highest = |s: &ServerResult| s.chat.as_ref()?.max_sustained;
    let _ = writeln!(
        out,
        "\nHighest rate sustained in rooms of {}: one node {}, two nodes {} sends/s (×{}).",
        p.room_size,
        fmt(highest(one), 0),
        fmt(highest(two), 0),
        fmt(ratio(highest(two), highest(one)), 2)
    );
    let kb = |s: &ServerResult| s.idle_small.as_ref()?.kb_per_user_settled;
    let _ = writeln!(
        out,
        "Idle, {} users: RSS per user, settled: one node {} KB, two nodes and Redis {} KB (×{}); Redis settled at {} KB.",
        thousands(p.small_users as f64),
        fmt(kb(one), 1),
        fmt(kb(two), 1),
        fmt(ratio(kb(two), kb(one)), 2),
        fmt(two.idle_small.as_ref().and_then(|i| i.redis_rss_settled_kb).map(|v| v as f64), 0)
    );
    Some(out)
}

fn setup_line(name: &str, s: &Setup) -> String {
    format!(
        "| {name} | {}/{} | {} | {:.2} | {} | {:.0} | {} | {} |\n",
        s.reached,
        s.users,
        s.failed,
        s.seconds,
        fmt(s.server_cpu_us_per_user, 0),
        s.generator_cpu_us_per_user,
        fmt(Some(s.join_p50_ms), 1),
        fmt(Some(s.join_p99_ms), 1)
    )
}

const SETUP_HEAD: &str = "| server | users ready | failed | seconds | server CPU per user (µs) | generator CPU per user (µs) | join p50 (ms) | join p99 (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";

fn idle_table(report: &Report, pick: impl Fn(&ServerResult) -> Option<&Idle>) -> String {
    let mut out = String::from(SETUP_HEAD);
    for s in &report.servers {
        if let Some(i) = pick(s) {
            out.push_str(&setup_line(&s.server, &i.setup));
        }
    }
    out.push_str("\n| server | RSS before (KB) | after set-up (KB) | settled (KB) | of which Redis, settled (KB) | per user after set-up (KB) | per user settled (KB) | idle server CPU (%) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in &report.servers {
        if let Some(i) = pick(s) {
            let kb = |v: Option<u64>| fmt(v.map(|v| v as f64), 0);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                s.server,
                kb(i.rss_before_kb),
                kb(i.rss_after_setup_kb),
                kb(i.rss_settled_kb),
                kb(i.redis_rss_settled_kb),
                fmt(i.kb_per_user_after_setup, 1),
                fmt(i.kb_per_user_settled, 1),
                fmt(i.idle_server_cpu_pct, 1)
            );
        }
    }
    out
}

fn chat_table(report: &Report, pick: impl Fn(&ServerResult) -> Option<&Chat>) -> String {
    let mut out = String::from(
        "| server | sends/s | deliveries/s | delivered/expected | p50 (ms) | p99 (ms) | max (ms) | server CPU (%) | server µs/delivery | of which Redis (µs) | generator CPU (%) | generator µs/delivery | others on server core (%) | runs | verdict |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for s in &report.servers {
        let Some(chat) = pick(s) else { continue };
        for st in &chat.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {} | {} | {} |",
                s.server,
                thousands(st.rate),
                thousands(st.deliveries_per_s),
                st.delivered,
                st.expected,
                fmt(Some(st.p50_ms), 2),
                fmt(Some(st.p99_ms), 2),
                fmt(Some(st.max_ms), 1),
                fmt(st.server_cpu_pct, 0),
                fmt(st.server_us_per_delivery, 2),
                fmt(st.redis_us_per_delivery, 2),
                st.generator_cpu_pct,
                st.generator_us_per_delivery,
                fmt(st.others_on_server_core_pct, 0),
                st.attempts,
                st.stop.as_deref().unwrap_or("sustained")
            );
        }
        if chat.steps.is_empty() {
            let _ = writeln!(out, "| {} | not run: set-up did not finish | | | | | | | | | | | | | |", s.server);
        }
    }
    out
}

fn churn_table(report: &Report) -> String {
    let mut out = String::from(
        "| server | joins/s asked | joins/s done | join p50 (ms) | join p99 (ms) | room-list pushes/s to the lobby | bytes/s | pushes per join per watcher | server CPU (%) | server µs/join | generator CPU (%) | others on server core (%) | runs | verdict |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for s in &report.servers {
        let Some(churn) = &s.churn else { continue };
        for st in &churn.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {:.0} | {} | {} | {} |",
                s.server,
                thousands(st.rate),
                thousands(st.joins_per_s),
                fmt(Some(st.join_p50_ms), 2),
                fmt(Some(st.join_p99_ms), 2),
                thousands(st.directory_frames_per_s),
                thousands(st.directory_bytes_per_s),
                st.directory_frames_per_join_per_watcher,
                fmt(st.server_cpu_pct, 0),
                fmt(st.server_us_per_join, 0),
                st.generator_cpu_pct,
                fmt(st.others_on_server_core_pct, 0),
                st.attempts,
                st.stop.as_deref().unwrap_or("sustained")
            );
        }
    }
    out
}

/// The step each rising load ended on and its reason: a server's limit, or the generator's.
pub fn stops(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.servers {
        let chat = |name: &str, chat: &Option<Chat>| match chat.as_ref().and_then(|c| c.steps.last()) {
            None => format!("{name}: not run"),
            Some(st) => match &st.stop {
                None => format!("{name}: every rate sustained, up to {}/s", thousands(st.rate)),
                Some(why) => format!("{name}: at {}/s, {why}", thousands(st.rate)),
            },
        };
        let churn = match s.churn.as_ref().and_then(|c| c.steps.last()) {
            None => "churn: not run".to_string(),
            Some(st) => match &st.stop {
                None => format!("churn: every rate sustained, up to {} joins/s", thousands(st.rate)),
                Some(why) => format!("churn: at {} joins/s, {why}", thousands(st.rate)),
            },
        };
        let _ = writeln!(
            out,
            "- {}: {}; {}; {}",
            s.server,
            chat("chat in rooms of ten", &s.chat),
            churn,
            chat("one large room", &s.big_room)
        );
    }
    out
}

pub fn markdown(report: &Report) -> String {
    let p = &report.params;
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Noom benchmark{}\n",
        if report.smoke { " (smoke run: tiny loads, figures mean nothing)" } else { "" }
    );
    let _ = writeln!(out, "Command: `{}`\n", report.command);
    let _ = writeln!(
        out,
        "Machine: {}, {} cores, {:.0} GiB, Linux {}, Node.js {}; {}. Server pinned to core {}, generator to core {}. \
         Load average (1, 5, 15 min) before the run: {}; after: {}.\n",
        m.cpu,
        m.cores,
        m.memory_gib,
        m.kernel,
        m.node,
        m.date,
        fmt(m.server_core.map(|c| c as f64), 0),
        fmt(m.generator_core.map(|c| c as f64), 0),
        m.load_before,
        m.load_after
    );
    let _ = writeln!(
        out,
        "Each step: {} s warm-up, {} s measured, up to {} s for the window's last deliveries. Sending is open \
         loop, round robin over the users, each message stamped with its send time; latency is measured at receipt \
         in the same process. A step is sustained when every delivery arrived, no send was refused, no connection \
         was lost, p99 ≤ {} ms, and the generator stayed under {}% of its core. Server CPU is utime+stime of the \
         whole process (for two nodes and Redis, of the three, all on the server's core); RSS is VmRSS (summed the \
         same way); \"settled\" is after {} s idle ({} s for the large crowd) and, for Node, \
         a forced full garbage collection (`--expose-gc`, `global.gc()` on SIGUSR2): Node's V8 returns memory \
         only after about a minute idle. \"Others on server core\" is the time the server's core was busy with \
         other processes of the machine during the step; a step disturbed by more than {}% is run again, up to {} \
         times, keeping the least disturbed run (\"runs\").\n",
        p.warmup_s,
        p.window_s,
        p.drain_s,
        p.p99_limit_ms,
        p.generator_limit_pct,
        p.settle_s,
        p.large_settle_s,
        p.disturbed_pct,
        p.retries
    );
    out.push_str("## Summary\n\n");
    out.push_str(&summary_table(report));
    out.push_str("\nWhere each rising load stopped, and why:\n\n");
    out.push_str(&stops(report));
    out.push_str("\n## Targets\n\n");
    out.push_str(&targets_table(report));
    if let Some(cluster) = cluster_section(report) {
        out.push_str("\n## Two nodes through Redis\n\n");
        out.push_str(&cluster);
    }
    let _ = writeln!(out, "\n## Idle: {} users in rooms of {}\n", thousands(p.small_users as f64), p.room_size);
    out.push_str(&idle_table(report, |s| s.idle_small.as_ref()));
    let _ = writeln!(
        out,
        "\n## Chat: {} users in rooms of {}, rising rates\n",
        thousands(p.small_users as f64),
        p.room_size
    );
    out.push_str(&chat_table(report, |s| s.chat.as_ref()));
    let _ = writeln!(out, "\n## Idle: {} in rooms of {}\n", large_label(p), p.room_size);
    out.push_str(&idle_table(report, |s| s.idle_large.as_ref()));
    let _ = writeln!(out, "\n## Chat: {} at {} deliveries/s\n", large_label(p), thousands(p.large_deliveries));
    out.push_str(&chat_table(report, |s| s.chat_large.as_ref()));
    let _ = writeln!(
        out,
        "\n## Churn: {} watching the room list, users joining fresh rooms and leaving\n",
        thousands(p.churn_watchers as f64)
    );
    out.push_str("Watchers' set-up:\n\n");
    out.push_str(SETUP_HEAD);
    for s in &report.servers {
        if let Some(c) = &s.churn {
            out.push_str(&setup_line(&s.server, &c.watchers_setup));
        }
    }
    out.push('\n');
    out.push_str(&churn_table(report));
    let _ = writeln!(out, "\n## One room of {}\n", thousands(p.big_room as f64));
    out.push_str(SETUP_HEAD);
    for s in &report.servers {
        if let Some(setup) = &s.big_setup {
            out.push_str(&setup_line(&s.server, setup));
        }
    }
    out.push('\n');
    out.push_str(&chat_table(report, |s| s.big_room.as_ref()));
    let errors: Vec<String> =
        report.servers.iter().flat_map(|s| s.errors.iter().map(move |e| format!("- {}: {e}", s.server))).collect();
    if !errors.is_empty() {
        out.push_str("\n## Errors\n\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out.push_str("\n![Latency against load](latency.svg)\n");
    out
}

fn colour(server: &str) -> &'static str {
    match Kind::ALL.into_iter().find(|k| k.label() == server) {
        Some(Kind::Noom) => "#1971c2",
        Some(Kind::NoomCluster) => "#9c36b5",
        Some(Kind::Node) => "#2f9e44",
        _ => "#868e96",
    }
}

/// Latency p50 (dashed) and p99 (solid) against send rate, log scales, one panel per scenario.
pub fn svg(report: &Report) -> String {
    type PickChat = Box<dyn Fn(&ServerResult) -> Option<&Chat>>;
    let panels: [(String, PickChat); 2] = [
        (
            format!("Rooms of {} ({} users)", report.params.room_size, thousands(report.params.small_users as f64)),
            Box::new(|s: &ServerResult| s.chat.as_ref()),
        ),
        (
            format!("One room of {}", thousands(report.params.big_room as f64)),
            Box::new(|s: &ServerResult| s.big_room.as_ref()),
        ),
    ];
    let (pw, ph, left, top, gap) = (440.0, 300.0, 70.0, 50.0, 90.0);
    let width = left + 2.0 * pw + gap + 30.0;
    let height = top + ph + 110.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-size="15" text-anchor="middle">Delivery latency against load (p99 solid, p50 dashed)</text>
"#,
        width / 2.0
    );
    let (y_min, y_max) = (0.1f64, 2000.0f64);
    for (i, (title, pick)) in panels.iter().enumerate() {
        let x0 = left + i as f64 * (pw + gap);
        let rates: Vec<f64> =
            report.servers.iter().filter_map(pick).flat_map(|c| c.steps.iter().map(|st| st.rate)).collect();
        if rates.is_empty() {
            continue;
        }
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min) / 1.3;
        let hi = rates.iter().copied().fold(0.0, f64::max) * 1.3;
        let x = |r: f64| x0 + (r.ln() - lo.ln()) / (hi.ln() - lo.ln()) * pw;
        let y = |ms: f64| {
            let ms = ms.clamp(y_min, y_max);
            top + ph - (ms.ln() - y_min.ln()) / (y_max.ln() - y_min.ln()) * ph
        };
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="13">{title}</text>"##,
            x0 + pw / 2.0,
            top - 10.0
        );
        let _ = writeln!(out, r##"<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##);
        for ms in [0.1, 1.0, 10.0, 100.0, 1000.0] {
            let yy = y(ms);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" x2="{}" y1="{yy}" y2="{yy}" stroke="{}" stroke-dasharray="{}"/><text x="{}" y="{}" text-anchor="end">{ms} ms</text>"##,
                x0 + pw,
                if ms == 100.0 { "#e03131" } else { "#ddd" },
                if ms == 100.0 { "6 3" } else { "" },
                x0 - 6.0,
                yy + 4.0
            );
        }
        let mut ticks = rates.clone();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        let mut last_label = f64::NEG_INFINITY;
        for r in ticks {
            let xx = x(r);
            let _ = writeln!(out, r##"<line x1="{xx}" x2="{xx}" y1="{top}" y2="{}" stroke="#eee"/>"##, top + ph);
            // Close rates on a log scale would print over each other: label only those with room.
            if xx - last_label >= 36.0 {
                last_label = xx;
                let _ = writeln!(
                    out,
                    r##"<text x="{xx}" y="{}" text-anchor="middle" font-size="10">{}</text>"##,
                    top + ph + 16.0,
                    thousands(r)
                );
            }
        }
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle">messages sent per second</text>"##,
            x0 + pw / 2.0,
            top + ph + 36.0
        );
        for s in &report.servers {
            let Some(chat) = pick(s) else { continue };
            let c = colour(&s.server);
            for (dash, get) in [("", (|st: &ChatStep| st.p99_ms) as fn(&ChatStep) -> f64), ("5 4", |st| st.p50_ms)] {
                let points: Vec<String> = chat
                    .steps
                    .iter()
                    .filter(|st| get(st).is_finite())
                    .map(|st| format!("{:.1},{:.1}", x(st.rate), y(get(st))))
                    .collect();
                let _ = writeln!(
                    out,
                    r##"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>"##,
                    points.join(" ")
                );
                for pt in &points {
                    let (px, py) = pt.split_once(',').unwrap_or(("0", "0"));
                    let _ = writeln!(out, r##"<circle cx="{px}" cy="{py}" r="3" fill="{c}"/>"##);
                }
            }
        }
    }
    let mut lx = left;
    let ly = top + ph + 70.0;
    for s in &report.servers {
        let c = colour(&s.server);
        let _ = writeln!(
            out,
            r##"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="3"/><text x="{}" y="{}">{}</text>"##,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            s.server
        );
        // Room for the label: about 7 px a character at this size.
        lx += 50.0 + 7.0 * s.server.chars().count() as f64;
    }
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="{}">red dashes: the 100 ms limit; a line ends where its server stopped keeping up</text>"##,
        ly + 24.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(kind: Kind, us_per_delivery: f64) -> ServerResult {
        let step = ChatStep { rate: 100.0, server_us_per_delivery: Some(us_per_delivery), ..ChatStep::default() };
        ServerResult {
            server: kind.label().into(),
            chat: Some(Chat { steps: vec![step], ..Chat::default() }),
            ..ServerResult::default()
        }
    }

    fn report(servers: Vec<ServerResult>) -> Report {
        Report { command: String::new(), smoke: true, machine: Machine::default(), params: Params::smoke(), servers }
    }

    #[test]
    fn the_summary_compares_only_servers_that_ran() {
        let table = summary_table(&report(vec![server(Kind::Noom, 10.0), server(Kind::NoomCluster, 25.0)]));
        assert!(table.starts_with("| | Noom | Noom ×2 + Redis | cluster/Noom |\n"), "{table}");
        let cpu = table.lines().find(|l| l.starts_with("| Chat 100 sends/s, rooms of 10: server CPU")).unwrap();
        assert!(cpu.ends_with("| 10.00 | 25.00 | 2.50 |"), "{cpu}");
    }

    #[test]
    fn the_redis_hop_has_a_section_when_both_ran() {
        let both = report(vec![server(Kind::Noom, 10.0), server(Kind::NoomCluster, 25.0)]);
        let section = cluster_section(&both).expect("both ran");
        assert!(section.contains("| 100 | 10.00 | 25.00 | — | 2.50 |"), "{section}");
        assert!(cluster_section(&report(vec![server(Kind::Noom, 10.0)])).is_none());
    }
}
