//! Sixteen concurrent `POST /api/v1/experts/1/process` over real HTTP: spread over two
//! `serve` processes on one PostgreSQL database, and sent to one process on SQLite. The
//! positions opened are those of a single run, every report is `processed` or
//! `skipped_locked`, and no (expert, symbol) has two active transactions.
//!
//! Catches: a process route that runs outside the expert's lock and lease (two runs would
//! both open the positions, or the second would fail on the unique index).

mod common;
#[path = "common/serve.rs"]
mod serve_support;

use std::collections::HashMap;

use common::*;
use serde_json::{Value, json};
use serve_support::*;

const REQUESTS: usize = 16;
const SYMBOLS: usize = 6;

async fn sixteen_concurrent_runs(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), &db.url, 1, "");
    let instances = match kind {
        DbKind::Postgres => 2,
        DbKind::Sqlite => 1,
    };
    let servers: Vec<Server> = (0..instances)
        .map(|_| Server::start(&config, &[]))
        .collect();
    let http = client();
    let recs: Vec<Value> = (0..SYMBOLS).map(|i| buy(1, &format!("SYM{i}"))).collect();
    let r = http
        .post(servers[0].url("/api/v1/recommendations"))
        .bearer_auth(ADMIN)
        .json(&recs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let body = json!({"use_case": "enter_market"});
    let calls = (0..REQUESTS).map(|i| {
        let request = http
            .post(servers[i % instances].url("/api/v1/experts/1/process"))
            .bearer_auth(OPERATOR)
            .json(&body)
            .send();
        async move { answer(request.await.unwrap()).await }
    });
    let answers = futures_join_all(calls).await;
    let mut by_status: HashMap<String, usize> = HashMap::new();
    let mut orders = 0;
    for (status, report) in &answers {
        assert_eq!(*status, 200, "{report}");
        let s = report["status"].as_str().unwrap().to_string();
        assert!(s == "processed" || s == "skipped_locked", "{report}");
        if s == "processed" {
            orders += report["orders"].as_array().unwrap().len();
        }
        *by_status.entry(s).or_default() += 1;
    }
    assert!(
        by_status.get("processed").copied().unwrap_or(0) >= 1,
        "{by_status:?}"
    );
    // A single run orders every symbol once; the runs after it find them held.
    assert_eq!(orders, SYMBOLS, "{by_status:?}");

    let store = db.store().await;
    let rows = store
        .pool()
        .fetch(
            "SELECT symbol, COUNT(*) AS n FROM transactions WHERE expert_id = 1 GROUP BY symbol",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        SYMBOLS,
        "one position per symbol, as a single run"
    );
    for row in &rows {
        assert_eq!(row.i64("n").unwrap(), 1, "{}", row.text("symbol").unwrap());
    }
}
both!(sixteen_concurrent_runs);

/// All the futures, concurrently, their outputs in order (tokio alone, without a futures
/// crate).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
