//! [`SqlStore`]: the store on SQLite or PostgreSQL, connected and migrated.
//!
//! Every operation is one short database transaction; none is held across a broker call.
//! Round trips are kept few on purpose (a PostgreSQL round trip costs tens of microseconds):
//! batches are multi-row statements, and a run's inputs load in two queries.
//! The operations live in one file per aggregate, each implementing one role of the engine's
//! store port.

use sqlx::migrate::Migrator;
use tradewarden_domain::InstallationId;
use tradewarden_engine::StoreError;

use crate::db::Pool;
use crate::sqlite_migrations;

/// The embedded migrations, one directory per database kind. PostgreSQL's run through
/// sqlx's migrator; SQLite's through [`sqlite_migrations`], in sqlx's bookkeeping.
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
            Pool::Sqlite(_) => sqlite_migrations::run(&pool, &SQLITE_MIGRATIONS, version).await,
            Pool::Postgres(p) => up_to(&POSTGRES_MIGRATIONS, version)
                .run(p)
                .await
                .map_err(migration_failed),
        };
        pool.close().await;
        res
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

/// The migrations of `all` up to `version` (sqlx 0.8's migrator has no `run_to`).
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
/// an advisory lock, so instances starting together migrate once; on SQLite each migration's
/// `BEGIN IMMEDIATE` does.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    match pool {
        Pool::Sqlite(_) => sqlite_migrations::run(pool, &SQLITE_MIGRATIONS, i64::MAX).await,
        Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await.map_err(migration_failed),
    }
}

/// sqlx's migration error as the store reports it.
fn migration_failed(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::database(format!("migration failed: {e}"))
}
