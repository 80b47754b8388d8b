//! Crash tests through the real binary (B3, I1, I3, I4, I5): for each fault point the process
//! aborts mid-run; every recommendation of the crashed run has exactly one outcome; after
//! restart and reconciliation there is exactly one broker order per order intent, never a
//! second active transaction, and the lock is free again once the dead holder's lease has
//! expired. Needs `--features fault-injection` (the README's test
//! command enables it).

mod common;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use tradewarden_store::SqlStore;

const LEASE_SECONDS: u64 = 2;

fn recommendations() -> String {
    // Three confident BUYs (ordered), each its own order intent.
    ["AAPL", "MSFT", "NVDA"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{{\"expert_id\":1,\"symbol\":\"{s}\",\"action\":\"BUY\",\"confidence\":80,\"expected_profit_percent\":{},\
                 \"price_at_date\":100,\"risk_level\":\"LOW\",\"time_horizon\":\"SHORT_TERM\"}}\n",
                10 - i
            )
        })
        .collect()
}

async fn count(store: &SqlStore, sql: &str) -> i64 {
    store.pool().fetch(sql, &[]).await.unwrap()[0]
        .i64("n")
        .unwrap()
}

/// Per recommendation: how many outcomes it has, and the kind and detail of the last.
async fn outcomes_per_recommendation(
    store: &SqlStore,
) -> std::collections::BTreeMap<i64, (usize, String, String)> {
    let mut out = std::collections::BTreeMap::new();
    let rows = store
        .pool()
        .fetch(
            "SELECT r.id, o.outcome, o.detail FROM recommendations r \
             LEFT JOIN outcomes o ON o.recommendation_id = r.id ORDER BY r.id, o.id",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let entry = out
            .entry(r.i64("id").unwrap())
            .or_insert((0, String::new(), String::new()));
        if let Some(kind) = r.opt_text("outcome").unwrap() {
            *entry = (entry.0 + 1, kind, r.text("detail").unwrap());
        }
    }
    out
}

// Catches (besides one broker order per intent): decision records written only at the end of
// a run, which a crash after the orders were stored loses (0 outcomes), and an outcome never
// completed once its order is settled.
async fn crash_at(point: &str, kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, LEASE_SECONDS);
    let recs = dir.path().join("recs.jsonl");
    std::fs::write(&recs, recommendations()).unwrap();
    let (st, _, err) = tw(&config, &["import", recs.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");

    // The crash.
    let (st, out, err) = tw(
        &config,
        &["process", "--expert", "1"],
        &[("TRADEWARDEN_FAULT", point)],
    );
    assert!(!st.success(), "{point}: the process must die; stdout {out}");
    assert!(
        err.contains(&format!("aborting at {point}")),
        "{point}: {err}"
    );
    let crashed_at = Utc::now();

    let store = db.store().await;
    // I5: the crashed run's decision records were written with its positions.
    let outcomes = outcomes_per_recommendation(&store).await;
    assert_eq!(outcomes.len(), 3, "{point}: {outcomes:?}");
    for (rec, (n, kind, _)) in &outcomes {
        assert_eq!(*n, 1, "{point}: recommendation {rec}: exactly one outcome");
        assert_eq!(kind, "ordered", "{point}: recommendation {rec}");
    }
    // The dead holder's lease is still there and bounds how long the lock stays taken.
    let lease = store
        .pool()
        .fetch(
            "SELECT expires_at FROM leases WHERE key = 'expert_1_usecase_enter_market'",
            &[],
        )
        .await
        .unwrap();
    let expires_at: DateTime<Utc> = lease[0].time("expires_at").unwrap();
    assert!(
        expires_at <= crashed_at + chrono::Duration::seconds(LEASE_SECONDS as i64),
        "{point}: lease outlives its ttl"
    );
    // While it lasts, a restarted process skips instead of running beside a possible holder.
    let (st, out, _) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success());
    if Utc::now() < expires_at {
        assert!(out.contains("\"skipped_locked\""), "{point}: {out}");
    }
    let wait = (expires_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    std::thread::sleep(wait);

    // Restart: reconcile, then process again.
    let (st, out, err) = tw(&config, &["reconcile"], &[]);
    assert!(st.success(), "{point}: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{point}: {out}"
    );
    // Settled: still one outcome each, now completed with the broker's answer.
    for (rec, (n, kind, detail)) in outcomes_per_recommendation(&store).await {
        assert_eq!((n, kind.as_str()), (1, "ordered"), "{point}: {rec}");
        assert!(detail.ends_with(" filled"), "{point}: {rec}: {detail}");
    }
    let (st, out, err) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success(), "{point}: {err}");
    assert!(
        out.contains("\"processed\""),
        "{point}: the lock must be free again: {out}"
    );

    // Exactly one broker order per order intent.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status = 'submitting'"
        )
        .await,
        0,
        "{point}"
    );
    let intents = count(&store, "SELECT COUNT(*) AS n FROM orders").await;
    let broker_orders = count(&store, "SELECT COUNT(*) AS n FROM paper_orders").await;
    assert_eq!(intents, 3, "{point}: one entry per recommendation");
    assert_eq!(
        broker_orders, intents,
        "{point}: one broker order per intent"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM orders o JOIN paper_orders p ON p.client_order_id = o.client_order_id WHERE p.status = 'filled' AND o.status = 'filled'").await,
        3,
        "{point}: every intent filled once, and we know it"
    );
    // Never a second active transaction; every position opened.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM transactions WHERE status = 'OPENED'"
        )
        .await,
        3,
        "{point}"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM transactions").await,
        3,
        "{point}"
    );
    // The broker's book agrees with the transactions.
    let (_, out, _) = tw(&config, &["reconcile"], &[]);
    assert!(out.contains("\"findings\": []"), "{point}: {out}");
}

macro_rules! crash_tests {
    ($($name:ident => $point:literal),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            #[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection")]
            async fn sqlite() {
                crash_at($point, DbKind::Sqlite).await;
            }
            #[tokio::test]
            #[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection")]
            async fn postgres() {
                crash_at($point, DbKind::Postgres).await;
            }
        }
    )*};
}

crash_tests! {
    after_order_stored => "after_order_stored",
    after_broker_accepted => "after_broker_accepted",
    before_answer_stored => "before_answer_stored",
    mid_run => "mid_run",
}
