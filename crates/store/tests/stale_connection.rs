//! A pooled PostgreSQL connection the server dropped while it sat idle (a restart, an
//! administrator's `pg_terminate_backend`, a link cut) is found dead when it is handed out
//! again after [`CHECK_IDLE_AFTER`] and replaced: the statement succeeds on a new one.
//! (One handed out sooner is not pinged first: a ping per statement doubled a run's round
//! trips.)

use std::time::Duration;

use tradewarden_store::db::Pool;

/// The PostgreSQL server tests use: `$TRADEWARDEN_TEST_PG` or the project machines' server.
fn pg_url() -> String {
    std::env::var("TRADEWARDEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The store's idle threshold (5 s), and a margin.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(6);

#[tokio::test]
async fn an_idle_connection_the_server_dropped_is_replaced_before_use() {
    let pool = Pool::connect(&pg_url())
        .await
        .expect("PostgreSQL reachable");
    let rows = pool
        .fetch("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap();
    let pid = rows[0].i64("pid").unwrap();
    let admin = Pool::connect(&pg_url()).await.unwrap();
    let killed = admin
        .fetch(
            "SELECT pg_terminate_backend($1::int) AS done",
            &[pid.into()],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1);
    tokio::time::sleep(CHECK_IDLE_AFTER).await;
    let again = pool
        .fetch("SELECT pg_backend_pid() AS pid", &[])
        .await
        .expect("the dead connection was replaced");
    assert_ne!(again[0].i64("pid").unwrap(), pid);
}
