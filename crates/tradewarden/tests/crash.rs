//! Crash tests through the real binary (B3, I1, I3, I4): for each fault point the process
//! aborts mid-run; the very next run takes the dead holder's lease over at once (its pid is
//! gone; on PostgreSQL its session too) although the lease is far from expiry, settles what
//! was in flight, and there is exactly one broker order per order intent and never a second
//! active transaction. Needs `--features fault-injection` (the README's test command
//! enables it).

mod common;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};

use chrono::{DateTime, Utc};
use common::*;
use tradewarden_store::SqlStore;

/// Far longer than any test: only a take-over can explain a run that proceeds.
const LEASE_SECONDS: u64 = 300;

const KEY: &str = "expert_1_usecase_enter_market";

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

/// The expiry of expert 1's enter_market lease, if a row holds it.
async fn lease_expiry(store: &SqlStore) -> Option<DateTime<Utc>> {
    let rows = store
        .pool()
        .fetch(
            "SELECT expires_at FROM leases WHERE key = $1",
            &[KEY.into()],
        )
        .await
        .unwrap();
    rows.first().map(|r| r.time("expires_at").unwrap())
}

/// A test database with the config and the three recommendations imported.
async fn imported(kind: DbKind) -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, LEASE_SECONDS);
    let recs = dir.path().join("recs.jsonl");
    std::fs::write(&recs, recommendations()).unwrap();
    let (st, _, err) = tw(&config, &["import", recs.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    (db, dir, config)
}

async fn crash_at(point: &str, kind: DbKind) {
    let (db, _dir, config) = imported(kind).await;

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
    // The dead holder's lease is still there, and far from expiry.
    let expires_at = lease_expiry(&store)
        .await
        .expect("the dead holder's lease row");
    assert!(
        expires_at > crashed_at + chrono::Duration::seconds(60),
        "{point}: the lease must outlive the test"
    );
    // Catches: waiting for expiry (the run would be skipped_locked), and a take-over that
    // does not settle what the dead holder left in flight.
    let (st, out, err) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success(), "{point}: {err}");
    assert!(
        out.contains("\"processed\""),
        "{point}: the dead holder's lease must be taken over at once: {out}"
    );
    assert!(
        err.contains("took over lease expert_1_usecase_enter_market"),
        "{point}: {err}"
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status = 'submitting'"
        )
        .await,
        0,
        "{point}: the in-flight orders are settled by that run"
    );
    assert_eq!(lease_expiry(&store).await, None, "{point}: and released");

    let (st, out, err) = tw(&config, &["reconcile"], &[]);
    assert!(st.success(), "{point}: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{point}: {out}"
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
