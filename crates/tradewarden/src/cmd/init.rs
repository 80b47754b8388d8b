//! `tradewarden init`: write the commented default configuration.

use std::path::PathBuf;

use crate::config;
use crate::failure::Failure;
use crate::out;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Where to write it.
    #[arg(default_value = "tradewarden.toml")]
    pub path: PathBuf,
}

/// Writes the file unless it exists (or `--force`).
pub fn run(args: Args) -> Result<(), Failure> {
    if args.path.exists() && !args.force {
        return Err(Failure::Input(format!(
            "{}: already exists (use --force to overwrite)",
            args.path.display()
        )));
    }
    std::fs::write(&args.path, config::DEFAULT_CONFIG)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", args.path.display())))?;
    out::stdout(&format!("wrote {}\n", args.path.display()));
    Ok(())
}
