//! The harness itself works on both databases.

mod common;

use common::*;
use rust_decimal_macros::dec;
use tradewarden_domain::Action;
use tradewarden_engine::RunStatus;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};

async fn one_buy_is_ordered(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    assert_eq!(r.counts.ordered, 1);
    assert_eq!(r.orders[0].quantity, dec!(100));
}

#[tokio::test]
async fn sqlite_one_buy_is_ordered() {
    one_buy_is_ordered(DbKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_one_buy_is_ordered() {
    one_buy_is_ordered(DbKind::Postgres).await;
}
