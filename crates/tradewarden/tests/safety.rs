//! The seed's safety promises end to end (S1–S7, B1; I1–I3): per-(expert, use case)
//! processing locks, the SAFETY CHECK against duplicate positions, the database's
//! one-active-position index and the seed's log lines, on the real store and paper broker.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.
//! Pauses, failures and panics are injected by [`Injecting`], a broker that wraps the real
//! paper broker. Nothing here asserts how long something took; the only timeouts are the
//! engine's lock timeout (which must elapse for a contender to skip) and generous guards that
//! turn a regression into a failure instead of a hang.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Duration as ChronoDuration, Utc};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::{Barrier, Notify};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tradewarden_domain::{
    Action, OrderStatus, OrderType, OutcomeKind, Side, Transaction, TransactionStatus, UseCase,
};
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition, ListFilter, NewPosition, Quote};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{
    Broker, BrokerError, BrokerOrder, EngineError, OrderRequest, RunReport, RunStatus, Store,
    StoreError,
};

use common::*;

/// Guard for waits that only a regression makes long: fail instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Log capture
//
// One global subscriber for the whole test binary, installed before any test touches a
// callsite (every test calls `logs()` first), so tracing's per-callsite interest cache can
// never be computed against "no subscriber". Events go to the buffer of the thread that
// emitted them, if that thread asked for one; log-asserting tests run on a current-thread
// runtime, so every event of their runs is emitted on the test's own thread.

type Lines = Arc<Mutex<Vec<(Level, String)>>>;

thread_local! {
    static SINK: std::cell::RefCell<Option<Lines>> = const { std::cell::RefCell::new(None) };
}

struct SinkLayer;

struct MessageOf(String);

impl Visit for MessageOf {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("tradewarden") {
            return;
        }
        let _ = SINK.try_with(|sink| {
            if let Some(lines) = sink.borrow().as_ref() {
                let mut m = MessageOf(String::new());
                event.record(&mut m);
                lines.lock().push((*event.metadata().level(), m.0));
            }
        });
    }
}

/// The log lines emitted on this thread while it lives.
struct Logs {
    lines: Lines,
}

impl Logs {
    fn all(&self) -> Vec<(Level, String)> {
        self.lines.lock().clone()
    }

    fn count(&self, level: Level, text: &str) -> usize {
        self.all()
            .iter()
            .filter(|(l, m)| *l == level && m == text)
            .count()
    }

    #[track_caller]
    fn assert_once(&self, level: Level, text: &str) {
        let n = self.count(level, text);
        assert_eq!(
            n,
            1,
            "expected exactly one {level} line {text:?}; captured:\n{:#?}",
            self.all()
        );
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        let _ = SINK.try_with(|s| s.borrow_mut().take());
    }
}

/// Installs the binary's subscriber (once) and captures this thread's lines.
fn logs() -> Logs {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::DEBUG)
            .with(SinkLayer);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    let lines: Lines = Arc::default();
    SINK.with(|s| *s.borrow_mut() = Some(lines.clone()));
    Logs { lines }
}

// ---------------------------------------------------------------------------------------
// A broker that injects pauses, failures and panics, delegating to the real paper broker.

#[derive(Default)]
struct Hooks {
    /// The first `account()` call signals `.0`, then waits until `.1` is notified.
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
    /// The first `account()` call fails with `Unavailable`.
    fail_first_account: bool,
    /// The first `submit()` call panics.
    panic_first_submit: bool,
    /// The first `barrier.n` `account()` calls wait for each other (with a guard timeout).
    barrier: Option<(Arc<Barrier>, usize)>,
    /// The first `account()` call opens this position through this store first, as another
    /// process would; the transaction id is written to the cell.
    competitor: Option<(Arc<dyn Store>, NewPosition, Arc<Mutex<Option<i64>>>)>,
}

struct Injecting {
    inner: Arc<dyn Broker>,
    hooks: Hooks,
    account_calls: AtomicUsize,
    submit_calls: AtomicUsize,
}

fn injecting(hooks: Hooks) -> impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker> {
    move |inner| {
        Arc::new(Injecting {
            inner,
            hooks,
            account_calls: AtomicUsize::new(0),
            submit_calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Broker for Injecting {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let n = self.account_calls.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            if let Some((entered, release)) = &self.hooks.gate {
                entered.notify_one();
                release.notified().await;
            }
            if self.hooks.fail_first_account {
                return Err(BrokerError::Unavailable("injected: broker down".into()));
            }
            if let Some((store, new, cell)) = &self.hooks.competitor {
                let (txn, _) = store
                    .open_position(new)
                    .await
                    .expect("competitor opens first");
                *cell.lock() = Some(txn.id);
            }
        }
        if let Some((barrier, parties)) = &self.hooks.barrier
            && n < *parties
            && tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                .await
                .is_err()
        {
            return Err(BrokerError::Unavailable(
                "injected: the other run never reached the broker".into(),
            ));
        }
        self.inner.account().await
    }

    async fn quotes(
        &self,
        symbols: &[String],
    ) -> Result<std::collections::HashMap<String, Decimal>, BrokerError> {
        self.inner.quotes(symbols).await
    }

    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        if self.submit_calls.fetch_add(1, Ordering::SeqCst) == 0 && self.hooks.panic_first_submit {
            panic!("injected panic inside submit");
        }
        self.inner.submit(order).await
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        self.inner.order_by_client_id(client_order_id).await
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.inner.positions().await
    }
    fn accepts_quotes(&self) -> Option<&dyn tradewarden_engine::ports::AcceptsQuotes> {
        self.inner.accepts_quotes()
    }
}

/// A gate: (entered, release).
fn gate() -> (Arc<Notify>, Arc<Notify>) {
    (Arc::new(Notify::new()), Arc::new(Notify::new()))
}

async fn wait_entered(entered: &Notify) {
    tokio::time::timeout(GUARD, entered.notified())
        .await
        .expect("the first run reaches the broker");
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Harness settings with a short lock timeout, so skipping contenders return quickly.
fn fast(experts: Vec<tradewarden_domain::expert::Expert>) -> TestSettings {
    let mut s = settings(experts, dec!(100000));
    s.lock_timeout = Duration::from_millis(50);
    s
}

/// Imports a confident BUY at 100 for each symbol (all pass the confident-buy ruleset).
async fn buys(h: &Harness, expert_id: i64, symbols: &[&str]) {
    let recs: Vec<_> = symbols
        .iter()
        .map(|s| rec(expert_id, s, Action::Buy, dec!(80), dec!(10), dec!(100)))
        .collect();
    h.manager.import(&recs).await.unwrap();
}

fn position(expert_id: i64, symbol: &str) -> NewPosition {
    NewPosition {
        expert_id,
        account: "paper".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        quantity: dec!(10),
        reference_price: dec!(100),
        order_type: OrderType::Market,
        limit_price: None,
        take_profit: None,
        stop_loss: None,
        recommendation_id: None,
        created_at: Utc::now(),
        decision: None,
    }
}

/// A WAITING transaction as it really happens: its entry (a buy limit far below the quote)
/// was sent to the paper broker, which accepted it and lets it rest unfilled.
async fn waiting_position(h: &Harness, expert_id: i64, symbol: &str) -> Transaction {
    h.store
        .save_quotes(
            "paper",
            &[Quote {
                symbol: symbol.into(),
                price: dec!(100),
                at: Utc::now(),
            }],
        )
        .await
        .unwrap();
    let mut new = position(expert_id, symbol);
    new.order_type = OrderType::Limit;
    new.limit_price = Some(dec!(50));
    let (txn, order) = h.store.open_position(&new).await.unwrap();
    let answer = h
        .paper
        .submit(&OrderRequest::for_order(&order))
        .await
        .unwrap();
    assert_eq!(answer.status, OrderStatus::Accepted, "the entry rests");
    h.store.apply_broker_order(order.id, &answer).await.unwrap();
    let txn2 = h
        .store
        .active_transaction(expert_id, symbol)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((txn2.id, txn2.status), (txn.id, TransactionStatus::Waiting));
    txn2
}

async fn transactions(store: &dyn Store, expert_id: i64) -> Vec<Transaction> {
    store
        .transactions(&ListFilter {
            expert_id: Some(expert_id),
            ..ListFilter::default()
        })
        .await
        .unwrap()
}

/// Active (WAITING/OPENED) transactions per symbol.
async fn active_per_symbol(store: &dyn Store, expert_id: i64) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in transactions(store, expert_id).await {
        if matches!(
            t.status,
            TransactionStatus::Waiting | TransactionStatus::Opened
        ) {
            *m.entry(t.symbol).or_default() += 1;
        }
    }
    m
}

/// The expert's entry orders (each entry also has its exit legs).
async fn order_count(store: &dyn Store, expert_id: i64) -> usize {
    store
        .orders(&ListFilter {
            expert_id: Some(expert_id),
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|o| o.role == tradewarden_domain::OrderRole::Entry)
        .count()
}

async fn outcomes_of(store: &dyn Store, expert_id: i64) -> Vec<tradewarden_domain::Outcome> {
    store
        .outcomes(&ListFilter {
            expert_id: Some(expert_id),
            ..ListFilter::default()
        })
        .await
        .unwrap()
}

/// One run of expert 1's enter_market, failing (instead of hanging) if it never returns.
async fn run_once(h: &Harness) -> Result<RunReport, EngineError> {
    tokio::time::timeout(
        GUARD,
        h.manager
            .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli),
    )
    .await
    .expect("a run returns: it processes or skips after the lock timeout")
}

#[track_caller]
fn assert_skipped_locked(r: &RunReport) {
    assert_eq!(r.status, RunStatus::SkippedLocked, "{r:?}");
    assert!(
        r.orders.is_empty(),
        "a skipped run returns no orders: {r:?}"
    );
    assert_eq!(
        r.counts,
        Default::default(),
        "a skipped run decides nothing"
    );
}

fn symbols_of(r: &RunReport) -> Vec<String> {
    let mut v: Vec<String> = r.orders.iter().map(|o| o.symbol.clone()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// S1/S3/S6 — concurrent calls for one expert process once.

async fn concurrent_calls_for_one_expert_process_once(kind: DbKind) {
    let _logs = logs();
    let db = TestDb::new(kind).await;
    let (entered, release) = gate();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            gate: Some((entered.clone(), release.clone())),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL", "MSFT"]).await;

    let m = h.manager.clone();
    let first = tokio::spawn(async move {
        m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    wait_entered(&entered).await;

    // The first run now holds the lock inside the broker; N more calls for the same expert.
    let mut others = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let m = h.manager.clone();
        others.spawn(async move {
            m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
                .await
        });
    }
    let others = tokio::time::timeout(GUARD, others.join_all())
        .await
        .expect("contenders give up after the lock timeout instead of waiting");
    for r in &others {
        assert_skipped_locked(r.as_ref().unwrap());
    }

    release.notify_one();
    let r = tokio::time::timeout(GUARD, first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    assert_eq!(r.counts.ordered, 2);
    assert_eq!(
        symbols_of(&r),
        ["AAPL", "MSFT"],
        "S6: the run returns its orders"
    );
    assert_eq!(
        active_per_symbol(h.store.as_ref(), 1).await,
        BTreeMap::from([("AAPL".into(), 1), ("MSFT".into(), 1)]),
        "exactly one transaction per symbol"
    );
    assert_eq!(transactions(h.store.as_ref(), 1).await.len(), 2);
}

// Catches: removing the processing lock (the contenders would process too: Processed, and
// order what the first has not stored yet); waiting without timeout (the guard times out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_calls_for_one_expert_process_once() {
    concurrent_calls_for_one_expert_process_once(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_calls_for_one_expert_process_once() {
    concurrent_calls_for_one_expert_process_once(DbKind::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// S5 — an existing WAITING / OPENED transaction blocks a duplicate, per recommendation.

/// Processes after `existing` holds AAPL for expert 1 and checks the SAFETY CHECK skipped the
/// fresh AAPL recommendation (and only it: MSFT in the same run is ordered).
async fn assert_duplicate_blocked(h: &Harness, logs: &Logs, existing: &Transaction) {
    let orders_before = order_count(h.store.as_ref(), 1).await;
    let outcomes_before = outcomes_of(h.store.as_ref(), 1).await.len();
    // The fresh recommendation is newer than anything stored, so the run selects it.
    h.manager
        .import(&[
            rec(1, "AAPL", Action::Buy, dec!(90), dec!(20), dec!(100)),
            rec(1, "MSFT", Action::Buy, dec!(80), dec!(10), dec!(100)),
        ])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    assert_eq!(r.counts.considered, 2);
    assert_eq!(r.counts.duplicate_position, 1);
    assert_eq!(r.counts.ordered, 1);
    assert_eq!(
        symbols_of(&r),
        ["MSFT"],
        "the check is per recommendation: no AAPL order, MSFT ordered"
    );
    assert_eq!(
        order_count(h.store.as_ref(), 1).await,
        orders_before + 1,
        "no new AAPL order was stored"
    );
    assert_eq!(
        active_per_symbol(h.store.as_ref(), 1).await.get("AAPL"),
        Some(&1)
    );

    let outcomes = outcomes_of(h.store.as_ref(), 1).await;
    let new: Vec<_> = outcomes[outcomes_before..]
        .iter()
        .filter(|o| o.symbol == "AAPL")
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let o = new[0];
    assert_eq!(o.outcome, OutcomeKind::DuplicatePosition);
    assert_eq!(o.order_id, None);
    let names = format!(
        "existing transaction {} in {} status",
        existing.id, existing.status
    );
    assert!(
        o.detail.contains(&names),
        "detail names the existing: {o:?}"
    );
    // Caught by the application check, before any insert: not by the database index.
    assert!(!o.detail.contains("refused by the database"), "{o:?}");
    logs.assert_once(
        Level::WARN,
        &format!(
            "SAFETY CHECK: Skipping recommendation {} for AAPL - existing transaction {} in {} status for expert 1",
            o.recommendation_id, existing.id, existing.status
        ),
    );
}

async fn existing_waiting_blocks_a_duplicate(kind: DbKind) {
    let logs = logs();
    let db = TestDb::new(kind).await;
    let h = harness(&db, fast(vec![expert(1)]), plain).await;
    let existing = waiting_position(&h, 1, "AAPL").await;
    assert_duplicate_blocked(&h, &logs, &existing).await;
}

async fn existing_opened_blocks_a_duplicate(kind: DbKind) {
    let logs = logs();
    let db = TestDb::new(kind).await;
    let h = harness(&db, fast(vec![expert(1)]), plain).await;
    // A first run opens AAPL for real: the paper broker fills the market order.
    let earlier = Utc::now() - ChronoDuration::minutes(5);
    h.manager
        .import(&[rec_at(
            1,
            "AAPL",
            Action::Buy,
            dec!(80),
            dec!(10),
            dec!(100),
            earlier,
        )])
        .await
        .unwrap();
    let first = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(first.counts.ordered, 1);
    let existing = h
        .store
        .active_transaction(1, "AAPL")
        .await
        .unwrap()
        .expect("AAPL is held");
    assert_eq!(existing.status, TransactionStatus::Opened);
    assert_duplicate_blocked(&h, &logs, &existing).await;
}

// Catches: removing the SAFETY CHECK for WAITING (the duplicate would reach the database and
// be refused there, "refused by the database"; with the index gone too, a second order).
#[tokio::test]
async fn sqlite_existing_waiting_transaction_blocks_a_duplicate() {
    existing_waiting_blocks_a_duplicate(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_existing_waiting_transaction_blocks_a_duplicate() {
    existing_waiting_blocks_a_duplicate(DbKind::Postgres).await;
}

// Catches: a SAFETY CHECK that looks at WAITING only (OPENED would slip through to the index).
#[tokio::test]
async fn sqlite_existing_opened_transaction_blocks_a_duplicate() {
    existing_opened_blocks_a_duplicate(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_existing_opened_transaction_blocks_a_duplicate() {
    existing_opened_blocks_a_duplicate(DbKind::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// S4/I3 — every exit path releases the lock.

// Catches: releasing the lock only on success (e.g. an explicit release at the end of the
// run instead of the RAII guard): the next run would be SkippedLocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_error_mid_run_releases_the_lock() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            fail_first_account: true,
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    let err = run_once(&h).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Broker(BrokerError::Unavailable(_))),
        "{err:?}"
    );
    let r = run_once(&h).await.unwrap();
    assert_eq!(r.status, RunStatus::Processed, "the lock was released");
    assert_eq!(symbols_of(&r), ["AAPL"]);
}

// Catches: a lock that a panicking run leaves held (no unwinding release): the next run
// would be SkippedLocked; and a panic that escapes its run (I10: it is that expert's failure,
// reported as an error, never the caller's panic).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_mid_run_releases_the_lock() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            panic_first_submit: true,
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    let m = h.manager.clone();
    let joined = tokio::spawn(async move {
        m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    })
    .await;
    assert!(
        matches!(joined, Ok(Err(EngineError::Panicked(ref msg))) if msg.contains("injected panic")),
        "the run's panic is its error: {joined:?}"
    );
    // The stored intent survives the panic (left for reconciliation); a new symbol arrives.
    buys(&h, 1, &["MSFT"]).await;
    let r = run_once(&h).await.unwrap();
    assert_eq!(r.status, RunStatus::Processed, "the lock was released");
    assert_eq!(symbols_of(&r), ["MSFT"]);
    assert_eq!(
        r.counts.duplicate_position, 1,
        "AAPL stays held by its intent"
    );
}

// Catches: a lock released by code at the end of the run rather than on drop: a task
// cancelled while inside the broker would leave it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_run_releases_the_lock() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let (entered, release) = gate();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            gate: Some((entered.clone(), release)),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    let m = h.manager.clone();
    let task = tokio::spawn(async move {
        m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    wait_entered(&entered).await;
    // Blocked in the broker, holding the lock: the next call would skip.
    let contender = tokio::time::timeout(
        GUARD,
        h.manager
            .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli),
    )
    .await
    .expect("the contender skips instead of waiting for the holder");
    assert_skipped_locked(&contender.unwrap());
    task.abort();
    let joined = tokio::time::timeout(GUARD, task).await.unwrap();
    assert!(joined.is_err_and(|e| e.is_cancelled()));
    let r = run_once(&h).await.unwrap();
    assert_eq!(r.status, RunStatus::Processed, "the lock was released");
    assert_eq!(symbols_of(&r), ["AAPL"]);
}

// ---------------------------------------------------------------------------------------
// S1 — different experts, and different use cases, are independent.

// Catches: one lock per process (or per account) instead of per expert: the second expert
// would skip while the first waits at the barrier, and the first would time out there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_experts_process_concurrently() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let h = harness(
        &db,
        fast(vec![expert(1), expert(2)]),
        injecting(Hooks {
            barrier: Some((Arc::new(Barrier::new(2)), 2)),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    buys(&h, 2, &["MSFT"]).await;
    let (m1, m2) = (h.manager.clone(), h.manager.clone());
    let a = tokio::spawn(async move {
        m1.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    let b = tokio::spawn(async move {
        m2.process_enter_market(2, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    let (a, b) = tokio::time::timeout(GUARD, async { (a.await, b.await) })
        .await
        .unwrap();
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(a.status, RunStatus::Processed);
    assert_eq!(b.status, RunStatus::Processed);
    assert_eq!(symbols_of(&a), ["AAPL"]);
    assert_eq!(symbols_of(&b), ["MSFT"]);
}

// Catches: a lock key without the use case (open_positions of the expert would be blocked
// by its running enter_market).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_enter_market_does_not_block_the_experts_other_use_case() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let (entered, release) = gate();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            gate: Some((entered.clone(), release.clone())),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    let m = h.manager.clone();
    let run = tokio::spawn(async move {
        m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    wait_entered(&entered).await;
    let locks = h.manager.locks();
    let same = tokio::time::timeout(GUARD, locks.acquire(1, UseCase::EnterMarket)).await;
    assert!(same.expect("skips after the lock timeout").is_none());
    let other = tokio::time::timeout(GUARD, locks.acquire(1, UseCase::OpenPositions))
        .await
        .expect("not blocked by enter_market");
    assert_eq!(
        other.as_ref().map(|g| g.key()),
        Some("expert_1_usecase_open_positions".to_string())
    );
    drop(other);
    release.notify_one();
    let r = tokio::time::timeout(GUARD, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
}

// ---------------------------------------------------------------------------------------
// S7 — rapid repeated calls: only the first processes.

// Catches: removing the processing lock (several Processed); a contender that waits for the
// holder instead of skipping after the timeout (the nine never return before the release).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rapid_repeated_calls_only_the_first_processes() {
    let _logs = logs();
    let db = TestDb::sqlite();
    let (entered, release) = gate();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            gate: Some((entered.clone(), release.clone())),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL", "MSFT", "GOOGL"]).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let m = h.manager.clone();
        calls.spawn(async move {
            m.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
                .await
        });
    }
    // Whichever call got the lock is held in the broker; the nine others return meanwhile.
    wait_entered(&entered).await;
    let mut reports = Vec::new();
    for _ in 0..9 {
        let r = tokio::time::timeout(GUARD, calls.join_next())
            .await
            .expect("the other calls return while the first is held")
            .unwrap()
            .unwrap()
            .unwrap();
        assert_skipped_locked(&r);
        reports.push(r);
    }
    release.notify_one();
    let last = tokio::time::timeout(GUARD, calls.join_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();
    reports.push(last);
    let processed: Vec<_> = reports
        .iter()
        .filter(|r| r.status == RunStatus::Processed)
        .collect();
    let skipped = reports
        .iter()
        .filter(|r| r.status == RunStatus::SkippedLocked)
        .count();
    assert_eq!((processed.len(), skipped), (1, 9));
    assert_eq!(symbols_of(processed[0]), ["AAPL", "GOOGL", "MSFT"]);
    assert_eq!(transactions(h.store.as_ref(), 1).await.len(), 3);
}

// ---------------------------------------------------------------------------------------
// S3/S4/S5 — the seed's log lines, at their levels.

// Catches: any of the four seed log lines changed, dropped or logged at another level; a
// contender that acquires (a second "Acquired" line).
#[tokio::test]
async fn the_seed_log_lines_appear_at_their_levels() {
    let logs = logs();
    let db = TestDb::sqlite();
    let (entered, release) = gate();
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            gate: Some((entered.clone(), release.clone())),
            ..Hooks::default()
        }),
    )
    .await;
    let existing = waiting_position(&h, 1, "MSFT").await;
    buys(&h, 1, &["AAPL", "MSFT"]).await;

    // Current-thread runtime: both runs are polled on this thread, so both log here.
    let both = async {
        tokio::join!(
            h.manager
                .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli),
            async {
                wait_entered(&entered).await;
                let second = h
                    .manager
                    .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
                    .await;
                release.notify_one();
                second
            }
        )
    };
    let (first, second) = tokio::time::timeout(GUARD, both)
        .await
        .expect("the contender skips instead of waiting for the holder");
    let first = first.unwrap();
    assert_eq!(first.status, RunStatus::Processed);
    assert_skipped_locked(&second.unwrap());

    let msft = outcomes_of(h.store.as_ref(), 1)
        .await
        .into_iter()
        .find(|o| o.symbol == "MSFT")
        .expect("MSFT has an outcome");
    assert_eq!(msft.outcome, OutcomeKind::DuplicatePosition);

    logs.assert_once(
        Level::DEBUG,
        "Acquired processing lock for expert 1 (enter_market)",
    );
    logs.assert_once(
        Level::DEBUG,
        "Released processing lock for expert 1 (enter_market)",
    );
    logs.assert_once(
        Level::INFO,
        "Could not acquire lock for expert 1 (enter_market) - another thread is already processing. Skipping.",
    );
    logs.assert_once(
        Level::WARN,
        &format!(
            "SAFETY CHECK: Skipping recommendation {} for MSFT - existing transaction {} in WAITING status for expert 1",
            msft.recommendation_id, existing.id
        ),
    );
    // And in the order they happen: acquire, contender skips, release.
    let all = logs.all();
    let at = |text: &str| all.iter().position(|(_, m)| m.starts_with(text)).unwrap();
    assert!(at("Acquired processing lock") < at("Could not acquire lock"));
    assert!(at("Could not acquire lock") < at("Released processing lock"));
}

// ---------------------------------------------------------------------------------------
// B1/I1 — the database enforces one active transaction per (expert, symbol).

async fn racing_inserts_leave_one_active_transaction(kind: DbKind) {
    let _logs = logs();
    let db = TestDb::new(kind).await;
    let h = harness(&db, fast(vec![expert(1)]), plain).await;
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, barrier) = (h.store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.open_position(&position(1, "AAPL")).await
        }));
    }
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for t in tasks {
        match tokio::time::timeout(GUARD, t).await.unwrap().unwrap() {
            Ok((txn, _)) => ok.push(txn),
            Err(e) => refused.push(e),
        }
    }
    assert_eq!(ok.len(), 1, "exactly one insert wins; refused: {refused:?}");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        matches!(
            &refused[0],
            StoreError::DuplicatePosition { expert_id: 1, symbol, existing: Some((id, TransactionStatus::Waiting)) }
                if symbol == "AAPL" && *id == ok[0].id
        ),
        "{refused:?}"
    );
    let all = transactions(h.store.as_ref(), 1).await;
    assert_eq!(all.len(), 1, "the refused insert left nothing: {all:?}");
    assert_eq!(all[0].id, ok[0].id);
    assert_eq!(order_count(h.store.as_ref(), 1).await, 1);
}

// Catches: dropping the partial unique index on SQLite (both inserts succeed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_inserts_leave_one_active_transaction() {
    racing_inserts_leave_one_active_transaction(DbKind::Sqlite).await;
}

// Catches: dropping the partial unique index on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_inserts_leave_one_active_transaction() {
    racing_inserts_leave_one_active_transaction(DbKind::Postgres).await;
}

async fn the_index_is_partial(kind: DbKind) {
    let _logs = logs();
    let db = TestDb::new(kind).await;
    let h = harness(&db, fast(vec![expert(1)]), plain).await;
    let (first, order) = h.store.open_position(&position(1, "AAPL")).await.unwrap();
    // The broker refuses the entry: nothing filled, the transaction leaves WAITING.
    h.store
        .apply_broker_order(
            order.id,
            &BrokerOrder {
                broker_order_id: None,
                client_order_id: order.client_order_id.clone(),
                status: OrderStatus::Rejected,
                filled_quantity: Decimal::ZERO,
                avg_fill_price: None,
                reason: Some("injected".into()),
                updated_at: Utc::now(),
                symbol: None,
                side: None,
                quantity: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(h.store.active_transaction(1, "AAPL").await.unwrap(), None);
    let (second, _) = h
        .store
        .open_position(&position(1, "AAPL"))
        .await
        .expect("an ended transaction does not hold the slot");
    assert_ne!(first.id, second.id);
    assert_eq!(
        active_per_symbol(h.store.as_ref(), 1).await,
        BTreeMap::from([("AAPL".into(), 1)])
    );
}

// Catches: a unique index on (expert, symbol) that is not partial (ended positions would
// block the symbol forever).
#[tokio::test]
async fn sqlite_an_ended_transaction_frees_the_symbol() {
    the_index_is_partial(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_an_ended_transaction_frees_the_symbol() {
    the_index_is_partial(DbKind::Postgres).await;
}

async fn a_competing_insert_after_the_check_is_refused_like_the_check(kind: DbKind) {
    let logs = logs();
    let db = TestDb::new(kind).await;
    // Another process: its own connection pool on the same database.
    let other: Arc<dyn Store> = db.store().await;
    let competitor_id = Arc::new(Mutex::new(None));
    let h = harness(
        &db,
        fast(vec![expert(1)]),
        injecting(Hooks {
            competitor: Some((other, position(1, "AAPL"), competitor_id.clone())),
            ..Hooks::default()
        }),
    )
    .await;
    buys(&h, 1, &["AAPL"]).await;
    // The run loads its inputs (no AAPL position), then asks the broker for the account,
    // during which the competitor opens AAPL: the run's own insert must be refused.
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    let competitor_id = competitor_id.lock().expect("the competitor ran");
    assert_eq!(r.status, RunStatus::Processed);
    assert!(r.orders.is_empty(), "{r:?}");
    assert_eq!(r.counts.duplicate_position, 1);
    assert_eq!(r.counts.ordered, 0);
    assert_eq!(
        active_per_symbol(h.store.as_ref(), 1).await,
        BTreeMap::from([("AAPL".into(), 1)]),
        "no second active transaction"
    );
    assert_eq!(
        h.store
            .active_transaction(1, "AAPL")
            .await
            .unwrap()
            .map(|t| t.id),
        Some(competitor_id)
    );
    assert_eq!(
        order_count(h.store.as_ref(), 1).await,
        1,
        "only the competitor's entry"
    );
    let outcomes = outcomes_of(h.store.as_ref(), 1).await;
    assert_eq!(outcomes.len(), 1, "one outcome: {outcomes:?}");
    let o = &outcomes[0];
    assert_eq!(o.outcome, OutcomeKind::DuplicatePosition);
    assert!(o.detail.contains("refused by the database"), "{o:?}");
    assert!(
        o.detail.contains(&format!(
            "existing transaction {competitor_id} in WAITING status"
        )),
        "{o:?}"
    );
    logs.assert_once(
        Level::WARN,
        &format!(
            "SAFETY CHECK: Skipping recommendation {} for AAPL - existing transaction {competitor_id} in WAITING status for expert 1",
            o.recommendation_id
        ),
    );
}

// Catches: dropping the partial unique index on SQLite (the run would open a second AAPL
// position), or not mapping its violation to a duplicate_position outcome and warning.
#[tokio::test]
async fn sqlite_a_competing_insert_after_the_check_is_refused_like_the_check() {
    a_competing_insert_after_the_check_is_refused_like_the_check(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_a_competing_insert_after_the_check_is_refused_like_the_check() {
    a_competing_insert_after_the_check_is_refused_like_the_check(DbKind::Postgres).await;
}
