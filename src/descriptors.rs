//! File descriptors: every connection holds one, and many systems start a process with a soft
//! limit of 1,024. The limit is raised to the most the system allows at start, and a warning says
//! so when that is still less than the connections the server may be asked to hold.

/// Descriptors kept for what is not a client's connection: listeners, Redis, logs, certificates.
const SPARE: u64 = 64;
/// Below this, a server shared by many addresses runs out early, whatever its per-address limit.
const COMFORTABLE: u64 = 65_536;

/// Raises the soft limit on open files to the hard limit; returns the limit in effect.
pub fn raise_limit(max_connections_per_address: u32) -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!("cannot read the limit on open files: {}", std::io::Error::last_os_error());
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given, which lives for the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    let open_files = limit.rlim_cur;
    let wanted = u64::from(max_connections_per_address).saturating_add(SPARE).max(COMFORTABLE);
    if open_files < wanted {
        tracing::warn!(
            open_files,
            "the limit on open files is low: each connection holds one, so past about {} connections new ones \
             fail for everyone; raise it (LimitNOFILE in the systemd unit, ulimit -n, or the container's nofile)",
            open_files.saturating_sub(SPARE)
        );
    } else {
        tracing::info!(open_files, "limit on open files");
    }
    Some(open_files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = super::raise_limit(1000).expect("readable");
        let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(now.rlim_cur, now.rlim_max);
        assert_eq!(limit, now.rlim_cur);
    }
}
