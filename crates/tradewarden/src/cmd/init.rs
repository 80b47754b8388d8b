//! `tradewarden init`: write the commented default configuration.

use crate::config;
use crate::failure::Failure;
use crate::out;

/// Arguments of `init`.
pub use crate::cli::InitArgs as Args;

/// Writes the file unless it exists (or `--force`).
pub fn run(args: Args) -> Result<(), Failure> {
    if args.path.exists() && !args.force {
        return Err(Failure::Input(format!(
            "cannot write {}: it already exists — pass --force to overwrite it, or name another PATH",
            args.path.display()
        )));
    }
    std::fs::write(&args.path, config::DEFAULT_CONFIG)
        .map_err(|e| {
            Failure::Runtime(format!(
                "cannot write {}: {e} — check that its directory exists and is writable, or name another PATH",
                args.path.display()
            ))
        })?;
    out::stdout(&format!("wrote {}\n", args.path.display()));
    Ok(())
}
