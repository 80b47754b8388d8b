//! The paper broker: deterministic, persistent, and as strict as a real broker.
//!
//! Its state (cash, positions, orders, quotes) lives in the database behind [`PaperLedger`],
//! which applies one order atomically; the rules of a fill are the pure function [`fill`].
//! Market orders fill at submit at the latest quote of the symbol; a limit order fills at
//! submit when the quote is at or better than its limit, else it rests `accepted`; a stop
//! order fills when the quote has reached its stop, else it rests. The broker rejects, with a
//! reason, an order it cannot pay for, a symbol without a quote, and a `client_order_id` it has
//! already seen.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, Clock, OrderRequest};

/// The paper broker's persistent state, implemented by the store.
#[async_trait]
pub trait PaperLedger: Send + Sync {
    /// Cash and positions (with their latest quotes) of a paper account.
    async fn paper_state(&self, account: &str) -> Result<PaperState, BrokerError>;
    /// The latest quotes of the account.
    async fn paper_quotes(
        &self,
        account: &str,
        symbols: &[String],
    ) -> Result<HashMap<String, Decimal>, BrokerError>;
    /// Applies orders in one atomic step, in order: each refuses a client_order_id seen
    /// before (in the book or earlier in the batch), calls [`fill`] on the quote, cash and
    /// position left by the orders before it, and is stored with its effects. `Err` means
    /// nothing of the batch was applied.
    async fn paper_execute(
        &self,
        account: &str,
        orders: &[OrderRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<BrokerOrder, BrokerError>>, BrokerError>;
    /// Looks an order up by its client_order_id.
    async fn paper_order(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError>;
}

/// A paper account's holdings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperState {
    pub cash: Decimal,
    /// (symbol, signed quantity, latest quote).
    pub positions: Vec<(String, Decimal, Option<Decimal>)>,
}

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
    let executes_at = match order.order_type {
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
    };
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
}

#[async_trait]
impl Broker for PaperBroker {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let st = self.ledger.paper_state(&self.account).await?;
        let marked: Decimal = st
            .positions
            .iter()
            .map(|(_, q, p)| *q * p.unwrap_or_default())
            .sum();
        Ok(AccountSnapshot {
            cash: st.cash,
            balance: st.cash + marked,
        })
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        self.ledger.paper_quotes(&self.account, symbols).await
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
        match self
            .ledger
            .paper_execute(&self.account, orders, self.clock.now())
            .await
        {
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
            .paper_order(&self.account, client_order_id)
            .await
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        let st = self.ledger.paper_state(&self.account).await?;
        Ok(st
            .positions
            .into_iter()
            .filter(|(_, q, _)| !q.is_zero())
            .map(|(symbol, quantity, _)| BrokerPosition { symbol, quantity })
            .collect())
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
