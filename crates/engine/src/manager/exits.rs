//! Closing a position and replacing its exit structure (issue 9 items 2 and 6).
//!
//! Both store what they will do before the broker hears of it: a close order is stored
//! `submitting` before it is sent (B3), and replacement legs are stored before the old ones
//! are canceled, so a crash anywhere leaves the position protected; the refresh steps
//! ([`TradeManager::advance`]) finish what a crash left half done.

use rust_decimal::Decimal;
use serde::Serialize;
use tradewarden_domain::lifecycle::{
    CloseReason, closing_side, exit_legs, is_opening, next_generation,
};
use tradewarden_domain::{Order, OrderRole, OrderStatus, OrderType, TransactionStatus};

use super::TradeManager;
use crate::error::EngineError;
use crate::fault;
use crate::ports::{BrokerError, LifecycleWrite, NewExitOrder, Position, StoreError};

/// What [`TradeManager::close_transaction`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CloseOutcome {
    /// The transaction is CLOSING; this close order was sent (or, while a leg could not be
    /// canceled yet, is left `pending` for a refresh to send).
    Closing { order_id: i64 },
    /// It was CLOSING already: nothing changed.
    AlreadyClosing,
    /// It was CLOSED (or FAILED) already: nothing changed.
    AlreadyClosed,
    /// Its entry had not filled: the entry and its legs were canceled.
    EntryCanceled,
}

/// What [`TradeManager::replace_exits`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ExitsOutcome {
    /// A new exit structure of this generation replaced the live one.
    Replaced { generation: u32 },
    /// The prices asked for are those in force (or the transaction is closing or closed).
    Unchanged,
}

/// The quantity a position holds now: what its entries and additions filled less what its
/// exits filled.
pub(super) fn open_quantity(p: &Position) -> Decimal {
    let filled = |opening: bool| -> Decimal {
        p.orders
            .iter()
            .filter(|o| is_opening(o.role) == opening)
            .map(|o| o.filled_quantity)
            .sum()
    };
    filled(true) - filled(false)
}

/// The live take-profit and stop-loss legs of a position.
fn live_legs(p: &Position) -> impl Iterator<Item = &Order> {
    p.orders.iter().filter(|o| {
        matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss)
            && tradewarden_domain::lifecycle::is_live(o.status)
    })
}

/// Whether the live legs are exactly one structure at `tp` and `sl`, and those that rest at
/// the broker of an OPENED position cover its open quantity (an instrument-share order that
/// filled calls for legs resized to the new quantity).
fn structure_is(p: &Position, tp: Option<Decimal>, sl: Option<Decimal>) -> bool {
    let legs: Vec<&Order> = live_legs(p).collect();
    let price = |role| {
        legs.iter()
            .find(|o| o.role == role)
            .and_then(|o| o.limit_price.or(o.stop_price))
    };
    let wanted = usize::from(tp.is_some()) + usize::from(sl.is_some());
    let open = open_quantity(p);
    let sized = p.transaction.status != TransactionStatus::Opened
        || legs
            .iter()
            .filter(|o| o.status != OrderStatus::WaitingTrigger)
            .all(|o| o.quantity - o.filled_quantity == open);
    legs.len() == wanted
        && price(OrderRole::TakeProfit) == tp
        && price(OrderRole::StopLoss) == sl
        && sized
}

impl TradeManager {
    /// OPENED → CLOSING; cancel the working legs; store a market close order (role close,
    /// closing side, the open quantity, deterministic client id) BEFORE sending it; send it
    /// exactly once (B3: settle by lookup after a crash). Already CLOSING/CLOSED → said, no
    /// change. WAITING (entry not filled): cancel the entry and its legs (the transaction
    /// ends through refresh).
    pub async fn close_transaction(
        &self,
        transaction_id: i64,
        reason: CloseReason,
    ) -> Result<CloseOutcome, EngineError> {
        let p = self.position_of(transaction_id).await?;
        match p.transaction.status {
            TransactionStatus::Closed | TransactionStatus::Failed => {
                return Ok(CloseOutcome::AlreadyClosed);
            }
            TransactionStatus::Closing => return Ok(CloseOutcome::AlreadyClosing),
            TransactionStatus::Waiting => return self.cancel_entry(p, reason).await,
            TransactionStatus::Opened => {}
        }
        let broker = self.broker(&p.transaction.account)?.clone();
        // CLOSING and the close order (`pending`, for the open quantity) in one write: a
        // crash after it leaves the close for the next refresh to send.
        let write = LifecycleWrite {
            closing: Some((transaction_id, reason)),
            inserted: vec![self.close_order(&p)],
            at: self.clock.now(),
            ..LifecycleWrite::default()
        };
        let written = self.store.write_lifecycle(&write).await?;
        let Some(order) = written.inserted.first().filter(|_| written.closing) else {
            return self.already(transaction_id).await;
        };
        // The refresh steps cancel its legs, then size the close to what is still open and
        // send it, once no leg may still execute.
        let p = self.position_of(transaction_id).await?;
        self.advance(broker.as_ref(), vec![p], None, false).await?;
        Ok(CloseOutcome::Closing { order_id: order.id })
    }

    /// Replace the live exit structure with one at these prices (None = keep that leg's
    /// price / no such leg). New legs (next generation) are stored BEFORE the old ones are
    /// canceled; then old canceled, then new placed (if the entry has filled; else they wait
    /// for the trigger). A crash anywhere leaves the position protected: refresh/reconcile
    /// finish a half-done replacement (cancel the older generation, place the newer).
    /// Updates the transaction's take_profit/stop_loss.
    pub async fn replace_exits(
        &self,
        transaction_id: i64,
        take_profit: Option<Decimal>,
        stop_loss: Option<Decimal>,
    ) -> Result<ExitsOutcome, EngineError> {
        let mut p = self.position_of(transaction_id).await?;
        if !p.transaction.status.is_active() {
            return Ok(ExitsOutcome::Unchanged);
        }
        let broker = self.broker(&p.transaction.account)?.clone();
        if broker.attaches_exits() {
            // Legs that went with the entry rest at the broker though our books may still
            // have them waiting: learn that first, so they are replaced, not left beside the
            // next structure.
            self.advance(broker.as_ref(), vec![p], None, false).await?;
            p = self.position_of(transaction_id).await?;
        }
        let tp = take_profit.or(p.transaction.take_profit);
        let sl = stop_loss.or(p.transaction.stop_loss);
        if (tp, sl) == (p.transaction.take_profit, p.transaction.stop_loss)
            && structure_is(&p, tp, sl)
        {
            return Ok(ExitsOutcome::Unchanged);
        }
        let generation = next_generation(&p.orders);
        let write = self.replacement(&p, tp, sl, generation);
        self.store.write_lifecycle(&write).await?;
        fault::point("after_replacement_legs_stored");
        // The refresh steps cancel the older generation, then fire the new one.
        let p = self.position_of(transaction_id).await?;
        self.advance(broker.as_ref(), vec![p], None, false).await?;
        Ok(ExitsOutcome::Replaced { generation })
    }

    /// The write that stores a new exit structure: its legs wait for the live structure's
    /// stop (or take profit) to be canceled when one rests at the broker, else for the
    /// entry's fill; legs never sent are canceled at once; the transaction takes the prices.
    fn replacement(
        &self,
        p: &Position,
        tp: Option<Decimal>,
        sl: Option<Decimal>,
        generation: u32,
    ) -> LifecycleWrite {
        let txn = &p.transaction;
        let resting: Vec<&Order> = live_legs(p)
            .filter(|o| o.status != OrderStatus::WaitingTrigger)
            .collect();
        let entry = p.orders.iter().find(|o| o.role == OrderRole::Entry);
        let (parent, trigger) = match resting
            .iter()
            .find(|o| o.role == OrderRole::StopLoss)
            .or(resting.first())
        {
            Some(old) => (Some(old.id), OrderStatus::Canceled),
            None => (entry.map(|e| e.id), OrderStatus::Filled),
        };
        let quantity = match txn.status {
            TransactionStatus::Opened => open_quantity(p),
            _ => entry.map_or(txn.quantity, |e| e.quantity),
        };
        let now = self.clock.now();
        let inserted = exit_legs(txn.side, tp, sl, generation)
            .into_iter()
            .map(|leg| NewExitOrder {
                transaction_id: txn.id,
                expert_id: txn.expert_id,
                account: txn.account.clone(),
                symbol: txn.symbol.clone(),
                side: leg.side,
                role: leg.role,
                order_type: leg.order_type,
                quantity,
                limit_price: leg.limit_price,
                stop_price: leg.stop_price,
                generation,
                status: OrderStatus::WaitingTrigger,
                parent_order_id: parent,
                trigger_status: Some(trigger),
                created_at: now,
            })
            .collect();
        LifecycleWrite {
            exits: Some((txn.id, tp, sl)),
            inserted,
            canceled: live_legs(p)
                .filter(|o| o.status == OrderStatus::WaitingTrigger)
                .map(|o| o.id)
                .collect(),
            at: now,
            ..LifecycleWrite::default()
        }
    }

    /// A WAITING transaction's close: its entry canceled at the broker (if it rests there)
    /// and its legs before they are sent. An entry that turns out filled makes the
    /// transaction OPENED, which is then closed as such.
    async fn cancel_entry(
        &self,
        p: Position,
        reason: CloseReason,
    ) -> Result<CloseOutcome, EngineError> {
        let broker = self.broker(&p.transaction.account)?.clone();
        let mut answers = Vec::new();
        for entry in p.orders.iter().filter(|o| o.role == OrderRole::Entry) {
            if entry.status == OrderStatus::Submitting {
                return Err(EngineError::Broker(BrokerError::Unavailable(format!(
                    "entry {} is in flight (submitting); `tradewarden reconcile` settles it first",
                    entry.client_order_id
                ))));
            }
            if matches!(
                entry.status,
                OrderStatus::Accepted | OrderStatus::PartiallyFilled
            ) {
                answers.push((entry.id, broker.cancel(&entry.client_order_id).await?));
            }
        }
        self.store.apply_broker_orders(&answers).await?;
        let id = p.transaction.id;
        let p = self.position_of(id).await?;
        if p.transaction.status == TransactionStatus::Opened {
            return Box::pin(self.close_transaction(id, reason)).await;
        }
        self.advance(broker.as_ref(), vec![p], None, false).await?;
        Ok(CloseOutcome::EntryCanceled)
    }

    /// The market close order of `p`, `pending` for its open quantity: a refresh sends it
    /// (`submitting` first) once no leg may still execute.
    fn close_order(&self, p: &Position) -> NewExitOrder {
        let txn = &p.transaction;
        let closes = p
            .orders
            .iter()
            .filter(|o| o.role == OrderRole::Close)
            .count();
        NewExitOrder {
            transaction_id: txn.id,
            expert_id: txn.expert_id,
            account: txn.account.clone(),
            symbol: txn.symbol.clone(),
            side: closing_side(txn.side),
            role: OrderRole::Close,
            order_type: OrderType::Market,
            quantity: open_quantity(p),
            limit_price: None,
            stop_price: None,
            generation: closes as u32 + 1,
            status: OrderStatus::Pending,
            parent_order_id: None,
            trigger_status: None,
            created_at: self.clock.now(),
        }
    }

    /// A transaction and its orders, or the store's `NotFound` naming it.
    pub(super) async fn position_of(&self, transaction_id: i64) -> Result<Position, EngineError> {
        self.store.position(transaction_id).await?.ok_or_else(|| {
            EngineError::Store(StoreError::NotFound(format!(
                "transaction {transaction_id}"
            )))
        })
    }

    /// What a close that lost the race to another closer found.
    async fn already(&self, transaction_id: i64) -> Result<CloseOutcome, EngineError> {
        let p = self.position_of(transaction_id).await?;
        Ok(match p.transaction.status {
            TransactionStatus::Closing => CloseOutcome::AlreadyClosing,
            _ => CloseOutcome::AlreadyClosed,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;

    use super::*;
    use crate::ports::{Broker, OrderRequest};
    use crate::testing::{MemoryStore, ScriptedBroker, paper_manager};

    fn manager() -> (TradeManager, Arc<MemoryStore>, Arc<ScriptedBroker>) {
        paper_manager(dec!(10))
    }

    /// A long of 10 AAPL at 100 (sent to the broker when `send`, else left accepted there
    /// as a limit below the market), with exits at 110 / 93; returns its id.
    async fn long(m: &TradeManager, broker: &ScriptedBroker, send: bool) -> i64 {
        let (t, entry) = m
            .store()
            .open_position(&crate::testing::market_buy("AAPL", dec!(10)))
            .await
            .unwrap();
        if send {
            let answer = broker
                .submit(&OrderRequest::for_order(&entry))
                .await
                .unwrap();
            m.store()
                .apply_broker_order(entry.id, &answer)
                .await
                .unwrap();
        }
        t.id
    }

    fn legs(store: &MemoryStore) -> Vec<(OrderRole, OrderStatus, String)> {
        store
            .state
            .lock()
            .orders
            .iter()
            .filter(|o| o.role != OrderRole::Entry)
            .map(|o| (o.role, o.status, o.client_order_id.clone()))
            .collect()
    }

    use OrderRole::{Close, StopLoss, TakeProfit};
    use OrderStatus::{Accepted, Canceled, Filled, WaitingTrigger};

    #[tokio::test]
    async fn exits_of_an_opened_position_are_placed_then_replaced_stored_first() {
        // Catches: a replacement that leaves two structures live, or loses the old one's
        // cancellation; the first structure never placed.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker, true).await;
        let first = m.replace_exits(txn, Some(dec!(110)), Some(dec!(93))).await;
        assert_eq!(first.unwrap(), ExitsOutcome::Replaced { generation: 1 });
        assert_eq!(
            legs(&store),
            vec![
                (TakeProfit, Accepted, "tw-mem-1-tp-1".into()),
                (StopLoss, Accepted, "tw-mem-1-sl-1".into())
            ]
        );
        let second = m.replace_exits(txn, None, Some(dec!(97))).await.unwrap();
        assert_eq!(second, ExitsOutcome::Replaced { generation: 2 });
        assert_eq!(
            legs(&store),
            vec![
                (TakeProfit, Canceled, "tw-mem-1-tp-1".into()),
                (StopLoss, Canceled, "tw-mem-1-sl-1".into()),
                (TakeProfit, Accepted, "tw-mem-1-tp-2".into()),
                (StopLoss, Accepted, "tw-mem-1-sl-2".into())
            ]
        );
        let same = m.replace_exits(txn, Some(dec!(110)), None).await.unwrap();
        assert_eq!(same, ExitsOutcome::Unchanged);
        assert_eq!(broker.state.lock().submitted.len(), 5);
    }

    #[tokio::test]
    async fn exits_of_a_waiting_position_wait_for_its_entry() {
        // Catches: legs sent before the position exists, or an old waiting structure left.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker, false).await;
        m.replace_exits(txn, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        m.replace_exits(txn, Some(dec!(112)), None).await.unwrap();
        assert_eq!(
            legs(&store),
            vec![
                (TakeProfit, Canceled, "tw-mem-1-tp-1".into()),
                (StopLoss, Canceled, "tw-mem-1-sl-1".into()),
                (TakeProfit, WaitingTrigger, "tw-mem-1-tp-2".into()),
                (StopLoss, WaitingTrigger, "tw-mem-1-sl-2".into())
            ]
        );
        assert!(broker.state.lock().submitted.is_empty());
    }

    #[tokio::test]
    async fn a_close_cancels_the_legs_and_sends_one_close_order() {
        // Catches: legs left working beside the close, a close sent twice, a second close
        // that is not told apart, an unknown id that is not an error.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker, true).await;
        m.replace_exits(txn, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        let out = m
            .close_transaction(txn, CloseReason::ManualClose)
            .await
            .unwrap();
        let CloseOutcome::Closing { order_id } = out else {
            panic!("{out:?}")
        };
        assert_eq!(order_id, 4);
        assert_eq!(
            legs(&store),
            vec![
                (TakeProfit, Canceled, "tw-mem-1-tp-1".into()),
                (StopLoss, Canceled, "tw-mem-1-sl-1".into()),
                (Close, Filled, "tw-mem-1-close-1".into())
            ]
        );
        let again = m
            .close_transaction(txn, CloseReason::ManualClose)
            .await
            .unwrap();
        assert_eq!(again, CloseOutcome::AlreadyClosing);
        assert_eq!(broker.state.lock().submitted.len(), 4);
        assert!(matches!(
            m.close_transaction(99, CloseReason::ManualClose).await,
            Err(EngineError::Store(StoreError::NotFound(_)))
        ));
    }

    #[tokio::test]
    async fn a_refused_close_reopens_the_position_and_protects_it_again() {
        // Catches: a position left CLOSING for ever (and bare) when its close is refused.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker, true).await;
        m.replace_exits(txn, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        broker.state.lock().reject.insert("tw-mem-1-close-1".into());
        m.close_transaction(txn, CloseReason::ManualClose)
            .await
            .unwrap();
        m.refresh().await.unwrap();
        let t = store.state.lock().transactions[0].clone();
        assert_eq!(
            (t.status, t.close_reason),
            (TransactionStatus::Opened, None)
        );
        let live: Vec<(OrderRole, OrderStatus, String)> = legs(&store)
            .into_iter()
            .filter(|(_, s, _)| *s == Accepted)
            .collect();
        assert_eq!(
            live,
            vec![
                (TakeProfit, Accepted, "tw-mem-1-tp-2".into()),
                (StopLoss, Accepted, "tw-mem-1-sl-2".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_close_stored_but_never_sent_is_sent_by_the_next_refresh() {
        // Catches: a crash between storing a close and sending it leaving the position
        // CLOSING for ever, or a close sent while a leg still rests at the broker.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker, true).await;
        m.replace_exits(txn, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        let p = m.position_of(txn).await.unwrap();
        let write = LifecycleWrite {
            closing: Some((txn, CloseReason::ManualClose)),
            inserted: vec![m.close_order(&p)],
            at: chrono::Utc::now(),
            ..LifecycleWrite::default()
        };
        assert!(m.store().write_lifecycle(&write).await.unwrap().closing);
        m.refresh().await.unwrap();
        assert_eq!(
            legs(&store),
            vec![
                (TakeProfit, Canceled, "tw-mem-1-tp-1".into()),
                (StopLoss, Canceled, "tw-mem-1-sl-1".into()),
                (Close, Filled, "tw-mem-1-close-1".into())
            ]
        );
        m.refresh().await.unwrap();
        let t = store.state.lock().transactions[0].clone();
        assert_eq!(
            (t.status, t.close_reason.as_deref()),
            (TransactionStatus::Closed, Some("manual_close"))
        );
        assert_eq!(broker.state.lock().submitted.len(), 4, "each order once");
    }
}
