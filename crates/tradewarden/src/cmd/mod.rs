//! The commands of the contract, one file each, as mini-redis does them: each command's
//! `run` taking its arguments and the wired [`App`]. The binary only parses (the definitions
//! are in [`crate::cli`]) and delegates here; the HTTP API calls the same functions.

pub mod accounts;
pub mod check;
pub mod close;
pub mod completions;
pub mod demo;
pub mod import;
pub mod init;
pub mod list;
pub mod man;
pub mod prices;
pub mod process;
pub mod reconcile;
pub mod refresh;
pub mod rules;
pub mod run;
pub mod runs;
pub mod serve;
pub mod token;

use std::path::PathBuf;

pub use crate::cli::{Cli, Command, LogFormat};

use tradewarden_engine::unwind::CatchUnwind;

use crate::app::{App, load_config};
use crate::failure::Failure;
use crate::shutdown::Interrupt;

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
            Command::Demo(args) => return demo::run(args).await,
            Command::Completions(args) => return completions::run(args),
            Command::Man => return man::run(),
            Command::Token(args) => return token::run(args),
            _ => {}
        }
        let (cfg, source) = load_config(config.as_deref())?;
        if let Command::Serve(args) = self {
            // `serve` handles the signal itself: it stops accepting, lets running work end.
            return serve::run(args, cfg, interrupt).await;
        }
        match self {
            Command::Check => return check::run(&cfg, &source),
            Command::Rules(args) => return rules::run(args, &cfg),
            _ => {}
        }
        // Listings only read: they open the database read-only and create nothing.
        let read_only = matches!(
            self,
            Command::Transactions(_) | Command::Orders(_) | Command::Outcomes(_) | Command::Runs(_)
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
            Command::Init(_)
            | Command::Check
            | Command::Rules(_)
            | Command::Demo(_)
            | Command::Completions(_)
            | Command::Man
            | Command::Serve(_)
            | Command::Token(_) => Ok(()),
            Command::Import(args) => import::run(args, app).await,
            Command::Prices(args) => prices::run(args, app).await,
            Command::Process(args) => process::run(args, app).await,
            Command::Run(args) => run::run(args, app).await,
            Command::Reconcile => reconcile::run(app).await,
            Command::Refresh => refresh::run(app).await,
            Command::Close(args) => close::run(args, app).await,
            Command::Transactions(args) => list::transactions(args, app).await,
            Command::Orders(args) => list::orders(args, app).await,
            Command::Outcomes(args) => list::outcomes(args, app).await,
            Command::Runs(args) => runs::run(args, app).await,
            Command::Accounts(args) => accounts::run(args, app).await,
        }
    }
}
