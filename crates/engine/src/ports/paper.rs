//! The paper broker's persistence port: the store loads and saves a paper account's book;
//! every decision about a fill is the broker's (`tradewarden-brokers`).
//!
//! Saving is optimistic: a book is saved only if the account is still at the version it
//! was loaded at, so two processes trading one paper account never spend the same cash.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::OrderStatus;

use super::broker::{BrokerOrder, OrderRequest, Quote};
use super::store::StoreError;

/// A paper account's book as stored, with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperBook {
    /// Bumped by every save; a save against an older version is refused.
    pub version: i64,
    pub cash: Decimal,
    /// Signed quantity per symbol (negative is short).
    pub positions: HashMap<String, Decimal>,
    /// The latest quote per symbol.
    pub quotes: HashMap<String, Decimal>,
    /// Which of the client_order_ids asked about the account has seen already.
    pub known_client_order_ids: HashSet<String>,
}

/// How much of a book a caller needs: the quotes table of an account is large (every symbol
/// ever quoted), so each broker call loads only its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookScope {
    /// Cash, every position, and the quotes of the symbols held (balances, positions).
    Holdings,
    /// Cash and every quote (quoting); no positions.
    Quotes,
    /// Everything (deciding a batch of orders).
    Trading,
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
    pub at: DateTime<Utc>,
}

/// What one batch changes in a book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperSave {
    /// The version the decisions were made on.
    pub expected_version: i64,
    pub cash: Decimal,
    /// The positions the batch changed, with their new quantities.
    pub positions: Vec<(String, Decimal)>,
    pub orders: Vec<PaperOrderRecord>,
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
        scope: BookScope,
        client_order_ids: &[String],
    ) -> Result<Option<PaperBook>, StoreError>;
    /// Saves a batch in one database transaction if the account is still at
    /// `expected_version` and none of its client_order_ids was taken meanwhile; returns the
    /// broker ids of the stored orders, in order, or `None` when the book moved (load it
    /// again and decide again).
    async fn save_book(
        &self,
        account: &str,
        save: &PaperSave,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// One stored order, by its client_order_id.
    async fn load_paper_order(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, StoreError>;
    /// Records quotes for the account (newest by time wins); returns how many changed.
    async fn save_quotes(&self, account: &str, quotes: &[Quote]) -> Result<usize, StoreError>;
}
