//! [`App`]: everything a command or an HTTP handler needs, wired once from a [`Config`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use std::collections::HashMap;
use tradewarden_brokers::alpaca::{ClientSettings, RateLimit, RetryPolicy, Secret};
use tradewarden_brokers::{AlpacaBroker, PaperBroker};

use rust_decimal::Decimal;
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition, PaperLedger, QueryStore};
use tradewarden_engine::{
    Broker, Clock, LeaseHolder, ProcessTable, Store, SystemClock, TradeManager,
};
use tradewarden_engine::{BrokerError, BrokerOrder, OrderRequest};
use tradewarden_store::{LivenessLock, SqlStore};

use crate::config::{self, BrokerKind, Config};
use crate::connect;
use crate::failure::{DATABASE_HINT, Failure, runtime, store_failed};
use crate::host::ProcFs;
use crate::out;
use crate::progress::{Progress, Unit};

/// The wired application: store, brokers and trade manager.
pub struct App {
    pub manager: TradeManager,
    pub store: Arc<SqlStore>,
    pub clock: Arc<dyn Clock>,
    /// Every configured account's broker, by account name (the commands that ask a broker
    /// directly: `accounts`).
    pub brokers: BTreeMap<String, AccountBroker>,
    /// PostgreSQL: the lock that tells other processes this one lives, held as long as the
    /// app; its key is in every lease this process takes.
    _liveness: Option<LivenessLock>,
}

impl App {
    /// Connects the store, opens the paper accounts, wires one broker per account and the
    /// manager with cross-process leases.
    /// `read_only` (listings) opens the database read-only and writes nothing, not even
    /// the paper accounts.
    pub async fn build(cfg: Config, read_only: bool) -> Result<App, Failure> {
        let store = Arc::new(
            connect::open(&cfg, read_only)
                .await
                .map_err(|e| Failure::Runtime(format!("{e} — {DATABASE_HINT}")))?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let brokers = wire_brokers(&cfg, &store, &clock, read_only).await?;
        let processes = Arc::new(ProcFs::new());
        // A listing takes no lease, so it needs no liveness signal either.
        let liveness = if read_only {
            None
        } else {
            hold_liveness(&store, cfg.connect_timeout).await
        };
        let holder = LeaseHolder::this_process(
            process_owner(&processes.identity().host),
            processes.as_ref(),
            liveness.as_ref().map(LivenessLock::key),
        );
        let manager = TradeManager::new(
            cfg.settings,
            store.clone() as Arc<dyn Store>,
            brokers
                .iter()
                .map(|(name, b)| (name.clone(), b.broker.clone()))
                .collect(),
            clock.clone(),
        )
        .with_leases(store.clone(), holder, processes, cfg.lease);
        Ok(App {
            manager,
            store,
            clock,
            brokers,
            _liveness: liveness,
        })
    }

    /// Gives back every lease this process still holds, before the process exits: the
    /// leases of runs a signal cancelled are otherwise released by spawned tasks that the
    /// runtime's shutdown may never run. Bounded, so an unreachable database cannot keep
    /// an interrupted process alive; what is not released then expires.
    pub async fn shutdown(&self) {
        let release = self.manager.locks().release_all();
        if tokio::time::timeout(SHUTDOWN_RELEASE, release)
            .await
            .is_err()
        {
            tracing::warn!("could not release this process's leases in time; they expire");
        }
    }

    /// The read-only role of the store, for listings.
    pub fn queries(&self) -> &dyn QueryStore {
        self.store.as_ref()
    }
}

/// A configured account's broker, with the kind the configuration gave it.
#[derive(Clone)]
pub struct AccountBroker {
    /// The configured kind ([`BrokerKind::name`]).
    pub kind: &'static str,
    pub broker: Arc<dyn Broker>,
}

/// One broker per configured account, by its kind.
async fn wire_brokers(
    cfg: &Config,
    store: &Arc<SqlStore>,
    clock: &Arc<dyn Clock>,
    read_only: bool,
) -> Result<BTreeMap<String, AccountBroker>, Failure> {
    let paper: Vec<(String, rust_decimal::Decimal)> = cfg
        .brokers
        .iter()
        .filter_map(|(name, kind)| match kind {
            BrokerKind::Paper { cash } => Some((name.clone(), *cash)),
            BrokerKind::Alpaca(_) => None,
        })
        .collect();
    if !read_only {
        store
            .open_paper_accounts(&paper)
            .await
            .map_err(|e| store_failed("opening the paper accounts", e))?;
    }
    let mut brokers = BTreeMap::new();
    for (name, kind) in &cfg.brokers {
        let broker: Arc<dyn Broker> = match kind {
            BrokerKind::Paper { .. } => {
                Arc::new(PaperBroker::new(name, store.clone(), clock.clone()))
            }
            BrokerKind::Alpaca(a) => match alpaca_broker(name, a, &cfg.broker_settings) {
                Ok(b) => Arc::new(b),
                // A listing never calls a broker: it needs no keys.
                Err(Failure::Input(why)) if read_only => Arc::new(KeysMissing(why)),
                Err(e) => return Err(e),
            },
        };
        let wired = AccountBroker {
            kind: kind.name(),
            broker,
        };
        brokers.insert(name.clone(), wired);
    }
    Ok(brokers)
}

/// An Alpaca account's broker, its keys read from the environment variables the
/// configuration names. A missing key is a configuration problem naming the variable.
fn alpaca_broker(
    name: &str,
    a: &config::AlpacaAccount,
    settings: &config::BrokerSettings,
) -> Result<AlpacaBroker, Failure> {
    let missing = a.missing_variables();
    if !missing.is_empty() {
        let what = match missing[..] {
            [one] => format!("environment variable {one} is not set"),
            _ => format!(
                "environment variables {} are not set",
                missing.join(" and ")
            ),
        };
        return Err(Failure::Input(format!(
            "account \"{name}\": {what} — export the Alpaca API key id in ${} and the secret key in ${} (\"tradewarden check\" lists what is missing)",
            a.key_id_env, a.secret_key_env
        )));
    }
    let key = |var: &str| Secret::new(std::env::var(var).unwrap_or_default().trim());
    let client = ClientSettings {
        account: name.to_string(),
        base_url: a.base_url.clone(),
        data_url: a.data_url.clone(),
        key_id: key(&a.key_id_env),
        secret_key: key(&a.secret_key_env),
        retry: RetryPolicy::new(settings.max_retries),
        request_timeout: settings.request_timeout,
        rate_limit: RateLimit::ALPACA,
    };
    AlpacaBroker::new(client, settings.extended_hours)
        .map_err(|e| Failure::Runtime(format!("{e} — check the machine's TLS set-up")))
}

/// The broker of an Alpaca account whose keys are not in the environment, wired for the
/// listings (which never call a broker): every call says which variable is missing.
struct KeysMissing(String);

impl KeysMissing {
    fn refuse<T>(&self) -> Result<T, BrokerError> {
        Err(BrokerError::Unauthorized(self.0.clone()))
    }
}

#[async_trait::async_trait]
impl Broker for KeysMissing {
    fn kind(&self) -> &'static str {
        "alpaca"
    }
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        self.refuse()
    }
    async fn quotes(&self, _: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        self.refuse()
    }
    async fn submit(&self, _: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        self.refuse()
    }
    async fn order_by_client_id(&self, _: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        self.refuse()
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.refuse()
    }
}

/// How long [`App::shutdown`] may take to give the leases back.
const SHUTDOWN_RELEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// This process's liveness lock (PostgreSQL), within the connect timeout. Without it, other
/// hosts cannot tell this process's death and wait for its leases to expire, as before:
/// worth a warning, not a failure.
async fn hold_liveness(store: &SqlStore, timeout: std::time::Duration) -> Option<LivenessLock> {
    let taken = tokio::time::timeout(timeout, store.hold_liveness())
        .await
        .unwrap_or_else(|_| {
            Err(tradewarden_engine::StoreError::database(format!(
                "no answer within {} s",
                timeout.as_secs()
            )))
        });
    match taken {
        Ok(lock) => lock,
        Err(e) => {
            tracing::warn!(
                "no liveness lock ({e}); if this process dies, its leases free only at expiry"
            );
            None
        }
    }
}

/// Who this process is in leases and run records: host, pid and a random part.
fn process_owner(host: &str) -> String {
    format!(
        "{host}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
}

/// Reads the configuration: `--config` / `$TRADEWARDEN_CONFIG`, else `./tradewarden.toml`,
/// else the built-in default. Returns it with a name for its source.
pub fn load_config(path: Option<&Path>) -> Result<(Config, String), Failure> {
    let (text, source) = match path {
        Some(p) => (read_file(p)?, p.display().to_string()),
        None if Path::new("tradewarden.toml").exists() => (
            read_file(Path::new("tradewarden.toml"))?,
            "tradewarden.toml".to_string(),
        ),
        None => (
            config::DEFAULT_CONFIG.to_string(),
            "built-in default".to_string(),
        ),
    };
    // A relative rules file is relative to the configuration file.
    let dir = path
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cfg = config::parse_in(&text, dir).map_err(|e| {
        let lines: Vec<String> = e.0.iter().map(|l| format!("{source}: {l}")).collect();
        Failure::Input(format!(
            "{}\n{} configuration problem(s) in {source} — fix them (\"tradewarden init\" writes a commented example to compare with)",
            lines.join("\n"),
            e.0.len()
        ))
    })?;
    Ok((cfg, source))
}

fn read_file(p: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(p)
        .map_err(|e| {
            Failure::Input(format!(
                "cannot read the configuration {}: {e} — check the path given by --config or $TRADEWARDEN_CONFIG",
                p.display()
            ))
        })
}

/// Reads a command's input as bytes: a file, or standard input for `-`. Decoding is the
/// parser's business, so that invalid UTF-8 is reported with its line.
pub fn read_input(file: &str) -> Result<Vec<u8>, Failure> {
    read_input_tracked(file, None)
}

/// [`read_input`], advancing `progress` by the bytes read and naming the lines read so far.
pub fn read_input_tracked(file: &str, progress: Option<&Progress>) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let (mut reader, len) = open_input(file)?;
    if let Some(p) = progress {
        p.phase(Unit::Bytes, len, "0 lines read");
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut chunk = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cannot_read(file, &e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = progress {
            lines += chunk[..n].iter().filter(|b| **b == b'\n').count() as u64;
            p.inc(n as u64);
            p.message(format!("{lines} lines read"));
        }
    }
    Ok(buf)
}

/// Opens a command's input: a file, or standard input for `-`; with its length in bytes when
/// known (0 for standard input).
pub fn open_input(file: &str) -> Result<(Box<dyn std::io::Read + Send>, u64), Failure> {
    if file == "-" {
        return Ok((Box::new(std::io::stdin()), 0));
    }
    let f = std::fs::File::open(file).map_err(|e| cannot_read(file, &e))?;
    let len = f.metadata().map_or(0, |m| m.len());
    Ok((Box::new(f), len))
}

/// An input that cannot be read: bad input (exit 2), naming the file or standard input.
pub fn cannot_read(file: &str, e: &std::io::Error) -> Failure {
    let name = if file == "-" { "standard input" } else { file };
    Failure::Input(format!(
        "cannot read {name}: {e} — check the path, or pass - to read standard input"
    ))
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(v).map_err(runtime)?;
    text.push('\n');
    out::stdout(&text);
    Ok(())
}
