//! The traits through which the engine reaches the outside: the store, brokers and the clock.
//!
//! They are object-safe (`async_trait`) so the binary can wire SQLite or PostgreSQL, the
//! paper broker or a real one, without the engine knowing which.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use tradewarden_domain::transaction::ActivePosition;
use tradewarden_domain::{
    NewRecommendation, Order, OrderStatus, OrderType, Outcome, Recommendation, Side, Transaction,
    TransactionStatus,
};

/// Wall-clock time, injected so tests can fix it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Store failures. `DuplicatePosition` is the database's own one-active-position rule (B1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The partial unique index refused a second WAITING/OPENED transaction.
    #[error("expert {expert_id} already has an active transaction for {symbol}")]
    DuplicatePosition {
        expert_id: i64,
        symbol: String,
        /// The transaction that holds the slot, when it could be read back.
        existing: Option<(i64, TransactionStatus)>,
    },
    /// A row the caller named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed (connection, I/O, constraint other than the above).
    #[error("database: {0}")]
    Database(String),
}

/// A position to open: the transaction and its entry order, written in one database
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPosition {
    pub expert_id: i64,
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
    /// The quote the entry was sized at; what a WAITING transaction holds.
    pub reference_price: Decimal,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub recommendation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A broker's view of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerOrder {
    pub broker_order_id: String,
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
}

impl BrokerError {
    /// Whether a later attempt (after looking the order up) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BrokerError::Unavailable(_))
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
}

/// What a run needs from the store, loaded in one go.
#[derive(Debug, Clone, Default)]
pub struct EnterMarketData {
    /// The expert's recommendations created at or after `since`, HOLD excluded.
    pub recommendations: Vec<Recommendation>,
    /// The expert's WAITING and OPENED transactions.
    pub positions: Vec<ActivePosition>,
}

/// The result of storing a batch of recommendations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImportCounts {
    pub imported: usize,
    pub already_present: usize,
}

/// A quote to record for a paper account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteUpdate {
    pub account: String,
    pub symbol: String,
    pub price: Decimal,
    pub at: DateTime<Utc>,
}

/// Filters for listings; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub expert_id: Option<i64>,
    pub status: Option<String>,
    pub recommendation_id: Option<i64>,
}

/// The store the engine persists through. Every method is one short database transaction.
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores recommendations and quotes all or nothing. An identical recommendation already
    /// stored counts as already present; a different one with the same identity is an error
    /// naming the batch index (0-based) of every such line.
    async fn import(
        &self,
        recs: &[NewRecommendation],
        quotes: &[QuoteUpdate],
    ) -> Result<ImportCounts, ImportError>;

    /// Records quotes (newest by time wins).
    async fn record_quotes(&self, quotes: &[QuoteUpdate]) -> Result<(), StoreError>;

    /// Loads what an enter_market run for one expert needs.
    async fn load_enter_market(
        &self,
        expert_id: i64,
        since: DateTime<Utc>,
    ) -> Result<EnterMarketData, StoreError>;

    /// Writes, for each position, a WAITING transaction and its entry order (status
    /// `submitting`, with its client_order_id), all in one committed database transaction.
    /// A position whose (expert, symbol) already has an active transaction gets
    /// `Err(StoreError::DuplicatePosition)` in its slot; the others are still written.
    async fn open_positions(
        &self,
        new: &[NewPosition],
    ) -> Result<Vec<Result<(Transaction, Order), StoreError>>, StoreError>;

    /// [`Store::open_positions`] for one position.
    async fn open_position(&self, new: &NewPosition) -> Result<(Transaction, Order), StoreError> {
        self.open_positions(std::slice::from_ref(new))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Database("no result for the position".into())))
    }

    /// Applies brokers' answers to orders through the status table, in one database
    /// transaction: an entry that filled moves its transaction to OPENED (open_price,
    /// opened_at); an entry refused with nothing filled closes it (FAILED when it never
    /// reached the broker). An answer the table does not allow (stale, out of order) is
    /// ignored. Returns the orders as they now stand, in input order.
    async fn apply_broker_orders(
        &self,
        answers: &[(i64, BrokerOrder)],
    ) -> Result<Vec<Order>, StoreError>;

    /// [`Store::apply_broker_orders`] for one order.
    async fn apply_broker_order(
        &self,
        order_id: i64,
        answer: &BrokerOrder,
    ) -> Result<Order, StoreError> {
        self.apply_broker_orders(&[(order_id, answer.clone())])
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("order {order_id}")))
    }

    /// Stores decision records.
    async fn record_outcomes(&self, outcomes: &[Outcome]) -> Result<(), StoreError>;

    /// The expert's active transaction for a symbol, if any.
    async fn active_transaction(
        &self,
        expert_id: i64,
        symbol: &str,
    ) -> Result<Option<Transaction>, StoreError>;

    /// Orders still `submitting` (their broker answer never arrived), optionally of one expert.
    async fn orders_in_flight(&self, expert_id: Option<i64>) -> Result<Vec<Order>, StoreError>;

    /// What the OPENED and CLOSING transactions of an account hold per symbol, signed.
    async fn held_quantities(&self, account: &str) -> Result<HashMap<String, Decimal>, StoreError>;

    /// Stores the record of a run.
    async fn record_run(&self, run: &RunRecord) -> Result<(), StoreError>;

    /// Stores reconciliation findings.
    async fn record_findings(&self, findings: &[Finding]) -> Result<(), StoreError>;

    /// Listings for the command line and the API.
    async fn transactions(&self, f: &ListFilter) -> Result<Vec<Transaction>, StoreError>;
    /// Listings for the command line and the API.
    async fn orders(&self, f: &ListFilter) -> Result<Vec<Order>, StoreError>;
    /// Listings for the command line and the API.
    async fn outcomes(&self, f: &ListFilter) -> Result<Vec<Outcome>, StoreError>;
}

/// Cross-process lock leases (B2): a row per key with an owner and an expiry.
///
/// Times come from the caller's [`Clock`] so expiry is testable; hosts sharing a database
/// are assumed to keep their clocks within a small fraction of the lease time.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes `key` for `owner` until `now + ttl` if it is free, expired, or already ours.
    async fn try_acquire_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Extends our unexpired lease to `now + ttl`; `false` means it was lost.
    async fn renew_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the key up if we still hold it.
    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError>;
}

/// The record of one run: who held which key from when to when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub lock_key: String,
    pub owner: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// A difference between a broker's position and the open transactions (reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub account: String,
    pub symbol: String,
    /// Signed: negative is short.
    pub broker_quantity: Decimal,
    /// What OPENED and CLOSING transactions hold, signed.
    pub recorded_quantity: Decimal,
    pub detail: String,
    pub found_at: DateTime<Utc>,
}

/// Why an import stored nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Lines (batch index, message) that conflict with stored recommendations.
    #[error("{} conflicting line(s)", .0.len())]
    Conflicts(Vec<(usize, String)>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
