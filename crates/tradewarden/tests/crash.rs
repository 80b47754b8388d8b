//! Crash tests through the real binary (B3, I1, I3, I4, I5): for each fault point the
//! process aborts mid-run; every recommendation of the crashed run has exactly one outcome;
//! the very next run takes the dead holder's lease over at once (its pid is
//! gone; on PostgreSQL its session too) although the lease is far from expiry, settles what
//! was in flight, and there is exactly one broker order per order intent and never a second
//! active transaction. A process stopped by SIGTERM or SIGINT, or by a panic that escapes
//! its command, gives its lease back before it exits. Needs `--features fault-injection`
//! (the README's test command enables it).

mod common;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};

use std::io::BufRead;

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

/// Per recommendation: how many outcomes it has, and the kind and detail of the first.
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
            if entry.0 == 0 {
                *entry = (1, kind, r.text("detail").unwrap());
            } else {
                entry.0 += 1;
            }
        }
    }
    out
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

// Catches (besides one broker order per intent): decision records written only at the end of
// a run, which a crash after the orders were stored loses (0 outcomes), and an outcome never
// completed once its order is settled.
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
    // I5: the crashed run's decision records were written with its positions.
    let outcomes = outcomes_per_recommendation(&store).await;
    assert_eq!(outcomes.len(), 3, "{point}: {outcomes:?}");
    for (rec, (n, kind, _)) in &outcomes {
        assert_eq!(*n, 1, "{point}: recommendation {rec}: exactly one outcome");
        assert_eq!(kind, "ordered", "{point}: recommendation {rec}");
    }
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
    // The crashed run's outcomes are completed with the broker's answer; the run that took
    // over considered the recommendations again and found each held by its own position.
    for (rec, (n, kind, detail)) in outcomes_per_recommendation(&store).await {
        assert_eq!((n, kind.as_str()), (2, "ordered"), "{point}: {rec}");
        assert!(detail.ends_with(" filled"), "{point}: {rec}: {detail}");
    }

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
    // Exit legs waiting for their entry's fill are not sent yet: not intents.
    let entries = count(
        &store,
        "SELECT COUNT(*) AS n FROM orders WHERE role = 'entry'",
    )
    .await;
    let intents = count(
        &store,
        "SELECT COUNT(*) AS n FROM orders WHERE status <> 'waiting_trigger'",
    )
    .await;
    let broker_orders = count(&store, "SELECT COUNT(*) AS n FROM paper_orders").await;
    assert_eq!(entries, 3, "{point}: one entry per recommendation");
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

/// The child's exit status; a child still running after a minute (it ignored the signal)
/// is killed and fails the test instead of hanging it.
fn exit_within_a_minute(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the process ignored the signal");
}

/// Runs `process --expert 1` until it holds its lock mid-run (orders stored, none sent),
/// stops it with `signal`, and checks what it left.
async fn stopped_by(signal: &str, exit_code: i32, kind: DbKind) {
    let (db, _dir, config) = imported(kind).await;
    let mut child = bin()
        .arg("--config")
        .arg(&config)
        .args(["process", "--expert", "1"])
        .env("TRADEWARDEN_FAULT", "hold:after_order_stored")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tradewarden");
    // Wait until the run holds its lock mid-run; bounded by the child's life (EOF).
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let holding = lines.by_ref().map_while(Result::ok).any(|l| {
        seen.push_str(&l);
        seen.push('\n');
        l.contains("fault injection: holding at after_order_stored")
    });
    assert!(holding, "the run never reached its hold point: {seen}");
    let store = db.store().await;
    assert!(
        lease_expiry(&store).await.is_some(),
        "the held run has its lease"
    );

    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(sent.success());
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = exit_within_a_minute(&mut child);
    let rest = drain.join().unwrap();
    // Catches: no signal handling (the default action kills the process: no exit code, and
    // its lease row stays for lease_seconds), and a shutdown that does not wait for the
    // release (the guard's spawned release dies with the runtime).
    assert_eq!(status.code(), Some(exit_code), "{signal}: {seen}{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("stopped by SIG{signal}"))),
        "{rest:?}"
    );
    assert_eq!(
        lease_expiry(&store).await,
        None,
        "{signal}: the lease is given back"
    );

    // The next run proceeds (no lease to take over) and settles the stored orders.
    let (st, out, err) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success(), "{err}");
    assert!(out.contains("\"processed\""), "{out}");
    assert!(
        !err.contains("took over lease"),
        "nothing was left to take over: {err}"
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status = 'submitting'"
        )
        .await,
        0
    );
    // One broker order per order sent: the three entries and the exit legs their fills fired.
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM paper_orders").await,
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status <> 'waiting_trigger'"
        )
        .await
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE role = 'entry'"
        )
        .await,
        3
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn sqlite_sigterm_gives_the_lease_back() {
    stopped_by("TERM", 143, DbKind::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn postgres_sigterm_gives_the_lease_back() {
    stopped_by("TERM", 143, DbKind::Postgres).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn sqlite_sigint_gives_the_lease_back() {
    stopped_by("INT", 130, DbKind::Sqlite).await;
}

/// A panic that escapes a command (here: in the broker while `reconcile` settles an order,
/// which no run's panic guard covers) still gives the lease back before the process exits.
async fn escaped_panic(kind: DbKind) {
    let (db, _dir, config) = imported(kind).await;
    let point = "after_order_stored";
    let (st, _, err) = tw(
        &config,
        &["process", "--expert", "1"],
        &[("TRADEWARDEN_FAULT", point)],
    );
    assert!(!st.success() && err.contains("aborting at"), "{err}");
    let (st, _, err) = tw(
        &config,
        &["reconcile"],
        &[("TRADEWARDEN_FAULT", "panic:after_broker_accepted")],
    );
    // Catches: letting the panic end the process (status 101). Its lease row would then be
    // left or not depending on whether the guard's spawned release beats the dying runtime
    // (it is left in most runs), so this status, not the row, is the certain check.
    assert_eq!(st.code(), Some(1), "a failure, not a crash: {err}");
    assert!(err.contains("panicked"), "{err}");
    let store = db.store().await;
    assert_eq!(lease_expiry(&store).await, None, "{err}");
    let (st, out, err) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success() && out.contains("\"processed\""), "{out}{err}");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status = 'submitting'"
        )
        .await,
        0
    );
    // One broker order per order sent: the three entries and the exit legs their fills fired.
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM paper_orders").await,
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE status <> 'waiting_trigger'"
        )
        .await
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM orders WHERE role = 'entry'"
        )
        .await,
        3
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn sqlite_an_escaped_panic_gives_the_lease_back() {
    escaped_panic(DbKind::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn postgres_an_escaped_panic_gives_the_lease_back() {
    escaped_panic(DbKind::Postgres).await;
}
