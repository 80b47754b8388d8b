//! Read-only listings for the command line and the API.

use async_trait::async_trait;
use tradewarden_domain::{Order, Outcome, Transaction};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::rows::*;

#[async_trait]
impl QueryStore for SqlStore {
    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError> {
        let sql = format!(
            "SELECT {TXN_COLUMNS} FROM transactions WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR status = $2) ORDER BY id"
        );
        let rows = self
            .pool
            .fetch(&sql, &[f.expert_id.into(), f.status.clone().into()])
            .await?;
        rows.iter().map(transaction_from).collect()
    }

    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR status = $2) ORDER BY id"
        );
        let rows = self
            .pool
            .fetch(&sql, &[f.expert_id.into(), f.status.clone().into()])
            .await?;
        rows.iter().map(order_from).collect()
    }

    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError> {
        let sql = format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE ($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR outcome = $2) \
             AND ($3 IS NULL OR recommendation_id = $3) ORDER BY id"
        );
        let rows = self
            .pool
            .fetch(
                &sql,
                &[
                    f.expert_id.into(),
                    f.status.clone().into(),
                    f.recommendation_id.into(),
                ],
            )
            .await?;
        rows.iter().map(outcome_from).collect()
    }

    async fn runs(&self, f: &RunFilter) -> Result<Vec<StoredRun>, StoreError> {
        crate::runs::runs(&self.pool, f).await
    }

    async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError> {
        crate::runs::run(&self.pool, id).await
    }
}
