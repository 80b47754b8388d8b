//! Carrying out `increase_instrument_share` / `decrease_instrument_share` (issue 9 item 1):
//! one market order on the position's own transaction.
//!
//! - An increase is an order of role `add` on the position's side
//!   (`tw-{installation}-{txn}-add-{n}`); its fills grow the transaction's quantity and
//!   average into its open price.
//! - A decrease is a partial close: role `close` on the closing side, for less than the
//!   open quantity (`tw-{installation}-{txn}-close-{n}`); its fills shrink the quantity and
//!   the transaction stays OPENED. (A decrease to 0 % is a whole close, not this.)
//!
//! The order is stored `submitting` before it is sent, and sent once (B3: after a crash,
//! reconcile settles it by looking its client_order_id up). The refresh steps then apply
//! its fill and resize the exit legs to the new quantity (the next generation, stored
//! before the old legs are canceled).

use rust_decimal::Decimal;
use serde::Serialize;
use tradewarden_domain::instrument_share::ShareOrder;
use tradewarden_domain::lifecycle::is_live;
use tradewarden_domain::{OrderRole, OrderStatus, OrderType, TransactionStatus};

use super::TradeManager;
use super::exits::open_quantity;
use crate::error::EngineError;
use crate::fault;
use crate::ports::{LifecycleWrite, NewExitOrder, Position};

/// What [`TradeManager::change_share`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ShareOutcome {
    /// This order was stored and sent.
    Sent { order_id: i64 },
    /// An addition or a close of the transaction is still working: nothing was sent.
    Working,
    /// The transaction is not OPENED (any more): nothing was sent.
    NotOpened,
    /// A partial close would leave less than one unit: nothing was sent.
    TooSmall,
}

/// The role of an order on the side `order.side` of position `p`: `add` on its own side,
/// `close` on the other.
fn role_of(p: &Position, order: &ShareOrder) -> OrderRole {
    match order.side == p.transaction.side {
        true => OrderRole::Add,
        false => OrderRole::Close,
    }
}

/// Whether an addition or a close of `p` may still execute or be sent.
fn share_working(p: &Position) -> bool {
    p.orders
        .iter()
        .any(|o| matches!(o.role, OrderRole::Add | OrderRole::Close) && is_live(o.status))
}

impl TradeManager {
    /// Sends `order` on OPENED transaction `transaction_id`: stored `submitting`, sent once,
    /// then its answer applied and the exit legs resized to the new open quantity. A partial
    /// close never sells more than is open less one unit.
    pub async fn change_share(
        &self,
        transaction_id: i64,
        order: ShareOrder,
    ) -> Result<ShareOutcome, EngineError> {
        let p = self.position_of(transaction_id).await?;
        if p.transaction.status != TransactionStatus::Opened {
            return Ok(ShareOutcome::NotOpened);
        }
        if share_working(&p) {
            return Ok(ShareOutcome::Working);
        }
        let broker = self.broker(&p.transaction.account)?.clone();
        let Some(new) = self.share_order(&p, &order) else {
            return Ok(ShareOutcome::TooSmall);
        };
        let write = LifecycleWrite {
            inserted: vec![new],
            at: self.clock.now(),
            ..LifecycleWrite::default()
        };
        let written = self.store.write_lifecycle(&write).await?;
        let Some(stored) = written.inserted.first().cloned() else {
            return Ok(ShareOutcome::NotOpened);
        };
        fault::point("after_share_order_stored");
        self.send_orders(broker.as_ref(), std::slice::from_ref(&stored), None)
            .await?;
        // Its fill moves the quantity and resizes the legs (when the broker filled it).
        let p = self.position_of(transaction_id).await?;
        self.advance(broker.as_ref(), vec![p], None, false).await?;
        Ok(ShareOutcome::Sent {
            order_id: stored.id,
        })
    }

    /// The order row to store, `submitting`, numbered after the transaction's earlier orders
    /// of its role; `None` for a partial close of a position holding nothing to spare.
    fn share_order(&self, p: &Position, order: &ShareOrder) -> Option<NewExitOrder> {
        let txn = &p.transaction;
        let role = role_of(p, order);
        let quantity = match role {
            OrderRole::Close => order.quantity.min(open_quantity(p) - Decimal::ONE),
            _ => order.quantity,
        };
        if quantity < Decimal::ONE {
            return None;
        }
        let earlier = p.orders.iter().filter(|o| o.role == role).count();
        Some(NewExitOrder {
            transaction_id: txn.id,
            expert_id: txn.expert_id,
            account: txn.account.clone(),
            symbol: txn.symbol.clone(),
            side: order.side,
            role,
            order_type: OrderType::Market,
            quantity,
            limit_price: None,
            stop_price: None,
            generation: earlier as u32 + 1,
            status: OrderStatus::Submitting,
            parent_order_id: None,
            trigger_status: None,
            created_at: self.clock.now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rust_decimal_macros::dec;
    use tradewarden_domain::Side;

    use super::*;
    use crate::ports::{Broker, OrderRequest};
    use crate::testing::{MemoryStore, ScriptedBroker, paper_manager};

    fn manager() -> (TradeManager, Arc<MemoryStore>, Arc<ScriptedBroker>) {
        paper_manager(dec!(10))
    }

    /// A long of 10 AAPL filled at 100 with exits at 110 / 93; returns its id.
    async fn long(m: &TradeManager, broker: &ScriptedBroker) -> i64 {
        let (t, entry) = m
            .store()
            .open_position(&crate::testing::market_buy("AAPL", dec!(10)))
            .await
            .unwrap();
        let answer = broker
            .submit(&OrderRequest::for_order(&entry))
            .await
            .unwrap();
        m.store()
            .apply_broker_order(entry.id, &answer)
            .await
            .unwrap();
        m.replace_exits(t.id, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        t.id
    }

    /// A long of 10 AAPL whose entry filled at the broker while its legs still wait (no
    /// refresh ran since); returns its id.
    async fn long_with_waiting_legs(m: &TradeManager, broker: &ScriptedBroker) -> i64 {
        let (t, entry) = m
            .store()
            .open_position(&crate::testing::market_buy("AAPL", dec!(10)))
            .await
            .unwrap();
        m.replace_exits(t.id, Some(dec!(110)), Some(dec!(93)))
            .await
            .unwrap();
        let answer = broker
            .submit(&OrderRequest::for_order(&entry))
            .await
            .unwrap();
        m.store()
            .apply_broker_order(entry.id, &answer)
            .await
            .unwrap();
        t.id
    }

    /// The live legs (role, quantity, client id) and the transaction's (quantity, status).
    fn state(
        store: &MemoryStore,
    ) -> (
        Vec<(OrderRole, Decimal, String)>,
        Decimal,
        TransactionStatus,
    ) {
        let s = store.state.lock();
        let legs = s
            .orders
            .iter()
            .filter(|o| matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss))
            .filter(|o| is_live(o.status))
            .map(|o| (o.role, o.quantity, o.client_order_id.clone()))
            .collect();
        let t = &s.transactions[0];
        (legs, t.quantity, t.status)
    }

    fn order(side: Side, quantity: Decimal) -> ShareOrder {
        ShareOrder { side, quantity }
    }

    #[tokio::test]
    async fn an_addition_grows_the_position_and_resizes_its_legs_once() {
        // Catches: an addition that does not reach the transaction, legs left at the old
        // size, two live structures, an order sent twice.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker).await;
        let out = m
            .change_share(txn, order(Side::Buy, dec!(30)))
            .await
            .unwrap();
        assert!(matches!(out, ShareOutcome::Sent { .. }), "{out:?}");
        let (legs, quantity, status) = state(&store);
        assert_eq!((quantity, status), (dec!(40), TransactionStatus::Opened));
        assert_eq!(
            legs,
            vec![
                (OrderRole::TakeProfit, dec!(40), "tw-mem-1-tp-2".into()),
                (OrderRole::StopLoss, dec!(40), "tw-mem-1-sl-2".into()),
            ]
        );
        let sent: Vec<String> = broker
            .state
            .lock()
            .submitted
            .iter()
            .map(|r| r.client_order_id.clone())
            .collect();
        assert_eq!(
            sent.iter().filter(|c| *c == "tw-mem-1-add-1").count(),
            1,
            "{sent:?}"
        );
        assert_eq!(
            store.state.lock().transactions[0].open_price,
            Some(dec!(100))
        );
    }

    #[tokio::test]
    async fn legs_still_waiting_fire_for_the_grown_quantity() {
        // Catches: legs that fire for the entry's fill alone after an addition filled.
        let (m, store, broker) = manager();
        let txn = long_with_waiting_legs(&m, &broker).await;
        let out = m
            .change_share(txn, order(Side::Buy, dec!(30)))
            .await
            .unwrap();
        assert!(matches!(out, ShareOutcome::Sent { .. }), "{out:?}");
        let (legs, quantity, _) = state(&store);
        assert_eq!(quantity, dec!(40));
        assert_eq!(
            legs,
            vec![
                (OrderRole::TakeProfit, dec!(40), "tw-mem-1-tp-1".into()),
                (OrderRole::StopLoss, dec!(40), "tw-mem-1-sl-1".into()),
            ]
        );
    }

    #[tokio::test]
    async fn a_partial_close_shrinks_the_position_and_keeps_it_opened() {
        // Catches: a partial close that closes the transaction, or leaves legs for more
        // than is held.
        let (m, store, broker) = manager();
        let txn = long(&m, &broker).await;
        let out = m
            .change_share(txn, order(Side::Sell, dec!(4)))
            .await
            .unwrap();
        assert!(matches!(out, ShareOutcome::Sent { .. }), "{out:?}");
        let (legs, quantity, status) = state(&store);
        assert_eq!((quantity, status), (dec!(6), TransactionStatus::Opened));
        assert_eq!(
            legs,
            vec![
                (OrderRole::TakeProfit, dec!(6), "tw-mem-1-tp-2".into()),
                (OrderRole::StopLoss, dec!(6), "tw-mem-1-sl-2".into()),
            ]
        );
        // never the whole position: that is a close
        let out = m
            .change_share(txn, order(Side::Sell, dec!(60)))
            .await
            .unwrap();
        assert!(matches!(out, ShareOutcome::Sent { .. }), "{out:?}");
        assert_eq!(state(&store).1, dec!(1));
        let out = m
            .change_share(txn, order(Side::Sell, dec!(1)))
            .await
            .unwrap();
        assert_eq!(out, ShareOutcome::TooSmall);
    }

    #[tokio::test]
    async fn nothing_is_sent_while_a_share_order_works_or_the_position_is_not_opened() {
        let (m, store, broker) = manager();
        let txn = long(&m, &broker).await;
        let p = m.position_of(txn).await.unwrap();
        let pending = m.share_order(&p, &order(Side::Buy, dec!(5))).unwrap();
        m.store()
            .write_lifecycle(&LifecycleWrite {
                inserted: vec![pending],
                at: chrono::Utc::now(),
                ..LifecycleWrite::default()
            })
            .await
            .unwrap();
        let out = m
            .change_share(txn, order(Side::Buy, dec!(5)))
            .await
            .unwrap();
        assert_eq!(out, ShareOutcome::Working);
        store.state.lock().transactions[0].status = TransactionStatus::Closing;
        let out = m
            .change_share(txn, order(Side::Buy, dec!(5)))
            .await
            .unwrap();
        assert_eq!(out, ShareOutcome::NotOpened);
    }
}
