//! `tradewarden demo gen`: the standard benchmark workload, generated inside the project
//! (byte for byte what the original's Python generator writes for the same arguments).

use std::io::Write;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::failure::{Failure, runtime};
use crate::workload::{GenArgs, generate};

/// The `demo` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Print a deterministic workload of recommendations as JSON Lines.
    ///
    /// Example: tradewarden demo gen --experts 20 --symbols 100 > recs.jsonl
    Gen {
        /// Experts (ids 1..=N).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
        experts: u32,
        /// Symbols per expert.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
        symbols: u32,
        /// Recommendations per expert and symbol.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1_000))]
        per_symbol: u32,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The first recommendation's time (`YYYY-MM-DDTHH:MM:SSZ`); each next one is a second later.
        #[arg(long, default_value = "2026-11-27T10:00:00Z", value_parser = parse_start)]
        start: DateTime<Utc>,
    },
}

fn parse_start(s: &str) -> Result<DateTime<Utc>, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .map(|t| t.and_utc())
        .map_err(|e| format!("expected YYYY-MM-DDTHH:MM:SSZ: {e}"))
}

/// Runs a `demo` subcommand; a closed stdout ends it quietly.
pub fn run(args: Args) -> Result<(), Failure> {
    let Args::Gen {
        experts,
        symbols,
        per_symbol,
        seed,
        start,
    } = args;
    let gen_args = GenArgs {
        experts,
        symbols,
        per_symbol,
        seed,
        start,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = generate(&gen_args, &mut out).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(runtime),
    }
}
