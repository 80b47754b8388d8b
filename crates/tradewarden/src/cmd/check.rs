//! `tradewarden check`: the configuration, validated and described.

use crate::config::{self, BrokerKind, Config};
use crate::failure::Failure;
use crate::out;

/// Prints what the configuration defines; then fails (bad configuration) if an account's
/// key is missing from the environment, naming the variable, never a value.
pub fn run(cfg: &Config, source: &str) -> Result<(), Failure> {
    out::stdout(&config::describe(cfg, source));
    let missing = missing_keys(cfg);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::Input(format!(
        "{} — set them in the environment of every tradewarden command",
        missing.join("; ")
    )))
}

/// `account "x": environment variable V (key_id_env) is not set`, for every key missing.
pub fn missing_keys(cfg: &Config) -> Vec<String> {
    cfg.brokers
        .iter()
        .filter_map(|(name, kind)| match kind {
            BrokerKind::Alpaca(a) => Some((name, a)),
            BrokerKind::Paper { .. } => None,
        })
        .flat_map(|(name, a)| {
            a.missing_variables()
                .into_iter()
                .map(move |v| format!("account \"{name}\": environment variable {v} is not set"))
        })
        .collect()
}
