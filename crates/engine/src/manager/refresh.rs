//! Refresh (issue 9 item 3): ask the broker about every working order, apply the answers
//! through the order status table, then move each position on: WAITING → OPENED on the
//! entry's fill, CLOSED when an exit filled (or the broker no longer holds it), fire legs
//! whose parent reached their trigger, cancel legs that can never fire and the siblings of
//! a filled leg, and finish a half-done replacement of an exit structure.
//!
//! Single-flight per account through the account's lock and lease
//! (`refresh_account_{name}`); an account whose lock stays taken is skipped and logged. The
//! accounts whose locks are free go as one batch: their leases taken in one statement, their
//! positions read in one query per kind, their run records and lease releases written
//! together; each account's broker calls and writes are its own, several accounts at once.
//! The same steps ([`TradeManager::advance`]) finish a close or a replacement of exits. At a
//! broker that attaches exits to entries, legs waiting for a sent entry that it holds are
//! adopted, never sent; at one that replaces orders, a moved structure replaces its resting
//! legs in place ([`super::replace`]) instead of canceling them first.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use tradewarden_domain::lifecycle::{
    CloseReason, LegStep, TransactionChange, classify_leg, derive_transaction, siblings_to_cancel,
};
use tradewarden_domain::{Order, OrderRole, OrderStatus, TransactionStatus};

use super::TradeManager;
use crate::error::EngineError;
use crate::fault;
use crate::locks::{LockSubject, ProcessingGuard};
use crate::ports::{Broker, BrokerOrder, LifecycleWrite, OrderRequest, Position, RunRecord};
use crate::report::RunStatus;

/// What `tradewarden refresh` prints (and `run` and `process` under `refresh`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// The accounts refreshed.
    pub accounts: Vec<String>,
    /// Orders whose status or fills changed with the broker's answers.
    pub orders_updated: usize,
    pub transactions_opened: usize,
    pub transactions_closed: usize,
    /// Exit legs sent to the broker.
    pub legs_fired: usize,
    /// Exit legs canceled, at the broker or before they were ever sent.
    pub legs_canceled: usize,
    /// Accounts whose refresh lock another run held (extension; `[]` when none).
    pub skipped_accounts: Vec<String>,
}

impl RefreshReport {
    fn add(&mut self, c: &RefreshReport) {
        self.orders_updated += c.orders_updated;
        self.transactions_opened += c.transactions_opened;
        self.transactions_closed += c.transactions_closed;
        self.legs_fired += c.legs_fired;
        self.legs_canceled += c.legs_canceled;
    }
}

/// Statuses in which the broker has an order that may still change: asked about on refresh.
fn is_working(status: OrderStatus) -> bool {
    status.may_be_executing()
}

/// Statuses in which an order rests at the broker and can be canceled there.
pub(super) fn at_broker(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::Accepted | OrderStatus::PartiallyFilled)
}

/// Whether `o` is a take-profit or stop-loss leg.
pub(super) fn is_leg(o: &Order) -> bool {
    matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss)
}

/// A leg's generation, read from its client_order_id as `next_generation` reads it.
pub(super) fn generation(o: &Order) -> u32 {
    o.client_order_id
        .rsplit('-')
        .next()
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// The reason a CLOSING transaction was put CLOSING with (stored in `close_reason`).
fn requested(p: &Position) -> Option<CloseReason> {
    (p.transaction.status == TransactionStatus::Closing)
        .then(|| {
            p.transaction
                .close_reason
                .as_deref()
                .and_then(CloseReason::parse)
        })
        .flatten()
}

/// The legs of `p` to cancel at the broker: the live siblings of a leg that executed (the
/// broker's one-cancels-other may not exist or may not have run yet), every leg of a
/// position that is closing or closed, and the older generations of a replacement whose
/// new legs are stored (a replacement a crash left half done).
pub(crate) fn broker_cancels(p: &Position, now: DateTime<Utc>) -> Vec<&Order> {
    let resting = |o: &&Order| is_leg(o) && at_broker(o.status);
    let change = derive_transaction(&p.transaction, &p.orders, requested(p), now);
    let ending = matches!(change, Some(TransactionChange::Closed { .. }))
        || matches!(
            p.transaction.status,
            TransactionStatus::Closing | TransactionStatus::Closed | TransactionStatus::Failed
        );
    if ending {
        return p.orders.iter().filter(resting).collect();
    }
    let mut out: Vec<&Order> = Vec::new();
    for filled in p
        .orders
        .iter()
        .filter(|o| is_leg(o) && o.filled_quantity > Decimal::ZERO)
    {
        out.extend(
            siblings_to_cancel(filled, &p.orders)
                .into_iter()
                .filter(resting),
        );
    }
    let newest_waiting = p
        .orders
        .iter()
        .filter(|o| is_leg(o) && o.status == OrderStatus::WaitingTrigger)
        .filter(|o| o.trigger_status == Some(OrderStatus::Canceled))
        .map(generation)
        .max();
    if let Some(newest) = newest_waiting {
        out.extend(
            p.orders
                .iter()
                .filter(resting)
                .filter(|o| generation(o) < newest),
        );
    }
    out.sort_by_key(|o| o.id);
    out.dedup_by_key(|o| o.id);
    out
}

/// What one position's step writes: its derived change, legs canceled before they were
/// sent, legs that fire.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub change: Option<TransactionChange>,
    /// CLOSING, and its close ended without any execution: back to OPENED.
    pub reopen: bool,
    pub canceled: Vec<i64>,
    pub claimed: Vec<(i64, Decimal)>,
}

/// Decides one position from its orders (reference §6.2, §6.3). `held`: the symbols the
/// broker holds, when it answered; an OPENED position it does not hold, with no order that
/// may still execute, is closed `position_not_at_broker`.
pub(crate) fn plan(p: &Position, held: Option<&HashSet<String>>, now: DateTime<Utc>) -> Plan {
    let txn = &p.transaction;
    let mut change = derive_transaction(txn, &p.orders, requested(p), now);
    if change.is_none() && not_at_broker(p, held) {
        change = Some(TransactionChange::Closed {
            close_price: None,
            closed_at: now,
            reason: CloseReason::PositionNotAtBroker,
        });
    }
    let reopen = change.is_none() && close_refused(p);
    let open = match &change {
        Some(TransactionChange::Closed { .. }) => Decimal::ZERO,
        Some(TransactionChange::Opened { quantity, .. })
        | Some(TransactionChange::Quantity { quantity, .. }) => *quantity,
        None => txn.quantity,
    };
    let ending =
        open.is_zero() || txn.status.is_terminal() || txn.status == TransactionStatus::Closing;
    let by_id: HashMap<i64, &Order> = p.orders.iter().map(|o| (o.id, o)).collect();
    let mut out = Plan {
        change,
        reopen,
        ..Plan::default()
    };
    claim_close(p, open, &mut out);
    for leg in p
        .orders
        .iter()
        .filter(|o| is_leg(o) && o.status == OrderStatus::WaitingTrigger)
    {
        if ending {
            out.canceled.push(leg.id);
            continue;
        }
        let parent = leg.parent_order_id.and_then(|id| by_id.get(&id).copied());
        match classify_leg(leg, parent, open) {
            // What is open now: the entry's fill, grown or shrunk by instrument-share
            // orders that filled before the legs fired.
            LegStep::Fire { .. } => out.claimed.push((leg.id, open)),
            LegStep::Cancel => out.canceled.push(leg.id),
            LegStep::Wait => {}
            LegStep::Error(why) => tracing::warn!(order = leg.id, "leg left waiting: {why}"),
        }
    }
    out
}

/// A CLOSING position's `pending` close order: sent for the open quantity once no leg may
/// still execute (canceled when nothing is open any more).
fn claim_close(p: &Position, open: Decimal, out: &mut Plan) {
    if p.transaction.status != TransactionStatus::Closing
        || matches!(out.change, Some(TransactionChange::Closed { .. }))
    {
        return;
    }
    let legs_busy = p
        .orders
        .iter()
        .any(|o| is_leg(o) && o.status.may_be_executing());
    for close in p
        .orders
        .iter()
        .filter(|o| o.role == OrderRole::Close && o.status == OrderStatus::Pending)
    {
        if open.is_zero() {
            out.canceled.push(close.id);
        } else if !legs_busy {
            out.claimed.push((close.id, open));
        }
    }
}

/// Whether a CLOSING position's close orders all ended without any execution (refused,
/// canceled, expired): the position is still there and must be protected again.
fn close_refused(p: &Position) -> bool {
    let closes: Vec<&Order> = p
        .orders
        .iter()
        .filter(|o| o.role == OrderRole::Close)
        .collect();
    p.transaction.status == TransactionStatus::Closing
        && !closes.is_empty()
        && closes
            .iter()
            .all(|o| o.status.is_terminal() && o.filled_quantity.is_zero())
}

/// Whether an OPENED position is gone at the broker: the broker answered, holds nothing of
/// the symbol, and no order of the position may still execute.
fn not_at_broker(p: &Position, held: Option<&HashSet<String>>) -> bool {
    let Some(held) = held else { return false };
    p.transaction.status == TransactionStatus::Opened
        && !held.contains(&p.transaction.symbol)
        && !p.orders.iter().any(|o| o.status.may_be_executing())
}

/// Whether an OPENED position's legs resting at the broker no longer cover what it holds
/// (an addition or a partial close filled): they are replaced by legs of the open quantity.
fn needs_resize(p: &Position, change: Option<&TransactionChange>) -> bool {
    let open = match change {
        None => p.transaction.quantity,
        Some(TransactionChange::Quantity { quantity, .. }) => *quantity,
        Some(_) => return false,
    };
    // A replacement already stored and waiting is not replaced again (its legs fire sized).
    let replacing = p
        .orders
        .iter()
        .any(|o| is_leg(o) && o.status == OrderStatus::WaitingTrigger);
    p.transaction.status == TransactionStatus::Opened
        && open > Decimal::ZERO
        && !replacing
        && p.orders
            .iter()
            .filter(|o| is_leg(o) && at_broker(o.status))
            .any(|o| o.quantity - o.filled_quantity != open)
}

/// Replaces stored orders of `positions` with their updated rows.
pub(super) fn merge(positions: &mut [Position], updated: &[Order]) {
    let by_id: HashMap<i64, &Order> = updated.iter().map(|o| (o.id, o)).collect();
    for p in positions.iter_mut() {
        for o in p.orders.iter_mut() {
            if let Some(u) = by_id.get(&o.id) {
                *o = (*u).clone();
            }
        }
    }
}

impl TradeManager {
    /// Refreshes every account (sorted by name), each under its refresh lock. The accounts
    /// whose locks are free now go as one batch: their leases taken in one statement, their
    /// live positions read in one query per kind, their run records written and leases given
    /// back together; each account's broker calls and lifecycle writes stay its own. Each
    /// of the others then waits for its lock alone (and is skipped if it stays taken). An
    /// account that fails does not stop the others of its batch: the refresh ends with the
    /// first error (in name order) once the batch's records are written and its leases
    /// given back.
    pub async fn refresh(&self) -> Result<RefreshReport, EngineError> {
        let mut accounts: Vec<String> = self.brokers.keys().cloned().collect();
        accounts.sort();
        let subjects = accounts
            .iter()
            .map(|account| LockSubject::Account {
                account: account.clone(),
            })
            .collect();
        let guards = self.locks.try_acquire_subjects(subjects).await;
        let mut free = Vec::new();
        let mut taken = Vec::new();
        for (account, guard) in accounts.into_iter().zip(guards) {
            match guard {
                Some(guard) => free.push((account, guard)),
                None => taken.push(account),
            }
        }
        let mut report = RefreshReport::default();
        self.refresh_batch(free, &mut report).await?;
        for account in taken {
            let subject = LockSubject::Account {
                account: account.clone(),
            };
            let Some(guard) = self.locks.acquire_subject(subject).await else {
                tracing::warn!(
                    "refresh of account {account} skipped: another refresh holds its lock"
                );
                report.skipped_accounts.push(account);
                continue;
            };
            self.refresh_batch(vec![(account, guard)], &mut report)
                .await?;
        }
        report.accounts.sort();
        Ok(report)
    }

    /// Refreshes the accounts of `locked` (their locks held), a few at once
    /// ([`super::per_account`]), adding what each did to `report`; returns the first error
    /// (in the order of `locked`) once every account ended and the records are written.
    async fn refresh_batch(
        &self,
        locked: Vec<(String, ProcessingGuard)>,
        report: &mut RefreshReport,
    ) -> Result<(), EngineError> {
        if locked.is_empty() {
            return Ok(());
        }
        let started_at = self.clock.now();
        fault::hold("refresh_account").await;
        let names: Vec<String> = locked.iter().map(|(a, _)| a.clone()).collect();
        let loaded = self.store.live_positions(&names).await;
        let mut records = Vec::with_capacity(locked.len());
        let mut failure = None;
        match loaded {
            Err(e) => {
                let e = EngineError::from(e);
                for (_, guard) in &locked {
                    records.push(self.refresh_record(guard, started_at, Some(&e)));
                }
                failure = Some(e);
            }
            Ok(positions) => {
                let mut by_account: HashMap<String, Vec<Position>> = HashMap::new();
                for p in positions {
                    by_account
                        .entry(p.transaction.account.clone())
                        .or_default()
                        .push(p);
                }
                // Each account's broker calls and writes are its own: they go concurrently
                // (on PostgreSQL their round trips and commits overlap).
                let refreshing = locked.iter().map(|(account, guard)| {
                    let positions = by_account.remove(account).unwrap_or_default();
                    self.refresh_account(account, guard, positions)
                });
                let results = super::per_account(refreshing).await;
                for ((account, guard), result) in locked.iter().zip(results) {
                    records.push(self.refresh_record(guard, started_at, result.as_ref().err()));
                    match result {
                        Ok(done) => {
                            report.add(&done);
                            report.accounts.push(account.clone());
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
            }
        }
        self.finish_refreshes(locked, &records).await;
        failure.map_or(Ok(()), Err)
    }

    /// The run record of one account's refresh.
    fn refresh_record(
        &self,
        guard: &ProcessingGuard,
        started_at: DateTime<Utc>,
        failure: Option<&EngineError>,
    ) -> RunRecord {
        RunRecord {
            expert_id: None,
            use_case: None,
            trigger: None,
            counts: None,
            lock_key: guard.key(),
            owner: self.owner(),
            status: match failure {
                None => RunStatus::Processed,
                Some(_) => RunStatus::Failed,
            },
            error: failure.map(ToString::to_string),
            started_at,
            finished_at: self.clock.now(),
        }
    }

    /// Writes the refreshes' run records and gives back their leases in one store call; if
    /// it fails (logged), each lease is given back on its own.
    async fn finish_refreshes(
        &self,
        locked: Vec<(String, ProcessingGuard)>,
        records: &[RunRecord],
    ) {
        let guards: Vec<&ProcessingGuard> = locked.iter().map(|(_, g)| g).collect();
        let written = self.record_and_give_back(&guards, &[], records).await;
        if let Err(e) = &written {
            tracing::warn!("could not record {} refresh(es): {e}", records.len());
        }
        for (_, guard) in locked {
            guard.end(written.is_ok()).await;
        }
    }

    /// One account's refresh: its live `positions`, moved on with what its broker says.
    async fn refresh_account(
        &self,
        account: &str,
        guard: &ProcessingGuard,
        positions: Vec<Position>,
    ) -> Result<RefreshReport, EngineError> {
        let broker = self.broker(account)?.clone();
        if positions.is_empty() {
            return Ok(RefreshReport::default());
        }
        self.advance(broker.as_ref(), positions, Some(guard), true)
            .await
    }

    /// The steps of a refresh over `positions` of one broker's account: ask, apply, cancel
    /// at the broker what must go, decide and write, send the legs that fire. `holdings`:
    /// whether to ask the broker what it holds (to close positions it no longer has).
    pub(super) async fn advance(
        &self,
        broker: &dyn Broker,
        mut positions: Vec<Position>,
        guard: Option<&ProcessingGuard>,
        holdings: bool,
    ) -> Result<RefreshReport, EngineError> {
        let mut counts = RefreshReport::default();
        counts.orders_updated += self.ask_working(broker, &mut positions, guard).await?;
        let replaced = self.replace_resting(broker, &mut positions, guard).await?;
        counts.legs_fired += replaced.placed;
        counts.legs_canceled += replaced.ended;
        counts.legs_canceled += self.cancel_resting(broker, &mut positions, guard).await?;
        let held = match holdings {
            true => self.held_symbols(broker, &positions).await,
            false => None,
        };
        let now = self.clock.now();
        let mut write = LifecycleWrite {
            at: now,
            ..LifecycleWrite::default()
        };
        let mut resize = Vec::new();
        for p in &positions {
            let plan = plan(p, held.as_ref(), now);
            if needs_resize(p, plan.change.as_ref()) {
                resize.push(p.transaction.id);
            }
            if let Some(c) = plan.change {
                write.changes.push((p.transaction.id, c));
            }
            if plan.reopen {
                write.reopened.push(p.transaction.id);
            }
            write.canceled.extend(plan.canceled);
            write.claimed.extend(plan.claimed);
        }
        if write.is_empty() {
            self.resize_legs(&resize).await?;
            return Ok(counts);
        }
        // The entry's answer may have opened it in the store already: count what was derived.
        counts.transactions_opened += write
            .changes
            .iter()
            .filter(|(_, c)| matches!(c, TransactionChange::Opened { .. }))
            .count();
        let written = self.store.write_lifecycle(&write).await?;
        counts.transactions_closed += written.closed;
        counts.legs_canceled += written.canceled;
        self.send_orders(broker, &written.claimed, guard).await?;
        counts.legs_fired += written.claimed.iter().filter(|o| is_leg(o)).count();
        for id in written.reopened {
            tracing::warn!(
                transaction = id,
                "close ended without execution: OPENED again, its exits placed again"
            );
            // Its legs were canceled for the close: the exits in force are placed again.
            Box::pin(self.replace_exits(id, None, None)).await?;
        }
        self.resize_legs(&resize).await?;
        Ok(counts)
    }

    /// Replaces the exit structures of `ids` with legs of their open quantity (the next
    /// generation, stored before the old legs are canceled).
    async fn resize_legs(&self, ids: &[i64]) -> Result<(), EngineError> {
        for &id in ids {
            tracing::info!(transaction = id, "open quantity moved: exit legs resized");
            Box::pin(self.replace_exits(id, None, None)).await?;
        }
        Ok(())
    }

    /// Asks the broker about every working order of `positions` in one call (and, at a
    /// broker that attaches exits to entries, about the legs waiting for a sent entry) and
    /// applies the answers; returns how many orders changed.
    async fn ask_working(
        &self,
        broker: &dyn Broker,
        positions: &mut [Position],
        guard: Option<&ProcessingGuard>,
    ) -> Result<usize, EngineError> {
        let attached: Vec<&Order> = match broker.attaches_exits() {
            true => positions.iter().flat_map(maybe_attached).collect(),
            false => Vec::new(),
        };
        let working: Vec<&Order> = positions
            .iter()
            .flat_map(|p| p.orders.iter())
            .filter(|o| is_working(o.status))
            .chain(attached.iter().copied())
            .collect();
        if working.is_empty() {
            return Ok(0);
        }
        if let Some(g) = guard {
            g.ensure_held()?;
        }
        let ids: Vec<String> = working.iter().map(|o| o.client_order_id.clone()).collect();
        let found = broker.orders_by_client_ids(&ids).await;
        let answers: Vec<(i64, BrokerOrder)> = working
            .iter()
            .zip(found)
            .filter_map(|(o, f)| match f {
                Ok(Some(a)) if a.mismatch(o).is_none() && changes(o, &a) => Some((o.id, a)),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(order = o.id, "cannot ask about {}: {e}", o.client_order_id);
                    None
                }
            })
            .collect();
        if answers.is_empty() {
            return Ok(0);
        }
        let leg_filled = answers.iter().any(|(id, a)| {
            a.filled_quantity > Decimal::ZERO && working.iter().any(|o| o.id == *id && is_leg(o))
        });
        if leg_filled {
            fault::point("after_leg_filled_before_recorded");
        }
        self.claim_attached(&attached, &answers).await?;
        let before: HashMap<i64, (OrderStatus, Decimal)> = working
            .iter()
            .map(|o| (o.id, (o.status, o.filled_quantity)))
            .collect();
        let updated = self.store.apply_broker_orders(&answers).await?;
        let changed = updated
            .iter()
            .filter(|o| before.get(&o.id) != Some(&(o.status, o.filled_quantity)))
            .count();
        merge(positions, &updated);
        Ok(changed)
    }

    /// Claims (`waiting_trigger` → `submitting`) the waiting legs the broker answered for:
    /// it holds them, attached to their entry, so they are recorded as its, never sent.
    async fn claim_attached(
        &self,
        attached: &[&Order],
        answers: &[(i64, BrokerOrder)],
    ) -> Result<(), EngineError> {
        let claimed: Vec<(i64, Decimal)> = attached
            .iter()
            .filter(|o| answers.iter().any(|(id, _)| *id == o.id))
            .map(|o| (o.id, o.quantity))
            .collect();
        if claimed.is_empty() {
            return Ok(());
        }
        let write = LifecycleWrite {
            claimed,
            at: self.clock.now(),
            ..LifecycleWrite::default()
        };
        self.store.write_lifecycle(&write).await?;
        Ok(())
    }

    /// Cancels at the broker the legs that must go ([`broker_cancels`]) and applies the
    /// answers; returns how many ended canceled.
    async fn cancel_resting(
        &self,
        broker: &dyn Broker,
        positions: &mut [Position],
        guard: Option<&ProcessingGuard>,
    ) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let doomed: Vec<Order> = positions
            .iter()
            .flat_map(|p| broker_cancels(p, now))
            .cloned()
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut answers = Vec::with_capacity(doomed.len());
        for o in &doomed {
            if let Some(g) = guard {
                g.ensure_held()?;
            }
            match broker.cancel(&o.client_order_id).await {
                Ok(a) if a.mismatch(o).is_none() => answers.push((o.id, a)),
                Ok(_) => tracing::warn!(order = o.id, "cancel answered for another order"),
                Err(e) => tracing::warn!(order = o.id, "cannot cancel {}: {e}", o.client_order_id),
            }
        }
        let updated = self.store.apply_broker_orders(&answers).await?;
        let canceled = updated
            .iter()
            .filter(|o| o.status == OrderStatus::Canceled)
            .count();
        merge(positions, &updated);
        Ok(canceled)
    }

    /// The symbols the broker holds, or `None` when it could not say (then no position is
    /// closed for being absent). Asked only when an OPENED position has no order working.
    async fn held_symbols(
        &self,
        broker: &dyn Broker,
        positions: &[Position],
    ) -> Option<HashSet<String>> {
        let idle = positions.iter().any(|p| {
            p.transaction.status == TransactionStatus::Opened
                && !p.orders.iter().any(|o| o.status.may_be_executing())
        });
        if !idle {
            return None;
        }
        match broker.holdings().await {
            Ok(h) => Some(h.positions.into_iter().map(|p| p.symbol).collect()),
            Err(e) => {
                tracing::warn!("cannot read the broker's holdings: {e}");
                None
            }
        }
    }

    /// Sends stored `submitting` orders once, in one batch (the legs of one structure share
    /// their one-cancels-other group), and records the answers; returns how many were sent.
    pub(super) async fn send_orders(
        &self,
        broker: &dyn Broker,
        orders: &[Order],
        guard: Option<&ProcessingGuard>,
    ) -> Result<usize, EngineError> {
        if orders.is_empty() {
            return Ok(0);
        }
        if let Some(g) = guard {
            g.ensure_held()?;
        }
        let requests: Vec<OrderRequest> = orders.iter().map(OrderRequest::for_order).collect();
        let results = broker.submit_batch(&requests).await;
        let mut answers = Vec::with_capacity(orders.len());
        for (o, r) in orders.iter().zip(results) {
            if let Some(a) = self.answer_of(broker, o, r).await? {
                answers.push((o.id, a));
            }
        }
        self.store.apply_broker_orders(&answers).await?;
        Ok(orders.len())
    }
}

/// The legs of `p` waiting for an entry the broker has heard of: a broker that attaches
/// exits may hold them already (the entry went with them).
fn maybe_attached(p: &Position) -> impl Iterator<Item = &Order> {
    p.orders.iter().filter(|o| {
        is_leg(o)
            && o.status == OrderStatus::WaitingTrigger
            && o.trigger_status == Some(OrderStatus::Filled)
            && p.orders.iter().any(|e| {
                Some(e.id) == o.parent_order_id
                    && e.role == OrderRole::Entry
                    && e.broker_order_id.is_some()
            })
    })
}

/// Whether a broker's answer says anything new about `o`.
fn changes(o: &Order, a: &BrokerOrder) -> bool {
    a.status != o.status
        || a.filled_quantity != o.filled_quantity
        || (a.broker_order_id.is_some() && a.broker_order_id != o.broker_order_id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use tradewarden_domain::lifecycle::closing_side;
    use tradewarden_domain::{OrderType, Side, Transaction};

    use super::*;
    use crate::ports::NewExitOrder;
    use crate::testing::{MemoryStore, ScriptedBroker, paper_manager};

    /// A manager over a memory store and a broker quoting AAPL at 100 that holds `held`.
    fn manager(held: Decimal) -> (TradeManager, Arc<MemoryStore>, Arc<ScriptedBroker>) {
        paper_manager(held)
    }

    /// A long of 10 AAPL whose market entry the broker filled at 100, with its two legs
    /// waiting for the fill; returns the transaction id.
    async fn long_with_legs(m: &TradeManager, broker: &ScriptedBroker) -> i64 {
        long_entered(m, broker, true).await
    }

    /// [`long_with_legs`]; when `fills` is false, the broker rejects the entry.
    async fn long_entered(m: &TradeManager, broker: &ScriptedBroker, fills: bool) -> i64 {
        let now = chrono::Utc::now();
        let (t, entry) = m
            .store()
            .open_position(&crate::testing::market_buy("AAPL", dec!(10)))
            .await
            .unwrap();
        let answer = match fills {
            true => broker
                .submit(&OrderRequest::for_order(&entry))
                .await
                .unwrap(),
            false => BrokerOrder {
                broker_order_id: None,
                client_order_id: entry.client_order_id.clone(),
                status: OrderStatus::Rejected,
                filled_quantity: Decimal::ZERO,
                avg_fill_price: None,
                reason: Some("scripted".into()),
                updated_at: now,
                symbol: None,
                side: None,
                quantity: None,
            },
        };
        m.store()
            .apply_broker_order(entry.id, &answer)
            .await
            .unwrap();
        let leg = |role, order_type, limit_price, stop_price| NewExitOrder {
            transaction_id: t.id,
            expert_id: 1,
            account: "paper".into(),
            symbol: "AAPL".into(),
            side: closing_side(Side::Buy),
            role,
            order_type,
            quantity: dec!(10),
            limit_price,
            stop_price,
            generation: 1,
            status: OrderStatus::WaitingTrigger,
            parent_order_id: Some(entry.id),
            trigger_status: Some(OrderStatus::Filled),
            created_at: now,
        };
        m.store()
            .write_lifecycle(&LifecycleWrite {
                inserted: vec![
                    leg(
                        OrderRole::TakeProfit,
                        OrderType::Limit,
                        Some(dec!(110)),
                        None,
                    ),
                    leg(OrderRole::StopLoss, OrderType::Stop, None, Some(dec!(93))),
                ],
                at: now,
                ..LifecycleWrite::default()
            })
            .await
            .unwrap();
        t.id
    }

    fn statuses(store: &MemoryStore, txn: i64) -> Vec<(OrderRole, OrderStatus)> {
        store
            .state
            .lock()
            .orders
            .iter()
            .filter(|o| o.transaction_id == txn)
            .map(|o| (o.role, o.status))
            .collect()
    }

    fn txn_of(store: &MemoryStore, id: i64) -> Transaction {
        store
            .state
            .lock()
            .transactions
            .iter()
            .find(|t| t.id == id)
            .unwrap()
            .clone()
    }

    use OrderRole::{Entry, StopLoss, TakeProfit};
    use OrderStatus::{Accepted, Canceled, Filled};

    #[tokio::test]
    async fn legs_fire_once_in_one_group_when_the_entry_filled() {
        // Catches: legs never fired, fired twice, or sent outside one one-cancels-other group.
        let (m, store, broker) = manager(dec!(10));
        let txn = long_with_legs(&m, &broker).await;
        let first = m.refresh().await.unwrap();
        assert_eq!((first.legs_fired, first.legs_canceled), (2, 0));
        assert_eq!(
            statuses(&store, txn),
            vec![
                (Entry, Filled),
                (TakeProfit, Accepted),
                (StopLoss, Accepted)
            ]
        );
        let groups: Vec<Option<String>> = broker.state.lock().submitted[1..]
            .iter()
            .map(|r| r.oco_group.clone())
            .collect();
        assert_eq!(groups.len(), 2);
        assert!(groups[0].is_some() && groups[0] == groups[1], "{groups:?}");
        let again = m.refresh().await.unwrap();
        assert_eq!(
            again,
            RefreshReport {
                accounts: vec!["paper".into()],
                ..RefreshReport::default()
            }
        );
        assert_eq!(broker.state.lock().submitted.len(), 3, "each order once");
    }

    #[tokio::test]
    async fn a_filled_leg_closes_the_position_and_its_sibling_is_canceled() {
        // Catches: a sibling left live when the broker has no one-cancels-other (the
        // position could be sold twice), or a close with the wrong reason.
        let (m, store, broker) = manager(dec!(10));
        let txn = long_with_legs(&m, &broker).await;
        m.refresh().await.unwrap();
        let tp = store.state.lock().orders[1].client_order_id.clone();
        broker.fill(&tp, dec!(110), false);
        let r = m.refresh().await.unwrap();
        assert_eq!(
            (r.orders_updated, r.transactions_closed, r.legs_canceled),
            (1, 1, 1)
        );
        assert_eq!(
            statuses(&store, txn),
            vec![(Entry, Filled), (TakeProfit, Filled), (StopLoss, Canceled)]
        );
        let t = txn_of(&store, txn);
        assert_eq!(t.status, TransactionStatus::Closed);
        assert_eq!(t.close_reason.as_deref(), Some("take_profit"));
        assert_eq!(t.close_price, Some(dec!(110)));
    }

    #[tokio::test]
    async fn legs_of_an_entry_that_never_filled_are_canceled_unsent() {
        // Catches: legs fired for a position that never existed.
        let (m, store, broker) = manager(dec!(0));
        let txn = long_entered(&m, &broker, false).await;
        let r = m.refresh().await.unwrap();
        assert_eq!((r.legs_fired, r.legs_canceled), (0, 2));
        assert_eq!(
            statuses(&store, txn),
            vec![
                (Entry, OrderStatus::Rejected),
                (TakeProfit, Canceled),
                (StopLoss, Canceled)
            ]
        );
        assert!(broker.state.lock().submitted.is_empty());
    }

    #[tokio::test]
    async fn a_position_the_broker_no_longer_holds_is_closed_only_when_nothing_works() {
        // Catches: a position closed as gone while its exits still work at the broker (a
        // fill not yet reported), or never closed once it is gone.
        let (m, store, broker) = manager(dec!(10));
        let txn = long_with_legs(&m, &broker).await;
        m.refresh().await.unwrap();
        broker.state.lock().positions.clear();
        m.refresh().await.unwrap();
        assert_eq!(
            txn_of(&store, txn).status,
            TransactionStatus::Opened,
            "legs work"
        );
        for o in store.state.lock().orders.iter_mut().skip(1) {
            o.status = Canceled;
        }
        let r = m.refresh().await.unwrap();
        assert_eq!(r.transactions_closed, 1);
        let t = txn_of(&store, txn);
        assert_eq!(t.close_reason.as_deref(), Some("position_not_at_broker"));
    }

    #[tokio::test]
    async fn free_accounts_refresh_as_one_batch_and_a_held_one_is_skipped() {
        // Catches: a store round per account (positions read, run recorded, lease given
        // back one account at a time), a batch that refreshes an account another refresh
        // holds, or a refreshed account left without its run record.
        let store = Arc::new(MemoryStore::new());
        let brokers = ["a", "b", "c"]
            .map(|name| {
                let broker = Arc::new(ScriptedBroker::new(dec!(1000), &[]));
                (name.to_string(), broker as Arc<dyn Broker>)
            })
            .into();
        let m = TradeManager::new(
            crate::testing::one_paper_expert(),
            store.clone(),
            brokers,
            Arc::new(crate::ports::SystemClock),
        );
        let held = m
            .locks()
            .acquire_subject(LockSubject::Account {
                account: "b".into(),
            })
            .await
            .unwrap();
        let r = m.refresh().await.unwrap();
        assert_eq!(r.accounts, ["a", "c"]);
        assert_eq!(r.skipped_accounts, ["b"]);
        held.release().await;
        let s = store.state.lock();
        let keys: Vec<&str> = s.runs.iter().map(|r| r.lock_key.as_str()).collect();
        assert_eq!(keys, ["refresh_account_a", "refresh_account_c"]);
        assert_eq!(s.calls.get("live_positions"), Some(&1));
        assert_eq!(s.calls.get("finish_runs"), Some(&1));
    }

    #[tokio::test]
    async fn an_account_whose_refresh_lock_is_held_is_skipped() {
        // Catches: two refreshes of one account at once.
        let (m, _, broker) = manager(dec!(10));
        long_with_legs(&m, &broker).await;
        let held = m
            .locks()
            .acquire_subject(LockSubject::Account {
                account: "paper".into(),
            })
            .await
            .unwrap();
        let r = m.refresh().await.unwrap();
        assert_eq!(r.skipped_accounts, vec!["paper".to_string()]);
        assert!(r.accounts.is_empty());
        assert_eq!(r.legs_fired, 0);
        held.release().await;
        assert_eq!(m.refresh().await.unwrap().legs_fired, 2);
    }
}
