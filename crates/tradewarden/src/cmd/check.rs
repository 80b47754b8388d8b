//! `tradewarden check`: the configuration, validated and described.

use crate::config::Config;
use crate::failure::Failure;
use crate::output;

/// Prints what the configuration defines.
pub fn run(cfg: &Config, source: &str) -> Result<(), Failure> {
    print!("{}", output::describe_config(cfg, source));
    Ok(())
}
