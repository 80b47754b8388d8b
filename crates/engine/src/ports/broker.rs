//! A broker account as the engine sees it: submit, look up, positions, money; and the
//! optional capability of accepting quotes (the paper broker has it, real brokers do not).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::{Order, OrderStatus, OrderType, Side};

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
}

impl OrderRequest {
    /// The request for a stored order.
    pub fn for_order(o: &Order) -> Self {
        OrderRequest {
            client_order_id: o.client_order_id.clone(),
            symbol: o.symbol.clone(),
            side: o.side,
            order_type: o.order_type,
            quantity: o.quantity,
            limit_price: o.limit_price,
            stop_price: o.stop_price,
        }
    }
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
    /// Current positions.
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError>;
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
    /// (a quote older than the stored one changes nothing).
    async fn record_quotes(&self, quotes: &[Quote]) -> Result<usize, BrokerError>;
}
