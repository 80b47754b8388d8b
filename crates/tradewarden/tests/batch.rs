//! `process --all` as one batch (issue 8): the store operations a batch shares (its leases
//! taken in one statement; every expert's inputs in one query per kind; outcome completions,
//! run records and lease releases in one transaction) on SQLite and PostgreSQL alike, and a
//! batch on the real store that runs the experts it could lock and skips the one another
//! process holds.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use rust_decimal_macros::dec;
use tradewarden_domain::outcome::OutcomeKind;
use tradewarden_domain::{Action, OrderType, Side};
use tradewarden_engine::ports::{
    FinishedRuns, LeaseHolder, LeaseRelease, ListFilter, NewPosition, OutcomeCompletion, RunRecord,
};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{RunStatus, SystemClock};
use tradewarden_store::SqlStore;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

fn key(expert_id: i64) -> String {
    format!("expert_{expert_id}_usecase_enter_market")
}

/// Every lease row: (key, owner, holder_host), by key.
async fn leases(store: &SqlStore) -> Vec<(String, String, Option<String>)> {
    let rows = store
        .pool()
        .fetch(
            "SELECT key, owner, holder_host FROM leases ORDER BY key",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.text("key").unwrap(),
                r.text("owner").unwrap(),
                r.opt_text("holder_host").unwrap(),
            )
        })
        .collect()
}

/// Every run row: (lock_key, owner, status), by id.
async fn runs(store: &SqlStore) -> Vec<(String, String, String)> {
    let rows = store
        .pool()
        .fetch("SELECT lock_key, owner, status FROM runs ORDER BY id", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.text("lock_key").unwrap(),
                r.text("owner").unwrap(),
                r.text("status").unwrap(),
            )
        })
        .collect()
}

fn run(expert_id: i64, owner: &str) -> RunRecord {
    RunRecord {
        expert_id: Some(expert_id),
        use_case: Some(tradewarden_domain::UseCase::EnterMarket),
        trigger: Some(tradewarden_engine::RunTrigger::Cli),
        counts: Some(tradewarden_engine::Counts::default()),
        lock_key: key(expert_id),
        owner: owner.into(),
        status: RunStatus::Processed,
        error: None,
        started_at: t(10),
        finished_at: t(11),
    }
}

async fn a_batchs_leases_are_taken_together_and_given_back_with_its_runs(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let ttl = Duration::from_secs(30);
    let me = LeaseHolder {
        host: Some(tradewarden_engine::HostIdentity {
            host: "here".into(),
            boot_id: None,
            pid_namespace: None,
        }),
        ..LeaseHolder::anonymous("me")
    };
    let other = LeaseHolder::anonymous("other");
    s.try_acquire_lease(&key(2), &other, t(0), ttl)
        .await
        .unwrap();
    s.try_acquire_lease(&key(3), &other, t(-60), ttl)
        .await
        .unwrap();
    s.try_acquire_lease(&key(4), &me, t(0), ttl).await.unwrap();
    // 1 is free, 2 held by another, 3 expired, 4 already ours.
    let keys: Vec<String> = (1..=4).map(key).collect();
    let mut taken = s.try_acquire_leases(&keys, &me, t(10), ttl).await.unwrap();
    taken.sort();
    // Catches: a batch statement that takes a held lease, or misses an expired or own one.
    assert_eq!(taken, [key(1), key(3), key(4)]);
    let mine = |k: i64| (key(k), "me".to_string(), Some("here".to_string()));
    assert_eq!(
        leases(&s).await,
        [mine(1), (key(2), "other".into(), None), mine(3), mine(4)],
        "the holder's identity is written with each lease"
    );

    // An entry whose answer never came: its outcome is completed with the runs.
    let (_, order) = s
        .open_position(&NewPosition {
            expert_id: 1,
            account: "paper".into(),
            symbol: "AAPL".into(),
            side: Side::Buy,
            quantity: dec!(10),
            reference_price: dec!(100),
            order_type: OrderType::Market,
            limit_price: None,
            take_profit: None,
            stop_loss: None,
            recommendation_id: Some(7),
            created_at: t(10),
            decision: Some("rule r matched; sized BUY 10".into()),
        })
        .await
        .unwrap();
    let completion = OutcomeCompletion {
        order_id: order.id,
        outcome: OutcomeKind::Failed,
        answer: "; no broker answer".into(),
    };
    let records = [run(1, "me"), run(3, "me")];
    let released = [key(1), key(2), key(3)];
    s.finish_runs(&FinishedRuns {
        completions: std::slice::from_ref(&completion),
        runs: &records,
        leases: LeaseRelease {
            owner: "me",
            keys: &released,
        },
    })
    .await
    .unwrap();
    // Catches: releasing a lease another owner holds, or keeping ours.
    assert_eq!(
        leases(&s).await,
        [(key(2), "other".into(), None), mine(4)],
        "ours given back, another's kept, one not named kept"
    );
    assert_eq!(
        runs(&s).await,
        [
            (key(1), "me".into(), "processed".into()),
            (key(3), "me".into(), "processed".into())
        ]
    );
    let outcomes = s.outcomes(&ListFilter::default()).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].outcome, OutcomeKind::Failed);
    assert_eq!(
        outcomes[0].detail,
        "rule r matched; sized BUY 10; no broker answer"
    );
}
both!(a_batchs_leases_are_taken_together_and_given_back_with_its_runs);

async fn every_experts_inputs_load_in_one_call(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let s = db.store().await;
    let now = Utc::now();
    let recs = [
        rec_at(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100), now),
        rec_at(1, "MSFT", Action::Hold, dec!(80), dec!(10), dec!(100), now),
        rec_at(2, "AAPL", Action::Sell, dec!(80), dec!(10), dec!(100), now),
        rec_at(
            2,
            "OLD",
            Action::Buy,
            dec!(80),
            dec!(10),
            dec!(100),
            now - chrono::Duration::days(3),
        ),
        rec_at(4, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100), now),
    ];
    s.import(&recs).await.unwrap();
    let position = |expert_id: i64, symbol: &str| NewPosition {
        expert_id,
        account: "paper".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        quantity: dec!(5),
        reference_price: dec!(90),
        order_type: OrderType::Market,
        limit_price: None,
        take_profit: None,
        stop_loss: None,
        recommendation_id: None,
        created_at: now,
        decision: None,
    };
    s.open_positions(
        &[
            position(1, "NVDA"),
            position(3, "TSLA"),
            position(4, "AAPL"),
        ],
        &[],
    )
    .await
    .unwrap();
    let since = now - chrono::Duration::days(1);
    let loaded = s
        .load_enter_market_batch(&[1, 2, 3, 5], since)
        .await
        .unwrap();
    let mut experts: Vec<i64> = loaded.keys().copied().collect();
    experts.sort();
    // Catches: a load that mixes experts up, takes one not asked for (4) or drops one.
    assert_eq!(experts, [1, 2, 3], "5 has nothing; 4 was not asked for");
    let symbols = |id: i64| -> (Vec<String>, Vec<String>) {
        let d = &loaded[&id];
        (
            d.recommendations.iter().map(|r| r.symbol.clone()).collect(),
            d.positions.iter().map(|p| p.symbol.clone()).collect(),
        )
    };
    assert_eq!(symbols(1), (vec!["AAPL".into()], vec!["NVDA".into()]));
    assert_eq!(symbols(2), (vec!["AAPL".into()], vec![]));
    assert_eq!(symbols(3), (vec![], vec!["TSLA".into()]));
    assert_eq!(loaded[&1].positions[0].price, dec!(90));
    // The one-expert load is the batch of one.
    let one = s.load_enter_market(1, since).await.unwrap();
    assert_eq!(one.recommendations, loaded[&1].recommendations);
}
both!(every_experts_inputs_load_in_one_call);

async fn the_experts_it_can_lock_run_as_one_batch(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness_with_leases(
        &db,
        settings((1..=3).map(expert).collect(), dec!(1000000)),
        plain,
        "me",
        Duration::from_secs(300),
        std::sync::Arc::new(SystemClock),
    )
    .await;
    let recs: Vec<_> = (1..=3)
        .map(|id| rec(id, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)))
        .collect();
    h.manager.import(&recs).await.unwrap();
    // Another process, on a host nothing can be learnt about, holds expert 2's lease.
    let other = LeaseHolder::anonymous("other");
    h.store
        .try_acquire_lease(&key(2), &other, Utc::now(), Duration::from_secs(300))
        .await
        .unwrap();
    let reports = h
        .manager
        .process_all(None, tradewarden_engine::RunTrigger::Cli)
        .await;
    let statuses: Vec<(i64, RunStatus)> = reports.iter().map(|r| (r.expert_id, r.status)).collect();
    // Catches: a batch that runs an expert whose lease another holds, or skips the others.
    assert_eq!(
        statuses,
        [
            (1, RunStatus::Processed),
            (2, RunStatus::SkippedLocked),
            (3, RunStatus::Processed)
        ]
    );
    assert_eq!(
        (reports[0].counts.ordered, reports[2].counts.ordered),
        (1, 1)
    );
    assert_eq!(
        leases(&h.store).await,
        [(key(2), "other".into(), None)],
        "the batch's leases are given back; the other process's is not touched"
    );
    assert_eq!(
        runs(&h.store).await,
        [
            (key(1), "me".into(), "processed".into()),
            (key(3), "me".into(), "processed".into())
        ]
    );
    for id in [1, 3] {
        let filter = ListFilter {
            expert_id: Some(id),
            ..ListFilter::default()
        };
        let outcomes = h.store.outcomes(&filter).await.unwrap();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert!(outcomes[0].detail.ends_with(" filled"), "{outcomes:?}");
    }
}
both!(the_experts_it_can_lock_run_as_one_batch);
