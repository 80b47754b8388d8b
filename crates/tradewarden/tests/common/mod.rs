//! Shared test harness: real databases (a SQLite file in a temp dir, or a fresh PostgreSQL
//! database on the project's server), the real store and paper broker, and builders for
//! settings and recommendations.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden::host::ProcFs;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::expert::Expert;
use tradewarden_domain::money::Price;
use tradewarden_domain::rules::{Rule, RuleAction, Ruleset, Trigger, TriggerSpec};
use tradewarden_domain::{Action, NewRecommendation, RiskLevel, TimeHorizon};
use tradewarden_engine::ports::PaperLedger;
use tradewarden_engine::{
    AccountSettings, Broker, Clock, LeaseHolder, Settings, Store, SystemClock, TradeManager,
};
use tradewarden_store::SqlStore;

/// The PostgreSQL server tests use: `$TRADEWARDEN_TEST_PG` or the project machines' server.
pub fn pg_admin_url() -> String {
    std::env::var("TRADEWARDEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// A database of its own for one test; removed when dropped.
pub struct TestDb {
    pub url: String,
    pub kind: DbKind,
    dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A fresh SQLite file in a temp dir.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("tw.db").display());
        TestDb {
            url,
            kind: DbKind::Sqlite,
            dir: Some(dir),
            pg_name: None,
        }
    }

    /// A fresh database on the PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("tw_test_{}_{}_{}", std::process::id(), n, nanos);
        let admin = tradewarden_store::db::Pool::connect(&pg_admin_url())
            .await
            .expect("PostgreSQL reachable (see README)");
        admin
            .execute(&format!("CREATE DATABASE {name}"), &[])
            .await
            .expect("create test database");
        admin.close().await;
        let base = pg_admin_url();
        let url = match base.rfind('/') {
            Some(i) => format!("{}/{name}", &base[..i]),
            None => panic!("bad admin url {base}"),
        };
        TestDb {
            url,
            kind: DbKind::Postgres,
            dir: None,
            pg_name: Some(name),
        }
    }

    /// A fresh database of the given kind.
    pub async fn new(kind: DbKind) -> TestDb {
        match kind {
            DbKind::Sqlite => TestDb::sqlite(),
            DbKind::Postgres => TestDb::postgres().await,
        }
    }

    /// The SQLite file's path, if this is SQLite.
    pub fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("tw.db"))
    }

    /// Connects the real store (migrations applied).
    pub async fn store(&self) -> Arc<SqlStore> {
        Arc::new(SqlStore::connect(&self.url).await.expect("store connects"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside async; use a short-lived runtime on a plain thread.
            let admin = pg_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(pool) = tradewarden_store::db::Pool::connect(&admin).await {
                        let _ = pool
                            .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), &[])
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// `bullish AND confidence >= 60 → buy`, the default ruleset.
pub fn confident_buy() -> Ruleset {
    let t = |e: &str, op: Option<&str>, v: Option<Decimal>| {
        Trigger::from_spec(&TriggerSpec {
            event: e.into(),
            op: op.map(Into::into),
            value: v,
        })
        .unwrap()
    };
    Ruleset {
        name: "confident-buy".into(),
        rules: vec![Rule {
            name: "bullish-and-confident".into(),
            continue_processing: false,
            triggers: vec![
                t("bullish", None, None),
                t("confidence", Some(">="), Some(dec!(60))),
            ],
            actions: vec![RuleAction::Buy],
        }],
    }
}

/// An expert on account `paper` with automated opening on and the confident-buy ruleset.
pub fn expert(id: i64) -> Expert {
    let mut e = Expert::with_defaults(id, &format!("expert{id}"), "paper");
    e.allow_automated_trade_opening = true;
    e.enter_market_ruleset = Some("confident-buy".into());
    e
}

/// The engine's settings plus what the app wires from the config: the paper account's
/// starting cash.
#[derive(Debug, Clone)]
pub struct TestSettings {
    pub settings: Settings,
    pub cash: Decimal,
}

impl std::ops::Deref for TestSettings {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl std::ops::DerefMut for TestSettings {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

/// Settings with one paper account of `cash` and the given experts.
pub fn settings(experts: Vec<Expert>, cash: Decimal) -> TestSettings {
    let settings = Settings {
        experts: experts
            .into_iter()
            .map(|e| (e.id, e))
            .collect::<BTreeMap<_, _>>(),
        rulesets: [("confident-buy".to_string(), confident_buy())].into(),
        accounts: [(
            "paper".to_string(),
            AccountSettings {
                name: "paper".into(),
                minimum_equity_threshold_percent: dec!(5),
            },
        )]
        .into(),
        lock_timeout: Duration::from_millis(500),
        lookback_days: 1,
        max_clock_skew_seconds: 300,
        max_intent_age: Duration::from_secs(300),
        job_timeout: Duration::from_secs(3600),
    };
    TestSettings { settings, cash }
}

/// A recommendation created `now`.
pub fn rec(
    expert_id: i64,
    symbol: &str,
    action: Action,
    confidence: Decimal,
    epp: Decimal,
    price: Decimal,
) -> NewRecommendation {
    rec_at(
        expert_id,
        symbol,
        action,
        confidence,
        epp,
        price,
        Utc::now(),
    )
}

/// A recommendation created at `at`.
pub fn rec_at(
    expert_id: i64,
    symbol: &str,
    action: Action,
    confidence: Decimal,
    epp: Decimal,
    price: Decimal,
    at: DateTime<Utc>,
) -> NewRecommendation {
    use chrono::SubsecRound;
    NewRecommendation {
        expert_id,
        symbol: symbol.into(),
        action,
        confidence,
        expected_profit_percent: epp,
        price_at_date: Price::new(price).unwrap(),
        risk_level: RiskLevel::Medium,
        time_horizon: TimeHorizon::ShortTerm,
        target_price: None,
        details: None,
        created_at: at.trunc_subsecs(6),
    }
}

/// A wired manager: the real store, paper accounts initialised, one paper broker per
/// account. `wrap` may wrap the paper broker (to inject failures or pauses).
pub struct Harness {
    pub manager: Arc<TradeManager>,
    pub store: Arc<SqlStore>,
    pub paper: Arc<dyn Broker>,
}

/// Builds a [`Harness`] on `db`.
pub async fn harness(
    db: &TestDb,
    settings: TestSettings,
    wrap: impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker>,
) -> Harness {
    build(db, settings, wrap, Arc::new(SystemClock), None).await
}

async fn build(
    db: &TestDb,
    settings: TestSettings,
    wrap: impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    lease: Option<(&str, Duration)>,
) -> Harness {
    let store = db.store().await;
    let accounts: Vec<(String, Decimal)> = settings
        .accounts
        .values()
        .map(|a| (a.name.clone(), settings.cash))
        .collect();
    store.open_paper_accounts(&accounts).await.unwrap();
    let settings = settings.settings;
    let paper: Arc<dyn Broker> = Arc::new(PaperBroker::new("paper", store.clone(), clock.clone()));
    let brokers: HashMap<String, Arc<dyn Broker>> =
        [("paper".to_string(), wrap(paper.clone()))].into();
    let mut manager = TradeManager::new(settings, store.clone() as Arc<dyn Store>, brokers, clock);
    if let Some((owner, ttl)) = lease {
        // Every harness is this test process, as its process table sees it.
        let processes = Arc::new(ProcFs::new());
        let holder = LeaseHolder::this_process(owner, processes.as_ref(), None);
        manager = manager.with_leases(store.clone(), holder, processes, ttl);
    }
    Harness {
        manager: Arc::new(manager),
        store,
        paper,
    }
}

/// The identity wrapper for [`harness`].
pub fn plain(b: Arc<dyn Broker>) -> Arc<dyn Broker> {
    b
}

/// A clock the test moves by hand.
pub struct ManualClock(pub parking_lot::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn at(at: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock(parking_lot::Mutex::new(at)))
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}

/// Like [`harness`], with the processing locks backed by database leases held as `owner`
/// for `ttl`, and time from `clock`: one call per simulated process.
pub async fn harness_with_leases(
    db: &TestDb,
    settings: TestSettings,
    wrap: impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker>,
    owner: &str,
    ttl: Duration,
    clock: Arc<dyn Clock>,
) -> Harness {
    build(db, settings, wrap, clock, Some((owner, ttl))).await
}

/// The `tradewarden` binary built for these tests.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tradewarden"));
    c.env_remove("TRADEWARDEN_CONFIG")
        .env_remove("TRADEWARDEN_FAULT");
    c
}

/// A config file for the binary: one paper account, experts `1..=experts` with the
/// confident-buy ruleset, leases of `lease_seconds`, a 100 ms lock timeout.
pub fn write_config(
    dir: &std::path::Path,
    db_url: &str,
    experts: i64,
    lease_seconds: u64,
) -> PathBuf {
    let mut s = format!(
        "[database]\nurl = \"{db_url}\"\n\n[processing]\nlock_timeout_ms = 100\nlookback_days = 1\nlease_seconds = {lease_seconds}\n\n\
         [[accounts]]\nname = \"paper\"\nbroker = \"paper\"\ncash = 1000000\n\n"
    );
    let share = (100 / experts).max(1);
    for id in 1..=experts {
        s.push_str(&format!(
            "[[experts]]\nid = {id}\nname = \"e{id}\"\naccount = \"paper\"\nvirtual_equity_percent = {share}\n\
             allow_automated_trade_opening = true\nenter_market_ruleset = \"confident-buy\"\n\n"
        ));
    }
    s.push_str(
        "[[rulesets]]\nname = \"confident-buy\"\n\n[[rulesets.rules]]\nname = \"bullish-and-confident\"\n\
         triggers = [{ event = \"bullish\" }, { event = \"confidence\", op = \">=\", value = 60 }]\nactions = [{ action = \"buy\" }]\n",
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, s).unwrap();
    path
}

/// Runs the binary with `config`, returning (exit status, stdout, stderr).
pub fn tw(
    config: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let mut c = bin();
    c.arg("--config")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run tradewarden");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one async suite function `fn(DbKind)` as two tests, on SQLite and on PostgreSQL.
#[allow(unused_macros)]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                super::$name(DbKind::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(DbKind::Postgres).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both;
