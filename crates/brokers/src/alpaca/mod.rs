//! The Alpaca broker: Alpaca's trading API v2 behind the engine's [`Broker`] trait.
//!
//! - [`client`]: the HTTP client (rate limit, retries, exactly-once submission);
//! - [`wire`]: the request and response bodies as Alpaca documents them;
//! - [`retry`]: which failures are retried, and the backoff;
//! - [`limiter`]: the per-account token bucket (200 requests a minute);
//! - [`secret`]: API keys that never print;
//! - `fake` (feature `fake`): a local Alpaca for tests.
//!
//! Quotes come from the market data API's latest trade (`data_url`); a real broker has its own
//! prices, so it takes none from tradewarden ([`Broker::accepts_quotes`] is `None`).
//!
//! Exit legs ([`oco`]): a take-profit and a stop-loss leg sent together in one batch go as
//! one native `oco` order, so Alpaca cancels one when the other fills; a leg sent alone goes
//! as a simple order. Exit legs are `gtc` (a stop must outlive the day), entries and closes
//! `day`. A moved exit structure replaces its resting legs in place
//! ([`Broker::replace_order`], `PATCH /v2/orders/{id}`), the stop first, so the position
//! always has a working stop. An entry with exits goes as a `bracket` (both legs) or `oto`
//! (one) order, `gtc`, its legs waiting at Alpaca for its fill; a fractional quantity, which
//! Alpaca refuses in advanced orders, goes alone and its legs follow the fill as an `oco`.

pub mod client;
#[cfg(feature = "fake")]
pub mod fake;
pub mod limiter;
pub mod oco;
pub mod retry;
pub mod secret;
pub mod wire;

use std::collections::HashMap;

use async_trait::async_trait;
use rust_decimal::Decimal;
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition, HeldPosition, Holdings};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, OrderRequest};

pub use client::{AlpacaClient, ClientSettings};
pub use limiter::RateLimit;
pub use retry::RetryPolicy;
pub use secret::Secret;

/// Alpaca's paper trading API.
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Alpaca's live trading API: real money (a configuration must say `live = true`).
pub const LIVE_URL: &str = "https://api.alpaca.markets";
/// Alpaca's market data API.
pub const DATA_URL: &str = "https://data.alpaca.markets";

/// One Alpaca account as a [`Broker`].
#[derive(Debug)]
pub struct AlpacaBroker {
    client: AlpacaClient,
    /// `[brokers] extended_hours`: limit orders may fill outside regular hours.
    extended_hours: bool,
}

impl AlpacaBroker {
    /// The broker of one account.
    pub fn new(settings: ClientSettings, extended_hours: bool) -> Result<Self, BrokerError> {
        Ok(AlpacaBroker {
            client: AlpacaClient::new(settings)?,
            extended_hours,
        })
    }

    /// The account's client, for what the trait does not cover (clock, assets, replace).
    pub fn client(&self) -> &AlpacaClient {
        &self.client
    }

    /// The body of `POST /v2/orders` for a request: a `day` order (outside regular hours
    /// Alpaca queues it for the next session); a stop with a limit price is `stop_limit`.
    /// Alpaca takes `extended_hours` only on limit orders, so only they carry it.
    pub fn new_order(&self, o: &OrderRequest) -> wire::NewOrder {
        let order_type = match (o.order_type, o.limit_price) {
            (OrderType::Market, _) => "market",
            (OrderType::Limit, _) => "limit",
            (OrderType::Stop, None) => "stop",
            (OrderType::Stop, Some(_)) => "stop_limit",
        };
        let (order_class, take_profit, stop_loss) = match oco::attached(o) {
            Some((class, tp, sl)) => (Some(class), tp, sl),
            None => (None, None, None),
        };
        wire::NewOrder {
            symbol: o.symbol.clone(),
            qty: o.quantity,
            side: side(o.side),
            order_type,
            // An exit leg must outlive the day it was placed on; legs attached to an entry
            // take the entry's time in force.
            time_in_force: if o.oco_group.is_some() || order_class.is_some() {
                "gtc"
            } else {
                "day"
            },
            limit_price: o
                .limit_price
                .filter(|_| order_type != "market" && order_type != "stop"),
            stop_price: o.stop_price.filter(|_| order_type.starts_with("stop")),
            client_order_id: o.client_order_id.clone(),
            extended_hours: self.extended_hours && order_type == "limit" && order_class.is_none(),
            order_class,
            take_profit,
            stop_loss,
        }
    }

    /// Sends a take profit and its stop loss as one `oco` order; their two answers.
    async fn submit_oco(
        &self,
        tp: &OrderRequest,
        sl: &OrderRequest,
    ) -> (
        Result<BrokerOrder, BrokerError>,
        Result<BrokerOrder, BrokerError>,
    ) {
        let parent = match self
            .client
            .submit_order(&oco::order(tp, sl, side(tp.side)))
            .await
        {
            Ok(p) => p,
            Err(e) => return (Err(e.clone()), Err(e)),
        };
        tradewarden_engine::fault::point("after_broker_accepted");
        let stop = oco::stop_leg(&parent)
            .map(|l| broker_order(&l))
            .ok_or_else(|| {
                // Left in flight: the next refresh finds it through its parent.
                BrokerError::Unavailable(format!(
                    "Alpaca returned the OCO order {} without its stop leg",
                    parent.client_order_id
                ))
            });
        (Ok(broker_order(&parent)), stop)
    }

    /// An order by our client_order_id, as Alpaca holds it; a leg Alpaca holds under an id
    /// of its own (an OCO's stop, an entry's attached legs) is found through the order that
    /// carries it ([`oco::holders_of`]), under our id.
    async fn find(&self, client_order_id: &str) -> Result<Option<wire::Order>, BrokerError> {
        if let Some(o) = self.client.order_by_client_id(client_order_id).await? {
            return Ok(Some(o));
        }
        for holder in oco::holders_of(client_order_id) {
            let Some(holder) = self.client.order_by_client_id(&holder).await? else {
                continue;
            };
            let leg = oco::legs_under_our_ids(&holder)
                .into_iter()
                .find(|l| l.client_order_id == client_order_id);
            if leg.is_some() {
                return Ok(leg);
            }
        }
        Ok(None)
    }

    /// The legs of `orders` that Alpaca holds already, attached to their entry (a bracket
    /// or oto), found by our ids: sending them adopts them, never places a second structure.
    async fn attached_legs(
        &self,
        orders: &[OrderRequest],
    ) -> Result<HashMap<String, wire::Order>, BrokerError> {
        let mut entries: Vec<String> = orders
            .iter()
            .filter(|o| o.oco_group.is_some())
            .filter_map(|o| oco::entry_of(&o.client_order_id))
            .collect();
        entries.sort();
        entries.dedup();
        let mut legs = HashMap::new();
        for entry in entries {
            if let Some(e) = self.client.order_by_client_id(&entry).await? {
                for leg in oco::legs_under_our_ids(&e) {
                    legs.insert(leg.client_order_id.clone(), leg);
                }
            }
        }
        Ok(legs)
    }
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// An Alpaca status as ours, with the reason an order ended when it is not the plain one.
/// Alpaca's working states (`new`, `accepted`, `pending_new`, `held`, `pending_cancel`, …)
/// are `accepted`, or `partially_filled` once something filled; an unknown status is taken
/// as still working, so a refresh asks again rather than closing the books on it.
pub fn status(o: &wire::Order) -> (OrderStatus, Option<String>) {
    let working = if o.filled_qty > Decimal::ZERO {
        OrderStatus::PartiallyFilled
    } else {
        OrderStatus::Accepted
    };
    match o.status.as_str() {
        "filled" => (OrderStatus::Filled, None),
        "partially_filled" => (OrderStatus::PartiallyFilled, None),
        "canceled" => (OrderStatus::Canceled, None),
        "expired" => (OrderStatus::Expired, None),
        "rejected" => (OrderStatus::Rejected, Some("rejected by Alpaca".into())),
        "replaced" => (
            OrderStatus::Canceled,
            Some(format!(
                "replaced by Alpaca order {}",
                o.replaced_by.as_deref().unwrap_or("?")
            )),
        ),
        "done_for_day" => (working, Some("done for the day at Alpaca".into())),
        "suspended" | "stopped" => (working, Some(format!("{} at Alpaca", o.status))),
        // Alpaca's `accepted`: received, not yet routed — an order sent outside regular
        // hours waits so for the session (a `day` order is queued, as Alpaca does).
        "accepted" => (
            working,
            Some("queued by Alpaca until the market opens".into()),
        ),
        "new"
        | "pending_new"
        | "accepted_for_bidding"
        | "held"
        | "calculated"
        | "pending_cancel"
        | "pending_replace" => (working, None),
        other => {
            tracing::warn!(order = %o.id, "unknown Alpaca order status {other:?}; taken as working");
            (working, Some(format!("Alpaca status {other}")))
        }
    }
}

/// An Alpaca order as the engine sees it.
pub fn broker_order(o: &wire::Order) -> BrokerOrder {
    let (status, reason) = status(o);
    BrokerOrder {
        broker_order_id: Some(o.id.clone()),
        client_order_id: o.client_order_id.clone(),
        status,
        filled_quantity: o.filled_qty,
        avg_fill_price: o.filled_avg_price,
        reason,
        updated_at: o.updated_at.unwrap_or(o.created_at),
        symbol: Some(o.symbol.clone()),
        side: match o.side.as_str() {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        },
        quantity: o.qty,
    }
}

/// Whether Alpaca is done with the order (no cancel needed or possible).
fn has_ended(o: &wire::Order) -> bool {
    matches!(
        o.status.as_str(),
        "filled" | "canceled" | "expired" | "rejected" | "replaced"
    )
}

/// A position's quantity signed by its side (a short is negative, however Alpaca writes it).
fn signed_quantity(p: &wire::Position) -> Decimal {
    if p.side == "short" {
        -p.qty.abs()
    } else {
        p.qty.abs()
    }
}

/// Every order in `orders` and their legs, by client_order_id; legs Alpaca holds under ids
/// of its own also under ours ([`oco::legs_under_our_ids`]).
fn by_client_id(orders: Vec<wire::Order>) -> HashMap<String, wire::Order> {
    let mut out = HashMap::new();
    let mut stack = orders;
    while let Some(mut o) = stack.pop() {
        for leg in oco::legs_under_our_ids(&o) {
            out.insert(leg.client_order_id.clone(), leg);
        }
        stack.extend(o.legs.take().unwrap_or_default());
        out.insert(o.client_order_id.clone(), o);
    }
    out
}

#[async_trait]
impl Broker for AlpacaBroker {
    fn kind(&self) -> &'static str {
        "alpaca"
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let a = self.client.account().await?;
        Ok(AccountSnapshot {
            cash: a.cash,
            balance: a.equity,
        })
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        self.client.latest_trades(symbols).await
    }

    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        let o = self.client.submit_order(&self.new_order(order)).await?;
        // Alpaca has the order; its answer has not reached the caller yet.
        tradewarden_engine::fault::point("after_broker_accepted");
        Ok(broker_order(&o))
    }

    /// One answer per order: legs Alpaca holds already, attached to their entry, are
    /// adopted ([`AlpacaBroker::attached_legs`]); OCO pairs of the rest go as one order each
    /// ([`oco::plan`]), the others one by one.
    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        let mut answers: Vec<Option<Result<BrokerOrder, BrokerError>>> = vec![None; orders.len()];
        let attached = match self.attached_legs(orders).await {
            Ok(a) => a,
            // Unknown whether they are attached: nothing is sent, the refresh asks again.
            Err(e) => return orders.iter().map(|_| Err(e.clone())).collect(),
        };
        for (i, o) in orders.iter().enumerate() {
            if let Some(leg) = attached.get(&o.client_order_id) {
                answers[i] = Some(Ok(broker_order(leg)));
            }
        }
        let rest: Vec<usize> = (0..orders.len())
            .filter(|i| answers[*i].is_none())
            .collect();
        let unsent: Vec<OrderRequest> = rest.iter().map(|i| orders[*i].clone()).collect();
        for send in oco::plan(&unsent) {
            let send = match send {
                oco::Send::Single(i) => oco::Send::Single(rest[i]),
                oco::Send::Oco {
                    take_profit,
                    stop_loss,
                } => oco::Send::Oco {
                    take_profit: rest[take_profit],
                    stop_loss: rest[stop_loss],
                },
            };
            match send {
                oco::Send::Single(i) => answers[i] = Some(self.submit(&orders[i]).await),
                oco::Send::Oco {
                    take_profit,
                    stop_loss,
                } => {
                    let (tp, sl) = self
                        .submit_oco(&orders[take_profit], &orders[stop_loss])
                        .await;
                    answers[take_profit] = Some(tp);
                    answers[stop_loss] = Some(sl);
                }
            }
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(BrokerError::Unavailable("no answer for an order".into())))
            })
            .collect()
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        Ok(self.find(client_order_id).await?.as_ref().map(broker_order))
    }

    /// One `GET /v2/orders?status=all` for all of them; an id it does not hold is looked up
    /// alone only when the list was full (the order may be older than the newest 500).
    async fn orders_by_client_ids(
        &self,
        client_order_ids: &[String],
    ) -> Vec<Result<Option<BrokerOrder>, BrokerError>> {
        if client_order_ids.is_empty() {
            return Vec::new();
        }
        let listed = match self.client.list_orders().await {
            Ok(l) => l,
            Err(e) => return client_order_ids.iter().map(|_| Err(e.clone())).collect(),
        };
        let complete = listed.len() < client::LIST_LIMIT;
        let mut found = by_client_id(listed);
        let mut out = Vec::with_capacity(client_order_ids.len());
        for id in client_order_ids {
            out.push(match found.remove(id) {
                Some(o) => Ok(Some(broker_order(&o))),
                None if complete => Ok(None),
                None => self.order_by_client_id(id).await,
            });
        }
        out
    }

    async fn cancel(&self, client_order_id: &str) -> Result<BrokerOrder, BrokerError> {
        let Some(o) = self.find(client_order_id).await? else {
            return Err(BrokerError::UnknownOrder(client_order_id.to_string()));
        };
        if has_ended(&o) {
            return Ok(broker_order(&o));
        }
        self.client.cancel_order(&o.id).await?;
        // Alpaca cancels asynchronously: the state read back may still be pending_cancel
        // (ours: accepted), which a later refresh settles.
        let after = self.client.order(&o.id).await?;
        Ok(broker_order(&wire::Order {
            client_order_id: client_order_id.to_string(),
            ..after
        }))
    }

    /// An entry with exits goes as a `bracket` or `oto` order (whole quantities only).
    fn attaches_exits(&self) -> bool {
        true
    }

    /// Alpaca replaces an order with `PATCH /v2/orders/{id}`; a replaced leg keeps its place
    /// in its `oco` (or bracket) order.
    fn can_replace_legs(&self) -> bool {
        true
    }

    /// `PATCH /v2/orders/{id}` of the resting order, with `with`'s quantity, prices and
    /// client_order_id; the answer is Alpaca's new order (the old one ends `replaced`). An
    /// order that can no longer be replaced may have been by an earlier attempt whose answer
    /// was lost: the replacement is looked up by its client_order_id before anything is said.
    async fn replace_order(
        &self,
        resting: &str,
        with: &OrderRequest,
    ) -> Result<BrokerOrder, BrokerError> {
        let change = wire::ReplaceOrder {
            qty: Some(with.quantity),
            limit_price: with.limit_price,
            stop_price: with.stop_price,
            time_in_force: None,
            client_order_id: Some(with.client_order_id.clone()),
        };
        let result = match self.find(resting).await? {
            None => Err(BrokerError::UnknownOrder(resting.to_string())),
            Some(old) if has_ended(&old) => Err(BrokerError::Rejected(format!(
                "order {resting} is {} at Alpaca: it cannot be replaced",
                old.status
            ))),
            Some(old) => self.client.replace_order(&old.id, &change).await,
        };
        match result {
            Ok(o) => Ok(broker_order(&o)),
            Err(e @ (BrokerError::Rejected(_) | BrokerError::UnknownOrder(_))) => {
                match self.find(&with.client_order_id).await? {
                    Some(o) => Ok(broker_order(&o)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        let held = self.client.positions().await?;
        Ok(held
            .iter()
            .map(|p| BrokerPosition {
                symbol: p.symbol.clone(),
                quantity: signed_quantity(p),
            })
            .filter(|p| !p.quantity.is_zero())
            .collect())
    }

    /// Cash from the account, and each position with Alpaca's average entry and current
    /// prices: two calls.
    async fn holdings(&self) -> Result<Holdings, BrokerError> {
        let cash = self.client.account().await?.cash;
        let mut positions: Vec<HeldPosition> = self
            .client
            .positions()
            .await?
            .iter()
            .map(|p| HeldPosition {
                symbol: p.symbol.clone(),
                quantity: signed_quantity(p),
                avg_price: Some(p.avg_entry_price),
                last_price: p.current_price,
            })
            .filter(|p| !p.quantity.is_zero())
            .collect();
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        Ok(Holdings { cash, positions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn order(status: &str, filled: Decimal) -> wire::Order {
        wire::Order {
            id: "a1".into(),
            client_order_id: "tw-1".into(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: None,
            symbol: "AAPL".into(),
            qty: Some(dec!(10)),
            filled_qty: filled,
            filled_avg_price: None,
            order_class: String::new(),
            order_type: "market".into(),
            side: "buy".into(),
            time_in_force: "day".into(),
            limit_price: None,
            stop_price: None,
            status: status.into(),
            replaced_by: None,
            legs: None,
        }
    }

    #[test]
    fn alpaca_statuses_map_to_ours() {
        // Catches: a working order taken as ended (or the reverse), or a partial fill lost.
        use OrderStatus::*;
        let cases = [
            ("new", dec!(0), Accepted),
            ("accepted", dec!(0), Accepted),
            ("pending_new", dec!(0), Accepted),
            ("accepted_for_bidding", dec!(0), Accepted),
            ("held", dec!(0), Accepted),
            ("pending_cancel", dec!(0), Accepted),
            ("pending_cancel", dec!(3), PartiallyFilled),
            ("pending_replace", dec!(0), Accepted),
            ("done_for_day", dec!(2), PartiallyFilled),
            ("partially_filled", dec!(2), PartiallyFilled),
            ("filled", dec!(10), Filled),
            ("canceled", dec!(0), Canceled),
            ("canceled", dec!(4), Canceled),
            ("expired", dec!(0), Expired),
            ("rejected", dec!(0), Rejected),
            ("replaced", dec!(0), Canceled),
            ("something_new", dec!(0), Accepted),
        ];
        for (s, filled, want) in cases {
            assert_eq!(status(&order(s, filled)).0, want, "{s} {filled}");
        }
    }

    #[test]
    fn requests_become_alpaca_order_types() {
        let broker = AlpacaBroker::new(
            ClientSettings {
                account: "a".into(),
                base_url: "http://127.0.0.1:9".into(),
                data_url: "http://127.0.0.1:9".into(),
                key_id: Secret::new("k"),
                secret_key: Secret::new("s"),
                retry: RetryPolicy::new(0),
                request_timeout: std::time::Duration::from_secs(1),
                rate_limit: RateLimit::ALPACA,
            },
            true,
        )
        .unwrap();
        let request = |order_type, limit_price, stop_price| OrderRequest {
            client_order_id: "tw-1".into(),
            symbol: "AAPL".into(),
            side: Side::Sell,
            order_type,
            quantity: dec!(5),
            limit_price,
            stop_price,
            oco_group: None,
            attached_exits: None,
        };
        let cases = [
            (
                request(OrderType::Market, None, None),
                "market",
                None,
                None,
                false,
            ),
            (
                request(OrderType::Limit, Some(dec!(9)), None),
                "limit",
                Some(dec!(9)),
                None,
                true,
            ),
            (
                request(OrderType::Stop, None, Some(dec!(8))),
                "stop",
                None,
                Some(dec!(8)),
                false,
            ),
            (
                request(OrderType::Stop, Some(dec!(7.5)), Some(dec!(8))),
                "stop_limit",
                Some(dec!(7.5)),
                Some(dec!(8)),
                false,
            ),
        ];
        for (r, kind, limit, stop, extended) in cases {
            let o = broker.new_order(&r);
            assert_eq!(
                (
                    o.order_type,
                    o.limit_price,
                    o.stop_price,
                    o.extended_hours,
                    o.side,
                    o.time_in_force
                ),
                (kind, limit, stop, extended, "sell", "day"),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_short_position_is_negative_however_alpaca_writes_it() {
        let p = |qty, side: &str| wire::Position {
            symbol: "AAPL".into(),
            qty,
            side: side.into(),
            avg_entry_price: dec!(1),
            current_price: None,
            market_value: None,
        };
        assert_eq!(signed_quantity(&p(dec!(5), "long")), dec!(5));
        assert_eq!(signed_quantity(&p(dec!(-5), "short")), dec!(-5));
        assert_eq!(signed_quantity(&p(dec!(5), "short")), dec!(-5));
    }
}
