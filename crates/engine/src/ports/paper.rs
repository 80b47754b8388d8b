//! The paper broker's persistence port: the store loads and saves a paper account's book;
//! every decision about a fill is the broker's (`tradewarden-brokers`).
//!
//! Saving is optimistic: a book is saved only if the account is still at the version it
//! was loaded at, so two processes trading one paper account never spend the same cash, and
//! a quote never misses an order resting meanwhile.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::OrderStatus;

use super::broker::{BrokerOrder, OrderRequest, Quote};
use super::store::StoreError;

/// A paper account's position in one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaperPosition {
    /// Signed: negative is short.
    pub quantity: Decimal,
    /// The average price the quantity held was bought (long) or sold (short) at: the cost
    /// basis of the unrealised profit and loss. Zero when flat.
    pub avg_price: Decimal,
}

/// A paper account's book as stored, with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperBook {
    /// Bumped by every save; a save against an older version is refused.
    pub version: i64,
    pub cash: Decimal,
    /// The positions the scope asked for, by symbol.
    pub positions: HashMap<String, PaperPosition>,
    /// The latest quote per symbol, of the symbols the scope asked for.
    pub quotes: HashMap<String, Quote>,
    /// Which of the client_order_ids asked about the account has seen already.
    pub known_client_order_ids: HashSet<String>,
    /// The stored orders the scope asked for, oldest first.
    pub orders: Vec<StoredPaperOrder>,
}

/// How much of a book a caller needs: an account's quotes and orders are many (every symbol
/// ever quoted, every order ever sent), so each broker call loads only its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookScope<'a> {
    /// Cash, every position, and the quotes of the symbols held (balances, positions).
    Holdings,
    /// Cash and every quote (quoting); no positions.
    Quotes,
    /// Deciding this batch of new orders: cash, the positions and quotes of the batch's
    /// symbols (all an execution reads or moves), which of the batch's client_order_ids are
    /// taken, and every stored order of the batch's one-cancels-other groups.
    Trading(&'a [OrderRequest]),
    /// Taking new quotes for these symbols: cash, their stored quotes, their resting orders,
    /// and the positions of the symbols with resting orders.
    Quoting(&'a [String]),
    /// Canceling these orders: cash and the orders (any status).
    Canceling(&'a [String]),
}

/// One order as the paper broker decided it, to be stored (a rejected order too: its
/// client_order_id stays spent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperOrderRecord {
    pub request: OrderRequest,
    pub status: OrderStatus,
    pub filled_quantity: Decimal,
    pub avg_fill_price: Option<Decimal>,
    pub reason: Option<String>,
    /// When it was decided (created, or last changed).
    pub at: DateTime<Utc>,
}

/// An order the account has stored: its broker id and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPaperOrder {
    pub broker_order_id: String,
    pub record: PaperOrderRecord,
}

impl StoredPaperOrder {
    /// The order as the broker reports it.
    pub fn broker_order(&self) -> BrokerOrder {
        let r = &self.record;
        BrokerOrder {
            broker_order_id: Some(self.broker_order_id.clone()),
            client_order_id: r.request.client_order_id.clone(),
            status: r.status,
            filled_quantity: r.filled_quantity,
            avg_fill_price: r.avg_fill_price,
            reason: r.reason.clone(),
            updated_at: r.at,
            symbol: Some(r.request.symbol.clone()),
            side: Some(r.request.side),
            quantity: Some(r.request.quantity),
        }
    }
}

/// What one decision (a batch of orders, quotes, cancels) changes in a book.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperSave {
    /// The version the decisions were made on.
    pub expected_version: i64,
    pub cash: Decimal,
    /// The positions that changed, with their new state.
    pub positions: Vec<(String, PaperPosition)>,
    /// New orders, in the order they were sent.
    pub orders: Vec<PaperOrderRecord>,
    /// Stored orders that moved (filled, canceled, rejected), by client_order_id.
    pub updates: Vec<PaperOrderRecord>,
    /// Quotes to store, one per symbol.
    pub quotes: Vec<Quote>,
}

impl PaperSave {
    /// Whether there is nothing to save (cash moves only with a position, so it is unchanged
    /// too).
    pub fn changes_nothing(&self) -> bool {
        self.orders.is_empty()
            && self.updates.is_empty()
            && self.positions.is_empty()
            && self.quotes.is_empty()
    }
}

/// Where paper accounts live; implemented by the store.
#[async_trait]
pub trait PaperLedger: Send + Sync {
    /// Creates each account with its starting cash unless it exists (an account keeps its
    /// state across restarts and config edits).
    async fn open_paper_accounts(&self, accounts: &[(String, Decimal)]) -> Result<(), StoreError>;
    /// The account's book, as much of it as `scope` asks for; `None` for an account that
    /// was never opened.
    async fn load_book(
        &self,
        account: &str,
        scope: BookScope<'_>,
    ) -> Result<Option<PaperBook>, StoreError>;
    /// Saves a decision in one database transaction if the account is still at
    /// `expected_version` and none of its new client_order_ids was taken meanwhile; returns
    /// the broker ids of the new orders, in order, or `None` when the book moved (load it
    /// again and decide again).
    async fn save_book(
        &self,
        account: &str,
        save: &PaperSave,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// The stored orders of these client_order_ids that exist, in no particular order.
    async fn load_paper_orders(
        &self,
        account: &str,
        client_order_ids: &[String],
    ) -> Result<Vec<StoredPaperOrder>, StoreError>;
    /// One stored order, by its client_order_id, as the broker reports it.
    async fn load_paper_order(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, StoreError> {
        let found = self
            .load_paper_orders(account, &[client_order_id.to_string()])
            .await?;
        Ok(found.first().map(StoredPaperOrder::broker_order))
    }
    /// Records quotes alone (newest by time wins), deciding nothing: an order resting at
    /// the broker stays resting. For seeding a book; the broker's own quote intake
    /// (`AcceptsQuotes`) is what fills. Returns how many changed.
    async fn save_quotes(&self, account: &str, quotes: &[Quote]) -> Result<usize, StoreError>;
}
