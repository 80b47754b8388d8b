//! Connecting: an unreachable server is reported with its cause within the connect timeout,
//! `check` connects to nothing, and PostgreSQL's notices and C source lines stay out of the
//! output.

mod cmd;
mod common;

use cmd::{config, with_config};
use common::TestDb;

#[test]
fn an_unreachable_server_is_reported_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("postgres://postgres@127.0.0.1:1/test", "").replace(
        "[processing]",
        "connect_timeout_seconds = 1\n\n[processing]",
    );
    for args in [&["process", "--all"][..], &["transactions"][..]] {
        let o = with_config(dir.path(), &text, args);
        o.expect(1, &format!("{args:?}"));
        assert!(
            o.stderr.contains(
                "cannot connect to postgres://postgres@127.0.0.1:1/test: connection refused"
            ),
            "{args:?}: {}",
            o.describe()
        );
        assert!(!o.stderr.contains("pool timed out"), "{}", o.describe());
    }
}

#[test]
fn check_touches_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("postgres://postgres@127.0.0.1:1/test", "");
    with_config(dir.path(), &text, &["check"]).expect(0, "check of an unreachable server");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_commands_log_no_notices() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&db.url, "");
    // The first command creates the schema; the later ones find it (the server's NOTICE).
    for args in [
        &["process", "--all"][..],
        &["process", "--all"][..],
        &["transactions"][..],
        &["reconcile"][..],
    ] {
        let o = with_config(dir.path(), &text, args);
        o.expect(0, &format!("{args:?}"));
        assert!(
            !o.stderr.contains("_sqlx_migrations") && !o.stderr.contains("already exists"),
            "{args:?}: {}",
            o.describe()
        );
    }
}

#[test]
fn postgres_errors_name_no_server_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::pg_admin_url();
    let url = format!("{}/tw_no_such_db", base.rsplit_once('/').unwrap().0);
    let o = with_config(dir.path(), &config(&url, ""), &["process", "--all"]);
    o.expect(1, "missing database");
    assert!(
        o.stderr
            .contains("database \"tw_no_such_db\" does not exist"),
        "{}",
        o.describe()
    );
    assert!(!o.stderr.contains(" at line "), "{}", o.describe());
}
