//! `tradewarden man`: the man page build.rs rendered (clap_mangen), printed for installing.

use crate::failure::Failure;
use crate::out;

/// The man page `tradewarden.1` (roff), rendered from the command definitions at build time.
pub const PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/man/tradewarden.1"));

/// Prints the page.
pub fn run() -> Result<(), Failure> {
    out::stdout(PAGE);
    Ok(())
}
