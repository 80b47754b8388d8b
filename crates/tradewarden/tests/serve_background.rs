//! `serve`'s background work, on SQLite and on PostgreSQL: with `[processing]
//! process_interval_seconds` set, posted recommendations become positions without anyone
//! calling process, and the periodic refresh moves their entries on (no WAITING left)
//! without anyone calling refresh.
//!
//! Catches: a serve that never starts its periodic tasks, or that starts only one of them.

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use serve_support::*;

async fn periodic_process_and_refresh(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 1, "");
    // Both intervals at their smallest, in the [processing] table write_config wrote.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[processing]\n",
        "[processing]\nrefresh_interval_seconds = 1\nprocess_interval_seconds = 1\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, &[]);
    let http = client();
    let r = http
        .post(server.url("/api/v1/recommendations"))
        .bearer_auth(ADMIN)
        .json(&json!([buy(1, "AAA"), buy(1, "BBB")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .get(server.url("/api/v1/transactions"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap();
        let (_, rows) = answer(r).await;
        let rows: Vec<Value> = rows.as_array().cloned().unwrap_or_default();
        let opened = rows.iter().filter(|t| t["status"] == "OPENED").count();
        if rows.len() == 2 && opened == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no background process and refresh: {rows:?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
both!(periodic_process_and_refresh);
