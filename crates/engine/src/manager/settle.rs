//! Settling orders left `submitting` (B3): the broker decides whether an order exists, so
//! an order it may already have is never sent again.

use tradewarden_domain::{Order, OrderStatus};

use super::TradeManager;
use crate::error::EngineError;
use crate::locks::ProcessingGuard;
use crate::metrics as m;
use crate::ports::{Broker, BrokerError, BrokerOrder, OrderRequest};
use crate::report::{Settled, SettledOrder};

impl TradeManager {
    /// Settles one order left `submitting`: adopts the broker's order when the broker has
    /// its client_order_id, submits it when the broker has never seen it, leaves it when the
    /// broker cannot be asked.
    pub(super) async fn settle(
        &self,
        broker: &dyn Broker,
        guard: &ProcessingGuard,
        order: Order,
    ) -> Result<SettledOrder, EngineError> {
        guard.ensure_held()?;
        let (order, how) = match broker.order_by_client_id(&order.client_order_id).await {
            Ok(Some(answer)) => (
                self.store.apply_broker_order(order.id, &answer).await?,
                Settled::Adopted,
            ),
            Ok(None) => {
                guard.ensure_held()?;
                match self.send(broker, &order).await {
                    Some(answer) => (
                        self.store.apply_broker_order(order.id, &answer).await?,
                        Settled::Submitted,
                    ),
                    None => (order, Settled::Unreachable),
                }
            }
            Err(e) => {
                tracing::warn!(
                    order = order.id,
                    "cannot settle {}: {e}",
                    order.client_order_id
                );
                (order, Settled::Unreachable)
            }
        };
        if how != Settled::Unreachable {
            metrics::counter!(m::ORDERS_SETTLED, "how" => how.as_str()).increment(1);
            tracing::info!(
                order = order.id,
                client_order_id = %order.client_order_id,
                "settled in-flight order: {}, now {}",
                how.as_str(),
                order.status
            );
        }
        Ok(SettledOrder::of(order, how))
    }

    /// Sends one stored order once and returns the answer to record (see
    /// [`TradeManager::answer_of`]).
    async fn send(&self, broker: &dyn Broker, order: &Order) -> Option<BrokerOrder> {
        let result = broker.submit(&OrderRequest::for_order(order)).await;
        self.answer_of(broker, order, result).await
    }

    /// Turns a broker's reply to a submission into the answer to record: a refusal of a
    /// client_order_id it already has becomes a look-up of that order; a rejection is
    /// recorded as such; no answer (`None`) leaves the order `submitting` for settlement.
    pub(super) async fn answer_of(
        &self,
        broker: &dyn Broker,
        order: &Order,
        result: Result<BrokerOrder, BrokerError>,
    ) -> Option<BrokerOrder> {
        let answer = match result {
            Err(BrokerError::DuplicateClientOrderId(_)) => {
                match broker.order_by_client_id(&order.client_order_id).await {
                    Ok(Some(found)) => Ok(found),
                    Ok(None) => Err(BrokerError::Unavailable(
                        "broker reports the id used but has no such order".into(),
                    )),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        let result = match &answer {
            Ok(_) => "accepted",
            Err(BrokerError::Rejected(_)) => "rejected",
            Err(_) => "unavailable",
        };
        metrics::counter!(m::ORDERS_SUBMITTED, "result" => result).increment(1);
        match answer {
            Ok(a) => Some(a),
            Err(BrokerError::Rejected(reason)) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "broker rejected order: {reason}");
                Some(self.rejection(order, reason))
            }
            Err(e) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "no broker answer: {e}; left submitting");
                None
            }
        }
    }

    /// The answer recorded for an order the broker refused.
    fn rejection(&self, order: &Order, reason: String) -> BrokerOrder {
        BrokerOrder {
            broker_order_id: None,
            client_order_id: order.client_order_id.clone(),
            status: OrderStatus::Rejected,
            filled_quantity: Default::default(),
            avg_fill_price: None,
            reason: Some(reason),
            updated_at: self.clock.now(),
        }
    }
}
