//! The store's lifecycle role: a position with all its orders, read in bulk for refresh and
//! one at a time for closing and replacing exits; and everything one step of the lifecycle
//! changes, written in one database transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::lifecycle::{CloseReason, TransactionChange};
use tradewarden_domain::{Order, OrderRole, OrderStatus, OrderType, Side, Transaction};

use super::store::StoreError;

/// A transaction with every one of its orders (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub transaction: Transaction,
    pub orders: Vec<Order>,
}

/// An exit order to store: a take-profit or stop-loss leg, or a close order. The store gives
/// it its deterministic client_order_id
/// ([`leg_client_order_id`](tradewarden_domain::lifecycle::leg_client_order_id)) from
/// `transaction_id`, `role` and `generation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExitOrder {
    pub transaction_id: i64,
    pub expert_id: i64,
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub role: OrderRole,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub generation: u32,
    /// `waiting_trigger` (a leg waiting for its parent), `pending` (a close order, sent
    /// once its position's legs are canceled) or `submitting` (an instrument-share order,
    /// sent right after it is stored; B3 settles it after a crash).
    pub status: OrderStatus,
    pub parent_order_id: Option<i64>,
    pub trigger_status: Option<OrderStatus>,
    pub created_at: DateTime<Utc>,
}

/// What one lifecycle step writes, all in one database transaction. Every status change is
/// conditional on the status table (a row already moved by someone else is left alone), so
/// two writers never both claim one leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleWrite {
    /// Transactions derived anew ([`tradewarden_domain::lifecycle::derive_transaction`]).
    pub changes: Vec<(i64, TransactionChange)>,
    /// OPENED → CLOSING, with the reason the close is asked for.
    pub closing: Option<(i64, CloseReason)>,
    /// CLOSING → OPENED: their close orders ended without any execution (refused,
    /// canceled, expired); the reason asked for is cleared.
    pub reopened: Vec<i64>,
    /// A transaction's new take profit and stop loss.
    pub exits: Option<(i64, Option<Decimal>, Option<Decimal>)>,
    /// Orders to store; with `closing`, only if the transaction went CLOSING.
    pub inserted: Vec<NewExitOrder>,
    /// Legs never sent (`waiting_trigger` or `pending`) that end `canceled`.
    pub canceled: Vec<i64>,
    /// Legs `waiting_trigger` that fire, and close orders `pending` that go: `submitting`
    /// for this quantity, before the broker call (B3); their intent is made now (`created_at` = `at`), so settling ages it from
    /// here.
    pub claimed: Vec<(i64, Decimal)>,
    /// When these changes were made.
    pub at: DateTime<Utc>,
}

impl LifecycleWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.closing.is_none()
            && self.reopened.is_empty()
            && self.exits.is_none()
            && self.inserted.is_empty()
            && self.canceled.is_empty()
            && self.claimed.is_empty()
    }
}

/// What a [`LifecycleWrite`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleWritten {
    /// Whether the transaction went CLOSING (false: it was not OPENED any more).
    pub closing: bool,
    /// The orders stored, in input order.
    pub inserted: Vec<Order>,
    /// The legs this write claimed (those another writer claimed first are absent).
    pub claimed: Vec<Order>,
    /// How many legs it canceled.
    pub canceled: usize,
    /// The transactions it made (or kept) OPENED with an entry's fill.
    pub opened: usize,
    /// The transactions it closed.
    pub closed: usize,
    /// The transactions it put back OPENED.
    pub reopened: Vec<i64>,
}

/// Positions through their life: read with their orders, changed in one transaction.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Every WAITING, OPENED and CLOSING transaction of `accounts`, and every ended one
    /// with an order still live, with all its orders, in transaction id order: two queries,
    /// whatever their number.
    async fn live_positions(&self, accounts: &[String]) -> Result<Vec<Position>, StoreError>;

    /// One transaction with its orders; `None` when there is no such transaction.
    async fn position(&self, transaction_id: i64) -> Result<Option<Position>, StoreError>;

    /// Writes one lifecycle step in one database transaction, batched statements.
    async fn write_lifecycle(&self, w: &LifecycleWrite) -> Result<LifecycleWritten, StoreError>;
}
