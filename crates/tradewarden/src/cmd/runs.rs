//! `tradewarden runs`: the run records (who ran which use case, started how, with what
//! result), newest first, as a table or JSON.

use tradewarden_engine::ports::RunFilter;

use crate::app::{App, print_json};
use crate::failure::{Failure, store_failed};
use crate::{out, output};

/// Arguments of `runs`.
pub use crate::cli::RunsArgs as Args;

/// Lists run records.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let filter = RunFilter {
        expert_id: args.common.expert,
        ..RunFilter::default()
    };
    let rows = app
        .queries()
        .runs(&filter)
        .await
        .map_err(|e| store_failed("listing runs", e))?;
    if args.common.json {
        print_json(&rows)
    } else {
        out::stdout(&output::runs_table(
            &rows,
            &output::TableOpts::for_stdout(args.common.wide),
        ));
        Ok(())
    }
}
