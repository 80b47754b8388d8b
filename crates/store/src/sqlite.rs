//! SQLite through rusqlite: one connection per process, and every statement runs inline on
//! the task that asks for it. No worker thread: sqlx-sqlite handed every statement and every
//! row to one, which cost more than the statements themselves.
//!
//! The connection sits behind an async mutex. A transaction holds the mutex from
//! `BEGIN IMMEDIATE` to `COMMIT` (or its rollback on drop), so a process has one writer at a
//! time, as SQLite allows anyway; a statement outside a transaction takes it for itself.
//! Another process's write lock is never waited for inside SQLite (`busy_timeout = 0`, which
//! would block the async runtime's thread): a busy answer is retried after an async sleep.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::{Type, ValueRef};
use rusqlite::{CachedStatement, Connection, ErrorCode, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::db::{DbError, Row, UrlError, Val, param_key, percent_decode, time_text};

/// Prepared statements kept per connection: every statement the store runs, with room for
/// the multi-row statements of different lengths.
const STATEMENT_CACHE: usize = 256;

/// How long a write waits for another process's write lock before failing (transient):
/// the busy timeout the store had on sqlx.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The sleeps between attempts to get another process's write lock, in milliseconds; the
/// last repeats until [`LOCK_WAIT`] has passed.
const BACKOFF_MS: [u64; 6] = [1, 2, 5, 10, 20, 50];

/// How a `sqlite:` URL opens its database (its `mode` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `mode=ro`: read only; the file must exist.
    ReadOnly,
    /// `mode=rw`: read and write; the file must exist.
    ReadWrite,
    /// `mode=rwc` (the default): read and write, the file created if missing.
    ReadWriteCreate,
    /// `mode=memory` or `sqlite::memory:`: a private database in memory.
    Memory,
}

/// A parsed `sqlite:` URL: `sqlite://PATH[?mode=ro|rw|rwc|memory]` or `sqlite::memory:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqliteUrl {
    /// The file (percent-decoded); `:memory:` for a database in memory.
    pub(crate) path: PathBuf,
    pub(crate) mode: Mode,
}

impl SqliteUrl {
    /// Parses `url`. Any parameter other than `mode` is refused: a [`UrlError::Invalid`]
    /// that says `bad connection URL` and names it ([`UrlError::Parameter`] is PostgreSQL's,
    /// answered with its list of parameters).
    pub(crate) fn parse(url: &str) -> Result<SqliteUrl, UrlError> {
        let bad = |why: String| UrlError::Invalid(format!("bad connection URL: {why}"));
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or(UrlError::Scheme)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(bad("expected sqlite://PATH".into()));
        }
        let mut mode = if path == ":memory:" {
            Mode::Memory
        } else {
            Mode::ReadWriteCreate
        };
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let key = param_key(param);
            if key != "mode" {
                return Err(bad(format!(
                    "unsupported parameter `{key}` (supported: mode)"
                )));
            }
            let value = param.split_once('=').map_or("", |(_, v)| v);
            mode = match value {
                "ro" => Mode::ReadOnly,
                "rw" => Mode::ReadWrite,
                "rwc" => Mode::ReadWriteCreate,
                "memory" => Mode::Memory,
                other => {
                    return Err(bad(format!(
                        "mode: expected ro, rw, rwc or memory, got {other:?}"
                    )));
                }
            };
        }
        Ok(SqliteUrl {
            path: PathBuf::from(percent_decode(path, false)),
            mode,
        })
    }

    /// `sqlite://PATH`, for messages.
    pub(crate) fn target(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

/// The process's connection to one SQLite database. Clones share it. `None` once closed.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Option<Connection>>>,
}

impl SqliteDb {
    /// Opens the database `url` names with the store's settings: foreign keys on; a
    /// writable file in WAL mode with `synchronous = NORMAL`.
    pub(crate) async fn open(url: &SqliteUrl) -> Result<SqliteDb, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = match url.mode {
            Mode::Memory => Connection::open_in_memory()?,
            Mode::ReadOnly => {
                Connection::open_with_flags(&url.path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY)?
            }
            Mode::ReadWrite => {
                Connection::open_with_flags(&url.path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)?
            }
            Mode::ReadWriteCreate => Connection::open_with_flags(
                &url.path,
                flags | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?,
        };
        conn.busy_timeout(Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut settings = vec!["PRAGMA foreign_keys = ON"];
        if matches!(url.mode, Mode::ReadWrite | Mode::ReadWriteCreate) {
            settings.extend(["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"]);
        }
        for sql in settings {
            // Switching to WAL takes the write lock, which another process may hold.
            retry_busy(&mut conn, |c| execute(c, sql, &[])).await?;
        }
        Ok(SqliteDb {
            conn: Arc::new(Mutex::new(Some(conn))),
        })
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE`, which takes the write lock up front
    /// (a deferred transaction that reads then writes can fail with SQLITE_BUSY under WAL),
    /// waiting out another process's for up to [`LOCK_WAIT`].
    pub(crate) async fn begin(&self) -> Result<SqliteTx, DbError> {
        let mut guard = self.conn.clone().lock_owned().await;
        let conn = guard.as_mut().ok_or(DbError::Closed)?;
        retry_busy(conn, |c| execute(c, "BEGIN IMMEDIATE", &[])).await?;
        Ok(SqliteTx { guard, open: true })
    }

    /// Runs one statement outside any explicit transaction; returns the rows it changed.
    pub(crate) async fn execute(&self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or(DbError::Closed)?;
        Ok(retry_busy(conn, |c| execute(c, sql, args)).await?)
    }

    /// Fetches rows outside any explicit transaction.
    pub(crate) async fn fetch(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>, DbError> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or(DbError::Closed)?;
        Ok(retry_busy(conn, |c| fetch(c, sql, args)).await?)
    }

    /// Closes the connection (its file locks go with it); later calls fail with
    /// [`DbError::Closed`].
    pub(crate) async fn close(&self) {
        let Some(conn) = self.conn.lock().await.take() else {
            return;
        };
        if let Err((_, e)) = conn.close() {
            tracing::warn!("closing the SQLite database: {e}");
        }
    }
}

/// An open write transaction: holds the connection until it commits or is dropped, which
/// rolls it back.
#[derive(Debug)]
pub struct SqliteTx {
    guard: OwnedMutexGuard<Option<Connection>>,
    /// Whether `COMMIT` is still to come.
    open: bool,
}

impl SqliteTx {
    fn conn(&self) -> Result<&Connection, DbError> {
        self.guard.as_ref().ok_or(DbError::Closed)
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        Ok(execute(self.conn()?, sql, args)?)
    }

    /// Fetches rows.
    pub(crate) fn fetch(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, DbError> {
        Ok(fetch(self.conn()?, sql, args)?)
    }

    /// Runs a script of statements without parameters (a migration).
    pub(crate) fn execute_script(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.conn()?.execute_batch(sql)?)
    }

    /// Commits.
    pub(crate) fn commit(mut self) -> Result<(), DbError> {
        execute(self.conn()?, "COMMIT", &[])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        // A failed statement may have ended the transaction already (SQLite rolls back on
        // some errors): then there is nothing to roll back.
        if let (true, Some(conn)) = (self.open, self.guard.as_ref())
            && !conn.is_autocommit()
            && let Err(e) = execute(conn, "ROLLBACK", &[])
        {
            tracing::warn!("rolling back a SQLite transaction: {e}");
        }
    }
}

/// Whether SQLite answered that another connection holds a lock this statement needs.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs `attempt` on `conn` until SQLite stops answering busy, sleeping (asynchronously)
/// between attempts, for up to [`LOCK_WAIT`]; then its busy error. Only for statements
/// outside a transaction and `BEGIN`: a busy statement had no effect, so running it again
/// is safe. `conn` is taken `&mut` so that the future stays `Send` (a `Connection` is not
/// `Sync`).
async fn retry_busy<T>(
    conn: &mut Connection,
    attempt: impl Fn(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let start = Instant::now();
    let mut sleeps = BACKOFF_MS
        .into_iter()
        .chain(std::iter::repeat(BACKOFF_MS[BACKOFF_MS.len() - 1]));
    loop {
        let result = attempt(conn);
        match (result, sleeps.next()) {
            (Err(e), Some(ms)) if is_busy(&e) && start.elapsed() < LOCK_WAIT => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            (result, _) => return result,
        }
    }
}

/// The cached statement for `sql` with `args` bound.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[Val],
) -> Result<CachedStatement<'c>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, args)?;
    Ok(stmt)
}

/// Binds `args` to the statement's parameters: `$n` (and `?n`) to `args[n - 1]`, an
/// anonymous `?` by its position. SQLite numbers `$n` parameters in order of first
/// appearance, not by `n`, so each is looked up by its name.
fn bind(stmt: &mut CachedStatement<'_>, args: &[Val]) -> Result<(), rusqlite::Error> {
    let mut needed = 0;
    for index in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(index) {
            None => index,
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_string()))?,
        };
        needed = needed.max(n);
        let Some(arg) = args.get(n - 1) else {
            continue;
        };
        match arg {
            Val::I64(Some(v)) => stmt.raw_bind_parameter(index, v)?,
            Val::Text(Some(v)) => stmt.raw_bind_parameter(index, v.as_str())?,
            Val::Dec(Some(v)) => stmt.raw_bind_parameter(index, v.normalize().to_string())?,
            Val::Time(Some(v)) => stmt.raw_bind_parameter(index, time_text(*v))?,
            Val::I64(None) | Val::Text(None) | Val::Dec(None) | Val::Time(None) => {
                stmt.raw_bind_parameter(index, rusqlite::types::Null)?
            }
        }
    }
    if needed != args.len() {
        return Err(rusqlite::Error::InvalidParameterCount(args.len(), needed));
    }
    Ok(())
}

/// Runs one statement; returns the rows it changed. One that returns rows (`… RETURNING`)
/// is run to its end, its rows dropped.
fn execute(conn: &Connection, sql: &str, args: &[Val]) -> Result<u64, rusqlite::Error> {
    let mut stmt = prepare(conn, sql, args)?;
    if stmt.column_count() == 0 {
        return Ok(stmt.raw_execute()? as u64);
    }
    let writes = !stmt.readonly();
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(if writes { conn.changes() } else { 0 })
}

/// Runs one statement and decodes its rows: INTEGER as [`Val::I64`], TEXT as
/// [`Val::Text`] (decimals and times are TEXT on SQLite), REAL as its text, NULL as
/// `Val::Text(None)`, which every accessor reads as null.
fn fetch(conn: &Connection, sql: &str, args: &[Val]) -> Result<Vec<Row>, rusqlite::Error> {
    let mut stmt = prepare(conn, sql, args)?;
    let names: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Val::Text(None),
                ValueRef::Integer(v) => Val::I64(Some(v)),
                ValueRef::Real(v) => Val::Text(Some(v.to_string())),
                ValueRef::Text(bytes) => Val::Text(Some(
                    std::str::from_utf8(bytes)
                        .map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))
                        })?
                        .to_string(),
                )),
                ValueRef::Blob(_) => {
                    return Err(rusqlite::Error::InvalidColumnType(
                        i,
                        name.clone(),
                        Type::Blob,
                    ));
                }
            });
        }
        out.push(Row::new(names.clone(), vals));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn urls_parse_to_a_path_and_a_mode() {
        let parse = |u: &str| SqliteUrl::parse(u).map(|p| (p.path, p.mode));
        assert_eq!(
            parse("sqlite://dir/x.db?mode=ro"),
            Ok(("dir/x.db".into(), Mode::ReadOnly))
        );
        assert_eq!(
            parse("sqlite:///abs/my%20x.db"),
            Ok(("/abs/my x.db".into(), Mode::ReadWriteCreate))
        );
        assert_eq!(
            parse("sqlite:x.db?mode=rw"),
            Ok(("x.db".into(), Mode::ReadWrite))
        );
        assert_eq!(
            parse("sqlite::memory:"),
            Ok((":memory:".into(), Mode::Memory))
        );
        assert_eq!(parse("sqlite://x.db?mode=memory").unwrap().1, Mode::Memory);
        assert_eq!(
            parse("sqlite://x.db?cache=shared"),
            Err(UrlError::Invalid(
                "bad connection URL: unsupported parameter `cache` (supported: mode)".into()
            ))
        );
        assert!(
            matches!(parse("sqlite://x.db?mode=rx"), Err(UrlError::Invalid(m)) if m.contains("\"rx\""))
        );
        assert!(matches!(parse("sqlite://"), Err(UrlError::Invalid(_))));
    }

    #[test]
    fn numbered_parameters_bind_by_number_wherever_they_appear() {
        let conn = memory();
        let rows = fetch(
            &conn,
            "SELECT $2 AS b, $1 AS a, $2 || $1 AS ba",
            &["x".into(), "y".into()],
        )
        .unwrap();
        assert_eq!(rows[0].text("b").unwrap(), "y");
        assert_eq!(rows[0].text("a").unwrap(), "x");
        assert_eq!(rows[0].text("ba").unwrap(), "yx");
        let rows = fetch(&conn, "SELECT ? AS a, ? AS b", &[1.into(), 2.into()]).unwrap();
        assert_eq!(rows[0].i64("b").unwrap(), 2);
        assert!(matches!(
            fetch(
                &conn,
                "SELECT $1 AS a, $3 AS c",
                &[1.into(), 2.into(), 3.into(), 4.into()]
            ),
            Err(rusqlite::Error::InvalidParameterCount(4, 3))
        ));
        assert!(fetch(&conn, "SELECT :name AS a", &[1.into()]).is_err());
    }

    #[test]
    fn values_go_in_and_come_out_typed() {
        let conn = memory();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:07.5Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let d = rust_decimal::Decimal::new(12_500, 3);
        let rows = fetch(
            &conn,
            "SELECT $1 AS i, $2 AS d, $3 AS t, $4 AS n, 1.5 AS r",
            &[7.into(), d.into(), t.into(), Val::Text(None)],
        )
        .unwrap();
        let r = &rows[0];
        assert_eq!(r.i64("i").unwrap(), 7);
        assert_eq!(r.text("d").unwrap(), "12.5", "normalised decimal text");
        assert_eq!(r.dec("d").unwrap(), d);
        assert_eq!(r.text("t").unwrap(), "2026-11-27T10:00:07.500000Z");
        assert_eq!(r.time("t").unwrap(), t);
        assert_eq!(r.opt_i64("n").unwrap(), None);
        assert_eq!(r.dec("r").unwrap(), rust_decimal::Decimal::new(15, 1));
        assert!(
            fetch(&conn, "SELECT x'00' AS b", &[]).is_err(),
            "BLOB is refused"
        );
    }

    #[test]
    fn execute_counts_changes_and_runs_returning_statements_to_their_end() {
        let conn = memory();
        execute(
            &conn,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
            &[],
        )
        .unwrap();
        let n = execute(
            &conn,
            "INSERT INTO t (v) VALUES ($1), ($2) RETURNING id",
            &["a".into(), "b".into()],
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(execute(&conn, "SELECT id FROM t", &[]).unwrap(), 0);
        assert_eq!(execute(&conn, "DELETE FROM t", &[]).unwrap(), 2);
    }

    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_rolls_back() {
        let db = SqliteDb::open(&SqliteUrl::parse("sqlite::memory:").unwrap())
            .await
            .unwrap();
        db.execute("CREATE TABLE t (v TEXT)", &[]).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t (v) VALUES ('x')", &[]).unwrap();
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t (v) VALUES ('y')", &[]).unwrap();
        tx.commit().unwrap();
        let rows = db.fetch("SELECT v FROM t", &[]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].text("v").unwrap(), "y");
        db.close().await;
        assert!(matches!(
            db.fetch("SELECT 1", &[]).await,
            Err(DbError::Closed)
        ));
    }

    /// Another process's write lock is waited out without blocking the runtime: the
    /// writer here releases its lock from a task on the same single thread, which could
    /// not run if `begin` blocked in SQLite's busy handler.
    #[tokio::test(flavor = "current_thread")]
    async fn another_connections_write_lock_is_waited_out_asynchronously() {
        let dir = tempfile::tempdir().unwrap();
        let url =
            SqliteUrl::parse(&format!("sqlite://{}", dir.path().join("x.db").display())).unwrap();
        let ours = SqliteDb::open(&url).await.unwrap();
        ours.execute("CREATE TABLE t (v TEXT)", &[]).await.unwrap();
        let theirs = SqliteDb::open(&url).await.unwrap();
        let mut held = theirs.begin().await.unwrap();
        held.execute("INSERT INTO t (v) VALUES ('theirs')", &[])
            .unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            held.commit().unwrap();
        });
        let n = ours
            .execute("INSERT INTO t (v) VALUES ('ours')", &[])
            .await
            .unwrap();
        assert_eq!(n, 1);
        release.await.unwrap();
        let rows = ours
            .fetch("SELECT v FROM t ORDER BY rowid", &[])
            .await
            .unwrap();
        let vals: Vec<String> = rows.iter().map(|r| r.text("v").unwrap()).collect();
        assert_eq!(vals, ["theirs", "ours"]);
    }
}
