//! What an enter_market run decides, through the engine on the real store and paper broker:
//! the sizing worked example (DESIGN.md §5 step 5) and one outcome record for every
//! recommendation a run considers (I5, B4), on SQLite and PostgreSQL.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.

mod common;

use std::collections::BTreeMap;

use chrono::Utc;
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden_domain::rules::{Rule, RuleAction, Ruleset, Trigger, TriggerSpec};
use tradewarden_domain::{Action, OrderStatus, OrderType, OutcomeKind, Side, TransactionStatus};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::ports::{ListFilter, NewPosition, Quote};
use tradewarden_engine::{OrderRequest, RunStatus};

async fn sizing_worked_example(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut e = expert(1);
    e.max_virtual_equity_per_instrument_percent = dec!(40);
    let h = harness(&db, settings(vec![e], dec!(100000)), plain).await;
    // Priority = expected_profit_percent × confidence / 100: AAPL 15 > MSFT 13.3 > GOOGL 12,
    // while expected profit alone ranks GOOGL (20) first: sizing must follow priority.
    h.manager
        .import(&[
            rec(1, "AAPL", Action::Buy, dec!(100), dec!(15), dec!(100)),
            rec(1, "MSFT", Action::Buy, dec!(95), dec!(14), dec!(100)),
            rec(1, "GOOGL", Action::Buy, dec!(60), dec!(20), dec!(100)),
        ])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    let got: BTreeMap<String, Decimal> = r
        .orders
        .iter()
        .map(|o| (o.symbol.clone(), o.quantity))
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("AAPL".into(), dec!(400)),
            ("MSFT".into(), dec!(400)),
            ("GOOGL".into(), dec!(200)),
        ])
    );
    assert!(r.orders.iter().all(|o| o.status == OrderStatus::Filled));
}

// Catches: sizing without the per-instrument cap (AAPL would get 1000 shares), or funding
// in expected-profit order instead of priority order (GOOGL 400, MSFT 200).
#[tokio::test]
async fn sqlite_sizing_worked_example_400_400_200() {
    sizing_worked_example(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_sizing_worked_example_400_400_200() {
    sizing_worked_example(DbKind::Postgres).await;
}

/// confident-buy plus `bearish → sell`, so a SELL recommendation matches a rule.
fn buy_or_sell() -> Ruleset {
    let flag = |e: &str| {
        Trigger::from_spec(&TriggerSpec {
            event: e.into(),
            op: None,
            value: None,
        })
        .unwrap()
    };
    let mut rs = confident_buy();
    rs.name = "buy-or-sell".into();
    rs.rules.push(Rule {
        name: "bearish".into(),
        continue_processing: false,
        triggers: vec![flag("bearish")],
        actions: vec![RuleAction::Sell],
    });
    rs
}

async fn every_considered_recommendation_gets_one_outcome(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut e = expert(1);
    e.enter_market_ruleset = Some("buy-or-sell".into());
    assert!(!e.enable_sell);
    let mut s = settings(vec![e], dec!(100000));
    s.rulesets.insert("buy-or-sell".into(), buy_or_sell());
    let h = harness(&db, s, plain).await;

    // NVDA is held: an entry resting at the paper broker, nothing filled (WAITING).
    h.store
        .save_quotes(
            "paper",
            &[Quote {
                symbol: "NVDA".into(),
                price: dec!(100),
                at: Utc::now(),
            }],
        )
        .await
        .unwrap();
    let (held, entry) = h
        .store
        .open_position(&NewPosition {
            expert_id: 1,
            account: "paper".into(),
            symbol: "NVDA".into(),
            side: Side::Buy,
            quantity: dec!(1),
            reference_price: dec!(100),
            order_type: OrderType::Limit,
            limit_price: Some(dec!(50)),
            take_profit: None,
            stop_loss: None,
            recommendation_id: None,
            created_at: Utc::now(),
            decision: None,
        })
        .await
        .unwrap();
    let answer = h
        .paper
        .submit(&OrderRequest::for_order(&entry))
        .await
        .unwrap();
    h.store.apply_broker_order(entry.id, &answer).await.unwrap();
    assert_eq!(
        h.store
            .active_transaction(1, "NVDA")
            .await
            .unwrap()
            .map(|t| t.status),
        Some(TransactionStatus::Waiting)
    );

    h.manager
        .import(&[
            rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)), // ordered
            rec(1, "MSFT", Action::Buy, dec!(30), dec!(9), dec!(100)),  // rules_not_met
            rec(1, "TSLA", Action::Sell, dec!(80), dec!(8), dec!(100)), // not_permitted
            rec(1, "NVDA", Action::Buy, dec!(80), dec!(7), dec!(100)),  // duplicate_position
            // 10 % of the balance is the per-instrument cap: one share is above it.
            rec(1, "BRK", Action::Buy, dec!(80), dec!(6), dec!(50000)), // unfunded
        ])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
    assert_eq!(r.counts.considered, 5);

    let want = [
        ("AAPL", OutcomeKind::Ordered),
        ("MSFT", OutcomeKind::RulesNotMet),
        ("TSLA", OutcomeKind::NotPermitted),
        ("NVDA", OutcomeKind::DuplicatePosition),
        ("BRK", OutcomeKind::Unfunded),
    ];
    let recs = h
        .store
        .load_enter_market(1, Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap()
        .recommendations;
    assert_eq!(recs.len(), 5);
    for (symbol, kind) in want {
        let rec_id = recs.iter().find(|r| r.symbol == symbol).unwrap().id;
        let outcomes = h
            .store
            .outcomes(&ListFilter {
                recommendation_id: Some(rec_id),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            outcomes.len(),
            1,
            "{symbol}: exactly one outcome: {outcomes:#?}"
        );
        assert_eq!(outcomes[0].outcome, kind, "{symbol}: {outcomes:?}");
        assert_eq!(outcomes[0].symbol, symbol);
        assert_eq!(
            outcomes[0].order_id.is_some(),
            kind == OutcomeKind::Ordered,
            "only an ordered outcome points at its order: {outcomes:?}"
        );
    }
    let nvda = h
        .store
        .outcomes(&ListFilter {
            expert_id: Some(1),
            status: Some("duplicate_position".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert!(
        nvda[0]
            .detail
            .contains(&format!("existing transaction {} in WAITING", held.id)),
        "{nvda:?}"
    );
    let all = h
        .store
        .outcomes(&ListFilter {
            expert_id: Some(1),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 5, "no outcome beyond the five: {all:#?}");
    let c = r.counts;
    assert_eq!(
        (
            c.ordered,
            c.rules_not_met,
            c.not_permitted,
            c.duplicate_position,
            c.unfunded
        ),
        (1, 1, 1, 1, 1)
    );
}

// Catches: any decision path that forgets its outcome record (a count of 0) or records it
// twice (e.g. a sizing placeholder kept next to the final decision: a count of 2).
#[tokio::test]
async fn sqlite_every_considered_recommendation_gets_one_outcome() {
    every_considered_recommendation_gets_one_outcome(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_every_considered_recommendation_gets_one_outcome() {
    every_considered_recommendation_gets_one_outcome(DbKind::Postgres).await;
}
