//! The command line, defined with clap alone: every command, flag and help text, with the
//! examples each `--help` ends with.
//!
//! This file names nothing of the crate but `super::cli_values` (the value types and parsers
//! of a few flags), so `build.rs` can include it as it is, with stand-ins for those values,
//! and render the man page at build time. The commands' code lives in [`crate::cmd`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::cli_values as values;

/// tradewarden: the safety gate between trading-signal producers and a broker.
#[derive(Debug, Parser)]
#[command(
    name = "tradewarden",
    version,
    about,
    after_help = "Examples:\n  tradewarden demo run                 see the whole system on a throwaway database\n  tradewarden init && tradewarden run examples/recommendations.jsonl"
)]
pub struct Cli {
    /// Configuration file (else $TRADEWARDEN_CONFIG, else ./tradewarden.toml if present, else
    /// the built-in default).
    #[arg(long, global = true, env = "TRADEWARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log level or filter directives (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// No progress bars (they appear only on a terminal's stderr, for work longer than about
    /// a second).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the default configuration, commented, to PATH.
    #[command(
        after_help = "Examples:\n  tradewarden init\n  tradewarden init --force config/tradewarden.toml"
    )]
    Init(InitArgs),
    /// Validate the configuration and print what it defines.
    #[command(
        after_help = "Examples:\n  tradewarden check\n  tradewarden --config prod.toml check"
    )]
    Check,
    /// Print the configured rulesets: in the original's rules-file format, or one line per
    /// rule as a person reads it.
    #[command(subcommand)]
    Rules(RulesArgs),
    /// Import recommendations from a JSON Lines file (`-` for stdin), all or nothing.
    #[command(
        after_help = "Examples:\n  tradewarden import recs.jsonl\n  tradewarden demo gen --experts 3 --symbols 10 | tradewarden import -"
    )]
    Import(ImportArgs),
    /// Record quotes for every paper account.
    #[command(subcommand)]
    Prices(PricesArgs),
    /// Run processing for one expert (--expert ID) or all of them (--all); prints a JSON
    /// array of reports.
    #[command(
        after_help = "Examples:\n  tradewarden process --expert 1\n  tradewarden process --all --lookback-days 2"
    )]
    Process(ProcessArgs),
    /// The batch job: import FILE, process every expert, print a summary.
    #[command(
        after_help = "Examples:\n  tradewarden run examples/recommendations.jsonl\n  tradewarden run recs.jsonl --json | jq '.[].counts'"
    )]
    Run(RunArgs),
    /// Settle orders left in flight, then compare broker positions with open transactions;
    /// prints what it settled, every difference found (differences are only reported), and
    /// the symbols left out while their orders or runs are in flight.
    #[command(after_help = "Example:\n  tradewarden reconcile")]
    Reconcile,
    /// Ask the brokers about every working order and move each position on: entries that
    /// filled open their transactions, exit legs fire or are canceled, filled exits close
    /// them; prints the counts as JSON.
    #[command(after_help = "Example:\n  tradewarden refresh")]
    Refresh,
    /// Close a transaction by hand: CLOSING, its exit legs canceled, a market order for the
    /// open quantity (CLOSED, manual_close, once a refresh sees it filled). A transaction
    /// whose entry has not filled has its entry canceled instead.
    #[command(
        after_help = "Examples:\n  tradewarden close 42\n  tradewarden close 42 && tradewarden refresh"
    )]
    Close(CloseArgs),
    /// List transactions.
    #[command(
        after_help = "Examples:\n  tradewarden transactions --status opened\n  tradewarden transactions --expert 1 --json"
    )]
    Transactions(TransactionsArgs),
    /// List orders.
    #[command(
        after_help = "Examples:\n  tradewarden orders --status filled\n  tradewarden orders --expert 2 --json"
    )]
    Orders(OrdersArgs),
    /// List decision records: why each recommendation was ordered or not.
    #[command(
        after_help = "Examples:\n  tradewarden outcomes --status duplicate_position\n  tradewarden outcomes --recommendation 17 --wide"
    )]
    Outcomes(OutcomesArgs),
    /// List run records, newest first: each run's expert, use case, what started it (cli,
    /// api, jobs, schedule), its status and counts.
    #[command(
        after_help = "Examples:\n  tradewarden runs\n  tradewarden runs --expert 1 --json | jq '.[0].counts'"
    )]
    Runs(RunsArgs),
    /// Show each account as its broker holds it: cash, equity (cash plus the positions at
    /// their latest quote) and positions with their average price, last price and unrealised
    /// profit or loss.
    #[command(
        after_help = "Examples:\n  tradewarden accounts\n  tradewarden accounts --json | jq '.[].equity'"
    )]
    Accounts(AccountsArgs),
    /// Serve the HTTP API (see the README's "HTTP API"): settles orders left in flight, then
    /// answers on ADDR until SIGINT or SIGTERM, refreshing every account in the background;
    /// prints `listening on http://ADDR` once it accepts requests.
    #[command(
        after_help = "Examples:\n  tradewarden serve\n  TRADEWARDEN_ADMIN_TOKEN=$(cat admin.token) tradewarden serve --bind 0.0.0.0:8080"
    )]
    Serve(ServeArgs),
    /// API tokens: `token new` prints a fresh token once and the `[[api_tokens]]` block that
    /// holds only its SHA-256.
    #[command(subcommand)]
    Token(TokenArgs),
    /// Demonstration tools: `demo run` shows the whole system on a throwaway database;
    /// `demo gen` prints the standard benchmark workload.
    #[command(subcommand)]
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(
        after_help = "Examples:\n  tradewarden completions bash > ~/.local/share/bash-completion/completions/tradewarden\n  tradewarden completions fish > ~/.config/fish/completions/tradewarden.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(
        after_help = "Example:\n  tradewarden man > ~/.local/share/man/man1/tradewarden.1 && man tradewarden"
    )]
    Man,
}

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Where to write it.
    #[arg(default_value = "tradewarden.toml")]
    pub path: PathBuf,
}

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file, or `-`.
    pub file: String,
}

/// The `prices` subcommands.
#[derive(Debug, Subcommand)]
pub enum PricesArgs {
    /// Quote one symbol now.
    #[command(after_help = "Example:\n  tradewarden prices set AAPL 190.10")]
    Set {
        /// The symbol.
        symbol: String,
        /// The price (a decimal greater than 0).
        price: String,
    },
    /// Quote from a CSV file: `symbol,price[,time]`, header optional.
    #[command(
        after_help = "Examples:\n  tradewarden prices import closes.csv\n  printf 'AAPL,190.10\\nMSFT,420\\n' | tradewarden prices import -"
    )]
    Import {
        /// The CSV file, or `-`.
        file: String,
    },
}

/// The `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesArgs {
    /// Print rulesets in the original's export format v1.0 (JSON), so they load in the
    /// original or as `file = "…"` in another configuration: one NAME as `export_type`
    /// `ruleset`; several, or none for every configured ruleset, as `rulesets`.
    #[command(
        after_help = "Examples:\n  tradewarden rules export > rulesets.json\n  tradewarden rules export confident-buy > confident-buy.json"
    )]
    Export {
        /// Rulesets to export, by their configured name (default: all, sorted by name).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print one ruleset as a person reads it: one line per rule, `NAME: IF … AND … THEN …`,
    /// in evaluation order.
    #[command(after_help = "Example:\n  tradewarden rules show confident-buy")]
    Show {
        /// The ruleset's configured name.
        name: String,
    },
}

/// Arguments of `process`: exactly one of `--expert ID` and `--all`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["expert", "all"])))]
pub struct ProcessArgs {
    /// The expert to process.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(values::EXPERT_ID))]
    pub expert: Option<i64>,
    /// Process every configured expert.
    #[arg(long)]
    pub all: bool,
    /// The use case; without it, enter_market then open_positions for each expert.
    #[arg(long, value_parser = ["enter_market", "open_positions"])]
    pub use_case: Option<String>,
    /// Override the configured lookback window, in days.
    #[arg(long, value_parser = clap::value_parser!(u32).range(values::LOOKBACK_DAYS))]
    pub lookback_days: Option<u32>,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// JSON Lines recommendations, or `-`.
    pub file: String,
    /// Print the reports as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// What every listing takes.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this expert's rows.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(values::EXPERT_ID))]
    pub expert: Option<i64>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show every cell whole: do not cut the table to the terminal's width ($COLUMNS, else
    /// the terminal's; a pipe gets whole rows).
    #[arg(long)]
    pub wide: bool,
}

/// Arguments of `transactions`.
#[derive(Debug, clap::Args)]
pub struct TransactionsArgs {
    #[command(flatten)]
    pub common: ListArgs,
    /// Only rows in this status.
    #[arg(long, ignore_case = true, value_parser = values::transaction_status())]
    pub status: Option<values::TransactionStatus>,
}

/// Arguments of `orders`.
#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    #[command(flatten)]
    pub common: ListArgs,
    /// Only rows in this status.
    #[arg(long, ignore_case = true, value_parser = values::order_status())]
    pub status: Option<values::OrderStatus>,
}

/// Arguments of `outcomes`.
#[derive(Debug, clap::Args)]
pub struct OutcomesArgs {
    #[command(flatten)]
    pub common: ListArgs,
    /// Only records of this outcome.
    #[arg(long, ignore_case = true, value_parser = values::outcome_kind())]
    pub status: Option<values::OutcomeKind>,
    /// Only the records of this recommendation.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub recommendation: Option<i64>,
}

/// Arguments of `runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub common: ListArgs,
}

/// Arguments of `close`.
#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// The transaction's id (`tradewarden transactions` lists them).
    pub transaction_id: i64,
}

/// Arguments of `accounts`.
#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    /// Print a JSON array instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on, IP:PORT (default `[server] bind`, else 127.0.0.1:8080;
    /// port 0 picks a free one). Without any API token only a loopback address is allowed.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,
}

/// The `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenArgs {
    /// Print a fresh random token (32 bytes from the operating system, hex) once, then the
    /// `[[api_tokens]]` block to add to the configuration: it holds only the token's SHA-256.
    #[command(
        after_help = "Examples:\n  tradewarden token new --name grafana --role operator\n  tradewarden token new --name producer-3 --role expert --expert 3"
    )]
    New {
        /// Who holds the token (logged instead of it).
        #[arg(long)]
        name: String,
        /// What it may do: admin (everything), operator (reads, process, refresh, close) or
        /// expert (its own recommendations and data; needs --expert).
        #[arg(long, value_parser = ["admin", "operator", "expert"])]
        role: String,
        /// The expert an expert token acts for.
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(values::EXPERT_ID))]
        expert: Option<i64>,
    },
}

/// The `demo` subcommands.
#[derive(Debug, Subcommand)]
pub enum DemoArgs {
    /// Print a deterministic workload of recommendations as JSON Lines.
    #[command(
        after_help = "Examples:\n  tradewarden demo gen --experts 20 --symbols 100 > recs.jsonl\n  tradewarden demo gen --experts 2 --symbols 5 --start 2026-01-05T09:30:00Z"
    )]
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
        #[arg(long, default_value = "2026-11-27T10:00:00Z", value_parser = values::parse_start)]
        start: values::Time,
    },
    /// Set up a throwaway database with three experts, generate recommendations and price
    /// moves, run everything and print what happened. Needs nothing but this binary.
    #[command(
        after_help = "Examples:\n  tradewarden demo run\n  tradewarden demo run --keep   # keep the database and its configuration to explore"
    )]
    Run {
        /// Keep the temporary directory (database and configuration) and print its path.
        #[arg(long)]
        keep: bool,
        /// Seed of the generated recommendations.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}
