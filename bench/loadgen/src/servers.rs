//! The servers under test: started on a free port, pinned to their own core, and watched
//! through /proc for CPU time and resident memory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Noom,
    Node,
    Floor,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Noom => "Noom",
            Kind::Node => "Node",
            Kind::Floor => "floor",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "noom" => Some(Kind::Noom),
            "node" => Some(Kind::Node),
            "floor" => Some(Kind::Floor),
            _ => None,
        }
    }
}

pub struct Paths {
    pub noom: PathBuf,
    pub floor: PathBuf,
    pub node_server: PathBuf,
    pub logs: PathBuf,
}

/// What can be read about a server process; nothing when it is not ours to watch.
#[derive(Clone, Copy)]
pub struct Probe {
    pub pid: Option<u32>,
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

    /// User plus system CPU time of every thread, past and present, in seconds.
    pub fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid?)).ok()?;
        // The command name may hold spaces; the fields after its closing parenthesis do not.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / clock_ticks())
    }

    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
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

pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub probe: Probe,
    child: Child,
}

impl Server {
    pub fn start(kind: Kind, paths: &Paths, cpu: Option<usize>) -> Result<Server> {
        let mut command = match cpu {
            // taskset execs the server: the pid stays the server's own, and every thread it
            // starts inherits the core.
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]);
                c
            }
            None => Command::new("env"),
        };
        match kind {
            Kind::Noom => {
                // The per-socket chat limit would refuse the load itself; the check still runs.
                command.arg(&paths.noom).args(["--port", "0", "--chat-rate", "1000000", "--chat-burst", "1000000"]);
            }
            Kind::Floor => {
                command.arg(&paths.floor).args(["--port", "0"]);
            }
            Kind::Node => {
                command.args(["node", "--expose-gc"]).arg(&paths.node_server).arg("0");
            }
        }
        std::fs::create_dir_all(&paths.logs).with_context(|| format!("cannot create {}", paths.logs.display()))?;
        let log_path = paths.logs.join(format!("{}.log", kind.label().to_lowercase()));
        let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", kind.label()))?;
        let stdout = child.stdout.take().expect("piped");
        let (found, lines) = std::sync::mpsc::channel();
        // The server's first line names its address; the rest is drained so it never blocks.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on http://").nth(1)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(addr.trim().to_string());
                }
            }
        });
        let addr = match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not say where it listens within 20 s (see {})", kind.label(), log_path.display());
            }
        };
        let addr: SocketAddr =
            addr.parse().with_context(|| format!("{} printed a bad address {addr:?}", kind.label()))?;
        let probe = Probe { pid: Some(child.id()), core: cpu };
        Ok(Server { kind, addr, probe, child })
    }

    /// A full garbage collection, for Node (its SIGUSR2 hook); the others have nothing to collect.
    pub fn collect_garbage(&self) {
        if self.kind == Kind::Node {
            // SAFETY: a signal to our own child.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGUSR2);
            }
        }
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stop(mut self) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
