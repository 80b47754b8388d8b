//! A broker account as the engine sees it: submit, cancel, look up, positions, money; and
//! the optional capability of accepting quotes (the paper broker has it, real brokers do not).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::{Order, OrderRole, OrderStatus, OrderType, Side};

/// A broker's view of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerOrder {
    /// The broker's own id, when it gave one (a refusal may come without).
    pub broker_order_id: Option<String>,
    pub client_order_id: String,
    pub status: OrderStatus,
    pub filled_quantity: Decimal,
    pub avg_fill_price: Option<Decimal>,
    /// Why the broker refused or ended the order, if it did.
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The symbol, as the broker reports it (`None` when a broker does not say): an order
    /// found by client_order_id is adopted only if symbol, side and quantity match ours.
    pub symbol: Option<String>,
    /// The side, as the broker reports it.
    pub side: Option<Side>,
    /// The ordered quantity, as the broker reports it.
    pub quantity: Option<Decimal>,
}

impl BrokerOrder {
    /// How this broker order differs from `ours` in symbol, side or quantity, as far as the
    /// broker reports them: `Some` means it is another order under the same client_order_id
    /// (another database gave the id out), never ours to adopt.
    pub fn mismatch(&self, ours: &Order) -> Option<String> {
        let symbol = self.symbol.as_ref().is_some_and(|s| *s != ours.symbol);
        let side = self.side.is_some_and(|s| s != ours.side);
        let quantity = self.quantity.is_some_and(|q| q != ours.quantity);
        if !(symbol || side || quantity) {
            return None;
        }
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "?".into());
        Some(format!(
            "the broker's order is {} {} {}, ours is {} {} {}",
            or_unknown(self.side.map(|s| s.to_string())),
            or_unknown(self.quantity.map(|q| q.normalize().to_string())),
            or_unknown(self.symbol.clone()),
            ours.side,
            ours.quantity.normalize(),
            ours.symbol
        ))
    }
}

/// An order as a broker receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub client_order_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// Orders sharing a group are one-cancels-other at the broker: when one fills, the
    /// broker cancels the others. All orders of a group are of one symbol.
    pub oco_group: Option<String>,
    /// An entry's exit legs, for a broker that places them with the entry (Alpaca's
    /// `bracket` / `oto`); others ignore them. Our store holds them as legs waiting for the
    /// entry's fill. A broker that attached them holds them under the entry: asked for a
    /// leg by our client_order_id (its first generation) it answers with the attached leg,
    /// and sent that leg once the entry filled, it adopts it instead of placing another.
    pub attached_exits: Option<AttachedExits>,
}

/// The prices of an entry's take-profit and stop-loss legs (one of them at least), sent
/// with the entry to a broker that attaches them (Alpaca's `bracket` or `oto` class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachedExits {
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
}

impl AttachedExits {
    /// The exits of a position at these prices; `None` when it has neither.
    pub fn of(take_profit: Option<Decimal>, stop_loss: Option<Decimal>) -> Option<Self> {
        (take_profit.is_some() || stop_loss.is_some()).then_some(AttachedExits {
            take_profit,
            stop_loss,
        })
    }
}

impl OrderRequest {
    /// The request for a stored order; an exit leg goes in its exit structure's
    /// one-cancels-other group ([`exit_group`]).
    pub fn for_order(o: &Order) -> Self {
        OrderRequest {
            client_order_id: o.client_order_id.clone(),
            symbol: o.symbol.clone(),
            side: o.side,
            order_type: o.order_type,
            quantity: o.quantity,
            limit_price: o.limit_price,
            stop_price: o.stop_price,
            oco_group: exit_group(o),
            attached_exits: None,
        }
    }
}

/// The one-cancels-other group of a take-profit or stop-loss leg: its transaction's exit
/// structure of one generation, named after the legs' client_order_ids with the role tag
/// replaced (`tw-{inst}-7-tp-2` and `tw-{inst}-7-sl-2` → `tw-{inst}-7-exit-2`), so it is as
/// unique across databases as they are. `None` for an entry or a close order.
pub fn exit_group(o: &Order) -> Option<String> {
    if !matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss) {
        return None;
    }
    // The same reading of the generation as `lifecycle::next_generation`.
    let (rest, generation) = o.client_order_id.rsplit_once('-')?;
    let (structure, _role_tag) = rest.rsplit_once('-')?;
    Some(format!("{structure}-exit-{generation}"))
}

/// Broker failures, saying whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker refused the order; sending it again will not help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The broker already has an order with this client_order_id: look it up instead.
    #[error("client_order_id {0} already used")]
    DuplicateClientOrderId(String),
    /// No answer, or an answer that says to try later: the order may or may not exist.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The broker asks us to slow down; `retry_after` is its hint, when it gave one.
    #[error("rate limited{}", .retry_after.map(|d| format!(" (retry after {} s)", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The broker refused our credentials; nothing will work until they are fixed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The broker does not know the account.
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    /// The broker has no order under this client_order_id (it never received it).
    #[error("no order with client_order_id {0}")]
    UnknownOrder(String),
}

impl BrokerError {
    /// Whether a later attempt (after looking the order up) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BrokerError::Unavailable(_) | BrokerError::RateLimited { .. }
        )
    }
}

/// An account's money as the broker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSnapshot {
    pub cash: Decimal,
    /// Cash plus positions at their latest quote.
    pub balance: Decimal,
}

/// A broker position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPosition {
    pub symbol: String,
    /// Signed: negative is short.
    pub quantity: Decimal,
}

/// A position as the broker holds it, with its prices, for `accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPosition {
    pub symbol: String,
    /// Signed: negative is short.
    pub quantity: Decimal,
    /// The average price the quantity held was bought (long) or sold (short) at, when the
    /// broker reports it.
    pub avg_price: Option<Decimal>,
    /// The symbol's latest quote, when there is one.
    pub last_price: Option<Decimal>,
}

impl HeldPosition {
    /// `(last − avg) × quantity`: what closing at the last price would gain (a loss is
    /// negative, on a short too); `None` when either price is unknown.
    pub fn unrealized_pnl(&self) -> Option<Decimal> {
        Some((self.last_price? - self.avg_price?) * self.quantity)
    }

    /// The position at its latest quote (a short is negative); at its average price while
    /// it has no quote, and nothing when it has neither.
    pub fn market_value(&self) -> Decimal {
        self.quantity * self.last_price.or(self.avg_price).unwrap_or(Decimal::ZERO)
    }
}

/// An account's cash and positions as the broker holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    pub cash: Decimal,
    /// The open positions (no zero quantities), by symbol.
    pub positions: Vec<HeldPosition>,
}

impl Holdings {
    /// Cash plus every position at its latest quote ([`HeldPosition::market_value`]).
    pub fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .iter()
                .map(HeldPosition::market_value)
                .sum::<Decimal>()
    }
}

/// A price for a symbol at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub symbol: String,
    pub price: Decimal,
    pub at: DateTime<Utc>,
}

/// One broker account. The paper broker and real brokers implement it alike.
#[async_trait]
pub trait Broker: Send + Sync {
    /// The kind of broker, for metric labels: `paper`, `alpaca`; `other` for one that does
    /// not say (test doubles). A wrapper passes on the kind of what it wraps.
    fn kind(&self) -> &'static str {
        "other"
    }
    /// Cash and balance.
    async fn account(&self) -> Result<AccountSnapshot, BrokerError>;
    /// The latest quote of each symbol it knows; unknown symbols are absent.
    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError>;
    /// Sends an order. The broker must refuse a client_order_id it has seen.
    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError>;
    /// Sends several orders; one answer per order, in order. A broker with a batch path
    /// (the paper broker: one database transaction) overrides this; the default sends them
    /// one after another.
    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        let mut out = Vec::with_capacity(orders.len());
        for o in orders {
            out.push(self.submit(o).await);
        }
        out
    }
    /// Looks an order up by the id we gave it; `None` when the broker never received it.
    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError>;
    /// Looks several orders up by the ids we gave them; one answer per id, in order. A broker
    /// with a batch path (the paper broker: one query) overrides this; the default asks one
    /// after another.
    async fn orders_by_client_ids(
        &self,
        client_order_ids: &[String],
    ) -> Vec<Result<Option<BrokerOrder>, BrokerError>> {
        let mut out = Vec::with_capacity(client_order_ids.len());
        for id in client_order_ids {
            out.push(self.order_by_client_id(id).await);
        }
        out
    }
    /// Cancels a working order and returns its state after. An order that already ended
    /// (filled, canceled, rejected, expired) cannot be canceled: its state is returned as it
    /// is, not an error, so a cancel racing a fill reports the fill. An id the broker never
    /// received is [`BrokerError::UnknownOrder`]. The default is a broker that cannot cancel.
    async fn cancel(&self, client_order_id: &str) -> Result<BrokerOrder, BrokerError> {
        Err(BrokerError::Rejected(format!(
            "this broker cannot cancel orders (asked for {client_order_id})"
        )))
    }
    /// Whether this broker places an entry's exit legs with it
    /// ([`OrderRequest::attached_exits`]): a refresh then asks it for the legs our store
    /// holds waiting for a sent entry, and adopts those it holds (they never go again).
    fn attaches_exits(&self) -> bool {
        false
    }
    /// Whether this broker replaces a resting exit leg in place ([`Broker::replace_order`]):
    /// one request, after which the leg's one-cancels-other group holds the replacement, so
    /// a moved stop never leaves the position without one (I8). Without it the engine
    /// stores the next structure, cancels the old one, then places the next.
    fn can_replace_legs(&self) -> bool {
        false
    }
    /// Replaces the working order we sent as `resting` (its client_order_id) with `with`:
    /// the same order at `with`'s quantity and prices, under `with`'s client_order_id, which
    /// was stored before this call. Returns the replacing order. A replacement that may have
    /// reached the broker is looked up by `with.client_order_id`, never sent twice; an order
    /// that ended meanwhile (filled, canceled) cannot be replaced: [`BrokerError::Rejected`].
    /// The default is a broker that cannot replace.
    async fn replace_order(
        &self,
        resting: &str,
        with: &OrderRequest,
    ) -> Result<BrokerOrder, BrokerError> {
        Err(BrokerError::Rejected(format!(
            "this broker cannot replace orders (asked to replace {resting} with {})",
            with.client_order_id
        )))
    }
    /// Current positions.
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError>;
    /// Cash and every position with its prices. The default puts [`Broker::account`],
    /// [`Broker::positions`] and [`Broker::quotes`] together, without average prices.
    async fn holdings(&self) -> Result<Holdings, BrokerError> {
        let cash = self.account().await?.cash;
        let positions = self.positions().await?;
        let symbols: Vec<String> = positions.iter().map(|p| p.symbol.clone()).collect();
        let quotes = self.quotes(&symbols).await?;
        Ok(Holdings {
            cash,
            positions: positions
                .into_iter()
                .map(|p| HeldPosition {
                    last_price: quotes.get(&p.symbol).copied(),
                    symbol: p.symbol,
                    quantity: p.quantity,
                    avg_price: None,
                })
                .collect(),
        })
    }
    /// The broker's quote intake, if it takes quotes from us (a simulated broker does; a
    /// real one has its own market data).
    fn accepts_quotes(&self) -> Option<&dyn AcceptsQuotes> {
        None
    }
}

/// The capability of a broker that prices come from us: recommendations' prices and the
/// price commands reach it here.
#[async_trait]
pub trait AcceptsQuotes: Send + Sync {
    /// Records quotes, the newest per symbol winning; returns how many stored quotes changed
    /// (a quote older than the stored one changes nothing). A new quote executes the resting
    /// orders of its symbol that it crosses, as a market moving does at a real broker.
    async fn record_quotes(&self, quotes: &[Quote]) -> Result<usize, BrokerError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn entry() -> Order {
        Order {
            id: 1,
            transaction_id: 1,
            expert_id: 1,
            account: "paper".into(),
            symbol: "AAPL".into(),
            side: Side::Buy,
            role: tradewarden_domain::OrderRole::Entry,
            order_type: OrderType::Market,
            quantity: dec!(10),
            filled_quantity: dec!(0),
            limit_price: None,
            stop_price: None,
            avg_fill_price: None,
            status: OrderStatus::Submitting,
            client_order_id: "tw-x-1-entry".into(),
            broker_order_id: None,
            parent_order_id: None,
            trigger_status: None,
            recommendation_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_broker_order_is_ours_only_if_what_it_reports_matches() {
        // Catches: a lookup adopted on its client_order_id alone, or a broker that reports
        // nothing taken for a clash.
        let ours = entry();
        let found =
            |symbol: Option<&str>, side: Option<Side>, quantity: Option<Decimal>| BrokerOrder {
                broker_order_id: None,
                client_order_id: ours.client_order_id.clone(),
                status: OrderStatus::Filled,
                filled_quantity: dec!(10),
                avg_fill_price: None,
                reason: None,
                updated_at: DateTime::<Utc>::UNIX_EPOCH,
                symbol: symbol.map(Into::into),
                side,
                quantity,
            };
        let cases = [
            (found(Some("AAPL"), Some(Side::Buy), Some(dec!(10.0))), None),
            (found(None, None, None), None),
            (
                found(Some("MSFT"), Some(Side::Buy), Some(dec!(10))),
                Some("the broker's order is BUY 10 MSFT, ours is BUY 10 AAPL"),
            ),
            (
                found(Some("AAPL"), Some(Side::Sell), None),
                Some("the broker's order is SELL ? AAPL, ours is BUY 10 AAPL"),
            ),
            (
                found(None, None, Some(dec!(3))),
                Some("the broker's order is ? 3 ?, ours is BUY 10 AAPL"),
            ),
        ];
        for (b, want) in cases {
            assert_eq!(b.mismatch(&ours).as_deref(), want, "{b:?}");
        }
    }

    #[test]
    fn the_legs_of_one_exit_structure_share_a_group_and_nothing_else_does() {
        // Catches: legs sent without a group (no one-cancels-other at the broker), or two
        // generations, or two transactions, in one group.
        let order = |role, client_order_id: &str| Order {
            role,
            client_order_id: client_order_id.into(),
            ..entry()
        };
        let cases = [
            (
                OrderRole::TakeProfit,
                "tw-ab12-7-tp-1",
                Some("tw-ab12-7-exit-1"),
            ),
            (
                OrderRole::StopLoss,
                "tw-ab12-7-sl-1",
                Some("tw-ab12-7-exit-1"),
            ),
            (
                OrderRole::StopLoss,
                "tw-ab12-7-sl-2",
                Some("tw-ab12-7-exit-2"),
            ),
            (
                OrderRole::TakeProfit,
                "tw-ab12-8-tp-1",
                Some("tw-ab12-8-exit-1"),
            ),
            (OrderRole::Entry, "tw-ab12-7-entry", None),
            (OrderRole::Close, "tw-ab12-7-close-1", None),
        ];
        for (role, id, want) in cases {
            let request = OrderRequest::for_order(&order(role, id));
            assert_eq!(request.oco_group.as_deref(), want, "{id}");
        }
    }

    #[test]
    fn unrealized_pnl_and_equity_follow_the_last_price_long_and_short() {
        // Catches: a short's P&L with the wrong sign, or equity counting a short as an asset.
        let held = |quantity, avg, last| HeldPosition {
            symbol: "AAPL".into(),
            quantity,
            avg_price: avg,
            last_price: last,
        };
        let cases = [
            (
                held(dec!(10), Some(dec!(100)), Some(dec!(110))),
                Some(dec!(100)),
                dec!(1100),
            ),
            (
                held(dec!(10), Some(dec!(100)), Some(dec!(90))),
                Some(dec!(-100)),
                dec!(900),
            ),
            (
                held(dec!(-10), Some(dec!(100)), Some(dec!(90))),
                Some(dec!(100)),
                dec!(-900),
            ),
            (
                held(dec!(-10), Some(dec!(100)), Some(dec!(110))),
                Some(dec!(-100)),
                dec!(-1100),
            ),
            (held(dec!(10), None, Some(dec!(110))), None, dec!(1100)),
            (held(dec!(10), Some(dec!(100)), None), None, dec!(1000)),
        ];
        for (p, pnl, value) in cases {
            assert_eq!(
                (p.unrealized_pnl(), p.market_value()),
                (pnl, value),
                "{p:?}"
            );
            let h = Holdings {
                cash: dec!(5000),
                positions: vec![p.clone()],
            };
            assert_eq!(h.equity(), dec!(5000) + value, "{p:?}");
        }
    }
}
