//! Recommendation ingestion through the engine (`TradeManager::import_jsonl`), on SQLite and
//! PostgreSQL: all or nothing, every bad line named with its number and field (I6),
//! idempotent re-import (B7), and a changed recommendation under a stored identity refused;
//! inputs of several chunks (the import is streamed a chunk at a time into one database
//! transaction) count and fail exactly as short ones.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use rust_decimal_macros::dec;
use tradewarden_engine::manager::IMPORT_CHUNK_LINES;
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{EngineError, ImportSummary};

/// One JSON line of expert `expert_id`.
fn line(expert_id: i64, symbol: &str, confidence: &str, price: &str, at: &str) -> String {
    format!(
        r#"{{"expert_id":{expert_id},"symbol":"{symbol}","action":"BUY","confidence":{confidence},"expected_profit_percent":10,"price_at_date":{price},"risk_level":"MEDIUM","time_horizon":"SHORT_TERM","created_at":"{at}"}}"#
    )
}

fn at(minutes_ago: i64) -> String {
    (Utc::now() - Duration::minutes(minutes_ago))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn bad_lines(e: EngineError) -> Vec<(usize, String)> {
    match e {
        EngineError::BadInput(v) => v,
        other => panic!("expected bad input, got {other:?}"),
    }
}

/// What the store holds for expert 1: (symbol, confidence) of every recommendation.
async fn stored(h: &Harness) -> Vec<(String, String)> {
    let since = DateTime::<Utc>::UNIX_EPOCH;
    let mut v: Vec<(String, String)> = h
        .store
        .load_enter_market(1, since)
        .await
        .unwrap()
        .recommendations
        .iter()
        .map(|r| (r.symbol.clone(), r.confidence.normalize().to_string()))
        .collect();
    v.sort();
    v
}

async fn quoted(h: &Harness, symbols: &[&str]) -> Vec<String> {
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    let mut v: Vec<String> = h
        .paper
        .quotes(&symbols)
        .await
        .unwrap()
        .into_keys()
        .collect();
    v.sort();
    v
}

async fn a_bad_batch_stores_nothing_and_names_every_bad_line(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    let (t1, t2) = (at(10), at(9));
    let good1 = line(1, "AAPL", "80", "100", &t1);
    let good2 = line(1, "MSFT", "70", "200", &t2);
    let batch = [
        good1.clone(),                                                    // 1
        "{not json".to_string(),                                          // 2
        line(1, "TSLA", "80", "100", &t1).replace("\"BUY\"", "\"BUYY\""), // 3
        String::new(),                                                    // 4 (blank)
        line(99, "NVDA", "80", "100", &t1),                               // 5
        line(1, "AMZN", "101", "100", &t1),                               // 6
        line(1, "META", "80", "0", &t1),                                  // 7
        line(1, "", "80", "100", &t1),                                    // 8
        line(1, "NFLX", "80", "100", "yesterday"),                        // 9
        good2.clone(),                                                    // 10
    ]
    .join("\n");
    let errors = bad_lines(h.manager.import_jsonl(&batch).await.unwrap_err());
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|(n, msg)| (*n, msg.split_once(": ").expect("field: problem").0))
        .collect();
    assert_eq!(
        got,
        [
            (2, "json"),
            (3, "action"),
            (5, "expert_id"),
            (6, "confidence"),
            (7, "price_at_date"),
            (8, "symbol"),
            (9, "created_at"),
        ],
        "{errors:#?}"
    );
    for (_, msg) in &errors {
        let (_, problem) = msg.split_once(": ").unwrap();
        assert!(!problem.trim().is_empty(), "{msg}");
    }
    let msg = |n: usize| &errors.iter().find(|(l, _)| *l == n).unwrap().1;
    assert_eq!(msg(5), "expert_id: unknown expert 99");
    assert!(msg(6).contains("101"), "{}", msg(6));

    // Nothing of the batch was stored: neither recommendations nor quotes.
    assert!(stored(&h).await.is_empty());
    assert!(quoted(&h, &["AAPL", "MSFT"]).await.is_empty());
    // The good lines alone are new.
    let ok = h
        .manager
        .import_jsonl(&format!("{good1}\n{good2}\n"))
        .await
        .unwrap();
    assert_eq!(
        ok,
        ImportSummary {
            imported: 2,
            already_present: 0
        }
    );
    assert_eq!(quoted(&h, &["AAPL", "MSFT"]).await, ["AAPL", "MSFT"]);
}

// Catches: validating line by line while storing (the good lines would be stored), reporting
// only the first bad line, or numbering lines without counting blank ones.
#[tokio::test]
async fn sqlite_a_bad_batch_stores_nothing_and_names_every_bad_line() {
    a_bad_batch_stores_nothing_and_names_every_bad_line(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_a_bad_batch_stores_nothing_and_names_every_bad_line() {
    a_bad_batch_stores_nothing_and_names_every_bad_line(DbKind::Postgres).await;
}

async fn re_importing_is_idempotent(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    let batch = [
        line(1, "AAPL", "80", "100", &at(10)),
        line(1, "MSFT", "70", "200", &at(9)),
        line(1, "GOOGL", "65", "150", &at(8)),
    ]
    .join("\n");
    let first = h.manager.import_jsonl(&batch).await.unwrap();
    assert_eq!(
        first,
        ImportSummary {
            imported: 3,
            already_present: 0
        }
    );
    let again = h.manager.import_jsonl(&batch).await.unwrap();
    assert_eq!(
        again,
        ImportSummary {
            imported: 0,
            already_present: 3
        }
    );
    assert_eq!(stored(&h).await.len(), 3, "nothing stored twice");
}

// Catches: inserting without the identity's unique constraint / ON CONFLICT DO NOTHING (a
// retry would store duplicates or fail), or counting a re-sent line as imported.
#[tokio::test]
async fn sqlite_re_importing_is_idempotent() {
    re_importing_is_idempotent(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_re_importing_is_idempotent() {
    re_importing_is_idempotent(DbKind::Postgres).await;
}

async fn a_changed_recommendation_under_a_stored_identity_is_refused(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    let t = at(10);
    h.manager
        .import_jsonl(&line(1, "AAPL", "80", "100", &t))
        .await
        .unwrap();
    // Line 1: new; line 2 blank; line 3: AAPL at the same time with another confidence.
    let new = line(1, "NVDA", "75", "300", &at(5));
    let batch = format!("{new}\n\n{}\n", line(1, "AAPL", "90", "100", &t));
    let errors = bad_lines(h.manager.import_jsonl(&batch).await.unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 3, "the conflicting line is named: {errors:?}");
    assert!(
        errors[0].1.starts_with("recommendation: ") && errors[0].1.contains("different content"),
        "{errors:?}"
    );
    // Nothing of the batch: NVDA absent (and unquoted), AAPL unchanged.
    assert_eq!(stored(&h).await, [("AAPL".to_string(), "80".to_string())]);
    assert!(quoted(&h, &["NVDA"]).await.is_empty());

    // Within one batch: a second line with the first's identity and other content.
    let other = at(3);
    let batch = format!(
        "\n{}\n{}\n",
        line(1, "AMD", "70", "100", &other),
        line(1, "AMD", "71", "100", &other)
    );
    let errors = bad_lines(h.manager.import_jsonl(&batch).await.unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 3, "{errors:?}");
    // Catches: naming the earlier line by its index among the non-blank lines (1).
    assert!(errors[0].1.contains("an earlier line (2)"), "{errors:?}");
    assert_eq!(stored(&h).await.len(), 1, "AMD not stored");
}

// Catches: a conflict check that is dropped (the changed line would count as already present)
// or that runs outside the batch's database transaction (NVDA would be stored), and
// reporting batch indexes instead of line numbers.
#[tokio::test]
async fn sqlite_a_changed_recommendation_under_a_stored_identity_is_refused() {
    a_changed_recommendation_under_a_stored_identity_is_refused(DbKind::Sqlite).await;
}

// Catches: the same on PostgreSQL.
#[tokio::test]
async fn postgres_a_changed_recommendation_under_a_stored_identity_is_refused() {
    a_changed_recommendation_under_a_stored_identity_is_refused(DbKind::Postgres).await;
}

/// A time `seconds` after a day ago (one instant for the whole test binary, so that a time
/// written twice is the same), as a line writes it.
fn at_second(seconds: usize) -> String {
    static DAY_AGO: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    let day_ago = *DAY_AGO.get_or_init(|| Utc::now() - Duration::days(1));
    (day_ago + Duration::seconds(seconds as i64))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `n` good lines of expert 1, each its own symbol and time.
fn distinct_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| line(1, &format!("S{i}"), "70", "100", &at_second(i)))
        .collect()
}

async fn a_bad_line_at_the_end_of_a_long_input_stores_nothing(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    let good = distinct_lines(2 * IMPORT_CHUNK_LINES + 500);
    let n = good.len();

    // A bad line last: every chunk before it was written, and is rolled back.
    let mut input = good.clone();
    input.push(line(1, "LAST", "101", "100", &at_second(n)));
    let errors = bad_lines(h.manager.import_jsonl(input.join("\n")).await.unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, n + 1, "{errors:?}");
    assert!(errors[0].1.starts_with("confidence: 101"), "{errors:?}");
    assert!(
        stored(&h).await.is_empty(),
        "nothing of the input is stored"
    );
    assert!(quoted(&h, &["S0", "S2300"]).await.is_empty(), "nor quoted");

    // A conflict last: the same identity as line 1 with other content.
    let mut input = good.clone();
    input.push(line(1, "S0", "71", "100", &at_second(0)));
    let errors = bad_lines(h.manager.import_jsonl(input.join("\n")).await.unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, n + 1, "{errors:?}");
    assert!(errors[0].1.contains("an earlier line (1)"), "{errors:?}");
    assert!(
        stored(&h).await.is_empty(),
        "nothing of the input is stored"
    );

    // Without them, every line is new.
    let ok = h.manager.import_jsonl(good.join("\n")).await.unwrap();
    assert_eq!((ok.imported, ok.already_present), (n, 0));
    assert_eq!(stored(&h).await.len(), n);
}

// Catches: committing chunk by chunk (the chunks before the bad line would be stored), writing
// the quotes before the whole input is known to be good, or stopping the report at the first
// chunk.
both!(a_bad_line_at_the_end_of_a_long_input_stores_nothing);

/// An input of several chunks: new lines, lines stored before (spread so that chunks are part
/// new, part stored), identical repeats of lines of earlier chunks, and blank lines. Returns
/// the lines stored before, the input, and the number of distinct new identities in it.
fn mixed_input() -> (Vec<String>, Vec<String>, usize) {
    let before: Vec<String> = (0..300)
        .map(|k| line(1, &format!("OLD{k}"), "60", "50", &at_second(10_000 + k)))
        .collect();
    let mut input: Vec<String> = Vec::new();
    let mut fresh: Vec<String> = Vec::new();
    let mut old = before.iter();
    for i in 0..2 * IMPORT_CHUNK_LINES + 700 {
        let next = if i % 10 == 3 {
            old.next().cloned()
        } else if i % 7 == 5 && !fresh.is_empty() {
            Some(fresh[fresh.len() / 2].clone())
        } else if i % 500 == 499 {
            Some(String::new())
        } else {
            None
        };
        input.push(next.unwrap_or_else(|| {
            let l = line(1, &format!("NEW{i}"), "75", "20", &at_second(i));
            fresh.push(l.clone());
            l
        }));
    }
    (before, input, fresh.len())
}

async fn a_long_input_counts_as_its_short_pieces(kind: DbKind) {
    let (before, input, fresh) = mixed_input();
    let blank = input.iter().filter(|l| l.is_empty()).count();
    let expected = (fresh, input.len() - blank - fresh);

    // One import of the whole input, in several chunks.
    let db = TestDb::new(kind).await;
    let whole = harness(&db, settings(vec![expert(1)], dec!(100000)), plain).await;
    whole.manager.import_jsonl(before.join("\n")).await.unwrap();
    let c = whole.manager.import_jsonl(input.join("\n")).await.unwrap();
    assert_eq!((c.imported, c.already_present), expected);

    // The same input as imports of less than a chunk each.
    let db2 = TestDb::new(kind).await;
    let pieces = harness(&db2, settings(vec![expert(1)], dec!(100000)), plain).await;
    pieces
        .manager
        .import_jsonl(before.join("\n"))
        .await
        .unwrap();
    let mut sum = (0, 0);
    for piece in input.chunks(IMPORT_CHUNK_LINES / 3) {
        let c = pieces.manager.import_jsonl(piece.join("\n")).await.unwrap();
        sum = (sum.0 + c.imported, sum.1 + c.already_present);
    }
    assert_eq!(sum, expected);
    assert_eq!(stored(&whole).await, stored(&pieces).await);

    // Again: every line is already present (no chunk inserts anything).
    let again = whole.manager.import_jsonl(input.join("\n")).await.unwrap();
    assert_eq!(
        (again.imported, again.already_present),
        (0, input.len() - blank)
    );
    assert_eq!(stored(&whole).await.len(), before.len() + fresh);
}

// Catches: a chunk partly stored before counted wholly new or wholly present (the store's
// all-or-none shortcut), a repeat of a line of an earlier chunk counted as new or refused, and
// identities forgotten between chunks.
both!(a_long_input_counts_as_its_short_pieces);
