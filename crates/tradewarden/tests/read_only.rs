//! The listings (`transactions`, `orders`, `outcomes`) open the database read-only: on a
//! SQLite file that does not exist yet they print an empty listing and a note and create
//! nothing; on an existing one they read without writing.

mod cmd;
mod common;

use cmd::{config, run_in, sqlite_url, with_config};
use serde_json::Value;

#[test]
fn listings_in_an_empty_directory_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["transactions"][..],
        &["orders"][..],
        &["outcomes"][..],
        &["transactions", "--json"][..],
        &["orders", "--json"][..],
        &["outcomes", "--json", "--expert", "1"][..],
        &["check"][..],
    ] {
        let o = run_in(dir.path(), args);
        o.expect(0, &format!("{args:?}"));
        if args.contains(&"--json") {
            assert_eq!(o.stdout.trim(), "[]", "{args:?}: {}", o.describe());
        }
        if args[0] != "check" {
            assert!(
                o.stderr.contains("no database yet at tradewarden.db")
                    && o.stderr.contains("tradewarden import"),
                "{args:?}: {}",
                o.describe()
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
    // A bad filter is still bad usage.
    run_in(dir.path(), &["orders", "--status", "nope"]).expect(2, "bad status");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// Listings read a database another process is writing: they take no write lock (a
/// read-write open waits out the writer's transaction, then fails with "database is
/// locked"), and change no byte of it.
#[tokio::test(flavor = "multi_thread")]
async fn listings_read_an_existing_database_while_a_writer_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let text = config(&url, "");
    let rec = r#"{"expert_id":1,"symbol":"AAPL","action":"BUY","confidence":80,"expected_profit_percent":10,"price_at_date":100,"risk_level":"LOW","time_horizon":"SHORT_TERM"}"#;
    std::fs::write(dir.path().join("r.jsonl"), rec).unwrap();
    with_config(dir.path(), &text, &["run", "r.jsonl"]).expect(0, "run");
    let before = std::fs::read(dir.path().join("tw.db")).unwrap();

    let writer = tradewarden_store::db::Pool::connect(&url).await.unwrap();
    let tx = writer.begin().await.expect("BEGIN IMMEDIATE");
    let o = with_config(dir.path(), &text, &["transactions", "--json"]);
    o.expect(0, "transactions");
    let rows: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{}", o.describe());
    assert!(!o.stderr.contains("no database yet"), "{}", o.describe());
    for args in [&["orders"][..], &["outcomes", "--json"][..]] {
        with_config(dir.path(), &text, args).expect(0, &format!("{args:?}"));
    }
    // Compared before the writer closes: its close checkpoints the WAL into the file.
    assert!(
        std::fs::read(dir.path().join("tw.db")).unwrap() == before,
        "the listings wrote the database"
    );
    drop(tx);
    writer.close().await;
}
