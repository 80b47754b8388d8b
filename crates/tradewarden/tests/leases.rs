//! Cross-process processing locks (B2, I2, I3): two managers sharing one database stand in
//! for two processes; leases exclude them, expire when a holder dies, stay held while a long
//! run renews them, and a run that lost its lease stops before its next broker call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::Notify;
use tradewarden_domain::Action;
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition, ListFilter};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{
    Broker, BrokerError, BrokerOrder, Clock, EngineError, OrderRequest, RunStatus, SystemClock,
};

/// Delegates to the paper broker; the first `account()` call waits until the test opens the
/// gate, after telling the test it got there.
struct Gate {
    inner: Arc<dyn Broker>,
    entered: Arc<Notify>,
    open: Arc<Notify>,
    first: parking_lot::Mutex<bool>,
}

impl Gate {
    fn wrap(
        entered: Arc<Notify>,
        open: Arc<Notify>,
    ) -> impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker> {
        move |inner| {
            Arc::new(Gate {
                inner,
                entered,
                open,
                first: parking_lot::Mutex::new(true),
            })
        }
    }
}

#[async_trait]
impl Broker for Gate {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let first = std::mem::replace(&mut *self.first.lock(), false);
        if first {
            self.entered.notify_one();
            self.open.notified().await;
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
        self.inner.submit(order).await
    }
    async fn order_by_client_id(&self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        self.inner.order_by_client_id(id).await
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.inner.positions().await
    }
    fn accepts_quotes(&self) -> Option<&dyn tradewarden_engine::ports::AcceptsQuotes> {
        self.inner.accepts_quotes()
    }
}

fn quick(mut s: TestSettings) -> TestSettings {
    s.lock_timeout = Duration::from_millis(50);
    s
}

async fn a_dead_holders_lease_expires(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let clock = ManualClock::at(Utc::now());
    let ttl = Duration::from_secs(30);
    let h = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        plain,
        "survivor",
        ttl,
        clock.clone(),
    )
    .await;
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    // A process that took the lease and died: its row stays, nobody renews it.
    assert!(
        h.store
            .try_acquire_lease("expert_1_usecase_enter_market", "dead", clock.now(), ttl)
            .await
            .unwrap()
    );
    // Removing the lease check would let this run proceed.
    assert_eq!(
        h.manager
            .process_enter_market(1, None)
            .await
            .unwrap()
            .status,
        RunStatus::SkippedLocked
    );
    clock.advance(chrono::Duration::seconds(29));
    assert_eq!(
        h.manager
            .process_enter_market(1, None)
            .await
            .unwrap()
            .status,
        RunStatus::SkippedLocked
    );
    clock.advance(chrono::Duration::seconds(2));
    let r = h.manager.process_enter_market(1, None).await.unwrap();
    assert_eq!(
        r.status,
        RunStatus::Processed,
        "the dead holder's lease expired"
    );
    assert_eq!(r.counts.ordered, 1);
}

#[tokio::test]
async fn sqlite_a_dead_holders_lease_expires() {
    a_dead_holders_lease_expires(DbKind::Sqlite).await;
}
#[tokio::test]
async fn postgres_a_dead_holders_lease_expires() {
    a_dead_holders_lease_expires(DbKind::Postgres).await;
}

async fn renewal_keeps_a_long_runs_lock(kind: DbKind) {
    let db = TestDb::new(kind).await;
    // Real time, short lease: the run outlives several lease lifetimes while it renews.
    let ttl = Duration::from_millis(300);
    let (entered, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let a = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        Gate::wrap(entered.clone(), open.clone()),
        "process-a",
        ttl,
        Arc::new(SystemClock),
    )
    .await;
    let b = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        plain,
        "process-b",
        ttl,
        Arc::new(SystemClock),
    )
    .await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let ma = a.manager.clone();
    let long_run = tokio::spawn(async move { ma.process_enter_market(1, None).await });
    entered.notified().await;
    // Four lease lifetimes: without renewal the lease would expire and B would run.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            b.manager
                .process_enter_market(1, None)
                .await
                .unwrap()
                .status,
            RunStatus::SkippedLocked
        );
    }
    open.notify_one();
    let r = long_run.await.unwrap().unwrap();
    assert_eq!((r.status, r.counts.ordered), (RunStatus::Processed, 1));
    // Released at the end: B gets it at once and finds the position taken.
    let r = b.manager.process_enter_market(1, None).await.unwrap();
    assert_eq!(
        (r.status, r.counts.duplicate_position),
        (RunStatus::Processed, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_renewal_keeps_a_long_runs_lock() {
    renewal_keeps_a_long_runs_lock(DbKind::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_renewal_keeps_a_long_runs_lock() {
    renewal_keeps_a_long_runs_lock(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_stops_before_the_next_broker_call() {
    let db = TestDb::sqlite();
    let ttl = Duration::from_millis(300);
    let (entered, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let a = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        Gate::wrap(entered.clone(), open.clone()),
        "process-a",
        ttl,
        Arc::new(SystemClock),
    )
    .await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let ma = a.manager.clone();
    let run = tokio::spawn(async move { ma.process_enter_market(1, None).await });
    entered.notified().await;
    // Another owner takes the key over (as if A had stalled past its expiry).
    a.store
        .pool()
        .execute(
            "UPDATE leases SET owner = 'thief' WHERE key = 'expert_1_usecase_enter_market'",
            &[],
        )
        .await
        .unwrap();
    // Let the renewer notice (it renews every ttl/3).
    tokio::time::sleep(Duration::from_millis(400)).await;
    open.notify_one();
    let err = run.await.unwrap().expect_err("the run must stop");
    assert!(matches!(err, EngineError::LeaseLost(_)), "{err}");
    // Nothing reached the broker or the book: without the check it would have ordered.
    assert!(
        a.store
            .orders(&ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        a.store
            .load_paper_order(
                "paper",
                &format!("tw-{}-1-entry", a.store.installation().as_str())
            )
            .await
            .unwrap()
            .is_none()
    );
    // The thief's lease is untouched by A's exit.
    let rows = a
        .store
        .pool()
        .fetch("SELECT owner FROM leases", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].text("owner").unwrap(), "thief");
}
