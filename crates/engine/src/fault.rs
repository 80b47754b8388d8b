//! Fault points for crash tests: with the `fault-injection` feature (off by default and in
//! release builds), the process aborts at the point named by `$TRADEWARDEN_FAULT`.
//!
//! Points: `after_order_stored` (the order intent is committed with the run's provisional
//! decision records, the broker not yet called), `after_broker_accepted` (the broker has the
//! order, its answer is not yet returned), `before_answer_stored` (we have the answers, they
//! are not yet stored), `mid_run` (the run's orders are sent and their answers stored, which
//! completed their outcomes; the refresh and the run record are not yet written).

#[cfg(all(feature = "fault-injection", not(debug_assertions)))]
compile_error!(
    "the fault-injection feature is for debug test builds only, never for a release build"
);

/// Aborts the process here if `$TRADEWARDEN_FAULT` names this point.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    static SELECTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let selected = SELECTED.get_or_init(|| std::env::var("TRADEWARDEN_FAULT").ok());
    if selected.as_deref() == Some(name) {
        eprintln!("fault injection: aborting at {name}");
        std::process::abort();
    }
}

/// Without the `fault-injection` feature this is nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
