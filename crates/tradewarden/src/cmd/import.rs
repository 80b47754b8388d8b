//! `tradewarden import`: recommendations from JSON Lines, all or nothing.

use crate::app::{App, print_json, read_input};
use crate::failure::Failure;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file, or `-`.
    pub file: String,
}

/// Imports the file and prints the counts.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let text = read_input(&args.file)?;
    let summary = app.manager.import_jsonl(&text).await?;
    print_json(&summary)
}
