//! `tradewarden import`: recommendations from JSON Lines, all or nothing, streamed: the input
//! is read a line at a time and handed to the engine's import, which writes it in chunks into
//! one database transaction, so a file of any length is imported in bounded memory.

use std::io::BufRead;

use crate::app::{App, cannot_read, open_input, print_json};
use crate::failure::Failure;
use crate::progress::{Progress, Unit};

/// Arguments of `import`.
pub use crate::cli::ImportArgs as Args;

/// Bytes read from the input at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Lines between two updates of the progress bar's line count.
const PROGRESS_EVERY: usize = 1_024;

/// Imports the file (or standard input for `-`) and prints the counts; a progress bar (bytes
/// and lines read) on a terminal when it takes a while.
pub async fn run(args: Args, app: &App) -> Result<(), Failure> {
    let (input, len) = open_input(&args.file)?;
    let progress = Progress::start("import", Unit::Bytes, len);
    progress.message("0 lines read".to_string());
    let mut input = std::io::BufReader::with_capacity(READ_BUFFER, input);
    let mut import = app.manager.begin_import().await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| cannot_read(&args.file, &e))?;
        if n == 0 {
            break;
        }
        import
            .line(line.strip_suffix(b"\n").unwrap_or(&line))
            .await?;
        progress.inc(n as u64);
        if import.lines().is_multiple_of(PROGRESS_EVERY) {
            progress.message(format!("{} lines read", import.lines()));
        }
    }
    progress.message(format!("{} lines read, storing", import.lines()));
    let summary = import.finish().await;
    progress.finish();
    print_json(&summary?)
}
