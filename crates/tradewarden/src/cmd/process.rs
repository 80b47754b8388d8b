//! `tradewarden process`: one expert's run, or every expert's.

use tradewarden_engine::RunReport;

use crate::app::{App, print_json};
use crate::failure::{Failure, any_failed};
use crate::progress::{Progress, Unit};

/// Arguments of `process`.
pub use crate::cli::ProcessArgs as Args;

/// Runs and prints the reports; exit 1 when any run failed.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let reports = match args.expert {
        Some(id) => vec![
            app.manager
                .process_enter_market(id, args.lookback_days)
                .await?,
        ],
        None => process_all(app, args.lookback_days).await,
    };
    super::refresh::after_runs(app).await;
    print_json(&reports)?;
    any_failed(&reports)
}

/// Every configured expert, one after another (the engine's `process_all`), with a
/// progress bar (experts processed, rate, time left) on a terminal when it takes a while.
pub async fn process_all(app: &App, lookback_days: Option<u32>) -> Vec<RunReport> {
    let experts = app.manager.settings().experts.len() as u64;
    let progress = Progress::start("process --all", Unit::Experts, experts);
    let reports = app
        .manager
        .process_all_with(lookback_days, |_| progress.inc(1))
        .await;
    progress.finish();
    reports
}
