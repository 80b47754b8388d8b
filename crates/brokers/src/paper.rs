//! The paper broker: deterministic, persistent, and as strict as a real broker.
//!
//! Its logic lives here whole: [`PaperBook`] (in [`book`]) decides in memory, with pure
//! rules, what a batch of orders, a batch of quotes or a cancel does to an account; the store
//! only loads and saves the book through the engine's [`PaperLedger`] port, optimistically (a
//! save against a book that moved meanwhile is refused, and the decision is made again on the
//! fresh book).
//!
//! Market orders fill at once at the latest quote; limit and stop orders fill at once when
//! the quote already crosses them, else they rest until a new quote does
//! ([`AcceptsQuotes::record_quotes`]: `prices set`, `prices import`, a recommendation's
//! price). Orders of one one-cancels-other group cancel each other on a fill. The broker
//! rejects, with a reason, an order it cannot pay for, a symbol without a quote, and a
//! `client_order_id` it has already seen. tradewarden's own orders learn of all this only
//! when the engine asks, as with a real broker.

pub mod book;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rust_decimal::Decimal;
use tradewarden_engine::ports::{
    AcceptsQuotes, AccountSnapshot, BookScope, BrokerPosition, HeldPosition, Holdings, PaperLedger,
    Quote,
};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, Clock, OrderRequest, StoreError};

pub use book::{Answer, PaperBook};

/// How often a decision is made again when another process saved the book in between.
const SAVE_ATTEMPTS: usize = 50;

/// A saved decision's result, with the broker ids of the orders it created, in order.
struct Saved<T> {
    value: T,
    broker_ids: Vec<String>,
}

/// What the broker returns for one decided order of a batch, given its stored broker id.
fn broker_answer(
    answer: Answer,
    broker_ids: &mut impl Iterator<Item = String>,
) -> Result<BrokerOrder, BrokerError> {
    let record = match answer {
        Answer::DuplicateId(id) => return Err(BrokerError::DuplicateClientOrderId(id)),
        Answer::Decided(r) => *r,
    };
    let broker_order_id = broker_ids.next();
    match record.reason {
        Some(reason) if record.status == tradewarden_domain::OrderStatus::Rejected => {
            Err(BrokerError::Rejected(reason))
        }
        reason => Ok(BrokerOrder {
            broker_order_id,
            client_order_id: record.request.client_order_id,
            status: record.status,
            filled_quantity: record.filled_quantity,
            avg_fill_price: record.avg_fill_price,
            reason,
            updated_at: record.at,
            symbol: Some(record.request.symbol),
            side: Some(record.request.side),
            quantity: Some(record.request.quantity),
        }),
    }
}

fn unavailable(e: StoreError) -> BrokerError {
    BrokerError::Unavailable(format!("paper ledger: {e}"))
}

/// One paper account as a [`Broker`].
pub struct PaperBroker {
    account: String,
    ledger: Arc<dyn PaperLedger>,
    clock: Arc<dyn Clock>,
}

impl PaperBroker {
    /// The paper broker of `account`.
    pub fn new(account: &str, ledger: Arc<dyn PaperLedger>, clock: Arc<dyn Clock>) -> Self {
        PaperBroker {
            account: account.to_string(),
            ledger,
            clock,
        }
    }

    /// The stored book and its version; an account never opened is unknown.
    async fn load(&self, scope: BookScope<'_>) -> Result<(i64, PaperBook), BrokerError> {
        let stored = self
            .ledger
            .load_book(&self.account, scope)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BrokerError::UnknownAccount(self.account.clone()))?;
        Ok((stored.version, PaperBook::from_stored(stored)))
    }

    /// Load, decide, save (nothing when the decision changed nothing); again on a fresh book
    /// when another process saved in between.
    async fn decide<T>(
        &self,
        scope: BookScope<'_>,
        decision: impl Fn(&mut PaperBook) -> T,
    ) -> Result<Saved<T>, BrokerError> {
        for _ in 0..SAVE_ATTEMPTS {
            let (version, mut book) = self.load(scope).await?;
            let value = decision(&mut book);
            let save = book.changes(version);
            if save.changes_nothing() {
                return Ok(Saved {
                    value,
                    broker_ids: Vec::new(),
                });
            }
            let saved = self
                .ledger
                .save_book(&self.account, &save)
                .await
                .map_err(unavailable)?;
            if let Some(broker_ids) = saved {
                return Ok(Saved { value, broker_ids });
            }
        }
        Err(BrokerError::Unavailable(format!(
            "paper account {} kept changing under {SAVE_ATTEMPTS} attempts; look the orders up",
            self.account
        )))
    }
}

#[async_trait]
impl Broker for PaperBroker {
    fn kind(&self) -> &'static str {
        "paper"
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let (_, book) = self.load(BookScope::Holdings).await?;
        Ok(AccountSnapshot {
            cash: book.cash,
            balance: book.balance(),
        })
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        let (_, book) = self.load(BookScope::Quotes).await?;
        Ok(symbols
            .iter()
            .filter_map(|s| book.quotes.get(s).map(|q| (s.clone(), q.price)))
            .collect())
    }

    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        self.submit_batch(std::slice::from_ref(order))
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(BrokerError::Unavailable(
                    "paper broker returned no answer".into(),
                ))
            })
    }

    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        let now = self.clock.now();
        let decided = self
            .decide(BookScope::Trading(orders), |book| book.execute(orders, now))
            .await;
        match decided {
            Ok(Saved { value, broker_ids }) => {
                // The broker has the orders; its answers have not reached the caller yet.
                tradewarden_engine::fault::point("after_broker_accepted");
                let mut broker_ids = broker_ids.into_iter();
                value
                    .into_iter()
                    .map(|a| broker_answer(a, &mut broker_ids))
                    .collect()
            }
            Err(e) => orders.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        self.ledger
            .load_paper_order(&self.account, client_order_id)
            .await
            .map_err(unavailable)
    }

    async fn orders_by_client_ids(
        &self,
        client_order_ids: &[String],
    ) -> Vec<Result<Option<BrokerOrder>, BrokerError>> {
        match self
            .ledger
            .load_paper_orders(&self.account, client_order_ids)
            .await
        {
            Ok(found) => {
                let mut by_id: HashMap<String, BrokerOrder> = found
                    .iter()
                    .map(|o| (o.record.request.client_order_id.clone(), o.broker_order()))
                    .collect();
                client_order_ids
                    .iter()
                    .map(|id| Ok(by_id.remove(id)))
                    .collect()
            }
            Err(e) => {
                let e = unavailable(e);
                client_order_ids.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn cancel(&self, client_order_id: &str) -> Result<BrokerOrder, BrokerError> {
        let now = self.clock.now();
        let ids = [client_order_id.to_string()];
        let decided = self
            .decide(BookScope::Canceling(&ids), |book| {
                book.cancel(client_order_id, now)
            })
            .await?;
        decided
            .value
            .map(|o| o.broker_order())
            .ok_or_else(|| BrokerError::UnknownOrder(client_order_id.to_string()))
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        let held = self.holdings().await?;
        Ok(held
            .positions
            .into_iter()
            .map(|p| BrokerPosition {
                symbol: p.symbol,
                quantity: p.quantity,
            })
            .collect())
    }

    async fn holdings(&self) -> Result<Holdings, BrokerError> {
        let (_, book) = self.load(BookScope::Holdings).await?;
        let mut positions: Vec<HeldPosition> = book
            .positions
            .iter()
            .filter(|(_, p)| !p.quantity.is_zero())
            .map(|(symbol, p)| HeldPosition {
                symbol: symbol.clone(),
                quantity: p.quantity,
                avg_price: Some(p.avg_price),
                last_price: book.quotes.get(symbol).map(|q| q.price),
            })
            .collect();
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        Ok(Holdings {
            cash: book.cash,
            positions,
        })
    }

    fn accepts_quotes(&self) -> Option<&dyn AcceptsQuotes> {
        Some(self)
    }
}

#[async_trait]
impl AcceptsQuotes for PaperBroker {
    async fn record_quotes(&self, quotes: &[Quote]) -> Result<usize, BrokerError> {
        let now = self.clock.now();
        let mut symbols: Vec<String> = quotes.iter().map(|q| q.symbol.clone()).collect();
        symbols.sort();
        symbols.dedup();
        let decided = self
            .decide(BookScope::Quoting(&symbols), |book| {
                book.take_quotes(quotes, now)
            })
            .await?;
        Ok(decided.value)
    }
}
