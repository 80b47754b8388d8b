//! `tradewarden process`: one expert's run, or every expert's.

use crate::app::{App, print_json};
use crate::config;
use crate::failure::{Failure, any_failed};

/// Arguments of `process`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The expert to process.
    #[arg(long, conflicts_with = "all", required_unless_present = "all", value_parser = clap::value_parser!(i64).range(config::EXPERT_ID))]
    pub expert: Option<i64>,
    /// Process every configured expert.
    #[arg(long)]
    pub all: bool,
    /// The use case.
    #[arg(long, default_value = "enter_market", value_parser = ["enter_market"])]
    pub use_case: String,
    /// Override the configured lookback window, in days.
    #[arg(long, value_parser = clap::value_parser!(u32).range(config::LOOKBACK_DAYS))]
    pub lookback_days: Option<u32>,
}

/// Runs and prints the reports; exit 1 when any run failed.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let reports = match args.expert {
        Some(id) => vec![
            app.manager
                .process_enter_market(id, args.lookback_days)
                .await?,
        ],
        None => app.manager.process_all(args.lookback_days).await,
    };
    print_json(&reports)?;
    any_failed(&reports)
}
