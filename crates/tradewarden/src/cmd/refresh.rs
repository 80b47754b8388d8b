//! `tradewarden refresh`: every account's working orders asked about, positions moved on.

use tradewarden_engine::RefreshReport;

use crate::app::{App, print_json};
use crate::failure::Failure;

/// Refreshes and prints the counts.
pub async fn run(app: &App) -> Result<(), Failure> {
    let report = app.manager.refresh().await?;
    print_json(&report)
}

/// The refresh that ends `run` and `process`: logged, and its counts returned; a failure is
/// logged and does not fail the command, whose runs already happened.
pub async fn after_runs(app: &App) -> Option<RefreshReport> {
    match app.manager.refresh().await {
        Ok(report) => {
            tracing::info!(
                orders_updated = report.orders_updated,
                transactions_opened = report.transactions_opened,
                transactions_closed = report.transactions_closed,
                legs_fired = report.legs_fired,
                legs_canceled = report.legs_canceled,
                skipped = report.skipped_accounts.len(),
                "refreshed after the runs"
            );
            Some(report)
        }
        Err(e) => {
            tracing::warn!("refresh after the runs failed: {e}");
            None
        }
    }
}
