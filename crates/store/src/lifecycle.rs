//! Positions through their life (the engine's [`LifecycleStore`]): every live position of an
//! account with its orders in two queries, and one lifecycle step written in one database
//! transaction with multi-row statements, each status change conditional on the status
//! tables (so two writers never both claim a leg, and no illegal edge is applied).

use std::collections::HashMap;

use async_trait::async_trait;
use tradewarden_domain::lifecycle::{TransactionChange, leg_client_order_id};
use tradewarden_domain::{Order, OrderStatus, TransactionStatus};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Pool, Tx, Val, map_err};
use crate::rows::*;

/// The statuses a refresh follows: not yet CLOSED or FAILED.
const LIVE: &str = "'WAITING', 'OPENED', 'CLOSING'";

/// The transactions of the accounts in `{list}` a refresh follows: those not yet CLOSED or
/// FAILED, and those that ended with an order still live (the legs of an entry refused
/// when its answer was stored: they are canceled on the next refresh). `{list}` appears
/// twice: its parameters are bound twice, in order.
const FOLLOWED: &str = "account IN ({list}) AND (status IN ('WAITING', 'OPENED', 'CLOSING') OR id IN \
    (SELECT transaction_id FROM orders WHERE account IN ({list}) AND status IN \
    ('pending', 'waiting_trigger', 'submitting', 'accepted', 'partially_filled')))";

/// Accounts per query of [`LifecycleStore::live_positions`] (each is bound twice).
const ACCOUNTS_PER_QUERY: usize = 500;

#[async_trait]
impl LifecycleStore for SqlStore {
    async fn live_positions(&self, accounts: &[String]) -> Result<Vec<Position>, StoreError> {
        let mut positions = Vec::new();
        for chunk in accounts.chunks(ACCOUNTS_PER_QUERY) {
            let kind = self.pool.kind();
            let followed = FOLLOWED
                .replacen("{list}", &param_list(kind, 1, chunk.len()), 1)
                .replacen("{list}", &param_list(kind, chunk.len() + 1, chunk.len()), 1);
            let args: Vec<Val> = chunk
                .iter()
                .chain(chunk)
                .map(|a| a.as_str().into())
                .collect();
            let txns = self
                .pool
                .fetch(
                    &format!("SELECT {TXN_COLUMNS} FROM transactions WHERE {followed} ORDER BY id"),
                    &args,
                )
                .await?;
            let ids = txns
                .iter()
                .map(|r| r.i64("id"))
                .collect::<Result<Vec<i64>, _>>()?;
            let orders = orders_of(&self.pool, &ids).await?;
            positions.extend(positions_of(&txns, &orders)?);
        }
        Ok(positions)
    }

    async fn position(&self, transaction_id: i64) -> Result<Option<Position>, StoreError> {
        let txns = self
            .pool
            .fetch(
                &format!("SELECT {TXN_COLUMNS} FROM transactions WHERE id = $1"),
                &[transaction_id.into()],
            )
            .await?;
        let orders = self
            .pool
            .fetch(
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE transaction_id = $1 ORDER BY id"
                ),
                &[transaction_id.into()],
            )
            .await?;
        Ok(positions_of(&txns, &orders)?.pop())
    }

    async fn write_lifecycle(&self, w: &LifecycleWrite) -> Result<LifecycleWritten, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = LifecycleWritten::default();
        if let Some((id, reason)) = w.closing {
            out.closing = begin_closing(&mut tx, id, reason.as_str()).await?;
        }
        out.reopened = reopen(&mut tx, &w.reopened).await?;
        if let Some((id, tp, sl)) = w.exits {
            tx.execute(
                "UPDATE transactions SET take_profit = $1, stop_loss = $2 WHERE id = $3",
                &[tp.into(), sl.into(), id.into()],
            )
            .await
            .map_err(map_err)?;
        }
        // A close order goes in only with its CLOSING: a transaction another closer moved
        // first gets none.
        if w.closing.is_none() || out.closing {
            out.inserted = insert_exit_orders(&mut tx, &self.installation, &w.inserted).await?;
        }
        out.canceled = cancel_unsent(&mut tx, &w.canceled, w).await?;
        out.claimed = claim_legs(&mut tx, &w.claimed, w).await?;
        let (opened, closed) = change_transactions(&mut tx, &w.changes).await?;
        out.opened = opened;
        out.closed = closed;
        tx.commit().await?;
        Ok(out)
    }
}

/// Transactions per query of [`orders_of`]: always this many parameters (the last chunk
/// repeats its last id), so the statement is prepared once per connection.
const TRANSACTIONS_PER_QUERY: usize = 500;

/// Every order of the transactions `ids`, in no particular order: the followed
/// transactions read once, not evaluated again for their orders.
async fn orders_of(pool: &Pool, ids: &[i64]) -> Result<Vec<crate::db::Row>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE transaction_id IN ({})",
        param_list(pool.kind(), 1, TRANSACTIONS_PER_QUERY)
    );
    let mut rows = Vec::new();
    for chunk in ids.chunks(TRANSACTIONS_PER_QUERY) {
        let last = chunk[chunk.len() - 1];
        let args: Vec<Val> = chunk
            .iter()
            .copied()
            .chain(std::iter::repeat(last))
            .take(TRANSACTIONS_PER_QUERY)
            .map(Val::from)
            .collect();
        rows.extend(pool.fetch(&sql, &args).await?);
    }
    Ok(rows)
}

/// Groups orders under their transactions, in transaction id order, each transaction's
/// orders in id order.
fn positions_of(
    txns: &[crate::db::Row],
    orders: &[crate::db::Row],
) -> Result<Vec<Position>, StoreError> {
    let mut by_txn: HashMap<i64, Vec<Order>> = HashMap::new();
    for r in orders {
        let o = order_from(r)?;
        by_txn.entry(o.transaction_id).or_default().push(o);
    }
    txns.iter()
        .map(|r| {
            let transaction = transaction_from(r)?;
            let mut orders = by_txn.remove(&transaction.id).unwrap_or_default();
            orders.sort_unstable_by_key(|o| o.id);
            Ok(Position {
                transaction,
                orders,
            })
        })
        .collect()
}

/// OPENED → CLOSING with the reason asked for; false when the transaction was not OPENED.
async fn begin_closing(tx: &mut Tx, id: i64, reason: &str) -> Result<bool, StoreError> {
    let n = tx
        .execute(
            "UPDATE transactions SET status = 'CLOSING', close_reason = $1 WHERE id = $2 AND status = 'OPENED'",
            &[reason.into(), id.into()],
        )
        .await
        .map_err(map_err)?;
    Ok(n == 1)
}

/// CLOSING → OPENED (the close ended without execution); returns those that moved.
async fn reopen(tx: &mut Tx, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    let from = txn_predecessors_sql(TransactionStatus::Opened, |s| {
        s == TransactionStatus::Closing
    });
    let mut out = Vec::new();
    for chunk in ids.chunks(crate::rows::PARAMS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE transactions SET status = 'OPENED', close_reason = NULL WHERE status IN ({from}) \
             AND id IN ({}) RETURNING id",
            param_list(tx.kind(), 1, chunk.len())
        );
        let args: Vec<Val> = chunk.iter().map(|id| Val::from(*id)).collect();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            out.push(row.i64("id")?);
        }
    }
    Ok(out)
}

/// Inserts exit orders with their deterministic client_order_ids; returns them as stored.
async fn insert_exit_orders(
    tx: &mut Tx,
    installation: &tradewarden_domain::InstallationId,
    new: &[NewExitOrder],
) -> Result<Vec<Order>, StoreError> {
    let mut out = Vec::with_capacity(new.len());
    for chunk in new.chunks(chunk_rows(17)) {
        let sql = format!(
            "INSERT INTO orders (transaction_id, expert_id, account, symbol, side, role, order_type, quantity, \
             limit_price, stop_price, status, client_order_id, parent_order_id, trigger_status, created_at, \
             updated_at, filled_quantity) VALUES {} RETURNING {ORDER_COLUMNS}",
            values_clause(tx.kind(), chunk.len(), 17)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|n| {
                [
                    n.transaction_id.into(),
                    n.expert_id.into(),
                    n.account.as_str().into(),
                    n.symbol.as_str().into(),
                    n.side.as_str().into(),
                    n.role.as_str().into(),
                    n.order_type.as_str().into(),
                    n.quantity.into(),
                    n.limit_price.into(),
                    n.stop_price.into(),
                    n.status.as_str().into(),
                    leg_client_order_id(installation, n.transaction_id, n.role, n.generation)
                        .into(),
                    n.parent_order_id.into(),
                    n.trigger_status.map(|s| s.as_str()).into(),
                    n.created_at.into(),
                    n.created_at.into(),
                    rust_decimal::Decimal::ZERO.into(),
                ]
            })
            .collect();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            out.push(order_from(&row)?);
        }
    }
    // RETURNING gives no order guarantee on every database: put them back in input order.
    let position = |o: &Order| {
        new.iter()
            .position(|n| {
                n.transaction_id == o.transaction_id
                    && n.role == o.role
                    && leg_client_order_id(installation, n.transaction_id, n.role, n.generation)
                        == o.client_order_id
            })
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(position);
    Ok(out)
}

/// Legs never sent that end `canceled`, through the status table.
async fn cancel_unsent(tx: &mut Tx, ids: &[i64], w: &LifecycleWrite) -> Result<usize, StoreError> {
    let from = predecessors_sql(OrderStatus::Canceled, |s| {
        matches!(s, OrderStatus::WaitingTrigger | OrderStatus::Pending)
    });
    let mut n = 0;
    for chunk in ids.chunks(crate::rows::PARAMS_PER_STATEMENT - 1) {
        let sql = format!(
            "UPDATE orders SET status = 'canceled', updated_at = $1 WHERE status IN ({from}) AND id IN ({})",
            param_list(tx.kind(), 2, chunk.len())
        );
        let mut args: Vec<Val> = vec![w.at.into()];
        args.extend(chunk.iter().map(|id| Val::from(*id)));
        n += tx.execute(&sql, &args).await.map_err(map_err)? as usize;
    }
    Ok(n)
}

/// Legs `waiting_trigger` that fire and close orders `pending` that go: `submitting`,
/// sized; returns those this write claimed.
/// The order intent is made now: `created_at` moves to now, so an intent a crash leaves
/// `submitting` is aged from here (`max_intent_age_seconds`), not from when the leg was
/// stored waiting.
async fn claim_legs(
    tx: &mut Tx,
    claims: &[(i64, rust_decimal::Decimal)],
    w: &LifecycleWrite,
) -> Result<Vec<Order>, StoreError> {
    let from = predecessors_sql(OrderStatus::Submitting, |s| {
        matches!(s, OrderStatus::WaitingTrigger | OrderStatus::Pending)
    });
    let mut out = Vec::with_capacity(claims.len());
    for chunk in claims.chunks(chunk_rows(3)) {
        let sql = format!(
            "UPDATE orders SET status = 'submitting', quantity = v.column2, updated_at = v.column3, \
             created_at = v.column3 \
             FROM (VALUES {}) AS v WHERE orders.id = v.column1 AND orders.status IN ({from}) \
             RETURNING {}",
            values_clause(tx.kind(), chunk.len(), 3),
            qualified_order_columns()
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(id, q)| [(*id).into(), (*q).into(), w.at.into()])
            .collect();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            out.push(order_from(&row)?);
        }
    }
    out.sort_by_key(|o| o.id);
    Ok(out)
}

/// The order columns prefixed with the table (a RETURNING next to `FROM (VALUES …)`).
fn qualified_order_columns() -> String {
    ORDER_COLUMNS
        .split(',')
        .map(|c| format!("orders.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statuses from which `to` may be reached that `keep` accepts, as a SQL list.
fn predecessors_sql(to: OrderStatus, keep: impl Fn(OrderStatus) -> bool) -> String {
    OrderStatus::predecessors(to)
        .into_iter()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transactions' statuses from which `to` may be reached, as a SQL list.
fn txn_predecessors_sql(to: TransactionStatus, keep: impl Fn(TransactionStatus) -> bool) -> String {
    TransactionStatus::predecessors(to)
        .into_iter()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies derived changes, one statement per kind and chunk; returns how many
/// transactions went OPENED and CLOSED.
async fn change_transactions(
    tx: &mut Tx,
    changes: &[(i64, TransactionChange)],
) -> Result<(usize, usize), StoreError> {
    let (mut opened, mut closed) = (0, 0);
    let mut opens = Vec::new();
    let mut closes = Vec::new();
    let mut quantities = Vec::new();
    for (id, c) in changes {
        match c {
            TransactionChange::Opened {
                open_price,
                quantity,
                opened_at,
            } => opens.push([
                (*id).into(),
                (*open_price).into(),
                (*quantity).into(),
                (*opened_at).into(),
            ]),
            TransactionChange::Closed {
                close_price,
                closed_at,
                reason,
            } => closes.push([
                (*id).into(),
                (*close_price).into(),
                (*closed_at).into(),
                reason.as_str().into(),
            ]),
            TransactionChange::Quantity {
                quantity,
                open_price,
            } => quantities.push([Val::from(*id), (*quantity).into(), (*open_price).into()]),
        }
    }
    // An entry's answer may have made it OPENED already: the fill's figures are still taken.
    let from_open = txn_predecessors_sql(TransactionStatus::Opened, |s| s.is_active());
    for chunk in opens.chunks(chunk_rows(4)) {
        let sql = format!(
            "UPDATE transactions SET status = 'OPENED', open_price = v.column2, quantity = v.column3, \
             opened_at = COALESCE(transactions.opened_at, v.column4) FROM (VALUES {}) AS v \
             WHERE transactions.id = v.column1 AND transactions.status IN ({from_open})",
            values_clause(tx.kind(), chunk.len(), 4)
        );
        let args: Vec<Val> = chunk.iter().flatten().cloned().collect();
        opened += tx.execute(&sql, &args).await.map_err(map_err)? as usize;
    }
    let from_closed = txn_predecessors_sql(TransactionStatus::Closed, |s| {
        s != TransactionStatus::Closed
    });
    for chunk in closes.chunks(chunk_rows(4)) {
        let sql = format!(
            "UPDATE transactions SET status = 'CLOSED', close_price = v.column2, closed_at = v.column3, \
             close_reason = v.column4 FROM (VALUES {}) AS v \
             WHERE transactions.id = v.column1 AND transactions.status IN ({from_closed})",
            values_clause(tx.kind(), chunk.len(), 4)
        );
        let args: Vec<Val> = chunk.iter().flatten().cloned().collect();
        closed += tx.execute(&sql, &args).await.map_err(map_err)? as usize;
    }
    for chunk in quantities.chunks(chunk_rows(3)) {
        let sql = format!(
            "UPDATE transactions SET quantity = v.column2, open_price = v.column3 FROM (VALUES {}) AS v \
             WHERE transactions.id = v.column1 AND transactions.status IN ({LIVE})",
            values_clause(tx.kind(), chunk.len(), 3)
        );
        let args: Vec<Val> = chunk.iter().flatten().cloned().collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok((opened, closed))
}
