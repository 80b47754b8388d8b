//! `tradewarden import`: recommendations from JSON Lines, all or nothing.

use crate::app::{App, print_json, read_input_tracked};
use crate::failure::Failure;
use crate::progress::{Progress, Unit};

/// Arguments of `import`.
pub use crate::cli::ImportArgs as Args;

/// Imports the file and prints the counts; a progress bar (lines read, then storing) on a
/// terminal when it takes a while.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let progress = Progress::start("import", Unit::Spinner, 0);
    let text = read_input_tracked(&args.file, Some(&progress))?;
    let lines = text.iter().filter(|b| **b == b'\n').count();
    progress.phase(
        Unit::Spinner,
        0,
        &format!("checking and storing {lines} lines"),
    );
    let summary = app.manager.import_jsonl(&text).await;
    progress.finish();
    print_json(&summary?)
}
