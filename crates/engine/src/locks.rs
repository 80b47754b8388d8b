//! Processing locks: at most one run per (expert, use case) at a time (S1–S4, B2).
//!
//! Two layers, taken in order:
//! 1. In this process, a registry maps a key (`expert_{id}_usecase_{use_case}`) to a tokio
//!    mutex created on first use under the registry's own lock (the seed's meta-lock).
//! 2. Across processes and hosts sharing the database, a lease row for the same key with its
//!    holder ([`LeaseHolder`]) and an expiry, renewed in the background while the run lasts.
//!    A contender that finds the lease held asks whether its holder is provably dead
//!    ([`crate::liveness`]: same host and pid gone or reused, or its PostgreSQL session
//!    ended) and then takes it over at once; otherwise the lease frees at expiry. A holder
//!    whose renewal fails learns it through [`ProcessingGuard::ensure_held`] before its next
//!    broker call.
//!
//! A contender waits at most the configured timeout for both, then skips. The guard releases
//! on drop, so every exit path releases: return, `?`, panic unwinding, and a cancelled task
//! dropping its future. A lease released from `drop` is released by a spawned task, which a
//! runtime shutting down may never run; so the normal path calls
//! [`ProcessingGuard::release`] before returning, and a process that is shutting down
//! (a signal cancelled its command) calls [`ProcessingLocks::release_all`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustc_hash::FxBuildHasher;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tradewarden_domain::{UseCase, lock_key};

use crate::liveness::{self, Verdict};
use crate::metrics as m;
use crate::ports::{Clock, LeaseAttempt, LeaseHolder, LeaseStore, ProcessTable, StoreError};

/// What a lock protects; it decides the key and the log lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockSubject {
    /// A processing run of one expert.
    Expert { expert_id: i64, use_case: UseCase },
    /// A broker refresh / reconciliation of one account.
    Account { account: String },
}

impl LockSubject {
    /// The lock key: `expert_{id}_usecase_{use_case}` or `refresh_account_{name}`.
    pub fn key(&self) -> String {
        match self {
            LockSubject::Expert {
                expert_id,
                use_case,
            } => lock_key(*expert_id, *use_case),
            LockSubject::Account { account } => format!("refresh_account_{account}"),
        }
    }

    /// Which of the per-label metric handles this subject reports to.
    fn label_index(&self) -> usize {
        match self {
            LockSubject::Expert {
                use_case: UseCase::EnterMarket,
                ..
            } => 0,
            LockSubject::Expert {
                use_case: UseCase::OpenPositions,
                ..
            } => 1,
            LockSubject::Account { .. } => 2,
        }
    }

    fn log_acquired(&self) {
        match self {
            LockSubject::Expert {
                expert_id,
                use_case,
            } => {
                tracing::debug!("Acquired processing lock for expert {expert_id} ({use_case})")
            }
            LockSubject::Account { account } => {
                tracing::debug!("Acquired refresh lock for account {account}")
            }
        }
    }

    fn log_skipped(&self) {
        match self {
            LockSubject::Expert {
                expert_id,
                use_case,
            } => tracing::info!(
                "Could not acquire lock for expert {expert_id} ({use_case}) - another thread is already processing. Skipping."
            ),
            LockSubject::Account { account } => {
                tracing::info!(
                    "Could not acquire refresh lock for account {account} - another refresh is running. Skipping."
                )
            }
        }
    }

    fn log_released(&self) {
        match self {
            LockSubject::Expert {
                expert_id,
                use_case,
            } => {
                tracing::debug!("Released processing lock for expert {expert_id} ({use_case})")
            }
            LockSubject::Account { account } => {
                tracing::debug!("Released refresh lock for account {account}")
            }
        }
    }
}

/// The database side of the locks: where leases live, who we are, how long a lease lasts,
/// and how to tell a dead holder.
#[derive(Clone)]
pub struct LeaseConfig {
    /// Where the lease rows live.
    pub store: Arc<dyn LeaseStore>,
    /// This process as lease rows record it: a unique owner id (host, pid and a random
    /// part) and what lets others prove it dead.
    pub holder: LeaseHolder,
    /// How long a lease lasts without renewal (`[processing] lease_seconds`).
    pub ttl: Duration,
    /// Where lease times come from.
    pub clock: Arc<dyn Clock>,
    /// This host's process table, to tell a dead holder on this host.
    pub processes: Arc<dyn ProcessTable>,
}

impl std::fmt::Debug for LeaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseConfig")
            .field("holder", &self.holder)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// How often a contender retries a held lease while it waits.
const LEASE_POLL: Duration = Duration::from_millis(20);

/// The processing locks of one process.
#[derive(Debug)]
pub struct ProcessingLocks {
    /// The meta-lock. A std-style (parking_lot) mutex is right here: it is held only for a
    /// hash-map lookup, never across an `.await`, so an async mutex would only add cost.
    /// Keyed with FxHash: the keys are a handful of configured experts, not attacker input,
    /// so SipHash's flood resistance buys nothing and costs a third of an uncontended acquire.
    registry: parking_lot::Mutex<HashMap<LockSubject, Arc<AsyncMutex<()>>, FxBuildHasher>>,
    timeout: Duration,
    lease: Option<LeaseConfig>,
    /// Whether this process ever took a lease: only then has [`ProcessingLocks::release_all`]
    /// anything to give back (a read-only listing must not even try to write).
    leased: AtomicBool,
    /// Metric handles registered once (per use-case label) instead of on every acquire:
    /// building a labelled key each time cost more than the mutex itself.
    metrics: [LockMetrics; 3],
}

/// The lock metrics of one label.
#[derive(Debug)]
struct LockMetrics {
    acquired: metrics::Counter,
    contended: metrics::Counter,
    wait: metrics::Histogram,
    /// Cloned into each guard, which records into it when it ends.
    hold: metrics::Histogram,
}

impl LockMetrics {
    fn all() -> [LockMetrics; 3] {
        ["enter_market", "open_positions", "refresh"].map(|label| LockMetrics {
            acquired: metrics::counter!(m::LOCK_ACQUISITIONS, "use_case" => label, "outcome" => "acquired"),
            contended: metrics::counter!(m::LOCK_ACQUISITIONS, "use_case" => label, "outcome" => "contended"),
            wait: metrics::histogram!(m::LOCK_WAIT_SECONDS, "use_case" => label),
            hold: metrics::histogram!(m::LOCK_HOLD_SECONDS, "use_case" => label),
        })
    }
}

/// A lease we hold, renewed in the background.
struct HeldLease {
    config: LeaseConfig,
    key: String,
    lost: Arc<AtomicBool>,
    /// Milliseconds since the epoch until which the lease is known to be ours.
    valid_until_ms: Arc<AtomicI64>,
    renewer: JoinHandle<()>,
    released: bool,
}

/// Proof that the holder is the only run of its key, in this process and (with leases) in
/// every process sharing the database. Dropping it releases the lock and logs the release.
pub struct ProcessingGuard {
    _local: OwnedMutexGuard<()>,
    subject: LockSubject,
    lease: Option<HeldLease>,
    /// When the lock was taken, and where its hold time goes when the guard ends.
    acquired_at: Instant,
    hold: metrics::Histogram,
}

impl std::fmt::Debug for ProcessingGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessingGuard")
            .field("subject", &self.subject)
            .finish()
    }
}

/// The lease behind a guard was lost: the run must not call the broker again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "lease on {0} was lost (renewal failed or it expired); stopping before the next broker call"
)]
pub struct LeaseLost(pub String);

impl ProcessingGuard {
    /// The lock key held.
    pub fn key(&self) -> String {
        self.subject.key()
    }

    /// Whether the cross-process lease is still ours: not reported lost by the renewer and
    /// not past its last known expiry. Without leases it is always held.
    pub fn ensure_held(&self) -> Result<(), LeaseLost> {
        let Some(l) = &self.lease else { return Ok(()) };
        let now_ms = l.config.clock.now().timestamp_millis();
        if l.lost.load(Ordering::SeqCst) || now_ms >= l.valid_until_ms.load(Ordering::SeqCst) {
            metrics::counter!(m::LEASE_LOST).increment(1);
            return Err(LeaseLost(l.key.clone()));
        }
        Ok(())
    }

    /// The key of the lease this guard holds and has not given back, for a caller that gives
    /// it back with other writes ([`ProcessingGuard::given_back`]); `None` without leases.
    pub fn lease_key(&self) -> Option<&str> {
        self.lease
            .as_ref()
            .filter(|l| !l.released)
            .map(|l| l.key.as_str())
    }

    /// Stops renewing the lease: its holder is about to give it back with its own writes.
    /// A renewal that raced the give-back finds the row gone and changes nothing.
    pub fn stop_renewing(&self) {
        if let Some(l) = &self.lease {
            l.renewer.abort();
        }
    }

    /// Ends the guard whose lease the caller gave back itself, with other writes in one
    /// database transaction (a batch's run records): dropping it releases only the
    /// in-process lock.
    pub fn given_back(mut self) {
        if let Some(l) = self.lease.as_mut() {
            l.renewer.abort();
            l.released = true;
        }
    }

    /// Ends the guard after its holder's records were written: given back with them when
    /// `given_back` (see [`ProcessingGuard::given_back`]), else released now.
    pub async fn end(self, given_back: bool) {
        match given_back {
            true => self.given_back(),
            false => self.release().await,
        }
    }

    /// Releases the lease now (the in-process lock goes when the guard drops).
    pub async fn release(mut self) {
        if let Some(l) = self.lease.as_mut() {
            l.renewer.abort();
            if let Err(e) = l
                .config
                .store
                .release_lease(&l.key, &l.config.holder.owner)
                .await
            {
                tracing::warn!("could not release lease {}: {e}; it will expire", l.key);
            }
            l.released = true;
        }
    }
}

impl Drop for ProcessingGuard {
    fn drop(&mut self) {
        if let Some(l) = self.lease.take() {
            l.renewer.abort();
            if !l.released {
                // Cancelled or panicking holder: give the key back without waiting.
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let (store, key, owner) = (
                        l.config.store.clone(),
                        l.key.clone(),
                        l.config.holder.owner.clone(),
                    );
                    handle.spawn(async move {
                        let _ = store.release_lease(&key, &owner).await;
                    });
                }
            }
        }
        self.hold.record(self.acquired_at.elapsed().as_secs_f64());
        self.subject.log_released();
    }
}

impl ProcessingLocks {
    /// In-process locks only; contenders wait at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        ProcessingLocks {
            registry: parking_lot::Mutex::new(HashMap::default()),
            timeout,
            lease: None,
            leased: AtomicBool::new(false),
            metrics: LockMetrics::all(),
        }
    }

    /// In-process locks backed by database leases.
    pub fn with_leases(timeout: Duration, lease: LeaseConfig) -> Self {
        ProcessingLocks {
            registry: parking_lot::Mutex::new(HashMap::default()),
            timeout,
            lease: Some(lease),
            leased: AtomicBool::new(false),
            metrics: LockMetrics::all(),
        }
    }

    /// The lease owner id of this process, when leases are on.
    pub fn owner(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.holder.owner.as_str())
    }

    /// Gives up every lease this process still holds, and waits until the database has
    /// them back. For shutdown: a guard dropped by a cancelled command releases its lease
    /// from a spawned task, which a runtime that is shutting down may never run. A guard
    /// still alive loses its lease (its next [`ProcessingGuard::ensure_held`] fails).
    pub async fn release_all(&self) {
        let Some(cfg) = &self.lease else { return };
        if !self.leased.load(Ordering::SeqCst) {
            return;
        }
        match cfg.store.release_leases_of(&cfg.holder.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!("released {n} lease(s) at shutdown"),
            Err(e) => tracing::warn!("could not release this process's leases: {e}; they expire"),
        }
    }

    fn lock_for(&self, subject: &LockSubject) -> Arc<AsyncMutex<()>> {
        let mut reg = self.registry.lock();
        if let Some(l) = reg.get(subject) {
            return l.clone();
        }
        let l = Arc::new(AsyncMutex::new(()));
        reg.insert(subject.clone(), l.clone());
        l
    }

    /// Number of keys created so far.
    pub fn len(&self) -> usize {
        self.registry.lock().len()
    }

    /// Whether no lock was created yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the lock of (expert, use case) within the timeout, or logs the seed's INFO line
    /// and returns `None`.
    pub async fn acquire(&self, expert_id: i64, use_case: UseCase) -> Option<ProcessingGuard> {
        self.acquire_subject(LockSubject::Expert {
            expert_id,
            use_case,
        })
        .await
    }

    /// Takes the lock of any subject within the timeout.
    pub async fn acquire_subject(&self, subject: LockSubject) -> Option<ProcessingGuard> {
        let lock = self.lock_for(&subject);
        // The common case, uncontended and in-process only, touches neither the lease clock
        // nor a timer (only the monotonic instant its hold time starts at); everything else runs in a boxed future so this one stays small.
        if self.lease.is_none()
            && let Ok(local) = Arc::clone(&lock).try_lock_owned()
        {
            return Some(self.granted(subject, local, None));
        }
        Box::pin(self.acquire_contended(subject, lock)).await
    }

    /// A lock taken at once: counted, logged, guarded.
    fn granted(
        &self,
        subject: LockSubject,
        local: OwnedMutexGuard<()>,
        lease: Option<HeldLease>,
    ) -> ProcessingGuard {
        let metrics = &self.metrics[subject.label_index()];
        metrics.wait.record(0.0);
        metrics.acquired.increment(1);
        subject.log_acquired();
        self.guard(subject, local, lease)
    }

    /// The guard of a lock taken now; its hold time is recorded when it ends.
    fn guard(
        &self,
        subject: LockSubject,
        local: OwnedMutexGuard<()>,
        lease: Option<HeldLease>,
    ) -> ProcessingGuard {
        let hold = self.metrics[subject.label_index()].hold.clone();
        ProcessingGuard {
            _local: local,
            subject,
            lease,
            acquired_at: Instant::now(),
            hold,
        }
    }

    /// Takes, without waiting, the locks of those of `expert_ids` that are free now: each
    /// in-process lock, then (with leases) all their leases in one statement. Returns one
    /// entry per expert, in order: its guard, or `None` when its lock or lease is taken at
    /// this instant. Nothing is logged for those: the caller tries them again with
    /// [`ProcessingLocks::acquire`], which waits, takes a dead holder's lease over, or skips.
    pub async fn try_acquire_experts(
        &self,
        expert_ids: &[i64],
        use_case: UseCase,
    ) -> Vec<Option<ProcessingGuard>> {
        let subjects = expert_ids.iter().map(|&expert_id| LockSubject::Expert {
            expert_id,
            use_case,
        });
        self.try_acquire_subjects(subjects.collect()).await
    }

    /// [`ProcessingLocks::try_acquire_experts`] for any subjects (a refresh's accounts):
    /// each free in-process lock, then all their leases in one statement; one entry per
    /// subject, in order, `None` when it is taken at this instant.
    pub async fn try_acquire_subjects(
        &self,
        subjects: Vec<LockSubject>,
    ) -> Vec<Option<ProcessingGuard>> {
        let free: Vec<Option<(LockSubject, OwnedMutexGuard<()>)>> = subjects
            .into_iter()
            .map(|subject| {
                let local = self.lock_for(&subject).try_lock_owned().ok()?;
                Some((subject, local))
            })
            .collect();
        let Some(cfg) = &self.lease else {
            return free
                .into_iter()
                .map(|f| f.map(|(subject, local)| self.granted(subject, local, None)))
                .collect();
        };
        let keys: Vec<String> = free.iter().flatten().map(|(s, _)| s.key()).collect();
        let (taken, now) = take_leases(cfg, &keys, &self.leased).await;
        // A lock whose lease is held elsewhere goes back (its local guard drops) for the
        // waiting path.
        free.into_iter()
            .map(|f| {
                let (subject, local) = f?;
                let key = subject.key();
                taken.contains(&key).then(|| {
                    let lease = start_renewing(cfg, &key, now);
                    self.granted(subject, local, Some(lease))
                })
            })
            .collect()
    }

    /// The rest of [`ProcessingLocks::acquire_subject`]: wait for the local lock within the
    /// timeout, then (with leases) for the lease within what is left of it.
    async fn acquire_contended(
        &self,
        subject: LockSubject,
        lock: Arc<AsyncMutex<()>>,
    ) -> Option<ProcessingGuard> {
        let started = Instant::now();
        let local = match Arc::clone(&lock).try_lock_owned() {
            Ok(g) => Some(g),
            Err(_) => tokio::time::timeout(self.timeout, lock.lock_owned())
                .await
                .ok(),
        };
        let guard = match (local, &self.lease) {
            (None, _) => None,
            (Some(local), None) => Some(self.guard(subject.clone(), local, None)),
            (Some(local), Some(cfg)) => {
                let remaining = self.timeout.saturating_sub(started.elapsed());
                // Set before the attempt: a command cancelled mid-attempt may hold the row.
                self.leased.store(true, Ordering::SeqCst);
                // Not ours across processes: the local lock goes back when `local` drops.
                take_lease(cfg, &subject.key(), remaining)
                    .await
                    .map(|lease| self.guard(subject.clone(), local, Some(lease)))
            }
        };
        let metrics = &self.metrics[subject.label_index()];
        metrics.wait.record(started.elapsed().as_secs_f64());
        match guard {
            Some(g) => {
                metrics.acquired.increment(1);
                subject.log_acquired();
                Some(g)
            }
            None => {
                metrics.contended.increment(1);
                subject.log_skipped();
                None
            }
        }
    }
}

/// One attempt at several leases in one statement: the keys taken, and when. A store error
/// takes none (each key is then tried again on the waiting path, which logs it).
async fn take_leases(
    cfg: &LeaseConfig,
    keys: &[String],
    leased: &AtomicBool,
) -> (HashSet<String>, DateTime<Utc>) {
    let now = cfg.clock.now();
    if keys.is_empty() {
        return (HashSet::new(), now);
    }
    // Set before the attempt: a command cancelled mid-attempt may hold the rows.
    leased.store(true, Ordering::SeqCst);
    match cfg
        .store
        .try_acquire_leases(keys, &cfg.holder, now, cfg.ttl)
        .await
    {
        Ok(taken) => (taken.into_iter().collect(), now),
        Err(e) => {
            tracing::warn!("leases of a batch: {e}");
            (HashSet::new(), now)
        }
    }
}

/// Tries to take the lease within `wait`, then starts its renewer.
async fn take_lease(cfg: &LeaseConfig, key: &str, wait: Duration) -> Option<HeldLease> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match attempt(cfg, key).await {
            Ok(Some(now)) => return Some(start_renewing(cfg, key, now)),
            Ok(None) => {}
            Err(e) => tracing::warn!("lease {key}: {e}"),
        }
        if tokio::time::Instant::now() + LEASE_POLL > deadline {
            return None;
        }
        tokio::time::sleep(LEASE_POLL).await;
    }
}

/// One attempt at the lease: take it if it is free, expired or ours, or take it over if its
/// holder is provably dead. Returns the time it was taken at.
async fn attempt(cfg: &LeaseConfig, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let now = cfg.clock.now();
    let holder = match cfg
        .store
        .try_acquire_lease(key, &cfg.holder, now, cfg.ttl)
        .await?
    {
        LeaseAttempt::Acquired => return Ok(Some(now)),
        LeaseAttempt::Held(None) => return Ok(None),
        LeaseAttempt::Held(Some(holder)) => holder,
    };
    let sign = match liveness::verdict(cfg.processes.as_ref(), cfg.store.as_ref(), &holder).await {
        Verdict::Dead(sign) => sign,
        Verdict::Alive | Verdict::Unknown => return Ok(None),
    };
    let now = cfg.clock.now();
    // Conditional on the exact dead owner: of two contenders that both saw it dead, one wins.
    let took = cfg
        .store
        .take_over_lease(key, &holder.owner, &cfg.holder, now, cfg.ttl)
        .await?;
    if took {
        metrics::counter!(m::LEASE_TAKEN_OVER, "sign" => sign.as_str()).increment(1);
        tracing::warn!("took over lease {key} from {}: {sign}", holder.owner);
    }
    Ok(took.then_some(now))
}

/// Starts the renewer of a lease taken at `now`.
fn start_renewing(cfg: &LeaseConfig, key: &str, now: DateTime<Utc>) -> HeldLease {
    let valid_until_ms = Arc::new(AtomicI64::new(
        now.timestamp_millis() + cfg.ttl.as_millis() as i64,
    ));
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew(
        cfg.clone(),
        key.to_string(),
        lost.clone(),
        valid_until_ms.clone(),
    ));
    HeldLease {
        config: cfg.clone(),
        key: key.to_string(),
        lost,
        valid_until_ms,
        renewer,
        released: false,
    }
}

/// Renews the lease every third of its lifetime until aborted or lost.
async fn renew(
    cfg: LeaseConfig,
    key: String,
    lost: Arc<AtomicBool>,
    valid_until_ms: Arc<AtomicI64>,
) {
    let period = (cfg.ttl / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let now = cfg.clock.now();
        match cfg
            .store
            .renew_lease(&key, &cfg.holder.owner, now, cfg.ttl)
            .await
        {
            Ok(true) => valid_until_ms.store(
                now.timestamp_millis() + cfg.ttl.as_millis() as i64,
                Ordering::SeqCst,
            ),
            Ok(false) => {
                tracing::warn!("lease {key} was lost: another owner holds it or it expired");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                // A failed renewal may still have committed; treat the lease as lost to be safe.
                tracing::warn!("lease {key} renewal failed: {e}");
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn second_contender_skips_after_timeout_and_lock_is_reusable() {
        let locks = ProcessingLocks::new(Duration::from_millis(500));
        let g = locks
            .acquire(1, UseCase::EnterMarket)
            .await
            .expect("first acquires");
        assert!(
            locks.acquire(1, UseCase::EnterMarket).await.is_none(),
            "second must skip"
        );
        // Other keys are independent.
        assert!(locks.acquire(1, UseCase::OpenPositions).await.is_some());
        assert!(locks.acquire(2, UseCase::EnterMarket).await.is_some());
        drop(g);
        assert!(
            locks.acquire(1, UseCase::EnterMarket).await.is_some(),
            "released on drop"
        );
        assert_eq!(locks.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_contender_that_waits_less_than_the_timeout_gets_the_lock() {
        let locks = Arc::new(ProcessingLocks::new(Duration::from_millis(500)));
        let g = locks.acquire(1, UseCase::EnterMarket).await.unwrap();
        let l2 = locks.clone();
        let waiter =
            tokio::spawn(async move { l2.acquire(1, UseCase::EnterMarket).await.is_some() });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(g);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_cancelled_holder_releases() {
        let locks = Arc::new(ProcessingLocks::new(Duration::from_millis(50)));
        let l2 = locks.clone();
        let task = tokio::spawn(async move {
            let _g = l2.acquire(1, UseCase::EnterMarket).await.unwrap();
            std::future::pending::<()>().await;
        });
        while locks.is_empty() {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        task.abort();
        let _ = task.await;
        assert!(locks.acquire(1, UseCase::EnterMarket).await.is_some());
    }

    /// A host where only `live` runs, started at tick 100.
    struct Host {
        me: crate::ports::HostIdentity,
        live: u32,
    }

    impl ProcessTable for Host {
        fn identity(&self) -> &crate::ports::HostIdentity {
            &self.me
        }
        fn process(&self, pid: u32) -> crate::ports::ProcessState {
            if pid == self.live {
                crate::ports::ProcessState::Running { start_time: 100 }
            } else {
                crate::ports::ProcessState::Gone
            }
        }
    }

    fn leased(store: &Arc<crate::testing::MemoryStore>) -> ProcessingLocks {
        let host = Arc::new(Host {
            me: crate::ports::HostIdentity {
                host: "h".into(),
                boot_id: Some("boot".into()),
                pid_namespace: Some("ns".into()),
            },
            live: 7,
        });
        let holder = LeaseHolder {
            owner: "me".into(),
            host: Some(host.me.clone()),
            pid: Some(7),
            start_time: Some(100),
            liveness_key: None,
        };
        ProcessingLocks::with_leases(
            Duration::from_millis(50),
            LeaseConfig {
                store: store.clone(),
                holder,
                ttl: Duration::from_secs(300),
                clock: Arc::new(crate::ports::SystemClock),
                processes: host,
            },
        )
    }

    /// A holder on host `h` with `pid` started at tick 100.
    fn on_h(owner: &str, pid: u32) -> LeaseHolder {
        LeaseHolder {
            owner: owner.into(),
            host: Some(crate::ports::HostIdentity {
                host: "h".into(),
                boot_id: Some("boot".into()),
                pid_namespace: Some("ns".into()),
            }),
            pid: Some(pid),
            start_time: Some(100),
            liveness_key: None,
        }
    }

    #[tokio::test]
    async fn a_dead_holders_lease_is_taken_over_a_live_ones_is_not() {
        let store = Arc::new(crate::testing::MemoryStore::new());
        let locks = leased(&store);
        let key = |id: i64| lock_key(id, UseCase::EnterMarket);
        let far = chrono::Utc::now() + chrono::Duration::seconds(300);
        store.state.lock().leases.extend([
            (key(1), (on_h("live", 7), far)),
            (key(2), (on_h("dead", 8), far)),
        ]);
        // Catches: taking over without asking the process table.
        assert!(locks.acquire(1, UseCase::EnterMarket).await.is_none());
        // Catches: waiting for expiry when the holder is provably gone.
        let g = locks
            .acquire(2, UseCase::EnterMarket)
            .await
            .expect("taken over");
        assert_eq!(store.state.lock().leases[&key(2)].0.owner, "me");
        g.release().await;
        assert!(!store.state.lock().leases.contains_key(&key(2)));
    }

    #[tokio::test]
    async fn release_all_gives_back_what_dropped_guards_held() {
        let store = Arc::new(crate::testing::MemoryStore::new());
        let locks = leased(&store);
        let g = locks.acquire(1, UseCase::EnterMarket).await.unwrap();
        // Dropped unreleased, as by a cancelled command: its release is a spawned task, which
        // has not run yet (one thread, no yield since), as in a runtime shutting down. Only
        // release_all can give the lease back. Catches: a shutdown relying on that task.
        drop(g);
        locks.release_all().await;
        assert!(store.state.lock().leases.is_empty());
    }

    #[test]
    fn keys() {
        assert_eq!(
            LockSubject::Account {
                account: "paper".into()
            }
            .key(),
            "refresh_account_paper"
        );
        assert_eq!(
            LockSubject::Expert {
                expert_id: 3,
                use_case: UseCase::EnterMarket
            }
            .key(),
            "expert_3_usecase_enter_market"
        );
    }
}
