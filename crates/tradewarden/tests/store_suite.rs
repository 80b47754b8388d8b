//! The store test suite: every operation of the store, the paper ledger and the lease table,
//! run against a real SQLite file and a real PostgreSQL database alike.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::order::CLIENT_ORDER_ID_MAX_LEN;
use tradewarden_domain::{
    Action, OrderStatus, OrderType, Outcome, OutcomeKind, Side, TransactionStatus, UseCase,
};
use tradewarden_engine::ports::{
    BookScope, FinishedRuns, HostIdentity, ImportError, InFlightReason, LeaseAttempt, LeaseHolder,
    ListFilter, NewPosition, Quote, RunRecord,
};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, OrderRequest, StoreError};
use tradewarden_store::SqlStore;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap() + chrono::Duration::seconds(secs)
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
        created_at: t(0),
        decision: None,
    }
}

fn answer(coid: &str, status: OrderStatus, filled: Decimal, price: Option<Decimal>) -> BrokerOrder {
    BrokerOrder {
        broker_order_id: Some("b-1".into()),
        client_order_id: coid.into(),
        status,
        filled_quantity: filled,
        avg_fill_price: price,
        reason: None,
        updated_at: t(5),
        symbol: None,
        side: None,
        quantity: None,
    }
}

fn quote(symbol: &str, price: Decimal, at: DateTime<Utc>) -> Quote {
    Quote {
        symbol: symbol.into(),
        price,
        at,
    }
}

/// The paper account's stored quotes.
async fn quotes_of(s: &SqlStore) -> std::collections::HashMap<String, Decimal> {
    let book = s
        .load_book("paper", BookScope::Quotes)
        .await
        .unwrap()
        .unwrap();
    book.quotes.into_iter().map(|(s, q)| (s, q.price)).collect()
}

async fn store_with_paper(db: &TestDb, cash: Decimal) -> std::sync::Arc<SqlStore> {
    let s = db.store().await;
    s.open_paper_accounts(&[("paper".into(), cash)])
        .await
        .unwrap();
    s
}

async fn import_is_idempotent_and_all_or_nothing(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let a = rec_at(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100), t(0));
    let b = rec_at(
        1,
        "MSFT",
        Action::Sell,
        dec!(70.5),
        dec!(-2.25),
        dec!(410.1),
        t(1),
    );
    let c = s.import(&[a.clone(), b.clone(), a.clone()]).await.unwrap();
    assert_eq!((c.imported, c.already_present), (2, 1));
    let c = s.import(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!((c.imported, c.already_present), (0, 2));

    // Same identity, different content: an error naming that line; the good line of the same
    // batch is not stored either.
    let mut changed = a.clone();
    changed.confidence = dec!(81);
    let fresh = rec_at(1, "NVDA", Action::Buy, dec!(90), dec!(5), dec!(130), t(2));
    match s.import(&[fresh.clone(), changed.clone()]).await {
        Err(ImportError::Conflicts(v)) => {
            assert_eq!(v.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1])
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let loaded = s.load_enter_market(1, t(-10)).await.unwrap();
    assert_eq!(loaded.recommendations.len(), 2, "NVDA must not be stored");
    // Within one batch as well.
    assert!(matches!(
        s.import(&[fresh.clone(), {
            let mut f = fresh.clone();
            f.expected_profit_percent = dec!(6);
            f
        }],)
            .await,
        Err(ImportError::Conflicts(_))
    ));

    // Stored values come back exactly (decimals, times).
    let got = &loaded
        .recommendations
        .iter()
        .find(|r| r.symbol == "MSFT")
        .unwrap()
        .rec;
    assert_eq!(got, &b);
    // HOLD is not loaded for enter_market; the window is honoured.
    s.import(&[rec_at(
        1,
        "HOLDME",
        Action::Hold,
        dec!(80),
        dec!(10),
        dec!(100),
        t(3),
    )])
    .await
    .unwrap();
    assert_eq!(
        s.load_enter_market(1, t(-10))
            .await
            .unwrap()
            .recommendations
            .len(),
        2
    );
    assert_eq!(
        s.load_enter_market(1, t(1))
            .await
            .unwrap()
            .recommendations
            .len(),
        1
    );
}
both!(import_is_idempotent_and_all_or_nothing);

async fn quotes_newest_by_time_wins(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = store_with_paper(&db, dec!(1000)).await;
    s.save_quotes("paper", &[quote("AAPL", dec!(101), t(10))])
        .await
        .unwrap();
    s.save_quotes("paper", &[quote("AAPL", dec!(99), t(5))])
        .await
        .unwrap();
    assert_eq!(quotes_of(&s).await["AAPL"], dec!(101));
    // Within one batch too.
    s.save_quotes(
        "paper",
        &[
            quote("AAPL", dec!(102), t(20)),
            quote("AAPL", dec!(100), t(15)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(quotes_of(&s).await["AAPL"], dec!(102));
}
both!(quotes_newest_by_time_wins);

async fn one_active_position_per_expert_and_symbol(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let (txn, order) = s.open_position(&position(1, "AAPL")).await.unwrap();
    assert_eq!(txn.status, TransactionStatus::Waiting);
    assert_eq!(order.status, OrderStatus::Submitting);
    assert_eq!(
        order.client_order_id,
        format!("tw-{}-{}-entry", s.installation().as_str(), txn.id)
    );
    match s.open_position(&position(1, "AAPL")).await {
        Err(StoreError::DuplicatePosition { existing, .. }) => {
            assert_eq!(existing, Some((txn.id, TransactionStatus::Waiting)))
        }
        other => panic!("expected DuplicatePosition, got {other:?}"),
    }
    // Another expert, or another symbol, is fine.
    s.open_position(&position(2, "AAPL")).await.unwrap();
    s.open_position(&position(1, "MSFT")).await.unwrap();
    // Once the entry is refused the slot is free again.
    let mut rejected = answer(&order.client_order_id, OrderStatus::Rejected, dec!(0), None);
    rejected.reason = Some("no".into());
    let o = s.apply_broker_order(order.id, &rejected).await.unwrap();
    assert_eq!(o.status, OrderStatus::Rejected);
    let all = s
        .transactions(&ListFilter {
            expert_id: Some(1),
            status: Some("CLOSED".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(
        all[0]
            .close_reason
            .as_deref()
            .unwrap()
            .starts_with("entry_orders_terminal_no_execution")
    );
    s.open_position(&position(1, "AAPL")).await.unwrap();
}
both!(one_active_position_per_expert_and_symbol);

async fn live_positions_of_several_accounts_in_one_read(kind: DbKind) {
    // More transactions than one query of their orders takes (500): catches orders lost or
    // repeated across chunks, or given to another account's positions.
    use tradewarden_engine::ports::LifecycleStore;
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let mut news: Vec<NewPosition> = (0..501).map(|i| position(1, &format!("S{i}"))).collect();
    for symbol in ["A", "B"] {
        news.push(NewPosition {
            account: "other".into(),
            ..position(2, symbol)
        });
    }
    for stored in s.open_positions(&news, &[]).await.unwrap() {
        stored.unwrap();
    }
    let both = ["paper".to_string(), "other".to_string()];
    let live = s.live_positions(&both).await.unwrap();
    assert_eq!(live.len(), 503);
    assert!(
        live.windows(2)
            .all(|w| w[0].transaction.id < w[1].transaction.id)
    );
    for p in &live {
        assert_eq!(p.orders.len(), 1, "{:?}", p.transaction);
        assert_eq!(p.orders[0].transaction_id, p.transaction.id);
        assert_eq!(p.orders[0].account, p.transaction.account);
    }
    let other = s.live_positions(&both[1..]).await.unwrap();
    let symbols: Vec<&str> = other
        .iter()
        .map(|p| p.transaction.symbol.as_str())
        .collect();
    assert_eq!(symbols, ["A", "B"]);
    assert!(s.live_positions(&[]).await.unwrap().is_empty());
}
both!(live_positions_of_several_accounts_in_one_read);

async fn broker_answers_go_through_the_transition_table(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let (txn, order) = s.open_position(&position(1, "AAPL")).await.unwrap();
    assert_eq!(s.orders_in_flight(None).await.unwrap().len(), 1);
    assert_eq!(s.orders_in_flight(Some(2)).await.unwrap().len(), 0);
    let filled = s
        .apply_broker_order(
            order.id,
            &answer(
                &order.client_order_id,
                OrderStatus::Filled,
                dec!(10),
                Some(dec!(100.5)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.avg_fill_price, Some(dec!(100.5)));
    assert_eq!(filled.broker_order_id.as_deref(), Some("b-1"));
    let t1 = s.active_transaction(1, "AAPL").await.unwrap().unwrap();
    assert_eq!(
        (t1.id, t1.status, t1.open_price, t1.opened_at),
        (
            txn.id,
            TransactionStatus::Opened,
            Some(dec!(100.5)),
            Some(t(5))
        )
    );
    assert!(s.orders_in_flight(None).await.unwrap().is_empty());
    // A stale answer cannot move a filled order back.
    let stale = s
        .apply_broker_order(
            order.id,
            &answer(&order.client_order_id, OrderStatus::Accepted, dec!(0), None),
        )
        .await
        .unwrap();
    assert_eq!(stale.status, OrderStatus::Filled);
    assert_eq!(s.held_quantities("paper").await.unwrap()["AAPL"], dec!(10));
}
both!(broker_answers_go_through_the_transition_table);

fn req(coid: &str, side: Side, qty: Decimal) -> OrderRequest {
    OrderRequest {
        client_order_id: coid.into(),
        symbol: "AAPL".into(),
        side,
        order_type: OrderType::Market,
        quantity: qty,
        limit_price: None,
        stop_price: None,
        oco_group: None,
        attached_exits: None,
    }
}

/// One order through the paper broker on this store, at `at`.
async fn exec1(
    s: &std::sync::Arc<SqlStore>,
    order: &OrderRequest,
    at: DateTime<Utc>,
) -> Result<BrokerOrder, BrokerError> {
    paper_at(s, at).submit(order).await
}

/// The paper broker of account `paper` on this store, its clock standing at `at`.
fn paper_at(s: &std::sync::Arc<SqlStore>, at: DateTime<Utc>) -> PaperBroker {
    PaperBroker::new("paper", s.clone(), ManualClock::at(at))
}

async fn paper_ledger_is_strict_and_persistent(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = store_with_paper(&db, dec!(1000)).await;
    // No quote: rejected with a reason.
    match exec1(&s, &req("c1", Side::Buy, dec!(1)), t(0)).await {
        Err(BrokerError::Rejected(r)) => assert!(r.contains("no quote"), "{r}"),
        other => panic!("{other:?}"),
    }
    // The rejected id is spent: a real broker refuses a reused client_order_id too.
    assert!(matches!(
        exec1(&s, &req("c1", Side::Buy, dec!(1)), t(0)).await,
        Err(BrokerError::DuplicateClientOrderId(_))
    ));
    s.save_quotes("paper", &[quote("AAPL", dec!(100), t(0))])
        .await
        .unwrap();
    let a = exec1(&s, &req("c2", Side::Buy, dec!(7)), t(1))
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.filled_quantity, a.avg_fill_price),
        (OrderStatus::Filled, dec!(7), Some(dec!(100)))
    );
    assert!(matches!(
        exec1(&s, &req("c2", Side::Buy, dec!(1)), t(1)).await,
        Err(BrokerError::DuplicateClientOrderId(_))
    ));
    match exec1(&s, &req("c3", Side::Buy, dec!(4)), t(2)).await {
        Err(BrokerError::Rejected(r)) => assert!(r.contains("insufficient cash"), "{r}"),
        other => panic!("{other:?}"),
    }
    let st = s
        .load_book("paper", BookScope::Holdings)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.cash, dec!(300));
    assert_eq!(st.positions.len(), 1);
    assert_eq!(st.positions["AAPL"].quantity, dec!(7));
    // Deciding a batch reads only its symbols' positions and quotes: none for no orders.
    let deciding = s
        .load_book("paper", BookScope::Trading(&[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deciding.cash, dec!(300));
    assert!(deciding.positions.is_empty() && deciding.quotes.is_empty());
    let found = s.load_paper_order("paper", "c2").await.unwrap().unwrap();
    assert_eq!(found.broker_order_id, a.broker_order_id);
    assert_eq!(
        s.load_paper_order("paper", "c3")
            .await
            .unwrap()
            .unwrap()
            .status,
        OrderStatus::Rejected
    );
    assert!(
        s.load_paper_order("paper", "never")
            .await
            .unwrap()
            .is_none()
    );
    // A batch is decided in order against the book the earlier orders left: the second buy
    // finds the cash spent, the repeated id is refused, and nothing else changes.
    let batch = [
        req("d1", Side::Buy, dec!(2)),
        req("d2", Side::Buy, dec!(2)),
        req("d1", Side::Sell, dec!(1)),
    ];
    let answers = paper_at(&s, t(3)).submit_batch(&batch).await;
    assert_eq!(answers[0].as_ref().unwrap().status, OrderStatus::Filled);
    assert!(
        matches!(&answers[1], Err(BrokerError::Rejected(r)) if r.contains("insufficient cash")),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[2], Err(BrokerError::DuplicateClientOrderId(_))),
        "{answers:?}"
    );
    let st = s
        .load_book("paper", BookScope::Holdings)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (st.cash, st.positions["AAPL"].quantity),
        (dec!(100), dec!(9))
    );
    // Starting cash is only applied once: a restart with another config keeps the state.
    s.open_paper_accounts(&[("paper".into(), dec!(5))])
        .await
        .unwrap();
    assert_eq!(
        s.load_book("paper", BookScope::Holdings)
            .await
            .unwrap()
            .unwrap()
            .cash,
        dec!(100)
    );
}
both!(paper_ledger_is_strict_and_persistent);

/// Whether `owner`, known by nothing else, takes `key` at `at`.
async fn acquire(s: &SqlStore, key: &str, owner: &str, at: DateTime<Utc>) -> bool {
    let ttl = Duration::from_secs(30);
    let holder = LeaseHolder::anonymous(owner);
    let got = s.try_acquire_lease(key, &holder, at, ttl).await.unwrap();
    got == LeaseAttempt::Acquired
}

async fn leases_expire_renew_and_release(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let ttl = Duration::from_secs(30);
    let k = "expert_1_usecase_enter_market";
    assert!(acquire(&s, k, "a", t(0)).await);
    assert!(!acquire(&s, k, "b", t(29)).await, "held until it expires");
    assert!(acquire(&s, k, "a", t(1)).await, "re-entrant for its owner");
    assert!(s.renew_lease(k, "a", t(20), ttl).await.unwrap());
    assert!(
        !acquire(&s, k, "b", t(45)).await,
        "renewal extended it to t+50"
    );
    assert!(
        acquire(&s, k, "b", t(51)).await,
        "a dead holder's lease expires"
    );
    assert!(
        !s.renew_lease(k, "a", t(52), ttl).await.unwrap(),
        "the old holder learns it lost the lease"
    );
    s.release_lease(k, "a").await.unwrap();
    assert!(
        !acquire(&s, k, "c", t(53)).await,
        "only the owner can release"
    );
    s.release_lease(k, "b").await.unwrap();
    assert!(acquire(&s, k, "c", t(53)).await);
    // Keys are independent.
    assert!(acquire(&s, "expert_2_usecase_enter_market", "a", t(53)).await);
    // Shutdown gives back every lease of one owner, and only those.
    assert!(acquire(&s, "expert_3_usecase_enter_market", "a", t(53)).await);
    assert_eq!(s.release_leases_of("a").await.unwrap(), 2);
    assert!(!acquire(&s, k, "a", t(54)).await, "c's lease stays");
    assert!(acquire(&s, "expert_2_usecase_enter_market", "b", t(54)).await);
}
both!(leases_expire_renew_and_release);

async fn a_lease_says_who_holds_it_and_only_one_contender_takes_it_over(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let ttl = Duration::from_secs(30);
    let k = "expert_1_usecase_enter_market";
    let dead = LeaseHolder {
        owner: "h-1-x".into(),
        host: Some(HostIdentity {
            host: "h".into(),
            boot_id: Some("boot".into()),
            pid_namespace: Some("pid:[1]".into()),
        }),
        pid: Some(4_000_000),
        start_time: Some(u64::from(u32::MAX) + 7),
        liveness_key: Some(i64::MAX - 3),
    };
    let got = s.try_acquire_lease(k, &dead, t(0), ttl).await.unwrap();
    assert_eq!(got, LeaseAttempt::Acquired);
    // The holder's identity comes back whole, for the contender to judge.
    let b = LeaseHolder::anonymous("b");
    let got = s.try_acquire_lease(k, &b, t(1), ttl).await.unwrap();
    assert_eq!(got, LeaseAttempt::Held(Some(dead.clone())));
    // Two contenders found it dead: the take-over is conditional on the old owner, so one
    // wins. Catches: an unconditional take-over (both would "win" and run side by side).
    let c = LeaseHolder::anonymous("c");
    assert!(
        s.take_over_lease(k, &dead.owner, &b, t(1), ttl)
            .await
            .unwrap()
    );
    assert!(
        !s.take_over_lease(k, &dead.owner, &c, t(1), ttl)
            .await
            .unwrap()
    );
    assert_eq!(
        s.try_acquire_lease(k, &c, t(2), ttl).await.unwrap(),
        LeaseAttempt::Held(Some(b.clone())),
        "b holds it now, with b's identity"
    );
    assert!(s.renew_lease(k, "b", t(3), ttl).await.unwrap());
}
both!(a_lease_says_who_holds_it_and_only_one_contender_takes_it_over);

#[tokio::test]
async fn sqlite_gives_no_session_signal() {
    let db = TestDb::sqlite();
    let s = db.store().await;
    assert_eq!(s.holder_connected(42).await.unwrap(), None);
    assert!(s.hold_liveness().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tells_whether_a_liveness_lock_is_held() {
    let db = TestDb::postgres().await;
    let s = db.store().await;
    let lock = s
        .hold_liveness()
        .await
        .unwrap()
        .expect("PostgreSQL has the signal");
    let key = lock.key();
    assert!(key >= 0);
    assert_eq!(s.holder_connected(key).await.unwrap(), Some(true));
    // Probing does not take the lock away from its holder.
    assert_eq!(s.holder_connected(key).await.unwrap(), Some(true));
    let other = s.hold_liveness().await.unwrap().unwrap();
    assert_ne!(other.key(), key, "one key per process (here: per lock)");
    // The holder's connection ends, as with its process: the server frees the lock. It does
    // so when it notices the closed connection, so wait for it (bounded).
    drop(lock);
    let mut connected = Some(true);
    for _ in 0..100 {
        connected = s.holder_connected(key).await.unwrap();
        if connected == Some(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connected, Some(false));
    assert_eq!(s.holder_connected(other.key()).await.unwrap(), Some(true));
}

async fn listings_filter_and_runs_are_recorded(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    s.open_position(&position(1, "AAPL")).await.unwrap();
    s.open_position(&position(2, "AAPL")).await.unwrap();
    let f = |e: Option<i64>, st: Option<&str>| ListFilter {
        expert_id: e,
        status: st.map(Into::into),
        ..Default::default()
    };
    assert_eq!(s.transactions(&f(None, None)).await.unwrap().len(), 2);
    assert_eq!(s.transactions(&f(Some(2), None)).await.unwrap().len(), 1);
    assert_eq!(
        s.transactions(&f(None, Some("OPENED")))
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.orders(&f(Some(1), Some("submitting")))
            .await
            .unwrap()
            .len(),
        1
    );
    let record = RunRecord {
        expert_id: Some(1),
        use_case: Some(tradewarden_domain::UseCase::EnterMarket),
        trigger: Some(tradewarden_engine::RunTrigger::Cli),
        counts: None,
        lock_key: "expert_1_usecase_enter_market".into(),
        owner: "me".into(),
        status: tradewarden_engine::RunStatus::Processed,
        error: None,
        started_at: t(0),
        finished_at: t(1),
    };
    s.finish_runs(&FinishedRuns {
        runs: std::slice::from_ref(&record),
        ..FinishedRuns::default()
    })
    .await
    .unwrap();
}
both!(listings_filter_and_runs_are_recorded);

async fn a_batch_of_answers_is_applied_per_order(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let opened = s
        .open_positions(
            &[
                position(1, "AAPL"),
                position(1, "MSFT"),
                position(1, "NVDA"),
                position(1, "AAPL"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert!(
        matches!(
            opened[3],
            Err(StoreError::DuplicatePosition {
                existing: Some(_),
                ..
            })
        ),
        "same batch, same slot"
    );
    let orders: Vec<_> = opened[..3]
        .iter()
        .map(|r| r.as_ref().unwrap().1.clone())
        .collect();
    let mut rejected = answer(
        &orders[1].client_order_id,
        OrderStatus::Rejected,
        dec!(0),
        None,
    );
    rejected.reason = Some("no".into());
    let got = s
        .apply_broker_orders(&[
            (
                orders[0].id,
                answer(
                    &orders[0].client_order_id,
                    OrderStatus::Filled,
                    dec!(10),
                    Some(dec!(101)),
                ),
            ),
            (orders[1].id, rejected),
            (
                orders[2].id,
                answer(
                    &orders[2].client_order_id,
                    OrderStatus::Accepted,
                    dec!(0),
                    None,
                ),
            ),
        ])
        .await
        .unwrap();
    let statuses: Vec<_> = got.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Filled,
            OrderStatus::Rejected,
            OrderStatus::Accepted
        ]
    );
    let txns = s.transactions(&ListFilter::default()).await.unwrap();
    let st: Vec<_> = txns
        .iter()
        .map(|t| (t.symbol.as_str(), t.status, t.open_price))
        .collect();
    assert_eq!(
        st,
        [
            ("AAPL", TransactionStatus::Opened, Some(dec!(101))),
            ("MSFT", TransactionStatus::Closed, None),
            ("NVDA", TransactionStatus::Waiting, None)
        ]
    );
    // Stale answers in a batch are ignored, the others applied; the same order twice is
    // applied in order.
    let got = s
        .apply_broker_orders(&[
            (
                orders[0].id,
                answer(
                    &orders[0].client_order_id,
                    OrderStatus::Accepted,
                    dec!(0),
                    None,
                ),
            ),
            (
                orders[2].id,
                answer(
                    &orders[2].client_order_id,
                    OrderStatus::PartiallyFilled,
                    dec!(4),
                    Some(dec!(99)),
                ),
            ),
            (
                orders[2].id,
                answer(
                    &orders[2].client_order_id,
                    OrderStatus::Filled,
                    dec!(10),
                    Some(dec!(99.5)),
                ),
            ),
        ])
        .await
        .unwrap();
    let statuses: Vec<_> = got.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Filled,
            OrderStatus::PartiallyFilled,
            OrderStatus::Filled
        ]
    );
    let nvda = s.active_transaction(1, "NVDA").await.unwrap().unwrap();
    assert_eq!(
        (nvda.status, nvda.quantity, nvda.open_price),
        (TransactionStatus::Opened, dec!(10), Some(dec!(99.5)))
    );
}
both!(a_batch_of_answers_is_applied_per_order);

/// A skip outcome of recommendation `rec`.
fn skip(rec: i64, symbol: &str) -> Outcome {
    Outcome {
        recommendation_id: rec,
        expert_id: 1,
        symbol: symbol.into(),
        use_case: UseCase::EnterMarket,
        outcome: OutcomeKind::RulesNotMet,
        detail: "no rule matched".into(),
        order_id: None,
        decided_at: t(0),
    }
}

async fn outcomes_are_written_with_their_positions_and_completed_by_answers(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let decided = |symbol: &str, rec: i64| NewPosition {
        recommendation_id: Some(rec),
        decision: Some(format!("rule r matched; buy 10 {symbol}")),
        ..position(1, symbol)
    };
    let opened = s
        .open_positions(
            &[decided("AAPL", 1), decided("MSFT", 2), decided("AAPL", 3)],
            &[skip(4, "NVDA")],
        )
        .await
        .unwrap();
    let aapl = opened[0].as_ref().unwrap().1.clone();
    let msft = opened[1].as_ref().unwrap().1.clone();
    let by_rec = |all: Vec<Outcome>| {
        let mut v: Vec<(i64, String, String, Option<i64>)> = all
            .into_iter()
            .map(|o| {
                (
                    o.recommendation_id,
                    o.outcome.to_string(),
                    o.detail,
                    o.order_id,
                )
            })
            .collect();
        v.sort();
        v
    };
    // One commit: the provisional outcomes, the refusal and the skip.
    let written = by_rec(s.outcomes(&ListFilter::default()).await.unwrap());
    let coid = |o: &tradewarden_domain::Order| o.client_order_id.clone();
    assert_eq!(
        written,
        [
            (
                1,
                "ordered".into(),
                format!(
                    "rule r matched; buy 10 AAPL; order {} submitting, awaiting the broker's answer",
                    coid(&aapl)
                ),
                Some(aapl.id)
            ),
            (
                2,
                "ordered".into(),
                format!(
                    "rule r matched; buy 10 MSFT; order {} submitting, awaiting the broker's answer",
                    coid(&msft)
                ),
                Some(msft.id)
            ),
            (
                3,
                "duplicate_position".into(),
                format!(
                    "rule r matched; buy 10 AAPL; refused by the database: existing transaction {} in WAITING status",
                    aapl.transaction_id
                ),
                None
            ),
            (4, "rules_not_met".into(), "no rule matched".into(), None),
        ]
    );
    // Each answer completes its order's outcome, in the answer's transaction.
    let mut rejected = answer(&coid(&msft), OrderStatus::Rejected, dec!(0), None);
    rejected.reason = Some("no cash".into());
    s.apply_broker_orders(&[
        (
            aapl.id,
            answer(&coid(&aapl), OrderStatus::Filled, dec!(10), Some(dec!(101))),
        ),
        (msft.id, rejected),
    ])
    .await
    .unwrap();
    let done = by_rec(s.outcomes(&ListFilter::default()).await.unwrap());
    assert_eq!(done[0].1, "ordered");
    assert_eq!(
        done[0].2,
        format!("rule r matched; buy 10 AAPL; order {} filled", coid(&aapl))
    );
    assert_eq!(done[1].1, "failed");
    assert_eq!(done[1].2, "rule r matched; buy 10 MSFT; broker: rejected");
    assert_eq!(
        done[2..],
        written[2..],
        "the refusal and the skip stay as written"
    );
}
// Catches: outcomes written apart from the positions (none after open_positions), a
// refusal by the index without its outcome, or answers that leave the provisional text.
both!(outcomes_are_written_with_their_positions_and_completed_by_answers);

async fn two_databases_never_give_the_same_client_order_id(kind: DbKind) {
    let (a, b) = (TestDb::new(kind).await, TestDb::new(kind).await);
    let (sa, sb) = (a.store().await, b.store().await);
    let (ta, oa) = sa.open_position(&position(1, "AAPL")).await.unwrap();
    let (tb, ob) = sb.open_position(&position(1, "AAPL")).await.unwrap();
    assert_eq!(
        ta.id, tb.id,
        "both databases start their transactions at the same id"
    );
    assert_ne!(oa.client_order_id, ob.client_order_id);
    for (s, o) in [(&sa, &oa), (&sb, &ob)] {
        assert_eq!(
            o.client_order_id,
            format!(
                "tw-{}-{}-entry",
                s.installation().as_str(),
                o.transaction_id
            )
        );
        assert!(o.client_order_id.len() <= CLIENT_ORDER_ID_MAX_LEN);
    }
    // Written once: reconnecting reads the same id.
    let again = SqlStore::connect(&a.url).await.unwrap();
    assert_eq!(again.installation(), sa.installation());
}
// Catches: a client_order_id without the database's installation id (`tw-1-entry` in both),
// or an installation id generated anew at every connect.
both!(two_databases_never_give_the_same_client_order_id);

async fn symbols_in_flight_are_named_with_why(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let opened = s
        .open_positions(
            &[
                position(1, "AAPL"),
                position(1, "MSFT"),
                position(2, "NVDA"),
                position(1, "TSLA"),
            ],
            &[],
        )
        .await
        .unwrap();
    let order = |i: usize| opened[i].as_ref().unwrap().1.clone();
    let fill = |i: usize| {
        (
            order(i).id,
            answer(
                &order(i).client_order_id,
                OrderStatus::Filled,
                dec!(10),
                Some(dec!(100)),
            ),
        )
    };
    let accepted = (
        order(3).id,
        answer(
            &order(3).client_order_id,
            OrderStatus::Accepted,
            dec!(0),
            None,
        ),
    );
    // AAPL stays submitting, TSLA rests accepted; MSFT and NVDA filled (OPENED).
    s.apply_broker_orders(&[fill(1), fill(2), accepted])
        .await
        .unwrap();
    let got = s.symbols_in_flight("paper", &[]).await.unwrap();
    let want = [
        ("AAPL".to_string(), InFlightReason::OrderInFlight),
        ("TSLA".to_string(), InFlightReason::OrderInFlight),
    ];
    assert_eq!(got, want.clone().into());
    let got = s.symbols_in_flight("paper", &[1]).await.unwrap();
    let mut with_run: std::collections::BTreeMap<_, _> = want.into();
    with_run.insert("MSFT".into(), InFlightReason::RunInProgress);
    assert_eq!(got, with_run, "expert 1's run may be storing MSFT's fill");
    assert!(
        s.symbols_in_flight("other", &[1, 2])
            .await
            .unwrap()
            .is_empty()
    );
}
// Catches: an in-flight order or a busy expert's position left in the comparison, or
// another account's symbols mixed in.
both!(symbols_in_flight_are_named_with_why);
