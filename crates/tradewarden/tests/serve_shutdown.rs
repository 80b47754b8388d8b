//! Graceful shutdown of `serve`: SIGTERM while a run is between storing its orders and
//! sending them lets the run finish (its report answered, its outcomes stored), the process
//! exits 0, and no lease is left held. On SQLite and on PostgreSQL.
//!
//! Catches: a serve that cancels running requests at the signal (the run would be cut
//! short: no answer, outcomes still provisional) or that exits without giving its leases
//! back.
#![cfg(feature = "fault-injection")]

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use serve_support::*;

async fn sigterm_lets_the_run_finish(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        &db.url,
        1,
        "[server]\nshutdown_grace_seconds = 60\n",
    );
    let release = dir.path().join("release");
    let release_text = release.display().to_string();
    let server = Server::start(
        &config,
        &[
            ("TRADEWARDEN_FAULT", "pause:after_order_stored"),
            ("TRADEWARDEN_FAULT_RELEASE", &release_text),
        ],
    );
    let http = client();
    let r = http
        .post(server.url("/api/v1/recommendations"))
        .bearer_auth(ADMIN)
        .json(&json!([buy(1, "AAA"), buy(1, "BBB")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let run = tokio::spawn(
        http.post(server.url("/api/v1/experts/1/process"))
            .bearer_auth(OPERATOR)
            .json(&json!({"use_case": "enter_market"}))
            .send(),
    );
    wait_for(&server, "fault injection: pausing at after_order_stored").await;
    server.sigterm();
    wait_for(&server, "SIGTERM received").await;
    // The run is still paused, holding its lease; now let it go on.
    std::fs::write(&release, "").unwrap();
    let (status, report) = answer(run.await.unwrap().unwrap()).await;
    assert_eq!(status, 200, "{report}\n{}", server.log_text());
    assert_eq!(report["status"], "processed");
    assert_eq!(report["orders"].as_array().unwrap().len(), 2);
    let log = server.log_text();
    let exit = server.wait();
    assert!(exit.success(), "{exit:?}\n{log}");

    let store = db.store().await;
    let fetch = |sql: &'static str| {
        let store = store.clone();
        async move { store.pool().fetch(sql, &[]).await.unwrap() }
    };
    let leases = fetch("SELECT COUNT(*) AS n FROM leases").await;
    assert_eq!(leases[0].i64("n").unwrap(), 0, "no lease left held");
    let outcomes = fetch("SELECT outcome, detail FROM outcomes ORDER BY id").await;
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert_eq!(o.text("outcome").unwrap(), "ordered");
        let detail = o.text("detail").unwrap();
        assert!(
            !detail.ends_with("awaiting the broker's answer"),
            "completed: {detail}"
        );
    }
}
both!(sigterm_lets_the_run_finish);

/// Waits (at most a minute) for `what` in the server's log.
async fn wait_for(server: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.log_text().contains(what) {
        assert!(
            Instant::now() < deadline,
            "never logged {what:?}:\n{}",
            server.log_text()
        );
        // Async: the request under test runs on this test's runtime meanwhile.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
