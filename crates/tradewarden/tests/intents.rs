//! Order intents across databases and over time (I4), through the engine on the real store
//! and paper broker, on SQLite and PostgreSQL: an order another database put at the broker
//! under our client_order_id is never adopted; a database of an older version keeps working;
//! an intent older than `max_intent_age_seconds` is never sent; reconciliation reports no
//! difference for a position whose order is in flight.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::Notify;
use tradewarden_domain::{Action, OrderStatus, OrderType, OutcomeKind, Side, TransactionStatus};
use tradewarden_engine::ports::{
    AcceptsQuotes, AccountSnapshot, BrokerPosition, InFlightReason, ListFilter, NewPosition, Quote,
};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{
    Broker, BrokerError, BrokerOrder, Clock, OrderRequest, Settled, SystemClock,
};
use tradewarden_store::SqlStore;
use tradewarden_store::db::{Pool, Val};

/// The findings stored so far, as (symbol, detail).
async fn findings(store: &SqlStore) -> Vec<(String, String)> {
    store
        .pool()
        .fetch(
            "SELECT symbol, detail FROM reconciliation_findings ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.text("symbol").unwrap(), r.text("detail").unwrap()))
        .collect()
}

async fn a_foreign_order_under_our_id_is_never_adopted(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    // Another database sharing the account already used the id our first entry will get.
    let ours = format!("tw-{}-1-entry", h.store.installation().as_str());
    h.store
        .save_quotes(
            "paper",
            &[Quote {
                symbol: "MSFT".into(),
                price: dec!(50),
                at: Utc::now(),
            }],
        )
        .await
        .unwrap();
    h.paper
        .submit(&OrderRequest {
            client_order_id: ours.clone(),
            symbol: "MSFT".into(),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: dec!(3),
            limit_price: None,
            stop_price: None,
            oco_group: None,
            attached_exits: None,
        })
        .await
        .unwrap();

    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!((r.counts.ordered, r.counts.failed), (0, 1), "{r:?}");
    let order = &r.orders[0];
    assert_eq!(order.client_order_id, ours);
    assert_eq!(order.status, OrderStatus::Submitting, "not adopted");
    let txn = h
        .store
        .active_transaction(1, "AAPL")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        txn.status,
        TransactionStatus::Waiting,
        "no fill taken from MSFT"
    );
    let found = findings(&h.store).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "AAPL");
    assert!(
        found[0]
            .1
            .contains(&format!("client_order_id {ours} names another order"))
            && found[0].1.contains("BUY 3 MSFT"),
        "{found:?}"
    );
    let outcome = &h.store.outcomes(&ListFilter::default()).await.unwrap()[0];
    assert_eq!(outcome.outcome, OutcomeKind::Failed, "{outcome:?}");

    // Settling later does not adopt it either.
    let report = h.manager.reconcile().await.unwrap();
    assert_eq!(report.settled.len(), 1);
    assert_eq!(report.settled[0].how, Settled::Foreign);
    assert_eq!(report.settled[0].status, OrderStatus::Submitting);
    assert!(
        findings(&h.store).await[1]
            .1
            .contains("names another order"),
        "a finding each time it is seen"
    );
}
// Catches: adopting whatever the broker has under our client_order_id (the foreign MSFT
// fill would open our AAPL transaction at MSFT's price), and a clash left unreported.
both!(a_foreign_order_under_our_id_is_never_adopted);

/// Writes what an older version (schema 0003) left after a crash: an entry `submitting`
/// under an id of the old format, which the paper broker had filled.
async fn old_crash_leftovers(url: &str) {
    let pool = Pool::connect(url).await.unwrap();
    let now = Val::from(Utc::now());
    let rows: [(&str, Vec<Val>); 6] = [
        (
            "INSERT INTO transactions (expert_id, account, symbol, side, quantity, status, reference_price, created_at) \
             VALUES (1, 'paper', 'AAPL', 'BUY', $1, 'WAITING', $2, $3)",
            vec![dec!(10).into(), dec!(100).into(), now.clone()],
        ),
        (
            "INSERT INTO orders (transaction_id, expert_id, account, symbol, side, role, order_type, quantity, \
             filled_quantity, status, client_order_id, created_at, updated_at) \
             VALUES (1, 1, 'paper', 'AAPL', 'BUY', 'entry', 'market', $1, $2, 'submitting', 'tw-1-entry', $3, $3)",
            vec![dec!(10).into(), dec!(0).into(), now.clone()],
        ),
        (
            "INSERT INTO paper_accounts (account, cash, version) VALUES ('paper', $1, 1)",
            vec![dec!(99000).into()],
        ),
        (
            "INSERT INTO paper_orders (account, client_order_id, symbol, side, order_type, quantity, status, \
             filled_quantity, avg_fill_price, created_at, updated_at) \
             VALUES ('paper', 'tw-1-entry', 'AAPL', 'BUY', 'market', $1, 'filled', $1, $2, $3, $3)",
            vec![dec!(10).into(), dec!(100).into(), now.clone()],
        ),
        (
            "INSERT INTO paper_positions (account, symbol, quantity) VALUES ('paper', 'AAPL', $1)",
            vec![dec!(10).into()],
        ),
        (
            "INSERT INTO quotes (account, symbol, price, at) VALUES ('paper', 'AAPL', $1, $2)",
            vec![dec!(100).into(), now],
        ),
    ];
    for (sql, args) in rows {
        pool.execute(sql, &args).await.unwrap();
    }
    pool.close().await;
}

async fn a_database_of_an_older_version_keeps_working(kind: DbKind) {
    let db = TestDb::new(kind).await;
    SqlStore::migrate_to(&db.url, 3).await.unwrap();
    old_crash_leftovers(&db.url).await;

    // The new version migrates it, settles the old order under its old id, and gives new
    // orders ids with the installation id.
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    let report = h.manager.reconcile().await.unwrap();
    assert_eq!(report.settled.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.settled[0].client_order_id.as_str(),
            report.settled[0].how,
            report.settled[0].status
        ),
        ("tw-1-entry", Settled::Adopted, OrderStatus::Filled)
    );
    assert!(report.findings.is_empty(), "{report:?}");
    h.manager
        .import(&[rec(1, "MSFT", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.ordered, 1, "{r:?}");
    assert_eq!(
        r.orders[0].client_order_id,
        format!("tw-{}-2-entry", h.store.installation().as_str())
    );
}
// Catches: a migration that cannot run over an older database's rows, an installation id
// missing on an upgraded database, or settling that rebuilds ids instead of using the stored
// one (the old order would be sent again under a new id).
both!(a_database_of_an_older_version_keeps_working);

/// An intent a crash left `submitting`: position, entry order and provisional outcome.
fn intent(rec_id: i64, symbol: &str, at: chrono::DateTime<Utc>) -> NewPosition {
    NewPosition {
        expert_id: 1,
        account: "paper".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        quantity: dec!(10),
        reference_price: dec!(100),
        order_type: OrderType::Market,
        limit_price: None,
        take_profit: None,
        stop_loss: None,
        recommendation_id: Some(rec_id),
        created_at: at,
        decision: Some(format!("buy 10 {symbol}")),
    }
}

async fn an_intent_past_its_maximum_age_is_never_sent(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let start = Utc::now();
    let clock = ManualClock::at(start);
    let h = harness_with_leases(
        &db,
        settings(vec![expert(1)], dec!(100000)),
        plain,
        "survivor",
        std::time::Duration::from_secs(30),
        clock.clone(),
    )
    .await;
    let quotes: Vec<Quote> = ["AAPL", "MSFT", "NVDA"]
        .iter()
        .map(|s| Quote {
            symbol: s.to_string(),
            price: dec!(100),
            at: start,
        })
        .collect();
    h.store.save_quotes("paper", &quotes).await.unwrap();
    // Three days ago a crash left AAPL (the broker got it) and MSFT (it never did); NVDA
    // was stored 100 s before now.
    let three_days = chrono::Duration::days(3);
    let old = h
        .store
        .open_positions(&[intent(1, "AAPL", start), intent(2, "MSFT", start)], &[])
        .await
        .unwrap();
    let aapl = old[0].as_ref().unwrap().1.clone();
    h.paper
        .submit(&OrderRequest::for_order(&aapl))
        .await
        .unwrap();
    let recent = start + three_days - chrono::Duration::seconds(100);
    h.store
        .open_position(&intent(3, "NVDA", recent))
        .await
        .unwrap();
    clock.advance(three_days);

    let report = h.manager.reconcile().await.unwrap();
    let how: Vec<(Settled, OrderStatus)> =
        report.settled.iter().map(|s| (s.how, s.status)).collect();
    assert_eq!(
        how,
        [
            (Settled::Adopted, OrderStatus::Filled),
            (Settled::Expired, OrderStatus::Error),
            (Settled::Submitted, OrderStatus::Filled),
        ]
    );
    let msft = &report.settled[1].client_order_id;
    assert_eq!(
        h.store.load_paper_order("paper", msft).await.unwrap(),
        None,
        "never sent"
    );
    let txns = h.store.transactions(&ListFilter::default()).await.unwrap();
    let expired = "intent_expired: 259200 s old, older than max_intent_age_seconds = 300";
    assert_eq!(txns[1].status, TransactionStatus::Failed);
    assert!(
        txns[1]
            .close_reason
            .as_deref()
            .unwrap_or("")
            .contains(expired),
        "{:?}",
        txns[1]
    );
    let outcome = &h
        .store
        .outcomes(&ListFilter {
            recommendation_id: Some(2),
            ..ListFilter::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(outcome.outcome, OutcomeKind::Failed);
    assert_eq!(outcome.detail, format!("buy 10 MSFT; not sent: {expired}"));
}
// Catches: settling that sends an intent whatever its age (MSFT would be bought at today's
// price three days later), that expires an order the broker already has (AAPL), or that
// expires a fresh one (NVDA); and an expiry that does not say so.
both!(an_intent_past_its_maximum_age_is_never_sent);

/// Delegates to the paper broker; the first batch, once the broker has answered it (the
/// order filled), waits until the test opens the gate: a run stopped between the broker's
/// fill and storing the answer.
struct HoldAnswers {
    inner: Arc<dyn Broker>,
    answered: Arc<Notify>,
    open: Arc<Notify>,
    first: parking_lot::Mutex<bool>,
}

impl HoldAnswers {
    fn wrap(
        answered: Arc<Notify>,
        open: Arc<Notify>,
    ) -> impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker> {
        move |inner| {
            Arc::new(HoldAnswers {
                inner,
                answered,
                open,
                first: parking_lot::Mutex::new(true),
            })
        }
    }
}

#[async_trait]
impl Broker for HoldAnswers {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        self.inner.account().await
    }
    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        self.inner.quotes(symbols).await
    }
    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        self.inner.submit(order).await
    }
    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        let answers = self.inner.submit_batch(orders).await;
        if std::mem::replace(&mut *self.first.lock(), false) {
            self.answered.notify_one();
            self.open.notified().await;
        }
        answers
    }
    async fn order_by_client_id(&self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        self.inner.order_by_client_id(id).await
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.inner.positions().await
    }
    fn accepts_quotes(&self) -> Option<&dyn AcceptsQuotes> {
        self.inner.accepts_quotes()
    }
}

async fn reconcile_reports_nothing_for_a_run_between_fill_and_answer(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let quick = || {
        let mut s = settings(vec![expert(1)], dec!(100000));
        s.lock_timeout = std::time::Duration::from_millis(50);
        s
    };
    let (answered, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let ttl = std::time::Duration::from_secs(30);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let a = harness_with_leases(
        &db,
        quick(),
        HoldAnswers::wrap(answered.clone(), open.clone()),
        "process-a",
        ttl,
        clock.clone(),
    )
    .await;
    let b = harness_with_leases(&db, quick(), plain, "process-b", ttl, clock).await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let ma = a.manager.clone();
    let run = tokio::spawn(async move {
        ma.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    answered.notified().await;
    // A's order filled at the broker; A has not stored the answer. B reconciles now.
    let report = b.manager.reconcile().await.unwrap();
    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(report.in_flight.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.in_flight[0].symbol.as_str(),
            report.in_flight[0].reason
        ),
        ("AAPL", InFlightReason::OrderInFlight)
    );
    assert_eq!(
        report.settled[0].how,
        Settled::Busy,
        "A's run settles its own"
    );
    assert!(findings(&b.store).await.is_empty(), "nothing stored either");

    open.notify_one();
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.counts.ordered, 1, "{r:?}");
    let report = b.manager.reconcile().await.unwrap();
    assert!(
        report.findings.is_empty() && report.in_flight.is_empty(),
        "{report:?}"
    );
}
// Catches: reconciliation comparing a position whose order is in flight (it would report
// "broker holds 100 AAPL, open transactions hold 0" while A is between fill and answer).
both!(reconcile_reports_nothing_for_a_run_between_fill_and_answer);
