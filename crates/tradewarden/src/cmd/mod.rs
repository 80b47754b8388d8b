//! The commands of the contract, one file each, as mini-redis does them: one enum, each
//! command's `run` taking its arguments and the wired [`App`]. The binary only parses and
//! delegates here; the HTTP API calls the same functions.

pub mod check;
pub mod demo;
pub mod import;
pub mod init;
pub mod list;
pub mod prices;
pub mod process;
pub mod reconcile;
pub mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use tradewarden_engine::unwind::CatchUnwind;

use crate::app::{App, load_config};
use crate::failure::Failure;
use crate::shutdown::Interrupt;

/// tradewarden: the safety gate between trading-signal producers and a broker.
#[derive(Debug, Parser)]
#[command(name = "tradewarden", version, about)]
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
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the default configuration, commented, to PATH.
    Init(init::Args),
    /// Validate the configuration and print what it defines.
    Check,
    /// Import recommendations from a JSON Lines file (`-` for stdin), all or nothing.
    Import(import::Args),
    /// Record quotes for every paper account.
    #[command(subcommand)]
    Prices(prices::Args),
    /// Run processing for one expert or all of them; prints a JSON array of reports.
    Process(process::Args),
    /// The batch job: import FILE, process every expert, print a summary.
    Run(run::Args),
    /// Settle orders left in flight, then compare broker positions with open transactions;
    /// prints what it settled and every difference found (differences are only reported).
    Reconcile,
    /// List transactions.
    Transactions(list::TransactionsArgs),
    /// List orders.
    Orders(list::OrdersArgs),
    /// List decision records.
    Outcomes(list::OutcomesArgs),
    /// Demonstration tools: `demo gen` prints the standard benchmark workload.
    #[command(subcommand)]
    Demo(demo::Args),
}

impl Command {
    /// Runs the command: those that need no database first, then the rest on a wired
    /// [`App`]. `interrupt` resolving (a signal) cancels the running command; either way the
    /// process's leases are given back before this returns.
    pub async fn apply(
        self,
        config: Option<PathBuf>,
        interrupt: impl Future<Output = Interrupt>,
    ) -> Result<(), Failure> {
        match self {
            Command::Init(args) => return init::run(args),
            Command::Demo(args) => return demo::run(args),
            _ => {}
        }
        let (cfg, source) = load_config(config.as_deref())?;
        if let Command::Check = self {
            return check::run(&cfg, &source);
        }
        // Listings only read: they open the database read-only and create nothing.
        let read_only = matches!(
            self,
            Command::Transactions(_) | Command::Orders(_) | Command::Outcomes(_)
        );
        let app = App::build(cfg, read_only).await?;
        // Dropping the command's future drops the guards of the locks it holds; a panic that
        // escaped a run becomes a failure here, so that the leases are given back below.
        let result = tokio::select! {
            biased;
            signal = interrupt => Err(Failure::Interrupted(signal)),
            done = CatchUnwind::new(self.run_on(&app)) => done.unwrap_or_else(|panic| {
                Err(Failure::Runtime(format!("internal error (panicked): {panic}")))
            }),
        };
        app.shutdown().await;
        result
    }

    /// Runs a command that needs the database.
    async fn run_on(self, app: &App) -> Result<(), Failure> {
        match self {
            Command::Init(_) | Command::Check | Command::Demo(_) => Ok(()),
            Command::Import(args) => import::run(args, app).await,
            Command::Prices(args) => prices::run(args, app).await,
            Command::Process(args) => process::run(args, app).await,
            Command::Run(args) => run::run(args, app).await,
            Command::Reconcile => reconcile::run(app).await,
            Command::Transactions(args) => list::transactions(args, app).await,
            Command::Orders(args) => list::orders(args, app).await,
            Command::Outcomes(args) => list::outcomes(args, app).await,
        }
    }
}
