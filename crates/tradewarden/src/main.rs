//! The `tradewarden` command line: configuration, wiring, and the commands of the contract.
//!
//! Exit status: 0 success (a skipped run is a success), 1 a run-time failure, 2 bad usage,
//! configuration or input. Logs go to stderr, results to stdout.

mod config;
mod connect;
mod output;
mod redact;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rust_decimal::Decimal;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::recommendation::parse_time;
use tradewarden_domain::{OrderStatus, OutcomeKind, Price, TransactionStatus, UseCase};
use tradewarden_engine::ports::{ListFilter, QuoteUpdate};
use tradewarden_engine::{Broker, Clock, EngineError, Store, SystemClock, TradeManager};
use tradewarden_store::SqlStore;

use crate::config::Config;

/// tradewarden: the safety gate between trading-signal producers and a broker.
#[derive(Debug, Parser)]
#[command(name = "tradewarden", version, about)]
struct Cli {
    /// Configuration file (else $TRADEWARDEN_CONFIG, else ./tradewarden.toml if present, else
    /// the built-in default).
    #[arg(long, global = true, env = "TRADEWARDEN_CONFIG")]
    config: Option<PathBuf>,
    /// Log level or filter directives (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the default configuration, commented, to PATH.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Where to write it.
        #[arg(default_value = "tradewarden.toml")]
        path: PathBuf,
    },
    /// Validate the configuration and print what it defines.
    Check,
    /// Import recommendations from a JSON Lines file (`-` for stdin), all or nothing.
    Import {
        /// The file, or `-`.
        file: String,
    },
    /// Record quotes for every paper account.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Run processing for one expert or all of them; prints a JSON array of reports.
    Process {
        /// The expert to process.
        #[arg(long, conflicts_with = "all", required_unless_present = "all", value_parser = clap::value_parser!(i64).range(config::EXPERT_ID))]
        expert: Option<i64>,
        /// Process every configured expert.
        #[arg(long)]
        all: bool,
        /// The use case.
        #[arg(long, default_value = "enter_market", value_parser = ["enter_market"])]
        use_case: String,
        /// Override the configured lookback window, in days.
        #[arg(long, value_parser = clap::value_parser!(u32).range(config::LOOKBACK_DAYS))]
        lookback_days: Option<u32>,
    },
    /// The batch job: import FILE, process every expert, print a summary.
    Run {
        /// JSON Lines recommendations, or `-`.
        file: String,
        /// Print the reports as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Settle orders left in flight, then compare broker positions with open transactions;
    /// prints what it settled and every difference found (differences are only reported).
    Reconcile,
    /// List transactions.
    Transactions(ListArgs),
    /// List orders.
    Orders(ListArgs),
    /// List decision records.
    Outcomes {
        #[command(flatten)]
        list: ListArgs,
        /// Only the records of this recommendation.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        recommendation: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum PricesCommand {
    /// Quote one symbol now.
    Set {
        /// The symbol.
        symbol: String,
        /// The price (a decimal greater than 0).
        price: String,
    },
    /// Quote from a CSV file: `symbol,price[,time]`, header optional.
    Import {
        /// The CSV file, or `-`.
        file: String,
    },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only this expert's rows.
    #[arg(long, value_parser = clap::value_parser!(i64).range(config::EXPERT_ID))]
    expert: Option<i64>,
    /// Only rows in this status (outcome kind for `outcomes`).
    #[arg(long)]
    status: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// A failure with its exit status.
#[derive(Debug)]
enum Failure {
    /// Bad usage, configuration or input: exit 2.
    Input(String),
    /// Run-time failure: exit 1.
    Runtime(String),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadInput(lines) => {
                let list: Vec<String> = lines
                    .iter()
                    .map(|(n, msg)| format!("line {n}: {msg}"))
                    .collect();
                Failure::Input(format!(
                    "{}\n{} bad line(s); nothing was stored",
                    list.join("\n"),
                    lines.len()
                ))
            }
            e if e.is_bad_input() => Failure::Input(e.to_string()),
            e => Failure::Runtime(e.to_string()),
        }
    }
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| {
        eprintln!("warning: bad --log-level {level:?}, using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Reads the configuration: `--config` / `$TRADEWARDEN_CONFIG`, else `./tradewarden.toml`,
/// else the built-in default.
fn load_config(path: Option<&Path>) -> Result<(Config, String), Failure> {
    let (text, source) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None if Path::new("tradewarden.toml").exists() => (
            std::fs::read_to_string("tradewarden.toml")
                .map_err(|e| Failure::Input(format!("tradewarden.toml: cannot read: {e}")))?,
            "tradewarden.toml".to_string(),
        ),
        None => (
            config::DEFAULT_CONFIG.to_string(),
            "built-in default".to_string(),
        ),
    };
    let cfg = config::parse(&text).map_err(|e| {
        let lines: Vec<String> = e.0.iter().map(|l| format!("{source}: {l}")).collect();
        Failure::Input(format!(
            "{}\n{} configuration problem(s)",
            lines.join("\n"),
            e.0.len()
        ))
    })?;
    Ok((cfg, source))
}

/// Everything a command needs once the configuration is valid.
struct App {
    manager: TradeManager,
    store: Arc<SqlStore>,
    clock: Arc<dyn Clock>,
}

async fn wire(cfg: Config, read_only: bool) -> Result<App, Failure> {
    let store = Arc::new(
        connect::open(&cfg, read_only)
            .await
            .map_err(Failure::Runtime)?,
    );
    let paper: Vec<(String, Decimal)> = cfg
        .settings
        .accounts
        .values()
        .filter(|a| a.broker == "paper")
        .map(|a| (a.name.clone(), a.cash))
        .collect();
    if !read_only {
        store.init_paper_accounts(&paper).await.map_err(runtime)?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut brokers: HashMap<String, Arc<dyn Broker>> = HashMap::new();
    for (name, _) in &paper {
        brokers.insert(
            name.clone(),
            Arc::new(PaperBroker::new(name, store.clone(), clock.clone())),
        );
    }
    let owner = format!(
        "{}-{}-{}",
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into()),
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    let lease = cfg.lease;
    let manager = TradeManager::new(
        cfg.settings,
        store.clone() as Arc<dyn Store>,
        brokers,
        clock.clone(),
    );
    let manager = manager.with_leases(store.clone(), owner, lease);
    Ok(App {
        manager,
        store,
        clock,
    })
}

fn read_input(file: &str) -> Result<String, Failure> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::Input(format!("stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Failure::Input(format!("{file}: cannot read: {e}")))
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(v).map_err(runtime)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Init { force, path } = &cli.command {
        if path.exists() && !force {
            return Err(Failure::Input(format!(
                "{}: already exists (use --force to overwrite)",
                path.display()
            )));
        }
        std::fs::write(path, config::DEFAULT_CONFIG)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    let (cfg, source) = load_config(cli.config.as_deref())?;
    if let Command::Check = cli.command {
        print!("{}", config::describe(&cfg, &source));
        return Ok(());
    }
    let read_only = matches!(
        cli.command,
        Command::Transactions(_) | Command::Orders(_) | Command::Outcomes { .. }
    );
    let app = wire(cfg, read_only).await?;
    match cli.command {
        Command::Init { .. } | Command::Check => unreachable!("handled above"),
        Command::Import { file } => {
            let text = read_input(&file)?;
            let summary = app.manager.import_jsonl(&text).await?;
            print_json(&summary)?;
        }
        Command::Prices(PricesCommand::Set { symbol, price }) => {
            let quotes = quotes_for_paper(
                &app,
                vec![parse_quote(&symbol, &price, None, app.clock.now()).map_err(Failure::Input)?],
            );
            app.store.record_quotes(&quotes).await.map_err(runtime)?;
            println!(
                "{} {} quoted for {} paper account(s)",
                symbol.trim().to_ascii_uppercase(),
                price.trim(),
                quotes.len()
            );
        }
        Command::Prices(PricesCommand::Import { file }) => {
            let text = read_input(&file)?;
            let parsed = parse_prices_csv(&text, app.clock.now())?;
            let n = parsed.len();
            let quotes = quotes_for_paper(&app, parsed);
            app.store.record_quotes(&quotes).await.map_err(runtime)?;
            println!("{{\"imported\": {n}}}");
        }
        Command::Process {
            expert,
            all: _,
            use_case,
            lookback_days,
        } => {
            debug_assert_eq!(use_case, UseCase::EnterMarket.as_str());
            let reports = match expert {
                Some(id) => vec![app.manager.process_enter_market(id, lookback_days).await?],
                None => app.manager.process_all(lookback_days).await,
            };
            print_json(&reports)?;
            any_failed(&reports)?;
        }
        Command::Reconcile => {
            let report = app.manager.reconcile().await?;
            print_json(&report)?;
        }
        Command::Run { file, json } => {
            let text = read_input(&file)?;
            // Settle what a crashed predecessor left in flight before ordering anything new.
            let reconciled = app.manager.reconcile().await?;
            if !reconciled.settled.is_empty() || !reconciled.findings.is_empty() {
                tracing::info!(
                    settled = reconciled.settled.len(),
                    findings = reconciled.findings.len(),
                    "reconciled before the run"
                );
            }
            let summary = app.manager.import_jsonl(&text).await?;
            let reports = app.manager.process_all(None).await;
            if json {
                print_json(&reports)?;
            } else {
                print!(
                    "{}",
                    output::run_summary(&summary, &reports, app.manager.settings())
                );
            }
            any_failed(&reports)?;
        }
        Command::Transactions(a) => {
            let rows = app
                .store
                .transactions(&filter(
                    &a,
                    None,
                    &TransactionStatus::ALL.map(|s| s.as_str()),
                )?)
                .await
                .map_err(runtime)?;
            if a.json {
                print_json(&rows)?
            } else {
                print!("{}", output::transactions_table(&rows))
            }
        }
        Command::Orders(a) => {
            let rows = app
                .store
                .orders(&filter(&a, None, &OrderStatus::ALL.map(|s| s.as_str()))?)
                .await
                .map_err(runtime)?;
            if a.json {
                print_json(&rows)?
            } else {
                print!("{}", output::orders_table(&rows))
            }
        }
        Command::Outcomes {
            list,
            recommendation,
        } => {
            let rows = app
                .store
                .outcomes(&filter(
                    &list,
                    recommendation,
                    &OutcomeKind::ALL.map(|k| k.as_str()),
                )?)
                .await
                .map_err(runtime)?;
            if list.json {
                print_json(&rows)?
            } else {
                print!("{}", output::outcomes_table(&rows))
            }
        }
    }
    Ok(())
}

/// Exit 1 after the reports are printed when any expert's run failed.
fn any_failed(reports: &[tradewarden_engine::RunReport]) -> Result<(), Failure> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.status == tradewarden_engine::RunStatus::Failed)
        .map(|r| {
            format!(
                "expert {}: {}",
                r.expert_id,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} run(s) failed: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

fn filter(
    a: &ListArgs,
    recommendation_id: Option<i64>,
    statuses: &[&str],
) -> Result<ListFilter, Failure> {
    // A status that can never match is a typo, not an empty result.
    let status = match &a.status {
        None => None,
        Some(s) => match statuses.iter().find(|k| k.eq_ignore_ascii_case(s.trim())) {
            Some(k) => Some(k.to_string()),
            None => {
                return Err(Failure::Input(format!(
                    "--status: unknown status {s:?} (one of {})",
                    statuses.join(", ")
                )));
            }
        },
    };
    Ok(ListFilter {
        expert_id: a.expert,
        status,
        recommendation_id,
    })
}

/// A (symbol, price, time) quote, validated.
struct Quote {
    symbol: String,
    price: Decimal,
    at: chrono::DateTime<Utc>,
}

fn parse_quote(
    symbol: &str,
    price: &str,
    time: Option<&str>,
    now: chrono::DateTime<Utc>,
) -> Result<Quote, String> {
    let symbol = symbol.trim().to_ascii_uppercase();
    if symbol.is_empty() {
        return Err("symbol: must not be empty".into());
    }
    let price = Decimal::from_str(price.trim())
        .map_err(|_| format!("price: not a decimal number: {:?}", price.trim()))?;
    let price = Price::new(price).map_err(|e| format!("price: {e}"))?.get();
    let at = match time.map(str::trim).filter(|t| !t.is_empty()) {
        None => now,
        Some(t) => parse_time(t).map_err(|e| format!("time: {e}"))?,
    };
    Ok(Quote { symbol, price, at })
}

/// `symbol,price[,time]` lines, header optional; every bad line reported, nothing stored.
fn parse_prices_csv(text: &str, now: chrono::DateTime<Utc>) -> Result<Vec<Quote>, Failure> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if n == 1
            && fields
                .first()
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("symbol"))
        {
            continue;
        }
        if !(2..=3).contains(&fields.len()) {
            errs.push(format!(
                "line {n}: expected symbol,price[,time], got {} field(s)",
                fields.len()
            ));
            continue;
        }
        match parse_quote(fields[0], fields[1], fields.get(2).copied(), now) {
            Ok(q) => out.push(q),
            Err(e) => errs.push(format!("line {n}: {e}")),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Failure::Input(format!(
            "{}\n{} bad line(s); nothing was stored",
            errs.join("\n"),
            errs.len()
        )))
    }
}

/// One quote update per paper account for each quote.
fn quotes_for_paper(app: &App, quotes: Vec<Quote>) -> Vec<QuoteUpdate> {
    let accounts: Vec<&str> = app
        .manager
        .settings()
        .accounts
        .values()
        .filter(|a| a.broker == "paper")
        .map(|a| a.name.as_str())
        .collect();
    quotes
        .iter()
        .flat_map(|q| {
            accounts.iter().map(|a| QuoteUpdate {
                account: a.to_string(),
                symbol: q.symbol.clone(),
                price: q.price,
                at: q.at,
            })
        })
        .collect()
}
