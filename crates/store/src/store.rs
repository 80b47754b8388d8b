//! [`SqlStore`]: the store on SQLite or PostgreSQL, connected and migrated.
//!
//! Every operation is one short database transaction; none is held across a broker call.
//! Round trips are kept few on purpose (a SQLite round trip through sqlx costs tens of
//! microseconds): batches are multi-row statements, and a run's inputs load in two queries.
//! The operations live in one file per aggregate, each implementing one role of the engine's
//! store port.

use sqlx::migrate::Migrator;
use tradewarden_domain::InstallationId;
use tradewarden_engine::StoreError;

use crate::db::{Kind, Pool};

/// The embedded migrations, one directory per database kind.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on one database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: Pool,
    /// This database's id inside every client_order_id it gives out (read once at connect:
    /// it never changes).
    pub(crate) installation: InstallationId,
}

impl SqlStore {
    /// Connects to `sqlite://PATH` or `postgres://…` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        let pool = Pool::connect(url).await?;
        migrate(&pool).await?;
        let installation = installation_of(&pool).await?;
        Ok(SqlStore { pool, installation })
    }

    /// This database's installation id.
    pub fn installation(&self) -> &InstallationId {
        &self.installation
    }

    /// Brings the database at `url` to schema `version` and no further, as an older release
    /// left it: for tests that upgrade such a database. The application never calls it.
    pub async fn migrate_to(url: &str, version: i64) -> Result<(), StoreError> {
        let pool = Pool::connect(url).await?;
        let res = match &pool {
            Pool::Sqlite(p) => up_to(&SQLITE_MIGRATIONS, version).run(p).await,
            Pool::Postgres(p) => up_to(&POSTGRES_MIGRATIONS, version).run(p).await,
        };
        pool.close().await;
        res.map_err(|e| StoreError::database(format!("migration failed: {e}")))
    }

    /// Applies the embedded migrations of this database kind (done by [`SqlStore::connect`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool).await
    }

    /// The underlying pool (for tests).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// The migrations of `all` up to `version`: sqlx 0.8's migrator has no `run_to`.
fn up_to(all: &Migrator, version: i64) -> Migrator {
    Migrator {
        migrations: all
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
        ..Migrator::DEFAULT
    }
}

/// The installation id migration 0005 wrote.
async fn installation_of(pool: &Pool) -> Result<InstallationId, StoreError> {
    let rows = pool
        .fetch("SELECT id FROM installation WHERE singleton = 1", &[])
        .await?;
    let id = rows
        .first()
        .ok_or_else(|| StoreError::database("the installation table has no row"))?
        .text("id")?;
    InstallationId::parse(&id).map_err(StoreError::database)
}

/// Applies the embedded migrations of this database kind. On PostgreSQL the migrator takes
/// an advisory lock, so instances starting together migrate once.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    // SQLite has no migration lock: processes starting together on a fresh file can race to
    // create the tables. The loser sees the winner's work on a second look.
    let mut attempt = 0;
    loop {
        let res = match pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await,
        };
        match res {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 && pool.kind() == Kind::Sqlite => {
                attempt += 1;
                tracing::debug!("migration attempt {attempt} failed ({e}); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => return Err(StoreError::database(format!("migration failed: {e}"))),
        }
    }
}
