//! A process's liveness signal on PostgreSQL (I3): a session advisory lock it holds for its
//! whole life on a connection of its own, outside the pool (a pooled connection may be
//! closed or reused at any time). The server frees the lock when that connection ends, as
//! it does when the process dies, so a contender on any host that finds the lock free knows
//! the holder is gone ([`tradewarden_engine::LeaseStore::holder_connected`]).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::task::JoinHandle;
use tradewarden_engine::StoreError;

use crate::SqlStore;
use crate::db::{Pool, describe};

/// How often the keeper checks its connection, and retries after losing it.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How many random keys to try before giving up: a key is only taken when another live
/// process already holds it, which a 63-bit random key makes all but impossible.
const KEY_ATTEMPTS: usize = 8;

/// This process's liveness lock. Dropping it closes its connection, and so frees the lock,
/// as the process's death would.
#[derive(Debug)]
pub struct LivenessLock {
    key: i64,
    keeper: JoinHandle<()>,
}

impl LivenessLock {
    /// The advisory lock key: what this process records as `holder_liveness_key`.
    pub fn key(&self) -> i64 {
        self.key
    }
}

impl Drop for LivenessLock {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl SqlStore {
    /// Takes this process's liveness lock on a dedicated connection and keeps it (PostgreSQL).
    /// `None` on SQLite, which has no session a contender could see end.
    pub async fn hold_liveness(&self) -> Result<Option<LivenessLock>, StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let opts = pool.connect_options();
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| StoreError::database(format!("liveness connection: {}", describe(&e))))?;
        for _ in 0..KEY_ATTEMPTS {
            let key = random_key();
            if try_lock(&mut conn, key).await? {
                let keeper = tokio::spawn(keep(opts, conn, key));
                return Ok(Some(LivenessLock { key, keeper }));
            }
        }
        Err(StoreError::database(
            "liveness lock: every random key tried is held by another session",
        ))
    }
}

/// A random non-negative 63-bit key: std's `RandomState` is seeded from the operating
/// system's randomness; the pid and the time make two processes' keys differ regardless.
fn random_key() -> i64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    (h.finish() >> 1) as i64
}

/// Takes `key` as a session lock on `conn` if no other session holds it.
async fn try_lock(conn: &mut PgConnection, key: i64) -> Result<bool, StoreError> {
    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await
        .map_err(|e| StoreError::database(format!("liveness lock: {}", describe(&e))))
}

/// Keeps the connection that holds the lock for the process's life. If the connection is
/// lost (server restart, network), the lock went with it: others may take over this
/// process's leases (its renewals then fail and its runs stop), so take it again at once.
async fn keep(opts: Arc<PgConnectOptions>, mut conn: PgConnection, key: i64) {
    loop {
        tokio::time::sleep(KEEP_ALIVE).await;
        if sqlx::query("SELECT 1").execute(&mut conn).await.is_ok() {
            continue;
        }
        tracing::warn!(
            "lost the liveness connection to the database; other processes may take over this process's leases"
        );
        conn = relock(&opts, key).await;
    }
}

/// Connects again and retakes `key`, retrying until it succeeds.
async fn relock(opts: &PgConnectOptions, key: i64) -> PgConnection {
    loop {
        let attempt = async {
            let mut conn = PgConnection::connect_with(opts)
                .await
                .map_err(|e| StoreError::database(describe(&e)))?;
            match try_lock(&mut conn, key).await? {
                true => Ok(conn),
                false => Err(StoreError::database("the key is held by another session")),
            }
        };
        match attempt.await {
            Ok(conn) => {
                tracing::info!("liveness lock held again");
                return conn;
            }
            Err(e) => tracing::warn!("cannot retake the liveness lock: {e}"),
        }
        tokio::time::sleep(KEEP_ALIVE).await;
    }
}
