//! `tradewarden demo`: `gen` prints the standard benchmark workload, generated inside the
//! project (byte for byte what the original's Python generator writes for the same
//! arguments); `run` shows the whole system on a throwaway database, needing nothing but the
//! binary.

use std::fmt::Write as _;
use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use rust_decimal::Decimal;
use tradewarden_engine::ports::Quote;

use crate::app::App;
use crate::failure::{Failure, runtime, store_failed};
use crate::output::{self, TableOpts};
use crate::workload::{GenArgs, generate};
use crate::{config, out};

/// The `demo` subcommands.
pub use crate::cli::DemoArgs as Args;

/// The configuration `demo run` uses, with `{database_url}` to fill in.
pub const DEMO_CONFIG: &str = include_str!("../demo_config.toml");

/// How the demo's prices move after the recommendations were published: percent per symbol,
/// for the first symbols of the workload.
const MOVES: [(u32, i64); 4] = [(0, 3), (1, -2), (2, 5), (3, -4)];

/// Runs a `demo` subcommand.
pub async fn run(args: Args) -> Result<(), Failure> {
    match args {
        Args::Gen {
            experts,
            symbols,
            per_symbol,
            seed,
            start,
        } => gen_to_stdout(&GenArgs {
            experts,
            symbols,
            per_symbol,
            seed,
            start,
        }),
        Args::Run { keep, seed } => demo_run(keep, seed).await,
    }
}

/// `demo gen`: the workload on stdout; a closed stdout ends it quietly.
fn gen_to_stdout(gen_args: &GenArgs) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = generate(gen_args, &mut out).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(runtime),
    }
}

/// `demo run`: a temp dir with a SQLite database and the demo configuration; three experts'
/// recommendations of the last hour; a few price moves; the batch job; what happened.
async fn demo_run(keep: bool, seed: u64) -> Result<(), Failure> {
    let dir = tempfile::Builder::new()
        .prefix("tradewarden-demo-")
        .tempdir()
        .map_err(|e| {
            Failure::Runtime(format!(
                "cannot create a temporary directory for the demo: {e} — set $TMPDIR to a writable directory"
            ))
        })?;
    let config_path = dir.path().join("tradewarden.toml");
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let text = DEMO_CONFIG.replace("{database_url}", &url);
    std::fs::write(&config_path, &text).map_err(|e| {
        Failure::Runtime(format!(
            "cannot write {}: {e} — set $TMPDIR to a writable directory",
            config_path.display()
        ))
    })?;
    let cfg = config::parse(&text).map_err(|e| {
        Failure::Runtime(format!(
            "the demo's built-in configuration is invalid: {} — this is a bug; please report it",
            e.0.join("; ")
        ))
    })?;
    let app = App::build(cfg, false).await?;
    let report = demo_on(&app, seed).await?;
    out::stdout(&report);
    let epilogue = if keep {
        let path = dir.keep();
        format!(
            "\nKept {dir}. Explore it:\n  tradewarden --config {dir}/tradewarden.toml outcomes\n  tradewarden --config {dir}/tradewarden.toml orders\n",
            dir = path.display()
        )
    } else {
        "\nThe demo's database is gone (`tradewarden demo run --keep` keeps it).\n".to_string()
    };
    out::stdout(&format!(
        "{epilogue}Next: `tradewarden init` writes a configuration of your own, `tradewarden run FILE` runs it.\n"
    ));
    Ok(())
}

/// The demo on a wired app: generate, move prices, run the batch; returns the text to print.
async fn demo_on(app: &App, seed: u64) -> Result<String, Failure> {
    let now = app.clock.now();
    let start = (now - TimeDelta::hours(1))
        .with_nanosecond(0)
        .unwrap_or(now - TimeDelta::hours(1));
    let gen_args = GenArgs {
        experts: 3,
        symbols: 8,
        per_symbol: 2,
        seed,
        start,
    };
    let mut recs = Vec::new();
    generate(&gen_args, &mut recs).map_err(runtime)?;
    let moves = price_moves(&recs, now - TimeDelta::minutes(5));
    app.manager
        .record_quotes(&moves.iter().map(|(q, _)| q.clone()).collect::<Vec<_>>())
        .await
        .map_err(|e| store_failed("recording the demo's price moves", e))?;
    let (summary, reports) = super::run::batch(app, &recs).await?;
    let transactions = app
        .queries()
        .transactions(&Default::default())
        .await
        .map_err(|e| store_failed("listing the demo's transactions", e))?;

    let mut text = intro(app, &recs, start, &moves);
    let _ = writeln!(
        text,
        "\n== The run: import, rules, risk checks, paper orders =="
    );
    text.push_str(&output::run_summary(
        &summary,
        &reports,
        app.manager.settings(),
    ));
    let _ = writeln!(text, "\n== Transactions ==");
    text.push_str(&output::transactions_table(
        &transactions,
        &TableOpts::for_stdout(false),
    ));
    Ok(text)
}

/// What the demo set up: database, experts, recommendations and price moves.
fn intro(app: &App, recs: &[u8], start: DateTime<Utc>, moves: &[(Quote, String)]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "tradewarden demo: a throwaway SQLite database, one paper account with 100000 cash"
    );
    for e in app.manager.settings().experts.values() {
        let _ = writeln!(
            text,
            "  expert {} ({}): {}% of the account, at most {}% of it per symbol, ruleset {}",
            e.id,
            e.name,
            e.virtual_equity_percent.normalize(),
            e.max_virtual_equity_per_instrument_percent.normalize(),
            e.enter_market_ruleset.as_deref().unwrap_or("-")
        );
    }
    let lines = recs.iter().filter(|b| **b == b'\n').count();
    let _ = writeln!(
        text,
        "{lines} recommendations generated, published from {} UTC, one a second",
        start.format("%H:%M:%S")
    );
    let _ = writeln!(
        text,
        "price moves since then (the paper broker fills at these):"
    );
    for (_, line) in moves {
        let _ = writeln!(text, "  {line}");
    }
    text
}

/// The demo's price moves: for the first few symbols, the last recommended price moved by a
/// few percent, quoted at `at`. Returns each quote with a line describing it.
fn price_moves(recs: &[u8], at: DateTime<Utc>) -> Vec<(Quote, String)> {
    let last_price = |symbol: &str| -> Option<Decimal> {
        String::from_utf8_lossy(recs)
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["symbol"] == symbol)
            .find_map(|v| Decimal::from_str(&v["price_at_date"].to_string()).ok())
    };
    MOVES
        .iter()
        .filter_map(|(n, pct)| {
            let symbol = format!("SYM{n:04}");
            let before = last_price(&symbol)?;
            let after = (before * (Decimal::ONE + Decimal::new(*pct, 2))).round_dp(2);
            let line = format!("{symbol} {} -> {} ({pct:+}%)", before.normalize(), after);
            Some((
                Quote {
                    symbol,
                    price: after,
                    at,
                },
                line,
            ))
        })
        .collect()
}
