//! The journal: decision records, run records, reconciliation findings.

use std::collections::HashMap;

use async_trait::async_trait;
use tradewarden_domain::Outcome;
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Tx, Val, map_err};
use crate::leases::release_leases_in;
use crate::rows::*;

/// Inserts decision records inside `tx`, each with its decision's own words when it is an
/// entry's outcome (to be completed by the broker's answer), many rows a statement.
pub(crate) async fn insert_outcomes(
    tx: &mut Tx,
    rows: &[(Outcome, Option<String>)],
) -> Result<(), StoreError> {
    let kind = tx.kind();
    for chunk in rows.chunks(chunk_rows(9)) {
        let sql = format!(
            "INSERT INTO outcomes (recommendation_id, expert_id, symbol, use_case, outcome, detail, order_id, decided_at, decision) VALUES {}",
            values_clause(kind, chunk.len(), 9)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(o, decision)| {
                [
                    o.recommendation_id.into(),
                    o.expert_id.into(),
                    o.symbol.as_str().into(),
                    o.use_case.as_str().into(),
                    o.outcome.as_str().into(),
                    o.detail.as_str().into(),
                    o.order_id.into(),
                    o.decided_at.into(),
                    decision.clone().into(),
                ]
            })
            .collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}

/// Completes entries' outcomes inside `tx`: the kind, and the detail as the stored decision
/// followed by the answer. Rows without a decision (skips, rows of older versions) stay.
pub(crate) async fn complete_outcomes_in(
    tx: &mut Tx,
    done: &[OutcomeCompletion],
) -> Result<(), StoreError> {
    let kind = tx.kind();
    for chunk in done.chunks(chunk_rows(3)) {
        let sql = format!(
            "UPDATE outcomes SET outcome = v.column2, detail = outcomes.decision || v.column3 \
             FROM (VALUES {}) AS v WHERE outcomes.order_id = v.column1 AND outcomes.decision IS NOT NULL",
            values_clause(kind, chunk.len(), 3)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|c| {
                [
                    c.order_id.into(),
                    c.outcome.as_str().into(),
                    c.answer.as_str().into(),
                ]
            })
            .collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}

/// Inserts run records inside `tx`, many rows a statement; returns their ids in the order
/// of `runs`. The ids come back with each row's lock key, which is unique within a batch
/// (one run per key), since neither database promises `RETURNING` rows in `VALUES` order.
async fn insert_runs(tx: &mut Tx, runs: &[RunRecord]) -> Result<Vec<i64>, StoreError> {
    let kind = tx.kind();
    let mut ids = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(chunk_rows(10)) {
        let sql = format!(
            "INSERT INTO runs (expert_id, use_case, trigger, lock_key, owner, status, counts, error, started_at, finished_at) \
             VALUES {} RETURNING id, lock_key",
            values_clause(kind, chunk.len(), 10)
        );
        let mut args: Vec<Val> = Vec::with_capacity(chunk.len() * 10);
        for run in chunk {
            let counts = run.counts.as_ref().map(serde_json::to_string).transpose();
            let counts = counts.map_err(|e| StoreError::database(format!("run counts: {e}")))?;
            args.extend([
                run.expert_id.into(),
                run.use_case.map(|u| u.as_str()).into(),
                run.trigger.map(|t| t.as_str()).into(),
                run.lock_key.as_str().into(),
                run.owner.as_str().into(),
                run.status.as_str().into(),
                counts.into(),
                run.error.clone().into(),
                run.started_at.into(),
                run.finished_at.into(),
            ]);
        }
        let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            by_key
                .entry(row.text("lock_key")?)
                .or_default()
                .push(row.i64("id")?);
        }
        // Of two records of one key (never in a run batch), the older id is the earlier row.
        for same_key in by_key.values_mut() {
            same_key.sort_unstable_by(|a, b| b.cmp(a));
        }
        for run in chunk {
            let id = by_key.get_mut(&run.lock_key).and_then(Vec::pop);
            ids.push(id.ok_or_else(|| StoreError::database("a run record got no id"))?);
        }
    }
    Ok(ids)
}

#[async_trait]
impl JournalStore for SqlStore {
    async fn finish_runs(&self, finished: &FinishedRuns<'_>) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        complete_outcomes_in(&mut tx, finished.completions).await?;
        let ids = insert_runs(&mut tx, finished.runs).await?;
        release_leases_in(&mut tx, &finished.leases).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn record_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for f in findings {
            tx.execute(
                "INSERT INTO reconciliation_findings (account, symbol, broker_quantity, recorded_quantity, detail, found_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    f.account.as_str().into(),
                    f.symbol.as_str().into(),
                    f.broker_quantity.into(),
                    f.recorded_quantity.into(),
                    f.detail.as_str().into(),
                    f.found_at.into(),
                ],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await
    }
}
