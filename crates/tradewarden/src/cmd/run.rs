//! `tradewarden run`: the batch job — settle what a predecessor left, import, process every
//! expert, summarise.

use crate::app::{App, print_json, read_input};
use crate::failure::{Failure, any_failed};
use crate::{out, output};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON Lines recommendations, or `-`.
    pub file: String,
    /// Print the reports as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Reconciles, imports, processes, prints.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let text = read_input(&args.file)?;
    // Settle what a crashed predecessor left in flight before ordering anything new.
    let reconciled = app.manager.reconcile().await?;
    if !reconciled.settled.is_empty() || !reconciled.findings.is_empty() {
        tracing::info!(
            settled = reconciled.settled.len(),
            findings = reconciled.findings.len(),
            "reconciled before the run"
        );
    }
    let summary = app.manager.import_jsonl(&text).await?;
    let reports = app.manager.process_all(None).await;
    if args.json {
        print_json(&reports)?;
    } else {
        out::stdout(&output::run_summary(
            &summary,
            &reports,
            app.manager.settings(),
        ));
    }
    any_failed(&reports)
}
