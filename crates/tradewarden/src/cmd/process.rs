//! `tradewarden process`: one expert's run, or every expert's.

use tradewarden_domain::UseCase;
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
    print_json(&reports)?;
    any_failed(&reports)
}

/// Every configured expert, one after another, as the engine's `process_all` does it, with a
/// progress bar (experts processed, rate, time left) on a terminal when it takes a while. An
/// expert whose run fails gets a `failed` report naming the error; the others still run.
pub async fn process_all(app: &App, lookback_days: Option<u32>) -> Vec<RunReport> {
    let ids: Vec<i64> = app.manager.settings().experts.keys().copied().collect();
    let progress = Progress::start("process --all", Unit::Experts, ids.len() as u64);
    let mut reports = Vec::with_capacity(ids.len());
    for id in ids {
        let report = match app.manager.process_enter_market(id, lookback_days).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("enter_market run of expert {id} failed: {e}");
                RunReport::failed(id, UseCase::EnterMarket, e.to_string())
            }
        };
        reports.push(report);
        progress.inc(1);
    }
    progress.finish();
    reports
}
