//! The media benchmark's report: a table per scenario, the ratios the goals are stated in, and a
//! plot of each server's CPU against the streams it forwarded.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::scenarios::{CAPACITY_LABEL, CARRIED_LOSS_UNDER, CARRIED_P99_UNDER_MS};
use super::stats::{Outcome, Summary};

/// One line for the terminal, as each outcome comes.
pub fn line(o: &Outcome) -> String {
    format!(
        "{} · {}: {} streams, CPU {} ms/s ({} per stream), loss {:.2}%, video latency p50 {:.1} p99 {:.1} max {:.1} ms{}",
        o.server,
        o.scenario,
        o.streams(),
        o.server_cpu_ms_per_s().map_or("?".into(), |c| format!("{c:.0}")),
        o.cpu_ms_per_stream().map_or("?".into(), |c| format!("{c:.3}")),
        o.all.loss_percent,
        o.all.video_latency_ms.p50,
        o.all.video_latency_ms.p99,
        o.all.video_latency_ms.max,
        if o.errors.is_empty() { String::new() } else { format!(", errors: {}", o.errors.join("; ")) },
    )
}

pub fn write(out: &Path, command: &str, smoke: bool, outcomes: &[Outcome]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(outcomes)?)?;
    std::fs::write(out.join("results.md"), markdown(command, smoke, outcomes))?;
    std::fs::write(out.join("cpu.svg"), svg(outcomes))?;
    Ok(())
}

fn row(md: &mut String, who: &str, o: &Outcome, s: &Summary) {
    let _ = writeln!(
        md,
        "| {who} | {} | {} | {:.0} | {} | {} | {} | {:.2} / {:.2} | {:.1} | {} | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} | {:.0} / {:.0} | {} | {:.0} |",
        s.participants,
        s.video_streams + s.audio_streams,
        s.megabits_per_s,
        o.server_cpu_ms_per_s().map_or("?".into(), |c| format!("{c:.0}")),
        o.cpu_ms_per_stream().map_or("?".into(), |c| format!("{c:.3}")),
        o.kb_per_participant.map_or("?".into(), |k| match o.kb_growth_per_participant {
            Some(growth) => format!("{k:.0} ({growth:+.0})"),
            None => format!("{k:.0}"),
        }),
        s.loss_percent,
        s.worst_loss_percent,
        s.withheld_percent,
        s.nacks_sent,
        s.video_latency_ms.p50,
        s.video_latency_ms.p99,
        s.video_latency_ms.max,
        s.audio_latency_ms.p50,
        s.audio_latency_ms.p99,
        s.first_video_ms.p50,
        s.first_video_ms.max,
        s.keyframe_requests,
        o.generator_cpu_s * 1000.0 / o.seconds,
    );
}

pub fn markdown(command: &str, smoke: bool, outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    let _ =
        writeln!(md, "Media benchmark: `{command}`{}\n", if smoke { " (smoke: its figures mean nothing)" } else { "" });
    capacity(&mut md, outcomes);
    // The capacity sweep runs each server's steps in turn, so a step's name comes back after
    // the other steps'.
    for scenario in first_seen(outcomes.iter().map(|o| o.scenario.as_str())) {
        let _ = writeln!(md, "### {scenario}\n");
        md.push_str(
            "| server | subscribers | streams | Mbit/s | server CPU ms/s | ms/s per stream | KB per participant (growth in the window) | loss % (all / worst) | withheld % | NACKs | video latency ms p50 / p99 / max | audio ms p50 / p99 | first video ms p50 / max | keyframe requests | generator CPU ms/s |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for o in outcomes.iter().filter(|o| o.scenario == scenario) {
            row(&mut md, &o.server, o, &o.all);
            if let (Some(others), Some(slow)) = (&o.others, &o.slow) {
                row(&mut md, &format!("{}: good links", o.server), o, others);
                row(&mut md, &format!("{}: slow links", o.server), o, slow);
            }
            for e in &o.errors {
                let _ = writeln!(md, "\n{}: {e}", o.server);
            }
        }
        md.push('\n');
    }
    md
}

/// Each name once, in the order it first came.
fn first_seen<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// The capacity sweep's answer: for each server, the largest room it carried within the goals,
/// and the step where it stopped.
fn capacity(md: &mut String, outcomes: &[Outcome]) {
    let steps: Vec<&Outcome> = outcomes.iter().filter(|o| o.scenario.starts_with(CAPACITY_LABEL)).collect();
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### Streams per core\n\nRooms of growing size, everyone showing everyone at 360 px, each on a fresh server pinned to one core, until a step misses loss under {CARRIED_LOSS_UNDER}% or video p99 under {CARRIED_P99_UNDER_MS} ms (or the generator is at its limit).\n"
    );
    md.push_str(
        "| server | carried: largest room | streams | server CPU ms/s | loss % | video p99 ms | stopped at |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|\n");
    let mut carried_streams = Vec::new();
    for server in first_seen(steps.iter().map(|o| o.server.as_str())) {
        let of_server: Vec<&&Outcome> = steps.iter().filter(|o| o.server == server).collect();
        let best = of_server.iter().filter(|o| o.carried()).max_by_key(|o| o.streams());
        let stop = of_server.last().filter(|o| !o.carried() || o.generator_bound());
        let stopped = match stop {
            Some(o) if o.generator_bound() => format!("{}: the generator's limit", o.participants),
            Some(o) => format!("{}: {}", o.participants, o.why_not_carried().unwrap_or_default()),
            None => "not stopped (largest step carried)".into(),
        };
        match best {
            Some(o) => {
                carried_streams.push((server, o.streams()));
                let _ = writeln!(
                    md,
                    "| {server} | {} | {} | {} | {:.2} | {:.1} | {stopped} |",
                    o.participants,
                    o.streams(),
                    o.server_cpu_ms_per_s().map_or("?".into(), |c| format!("{c:.0}")),
                    o.all.loss_percent,
                    o.all.video_latency_ms.p99,
                );
            }
            None => {
                let _ = writeln!(md, "| {server} | none | 0 | | | | {stopped} |");
            }
        }
    }
    let streams_of = |name: &str| carried_streams.iter().find(|(s, _)| *s == name).map(|(_, n)| *n);
    if let (Some(noom), Some(janus)) = (streams_of("Noom"), streams_of("Janus"))
        && janus > 0
    {
        let _ = writeln!(md, "\nNoom carried {:.2} times the streams Janus did.", noom as f64 / janus as f64);
    }
    md.push('\n');
}

fn colour(server: &str) -> &'static str {
    match server {
        "Noom" => "#1565c0",
        "Janus" => "#c62828",
        _ => "#757575",
    }
}

/// Server CPU (ms per second) against streams forwarded, one point per scenario and server.
pub fn svg(outcomes: &[Outcome]) -> String {
    let (w, h, pad) = (640.0, 400.0, 56.0);
    let points = |server: &str| {
        let mut p: Vec<(f64, f64)> = outcomes
            .iter()
            .filter(|o| o.server == server)
            .filter_map(|o| Some((o.streams() as f64, o.server_cpu_ms_per_s()?)))
            .collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let mut servers: Vec<&str> = outcomes.iter().map(|o| o.server.as_str()).collect();
    servers.sort();
    servers.dedup();
    let all: Vec<(f64, f64)> = servers.iter().flat_map(|s| points(s)).collect();
    let max_x = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.iter().map(|p| p.1).fold(1.0, f64::max).max(100.0);
    let x = |v: f64| pad + v / max_x * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / max_y * (h - 2.0 * pad);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(
        svg,
        r#"<line x1="{pad}" y1="{0}" x2="{1}" y2="{0}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{0}" stroke="black"/>"#,
        h - pad,
        w - pad
    );
    let _ = write!(svg, r#"<text x="{}" y="{}" text-anchor="middle">streams forwarded</text>"#, w / 2.0, h - 16.0);
    let _ = write!(
        svg,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">server CPU, ms per second (1000 = one core)</text>"#,
        h / 2.0,
        h / 2.0
    );
    for i in 0..=4 {
        let (vx, vy) = (max_x * i as f64 / 4.0, max_y * i as f64 / 4.0);
        let _ = write!(svg, r#"<text x="{}" y="{}" text-anchor="middle">{vx:.0}</text>"#, x(vx), h - pad + 16.0);
        let _ = write!(svg, r#"<text x="{}" y="{}" text-anchor="end">{vy:.0}</text>"#, pad - 6.0, y(vy) + 4.0);
    }
    // One point per scenario; only the capacity sweep's steps, rooms of one kind growing, are
    // joined by a line.
    for (i, server) in servers.iter().enumerate() {
        let p = points(server);
        let c = colour(server);
        let steps: Vec<String> = outcomes
            .iter()
            .filter(|o| o.server == *server && o.scenario.starts_with(CAPACITY_LABEL))
            .filter_map(|o| Some(format!("{:.1},{:.1}", x(o.streams() as f64), y(o.server_cpu_ms_per_s()?))))
            .collect();
        if steps.len() > 1 {
            let _ =
                write!(svg, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"/>"#, steps.join(" "));
        }
        for (a, b) in &p {
            let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#, x(*a), y(*b));
        }
        let _ = write!(svg, r#"<text x="{}" y="{}" fill="{c}">{server}</text>"#, pad + 12.0, pad + 16.0 * i as f64);
    }
    if outcomes.iter().any(|o| o.scenario.starts_with(CAPACITY_LABEL)) {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" fill="dimgray">a line joins the steps of the capacity sweep</text>"#,
            w - pad,
            pad - 20.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stats::Percentiles;

    fn step(server: &str, room: usize, streams: usize, p99: f64, generator_cpu_s: f64) -> Outcome {
        let all = Summary {
            participants: room,
            video_streams: streams,
            video_latency_ms: Percentiles { p50: 1.0, p99, max: p99 },
            ..Summary::default()
        };
        Outcome {
            server: server.into(),
            scenario: format!("{CAPACITY_LABEL}{room}"),
            participants: room,
            seconds: 10.0,
            all,
            others: None,
            slow: None,
            server_cpu_s: Some(5.0),
            server_rss_kb: None,
            kb_per_participant: None,
            kb_growth_per_participant: None,
            generator_cpu_s,
            errors: Vec::new(),
        }
    }

    /// Each server's largest room within the goals, where it stopped and why, and the ratio.
    #[test]
    fn the_capacity_table_gives_each_servers_largest_room_carried_and_the_ratio() {
        let outcomes = [
            step("Noom", 12, 168, 4.0, 3.0),
            step("Noom", 16, 288, 6.0, 4.0),
            step("Noom", 20, 440, 9.5, 9.5),
            step("Janus", 12, 168, 15.0, 3.0),
            step("Janus", 16, 288, 25.0, 4.0),
        ];
        let md = markdown("noom-bench media", false, &outcomes);
        assert!(md.contains("| Noom | 20 | 440 | 500 | 0.00 | 9.5 | 20: the generator's limit |"), "{md}");
        assert!(md.contains("| Janus | 12 | 168 | 500 | 0.00 | 15.0 | 16: p99 25.0 ms |"), "{md}");
        assert!(md.contains("Noom carried 2.62 times the streams Janus did."), "{md}");
        // Each step's table once, with both servers' rows.
        for room in [12, 16, 20] {
            assert_eq!(md.matches(&format!("### {CAPACITY_LABEL}{room}\n")).count(), 1, "{md}");
        }
        assert!(md.contains("| Janus | 12 | 168 |") && md.contains("| Noom | 12 | 168 |"), "{md}");
    }
}
