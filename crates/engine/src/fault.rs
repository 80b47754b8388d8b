//! Fault points for crash tests: with the `fault-injection` feature (off by default and in
//! release builds), the process aborts at the point named by `$TRADEWARDEN_FAULT`; when it
//! reads `panic:POINT` it panics there instead (a bug), and when it reads `hold:POINT` it
//! waits at that point until its command is cancelled (a run that is busy when a signal
//! arrives); with `pause:POINT` it waits there until the file named by
//! `$TRADEWARDEN_FAULT_RELEASE` exists, then goes on (a run that is busy when a signal
//! arrives and must be let finish).
//!
//! Points: `after_order_stored` (the order intent is committed with the run's provisional
//! decision records, the broker not yet called), `after_broker_accepted` (the broker has the
//! order, its answer is not yet returned), `before_answer_stored` (we have the answers, they
//! are not yet stored), `mid_run` (the run's orders are sent and their answers stored, which
//! completed their outcomes; the refresh and the run record are not yet written),
//! `after_replacement_legs_stored` (a replacement exit structure is stored, the old one not
//! yet canceled), `after_leg_replaced` (the broker replaced a resting exit leg with the next
//! one, its answer not yet stored), `after_leg_filled_before_recorded` (a refresh has the broker's report of an
//! exit leg's fill, not yet stored). Hold and pause points (`hold:POINT`, `pause:POINT`):
//! `after_order_stored`, `refresh_account` (a refresh holding its account's lock and lease).

#[cfg(all(feature = "fault-injection", not(debug_assertions)))]
compile_error!(
    "the fault-injection feature is for debug test builds only, never for a release build"
);

/// `$TRADEWARDEN_FAULT`, read once.
#[cfg(feature = "fault-injection")]
fn selected() -> Option<&'static str> {
    static SELECTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SELECTED
        .get_or_init(|| std::env::var("TRADEWARDEN_FAULT").ok())
        .as_deref()
}

/// Aborts the process here if `$TRADEWARDEN_FAULT` names this point; panics if it is
/// `panic:` and this point's name.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    let Some(selected) = selected() else { return };
    if selected == name {
        eprintln!("fault injection: aborting at {name}");
        std::process::abort();
    }
    if selected.strip_prefix("panic:") == Some(name) {
        panic!("fault injection: panicking at {name}");
    }
}

/// Waits here for ever if `$TRADEWARDEN_FAULT` is `hold:` and this point's name, after
/// saying so on stderr; dropping the future (a cancelled command) ends the wait. Async, so
/// that the runtime keeps serving signals while the run holds its lock and lease.
///
/// With `pause:` and this point's name, waits until the file `$TRADEWARDEN_FAULT_RELEASE`
/// names exists (looking every 20 ms), then returns.
#[cfg(feature = "fault-injection")]
pub async fn hold(name: &str) {
    if selected().and_then(|s| s.strip_prefix("hold:")) == Some(name) {
        eprintln!("fault injection: holding at {name}");
        std::future::pending::<()>().await;
    }
    if selected().and_then(|s| s.strip_prefix("pause:")) == Some(name) {
        eprintln!("fault injection: pausing at {name}");
        let release = std::env::var_os("TRADEWARDEN_FAULT_RELEASE").unwrap_or_default();
        while !std::path::Path::new(&release).exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        eprintln!("fault injection: released at {name}");
    }
}

/// Without the `fault-injection` feature this is nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// Without the `fault-injection` feature this is nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub async fn hold(_name: &str) {}
