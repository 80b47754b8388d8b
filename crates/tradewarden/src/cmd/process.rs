//! `tradewarden process`: one expert's run, or every expert's, of one use case or both.

use tradewarden_engine::{RunReport, RunTrigger};

use crate::app::{App, print_json};
use crate::failure::{Failure, any_failed};
use crate::progress::{Progress, Unit};

/// Arguments of `process`.
pub use crate::cli::ProcessArgs as Args;

/// Which use cases a `process` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseCases {
    pub enter_market: bool,
    pub open_positions: bool,
}

impl UseCases {
    /// Both, enter_market first: what `process` without `--use-case` and `run` do.
    pub const BOTH: UseCases = UseCases {
        enter_market: true,
        open_positions: true,
    };

    /// The use cases `--use-case` names (its parser admits only the two names); both
    /// without it.
    pub fn named(use_case: Option<&str>) -> UseCases {
        match use_case {
            Some("enter_market") => UseCases {
                enter_market: true,
                open_positions: false,
            },
            Some(_) => UseCases {
                enter_market: false,
                open_positions: true,
            },
            None => UseCases::BOTH,
        }
    }
}

/// Runs and prints the reports (enter_market's, then open_positions'); exit 1 when any run
/// failed.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let which = UseCases::named(args.use_case.as_deref());
    let reports = match args.expert {
        Some(id) => process_one(app, id, args.lookback_days, which).await?,
        None => process_all(app, args.lookback_days, which, RunTrigger::Cli).await,
    };
    super::refresh::after_runs(app).await;
    print_json(&reports)?;
    any_failed(&reports)
}

/// Whether `process` without `--use-case` (and `run`) runs open_positions for the expert:
/// only when it is set up for it (modification allowed or an open_positions ruleset named),
/// so that an expert that never manages positions reports as it always did.
/// `--use-case open_positions` runs (and reports) every expert it names.
fn manages_positions(app: &App, id: i64) -> bool {
    app.manager
        .settings()
        .experts
        .get(&id)
        .is_some_and(|e| e.allow_automated_trade_modification || e.open_positions_ruleset.is_some())
}

/// One expert's runs of `which`, in order.
async fn process_one(
    app: &App,
    id: i64,
    lookback_days: Option<u32>,
    which: UseCases,
) -> Result<Vec<RunReport>, Failure> {
    let mut reports = Vec::new();
    if which.enter_market {
        reports.push(
            app.manager
                .process_enter_market(id, lookback_days, RunTrigger::Cli)
                .await?,
        );
    }
    if which.open_positions && (which != UseCases::BOTH || manages_positions(app, id)) {
        reports.push(
            app.manager
                .process_open_positions(id, lookback_days, RunTrigger::Cli)
                .await?,
        );
    }
    Ok(reports)
}

/// Every configured expert (the engine's `process_all`, then its
/// `process_all_open_positions`), with a progress bar (experts processed, rate, time left)
/// on a terminal when it takes a while. `trigger` is recorded with every run.
pub async fn process_all(
    app: &App,
    lookback_days: Option<u32>,
    which: UseCases,
    trigger: RunTrigger,
) -> Vec<RunReport> {
    let experts = app.manager.settings().experts.len() as u64;
    let mut reports = Vec::new();
    if which.enter_market {
        let progress = Progress::start("process --all", Unit::Experts, experts);
        reports = app
            .manager
            .process_all_with(lookback_days, trigger, |_| progress.inc(1))
            .await;
        progress.finish();
    }
    if which.open_positions {
        reports
            .extend(open_positions_all(app, lookback_days, which == UseCases::BOTH, trigger).await);
    }
    reports
}

/// The open_positions runs of every configured expert, or with `only_managing` of those
/// set up for it ([`manages_positions`]). `trigger` is recorded with every run.
pub async fn open_positions_all(
    app: &App,
    lookback_days: Option<u32>,
    only_managing: bool,
    trigger: RunTrigger,
) -> Vec<RunReport> {
    let ids: Vec<i64> = app
        .manager
        .settings()
        .experts
        .keys()
        .copied()
        .filter(|&id| !only_managing || manages_positions(app, id))
        .collect();
    app.manager
        .process_open_positions_of(&ids, lookback_days, trigger)
        .await
}
