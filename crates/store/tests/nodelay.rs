//! PostgreSQL without Nagle stalls: a statement whose message spans several TCP packets must
//! not wait for the server's delayed acknowledgement (at least 40 ms on Linux), which is what
//! happens when the driver leaves `TCP_NODELAY` unset. Measured through the store's own
//! connection path, as a ratio against a one-packet statement on the same connection, never
//! as an absolute time.

use std::time::{Duration, Instant};

use tradewarden_store::db::{Pool, Val};

/// The PostgreSQL server tests use: `$TRADEWARDEN_TEST_PG` or the project machines' server.
fn pg_url() -> String {
    std::env::var("TRADEWARDEN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Rounds of each statement; the median of each is compared.
const ROUNDS: usize = 7;

/// The big statements' text parameter sizes. Loopback's segment holds 65,483 bytes: 70 KB is
/// one full segment and a short tail, the shape that stalls every time without
/// `TCP_NODELAY` (the server delays its acknowledgement of a lone segment, and Nagle holds
/// the tail until it comes); 300 KB is several segments, which stalls now and then.
const BIG_PARAM_BYTES: [usize; 2] = [70_000, 300_000];

/// The allowance over ten one-packet statements: half the shortest delayed acknowledgement
/// (40 ms), so one stall in most rounds always exceeds the bound, while moving 300 KB over
/// loopback (about 1 ms here, a few ms on a loaded machine) never does.
const MARGIN: Duration = Duration::from_millis(20);

/// The median time of `SELECT length($1)` with `arg`, over [`ROUNDS`].
async fn median_of(pool: &Pool, arg: &Val) -> Duration {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let rows = pool
            .fetch("SELECT length($1) AS n", std::slice::from_ref(arg))
            .await
            .expect("select length");
        times.push(start.elapsed());
        assert_eq!(rows.len(), 1);
    }
    times.sort();
    times[ROUNDS / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_of_several_packets_does_not_wait_for_a_delayed_ack() {
    let pool = Pool::connect(&pg_url())
        .await
        .expect("PostgreSQL reachable");
    let small = Val::from("x");
    // Warm up: the connection, the server's plan cache, the kernel's buffers.
    median_of(&pool, &small).await;
    for bytes in BIG_PARAM_BYTES {
        let big = Val::from("x".repeat(bytes));
        median_of(&pool, &big).await;
        let small_median = median_of(&pool, &small).await;
        let big_median = median_of(&pool, &big).await;
        println!(
            "one-packet statement: median {small_median:?}; {bytes}-byte statement: median {big_median:?}"
        );
        let bound = small_median * 10 + MARGIN;
        assert!(
            big_median <= bound,
            "a {bytes}-byte statement took {big_median:?} (median of {ROUNDS}) against \
             {small_median:?} for a one-packet one, over the bound {bound:?}: a delayed-ACK \
             stall. Is TCP_NODELAY set on the driver's socket?"
        );
    }
    pool.close().await;
}
