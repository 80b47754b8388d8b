//! The host's process table, as far as telling whether a lease holder on this host still
//! lives goes (I3). The app wires Linux's `/proc`; engine tests wire a fake.

/// Where a process runs, in the terms a lease row records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostIdentity {
    /// The host's name.
    pub host: String,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`). It changes at every boot, so
    /// a holder that recorded another one on this host died with the reboot.
    pub boot_id: Option<String>,
    /// The pid namespace (`pid:[4026531836]`). Containers on one kernel share its boot id,
    /// and perhaps a host name, but a pid means something only inside its namespace.
    pub pid_namespace: Option<String>,
}

/// What the process table says about one pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// A live process that started at `start_time`, in clock ticks since boot (Linux: field
    /// 22 of `/proc/PID/stat`). A different start time means the pid was reused.
    Running { start_time: u64 },
    /// No such process, or a zombie (it has exited and only waits to be reaped).
    Gone,
    /// The table cannot tell: unreadable, hidden from us, or not Linux.
    Unknown,
}

/// A host's process table.
pub trait ProcessTable: Send + Sync {
    /// This host.
    fn identity(&self) -> &HostIdentity;
    /// The state of `pid` now.
    fn process(&self, pid: u32) -> ProcessState;
}
