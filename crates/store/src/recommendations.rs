//! Recommendations: the import session (one database transaction written a chunk at a time,
//! B7) and what a run reads.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{NewRecommendation, Price, Recommendation};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Kind, Pool, Tx, Val, map_err};
use crate::rows::*;

#[async_trait]
impl RecommendationStore for SqlStore {
    async fn begin_import(&self) -> Result<Box<dyn ImportSession + '_>, StoreError> {
        Ok(Box::new(SqlImport::within(self.pool.begin().await?)))
    }

    async fn load_enter_market_batch(
        &self,
        expert_ids: &[i64],
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, EnterMarketData>, StoreError> {
        let mut out: HashMap<i64, EnterMarketData> = HashMap::new();
        for chunk in expert_ids.chunks(chunk_rows(1)) {
            for rec in window_of(&self.pool, chunk, since).await? {
                out.entry(rec.expert_id)
                    .or_default()
                    .recommendations
                    .push(rec);
            }
            for (expert_id, position) in active_positions_of(&self.pool, chunk).await? {
                out.entry(expert_id).or_default().positions.push(position);
            }
        }
        Ok(out)
    }
}

/// The recommendations of `experts` created at or after `since`, HOLD excluded, in id order:
/// the columns a run reads.
async fn window_of(
    pool: &Pool,
    experts: &[i64],
    since: DateTime<Utc>,
) -> Result<Vec<Recommendation>, StoreError> {
    let sql = format!(
        "SELECT {REC_COLUMNS} FROM recommendations \
         WHERE expert_id IN ({}) AND created_at >= {} AND action <> 'HOLD' ORDER BY id",
        param_list(pool.kind(), 1, experts.len()),
        param_list(pool.kind(), experts.len() + 1, 1)
    );
    let mut args: Vec<Val> = experts.iter().map(|&id| id.into()).collect();
    args.push(since.into());
    pool.fetch(&sql, &args)
        .await?
        .iter()
        .map(recommendation_from)
        .collect()
}

/// The WAITING and OPENED transactions of `experts`, each with its expert: what a run's
/// SAFETY CHECK, sizing and equity in use need of them.
async fn active_positions_of(
    pool: &Pool,
    experts: &[i64],
) -> Result<Vec<(i64, ActivePosition)>, StoreError> {
    let sql = format!(
        "SELECT expert_id, id, symbol, side, status, quantity, COALESCE(open_price, reference_price) AS price \
         FROM transactions WHERE expert_id IN ({}) AND status IN ('WAITING', 'OPENED', 'CLOSING')",
        param_list(pool.kind(), 1, experts.len())
    );
    let args: Vec<Val> = experts.iter().map(|&id| id.into()).collect();
    pool.fetch(&sql, &args)
        .await?
        .iter()
        .map(|r| {
            let position = ActivePosition {
                transaction_id: r.i64("id")?,
                symbol: r.text("symbol")?,
                side: side(&r.text("side")?)?,
                status: txn_status(&r.text("status")?)?,
                quantity: r.dec("quantity")?,
                price: r.opt_dec("price")?.unwrap_or_default(),
            };
            Ok((r.i64("expert_id")?, position))
        })
        .collect()
}

/// An import's database transaction; dropped uncommitted, it rolls back.
pub(crate) struct SqlImport {
    pub(crate) tx: Tx,
    /// `imported_at` of every row of this import.
    imported_at: DateTime<Utc>,
}

impl SqlImport {
    /// An import into `tx`, open already.
    pub(crate) fn within(tx: Tx) -> SqlImport {
        SqlImport {
            tx,
            imported_at: Utc::now(),
        }
    }
}

#[async_trait]
impl ImportSession for SqlImport {
    /// The chunk's inserts run inside a savepoint without returning rows: when all of them or
    /// none were new, the count says which (a fresh import, a repeated one). Only a chunk of
    /// both is undone to the savepoint and inserted again, returning the identities inserted.
    async fn insert_new(&mut self, recs: &[&NewRecommendation]) -> Result<Vec<bool>, StoreError> {
        let inserts = insert_statements(self.tx.kind(), recs, self.imported_at);
        self.tx
            .execute("SAVEPOINT import_chunk", &[])
            .await
            .map_err(map_err)?;
        let mut affected = 0;
        for insert in &inserts {
            affected += self
                .tx
                .execute(&insert.sql, &insert.args)
                .await
                .map_err(map_err)?;
        }
        let all_or_none = affected == 0 || affected == recs.len() as u64;
        if !all_or_none {
            self.tx
                .execute("ROLLBACK TO SAVEPOINT import_chunk", &[])
                .await
                .map_err(map_err)?;
        }
        self.tx
            .execute("RELEASE SAVEPOINT import_chunk", &[])
            .await
            .map_err(map_err)?;
        if all_or_none {
            return Ok(vec![affected > 0; recs.len()]);
        }
        let mut returned = Vec::with_capacity(recs.len());
        for insert in &inserts {
            let sql = format!("{} RETURNING expert_id, symbol, created_at", insert.sql);
            returned.extend(self.tx.fetch(&sql, &insert.args).await.map_err(map_err)?);
        }
        which_inserted(recs, &returned)
    }

    async fn stored(
        &mut self,
        recs: &[&NewRecommendation],
    ) -> Result<Vec<Recommendation>, StoreError> {
        let mut stored = Vec::with_capacity(recs.len());
        for chunk in recs.chunks(chunk_rows(3)) {
            let sql = format!(
                "SELECT r.* FROM (VALUES {}) AS k \
                 JOIN recommendations r ON r.expert_id = k.column1 AND r.symbol = k.column2 AND r.created_at = k.column3",
                values_clause(self.tx.kind(), chunk.len(), 3)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|r| {
                    [
                        r.expert_id.into(),
                        r.symbol.as_str().into(),
                        r.created_at.into(),
                    ]
                })
                .collect();
            for row in self.tx.fetch(&sql, &args).await.map_err(map_err)? {
                stored.push(recommendation_from(&row)?);
            }
        }
        Ok(stored)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await
    }
}

/// One statement with its arguments.
struct Statement {
    sql: String,
    args: Vec<Val>,
}

/// Rows per multi-row insert on SQLite: a fixed number, so that every full statement has one
/// text and is prepared once (12 parameters a row; SQLite allows 32,766 a statement).
const SQLITE_INSERT_ROWS: usize = 500;

/// The `INSERT … ON CONFLICT DO NOTHING` statements that store `recs` unless stored: multi-row
/// `VALUES` on SQLite; on PostgreSQL one statement of arrays, one a column, `UNNEST`ed (one
/// statement text for any number of rows, and 12 parameters instead of 12 a row).
fn insert_statements(
    kind: Kind,
    recs: &[&NewRecommendation],
    imported_at: DateTime<Utc>,
) -> Vec<Statement> {
    match kind {
        Kind::Sqlite => recs
            .chunks(SQLITE_INSERT_ROWS)
            .map(|chunk| insert_values(chunk, imported_at))
            .collect(),
        Kind::Postgres => vec![insert_unnest(recs, imported_at)],
    }
}

fn insert_values(recs: &[&NewRecommendation], imported_at: DateTime<Utc>) -> Statement {
    let sql = format!(
        "INSERT INTO recommendations (expert_id, symbol, action, confidence, expected_profit_percent, \
         price_at_date, risk_level, time_horizon, target_price, details, created_at, imported_at) VALUES {} \
         ON CONFLICT (expert_id, symbol, created_at) DO NOTHING",
        values_clause(Kind::Sqlite, recs.len(), 12)
    );
    let mut args: Vec<Val> = Vec::with_capacity(recs.len() * 12);
    for r in recs {
        args.extend([
            r.expert_id.into(),
            r.symbol.as_str().into(),
            r.action.as_str().into(),
            r.confidence.into(),
            r.expected_profit_percent.into(),
            r.price_at_date.get().into(),
            r.risk_level.as_str().into(),
            r.time_horizon.as_str().into(),
            r.target_price.map(Price::get).into(),
            r.details.clone().into(),
            r.created_at.into(),
            imported_at.into(),
        ]);
    }
    Statement { sql, args }
}

/// PostgreSQL's insert of a chunk. `created_at` travels as microseconds since the epoch,
/// turned back into a time by exact arithmetic (whole hours, then microseconds: each product stays far below 2^53, so the
/// interval maths in floating point is exact); a text time would be refused for year 0000,
/// which the parser accepts.
fn insert_unnest(recs: &[&NewRecommendation], imported_at: DateTime<Utc>) -> Statement {
    const SQL: &str = "INSERT INTO recommendations (expert_id, symbol, action, confidence, expected_profit_percent, \
         price_at_date, risk_level, time_horizon, target_price, details, created_at, imported_at) \
         SELECT expert_id, symbol, action, confidence, expected_profit_percent, price_at_date, risk_level, \
         time_horizon, target_price, details, \
         TIMESTAMPTZ 'epoch' + (micros / 3600000000) * INTERVAL '1 hour' + (micros % 3600000000) * INTERVAL '1 microsecond', \
         $12 \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], \
         $7::text[], $8::text[], $9::numeric[], $10::text[], $11::bigint[]) \
         AS u (expert_id, symbol, action, confidence, expected_profit_percent, price_at_date, risk_level, \
         time_horizon, target_price, details, micros) \
         ON CONFLICT (expert_id, symbol, created_at) DO NOTHING";
    let args = vec![
        pg_array(recs.iter().map(|r| Some(r.expert_id))),
        pg_array(recs.iter().map(|r| Some(&r.symbol))),
        pg_array(recs.iter().map(|r| Some(r.action.as_str()))),
        pg_array(recs.iter().map(|r| Some(r.confidence))),
        pg_array(recs.iter().map(|r| Some(r.expected_profit_percent))),
        pg_array(recs.iter().map(|r| Some(r.price_at_date.get()))),
        pg_array(recs.iter().map(|r| Some(r.risk_level.as_str()))),
        pg_array(recs.iter().map(|r| Some(r.time_horizon.as_str()))),
        pg_array(recs.iter().map(|r| r.target_price.map(Price::get))),
        pg_array(recs.iter().map(|r| r.details.as_deref())),
        pg_array(recs.iter().map(|r| Some(r.created_at.timestamp_micros()))),
        imported_at.into(),
    ];
    Statement {
        sql: SQL.to_string(),
        args,
    }
}

/// A PostgreSQL array literal (`{"a","b\"c",NULL}`) of the values' text, which the server
/// casts to the column's array type.
fn pg_array<T: std::fmt::Display>(values: impl Iterator<Item = Option<T>>) -> Val {
    let mut s = String::from("{");
    let mut item = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let Some(v) = v else {
            s.push_str("NULL");
            continue;
        };
        item.clear();
        let _ = write!(item, "{v}");
        s.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
    }
    s.push('}');
    s.into()
}

/// Whether each of `recs` was inserted, from the identities the inserts returned.
fn which_inserted(
    recs: &[&NewRecommendation],
    returned: &[crate::db::Row],
) -> Result<Vec<bool>, StoreError> {
    let mut inserted: HashSet<(i64, String, DateTime<Utc>)> =
        HashSet::with_capacity(returned.len());
    for row in returned {
        inserted.insert((
            row.i64("expert_id")?,
            row.text("symbol")?,
            row.time("created_at")?,
        ));
    }
    Ok(recs
        .iter()
        .map(|r| inserted.contains(&(r.expert_id, r.symbol.clone(), r.created_at)))
        .collect())
}
