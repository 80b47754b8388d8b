//! Many instances, one truth (B1–B3, I1, I2, I4): four processes run `process --all` over and
//! over against one database while new recommendations keep arriving. Afterwards: never two
//! active transactions for one (expert, symbol), one broker order per order intent, every
//! run `processed` or `skipped_locked`, and the recorded runs of one lock key never overlap.
//!
//! Runs for `$TRADEWARDEN_STRESS_SECONDS` (default 60) on SQLite and on PostgreSQL.

mod common;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use tradewarden_store::SqlStore;

const EXPERTS: i64 = 5;
const PROCESSES: usize = 4;

fn seconds() -> u64 {
    std::env::var("TRADEWARDEN_STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// A batch of recommendations: every expert, `symbols` new symbols of round `round`.
fn batch(round: usize, symbols: usize) -> String {
    let now = Utc::now();
    let mut out = String::new();
    for e in 1..=EXPERTS {
        for s in 0..symbols {
            // Mostly confident buys, some that the rules refuse.
            let (action, confidence) = if (s + round) % 4 == 3 {
                ("SELL", 70)
            } else {
                ("BUY", 65 + (s % 30))
            };
            out.push_str(&format!(
                "{{\"expert_id\":{e},\"symbol\":\"R{round}S{s}\",\"action\":\"{action}\",\"confidence\":{confidence},\
                 \"expected_profit_percent\":{}.5,\"price_at_date\":{}.25,\"risk_level\":\"MEDIUM\",\"time_horizon\":\"SHORT_TERM\",\
                 \"created_at\":\"{}\"}}\n",
                s % 17,
                10 + (s * 7) % 200,
                (now + chrono::Duration::microseconds(s as i64)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ));
        }
    }
    out
}

async fn rows(store: &SqlStore, sql: &str) -> Vec<tradewarden_store::db::Row> {
    store.pool().fetch(sql, &[]).await.unwrap()
}

async fn four_processes(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, EXPERTS, 30);
    let first = dir.path().join("r0.jsonl");
    std::fs::write(&first, batch(0, 40)).unwrap();
    let (st, _, err) = tw(&config, &["import", first.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");

    let deadline = Instant::now() + Duration::from_secs(seconds());
    let failed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let config = config.clone();
            let failed = failed.clone();
            std::thread::spawn(move || {
                let mut statuses: HashMap<String, usize> = HashMap::new();
                while Instant::now() < deadline && !failed.load(Ordering::SeqCst) {
                    let (st, out, err) = tw(&config, &["process", "--all"], &[]);
                    if !st.success() {
                        failed.store(true, Ordering::SeqCst);
                        panic!("process --all failed: {err}");
                    }
                    let reports: serde_json::Value =
                        serde_json::from_str(&out).expect("JSON reports");
                    for r in reports.as_array().unwrap() {
                        *statuses
                            .entry(r["status"].as_str().unwrap().to_string())
                            .or_default() += 1;
                    }
                }
                statuses
            })
        })
        .collect();
    // Fresh recommendations keep arriving while the processes run.
    let mut round = 1;
    while Instant::now() < deadline && !failed.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(2));
        let f = dir.path().join(format!("r{round}.jsonl"));
        std::fs::write(&f, batch(round, 8)).unwrap();
        let (st, _, err) = tw(&config, &["import", f.to_str().unwrap()], &[]);
        assert!(st.success(), "import round {round}: {err}");
        round += 1;
    }
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for w in workers {
        for (k, v) in w.join().expect("worker") {
            *statuses.entry(k).or_default() += v;
        }
    }
    // One last pass so every recommendation has been considered.
    let (st, _, err) = tw(&config, &["process", "--all"], &[]);
    assert!(st.success(), "{err}");

    let bad: Vec<_> = statuses
        .keys()
        .filter(|k| *k != "processed" && *k != "skipped_locked")
        .collect();
    assert!(bad.is_empty(), "unexpected run statuses: {statuses:?}");
    assert!(
        statuses.get("processed").copied().unwrap_or(0) > 0,
        "{statuses:?}"
    );
    eprintln!("{kind:?}: {round} import rounds, run statuses {statuses:?}");

    let store = db.store().await;
    // I1: one position per (expert, symbol). The experts share one paper account and spend
    // nearly all of it, so an entry sized on a balance another process has spent since is
    // refused by the broker ("insufficient cash"): its transaction closes with nothing filled
    // and a later run may order that symbol again. Any other second transaction, active or
    // not, is a duplicate position.
    let dupes = rows(
        &store,
        "SELECT expert_id, symbol, COUNT(*) AS n FROM transactions \
         WHERE close_reason IS NULL OR close_reason NOT LIKE 'entry_orders_terminal_no_execution%' \
         GROUP BY expert_id, symbol HAVING COUNT(*) > 1",
    )
    .await;
    if !dupes.is_empty() {
        // What ended the first transaction of each duplicate, to tell a race from a refusal.
        let detail = rows(&store, "SELECT t.id, t.expert_id, t.symbol, t.status, t.close_reason, o.status AS order_status, o.reason \
             FROM transactions t JOIN orders o ON o.transaction_id = t.id \
             WHERE (t.expert_id, t.symbol) IN (SELECT expert_id, symbol FROM transactions GROUP BY expert_id, symbol HAVING COUNT(*) > 1) \
             ORDER BY t.id").await;
        eprintln!("duplicates in detail: {detail:?}");
    }
    assert!(dupes.is_empty(), "duplicate positions: {dupes:?}");
    let active = rows(
        &store,
        "SELECT expert_id, symbol, COUNT(*) AS n FROM transactions WHERE status IN ('WAITING', 'OPENED') \
         GROUP BY expert_id, symbol HAVING COUNT(*) > 1",
    )
    .await;
    assert!(active.is_empty(), "two active positions: {active:?}");
    let opened = rows(
        &store,
        "SELECT COUNT(*) AS n FROM transactions WHERE status = 'OPENED'",
    )
    .await[0]
        .i64("n")
        .unwrap();
    assert!(opened > 0);
    // I4: one order per intent, one broker order per order; a recommendation is ordered
    // again only after the broker refused its entry.
    let per_rec = rows(&store, "SELECT recommendation_id, COUNT(*) AS n FROM orders WHERE role = 'entry' AND status <> 'rejected' GROUP BY recommendation_id HAVING COUNT(*) > 1").await;
    assert!(
        per_rec.is_empty(),
        "a recommendation ordered twice: {per_rec:?}"
    );
    // Exit legs waiting for their entry's fill are not sent yet, and those of an entry the
    // broker refused are canceled unsent: neither is an intent.
    let orders = rows(
        &store,
        "SELECT COUNT(*) AS n FROM orders WHERE status <> 'waiting_trigger' \
         AND NOT (role <> 'entry' AND status = 'canceled' AND broker_order_id IS NULL)",
    )
    .await[0]
        .i64("n")
        .unwrap();
    let matched = rows(&store, "SELECT COUNT(*) AS n FROM orders o JOIN paper_orders p ON p.client_order_id = o.client_order_id").await[0].i64("n").unwrap();
    let broker = rows(&store, "SELECT COUNT(*) AS n FROM paper_orders").await[0]
        .i64("n")
        .unwrap();
    assert_eq!(
        (matched, broker),
        (orders, orders),
        "broker orders must match order intents one to one"
    );
    let in_flight = rows(
        &store,
        "SELECT COUNT(*) AS n FROM orders WHERE status = 'submitting'",
    )
    .await[0]
        .i64("n")
        .unwrap();
    assert_eq!(in_flight, 0);
    // I2: the recorded runs of one key never overlap.
    let runs = rows(
        &store,
        "SELECT lock_key, owner, started_at, finished_at FROM runs ORDER BY lock_key, started_at",
    )
    .await;
    assert!(runs.len() >= statuses["processed"]);
    let mut last: HashMap<String, (DateTime<Utc>, String)> = HashMap::new();
    for r in &runs {
        let key = r.text("lock_key").unwrap();
        let (start, finish) = (
            r.time("started_at").unwrap(),
            r.time("finished_at").unwrap(),
        );
        if let Some((prev_finish, prev_owner)) = last.get(&key) {
            assert!(
                start >= *prev_finish,
                "runs of {key} overlap: {prev_owner} until {prev_finish}, next from {start}"
            );
        }
        last.insert(key, (finish, r.text("owner").unwrap()));
    }
    let owners: std::collections::HashSet<String> =
        runs.iter().map(|r| r.text("owner").unwrap()).collect();
    assert!(
        owners.len() > PROCESSES,
        "runs came from many processes: {}",
        owners.len()
    );
}

#[tokio::test]
async fn sqlite_four_processes_one_truth() {
    four_processes(DbKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_four_processes_one_truth() {
    four_processes(DbKind::Postgres).await;
}

/// Processes starting together on a fresh SQLite file all get a migrated database (SQLite has
/// no migration lock; without the retry the losers of the race fail).
#[test]
fn processes_starting_together_on_a_fresh_sqlite_file() {
    for _ in 0..3 {
        let db = TestDb::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &db.url, 1, 30);
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                let mut c = bin();
                c.arg("--config")
                    .arg(&config)
                    .args(["transactions", "--json"]);
                c.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
