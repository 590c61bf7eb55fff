//! The servers under test: started on a free port, pinned to their own core, and watched
//! through /proc for CPU time and resident memory. A cluster is several processes (two Noom
//! nodes and their Redis) on that one core, watched as one server: their CPU times and their
//! memory are summed, so that its cost per delivered message compares with a single server's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Noom,
    /// Two Noom nodes sharing one Redis, users split between them.
    NoomCluster,
    Node,
    Floor,
    /// Janus's VideoRoom, a media server only: the media benchmark's.
    Janus,
}

impl Kind {
    /// Every kind that serves Socket.IO, in the order reports show them.
    pub const ALL: [Kind; 4] = [Kind::Noom, Kind::NoomCluster, Kind::Node, Kind::Floor];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Noom => "Noom",
            Kind::NoomCluster => "Noom ×2 + Redis",
            Kind::Node => "Node",
            Kind::Floor => "floor",
            Kind::Janus => "Janus",
        }
    }

    /// The name `--servers` takes, which also names its logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Noom => "noom",
            Kind::NoomCluster => "noom-cluster",
            Kind::Node => "node",
            Kind::Floor => "floor",
            Kind::Janus => "janus",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

pub struct Paths {
    pub noom: PathBuf,
    pub floor: PathBuf,
    pub node_server: PathBuf,
    pub redis: PathBuf,
    pub logs: PathBuf,
}

/// Which cores a run uses: the server on one, the generator on another.
#[derive(clap::Args)]
pub struct Cores {
    /// The core the server runs on.
    #[arg(long, default_value_t = 1)]
    pub server_cpu: usize,
    /// The core the generator runs on.
    #[arg(long, default_value_t = 0)]
    pub generator_cpu: usize,
    /// Run without pinning anything.
    #[arg(long)]
    pub no_pin: bool,
}

impl Cores {
    /// The server's core, unless nothing is pinned.
    pub fn server(&self) -> Option<usize> {
        (!self.no_pin).then_some(self.server_cpu)
    }

    /// The generator's core, unless nothing is pinned.
    pub fn generator(&self) -> Option<usize> {
        (!self.no_pin).then_some(self.generator_cpu)
    }
}

/// What can be read about a server's processes; nothing when they are not ours to watch.
#[derive(Clone, Default)]
pub struct Probe {
    /// Every process of the server: what it costs is their sum.
    pub pids: Vec<u32>,
    /// A cluster's Redis, one of `pids`: its share is reported besides.
    pub redis: Option<u32>,
    /// The core the server is pinned to, whose busy time shows what else ran there.
    pub core: Option<usize>,
}

impl Probe {
    /// Time the server's core spent busy, whoever ran, in seconds.
    pub fn core_busy_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let name = format!("cpu{}", self.core?);
        let line = stat.lines().find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
        let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
        let busy: u64 = ticks.iter().enumerate().filter(|(i, _)| ![3, 4].contains(i)).take(6).map(|(_, t)| t).sum();
        Some(busy as f64 / clock_ticks())
    }

    /// User plus system CPU time of every thread of every process, past and present, in seconds.
    pub fn cpu_s(&self) -> Option<f64> {
        self.sum(process_cpu_s)
    }

    pub fn rss_kb(&self) -> Option<u64> {
        self.sum(process_rss_kb)
    }

    /// Resident memory that is the processes' own (RssAnon: heap, stacks), summed: what people
    /// in a call cost, without the program's code and libraries, which the kernel pages in
    /// (and counts as resident) as they are first run.
    pub fn anon_kb(&self) -> Option<u64> {
        self.sum(|pid| process_status_kb(pid, "RssAnon:"))
    }

    /// The highest resident memory each process has had (VmHWM), summed.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        self.sum(|pid| process_status_kb(pid, "VmHWM:"))
    }

    pub fn redis_cpu_s(&self) -> Option<f64> {
        process_cpu_s(self.redis?)
    }

    pub fn redis_rss_kb(&self) -> Option<u64> {
        process_rss_kb(self.redis?)
    }

    /// Nothing when there is no process to read, or one of them could not be read: a part
    /// missing would pass for a saving.
    fn sum<T: std::iter::Sum<T>>(&self, read: fn(u32) -> Option<T>) -> Option<T> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| read(pid)).sum()
    }
}

fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

fn process_rss_kb(pid: u32) -> Option<u64> {
    process_status_kb(pid, "VmRSS:")
}

fn process_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// This process's own CPU time (user plus system), in seconds.
pub fn own_cpu_s() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Pins this process (its current thread and every thread it starts later) to one core.
pub fn pin_self(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only read and
    // write the set given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("cannot pin the generator to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the open-file limit as far as allowed: ten thousand users are ten thousand sockets
/// here and as many in the server, which inherits the limit.
pub fn raise_file_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let raised = libc::rlimit { rlim_cur: want, rlim_max: want.max(limit.rlim_max) };
        // As root the hard limit can rise too; otherwise stay under it.
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            limit.rlim_cur = limit.rlim_max.min(want);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// How long a process may take to say where it listens, or a cluster's nodes to reach Redis.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The per-socket chat and event limits would refuse the benchmark's load itself (with 100 users,
/// 10,000 sends/s is 100 events a second from each); the checks still run.
const RATES_UNLIMITED: [&str; 6] = ["--chat-rate", "1000000", "--chat-burst", "1000000", "--event-rate", "1000000"];

/// A server under test: one process, or a cluster's. Dropping it kills whatever is left of it,
/// so that a server that failed half-way through starting leaves nothing behind.
pub struct Server {
    pub kind: Kind,
    /// Where users connect: one address, or one per node of a cluster.
    pub addrs: Vec<SocketAddr>,
    pub probe: Probe,
    /// In the order they started: a cluster's Redis before its nodes.
    children: Vec<Child>,
    /// Redis's working directory, removed with it.
    scratch: Option<PathBuf>,
}

impl Server {
    pub fn start(kind: Kind, paths: &Paths, cpu: Option<usize>) -> Result<Server> {
        let mut server = Server::none(kind, cpu, &paths.logs)?;
        let log = paths.logs.join(format!("{}.log", kind.name()));
        match kind {
            Kind::Noom => server.listen_noom(&paths.noom, &RATES_UNLIMITED, kind.label(), &log)?,
            Kind::NoomCluster => server.start_cluster(paths, cpu)?,
            Kind::Floor => {
                let mut command = pinned(cpu, &paths.floor);
                command.args(["--port", "0"]);
                server.listen(command, kind.label(), &log)?;
            }
            Kind::Node => {
                let mut command = pinned(cpu, Path::new("node"));
                command.arg("--expose-gc").arg(&paths.node_server).arg("0");
                server.listen(command, kind.label(), &log)?;
            }
            Kind::Janus => bail!("Janus serves no Socket.IO: the media benchmark starts it"),
        }
        Ok(server)
    }

    /// One Noom, with `args` added to its command line (its limits, its timeouts), logging to
    /// `noom.log` in `logs`.
    pub fn start_noom(bin: &Path, args: &[&str], cpu: Option<usize>, logs: &Path) -> Result<Server> {
        let mut server = Server::none(Kind::Noom, cpu, logs)?;
        let log = logs.join(format!("{}.log", Kind::Noom.name()));
        server.listen_noom(bin, args, Kind::Noom.label(), &log)?;
        Ok(server)
    }

    /// One process of `kind` started as `program` with `args`, which prints where it listens.
    pub fn start_program(kind: Kind, program: &Path, args: &[&str], cpu: Option<usize>, logs: &Path) -> Result<Server> {
        let mut server = Server::none(kind, cpu, logs)?;
        let mut command = pinned(cpu, program);
        command.args(args);
        server.listen(command, kind.label(), &logs.join(format!("{}.log", kind.name())))?;
        Ok(server)
    }

    /// One process of `kind` started as `program` with `args`, which says nothing of where it
    /// listens: ready once `addr` takes a TCP connection.
    pub fn start_at(
        kind: Kind,
        program: &Path,
        args: &[&str],
        addr: SocketAddr,
        cpu: Option<usize>,
        logs: &Path,
    ) -> Result<Server> {
        let mut server = Server::none(kind, cpu, logs)?;
        let log_path = logs.join(format!("{}.log", kind.name()));
        let log = create_log(&log_path)?;
        let child = pinned(cpu, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        server.probe.pids.push(child.id());
        server.children.push(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline || !server.alive() {
                bail!(
                    "{} did not listen on {addr} within {} s (see {})",
                    kind.label(),
                    START_TIMEOUT.as_secs(),
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.addrs.push(addr);
        Ok(server)
    }

    /// A server of no process yet, its logs' directory made.
    fn none(kind: Kind, cpu: Option<usize>, logs: &Path) -> Result<Server> {
        std::fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
        Ok(Server {
            kind,
            addrs: Vec::new(),
            probe: Probe { core: cpu, ..Probe::default() },
            children: Vec::new(),
            scratch: None,
        })
    }

    /// A Redis on a free port, with nothing saved to disk, and two Noom nodes on it; ready once
    /// both say their link to Redis is up, since a node whose link is down serves its own users
    /// alone and the load would not cross Redis.
    fn start_cluster(&mut self, paths: &Paths, cpu: Option<usize>) -> Result<()> {
        let name = self.kind.name();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port for Redis")?
            .port();
        let scratch = std::env::temp_dir().join(format!("noom-bench-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        self.scratch = Some(scratch.clone());
        let mut redis = pinned(cpu, &paths.redis);
        redis.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir"]);
        redis.arg(&scratch);
        let log_path = paths.logs.join(format!("{name}-redis.log"));
        let log = create_log(&log_path)?;
        let child = redis
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", paths.redis.display()))?;
        self.probe.redis = Some(child.id());
        self.probe.pids.push(child.id());
        self.children.push(child);
        let url = format!("redis://127.0.0.1:{port}");
        for node in ["a", "b"] {
            self.listen_noom(
                &paths.noom,
                &[&RATES_UNLIMITED[..], &["--redis-url", &url]].concat(),
                &format!("node {node} of {}", self.kind.label()),
                &paths.logs.join(format!("{name}-{node}.log")),
            )?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in self.addrs.clone() {
            while !redis_up(addr) {
                if Instant::now() > deadline {
                    bail!(
                        "{addr} did not report its Redis link up within {} s (see {})",
                        START_TIMEOUT.as_secs(),
                        paths.logs.display()
                    );
                }
                if !self.alive() {
                    bail!("a process of {} died while starting (see {})", self.kind.label(), paths.logs.display());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Starts a Noom on a free port with `args` besides, and its per-address limits off: every
    /// user of a load comes from 127.0.0.1, and those limits would refuse the load itself.
    fn listen_noom(&mut self, bin: &Path, args: &[&str], what: &str, log_path: &Path) -> Result<()> {
        let mut command = pinned(self.probe.core, bin);
        command.args(["--port", "0", "--max-connections-per-address", "0", "--connection-rate-per-address", "0"]);
        command.args(args);
        self.listen(command, what, log_path)
    }

    /// Starts a process that prints `listening on SCHEME://ADDR` (http, udp) first, and adds it and its
    /// address to the server.
    fn listen(&mut self, mut command: Command, what: &str, log_path: &Path) -> Result<()> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(create_log(log_path)?)
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = child.stdout.take().expect("piped");
        self.probe.pids.push(child.id());
        self.children.push(child);
        let (found, lines) = std::sync::mpsc::channel();
        // The server's first line names its address; the rest is drained so it never blocks.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, addr)) = line.split("listening on ").nth(1).and_then(|a| a.split_once("://"))
                    && let Some(found) = found.take()
                {
                    let _ = found.send(addr.trim().to_string());
                }
            }
        });
        let Ok(addr) = lines.recv_timeout(START_TIMEOUT) else {
            bail!(
                "{what} did not say where it listens within {} s (see {})",
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        };
        self.addrs.push(addr.parse().with_context(|| format!("{what} printed a bad address {addr:?}"))?);
        Ok(())
    }

    /// A full garbage collection, for Node (its SIGUSR2 hook); the others have nothing to collect.
    pub fn collect_garbage(&self) {
        if self.kind == Kind::Node {
            for child in &self.children {
                // SAFETY: a signal to our own child.
                unsafe {
                    libc::kill(child.id() as i32, libc::SIGUSR2);
                }
            }
        }
    }

    /// Whether every process of the server is still running.
    pub fn alive(&mut self) -> bool {
        self.children.iter_mut().all(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Asks each process in turn to stop, the last started first (a cluster's nodes say goodbye
    /// through Redis), and kills it after 3 s.
    pub fn stop(mut self) {
        for mut child in std::mem::take(&mut self.children).into_iter().rev() {
            // SAFETY: a signal to our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(scratch) = &self.scratch {
            let _ = std::fs::remove_dir_all(scratch);
        }
    }
}

/// A command running `program` on one core, or anywhere.
fn pinned(cpu: Option<usize>, program: &Path) -> Command {
    match cpu {
        // taskset execs the program: the pid stays the program's own, and every thread it
        // starts inherits the core.
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn create_log(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// Whether a Noom node's `/healthz` says its Redis link is up (`"redis": "up"`).
fn redis_up(addr: SocketAddr) -> bool {
    let Ok(body) = http_get(addr, "/healthz") else { return false };
    serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|health| health["redis"] == "up")
}

/// The body of a server's answer to a GET of `path`, waiting at most a second for each step.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    tcp.set_read_timeout(Some(Duration::from_secs(1)))?;
    // HTTP/1.0: the answer comes whole, not in chunks, and the connection closes after it.
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer)?;
    Ok(answer.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_string())
}
