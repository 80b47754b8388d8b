//! Positions and their orders: the one-active-position rule (B1), entry intents, and broker
//! answers applied through the order status table.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use rust_decimal::Decimal;
use tradewarden_domain::order::client_order_id;
use tradewarden_domain::outcome::entry_outcome;
use tradewarden_domain::{
    InstallationId, Order, OrderRole, OrderStatus, Outcome, Side, Transaction, TransactionStatus,
};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Tx, Val, map_err};
use crate::journal::{complete_outcomes_in, insert_outcomes};
use crate::rows::*;

/// What `open_positions` returns for each position.
type Opened = Result<(Transaction, Order), StoreError>;

impl SqlStore {
    async fn order_by_id(tx: &mut Tx, id: i64) -> Result<Order, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row = tx.fetch_one(&sql, &[id.into()]).await.map_err(map_err)?;
        order_from(&row.ok_or_else(|| StoreError::NotFound(format!("order {id}")))?)
    }

    /// Applies broker answers to distinct orders inside `tx` (see
    /// [`Store::apply_broker_orders`]), a few statements for the whole batch: one
    /// `UPDATE … FROM (VALUES …)` per answered status, in which the status table decides (a row
    /// changes only from a status that may legally move to the answer's, and comes back in
    /// the same trip), then one for the transactions whose entries filled.
    async fn apply_answers(
        tx: &mut Tx,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut updated = update_orders(tx, answers).await?;
        open_filled_transactions(tx, answers, &updated).await?;
        close_refused_entries(tx, answers, &updated).await?;
        complete_outcomes_in(tx, &entry_completions(answers, &updated)).await?;
        let mut out = Vec::with_capacity(answers.len());
        for (id, a) in answers {
            match updated.remove(id) {
                Some(o) => out.push(o),
                None => {
                    // A stale or out-of-order answer: keep what we have.
                    let current = Self::order_by_id(tx, *id).await?;
                    tracing::warn!(
                        order = id,
                        "ignoring broker answer: {} -> {} is not allowed",
                        current.status,
                        a.status
                    );
                    out.push(current);
                }
            }
        }
        Ok(out)
    }
    async fn active_by_symbol(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        let rows = self
            .pool
            .fetch(&active_by_symbol_sql(), &[expert_id.into(), symbol.into()])
            .await?;
        rows.first().map(transaction_from).transpose()
    }
}

/// The active transaction of an (expert, symbol): `$1` expert, `$2` symbol.
fn active_by_symbol_sql() -> String {
    format!(
        "SELECT {TXN_COLUMNS} FROM transactions WHERE expert_id = $1 AND symbol = $2 AND status IN ('WAITING', 'OPENED', 'CLOSING')"
    )
}

#[async_trait]
impl PositionStore for SqlStore {
    async fn open_positions(
        &self,
        positions: &[NewPosition],
        skips: &[Outcome],
    ) -> Result<Vec<Opened>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut txn_ids = insert_transactions(&mut tx, positions).await?;
        let stored: Vec<(usize, i64)> = positions
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                txn_ids
                    .remove(&(n.expert_id, n.symbol.clone()))
                    .map(|id| (i, id))
            })
            .collect();
        let order_ids =
            insert_entry_orders(&mut tx, &self.installation, positions, &stored).await?;
        let legs = self.leg_orders(positions, &stored, &order_ids);
        insert_exit_legs(&mut tx, &legs).await?;
        let mut out = self.opened(positions, &stored, &order_ids)?;
        name_refusals(&mut tx, positions, &mut out).await?;
        insert_outcomes(&mut tx, &decision_records(positions, &out, skips)).await?;
        tx.commit().await?;
        Ok(out)
    }
    async fn apply_broker_orders(
        &self,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut ids = HashSet::new();
        let out = if answers.iter().all(|(id, _)| ids.insert(*id)) {
            Self::apply_answers(&mut tx, answers).await?
        } else {
            // The same order twice: apply the answers one at a time, in order.
            let mut out = Vec::with_capacity(answers.len());
            for a in answers {
                out.extend(Self::apply_answers(&mut tx, std::slice::from_ref(a)).await?);
            }
            out
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn active_transaction(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        self.active_by_symbol(expert_id, symbol).await
    }

    async fn orders_in_flight(&self, expert_id: Option<i64>) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'submitting' AND ($1 IS NULL OR expert_id = $1) ORDER BY id"
        );
        self.pool
            .fetch(&sql, &[expert_id.into()])
            .await?
            .iter()
            .map(order_from)
            .collect()
    }

    async fn held_quantities(&self, account: &str) -> Result<HashMap<String, Decimal>, StoreError> {
        let rows = self
            .pool
            .fetch(
                "SELECT symbol, side, quantity FROM transactions WHERE account = $1 AND status IN ('OPENED', 'CLOSING')",
                &[account.into()],
            )
            .await?;
        let mut held: HashMap<String, Decimal> = HashMap::new();
        for r in &rows {
            let q = r.dec("quantity")?;
            let signed = if side(&r.text("side")?)? == Side::Buy {
                q
            } else {
                -q
            };
            *held.entry(r.text("symbol")?).or_default() += signed;
        }
        Ok(held)
    }

    async fn symbols_in_flight(
        &self,
        account: &str,
        busy: &[i64],
    ) -> Result<BTreeMap<String, InFlightReason>, StoreError> {
        let executing: Vec<String> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.may_be_executing())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT DISTINCT symbol FROM orders WHERE account = $1 AND status IN ({})",
            executing.join(", ")
        );
        let mut out = BTreeMap::new();
        for r in self.pool.fetch(&sql, &[account.into()]).await? {
            out.insert(r.text("symbol")?, InFlightReason::OrderInFlight);
        }
        if busy.is_empty() {
            return Ok(out);
        }
        let live: Vec<String> = TransactionStatus::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let sql = format!(
            "SELECT DISTINCT expert_id, symbol FROM transactions WHERE account = $1 AND status IN ({})",
            live.join(", ")
        );
        let rows = self.pool.fetch(&sql, &[account.into()]).await?;
        for r in rows {
            if busy.contains(&r.i64("expert_id")?) {
                out.entry(r.text("symbol")?)
                    .or_insert(InFlightReason::RunInProgress);
            }
        }
        Ok(out)
    }
}

impl SqlStore {
    /// The exit legs of the positions stored (`stored`: position index and transaction id),
    /// each waiting for its entry order (`order_ids` by transaction id).
    fn leg_orders(
        &self,
        positions: &[NewPosition],
        stored: &[(usize, i64)],
        order_ids: &HashMap<i64, i64>,
    ) -> Vec<Order> {
        stored
            .iter()
            .filter_map(|&(i, txn_id)| {
                let entry = order_ids.get(&txn_id)?;
                Some(positions[i].leg_orders(txn_id, *entry, &self.installation))
            })
            .flatten()
            .collect()
    }

    /// Each position's result: its rows when stored, a refusal (holder not yet named)
    /// otherwise.
    fn opened(
        &self,
        positions: &[NewPosition],
        stored: &[(usize, i64)],
        order_ids: &HashMap<i64, i64>,
    ) -> Result<Vec<Opened>, StoreError> {
        let mut out: Vec<Opened> = positions
            .iter()
            .map(|n| {
                Err(StoreError::DuplicatePosition {
                    expert_id: n.expert_id,
                    symbol: n.symbol.clone(),
                    existing: None,
                })
            })
            .collect();
        for &(i, txn_id) in stored {
            let order_id = *order_ids.get(&txn_id).ok_or_else(|| {
                StoreError::database(format!("no entry order stored for transaction {txn_id}"))
            })?;
            out[i] = Ok(positions[i].stored_rows(
                txn_id,
                order_id,
                client_order_id(&self.installation, txn_id, OrderRole::Entry),
            ));
        }
        Ok(out)
    }
}

/// Names the transaction that holds each refused slot, inside the transaction that was
/// refused: the holder is committed (another process's, or an earlier position of the same
/// batch), so it is visible here, and the refusal's outcome is written with the rest.
async fn name_refusals(
    tx: &mut Tx,
    positions: &[NewPosition],
    out: &mut [Opened],
) -> Result<(), StoreError> {
    for (i, n) in positions.iter().enumerate() {
        if out[i].is_err() {
            let row = tx
                .fetch_one(
                    &active_by_symbol_sql(),
                    &[n.expert_id.into(), n.symbol.as_str().into()],
                )
                .await
                .map_err(map_err)?;
            let existing = row
                .as_ref()
                .map(transaction_from)
                .transpose()?
                .map(|t| (t.id, t.status));
            out[i] = Err(StoreError::DuplicatePosition {
                expert_id: n.expert_id,
                symbol: n.symbol.clone(),
                existing,
            });
        }
    }
    Ok(())
}

/// The decision records written with the positions: the skips, then, for each position a
/// run decided, its provisional `ordered` outcome (with the decision kept apart, for the
/// completion) or its refusal by the unique index.
fn decision_records(
    positions: &[NewPosition],
    out: &[Opened],
    skips: &[Outcome],
) -> Vec<(Outcome, Option<String>)> {
    let mut rows: Vec<(Outcome, Option<String>)> =
        skips.iter().map(|o| (o.clone(), None)).collect();
    for (n, result) in positions.iter().zip(out) {
        if let Some(record) = n.decision_record(result) {
            // An entry's outcome keeps its decision apart, for the completion.
            let kept = record.order_id.and(n.decision.clone());
            rows.push((record, kept));
        }
    }
    rows
}

/// The completions of the outcomes of entries whose answer was applied.
fn entry_completions(
    answers: &[(i64, BrokerOrder)],
    updated: &HashMap<i64, Order>,
) -> Vec<OutcomeCompletion> {
    answers
        .iter()
        .filter_map(|(id, a)| {
            let o = updated.get(id).filter(|o| o.role == OrderRole::Entry)?;
            let (outcome, answer) =
                entry_outcome(o.status, &o.client_order_id, a.reason.as_deref());
            Some(OutcomeCompletion {
                order_id: o.id,
                outcome,
                answer,
            })
        })
        .collect()
}

/// One `UPDATE … FROM (VALUES …)` per answered status, in which the status table decides: a
/// row changes only from a status that may legally move to the answer's, and comes back in
/// the same trip. Returns the orders that changed, by id.
async fn update_orders(
    tx: &mut Tx,
    answers: &[(i64, BrokerOrder)],
) -> Result<HashMap<i64, Order>, StoreError> {
    let kind = tx.kind();
    let mut by_status: HashMap<OrderStatus, Vec<&(i64, BrokerOrder)>> = HashMap::new();
    for a in answers {
        by_status.entry(a.1.status).or_default().push(a);
    }
    let mut updated: HashMap<i64, Order> = HashMap::with_capacity(answers.len());
    for (to, group) in by_status {
        let status = to.as_str();
        let from: Vec<String> = OrderStatus::predecessors(to)
            .into_iter()
            .map(|f| format!("'{}'", f.as_str()))
            .collect();
        for chunk in group.chunks(chunk_rows(6)) {
            let sql = format!(
                "UPDATE orders SET status = '{status}', filled_quantity = v.column2, \
                 avg_fill_price = COALESCE(v.column3, orders.avg_fill_price), \
                 broker_order_id = COALESCE(v.column4, orders.broker_order_id), \
                 reason = COALESCE(v.column5, orders.reason), updated_at = v.column6 \
                 FROM (VALUES {}) AS v WHERE orders.id = v.column1 AND orders.status IN ({}) RETURNING {ORDER_COLUMNS}",
                values_clause(kind, chunk.len(), 6),
                from.join(", ")
            );
            let args: Vec<Val> = chunk
                .iter()
                .flat_map(|(id, a)| {
                    [
                        (*id).into(),
                        a.filled_quantity.into(),
                        a.avg_fill_price.into(),
                        a.broker_order_id.clone().into(),
                        a.reason.clone().into(),
                        a.updated_at.into(),
                    ]
                })
                .collect();
            for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
                let o = order_from(&row)?;
                updated.insert(o.id, o);
            }
        }
    }
    Ok(updated)
}

/// The transactions of entries that filled (in part): the position exists.
async fn open_filled_transactions(
    tx: &mut Tx,
    answers: &[(i64, BrokerOrder)],
    updated: &HashMap<i64, Order>,
) -> Result<(), StoreError> {
    let kind = tx.kind();
    let opened: Vec<(&Order, &BrokerOrder)> = answers
        .iter()
        .filter_map(|(id, a)| updated.get(id).map(|o| (o, a)))
        .filter(|(o, a)| o.role == OrderRole::Entry && a.status.is_executed())
        .collect();
    for chunk in opened.chunks(chunk_rows(4)) {
        let sql = format!(
            "UPDATE transactions SET status = 'OPENED', open_price = v.column2, \
             opened_at = COALESCE(transactions.opened_at, v.column3), quantity = v.column4 \
             FROM (VALUES {}) AS v WHERE transactions.id = v.column1 AND transactions.status IN ({})",
            values_clause(kind, chunk.len(), 4),
            entry_event_predecessors(TransactionStatus::Opened)
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(o, a)| {
                let quantity = if a.status == OrderStatus::Filled {
                    o.quantity
                } else {
                    a.filled_quantity
                };
                [
                    o.transaction_id.into(),
                    a.avg_fill_price.into(),
                    a.updated_at.into(),
                    quantity.into(),
                ]
            })
            .collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}

/// Entries refused with nothing filled: the slot is free again (rare; one by one).
async fn close_refused_entries(
    tx: &mut Tx,
    answers: &[(i64, BrokerOrder)],
    updated: &HashMap<i64, Order>,
) -> Result<(), StoreError> {
    for (id, a) in answers {
        let Some(o) = updated.get(id) else { continue };
        if o.role != OrderRole::Entry || !a.status.is_terminal() || !a.filled_quantity.is_zero() {
            continue;
        }
        let (new_status, reason) = if a.status == OrderStatus::Error {
            (TransactionStatus::Failed, "entry_not_submitted")
        } else {
            (
                TransactionStatus::Closed,
                "entry_orders_terminal_no_execution",
            )
        };
        let reason = match &a.reason {
            Some(r) => format!("{reason}: {r}"),
            None => reason.to_string(),
        };
        let sql = format!(
            "UPDATE transactions SET status = $1, closed_at = $2, close_reason = $3 WHERE id = $4 AND status IN ({})",
            entry_event_predecessors(new_status)
        );
        tx.execute(
            &sql,
            &[
                new_status.as_str().into(),
                a.updated_at.into(),
                reason.into(),
                o.transaction_id.into(),
            ],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Inserts the transactions, many rows a statement. B1: the partial unique index refuses a
/// second active transaction; DO NOTHING turns a refusal into "no row returned" instead of
/// aborting the batch (a unique violation aborts a PostgreSQL transaction). Returns the new
/// ids by (expert, symbol).
async fn insert_transactions(
    tx: &mut Tx,
    positions: &[NewPosition],
) -> Result<HashMap<(i64, String), i64>, StoreError> {
    let mut txn_ids: HashMap<(i64, String), i64> = HashMap::new();
    for chunk in positions.chunks(chunk_rows(9)) {
        let sql = format!(
            "INSERT INTO transactions (expert_id, account, symbol, side, quantity, status, reference_price, \
             take_profit, stop_loss, created_at) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING id, expert_id, symbol",
            values_clause_with(
                tx.kind(),
                chunk.len(),
                &["", "", "", "", "", "'WAITING'", "", "", "", ""]
            )
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|n| {
                [
                    n.expert_id.into(),
                    n.account.as_str().into(),
                    n.symbol.as_str().into(),
                    n.side.as_str().into(),
                    n.quantity.into(),
                    n.reference_price.into(),
                    n.take_profit.into(),
                    n.stop_loss.into(),
                    n.created_at.into(),
                ]
            })
            .collect();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            txn_ids.insert((row.i64("expert_id")?, row.text("symbol")?), row.i64("id")?);
        }
    }
    Ok(txn_ids)
}

/// One entry order per stored transaction, with its client_order_id; returns the order ids
/// by transaction id.
async fn insert_entry_orders(
    tx: &mut Tx,
    installation: &InstallationId,
    positions: &[NewPosition],
    stored: &[(usize, i64)],
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut order_ids: HashMap<i64, i64> = HashMap::new();
    for chunk in stored.chunks(chunk_rows(12)) {
        let sql = format!(
            "INSERT INTO orders (transaction_id, expert_id, account, symbol, side, order_type, quantity, limit_price, \
             client_order_id, recommendation_id, created_at, updated_at, role, filled_quantity, status) \
             VALUES {} RETURNING id, transaction_id",
            values_clause_with(
                tx.kind(),
                chunk.len(),
                &[
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "'entry'",
                    "'0'",
                    "'submitting'"
                ]
            )
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|(i, txn_id)| {
                let n = &positions[*i];
                [
                    (*txn_id).into(),
                    n.expert_id.into(),
                    n.account.as_str().into(),
                    n.symbol.as_str().into(),
                    n.side.as_str().into(),
                    n.order_type.as_str().into(),
                    n.quantity.into(),
                    n.limit_price.into(),
                    client_order_id(installation, *txn_id, OrderRole::Entry).into(),
                    n.recommendation_id.into(),
                    n.created_at.into(),
                    n.created_at.into(),
                ]
            })
            .collect();
        for row in tx.fetch(&sql, &args).await.map_err(map_err)? {
            order_ids.insert(row.i64("transaction_id")?, row.i64("id")?);
        }
    }
    Ok(order_ids)
}

/// Inserts exit legs (`waiting_trigger`, nothing sent yet), many rows a statement, in the
/// transaction that stores their entries: a position is never stored without the legs its
/// decision gave it.
async fn insert_exit_legs(tx: &mut Tx, legs: &[Order]) -> Result<(), StoreError> {
    for chunk in legs.chunks(chunk_rows(16)) {
        let sql = format!(
            "INSERT INTO orders (transaction_id, expert_id, account, symbol, side, role, order_type, quantity, \
             limit_price, stop_price, client_order_id, parent_order_id, trigger_status, recommendation_id, \
             created_at, updated_at, filled_quantity, status) VALUES {}",
            values_clause_with(
                tx.kind(),
                chunk.len(),
                &[
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "'0'",
                    "'waiting_trigger'"
                ]
            )
        );
        let args: Vec<Val> = chunk
            .iter()
            .flat_map(|o| {
                [
                    o.transaction_id.into(),
                    o.expert_id.into(),
                    o.account.as_str().into(),
                    o.symbol.as_str().into(),
                    o.side.as_str().into(),
                    o.role.as_str().into(),
                    o.order_type.as_str().into(),
                    o.quantity.into(),
                    o.limit_price.into(),
                    o.stop_price.into(),
                    o.client_order_id.as_str().into(),
                    o.parent_order_id.into(),
                    o.trigger_status.map(|s| s.as_str()).into(),
                    o.recommendation_id.into(),
                    o.created_at.into(),
                    o.created_at.into(),
                ]
            })
            .collect();
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}
