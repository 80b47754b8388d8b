//! Names of the metrics the engine records through the `metrics` facade (S8, B5).
//!
//! With no recorder installed they cost a few nanoseconds; the binary installs a Prometheus
//! recorder when it serves `/metrics`.

/// Counter: processing-lock attempts, labelled `use_case` (`enter_market`, `open_positions`,
/// `refresh`) and `outcome` (`acquired`, or `contended`: the run skipped because the lock
/// stayed held past the timeout).
pub const LOCK_ACQUISITIONS: &str = "tradewarden_lock_acquisitions_total";
/// Histogram: seconds spent waiting for a processing lock, labelled `use_case`.
pub const LOCK_WAIT_SECONDS: &str = "tradewarden_lock_wait_seconds";
/// Histogram: seconds a processing lock was held, from acquisition to release on whatever
/// path the guard ends (release, give-back, drop), labelled `use_case`.
pub const LOCK_HOLD_SECONDS: &str = "tradewarden_lock_hold_seconds";
/// Counter: recommendation and position outcomes of the runs, labelled `use_case` and
/// `outcome` (an [`OutcomeKind`](tradewarden_domain::outcome::OutcomeKind) wire name).
pub const RECOMMENDATION_OUTCOMES: &str = "tradewarden_recommendation_outcomes_total";
/// Counter: duplicate positions prevented, labelled `by` (`check` or `index`).
pub const DUPLICATE_POSITIONS_PREVENTED: &str = "tradewarden_duplicate_positions_prevented_total";
/// Counter: orders submitted to a broker, labelled `broker` (its kind, [`Broker::kind`]) and
/// `result` (`accepted`, `rejected`, or `unavailable`: no answer, left `submitting` for
/// settlement).
///
/// [`Broker::kind`]: crate::ports::Broker::kind
pub const ORDERS_SUBMITTED: &str = "tradewarden_orders_submitted_total";
/// Histogram: seconds each broker call took, failed ones too, labelled `broker` (its kind)
/// and `operation` (the [`Broker`](crate::ports::Broker) method: `account`, `quotes`,
/// `submit`, `submit_batch`, `lookup`, `lookup_batch`, `cancel`, `replace`, `positions`, `holdings`).
pub const BROKER_REQUEST_SECONDS: &str = "tradewarden_broker_request_seconds";
/// Histogram: seconds a whole run took, labelled `use_case`.
pub const RUN_SECONDS: &str = "tradewarden_run_seconds";
/// Counter: runs stopped because their cross-process lease was lost.
pub const LEASE_LOST: &str = "tradewarden_lease_lost_total";
/// Counter: leases taken over from a provably dead holder before expiry, labelled `sign`
/// (how its death was proven).
pub const LEASE_TAKEN_OVER: &str = "tradewarden_lease_taken_over_total";
/// Counter: reconciliation findings (broker positions that differ from transactions).
pub const RECONCILE_FINDINGS: &str = "tradewarden_reconcile_findings_total";
/// Counter: in-flight orders settled by reconciliation, labelled `how` (`adopted`, `submitted`).
pub const ORDERS_SETTLED: &str = "tradewarden_orders_settled_total";
/// Counter: runs ended, labelled `use_case`, `status` and `trigger` (`cli`, `api`, `jobs`,
/// `schedule`); skipped runs included.
pub const RUNS_TOTAL: &str = "tradewarden_runs_total";
