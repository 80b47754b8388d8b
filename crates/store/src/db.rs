//! A thin dialect layer so the store's logic and SQL are written once for SQLite (rusqlite,
//! one connection, `sqlite.rs`) and PostgreSQL (sqlx).
//!
//! Values cross it as [`Val`]: decimals and times are TEXT on SQLite (a fixed-width UTC
//! format keeps text times ordered) and native `numeric` / `timestamptz` on PostgreSQL. Rows
//! come back as [`Row`], whose accessors parse either form. SQL uses `$n` placeholders, which
//! both accept (one statement a call); anonymous `?` binds by position on SQLite.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPoolOptions, Postgres};
use sqlx::{Column, Connection, Row as _, TypeInfo};
use tradewarden_engine::StoreError;

use crate::sqlite::{SqliteDb, SqliteTx, SqliteUrl, is_busy};

/// A bound or fetched value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    I64(Option<i64>),
    Text(Option<String>),
    Dec(Option<Decimal>),
    Time(Option<DateTime<Utc>>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::I64(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(str::to_string))
    }
}
impl From<Decimal> for Val {
    fn from(v: Decimal) -> Self {
        Val::Dec(Some(v))
    }
}
impl From<Option<Decimal>> for Val {
    fn from(v: Option<Decimal>) -> Self {
        Val::Dec(v)
    }
}
impl From<DateTime<Utc>> for Val {
    fn from(v: DateTime<Utc>) -> Self {
        Val::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Val {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Val::Time(v)
    }
}

/// The text form of a time on SQLite: fixed width, so text order is time order.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A fetched row: column names (shared by all rows of one result) with their values.
#[derive(Debug, Clone, Default)]
pub struct Row {
    names: std::sync::Arc<[String]>,
    vals: Vec<Val>,
}

/// The column names of a result, read once from its first row.
fn names_of<R: sqlx::Row>(rows: &[R]) -> std::sync::Arc<[String]> {
    rows.first()
        .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
        .unwrap_or_default()
}

/// A failed statement or transaction, from either database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite's answer (rusqlite).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's answer, or the connection's failure (sqlx).
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// The SQLite connection was closed ([`Pool::close`]).
    #[error("the database connection is closed")]
    Closed,
}

/// SQLite's extended result codes for a UNIQUE and a PRIMARY KEY constraint failure.
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;

impl DbError {
    /// Whether this is a unique-constraint violation (SQLite 2067, PostgreSQL 23505).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.extended_code,
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            DbError::Sqlite(_) | DbError::Closed => false,
            DbError::Postgres(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation()),
        }
    }

    /// Whether trying again may help: the database was busy or locked (SQLite), the
    /// connection was lost, closed or timed out, or a serialization failure or deadlock
    /// ended the transaction (PostgreSQL).
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sqlite(e) => is_busy(e),
            DbError::Closed => true,
            DbError::Postgres(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
            ) => true,
            DbError::Postgres(sqlx::Error::Database(d)) => matches!(
                d.code().as_deref(),
                Some("40001" | "40P01" | "57P01" | "08006" | "08003")
            ),
            DbError::Postgres(_) => false,
        }
    }

    /// One line for people: SQLite's message with its extended code (`… (code 2067)`), or
    /// [`describe`] of a PostgreSQL error.
    pub fn describe(&self) -> String {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(f, message)) => {
                let text = message.clone().unwrap_or_else(|| f.to_string());
                format!("{text} (code {})", f.extended_code)
            }
            DbError::Sqlite(e) => e.to_string(),
            DbError::Postgres(e) => describe(e),
            DbError::Closed => self.to_string(),
        }
    }
}

fn db_err(e: impl Into<DbError>) -> StoreError {
    let e = e.into();
    StoreError::Database {
        message: e.describe(),
        transient: e.is_transient(),
        source: Some(std::sync::Arc::new(e)),
    }
}

/// A sqlx (PostgreSQL) error as one line for people. A database error is told by its
/// message, detail and code: the Display of sqlx's `PgDatabaseError` ends with `at line N`, a
/// line of the server's C source, which means nothing to a user. An I/O error is told by its
/// kind (`connection refused`).
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => {
            let mut s = d.message().to_string();
            match d.try_downcast_ref::<PgDatabaseError>() {
                Some(pg) => {
                    if let Some(detail) = pg.detail() {
                        s.push_str(&format!(": {detail}"));
                    }
                    s.push_str(&format!(" (SQLSTATE {})", pg.code()));
                }
                None => {
                    if let Some(code) = d.code() {
                        s.push_str(&format!(" (code {code})"));
                    }
                }
            }
            s
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::TimedOut => "timed out".into(),
            _ => io.to_string(),
        },
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::Configuration(c) => format!("bad connection URL: {c}"),
        other => other.to_string(),
    }
}

impl Row {
    /// A row of `vals` under the result's column `names`.
    pub(crate) fn new(names: std::sync::Arc<[String]>, vals: Vec<Val>) -> Row {
        Row { names, vals }
    }

    fn get(&self, name: &str) -> Result<&Val, StoreError> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.vals.get(i))
            .ok_or_else(|| StoreError::database(format!("column {name} missing from result")))
    }

    fn bad(name: &str, v: &Val, want: &str) -> StoreError {
        StoreError::database(format!("column {name}: expected {want}, got {v:?}"))
    }

    /// An optional integer.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.get(name)? {
            Val::I64(v) => Ok(*v),
            Val::Text(None) | Val::Dec(None) | Val::Time(None) => Ok(None),
            v => Err(Self::bad(name, v, "integer")),
        }
    }
    /// An integer.
    pub fn i64(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_i64(name)?
            .ok_or_else(|| StoreError::database(format!("column {name} is null")))
    }
    /// An optional text.
    pub fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.get(name)? {
            Val::Text(v) => Ok(v.clone()),
            Val::I64(None) | Val::Dec(None) | Val::Time(None) => Ok(None),
            v => Err(Self::bad(name, v, "text")),
        }
    }
    /// A text.
    pub fn text(&self, name: &str) -> Result<String, StoreError> {
        self.opt_text(name)?
            .ok_or_else(|| StoreError::database(format!("column {name} is null")))
    }
    /// An optional decimal, from numeric or text; normalised (PostgreSQL pads with zeros).
    pub fn opt_dec(&self, name: &str) -> Result<Option<Decimal>, StoreError> {
        match self.get(name)? {
            Val::Dec(v) => Ok(v.map(|d| d.normalize())),
            Val::Text(Some(s)) => Decimal::from_str(s)
                .map(|d| Some(d.normalize()))
                .map_err(|_| Self::bad(name, &Val::Text(Some(s.clone())), "decimal")),
            Val::I64(Some(i)) => Ok(Some(Decimal::from(*i))),
            Val::Text(None) | Val::I64(None) | Val::Time(None) => Ok(None),
            v => Err(Self::bad(name, v, "decimal")),
        }
    }
    /// A decimal.
    pub fn dec(&self, name: &str) -> Result<Decimal, StoreError> {
        self.opt_dec(name)?
            .ok_or_else(|| StoreError::database(format!("column {name} is null")))
    }
    /// An optional time, from timestamptz or RFC 3339 text.
    pub fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.get(name)? {
            Val::Time(v) => Ok(*v),
            Val::Text(Some(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| Self::bad(name, &Val::Text(Some(s.clone())), "time")),
            Val::Text(None) | Val::I64(None) | Val::Dec(None) => Ok(None),
            v => Err(Self::bad(name, v, "time")),
        }
    }
    /// A time.
    pub fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(name)?
            .ok_or_else(|| StoreError::database(format!("column {name} is null")))
    }

    fn from_pg(
        row: &sqlx::postgres::PgRow,
        names: &std::sync::Arc<[String]>,
    ) -> Result<Row, sqlx::Error> {
        let mut vals = Vec::with_capacity(names.len());
        for (i, c) in row.columns().iter().enumerate() {
            let v = match c.type_info().name() {
                "INT8" => Val::I64(row.try_get::<Option<i64>, _>(i)?),
                "INT4" => Val::I64(row.try_get::<Option<i32>, _>(i)?.map(i64::from)),
                "INT2" => Val::I64(row.try_get::<Option<i16>, _>(i)?.map(i64::from)),
                "BOOL" => Val::I64(row.try_get::<Option<bool>, _>(i)?.map(i64::from)),
                "NUMERIC" => Val::Dec(row.try_get::<Option<Decimal>, _>(i)?),
                "TIMESTAMPTZ" => Val::Time(row.try_get::<Option<DateTime<Utc>>, _>(i)?),
                _ => Val::Text(row.try_get::<Option<String>, _>(i)?),
            };
            vals.push(v);
        }
        Ok(Row {
            names: names.clone(),
            vals,
        })
    }
}

macro_rules! bind_pg {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Val::I64(v) => q.bind(*v),
                Val::Text(v) => q.bind(v.clone()),
                Val::Dec(v) => q.bind(*v),
                Val::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A database of either kind: SQLite's one connection, or a PostgreSQL pool.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqliteDb),
    Postgres(sqlx::PgPool),
}

/// An open write transaction of either kind. Dropping it rolls back. On SQLite it holds
/// the process's one connection: while it is open, the same pool's other calls wait for it,
/// so code holding one must do its work through it, never through the pool.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// The URL parameter that carries [`ConnectOptions::timeout`] for PostgreSQL, in whole
/// seconds (libpq's name for it).
pub const CONNECT_TIMEOUT_PARAM: &str = "connect_timeout";

/// The PostgreSQL URL parameters the driver (sqlx 0.8) uses; `options[NAME]` is accepted too.
/// Any other is refused by [`check_url`]: the driver would ignore it and log its value, which
/// may be a secret (`sslpassword`).
pub const PG_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Why a database URL cannot be used. Never contains the URL (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Neither `sqlite:` nor `postgres://` / `postgresql://`.
    #[error("expected sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    Scheme,
    /// A PostgreSQL parameter the driver does not use (SQLite's are [`UrlError::Invalid`]).
    #[error("unsupported parameter `{0}`")]
    Parameter(String),
    /// The driver cannot parse it.
    #[error("{0}")]
    Invalid(String),
}

/// How [`Pool::connect`] opens a database beyond what the URL names. It travels inside the
/// URL ([`ConnectOptions::apply_to`]), so every constructor that takes a URL (the store's
/// `SqlStore::connect` included) honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// PostgreSQL: how long one connection attempt, and a wait for a pooled connection, may
    /// take. SQLite opens a local file; its waits for another process's write lock are
    /// bounded by 30 s.
    pub timeout: Duration,
    /// SQLite: open with `mode=ro`: nothing is created or written, no file comes into being
    /// (the store's migrations then only read). PostgreSQL: no effect.
    pub read_only: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(30),
            read_only: false,
        }
    }
}

impl ConnectOptions {
    /// `url` carrying these options: `connect_timeout=SECONDS` on PostgreSQL, `mode=ro` on a
    /// read-only SQLite URL. Parameters of the same names already in `url` are replaced.
    pub fn apply_to(&self, url: &str) -> String {
        let (base, mut params) = split_query(url);
        let (key, value) = match kind_of(url) {
            Some(Kind::Postgres) => (
                CONNECT_TIMEOUT_PARAM,
                self.timeout.as_secs().max(1).to_string(),
            ),
            Some(Kind::Sqlite) if self.read_only => ("mode", "ro".to_string()),
            _ => return url.to_string(),
        };
        params.retain(|p| param_key(p) != key);
        params.push(format!("{key}={value}"));
        format!("{base}?{}", params.join("&"))
    }

    /// Splits these options off `url`: the URL to hand the driver, and the options.
    fn take_from(url: &str) -> Result<(String, ConnectOptions), StoreError> {
        let mut opts = ConnectOptions::default();
        if kind_of(url) == Some(Kind::Sqlite) {
            let (_, params) = split_query(url);
            opts.read_only = params.iter().any(|p| p == "mode=ro");
            return Ok((url.to_string(), opts));
        }
        let (base, mut params) = split_query(url);
        if let Some(p) = params
            .iter()
            .find(|p| param_key(p) == CONNECT_TIMEOUT_PARAM)
        {
            let secs = p.split_once('=').map_or("", |(_, v)| v);
            opts.timeout = match secs.parse::<u64>() {
                Ok(s) if s > 0 => Duration::from_secs(s),
                _ => {
                    return Err(StoreError::database(format!(
                        "{CONNECT_TIMEOUT_PARAM}: expected a whole number of seconds (at least 1), got {secs:?}"
                    )));
                }
            };
        }
        params.retain(|p| param_key(p) != CONNECT_TIMEOUT_PARAM);
        let url = if params.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", params.join("&"))
        };
        Ok((url, opts))
    }
}

/// Which database a URL names, by its scheme.
pub fn kind_of(url: &str) -> Option<Kind> {
    if url.starts_with("sqlite:") {
        Some(Kind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Kind::Postgres)
    } else {
        None
    }
}

/// The part of `url` before `?`, and its `key=value` parameters as written.
fn split_query(url: &str) -> (&str, Vec<String>) {
    match url.split_once('?') {
        None => (url, Vec::new()),
        Some((base, query)) => (
            base,
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        ),
    }
}

/// A parameter's name, percent-decoded (`+` is a space).
pub(crate) fn param_key(param: &str) -> String {
    percent_decode(param.split_once('=').map_or(param, |(k, _)| k), true)
}

/// `text` with its `%XX` escapes decoded, and `+` read as a space when `plus_is_space`.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a database URL without connecting or touching any file: its scheme, that the
/// driver parses it, and (PostgreSQL) that it uses only [`PG_PARAMETERS`].
pub fn check_url(url: &str) -> Result<(), UrlError> {
    match kind_of(url) {
        None => Err(UrlError::Scheme),
        Some(Kind::Sqlite) => SqliteUrl::parse(url).map(|_| ()),
        Some(Kind::Postgres) => {
            for p in split_query(url).1 {
                let key = param_key(&p);
                if !PG_PARAMETERS.contains(&key.as_str()) && !key.starts_with("options[") {
                    return Err(UrlError::Parameter(key));
                }
            }
            PgConnectOptions::from_str(url)
                .map(|_| ())
                .map_err(|e| UrlError::Invalid(describe(&e)))
        }
    }
}

/// The SQLite file a URL names; `None` for PostgreSQL and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    SqliteUrl::parse(url)
        .ok()
        .filter(|u| u.mode != crate::sqlite::Mode::Memory)
        .map(|u| u.path)
}

/// `postgres://USER@HOST:PORT/DB` of parsed options: names the server, never the password.
fn pg_target(o: &PgConnectOptions) -> String {
    let host = match o.get_socket() {
        Some(s) => s.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    format!(
        "postgres://{}@{host}/{}",
        o.get_username(),
        o.get_database().unwrap_or("")
    )
}

/// How long a pooled PostgreSQL connection may sit idle before it is pinged when handed
/// out again (a server restart or a dropped link leaves it dead; it is then replaced).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(5);

/// One direct connection. An unreachable server fails here at once with its cause
/// (`connection refused`), where the pool would retry until its timeout and then say only
/// `pool timed out`.
async fn probe(o: &PgConnectOptions, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(o)).await {
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f64())),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
    }
}

impl Pool {
    /// Connects to `sqlite://PATH` (created if missing; WAL) or `postgres://…`, honouring the
    /// [`ConnectOptions`] written into the URL. An error names the database (without its
    /// password) and the cause: `cannot connect to postgres://u@h:5432/db: connection refused`.
    pub async fn connect(url: &str) -> Result<Pool, StoreError> {
        let (url, opts) = ConnectOptions::take_from(url)?;
        match kind_of(&url) {
            Some(Kind::Sqlite) => Self::connect_sqlite(&url).await,
            Some(Kind::Postgres) => Self::connect_pg(&url, opts).await,
            None => Err(StoreError::database(
                "unsupported database url (want sqlite:// or postgres://)",
            )),
        }
    }

    /// Opens the SQLite database; `mode=ro` in the URL (what [`ConnectOptions::read_only`]
    /// writes there) opens it read-only.
    async fn connect_sqlite(url: &str) -> Result<Pool, StoreError> {
        let parsed = SqliteUrl::parse(url).map_err(|e| StoreError::database(e.to_string()))?;
        let db = SqliteDb::open(&parsed).await.map_err(|e| {
            StoreError::database(format!("cannot open {}: {}", parsed.target(), e.describe()))
        })?;
        Ok(Pool::Sqlite(db))
    }

    async fn connect_pg(url: &str, opts: ConnectOptions) -> Result<Pool, StoreError> {
        let pg = PgConnectOptions::from_str(url)
            .map_err(db_err)?
            // The server's NOTICEs (`relation "_sqlx_migrations" already exists, skipping` on
            // every start) would surface as INFO log lines; warnings and errors still do.
            .options([("client_min_messages", "warning")])
            // Every statement is prepared once per connection and kept (sqlx's statement
            // cache). Left to choose, the server settles on a generic plan after five
            // executions, planned against the tables as they were then: a long-lived `serve`
            // kept scanning the whole quotes table for `symbol IN (…)` as it grew (a batch of
            // 100 recommendations went from 16 ms to 51 ms over 200 batches; with custom plans
            // it stayed at 9–12 ms). A custom plan per execution costs far less than that.
            .options([("plan_cache_mode", "force_custom_plan")]);
        let target = pg_target(&pg);
        let fail =
            |cause: String| StoreError::database(format!("cannot connect to {target}: {cause}"));
        probe(&pg, opts.timeout).await.map_err(fail)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(opts.timeout)
            // sqlx pings every connection it hands out: a round trip before each statement
            // outside a transaction and each `BEGIN`, doubling a run's round trips. Only a
            // connection idle long enough for the server to have gone away is checked.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(pg)
            .await
            .map_err(|e| fail(describe(&e)))?;
        Ok(Pool::Postgres(pool))
    }

    /// Which database this is.
    pub fn kind(&self) -> Kind {
        match self {
            Pool::Sqlite(_) => Kind::Sqlite,
            Pool::Postgres(_) => Kind::Postgres,
        }
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the write
    /// lock up front (a deferred transaction that reads then writes can fail with
    /// SQLITE_BUSY under WAL), waiting asynchronously for up to 30 s for another process's.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await.map_err(db_err)?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await.map_err(db_err)?),
        })
    }

    /// Runs one statement outside any explicit transaction.
    pub async fn execute(&self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        Ok(match self {
            Pool::Sqlite(p) => p.execute(sql, args).await?,
            Pool::Postgres(p) => bind_pg!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
        })
    }

    /// Fetches rows outside any explicit transaction.
    pub async fn fetch(&self, sql: &str, args: &[Val]) -> Result<Vec<Row>, StoreError> {
        match self {
            Pool::Sqlite(p) => p.fetch(sql, args).await.map_err(db_err),
            Pool::Postgres(p) => {
                let rows = bind_pg!(sqlx::query(sql), args)
                    .fetch_all(p)
                    .await
                    .map_err(db_err)?;
                let names = names_of(&rows);
                rows.iter()
                    .map(|r| Row::from_pg(r, &names))
                    .collect::<Result<_, _>>()
                    .map_err(db_err)
            }
        }
    }

    /// Closes the pool (on SQLite, the connection: later calls fail).
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    /// Runs one statement; returns the rows affected. Errors stay [`DbError`]s so callers
    /// can tell a unique violation apart.
    pub async fn execute(&mut self, sql: &str, args: &[Val]) -> Result<u64, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => t.execute(sql, args)?,
            Tx::Postgres(t) => bind_pg!(sqlx::query(sql), args)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    /// Fetches rows.
    pub async fn fetch(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, DbError> {
        match self {
            Tx::Sqlite(t) => t.fetch(sql, args),
            Tx::Postgres(t) => {
                let rows = bind_pg!(sqlx::query(sql), args).fetch_all(&mut **t).await?;
                let names = names_of(&rows);
                Ok(rows
                    .iter()
                    .map(|r| Row::from_pg(r, &names))
                    .collect::<Result<_, _>>()?)
            }
        }
    }

    /// Fetches at most one row.
    pub async fn fetch_one(&mut self, sql: &str, args: &[Val]) -> Result<Option<Row>, DbError> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().map_err(db_err),
            Tx::Postgres(t) => t.commit().await.map_err(db_err),
        }
    }

    /// Which database this transaction is on.
    pub fn kind(&self) -> Kind {
        match self {
            Tx::Sqlite(_) => Kind::Sqlite,
            Tx::Postgres(_) => Kind::Postgres,
        }
    }

    /// `FOR UPDATE` where the database has it; SQLite's `BEGIN IMMEDIATE` already serialises
    /// writers.
    pub fn for_update(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE",
        }
    }
}

/// Maps a database error to the store's error: its [`DbError::describe`] line, whether it is
/// transient, and the error itself as the source.
pub fn map_err(e: DbError) -> StoreError {
    db_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_options_travel_in_the_url_and_come_off_it() {
        let pg = ConnectOptions {
            timeout: Duration::from_secs(7),
            read_only: true,
        };
        let url = pg.apply_to("postgres://u@h/db?sslmode=disable&connect_timeout=3");
        assert_eq!(url, "postgres://u@h/db?sslmode=disable&connect_timeout=7");
        let (bare, opts) = ConnectOptions::take_from(&url).unwrap();
        assert_eq!(bare, "postgres://u@h/db?sslmode=disable");
        assert_eq!(opts.timeout, Duration::from_secs(7));
        assert!(!opts.read_only, "read-only is SQLite's");

        let url = pg.apply_to("sqlite://x.db?mode=rwc");
        assert_eq!(url, "sqlite://x.db?mode=ro");
        let (bare, opts) = ConnectOptions::take_from(&url).unwrap();
        assert_eq!(bare, url, "the SQLite URL's own parse reads mode=ro");
        assert!(opts.read_only);
        assert_eq!(
            ConnectOptions::default().apply_to("sqlite://x.db"),
            "sqlite://x.db"
        );
        assert!(ConnectOptions::take_from("postgres://h/db?connect_timeout=0").is_err());
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        assert_eq!(check_url("mysql://h/db"), Err(UrlError::Scheme));
        assert_eq!(check_url("host=h password=x"), Err(UrlError::Scheme));
        assert_eq!(
            check_url("postgres://h/db?sslpassword=x"),
            Err(UrlError::Parameter("sslpassword".into()))
        );
        assert!(matches!(
            check_url("postgres://h:port/db"),
            Err(UrlError::Invalid(_))
        ));
        for ok in [
            "postgres://u:p@h:5432/db?sslmode=prefer&options[search_path]=x",
            "postgresql://h/db?password=x",
            "sqlite://x.db",
            "sqlite::memory:",
            "sqlite://x.db?mode=ro",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            check_url("sqlite://x.db?journal=wal"),
            Err(UrlError::Invalid(why)) if why.contains("`journal`")
        ));
    }

    #[test]
    fn the_sqlite_file_of_a_url() {
        assert_eq!(
            sqlite_file("sqlite://dir/x.db?mode=ro"),
            Some(std::path::PathBuf::from("dir/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
