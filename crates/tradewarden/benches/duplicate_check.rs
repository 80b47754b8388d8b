//! Benchmark: the duplicate-position check (S5) on a SQLite table holding 100,000
//! transactions, the "under 10 µs per recommendation checked" target.
//!
//! The table is filled in bulk (1,000 experts × 100 symbols; per expert the first 50
//! symbols WAITING/OPENED, the rest CLOSED) plus 100 recommendations per expert. Two ways of
//! checking are measured:
//! - as the engine does it: one `Store::load_enter_market(expert, since)` per run (which
//!   loads the expert's recommendations and its active positions), then a `HashMap` lookup
//!   per recommendation; the figure is per recommendation, amortised over a run of 100;
//! - the same call with a window that holds no recommendation, so only the active-positions
//!   query and the lookups remain (the duplicate check proper);
//! - the single-row point query `Store::active_transaction(expert, symbol)`, once per
//!   recommendation, for comparison.
//!
//! Run: `cargo bench -p tradewarden --bench duplicate_check`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use tradewarden_engine::ports::{PositionStore, RecommendationStore};
use tradewarden_store::SqlStore;
use tradewarden_store::db::time_text;

const EXPERTS: i64 = 1_000;
const SYMBOLS: i64 = 100;
/// Recommendations per run (one per symbol of the expert).
const RUN: u64 = SYMBOLS as u64;
/// Rows per multi-row INSERT.
const BATCH: i64 = 500;

fn symbol(s: i64) -> String {
    format!("SYM{s:04}")
}

/// Fills the store: 100,000 transactions and 100,000 recommendations, in a few hundred
/// multi-row statements inside one write transaction.
async fn fill(store: &SqlStore) {
    let started = Instant::now();
    let created = time_text(Utc::now() - chrono::Duration::hours(2));
    let rec_at = |n: i64| {
        time_text(Utc::now() - chrono::Duration::hours(1) + chrono::Duration::milliseconds(n))
    };
    let mut tx = store.pool().begin().await.expect("begin");
    let total = EXPERTS * SYMBOLS;
    let mut n = 0;
    while n < total {
        let end = (n + BATCH).min(total);
        let mut txns = String::from(
            "INSERT INTO transactions (expert_id, account, symbol, side, quantity, status, reference_price, \
             open_price, opened_at, closed_at, close_reason, created_at) VALUES ",
        );
        let mut recs = String::from(
            "INSERT INTO recommendations (expert_id, symbol, action, confidence, expected_profit_percent, \
             price_at_date, risk_level, time_horizon, created_at, imported_at) VALUES ",
        );
        for i in n..end {
            let (expert, s) = (i / SYMBOLS + 1, i % SYMBOLS);
            let sym = symbol(s);
            let sep = if i > n { "," } else { "" };
            let row = match s % 4 {
                0 | 1 => format!(
                    "({expert}, 'paper', '{sym}', 'BUY', '10', 'CLOSED', '100', '100', '{created}', '{created}', 'test', '{created}')"
                ),
                2 => format!(
                    "({expert}, 'paper', '{sym}', 'BUY', '10', 'OPENED', '100', '101.5', '{created}', NULL, NULL, '{created}')"
                ),
                _ => format!(
                    "({expert}, 'paper', '{sym}', 'BUY', '10', 'WAITING', '100', NULL, NULL, NULL, NULL, '{created}')"
                ),
            };
            txns.push_str(sep);
            txns.push_str(&row);
            recs.push_str(sep);
            recs.push_str(&format!(
                "({expert}, '{sym}', 'BUY', '75', '10', '100', 'MEDIUM', 'SHORT_TERM', '{}', '{created}')",
                rec_at(i)
            ));
        }
        tx.execute(&txns, &[]).await.expect("insert transactions");
        tx.execute(&recs, &[])
            .await
            .expect("insert recommendations");
        n = end;
    }
    tx.commit().await.expect("commit");
    let count = store
        .pool()
        .fetch("SELECT COUNT(*) AS n FROM transactions", &[])
        .await
        .expect("count");
    let active = store
        .pool()
        .fetch(
            "SELECT COUNT(*) AS n FROM transactions WHERE status IN ('WAITING', 'OPENED')",
            &[],
        )
        .await
        .expect("count");
    eprintln!(
        "filled {} transactions ({} WAITING/OPENED) and {} recommendations in {:.2?}",
        count[0].i64("n").unwrap(),
        active[0].i64("n").unwrap(),
        total,
        started.elapsed()
    );
    store.pool().execute("ANALYZE", &[]).await.expect("analyze");
}

fn bench_duplicate_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(async {
        let store = SqlStore::connect(&url).await.expect("store");
        fill(&store).await;
        store
    });
    let since = Utc::now() - chrono::Duration::days(1);
    let symbols: Vec<String> = (0..SYMBOLS).map(symbol).collect();

    // A sanity check of what one run sees.
    let (recs, positions, dups) = rt.block_on(async {
        let data = store.load_enter_market(500, since).await.expect("load");
        let active: HashMap<&str, _> = data
            .positions
            .iter()
            .map(|p| (p.symbol.as_str(), p))
            .collect();
        let dups = data
            .recommendations
            .iter()
            .filter(|r| active.contains_key(r.symbol.as_str()))
            .count();
        (data.recommendations.len(), data.positions.len(), dups)
    });
    eprintln!(
        "one run of expert 500: {recs} recommendations, {positions} active positions, {dups} duplicates"
    );
    assert_eq!((recs, positions, dups), (100, 50, 50));

    let mut g = c.benchmark_group("duplicate_check_100k_transactions");
    g.throughput(criterion::Throughput::Elements(RUN));

    // Per iteration: one run of 100 recommendations (a different expert each time).
    // Criterion's time/iter is per run; "thrpt" is recommendations checked per second, and
    // per recommendation = time/iter ÷ 100.
    let mut expert = 0i64;
    g.bench_function(
        "engine: load_enter_market + HashMap lookup, run of 100",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        expert = expert % EXPERTS + 1;
                        let data = store.load_enter_market(expert, since).await.expect("load");
                        let active: HashMap<&str, _> = data
                            .positions
                            .iter()
                            .map(|p| (p.symbol.as_str(), (p.transaction_id, p.status)))
                            .collect();
                        let mut found = 0usize;
                        for r in &data.recommendations {
                            // The engine reads the existing position's id and status.
                            if let Some(existing) = active.get(r.symbol.as_str()) {
                                black_box(existing);
                                found += 1;
                            }
                        }
                        black_box(found);
                    }
                    started.elapsed()
                })
            })
        },
    );

    // The same engine call with a window that holds no recommendation: what is left is the
    // active-positions query (the part of the load the duplicate check needs) and the
    // lookups, one per symbol the run would check.
    let future = Utc::now() + chrono::Duration::days(1);
    g.bench_function(
        "engine: load_enter_market positions only + 100 lookups",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        expert = expert % EXPERTS + 1;
                        let data = store.load_enter_market(expert, future).await.expect("load");
                        let active: HashMap<&str, _> = data
                            .positions
                            .iter()
                            .map(|p| (p.symbol.as_str(), (p.transaction_id, p.status)))
                            .collect();
                        let found = symbols
                            .iter()
                            .filter(|s| active.contains_key(s.as_str()))
                            .count();
                        black_box(found);
                    }
                    started.elapsed()
                })
            })
        },
    );

    // Per iteration: 100 point queries, one per recommendation.
    g.bench_function(
        "point query: active_transaction per recommendation, run of 100",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        expert = expert % EXPERTS + 1;
                        let mut found = 0usize;
                        for s in &symbols {
                            if store
                                .active_transaction(expert, s)
                                .await
                                .expect("point query")
                                .is_some()
                            {
                                found += 1;
                            }
                        }
                        black_box(found);
                    }
                    started.elapsed()
                })
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_duplicate_check
}
criterion_main!(benches);
