//! `tradewarden check`: the configuration, validated and described.

use crate::config::{self, Config};
use crate::failure::Failure;
use crate::out;

/// Prints what the configuration defines.
pub fn run(cfg: &Config, source: &str) -> Result<(), Failure> {
    out::stdout(&config::describe(cfg, source));
    Ok(())
}
