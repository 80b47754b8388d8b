//! [`SqlStore`]: the store on SQLite or PostgreSQL, connected and migrated.
//!
//! Every operation is one short database transaction; none is held across a broker call.
//! Round trips are kept few on purpose (a SQLite round trip through sqlx costs tens of
//! microseconds): batches are multi-row statements, and a run's inputs load in two queries.
//! The operations live in one file per aggregate, each implementing one role of the engine's
//! store port.

use sqlx::migrate::Migrator;
use tradewarden_engine::StoreError;

use crate::db::{Kind, Pool};

/// The embedded migrations, one directory per database kind.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on one database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: Pool,
}

impl SqlStore {
    /// Connects to `sqlite://PATH` or `postgres://…` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        let pool = Pool::connect(url).await?;
        let store = SqlStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations of this database kind. On PostgreSQL the migrator
    /// takes an advisory lock, so instances starting together migrate once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // SQLite has no migration lock: processes starting together on a fresh file can race
        // to create the tables. The loser sees the winner's work on a second look.
        let mut attempt = 0;
        loop {
            let res = match &self.pool {
                Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
                Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await,
            };
            match res {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 && self.pool.kind() == Kind::Sqlite => {
                    attempt += 1;
                    tracing::debug!("migration attempt {attempt} failed ({e}); retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(StoreError::database(format!("migration failed: {e}"))),
            }
        }
    }

    /// The underlying pool (for tests).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}
