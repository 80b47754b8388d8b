//! Settling orders left `submitting` (B3): the broker decides whether an order exists, so
//! an order it may already have is never sent again; and an order it has under our
//! client_order_id is adopted only if it is ours (I4).

use tradewarden_domain::{Order, OrderStatus, Side};

use super::TradeManager;
use crate::error::EngineError;
use crate::locks::ProcessingGuard;
use crate::metrics as m;
use crate::ports::{Broker, BrokerError, BrokerOrder, Finding, OrderRequest};
use crate::report::{Settled, SettledOrder};

/// What the broker holds under an order's client_order_id.
pub(super) enum Found {
    /// Our order: its answer is to be recorded.
    Ours(BrokerOrder),
    /// Nothing: the broker never received it.
    Missing,
    /// Another order under the same id (another database gave it out): never adopted; a
    /// finding was recorded.
    Foreign,
    /// The broker could not be asked.
    Unreachable(BrokerError),
}

impl TradeManager {
    /// Settles one order left `submitting`: adopts the broker's order when the broker has
    /// it under its client_order_id (whatever its age); when the broker never got it, ends it
    /// if it is older than `max_intent_age_seconds`, else submits it; leaves it when the
    /// broker cannot be asked or has another order under that id.
    pub(super) async fn settle(
        &self,
        broker: &dyn Broker,
        guard: &ProcessingGuard,
        order: Order,
    ) -> Result<SettledOrder, EngineError> {
        guard.ensure_held()?;
        let (order, how) = match self.look_up(broker, &order).await? {
            Found::Ours(answer) => (
                self.store.apply_broker_order(order.id, &answer).await?,
                Settled::Adopted,
            ),
            Found::Missing | Found::Foreign if self.intent_age(&order).is_some() => {
                (self.expire(order).await?, Settled::Expired)
            }
            Found::Missing => self.submit_missing(broker, guard, order).await?,
            Found::Foreign => (order, Settled::Foreign),
            Found::Unreachable(e) => {
                tracing::warn!(
                    order = order.id,
                    "cannot settle {}: {e}",
                    order.client_order_id
                );
                (order, Settled::Unreachable)
            }
        };
        log_settled(&order, how);
        Ok(SettledOrder::of(order, how))
    }

    /// Sends an order the broker never got, once; a next exit leg that is to replace a
    /// resting one in place replaces it instead (never a second structure beside it).
    async fn submit_missing(
        &self,
        broker: &dyn Broker,
        guard: &ProcessingGuard,
        order: Order,
    ) -> Result<(Order, Settled), EngineError> {
        guard.ensure_held()?;
        if let Some(resting) = self.resting_to_replace(broker, &order).await? {
            let updated = self.replace_leg(broker, &order, &resting).await?;
            return Ok(match updated.into_iter().find(|o| o.id == order.id) {
                Some(o) => (o, Settled::Submitted),
                None => (order, Settled::Unreachable),
            });
        }
        Ok(match self.send(broker, &order).await? {
            Some(answer) => (
                self.store.apply_broker_order(order.id, &answer).await?,
                Settled::Submitted,
            ),
            None => (order, Settled::Unreachable),
        })
    }

    /// The age of an order intent when it is past `max_intent_age_seconds` (I4): such an
    /// intent is never sent.
    fn intent_age(&self, order: &Order) -> Option<chrono::Duration> {
        let age = self.clock.now() - order.created_at;
        let max = chrono::Duration::from_std(self.settings.max_intent_age).ok()?;
        (age > max).then_some(age)
    }

    /// Ends an intent too old to send: `error` through the status table (`submitting →
    /// error`: it never reached the broker), which fails its transaction and its outcome,
    /// both saying `intent_expired` with its age.
    async fn expire(&self, order: Order) -> Result<Order, EngineError> {
        let age = self.intent_age(&order).unwrap_or_default();
        let reason = format!(
            "intent_expired: {} s old, older than max_intent_age_seconds = {}",
            age.num_seconds(),
            self.settings.max_intent_age.as_secs()
        );
        tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "not sending order: {reason}");
        let answer = self.refusal(&order, OrderStatus::Error, reason);
        Ok(self.store.apply_broker_order(order.id, &answer).await?)
    }

    /// Looks `order` up at the broker by its client_order_id. An order found there for
    /// another symbol, side or quantity is not ours: it is reported (WARNING and a
    /// reconciliation finding), never adopted.
    pub(super) async fn look_up(
        &self,
        broker: &dyn Broker,
        order: &Order,
    ) -> Result<Found, EngineError> {
        let found = match broker.order_by_client_id(&order.client_order_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(Found::Missing),
            Err(e) => return Ok(Found::Unreachable(e)),
        };
        let Some(why) = found.mismatch(order) else {
            return Ok(Found::Ours(found));
        };
        let detail = format!(
            "client_order_id {} names another order at the broker ({why}): not adopted, ours left submitting",
            order.client_order_id
        );
        tracing::warn!("RECONCILE: account {}: {detail}", order.account);
        metrics::counter!(m::RECONCILE_FINDINGS).increment(1);
        let finding = Finding {
            account: order.account.clone(),
            symbol: order.symbol.clone(),
            broker_quantity: signed(found.side, found.quantity.unwrap_or_default()),
            recorded_quantity: signed(Some(order.side), order.quantity),
            detail,
            found_at: self.clock.now(),
        };
        self.store.record_findings(&[finding]).await?;
        Ok(Found::Foreign)
    }

    /// Sends one stored order once and returns the answer to record (see
    /// [`TradeManager::answer_of`]).
    async fn send(
        &self,
        broker: &dyn Broker,
        order: &Order,
    ) -> Result<Option<BrokerOrder>, EngineError> {
        let result = broker.submit(&OrderRequest::for_order(order)).await;
        self.answer_of(broker, order, result).await
    }

    /// Turns a broker's reply to a submission into the answer to record: a refusal of a
    /// client_order_id it already has becomes a look-up of that order (adopted only if it is
    /// ours); a rejection is recorded as such; no answer (`None`) leaves the order
    /// `submitting` for settlement.
    pub(super) async fn answer_of(
        &self,
        broker: &dyn Broker,
        order: &Order,
        result: Result<BrokerOrder, BrokerError>,
    ) -> Result<Option<BrokerOrder>, EngineError> {
        let answer = match result {
            Err(BrokerError::DuplicateClientOrderId(_)) => {
                match self.look_up(broker, order).await? {
                    Found::Ours(found) => Ok(found),
                    Found::Missing => Err(BrokerError::Unavailable(
                        "broker reports the id used but has no such order".into(),
                    )),
                    Found::Foreign => Err(BrokerError::Unavailable(
                        "broker has another order under this client_order_id".into(),
                    )),
                    Found::Unreachable(e) => Err(e),
                }
            }
            other => other,
        };
        let result = match &answer {
            Ok(_) => "accepted",
            Err(BrokerError::Rejected(_)) => "rejected",
            Err(_) => "unavailable",
        };
        metrics::counter!(m::ORDERS_SUBMITTED, "broker" => broker.kind(), "result" => result)
            .increment(1);
        Ok(match answer {
            Ok(a) => Some(a),
            Err(BrokerError::Rejected(reason)) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "broker rejected order: {reason}");
                Some(self.refusal(order, OrderStatus::Rejected, reason))
            }
            Err(e) => {
                tracing::warn!(order = order.id, client_order_id = %order.client_order_id, "no broker answer: {e}; left submitting");
                None
            }
        })
    }

    /// The answer recorded for an order the broker refused (`rejected`) or that was never
    /// sent (`error`).
    pub(super) fn refusal(
        &self,
        order: &Order,
        status: OrderStatus,
        reason: String,
    ) -> BrokerOrder {
        BrokerOrder {
            broker_order_id: None,
            client_order_id: order.client_order_id.clone(),
            status,
            filled_quantity: Default::default(),
            avg_fill_price: None,
            reason: Some(reason),
            updated_at: self.clock.now(),
            symbol: None,
            side: None,
            quantity: None,
        }
    }
}

/// Logs and counts how an order was settled (an unreachable broker was logged already).
fn log_settled(order: &Order, how: Settled) {
    if how == Settled::Unreachable {
        return;
    }
    metrics::counter!(m::ORDERS_SETTLED, "how" => how.as_str()).increment(1);
    tracing::info!(
        order = order.id,
        client_order_id = %order.client_order_id,
        "settled in-flight order: {}, now {}",
        how.as_str(),
        order.status
    );
}

/// A quantity signed by its side (negative is a sale).
fn signed(side: Option<Side>, quantity: rust_decimal::Decimal) -> rust_decimal::Decimal {
    if side == Some(Side::Sell) {
        -quantity
    } else {
        quantity
    }
}
