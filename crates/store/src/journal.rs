//! The journal: decision records, run records, reconciliation findings.

use async_trait::async_trait;
use tradewarden_domain::Outcome;
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Val, map_err};
use crate::rows::*;

#[async_trait]
impl JournalStore for SqlStore {
    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in outcomes.chunks(chunk_rows(8)) {
            let sql = format!(
                "INSERT INTO outcomes (recommendation_id, expert_id, symbol, use_case, outcome, detail, order_id, decided_at) VALUES {}",
                values_clause(self.pool.kind(), chunk.len(), 8)
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|o| {
                    [
                        o.recommendation_id.into(),
                        o.expert_id.into(),
                        o.symbol.as_str().into(),
                        o.use_case.as_str().into(),
                        o.outcome.as_str().into(),
                        o.detail.as_str().into(),
                        o.order_id.into(),
                        o.decided_at.into(),
                    ]
                })
                .collect();
            tx.execute(&sql, &args).await.map_err(map_err)?;
        }
        tx.commit().await
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.pool
            .execute(
                "INSERT INTO runs (lock_key, owner, status, error, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    run.lock_key.as_str().into(),
                    run.owner.as_str().into(),
                    run.status.as_str().into(),
                    run.error.clone().into(),
                    run.started_at.into(),
                    run.finished_at.into(),
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
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
