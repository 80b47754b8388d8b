//! The paper broker: deterministic, persistent, and as strict as a real broker.
//!
//! Its logic lives here whole: [`PaperBook`] decides a batch of orders in memory with the
//! pure rules of [`fill`]; the store only loads and saves the book through the engine's
//! [`PaperLedger`] port, optimistically (a save against a book that moved meanwhile is
//! refused, and the batch is decided again on the fresh book).
//!
//! Market orders fill at submit at the latest quote of the symbol; a limit order fills at
//! submit when the quote is at or better than its limit, else it rests `accepted`; a stop
//! order fills when the quote has reached its stop, else it rests. The broker rejects, with a
//! reason, an order it cannot pay for, a symbol without a quote, and a `client_order_id` it has
//! already seen.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{
    AcceptsQuotes, AccountSnapshot, BookScope, BrokerPosition, PaperLedger, PaperOrderRecord,
    PaperSave, Quote,
};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, Clock, OrderRequest, StoreError};

/// How often a batch is decided again when another process saved the book in between.
const SAVE_ATTEMPTS: usize = 50;

/// What a fill does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// `filled` or `accepted` (resting).
    pub status: OrderStatus,
    pub price: Option<Decimal>,
    pub cash_after: Decimal,
    pub position_after: Decimal,
}

/// Decides what one order does, given the symbol's quote, the cash and the signed position.
/// `Err` is the rejection reason.
///
/// Buying needs cash for the whole cost. Selling what is held is always allowed; selling
/// beyond it opens or grows a short, which needs cash covering its notional (no margin).
pub fn fill(
    order: &OrderRequest,
    quote: Option<Decimal>,
    cash: Decimal,
    position: Decimal,
) -> Result<Fill, String> {
    if order.quantity <= Decimal::ZERO {
        return Err(format!(
            "quantity must be greater than 0, got {}",
            order.quantity
        ));
    }
    let Some(quote) = quote else {
        return Err(format!("no quote for {}", order.symbol));
    };
    let executes_at = execution_price(order, quote)?;
    let Some(price) = executes_at else {
        return Ok(Fill {
            status: OrderStatus::Accepted,
            price: None,
            cash_after: cash,
            position_after: position,
        });
    };
    let notional = order.quantity * price;
    let (cash_after, position_after) = match order.side {
        Side::Buy => {
            if notional > cash {
                return Err(format!(
                    "insufficient cash: order costs {}, cash is {}",
                    notional.round_dp(2),
                    cash.round_dp(2)
                ));
            }
            (cash - notional, position + order.quantity)
        }
        Side::Sell => {
            let after = position - order.quantity;
            let new_short = (-after).max(Decimal::ZERO) - (-position).max(Decimal::ZERO);
            if new_short > Decimal::ZERO && new_short * price > cash {
                return Err(format!(
                    "insufficient cash to cover a short of {}: needs {}, cash is {}",
                    new_short,
                    (new_short * price).round_dp(2),
                    cash.round_dp(2)
                ));
            }
            (cash + notional, after)
        }
    };
    Ok(Fill {
        status: OrderStatus::Filled,
        price: Some(price),
        cash_after,
        position_after,
    })
}

/// What the book answers for one order of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The order was decided (filled, resting or rejected) and is to be stored.
    Decided(PaperOrderRecord),
    /// The client_order_id was seen before: nothing is stored for it.
    DuplicateId(String),
}

/// A paper account's book in memory: the pure half of the paper broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperBook {
    pub cash: Decimal,
    pub positions: HashMap<String, Decimal>,
    pub quotes: HashMap<String, Decimal>,
    /// Client order ids the account has seen (in the store or earlier in this batch).
    pub seen: HashSet<String>,
    /// Symbols whose position a fill changed.
    touched: HashSet<String>,
}

impl PaperBook {
    /// The book as loaded from the store.
    pub fn from_stored(stored: tradewarden_engine::ports::PaperBook) -> Self {
        PaperBook {
            cash: stored.cash,
            positions: stored.positions,
            quotes: stored.quotes,
            seen: stored.known_client_order_ids,
            touched: HashSet::new(),
        }
    }

    /// Decides every order in turn against the book as the orders before it left it.
    pub fn execute(&mut self, orders: &[OrderRequest], now: DateTime<Utc>) -> Vec<Answer> {
        orders.iter().map(|o| self.execute_one(o, now)).collect()
    }

    fn execute_one(&mut self, order: &OrderRequest, now: DateTime<Utc>) -> Answer {
        if !self.seen.insert(order.client_order_id.clone()) {
            return Answer::DuplicateId(order.client_order_id.clone());
        }
        let position = self
            .positions
            .get(&order.symbol)
            .copied()
            .unwrap_or_default();
        let quote = self.quotes.get(&order.symbol).copied();
        let record = |status, filled, price, reason| PaperOrderRecord {
            request: order.clone(),
            status,
            filled_quantity: filled,
            avg_fill_price: price,
            reason,
            at: now,
        };
        match fill(order, quote, self.cash, position) {
            Ok(f) if f.status == OrderStatus::Filled => {
                self.cash = f.cash_after;
                self.positions
                    .insert(order.symbol.clone(), f.position_after);
                self.touched.insert(order.symbol.clone());
                Answer::Decided(record(f.status, order.quantity, f.price, None))
            }
            Ok(f) => Answer::Decided(record(f.status, Decimal::ZERO, None, None)),
            Err(reason) => Answer::Decided(record(
                OrderStatus::Rejected,
                Decimal::ZERO,
                None,
                Some(reason),
            )),
        }
    }

    /// What the batch changed, to be saved against the version the book was loaded at.
    pub fn changes(&self, expected_version: i64, answers: &[Answer]) -> PaperSave {
        let mut positions: Vec<(String, Decimal)> = self
            .touched
            .iter()
            .map(|s| (s.clone(), self.positions[s]))
            .collect();
        positions.sort();
        PaperSave {
            expected_version,
            cash: self.cash,
            positions,
            orders: answers
                .iter()
                .filter_map(|a| match a {
                    Answer::Decided(r) => Some(r.clone()),
                    Answer::DuplicateId(_) => None,
                })
                .collect(),
        }
    }

    /// The account's cash plus its positions at their latest quotes.
    pub fn balance(&self) -> Decimal {
        let marked: Decimal = self
            .positions
            .iter()
            .map(|(s, q)| *q * self.quotes.get(s).copied().unwrap_or_default())
            .sum();
        self.cash + marked
    }
}

/// What the broker returns for one decided order, given its stored broker id.
fn broker_answer(
    answer: Answer,
    broker_ids: &mut impl Iterator<Item = String>,
) -> Result<BrokerOrder, BrokerError> {
    let record = match answer {
        Answer::DuplicateId(id) => return Err(BrokerError::DuplicateClientOrderId(id)),
        Answer::Decided(r) => r,
    };
    let broker_order_id = broker_ids.next();
    match record.reason {
        Some(reason) if record.status == OrderStatus::Rejected => {
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

/// The price an order executes at against `quote` now, or `None` when it rests: a market
/// order at the quote, a limit at the quote when the quote is at or better than its limit, a
/// stop at the quote once the quote has reached its stop.
fn execution_price(order: &OrderRequest, quote: Decimal) -> Result<Option<Decimal>, String> {
    Ok(match order.order_type {
        OrderType::Market => Some(quote),
        OrderType::Limit => {
            let limit = order.limit_price.ok_or("a limit order needs limit_price")?;
            let crosses = match order.side {
                Side::Buy => quote <= limit,
                Side::Sell => quote >= limit,
            };
            crosses.then_some(quote)
        }
        OrderType::Stop => {
            let stop = order.stop_price.ok_or("a stop order needs stop_price")?;
            let reached = match order.side {
                Side::Buy => quote >= stop,
                Side::Sell => quote <= stop,
            };
            reached.then_some(quote)
        }
    })
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
    async fn load(
        &self,
        scope: BookScope,
        client_order_ids: &[String],
    ) -> Result<(i64, PaperBook), BrokerError> {
        let stored = self
            .ledger
            .load_book(&self.account, scope, client_order_ids)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BrokerError::UnknownAccount(self.account.clone()))?;
        Ok((stored.version, PaperBook::from_stored(stored)))
    }

    /// Load, decide, save; again on a fresh book when another process saved in between.
    async fn execute(
        &self,
        orders: &[OrderRequest],
    ) -> Result<Vec<Result<BrokerOrder, BrokerError>>, BrokerError> {
        let ids: Vec<String> = orders.iter().map(|o| o.client_order_id.clone()).collect();
        for _ in 0..SAVE_ATTEMPTS {
            let (version, mut book) = self.load(BookScope::Trading, &ids).await?;
            let answers = book.execute(orders, self.clock.now());
            let save = book.changes(version, &answers);
            let Some(broker_ids) = self
                .ledger
                .save_book(&self.account, &save)
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            let mut broker_ids = broker_ids.into_iter();
            return Ok(answers
                .into_iter()
                .map(|a| broker_answer(a, &mut broker_ids))
                .collect());
        }
        Err(BrokerError::Unavailable(format!(
            "paper account {} kept changing under {SAVE_ATTEMPTS} attempts; look the orders up",
            self.account
        )))
    }
}

#[async_trait]
impl Broker for PaperBroker {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let (_, book) = self.load(BookScope::Holdings, &[]).await?;
        Ok(AccountSnapshot {
            cash: book.cash,
            balance: book.balance(),
        })
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        let (_, book) = self.load(BookScope::Quotes, &[]).await?;
        Ok(symbols
            .iter()
            .filter_map(|s| book.quotes.get(s).map(|p| (s.clone(), *p)))
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
        match self.execute(orders).await {
            Ok(answers) => {
                // The broker has the orders; its answers have not reached the caller yet.
                tradewarden_engine::fault::point("after_broker_accepted");
                answers
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

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        let (_, book) = self.load(BookScope::Holdings, &[]).await?;
        let mut positions: Vec<BrokerPosition> = book
            .positions
            .into_iter()
            .filter(|(_, q)| !q.is_zero())
            .map(|(symbol, quantity)| BrokerPosition { symbol, quantity })
            .collect();
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        Ok(positions)
    }

    fn accepts_quotes(&self) -> Option<&dyn AcceptsQuotes> {
        Some(self)
    }
}

#[async_trait]
impl AcceptsQuotes for PaperBroker {
    async fn record_quotes(&self, quotes: &[Quote]) -> Result<usize, BrokerError> {
        self.ledger
            .save_quotes(&self.account, quotes)
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn req(
        side: Side,
        t: OrderType,
        qty: Decimal,
        limit: Option<Decimal>,
        stop: Option<Decimal>,
    ) -> OrderRequest {
        OrderRequest {
            client_order_id: "c".into(),
            symbol: "AAPL".into(),
            side,
            order_type: t,
            quantity: qty,
            limit_price: limit,
            stop_price: stop,
        }
    }

    /// (order, quote, cash, position) -> (status, cash after, position after) or an error substring.
    type Case = (
        OrderRequest,
        Option<Decimal>,
        Decimal,
        Decimal,
        Result<(OrderStatus, Decimal, Decimal), &'static str>,
    );

    #[test]
    fn fill_table() {
        use OrderType::*;
        use Side::*;
        // (order, quote, cash, position) -> Ok((status, cash_after, position_after)) or Err(substring)
        let cases: Vec<Case> = vec![
            (
                req(Buy, Market, dec!(10), None, None),
                Some(dec!(100)),
                dec!(1000),
                dec!(0),
                Ok((OrderStatus::Filled, dec!(0), dec!(10))),
            ),
            (
                req(Buy, Market, dec!(11), None, None),
                Some(dec!(100)),
                dec!(1000),
                dec!(0),
                Err("insufficient cash"),
            ),
            (
                req(Buy, Market, dec!(1), None, None),
                None,
                dec!(1000),
                dec!(0),
                Err("no quote"),
            ),
            (
                req(Buy, Market, dec!(0), None, None),
                Some(dec!(1)),
                dec!(1000),
                dec!(0),
                Err("quantity"),
            ),
            (
                req(Sell, Market, dec!(5), None, None),
                Some(dec!(100)),
                dec!(0),
                dec!(10),
                Ok((OrderStatus::Filled, dec!(500), dec!(5))),
            ),
            // opening a short needs cash covering it
            (
                req(Sell, Market, dec!(5), None, None),
                Some(dec!(100)),
                dec!(400),
                dec!(0),
                Err("short"),
            ),
            (
                req(Sell, Market, dec!(5), None, None),
                Some(dec!(100)),
                dec!(500),
                dec!(0),
                Ok((OrderStatus::Filled, dec!(1000), dec!(-5))),
            ),
            // limits and stops rest until crossed
            (
                req(Buy, Limit, dec!(1), Some(dec!(90)), None),
                Some(dec!(100)),
                dec!(1000),
                dec!(0),
                Ok((OrderStatus::Accepted, dec!(1000), dec!(0))),
            ),
            (
                req(Buy, Limit, dec!(1), Some(dec!(110)), None),
                Some(dec!(100)),
                dec!(1000),
                dec!(0),
                Ok((OrderStatus::Filled, dec!(900), dec!(1))),
            ),
            (
                req(Sell, Stop, dec!(1), None, Some(dec!(90))),
                Some(dec!(100)),
                dec!(0),
                dec!(1),
                Ok((OrderStatus::Accepted, dec!(0), dec!(1))),
            ),
            (
                req(Sell, Stop, dec!(1), None, Some(dec!(100))),
                Some(dec!(100)),
                dec!(0),
                dec!(1),
                Ok((OrderStatus::Filled, dec!(100), dec!(0))),
            ),
        ];
        for (order, quote, cash, pos, want) in cases {
            let got = fill(&order, quote, cash, pos);
            match (got, want) {
                (Ok(f), Ok((st, c, p))) => assert_eq!(
                    (f.status, f.cash_after, f.position_after),
                    (st, c, p),
                    "{order:?}"
                ),
                (Err(e), Err(sub)) => assert!(e.contains(sub), "{e} should mention {sub}"),
                (got, want) => panic!("{order:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
