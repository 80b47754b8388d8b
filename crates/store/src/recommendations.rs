//! Recommendations: all-or-nothing import (B7) and what a run reads.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{NewRecommendation, Price, Recommendation};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Pool, Tx, Val, map_err};
use crate::rows::*;

type RecKey = (i64, String, DateTime<Utc>);

#[async_trait]
impl RecommendationStore for SqlStore {
    async fn import(&self, recs: &[NewRecommendation]) -> Result<ImportCounts, ImportError> {
        let mut counts = ImportCounts::default();
        let mut conflicts = Vec::new();
        let unique = first_of_each_identity(recs, &mut counts, &mut conflicts);
        let mut tx = self.pool.begin().await?;
        let inserted = insert_new(&mut tx, recs, &unique).await?;
        for &i in &unique {
            let r = &recs[i];
            if inserted.contains(&(r.expert_id, r.symbol.clone(), r.created_at)) {
                counts.imported += 1;
                continue;
            }
            // Already stored before this batch: identical is fine, different is an error.
            match stored_twin(&mut tx, r).await? {
                Ok(()) => counts.already_present += 1,
                Err(msg) => conflicts.push((i, msg)),
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(ImportError::Conflicts(conflicts));
        }
        tx.commit().await?;
        Ok(counts)
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
        "SELECT id, expert_id, symbol, action, confidence, expected_profit_percent, price_at_date, risk_level, \
         time_horizon, target_price, details, created_at FROM recommendations \
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
         FROM transactions WHERE expert_id IN ({}) AND status IN ('WAITING', 'OPENED')",
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

/// Within the batch, identical repeats are already present and differing ones conflict;
/// returns the index of the first line of each identity.
fn first_of_each_identity(
    recs: &[NewRecommendation],
    counts: &mut ImportCounts,
    conflicts: &mut Vec<(usize, String)>,
) -> Vec<usize> {
    let mut first: HashMap<RecKey, usize> = HashMap::new();
    let mut unique: Vec<usize> = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let key = (r.expert_id, r.symbol.clone(), r.created_at);
        match first.get(&key) {
            None => {
                first.insert(key, i);
                unique.push(i);
            }
            Some(&j) if recs[j] == *r => counts.already_present += 1,
            Some(&j) => conflicts.push((i, format!("recommendation: same expert, symbol and created_at as an earlier line ({}) with different content", j + 1))),
        }
    }
    unique
}

/// Inserts the first line of each identity unless stored; returns the identities inserted.
async fn insert_new(
    tx: &mut Tx,
    recs: &[NewRecommendation],
    unique: &[usize],
) -> Result<HashSet<RecKey>, StoreError> {
    let mut inserted: HashSet<RecKey> = HashSet::new();
    let now = Utc::now();
    for chunk in unique.chunks(chunk_rows(12)) {
        let sql = format!(
            "INSERT INTO recommendations (expert_id, symbol, action, confidence, expected_profit_percent, price_at_date, \
             risk_level, time_horizon, target_price, details, created_at, imported_at) VALUES {} \
             ON CONFLICT (expert_id, symbol, created_at) DO NOTHING RETURNING expert_id, symbol, created_at",
            values_clause(tx.kind(), chunk.len(), 12)
        );
        let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 12);
        for &i in chunk {
            let r = &recs[i];
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
                now.into(),
            ]);
        }
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            inserted.insert((
                row.i64("expert_id")?,
                row.text("symbol")?,
                row.time("created_at")?,
            ));
        }
    }
    Ok(inserted)
}

/// Compares a line with the stored recommendation of the same identity: `Err` names the
/// difference.
async fn stored_twin(tx: &mut Tx, r: &NewRecommendation) -> Result<Result<(), String>, StoreError> {
    let sql = format!(
        "SELECT {REC_COLUMNS} FROM recommendations WHERE expert_id = $1 AND symbol = $2 AND created_at = $3"
    );
    let row = tx
        .fetch_one(
            &sql,
            &[
                r.expert_id.into(),
                r.symbol.as_str().into(),
                r.created_at.into(),
            ],
        )
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::database("conflicting recommendation vanished"))?;
    let stored = recommendation_from(&row)?;
    if stored.rec == *r {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "recommendation: same expert, symbol and created_at as stored recommendation {} with different content",
            stored.id
        )))
    }
}
