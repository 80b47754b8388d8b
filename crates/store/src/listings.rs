//! Read-only listings for the command line and the API: one SQL text per listing for both
//! databases, filtered by expert, status, symbol, recommendation and time, and paged by id.

use async_trait::async_trait;
use tradewarden_domain::{Order, Outcome, Transaction};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::Val;
use crate::rows::*;

/// The filters every listing shares, `$1..=$4` (`time` is the listing's time column), and
/// their values; `$5` and `$6` page.
fn common_where(f: &ListFilter, status: &str, time: &str) -> (String, Vec<Val>) {
    let sql = format!(
        "($1 IS NULL OR expert_id = $1) AND ($2 IS NULL OR {status} = $2) \
         AND ($3 IS NULL OR symbol = $3) AND ($4 IS NULL OR {time} >= $4)"
    );
    let vals = vec![
        f.expert_id.into(),
        f.status.clone().into(),
        f.symbol.clone().into(),
        f.since.into(),
        f.page.limit_value().into(),
        f.page.offset_value().into(),
    ];
    (sql, vals)
}

#[async_trait]
impl QueryStore for SqlStore {
    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError> {
        let (filter, vals) = common_where(f, "status", "created_at");
        let sql = format!(
            "SELECT {TXN_COLUMNS} FROM transactions WHERE {filter} {}",
            f.page.sql(5)
        );
        let rows = self.pool.fetch(&sql, &vals).await?;
        rows.iter().map(transaction_from).collect()
    }

    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError> {
        let (filter, mut vals) = common_where(f, "status", "created_at");
        vals.push(f.recommendation_id.into());
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {filter} AND ($7 IS NULL OR recommendation_id = $7) {}",
            f.page.sql(5)
        );
        let rows = self.pool.fetch(&sql, &vals).await?;
        rows.iter().map(order_from).collect()
    }

    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError> {
        let (filter, mut vals) = common_where(f, "outcome", "decided_at");
        vals.push(f.recommendation_id.into());
        let sql = format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE {filter} AND ($7 IS NULL OR recommendation_id = $7) {}",
            f.page.sql(5)
        );
        let rows = self.pool.fetch(&sql, &vals).await?;
        rows.iter().map(outcome_from).collect()
    }

    async fn runs(&self, f: &RunFilter) -> Result<Vec<StoredRun>, StoreError> {
        crate::runs::runs(&self.pool, f).await
    }

    async fn run(&self, id: i64) -> Result<Option<StoredRun>, StoreError> {
        crate::runs::run(&self.pool, id).await
    }
}
