//! The embedded SQLite migrations, applied through the store's own connection (sqlx's
//! migrator needs sqlx's SQLite driver). The bookkeeping is sqlx's: the same
//! `_sqlx_migrations` table and rows, so a database either version made opens with the
//! other, and the same refusals with the same words.
//!
//! Nothing is written when the database is up to date (a read-only open then only reads).
//! Each pending migration is applied in its own `BEGIN IMMEDIATE` transaction, which first
//! looks again whether another process applied it meanwhile: processes starting together on
//! a fresh file apply each migration once.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::migrate::{Migration, Migrator};
use tradewarden_engine::StoreError;

use crate::db::{Pool, Tx, Val, map_err};

/// sqlx's table, as sqlx creates it on SQLite.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// A migration the database records as applied.
struct Applied {
    /// The SQL's checksum (SHA-384), as upper-case hex.
    checksum: String,
    /// `false` for a migration that failed halfway (sqlx's "dirty" state).
    success: bool,
}

/// Brings the SQLite database of `pool` to the migrations of `migrator` up to `target`
/// (all of them with `i64::MAX`). Refuses a database that records a failed migration, one
/// this binary does not have (made by a newer version) or one whose SQL changed.
pub(crate) async fn run(pool: &Pool, migrator: &Migrator, target: i64) -> Result<(), StoreError> {
    let applied = applied(pool).await?;
    check(&applied, migrator).map_err(failed)?;
    let pending = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| m.version <= target && !applied.contains_key(&m.version));
    for migration in pending {
        apply(pool, migration).await?;
    }
    Ok(())
}

/// The migrations the database records; none when it has no `_sqlx_migrations` table yet.
async fn applied(pool: &Pool) -> Result<HashMap<i64, Applied>, StoreError> {
    let table = pool
        .fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            &[],
        )
        .await?;
    if table.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = pool
        .fetch(
            "SELECT version, hex(checksum) AS checksum, success FROM _sqlx_migrations",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.i64("version")?,
                Applied {
                    checksum: r.text("checksum")?,
                    success: r.i64("success")? != 0,
                },
            ))
        })
        .collect()
}

/// sqlx's refusals, in its words: a failed migration, one missing from this binary, one
/// whose SQL changed.
fn check(applied: &HashMap<i64, Applied>, migrator: &Migrator) -> Result<(), String> {
    let mut versions: Vec<&i64> = applied.keys().collect();
    versions.sort();
    if let Some(v) = versions.iter().find(|v| !applied[**v].success) {
        return Err(format!(
            "migration {v} is partially applied; fix and remove row from `_sqlx_migrations` table"
        ));
    }
    for v in versions {
        let Some(known) = migrator.iter().find(|m| m.version == *v) else {
            return Err(format!(
                "migration {v} was previously applied but is missing in the resolved migrations"
            ));
        };
        if hex(&known.checksum) != applied[v].checksum {
            return Err(format!(
                "migration {v} was previously applied but has been modified"
            ));
        }
    }
    Ok(())
}

/// Applies one migration and records it, in one transaction, unless another process
/// applied it since [`applied`] looked.
async fn apply(pool: &Pool, migration: &Migration) -> Result<(), StoreError> {
    let start = Instant::now();
    let mut tx = pool.begin().await?;
    tx.execute(CREATE_TABLE, &[]).await.map_err(map_err)?;
    let done = tx
        .fetch_one(
            "SELECT version FROM _sqlx_migrations WHERE version = $1",
            &[migration.version.into()],
        )
        .await
        .map_err(map_err)?;
    if done.is_some() {
        return Ok(());
    }
    let Tx::Sqlite(sqlite) = &mut tx else {
        return Err(StoreError::database(
            "SQLite migrations on a PostgreSQL pool",
        ));
    };
    sqlite.execute_script(&migration.sql).map_err(|e| {
        failed(format!(
            "while executing migration {}: {}",
            migration.version,
            e.describe()
        ))
    })?;
    let nanos = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, unhex($3), $4)",
        &[
            migration.version.into(),
            Val::from(migration.description.as_ref()),
            hex(&migration.checksum).into(),
            nanos.into(),
        ],
    )
    .await
    .map_err(map_err)?;
    tx.commit().await
}

/// `bytes` as upper-case hex, as SQLite's `hex()` writes them.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A refusal or failure as the store reports it: `migration failed: …`.
fn failed(message: String) -> StoreError {
    StoreError::database(format!("migration failed: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrator of `(version, sql)` pairs.
    fn migrator(migrations: &[(i64, &'static str)]) -> Migrator {
        Migrator {
            migrations: migrations
                .iter()
                .map(|(v, sql)| {
                    Migration::new(
                        *v,
                        format!("m{v}").into(),
                        sqlx::migrate::MigrationType::Simple,
                        (*sql).into(),
                        false,
                    )
                })
                .collect(),
            ..Migrator::DEFAULT
        }
    }

    async fn memory() -> Pool {
        Pool::connect("sqlite::memory:").await.unwrap()
    }

    async fn versions(pool: &Pool) -> Vec<i64> {
        pool.fetch("SELECT version FROM _sqlx_migrations ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.i64("version").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn applies_in_order_up_to_a_target_then_the_rest_once() {
        let pool = memory().await;
        let m = migrator(&[
            (1, "CREATE TABLE a (x INTEGER);"),
            (
                2,
                "ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b (z TEXT);",
            ),
        ]);
        run(&pool, &m, 1).await.unwrap();
        assert_eq!(versions(&pool).await, [1]);
        run(&pool, &m, i64::MAX).await.unwrap();
        run(&pool, &m, i64::MAX).await.unwrap();
        assert_eq!(versions(&pool).await, [1, 2]);
        pool.execute("INSERT INTO b (z) VALUES ('ok')", &[])
            .await
            .unwrap();
        let row = &pool
            .fetch(
                "SELECT hex(checksum) AS c, success, execution_time FROM _sqlx_migrations WHERE version = 2",
                &[],
            )
            .await
            .unwrap()[0];
        assert_eq!(
            row.text("c").unwrap(),
            hex(&m.iter().nth(1).unwrap().checksum)
        );
        assert_eq!(row.i64("success").unwrap(), 1);
        assert!(row.i64("execution_time").unwrap() >= 0);
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_nothing_behind() {
        let pool = memory().await;
        let m = migrator(&[(
            1,
            "CREATE TABLE a (x INTEGER); INSERT INTO nowhere VALUES (1);",
        )]);
        let err = run(&pool, &m, i64::MAX).await.unwrap_err().to_string();
        assert!(
            err.contains("migration failed: while executing migration 1: no such table: nowhere"),
            "{err}"
        );
        let tables = pool
            .fetch(
                "SELECT name FROM sqlite_master WHERE name IN ('a', '_sqlx_migrations')",
                &[],
            )
            .await
            .unwrap();
        assert!(tables.is_empty(), "rolled back whole");
    }

    #[tokio::test]
    async fn refuses_a_newer_a_modified_or_a_dirty_database() {
        let old = migrator(&[(1, "CREATE TABLE a (x INTEGER);")]);
        let newer = migrator(&[
            (1, "CREATE TABLE a (x INTEGER);"),
            (2, "CREATE TABLE b (y TEXT);"),
        ]);
        let modified = migrator(&[(1, "CREATE TABLE a (x TEXT);")]);

        let pool = memory().await;
        run(&pool, &newer, i64::MAX).await.unwrap();
        let err = run(&pool, &old, i64::MAX).await.unwrap_err().to_string();
        assert!(
            err.contains("migration failed: migration 2 was previously applied but is missing in the resolved migrations"),
            "{err}"
        );
        let err = run(&pool, &modified, i64::MAX)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("migration 1 was previously applied but has been modified"),
            "{err}"
        );
        pool.execute(
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2",
            &[],
        )
        .await
        .unwrap();
        let err = run(&pool, &newer, i64::MAX).await.unwrap_err().to_string();
        assert!(err.contains("migration 2 is partially applied"), "{err}");
    }

    /// A database sqlx made: its table and row format, written here as sqlx writes them.
    #[tokio::test]
    async fn a_database_sqlx_migrated_is_recognised() {
        let pool = memory().await;
        let m = migrator(&[
            (1, "CREATE TABLE a (x INTEGER);"),
            (2, "CREATE TABLE b (y TEXT);"),
        ]);
        let first = m.iter().next().unwrap();
        pool.execute(CREATE_TABLE, &[]).await.unwrap();
        pool.execute(&first.sql, &[]).await.unwrap();
        pool.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (1, 'm1', TRUE, unhex($1), 1234)",
            &[hex(&first.checksum).into()],
        )
        .await
        .unwrap();
        run(&pool, &m, i64::MAX).await.unwrap();
        assert_eq!(versions(&pool).await, [1, 2]);
    }
}
