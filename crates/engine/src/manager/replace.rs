//! Moving a resting exit structure in place (issue 10 item 3). At a broker that replaces
//! orders ([`Broker::can_replace_legs`]), the next structure that
//! [`TradeManager::replace_exits`] stored is put onto the legs resting now, one replace per
//! leg, instead of canceling them and placing anew: the position has a working stop at
//! every moment (I8), not only before the cancel and after the placement.
//!
//! Exactly once (B3): the next structure's rows, with their client_order_ids, are stored and
//! then claimed `submitting` before any replace is sent. A crash after a replace reached the
//! broker is settled by the refresh's look-up of the new leg by its client_order_id, after
//! which the leg it replaced is recorded canceled ([`superseded`]); a leg still
//! `submitting` that the broker does not have is replaced again — a replace names the old
//! order, which the broker replaces at most once.

use rust_decimal::Decimal;
use tradewarden_domain::{Order, OrderRole, OrderStatus, TransactionStatus};

use super::TradeManager;
use super::exits::open_quantity;
use super::refresh::{at_broker, generation, is_leg, merge};
use crate::error::EngineError;
use crate::fault;
use crate::locks::ProcessingGuard;
use crate::ports::{Broker, BrokerError, BrokerOrder, LifecycleWrite, OrderRequest, Position};

/// A leg of the next exit structure and the resting leg of its role that it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InPlace<'a> {
    pub next: &'a Order,
    pub resting: &'a Order,
}

/// Whether `o` is a leg of a next structure that waits for (or was claimed to replace) the
/// structure resting at the broker, and is not at the broker yet.
fn is_next_leg(o: &Order) -> bool {
    is_leg(o)
        && o.trigger_status == Some(OrderStatus::Canceled)
        && o.broker_order_id.is_none()
        && matches!(
            o.status,
            OrderStatus::WaitingTrigger | OrderStatus::Submitting
        )
}

/// The legs of an OPENED position's newest next structure, each paired with the resting
/// leg of its role, stop loss first. Empty unless they pair one to one by role with the
/// resting legs, none of which has executed: a structure that gains or loses a leg is
/// replaced the other way (cancel, then place).
///
/// The stop goes first because a native one-cancels-other order at Alpaca is its take
/// profit with the stop as a leg: replaced first, the stop carries our new id, so a crash
/// before the take profit's replace never lets the old stop be read as the new one.
pub(crate) fn in_place(p: &Position) -> Vec<InPlace<'_>> {
    if p.transaction.status != TransactionStatus::Opened {
        return Vec::new();
    }
    let Some(newest) = p
        .orders
        .iter()
        .filter(|o| is_next_leg(o))
        .map(generation)
        .max()
    else {
        return Vec::new();
    };
    let next: Vec<&Order> = p
        .orders
        .iter()
        .filter(|o| is_next_leg(o) && generation(o) == newest)
        .collect();
    // A resting leg already replaced (its answer lost) is no longer there to replace.
    let resting: Vec<&Order> = p
        .orders
        .iter()
        .filter(|o| is_leg(o) && at_broker(o.status) && generation(o) < newest)
        .filter(|o| replacement_of(p, o).is_none())
        .collect();
    if next.len() != resting.len() || resting.iter().any(|o| !o.filled_quantity.is_zero()) {
        return Vec::new();
    }
    let mut pairs = Vec::with_capacity(next.len());
    for n in next {
        let same: Vec<&Order> = resting
            .iter()
            .copied()
            .filter(|r| r.role == n.role)
            .collect();
        let [r] = same[..] else {
            return Vec::new();
        };
        pairs.push(InPlace {
            next: n,
            resting: r,
        });
    }
    pairs.sort_by_key(|pair| pair.next.role != OrderRole::StopLoss);
    pairs
}

/// Resting legs whose replacement the broker holds already (a replace that reached it, its
/// answer lost with a crash and learned since by look-up): each with the leg that replaced
/// it. Only a broker that replaces in place leaves both at the broker in our books.
pub(crate) fn superseded(p: &Position) -> Vec<InPlace<'_>> {
    p.orders
        .iter()
        .filter(|o| is_leg(o) && at_broker(o.status))
        .filter_map(|old| {
            let next = replacement_of(p, old)?;
            Some(InPlace { next, resting: old })
        })
        .collect()
}

/// The newer leg of `old`'s role, stored to replace a resting structure, that the broker
/// holds (it has a broker id).
fn replacement_of<'a>(p: &'a Position, old: &Order) -> Option<&'a Order> {
    p.orders.iter().find(|o| {
        o.role == old.role
            && generation(o) > generation(old)
            && o.trigger_status == Some(OrderStatus::Canceled)
            && o.broker_order_id.is_some()
    })
}

/// The answer recorded for a leg the broker replaced: canceled, saying by which.
fn replaced(old: &Order, by: &Order, at: chrono::DateTime<chrono::Utc>) -> BrokerOrder {
    BrokerOrder {
        broker_order_id: old.broker_order_id.clone(),
        client_order_id: old.client_order_id.clone(),
        status: OrderStatus::Canceled,
        filled_quantity: old.filled_quantity,
        avg_fill_price: old.avg_fill_price,
        reason: Some(format!("replaced by {}", by.client_order_id)),
        updated_at: at,
        symbol: None,
        side: None,
        quantity: None,
    }
}

/// What [`TradeManager::replace_resting`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Replaced {
    /// Legs now at the broker in place of old ones.
    pub placed: usize,
    /// Old legs recorded replaced (canceled).
    pub ended: usize,
}

impl TradeManager {
    /// The refresh step of a broker that replaces in place: records the legs a lost answer
    /// left resting in our books ([`superseded`]), claims the next structures' legs and
    /// replaces the resting legs with them ([`in_place`]). Nothing for other brokers.
    pub(super) async fn replace_resting(
        &self,
        broker: &dyn Broker,
        positions: &mut [Position],
        guard: Option<&ProcessingGuard>,
    ) -> Result<Replaced, EngineError> {
        let mut done = Replaced::default();
        if !broker.can_replace_legs() {
            return Ok(done);
        }
        let now = self.clock.now();
        let gone: Vec<(i64, BrokerOrder)> = positions
            .iter()
            .flat_map(superseded)
            .map(|pair| (pair.resting.id, replaced(pair.resting, pair.next, now)))
            .collect();
        if !gone.is_empty() {
            let updated = self.store.apply_broker_orders(&gone).await?;
            done.ended += updated.len();
            merge(positions, &updated);
        }
        self.claim_next_legs(positions).await?;
        let pairs: Vec<(Order, Order)> = positions
            .iter()
            .flat_map(in_place)
            .filter(|pair| pair.next.status == OrderStatus::Submitting)
            .map(|pair| (pair.next.clone(), pair.resting.clone()))
            .collect();
        for (next, resting) in pairs {
            if let Some(g) = guard {
                g.ensure_held()?;
            }
            let updated = self.replace_leg(broker, &next, &resting).await?;
            if updated
                .iter()
                .any(|o| o.id == next.id && o.broker_order_id.is_some())
            {
                done.placed += 1;
                done.ended += 1;
            }
            merge(positions, &updated);
        }
        Ok(done)
    }

    /// Claims (`waiting_trigger` → `submitting`, for the open quantity) the next legs that
    /// are to replace resting ones, before any replace is sent.
    async fn claim_next_legs(&self, positions: &mut [Position]) -> Result<(), EngineError> {
        let claimed: Vec<(i64, Decimal)> = positions
            .iter()
            .flat_map(|p| {
                let open = open_quantity(p);
                in_place(p)
                    .into_iter()
                    .filter(|pair| pair.next.status == OrderStatus::WaitingTrigger)
                    .map(move |pair| (pair.next.id, open))
            })
            .collect();
        if claimed.is_empty() {
            return Ok(());
        }
        let write = LifecycleWrite {
            claimed,
            at: self.clock.now(),
            ..LifecycleWrite::default()
        };
        let written = self.store.write_lifecycle(&write).await?;
        merge(positions, &written.claimed);
        Ok(())
    }

    /// Replaces `resting` with the stored, claimed `next` at the broker and records both:
    /// `next` with the broker's answer, `resting` canceled (replaced). A refusal is recorded
    /// on `next` (the resting leg still protects); no answer leaves `next` `submitting`, to
    /// be replaced again by the next refresh. Returns the orders updated.
    pub(super) async fn replace_leg(
        &self,
        broker: &dyn Broker,
        next: &Order,
        resting: &Order,
    ) -> Result<Vec<Order>, EngineError> {
        let request = OrderRequest::for_order(next);
        let answers = match broker
            .replace_order(&resting.client_order_id, &request)
            .await
        {
            Ok(a) if a.mismatch(next).is_none() => {
                // The broker has the replacement; our books do not yet.
                fault::point("after_leg_replaced");
                let now = self.clock.now();
                vec![(next.id, a), (resting.id, replaced(resting, next, now))]
            }
            Ok(a) => {
                tracing::warn!(
                    order = next.id,
                    "replace of {} answered for another order ({}): left submitting",
                    resting.client_order_id,
                    a.client_order_id
                );
                return Ok(Vec::new());
            }
            Err(BrokerError::Rejected(reason)) => {
                tracing::warn!(
                    order = next.id,
                    "broker refused to replace {} with {}: {reason}",
                    resting.client_order_id,
                    next.client_order_id
                );
                vec![(next.id, self.refusal(next, OrderStatus::Rejected, reason))]
            }
            Err(e) => {
                tracing::warn!(
                    order = next.id,
                    "no answer to the replace of {}: {e}; {} left submitting",
                    resting.client_order_id,
                    next.client_order_id
                );
                return Ok(Vec::new());
            }
        };
        Ok(self.store.apply_broker_orders(&answers).await?)
    }

    /// The resting leg that `order` (a next leg left `submitting`, which the broker does
    /// not have) is to replace in place, when its broker replaces legs: settling it must
    /// replace, never place a second structure beside the resting one.
    pub(super) async fn resting_to_replace(
        &self,
        broker: &dyn Broker,
        order: &Order,
    ) -> Result<Option<Order>, EngineError> {
        if !broker.can_replace_legs() || !is_next_leg(order) {
            return Ok(None);
        }
        let p = self.position_of(order.transaction_id).await?;
        Ok(in_place(&p)
            .into_iter()
            .find(|pair| pair.next.id == order.id)
            .map(|pair| pair.resting.clone()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use rust_decimal_macros::dec;
    use tradewarden_domain::{OrderType, Side, Transaction};

    use super::*;

    fn leg(id: i64, role: OrderRole, generation: u32, status: OrderStatus) -> Order {
        let tag = if role == OrderRole::StopLoss {
            "sl"
        } else {
            "tp"
        };
        Order {
            id,
            transaction_id: 1,
            expert_id: 1,
            account: "a".into(),
            symbol: "AAPL".into(),
            side: Side::Sell,
            role,
            order_type: OrderType::Limit,
            quantity: dec!(10),
            filled_quantity: dec!(0),
            limit_price: None,
            stop_price: None,
            avg_fill_price: None,
            status,
            client_order_id: format!("tw-x-1-{tag}-{generation}"),
            broker_order_id: at_broker(status).then(|| format!("b{id}")),
            parent_order_id: None,
            trigger_status: (generation > 1).then_some(OrderStatus::Canceled),
            recommendation_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn position(status: TransactionStatus, orders: Vec<Order>) -> Position {
        Position {
            transaction: Transaction {
                id: 1,
                expert_id: 1,
                account: "a".into(),
                symbol: "AAPL".into(),
                side: Side::Buy,
                quantity: dec!(10),
                status,
                open_price: Some(dec!(100)),
                close_price: None,
                take_profit: None,
                stop_loss: None,
                opened_at: None,
                closed_at: None,
                close_reason: None,
                created_at: DateTime::<Utc>::UNIX_EPOCH,
            },
            orders,
        }
    }

    use OrderRole::{StopLoss as Sl, TakeProfit as Tp};
    use OrderStatus::{Accepted, Submitting, WaitingTrigger};

    #[test]
    fn the_next_structure_replaces_the_resting_one_leg_for_leg_stop_first() {
        // Catches: a replace paired across roles, a structure that gains a leg replaced
        // in place (its new leg would never be placed), a closing position's legs moved,
        // or the take profit replaced before the stop.
        let resting = vec![leg(1, Tp, 1, Accepted), leg(2, Sl, 1, Accepted)];
        let next = vec![leg(3, Tp, 2, WaitingTrigger), leg(4, Sl, 2, Submitting)];
        let all: Vec<Order> = resting.iter().chain(&next).cloned().collect();
        let p = position(TransactionStatus::Opened, all.clone());
        let pairs: Vec<(i64, i64)> = in_place(&p)
            .iter()
            .map(|x| (x.next.id, x.resting.id))
            .collect();
        assert_eq!(pairs, vec![(4, 2), (3, 1)]);

        let only_tp = vec![leg(1, Tp, 1, Accepted), next[0].clone(), next[1].clone()];
        let filled = {
            let mut o = all.clone();
            o[1].filled_quantity = dec!(1);
            o
        };
        let cases = [
            position(TransactionStatus::Opened, only_tp),
            position(TransactionStatus::Closing, all.clone()),
            position(TransactionStatus::Opened, filled),
            position(TransactionStatus::Opened, resting.clone()),
        ];
        for p in cases {
            assert!(in_place(&p).is_empty(), "{:?}", p.orders);
        }
    }

    #[test]
    fn a_resting_leg_is_superseded_once_its_replacement_is_at_the_broker() {
        // Catches: an old leg left live in our books after a replace whose answer was lost
        // (two stops counted), or one ended while its replacement is not at the broker.
        let mut adopted = leg(4, Sl, 2, Accepted);
        adopted.broker_order_id = Some("b9".into());
        let p = position(
            TransactionStatus::Opened,
            vec![
                leg(1, Tp, 1, Accepted),
                leg(2, Sl, 1, Accepted),
                leg(3, Tp, 2, Submitting),
                adopted,
            ],
        );
        let ended: Vec<(i64, i64)> = superseded(&p)
            .iter()
            .map(|x| (x.resting.id, x.next.id))
            .collect();
        assert_eq!(ended, vec![(2, 4)]);
    }
}
