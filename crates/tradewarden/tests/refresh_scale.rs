//! Refresh at the scale of issue 9's benchmark: an account with 10,000 open positions and
//! their legs (SQLite and PostgreSQL). The first refresh fires 20,000 legs, the second
//! changes nothing; both print how long they took (a figure for the README, never
//! asserted). Ignored by default (it takes a while in a debug build):
//! `cargo test -p tradewarden --release --test refresh_scale -- --ignored --nocapture`.

mod common;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use common::*;
use rust_decimal_macros::dec;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::lifecycle::closing_side;
use tradewarden_domain::{OrderRole, OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{
    AcceptsQuotes, LifecycleStore, LifecycleWrite, NewExitOrder, NewPosition, PositionStore, Quote,
};
use tradewarden_engine::{Broker, OrderRequest, SystemClock};

const POSITIONS: usize = 10_000;

async fn ten_thousand_positions(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut s = settings(vec![expert(1)], dec!(100000000));
    s.lock_timeout = std::time::Duration::from_secs(5);
    let h = harness(&db, s, plain).await;
    let paper = PaperBroker::new("paper", h.store.clone(), Arc::new(SystemClock));
    let now = Utc::now();
    let symbols: Vec<String> = (0..POSITIONS).map(|i| format!("S{i:05}")).collect();
    let quotes: Vec<Quote> = symbols
        .iter()
        .map(|s| Quote {
            symbol: s.clone(),
            price: dec!(100),
            at: now,
        })
        .collect();
    paper.record_quotes(&quotes).await.unwrap();
    let new: Vec<NewPosition> = symbols
        .iter()
        .map(|s| NewPosition {
            expert_id: 1,
            account: "paper".into(),
            symbol: s.clone(),
            side: Side::Buy,
            quantity: dec!(1),
            reference_price: dec!(100),
            order_type: OrderType::Market,
            limit_price: None,
            take_profit: None,
            stop_loss: None,
            recommendation_id: None,
            created_at: now,
            decision: None,
        })
        .collect();
    let opened: Vec<_> = h
        .store
        .open_positions(&new, &[])
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let requests: Vec<OrderRequest> = opened
        .iter()
        .map(|(_, o)| OrderRequest::for_order(o))
        .collect();
    let answers: Vec<_> = paper
        .submit_batch(&requests)
        .await
        .into_iter()
        .zip(&opened)
        .map(|(a, (_, o))| (o.id, a.unwrap()))
        .collect();
    h.store.apply_broker_orders(&answers).await.unwrap();
    let legs: Vec<NewExitOrder> = opened
        .iter()
        .flat_map(|(t, entry)| {
            let leg = |role, order_type, limit_price, stop_price| NewExitOrder {
                transaction_id: t.id,
                expert_id: 1,
                account: "paper".into(),
                symbol: t.symbol.clone(),
                side: closing_side(Side::Buy),
                role,
                order_type,
                quantity: dec!(1),
                limit_price,
                stop_price,
                generation: 1,
                status: OrderStatus::WaitingTrigger,
                parent_order_id: Some(entry.id),
                trigger_status: Some(OrderStatus::Filled),
                created_at: now,
            };
            [
                leg(
                    OrderRole::TakeProfit,
                    OrderType::Limit,
                    Some(dec!(110)),
                    None,
                ),
                leg(OrderRole::StopLoss, OrderType::Stop, None, Some(dec!(93))),
            ]
        })
        .collect();
    h.store
        .write_lifecycle(&LifecycleWrite {
            inserted: legs,
            at: now,
            ..LifecycleWrite::default()
        })
        .await
        .unwrap();

    let started = Instant::now();
    let first = h.manager.refresh().await.unwrap();
    let firing = started.elapsed();
    assert_eq!(first.legs_fired, 2 * POSITIONS);
    let started = Instant::now();
    let second = h.manager.refresh().await.unwrap();
    let steady = started.elapsed();
    assert_eq!(
        (
            second.orders_updated,
            second.legs_fired,
            second.legs_canceled
        ),
        (0, 0, 0)
    );
    println!(
        "{kind:?}: refresh of {POSITIONS} open positions: {} ms firing {} legs, {} ms with nothing to do",
        firing.as_millis(),
        first.legs_fired,
        steady.as_millis()
    );
}

#[tokio::test]
#[ignore = "scale figure: run with --release -- --ignored --nocapture"]
async fn sqlite_ten_thousand_positions() {
    ten_thousand_positions(DbKind::Sqlite).await;
}

#[tokio::test]
#[ignore = "scale figure: run with --release -- --ignored --nocapture"]
async fn postgres_ten_thousand_positions() {
    ten_thousand_positions(DbKind::Postgres).await;
}
