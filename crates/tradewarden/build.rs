//! Renders the man pages at build time from `src/cli.rs` (clap_mangen): `tradewarden.1` and
//! one `tradewarden-COMMAND.1` per command, written to `$OUT_DIR/man/`. The binary embeds
//! `tradewarden.1` (`tradewarden man` prints it), so installing it needs only the binary.

use std::path::{Path, PathBuf};

/// Stand-ins for the crate's `cli_values`: the man page shows flags and help, never parses,
/// so plain strings do. The ranges are the configuration's (`src/config.rs`).
#[allow(dead_code)]
mod cli_values {
    use std::ops::RangeInclusive;

    use clap::builder::NonEmptyStringValueParser;

    pub const EXPERT_ID: RangeInclusive<i64> = 1..=i64::MAX;
    pub const LOOKBACK_DAYS: RangeInclusive<i64> = 1..=3650;
    pub type TransactionStatus = String;
    pub type OrderStatus = String;
    pub type OutcomeKind = String;
    pub type Time = String;

    pub fn transaction_status() -> NonEmptyStringValueParser {
        NonEmptyStringValueParser::new()
    }
    pub fn order_status() -> NonEmptyStringValueParser {
        NonEmptyStringValueParser::new()
    }
    pub fn outcome_kind() -> NonEmptyStringValueParser {
        NonEmptyStringValueParser::new()
    }
    pub fn parse_start(s: &str) -> Result<Time, String> {
        Ok(s.to_string())
    }
}

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=src/cli.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("man");
    std::fs::create_dir_all(&out)?;
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    render(cmd.clone(), "tradewarden", &out)?;
    for sub in cmd.get_subcommands() {
        let sub = sub
            .clone()
            .bin_name(format!("tradewarden {}", sub.get_name()));
        let name = format!("tradewarden-{}", sub.get_name());
        render(sub, &name, &out)?;
    }
    Ok(())
}

/// Writes `DIR/NAME.1`.
fn render(cmd: clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).title(name).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}
