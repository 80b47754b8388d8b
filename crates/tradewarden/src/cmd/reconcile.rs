//! `tradewarden reconcile`: settle orders left in flight, compare positions.

use crate::app::{App, print_json};
use crate::failure::Failure;

/// Reconciles and prints the report.
pub async fn run(app: &App) -> Result<(), Failure> {
    let report = app.manager.reconcile().await?;
    print_json(&report)
}
