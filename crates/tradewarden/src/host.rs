//! This host's process table read from Linux's `/proc`: who this process is, and whether a
//! pid still runs the process that recorded it (I3). Elsewhere, or when `/proc` cannot be
//! read, every answer is "unknown", which leaves a lease to its expiry.

use std::path::Path;

use tradewarden_engine::{HostIdentity, ProcessState, ProcessTable};

/// The process table of `/proc`.
#[derive(Debug, Clone)]
pub struct ProcFs {
    identity: HostIdentity,
    /// `/proc` is mounted with `hidepid`: another user's live process looks absent, so an
    /// absent pid proves nothing.
    hides_pids: bool,
}

impl ProcFs {
    /// Reads this host's identity from `/proc` once.
    pub fn new() -> Self {
        let proc = Path::new("/proc");
        ProcFs {
            identity: HostIdentity {
                host: host_name(),
                boot_id: read_trimmed(&proc.join("sys/kernel/random/boot_id")),
                pid_namespace: std::fs::read_link(proc.join("self/ns/pid"))
                    .ok()
                    .map(|p| p.display().to_string()),
            },
            hides_pids: std::fs::read_to_string(proc.join("self/mounts"))
                .map(|m| hides_pids(&m))
                .unwrap_or(true),
        }
    }
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTable for ProcFs {
    fn identity(&self) -> &HostIdentity {
        &self.identity
    }

    fn process(&self, pid: u32) -> ProcessState {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => parse_stat(&stat),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.hides_pids => {
                ProcessState::Gone
            }
            Err(_) => ProcessState::Unknown,
        }
    }
}

/// The host name: `$HOSTNAME`, else `/etc/hostname`, else `host`.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Whether the `/proc` mount in `mounts` (the text of `/proc/self/mounts`) hides other users'
/// processes (`hidepid=1`/`2`, or `invisible`/`noaccess`).
fn hides_pids(mounts: &str) -> bool {
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&"/proc") && f.get(2) == Some(&"proc"))
        .any(|f| {
            f.get(3).is_some_and(|opts| {
                opts.split(',').any(|o| {
                    o.strip_prefix("hidepid=")
                        .is_some_and(|v| !matches!(v, "0" | "off"))
                })
            })
        })
}

/// A process's state from the text of its `/proc/PID/stat`. The name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from the
/// last `)`: field 3 is the state, field 22 the start time.
fn parse_stat(stat: &str) -> ProcessState {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return ProcessState::Unknown;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // A zombie (Z) or dead (X) process has exited; only its parent has not reaped it yet.
    if matches!(fields.first(), Some(&("Z" | "X" | "x"))) {
        return ProcessState::Gone;
    }
    match fields.get(22 - 3).and_then(|t| t.parse::<u64>().ok()) {
        Some(start_time) => ProcessState::Running { start_time },
        None => ProcessState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        // Fields 4–17, then priority, nice, threads, itrealvalue, starttime (22), vsize, rss.
        let tail = format!("{}20 0 1 0 8675309 0 0", "0 ".repeat(14));
        #[rustfmt::skip]
        let cases: Vec<(String, ProcessState)> = vec![
            (format!("42 (tradewarden) S {tail}"), ProcessState::Running { start_time: 8675309 }),
            (format!("42 (a) b (c)) R {tail}"), ProcessState::Running { start_time: 8675309 }),
            (format!("42 (tradewarden) Z {tail}"), ProcessState::Gone),
            ("42 (tradewarden) S 1 2".to_string(), ProcessState::Unknown),
            ("garbage".to_string(), ProcessState::Unknown),
        ];
        for (line, want) in cases {
            assert_eq!(parse_stat(&line), want, "{line}");
        }
    }

    #[test]
    fn hidden_pids() {
        #[rustfmt::skip]
        let cases = [
            ("proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0", false),
            ("proc /proc proc rw,relatime,hidepid=2 0 0", true),
            ("proc /proc proc rw,relatime,hidepid=invisible 0 0", true),
            ("proc /proc proc rw,relatime,hidepid=0 0 0", false),
            ("proc /other proc rw,hidepid=2 0 0\nproc /proc proc rw 0 0", false),
        ];
        for (mounts, want) in cases {
            assert_eq!(hides_pids(mounts), want, "{mounts}");
        }
    }

    #[test]
    fn this_process_runs_and_its_start_time_is_stable() {
        let procs = ProcFs::new();
        let me = std::process::id();
        let first = procs.process(me);
        assert!(matches!(first, ProcessState::Running { .. }), "{first:?}");
        assert_eq!(procs.process(me), first);
        assert!(procs.identity().boot_id.is_some());
    }
}
