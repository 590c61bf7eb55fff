//! The media benchmark's report: a table per scenario, the ratios the goals are stated in, and a
//! plot of each server's CPU against the streams it forwarded.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::stats::{Outcome, Summary};

/// One line for the terminal, as each outcome comes.
pub fn line(o: &Outcome) -> String {
    format!(
        "{} · {}: {} streams, CPU {} ms/s ({} per stream), loss {:.2}%, video latency p50 {:.1} p99 {:.1} max {:.1} ms{}",
        o.server,
        o.scenario,
        o.streams(),
        o.server_cpu_s.map_or("?".into(), |c| format!("{:.0}", c * 1000.0 / o.seconds)),
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
        o.server_cpu_s.map_or("?".into(), |c| format!("{:.0}", c * 1000.0 / o.seconds)),
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
    let mut scenarios: Vec<&str> = outcomes.iter().map(|o| o.scenario.as_str()).collect();
    scenarios.dedup();
    for scenario in scenarios {
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
            .filter_map(|o| Some((o.streams() as f64, o.server_cpu_s? * 1000.0 / o.seconds)))
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
    // One point per scenario: they are different calls, so no line joins them.
    for (i, server) in servers.iter().enumerate() {
        let p = points(server);
        let c = colour(server);
        for (a, b) in &p {
            let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#, x(*a), y(*b));
        }
        let _ = write!(svg, r#"<text x="{}" y="{}" fill="{c}">{server}</text>"#, pad + 12.0, pad + 16.0 * i as f64);
    }
    svg.push_str("</svg>\n");
    svg
}
