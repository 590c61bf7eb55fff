//! What `/metrics` reports, in Prometheus's text format: counters kept as events happen, gauges
//! read from the room state when scraped, and the process's own figures from `/proc`.

use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::admission::Refusal;
use crate::validate::ErrorCode;

/// The counters, one set per process.
pub static COUNTERS: Counters = Counters::new();

pub struct Counters {
    connections: AtomicU64,
    connected: AtomicI64,
    chat_messages: AtomicU64,
    signals: AtomicU64,
    behind: AtomicU64,
    rejected: [AtomicU64; ErrorCode::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
    media: MediaCounters,
}

/// The media port's datagrams.
struct MediaCounters {
    datagrams_in: AtomicU64,
    bytes_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_out: AtomicU64,
    /// Of nobody: no call's participant has taken its source, and it names none.
    unrouted: AtomicU64,
    /// Its call's queue was full.
    queue_full: AtomicU64,
    /// The kernel would not take it at once.
    send_failed: AtomicU64,
    /// In a call through the media server, on this node.
    participants: AtomicI64,
    /// Retransmissions asked for by receivers (NACKs), answered from the server's history.
    nacks: AtomicU64,
    /// Keyframes asked of publishers (PLI).
    keyframe_requests: AtomicU64,
    /// A receiver moved from one simulcast layer to another.
    layer_switches: AtomicU64,
    /// Receivers' bandwidth estimates, as str0m makes them: a histogram.
    estimates: [AtomicU64; ESTIMATE_BUCKETS.len()],
    estimates_count: AtomicU64,
    estimates_sum: AtomicU64,
    /// Media packets between this node's media server and other nodes' (cascading).
    relayed_in: AtomicU64,
    relayed_out: AtomicU64,
    /// Past a connection's queue: the other node's connection fell behind.
    relay_dropped: AtomicU64,
}

/// The upper bounds of the estimate histogram's buckets, in bits a second.
const ESTIMATE_BUCKETS: [u64; 8] = [100_000, 250_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000];

impl Counters {
    const fn new() -> Self {
        Self {
            connections: AtomicU64::new(0),
            connected: AtomicI64::new(0),
            chat_messages: AtomicU64::new(0),
            signals: AtomicU64::new(0),
            behind: AtomicU64::new(0),
            rejected: [const { AtomicU64::new(0) }; ErrorCode::ALL.len()],
            refused: [const { AtomicU64::new(0) }; Refusal::ALL.len()],
            media: MediaCounters {
                datagrams_in: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                datagrams_out: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                unrouted: AtomicU64::new(0),
                queue_full: AtomicU64::new(0),
                send_failed: AtomicU64::new(0),
                participants: AtomicI64::new(0),
                nacks: AtomicU64::new(0),
                keyframe_requests: AtomicU64::new(0),
                layer_switches: AtomicU64::new(0),
                estimates: [const { AtomicU64::new(0) }; ESTIMATE_BUCKETS.len()],
                estimates_count: AtomicU64::new(0),
                estimates_sum: AtomicU64::new(0),
                relayed_in: AtomicU64::new(0),
                relayed_out: AtomicU64::new(0),
                relay_dropped: AtomicU64::new(0),
            },
        }
    }

    pub fn media_in(&self, bytes: usize) {
        self.media.datagrams_in.fetch_add(1, Ordering::Relaxed);
        self.media.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn media_out(&self, datagrams: usize, bytes: usize) {
        self.media.datagrams_out.fetch_add(datagrams as u64, Ordering::Relaxed);
        self.media.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A media packet from another node's media server (its bytes are counted by node, see
    /// [`Gauges::relay_traffic`]).
    pub fn relay_in(&self) {
        self.media.relayed_in.fetch_add(1, Ordering::Relaxed);
    }

    pub fn relay_out(&self) {
        self.media.relayed_out.fetch_add(1, Ordering::Relaxed);
    }

    pub fn relay_dropped(&self) {
        self.media.relay_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn media_unrouted(&self) {
        self.media.unrouted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn media_queue_full(&self) {
        self.media.queue_full.fetch_add(1, Ordering::Relaxed);
    }

    pub fn media_send_failed(&self, datagrams: usize) {
        self.media.send_failed.fetch_add(datagrams as u64, Ordering::Relaxed);
    }

    /// People in calls through the media server moved by `change`.
    pub fn media_participants(&self, change: i64) {
        self.media.participants.fetch_add(change, Ordering::Relaxed);
    }

    pub fn media_nacks(&self, n: u64) {
        self.media.nacks.fetch_add(n, Ordering::Relaxed);
    }

    pub fn media_keyframe_request(&self) {
        self.media.keyframe_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn media_layer_switch(&self) {
        self.media.layer_switches.fetch_add(1, Ordering::Relaxed);
    }

    /// A receiver's new bandwidth estimate, in bits a second.
    pub fn media_estimate(&self, bitrate: u64) {
        let m = &self.media;
        for (bound, bucket) in ESTIMATE_BUCKETS.iter().zip(&m.estimates) {
            if bitrate <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        m.estimates_count.fetch_add(1, Ordering::Relaxed);
        m.estimates_sum.fetch_add(bitrate, Ordering::Relaxed);
    }

    pub fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sockets connected to this node now.
    pub fn sockets(&self) -> u64 {
        self.connected.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn chat_message(&self) {
        self.chat_messages.fetch_add(1, Ordering::Relaxed);
    }

    pub fn signal_relayed(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed because too much waited to be sent to it.
    pub fn fell_behind(&self) {
        self.behind.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection refused by its address's limits, and logs it with the address: an
    /// operator sees who hits the limits, and why.
    pub fn refused_connection(&self, refusal: Refusal, client: IpAddr) {
        self.refused[refusal as usize].fetch_add(1, Ordering::Relaxed);
        tracing::info!(%client, reason = refusal.name(), "connection refused: {}", refusal.message());
    }

    pub fn rejected(&self, code: ErrorCode) {
        self.rejected[code as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// What the room state says at the moment of a scrape (this node's view of the whole cluster).
pub struct Gauges {
    pub rooms: usize,
    pub participants: usize,
    pub calls: usize,
    pub in_calls: usize,
    /// Other nodes heard from; `None` for a node alone.
    pub nodes: Option<usize>,
    pub redis_up: Option<bool>,
    /// This node's id in the cluster (its name and what makes this start unique).
    pub node: String,
    /// Connections to other nodes' media servers, when calls span nodes (`--cascade`).
    pub relay_connections: Option<usize>,
    /// Bytes of media from and to each other node's media server: `(node, in, out)`.
    pub relay_traffic: Vec<(String, u64, u64)>,
}

/// The whole `/metrics` page.
pub fn render(gauges: &Gauges) -> String {
    let c = &COUNTERS;
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    // What runs where: nodes of one cluster must run one version (see docs/operating.md).
    let build = format!(
        "{{version=\"{}\",revision=\"{}\",node=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        crate::version::REVISION,
        gauges.node
    );
    metric(
        "noom_build_info",
        "gauge",
        "This build's version and source revision, and the node's id: always 1.",
        &[(&build, 1.0)],
    );
    metric(
        "noom_sockets",
        "gauge",
        "Socket.IO connections open on this node.",
        &[("", c.connected.load(Ordering::Relaxed) as f64)],
    );
    metric(
        "noom_connections_total",
        "counter",
        "Socket.IO connections accepted by this node.",
        &[("", get(&c.connections))],
    );
    metric("noom_rooms", "gauge", "Open rooms.", &[("", gauges.rooms as f64)]);
    metric("noom_participants", "gauge", "People in at least one room.", &[("", gauges.participants as f64)]);
    metric("noom_calls", "gauge", "Rooms with someone in their call.", &[("", gauges.calls as f64)]);
    metric("noom_call_participants", "gauge", "People in calls.", &[("", gauges.in_calls as f64)]);
    let m = &c.media;
    metric(
        "noom_media_datagrams_total",
        "counter",
        "Datagrams through the media port.",
        &[("{direction=\"in\"}", get(&m.datagrams_in)), ("{direction=\"out\"}", get(&m.datagrams_out))],
    );
    metric(
        "noom_media_bytes_total",
        "counter",
        "Bytes of datagrams through the media port.",
        &[("{direction=\"in\"}", get(&m.bytes_in)), ("{direction=\"out\"}", get(&m.bytes_out))],
    );
    metric(
        "noom_media_datagrams_dropped_total",
        "counter",
        "Datagrams at the media port dropped: of no call, past a call's queue, or refused by the kernel on sending.",
        &[
            ("{reason=\"unrouted\"}", get(&m.unrouted)),
            ("{reason=\"queue_full\"}", get(&m.queue_full)),
            ("{reason=\"send_failed\"}", get(&m.send_failed)),
        ],
    );
    metric(
        "noom_media_relayed_packets_total",
        "counter",
        "Media packets between this node's media server and other nodes' (calls spanning nodes); dropped: past a connection's queue.",
        &[
            ("{direction=\"in\"}", get(&m.relayed_in)),
            ("{direction=\"out\"}", get(&m.relayed_out)),
            ("{direction=\"dropped\"}", get(&m.relay_dropped)),
        ],
    );
    let traffic: Vec<(String, f64)> = gauges
        .relay_traffic
        .iter()
        .flat_map(|(node, bytes_in, bytes_out)| {
            [
                (format!("{{node=\"{node}\",direction=\"in\"}}"), *bytes_in as f64),
                (format!("{{node=\"{node}\",direction=\"out\"}}"), *bytes_out as f64),
            ]
        })
        .collect();
    let traffic: Vec<(&str, f64)> = traffic.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "noom_media_relayed_bytes_total",
        "counter",
        "Bytes of media frames between this node's media server and each other node's.",
        &traffic,
    );
    metric(
        "noom_media_participants",
        "gauge",
        "People in calls through this node's media server.",
        &[("", m.participants.load(Ordering::Relaxed).max(0) as f64)],
    );
    metric(
        "noom_media_nacks_total",
        "counter",
        "Retransmissions receivers asked the media server for (NACKs).",
        &[("", get(&m.nacks))],
    );
    metric(
        "noom_media_keyframe_requests_total",
        "counter",
        "Keyframes the media server asked publishers for (PLI).",
        &[("", get(&m.keyframe_requests))],
    );
    metric(
        "noom_media_layer_switches_total",
        "counter",
        "Receivers moved from one simulcast layer to another.",
        &[("", get(&m.layer_switches))],
    );
    let mut buckets: Vec<(String, f64)> = ESTIMATE_BUCKETS
        .iter()
        .zip(&m.estimates)
        .map(|(bound, count)| (format!("_bucket{{le=\"{bound}\"}}"), get(count)))
        .collect();
    buckets.push(("_bucket{le=\"+Inf\"}".into(), get(&m.estimates_count)));
    buckets.push(("_sum".into(), get(&m.estimates_sum)));
    buckets.push(("_count".into(), get(&m.estimates_count)));
    let buckets: Vec<(&str, f64)> = buckets.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "noom_media_estimate_bits_per_second",
        "histogram",
        "Receivers' bandwidth estimates (TWCC), as they are made.",
        &buckets,
    );
    metric(
        "noom_chat_messages_total",
        "counter",
        "Chat messages posted through this node.",
        &[("", get(&c.chat_messages))],
    );
    metric(
        "noom_signals_relayed_total",
        "counter",
        "WebRTC signalling messages relayed from this node's sockets.",
        &[("", get(&c.signals))],
    );
    let reasons: Vec<(String, f64)> = ErrorCode::ALL
        .iter()
        .map(|code| (format!("{{reason=\"{}\"}}", code.name()), get(&c.rejected[*code as usize])))
        .collect();
    let reasons: Vec<(&str, f64)> = reasons.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric("noom_rejected_total", "counter", "Inputs refused, by the error code answered.", &reasons);
    let refusals: Vec<(String, f64)> =
        Refusal::ALL.iter().map(|r| (format!("{{reason=\"{}\"}}", r.name()), get(&c.refused[*r as usize]))).collect();
    let refusals: Vec<(&str, f64)> = refusals.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "noom_connections_refused_total",
        "counter",
        "New connections refused by the per-address limits, by reason.",
        &refusals,
    );
    metric(
        "noom_connections_behind_total",
        "counter",
        "Connections closed because more than their bound waited to be sent to them.",
        &[("", get(&c.behind))],
    );
    if let (Some(nodes), Some(up)) = (gauges.nodes, gauges.redis_up) {
        metric("noom_cluster_nodes", "gauge", "Other nodes of the cluster heard from.", &[("", nodes as f64)]);
        metric("noom_redis_up", "gauge", "Whether the link to Redis is up.", &[("", f64::from(u8::from(up)))]);
    }
    if let Some(connections) = gauges.relay_connections {
        metric(
            "noom_media_relay_connections",
            "gauge",
            "Connections to other nodes' media servers (one per node sharing a call).",
            &[("", connections as f64)],
        );
    }
    let process = Process::read();
    if let Some(cpu) = process.cpu_seconds {
        metric("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", &[("", cpu)]);
    }
    if let Some(rss) = process.resident_bytes {
        metric("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", &[("", rss)]);
    }
    if let Some(fds) = process.open_fds {
        metric("process_open_fds", "gauge", "Open file descriptors.", &[("", fds)]);
    }
    if let Some(start) = process.start_time_seconds {
        metric("process_start_time_seconds", "gauge", "Start time since the Unix epoch, in seconds.", &[("", start)]);
    }
    out
}

/// The process figures Prometheus's clients report, read from `/proc` (absent elsewhere).
#[derive(Default)]
struct Process {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    open_fds: Option<f64>,
    start_time_seconds: Option<f64>,
}

impl Process {
    fn read() -> Process {
        let mut p = Process::default();
        let (ticks, page) = (system_value(libc::_SC_CLK_TCK), system_value(libc::_SC_PAGESIZE));
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            // Fields after the command name, from the state (field 3): utime is 14, stime 15,
            // starttime 22, rss 24.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
            if let (Some(user), Some(system), Some(ticks)) = (field(14), field(15), ticks) {
                p.cpu_seconds = Some((user + system) / ticks);
            }
            if let (Some(pages), Some(page)) = (field(24), page) {
                p.resident_bytes = Some(pages * page);
            }
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|t| t.trim().parse::<f64>().ok()))
            });
            if let (Some(start), Some(boot), Some(ticks)) = (field(22), boot, ticks) {
                p.start_time_seconds = Some(boot + start / ticks);
            }
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
        p
    }
}

/// A figure of the system's (clock ticks a second, bytes a page): `/proc` counts in them, and
/// they differ between machines (pages are 16 KiB on some ARM servers).
fn system_value(name: libc::c_int) -> Option<f64> {
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let value = unsafe { libc::sysconf(name) };
    (value > 0).then_some(value as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_figures_agree_with_the_system() {
        let process = Process::read();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap();
        let rss = process.resident_bytes.unwrap();
        // Both read the same pages, a moment apart.
        assert!((rss / 1024.0 - kib).abs() < kib * 0.5, "{rss} bytes against {kib} KiB");
        assert!(process.cpu_seconds.unwrap() >= 0.0);
    }

    #[test]
    fn the_page_is_in_prometheus_text_format() {
        COUNTERS.rejected(ErrorCode::CallFull);
        let page = render(&Gauges {
            rooms: 2,
            participants: 3,
            calls: 1,
            in_calls: 2,
            nodes: Some(1),
            redis_up: Some(true),
            node: "n1-abcdef".into(),
            relay_connections: Some(2),
            relay_traffic: vec![("n2-abcdef".into(), 10, 20)],
        });
        assert!(page.contains("noom_media_relayed_bytes_total{node=\"n2-abcdef\",direction=\"out\"} 20\n"));
        assert!(page.contains("noom_media_relay_connections 2\n"));
        assert!(page.contains("# TYPE noom_rooms gauge\nnoom_rooms 2\n"));
        assert!(page.contains("noom_rejected_total{reason=\"call_full\"} "));
        assert!(page.contains("noom_redis_up 1\n"));
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        if cfg!(target_os = "linux") {
            assert!(page.contains("process_resident_memory_bytes "));
        }
        let alone = render(&Gauges {
            rooms: 0,
            participants: 0,
            calls: 0,
            in_calls: 0,
            nodes: None,
            redis_up: None,
            node: "alone-abcdef".into(),
            relay_connections: None,
            relay_traffic: Vec::new(),
        });
        assert!(!alone.contains("noom_redis_up"));
    }
}
