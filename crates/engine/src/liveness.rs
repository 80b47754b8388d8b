//! Telling whether a lease's holder is dead (I3), so that its lease is taken over at once
//! instead of blocking its key until expiry.
//!
//! Death is only ever *proven*, never guessed: a wrong "dead" would let two runs of one key
//! overlap, a wrong "alive" only delays the next run until expiry. So every doubt (another
//! host without a database signal, an unreadable `/proc`, a missing field) answers
//! [`Verdict::Unknown`], which leaves the lease to its expiry.

use crate::ports::{HostIdentity, LeaseHolder, LeaseStore, ProcessState, ProcessTable};

/// What is known about a lease holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Provably alive: leave its lease alone.
    Alive,
    /// Provably dead, and why: its lease may be taken over now.
    Dead(DeathSign),
    /// Cannot tell: its lease is taken at expiry.
    Unknown,
}

/// How a holder's death was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathSign {
    /// Its host (same name, same pid namespace) booted again since it took the lease.
    Rebooted,
    /// Its pid no longer exists on this host.
    PidGone,
    /// Its pid runs a process that started at another time: the pid was reused.
    PidReused,
    /// PostgreSQL ended the session that held its liveness lock.
    SessionEnded,
}

impl DeathSign {
    /// The sign in words, for the log line of a take-over.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathSign::Rebooted => "its host rebooted",
            DeathSign::PidGone => "its pid is gone",
            DeathSign::PidReused => "its pid was reused by a newer process",
            DeathSign::SessionEnded => "its database session ended",
        }
    }
}

impl std::fmt::Display for DeathSign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What this host's process table proves about `holder`: anything only when the holder
/// recorded the same host name and pid namespace as ours.
pub fn on_this_host(processes: &dyn ProcessTable, holder: &LeaseHolder) -> Verdict {
    let me: &HostIdentity = processes.identity();
    let Some(theirs) = &holder.host else {
        return Verdict::Unknown;
    };
    let known_equal = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    if theirs.host != me.host || known_equal(&theirs.pid_namespace, &me.pid_namespace) != Some(true)
    {
        return Verdict::Unknown;
    }
    match known_equal(&theirs.boot_id, &me.boot_id) {
        Some(false) => return Verdict::Dead(DeathSign::Rebooted),
        None => return Verdict::Unknown,
        Some(true) => {}
    }
    let (Some(pid), Some(started)) = (holder.pid, holder.start_time) else {
        return Verdict::Unknown;
    };
    match processes.process(pid) {
        ProcessState::Gone => Verdict::Dead(DeathSign::PidGone),
        ProcessState::Running { start_time } if start_time != started => {
            Verdict::Dead(DeathSign::PidReused)
        }
        ProcessState::Running { .. } => Verdict::Alive,
        ProcessState::Unknown => Verdict::Unknown,
    }
}

/// Everything known about `holder`: this host's process table first (certain either way
/// when it can tell), then the database's session signal, else nothing.
pub async fn verdict(
    processes: &dyn ProcessTable,
    store: &dyn LeaseStore,
    holder: &LeaseHolder,
) -> Verdict {
    match on_this_host(processes, holder) {
        Verdict::Unknown => {}
        known => return known,
    }
    let Some(key) = holder.liveness_key else {
        return Verdict::Unknown;
    };
    match store.holder_connected(key).await {
        Ok(Some(false)) => Verdict::Dead(DeathSign::SessionEnded),
        Ok(Some(true)) => Verdict::Alive,
        Ok(None) => Verdict::Unknown,
        Err(e) => {
            tracing::warn!(
                "cannot ask the database whether {} lives: {e}",
                holder.owner
            );
            Verdict::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process table that knows one pid.
    struct Table {
        me: HostIdentity,
        pid: u32,
        state: ProcessState,
    }

    impl ProcessTable for Table {
        fn identity(&self) -> &HostIdentity {
            &self.me
        }
        fn process(&self, pid: u32) -> ProcessState {
            if pid == self.pid {
                self.state
            } else {
                ProcessState::Gone
            }
        }
    }

    fn host(name: &str, boot: Option<&str>, ns: Option<&str>) -> HostIdentity {
        HostIdentity {
            host: name.into(),
            boot_id: boot.map(Into::into),
            pid_namespace: ns.map(Into::into),
        }
    }

    fn holder(at: HostIdentity, pid: Option<u32>, start_time: Option<u64>) -> LeaseHolder {
        LeaseHolder {
            owner: "them".into(),
            host: Some(at),
            pid,
            start_time,
            liveness_key: None,
        }
    }

    #[test]
    fn what_this_host_can_prove() {
        let here = || host("h1", Some("boot-a"), Some("pid:[1]"));
        let running = ProcessState::Running { start_time: 500 };
        #[rustfmt::skip]
        let cases: Vec<(&str, LeaseHolder, ProcessState, Verdict)> = vec![
            ("alive, same start", holder(here(), Some(42), Some(500)), running, Verdict::Alive),
            ("pid gone", holder(here(), Some(42), Some(500)), ProcessState::Gone, Verdict::Dead(DeathSign::PidGone)),
            ("pid reused", holder(here(), Some(42), Some(499)), running, Verdict::Dead(DeathSign::PidReused)),
            ("table cannot tell", holder(here(), Some(42), Some(500)), ProcessState::Unknown, Verdict::Unknown),
            ("rebooted", holder(host("h1", Some("boot-b"), Some("pid:[1]")), Some(42), Some(500)), running, Verdict::Dead(DeathSign::Rebooted)),
            ("other host", holder(host("h2", Some("boot-a"), Some("pid:[1]")), Some(42), Some(500)), ProcessState::Gone, Verdict::Unknown),
            ("other pid namespace", holder(host("h1", Some("boot-a"), Some("pid:[2]")), Some(42), Some(500)), ProcessState::Gone, Verdict::Unknown),
            ("their boot id unknown", holder(host("h1", None, Some("pid:[1]")), Some(42), Some(500)), ProcessState::Gone, Verdict::Unknown),
            ("their namespace unknown", holder(host("h1", Some("boot-a"), None), Some(42), Some(500)), ProcessState::Gone, Verdict::Unknown),
            ("no start time", holder(here(), Some(42), None), ProcessState::Gone, Verdict::Unknown),
            ("no pid", holder(here(), None, Some(500)), ProcessState::Gone, Verdict::Unknown),
            ("nothing known", LeaseHolder::anonymous("x"), ProcessState::Gone, Verdict::Unknown),
        ];
        for (name, h, state, want) in cases {
            let table = Table {
                me: here(),
                pid: 42,
                state,
            };
            assert_eq!(on_this_host(&table, &h), want, "{name}");
        }
    }

    #[tokio::test]
    async fn the_database_signal_decides_what_the_host_cannot() {
        use crate::testing::MemoryStore;
        let table = Table {
            me: host("h1", Some("boot-a"), Some("pid:[1]")),
            pid: 42,
            state: ProcessState::Running { start_time: 500 },
        };
        let store = MemoryStore::new();
        let mut elsewhere = holder(host("h2", Some("b"), Some("n")), Some(42), Some(1));
        assert_eq!(verdict(&table, &store, &elsewhere).await, Verdict::Unknown);
        elsewhere.liveness_key = Some(7);
        // A key the store knows nothing of proves nothing.
        assert_eq!(verdict(&table, &store, &elsewhere).await, Verdict::Unknown);
        store.state.lock().sessions.insert(7, true);
        assert_eq!(verdict(&table, &store, &elsewhere).await, Verdict::Alive);
        store.state.lock().sessions.insert(7, false);
        assert_eq!(
            verdict(&table, &store, &elsewhere).await,
            Verdict::Dead(DeathSign::SessionEnded)
        );
        // The host's proof wins over the session: a live pid with its start time is alive.
        let mut here = holder(table.me.clone(), Some(42), Some(500));
        here.liveness_key = Some(7);
        assert_eq!(verdict(&table, &store, &here).await, Verdict::Alive);
    }
}
