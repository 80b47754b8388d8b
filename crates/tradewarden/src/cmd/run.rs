//! `tradewarden run`: the batch job — settle what a predecessor left, import, process every
//! expert, summarise.

use tradewarden_engine::{ImportSummary, RunReport};

use crate::app::{App, print_json, read_input};
use crate::failure::{Failure, any_failed};
use crate::{out, output};

/// Arguments of `run`.
pub use crate::cli::RunArgs as Args;

/// Reconciles, imports, processes, prints.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let text = read_input(&args.file)?;
    let (summary, reports) = batch(app, &text).await?;
    let refreshed = super::refresh::after_runs(app).await;
    if args.json {
        print_json(&reports)?;
    } else {
        out::stdout(&output::run_summary(
            &summary,
            &reports,
            app.manager.settings(),
        ));
        if let Some(r) = refreshed {
            out::stdout(&format!(
                "refresh: {} order(s) updated, {} transaction(s) opened, {} closed, {} leg(s) fired, {} canceled\n",
                r.orders_updated,
                r.transactions_opened,
                r.transactions_closed,
                r.legs_fired,
                r.legs_canceled
            ));
        }
    }
    any_failed(&reports)
}

/// The batch itself, shared with `demo run`: settle what a crashed predecessor left in
/// flight, import the JSON Lines `text`, run enter_market for every expert, then open_positions for
/// those that manage positions.
pub async fn batch(app: &App, text: &[u8]) -> Result<(ImportSummary, Vec<RunReport>), Failure> {
    // Settle what a crashed predecessor left in flight before ordering anything new.
    let reconciled = app.manager.reconcile().await?;
    if !reconciled.settled.is_empty() || !reconciled.findings.is_empty() {
        tracing::info!(
            settled = reconciled.settled.len(),
            findings = reconciled.findings.len(),
            "reconciled before the run"
        );
    }
    let summary = app.manager.import_jsonl(text).await?;
    let trigger = tradewarden_engine::RunTrigger::Cli;
    let mut reports = app.manager.process_all(None, trigger).await;
    reports.extend(super::process::open_positions_all(app, None, true, trigger).await);
    Ok((summary, reports))
}
