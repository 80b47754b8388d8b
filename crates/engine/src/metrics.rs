//! Names of the metrics the engine records through the `metrics` facade (S8, B5).
//!
//! With no recorder installed they cost a few nanoseconds; the binary installs a Prometheus
//! recorder when it serves `/metrics`.

/// Counter: processing locks acquired, labelled `use_case`.
pub const LOCK_ACQUIRED: &str = "tradewarden_lock_acquired_total";
/// Counter: runs skipped because the lock was held, labelled `use_case`.
pub const LOCK_CONTENDED: &str = "tradewarden_lock_contended_total";
/// Histogram: seconds spent waiting for a processing lock, labelled `use_case`.
pub const LOCK_WAIT_SECONDS: &str = "tradewarden_lock_wait_seconds";
/// Counter: recommendations considered, labelled `outcome`.
pub const RECOMMENDATIONS: &str = "tradewarden_recommendations_total";
/// Counter: duplicate positions prevented, labelled `by` (`check` or `index`).
pub const DUPLICATES_PREVENTED: &str = "tradewarden_duplicates_prevented_total";
/// Counter: orders submitted to a broker, labelled `result`.
pub const ORDERS_SUBMITTED: &str = "tradewarden_orders_submitted_total";
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
