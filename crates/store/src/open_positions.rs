//! What an open_positions run reads (one query per kind for all of the expert's positions)
//! and the outcomes it writes.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_domain::open_positions::HeldPosition;
use tradewarden_domain::rules::LastCloses;
use tradewarden_domain::{Action, OrderStatus, Outcome, Recommendation, Side};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Kind, Pool, Val};
use crate::journal::insert_outcomes;
use crate::rows::*;

#[async_trait]
impl OpenPositionsStore for SqlStore {
    async fn load_open_positions(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<OpenPositionsData, StoreError> {
        let (recommendations, previous) = newest_per_symbol(&self.pool, expert_id, since).await?;
        Ok(OpenPositionsData {
            recommendations,
            previous,
            positions: held_positions(&self.pool, expert_id).await?,
            last_closes: last_closes(&self.pool, expert_id).await?,
        })
    }

    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Outcome, Option<String>)> =
            outcomes.iter().map(|o| (o.clone(), None)).collect();
        let mut tx = self.pool.begin().await?;
        insert_outcomes(&mut tx, &rows).await?;
        tx.commit().await
    }
}

/// Parameter `i` (1-based) of a statement whose parameters are each used once, in order.
fn param(kind: Kind, i: usize) -> String {
    param_list(kind, i, 1)
}

/// The newest recommendation of each symbol the expert recommended since `since` (HOLD
/// included), in id order, and the action of the one before it on the same symbol, by the
/// newer one's id: one query, ranking each symbol's recommendations newest first.
async fn newest_per_symbol(
    pool: &Pool,
    expert_id: i64,
    since: DateTime<Utc>,
) -> Result<(Vec<Recommendation>, HashMap<i64, Action>), StoreError> {
    let k = pool.kind();
    let sql = format!(
        "SELECT {REC_COLUMNS}, rn FROM (\
           SELECT {REC_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY symbol ORDER BY created_at DESC, id DESC) AS rn \
           FROM recommendations WHERE expert_id = {} AND symbol IN \
             (SELECT symbol FROM recommendations WHERE expert_id = {} AND created_at >= {})\
         ) ranked WHERE rn <= 2 ORDER BY symbol, rn",
        param(k, 1),
        param(k, 2),
        param(k, 3),
    );
    let args: Vec<Val> = vec![expert_id.into(), expert_id.into(), since.into()];
    let mut newest: Vec<Recommendation> = Vec::new();
    let mut previous = HashMap::new();
    for row in pool.fetch(&sql, &args).await? {
        let rec = recommendation_from(&row)?;
        match (row.i64("rn")?, newest.last()) {
            (2, Some(n)) if n.symbol == rec.symbol => {
                previous.insert(n.id, rec.action);
            }
            _ => newest.push(rec),
        }
    }
    newest.sort_by_key(|r| r.id);
    Ok((newest, previous))
}

/// The expert's WAITING, OPENED and CLOSING transactions by symbol, each with whether a close
/// order of it is still working. A join on the (few) working close orders, not a correlated
/// `EXISTS`: PostgreSQL's generic plan for that probed the orders once per transaction
/// (2.9 s for 10,000 positions, against milliseconds for the join).
async fn held_positions(
    pool: &Pool,
    expert_id: i64,
) -> Result<HashMap<String, HeldPosition>, StoreError> {
    let k = pool.kind();
    let working: Vec<String> = OrderStatus::ALL
        .into_iter()
        .filter(|s| !s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let sql = format!(
        "SELECT t.id, t.symbol, t.side, t.status, t.quantity, t.open_price, t.opened_at, \
           t.take_profit, t.stop_loss, t.created_at, (c.transaction_id IS NOT NULL) AS close_working \
         FROM transactions t LEFT JOIN \
           (SELECT DISTINCT transaction_id FROM orders WHERE role = 'close' AND status IN ({})) c \
           ON c.transaction_id = t.id \
         WHERE t.expert_id = {} AND t.status IN ('WAITING', 'OPENED', 'CLOSING')",
        working.join(", "),
        param(k, 1)
    );
    let mut out: HashMap<String, HeldPosition> = HashMap::new();
    for r in pool.fetch(&sql, &[expert_id.into()]).await? {
        let held = HeldPosition {
            transaction_id: r.i64("id")?,
            side: side(&r.text("side")?)?,
            status: txn_status(&r.text("status")?)?,
            quantity: r.dec("quantity")?,
            open_price: r.opt_dec("open_price")?,
            opened_at: r.opt_time("opened_at")?,
            take_profit: r.opt_dec("take_profit")?,
            stop_loss: r.opt_dec("stop_loss")?,
            close_working: r.i64("close_working")? != 0,
        };
        // One WAITING or OPENED transaction per symbol (B1), but a CLOSING one may stand
        // beside it: the one to manage is kept ([`HeldPosition::precedes`]).
        let symbol = r.text("symbol")?;
        if out.get(&symbol).is_none_or(|h| held.precedes(h)) {
            out.insert(symbol, held);
        }
    }
    Ok(out)
}

/// When the expert last closed a position in each symbol, any / with a profit / with a loss.
/// Decimals are compared in Rust (SQLite stores them as text).
async fn last_closes(
    pool: &Pool,
    expert_id: i64,
) -> Result<HashMap<String, LastCloses>, StoreError> {
    let sql = format!(
        "SELECT symbol, side, open_price, close_price, closed_at FROM transactions \
         WHERE expert_id = {} AND status = 'CLOSED' AND closed_at IS NOT NULL",
        param(pool.kind(), 1)
    );
    let mut out: HashMap<String, LastCloses> = HashMap::new();
    for r in pool.fetch(&sql, &[expert_id.into()]).await? {
        let closed_at = r.time("closed_at")?;
        let gain = match (r.opt_dec("open_price")?, r.opt_dec("close_price")?) {
            (Some(open), Some(close)) => match side(&r.text("side")?)? {
                Side::Buy => close.checked_sub(open),
                Side::Sell => open.checked_sub(close),
            },
            _ => None,
        };
        let c = out.entry(r.text("symbol")?).or_default();
        let later = |t: Option<DateTime<Utc>>| Some(t.map_or(closed_at, |t| t.max(closed_at)));
        c.any = later(c.any);
        match gain {
            Some(g) if g > rust_decimal::Decimal::ZERO => c.profitable = later(c.profitable),
            Some(g) if g < rust_decimal::Decimal::ZERO => c.losing = later(c.losing),
            _ => {}
        }
    }
    Ok(out)
}
