//! The pure half of the paper broker: a paper account's book in memory and every rule that
//! moves it. No I/O and no clock: the broker loads the book, calls one of [`PaperBook`]'s
//! decisions (a batch of new orders, new quotes, a cancel) with the time, and saves
//! [`PaperBook::changes`].
//!
//! The rules:
//! - a market order fills at once at the symbol's latest quote;
//! - a limit order fills at the quote when the quote is at or better than its limit (a buy
//!   limit at or above the quote, a sell limit at or below it), else it rests `accepted`;
//! - a stop order fills at the quote once the quote has reached its stop (a sell stop at or
//!   above the quote, a buy stop at or below it), else it rests;
//! - a new quote fills, at that quote, every resting order of its symbol that it crosses,
//!   oldest first;
//! - orders sharing a one-cancels-other group: when one fills, the broker cancels the others
//!   that rest, and an order sent to a group that already has a fill is canceled at once;
//! - buying needs cash for the whole cost; selling beyond what is held opens or grows a short,
//!   which needs cash covering its notional (no margin); every fill moves cash, so realised
//!   profit and loss is in the cash, and each position keeps its average price.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::OrderRequest;
use tradewarden_engine::ports::{
    PaperOrderRecord, PaperPosition, PaperSave, Quote, StoredPaperOrder,
};

/// The decimal places an average price keeps.
const AVG_PRICE_DP: u32 = 8;

/// What a fill does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// `filled` or `accepted` (resting).
    pub status: OrderStatus,
    pub price: Option<Decimal>,
    pub cash_after: Decimal,
    pub position_after: PaperPosition,
}

/// Decides what one order does now, given the symbol's quote, the cash and the position.
/// `Err` is the rejection reason.
pub fn fill(
    order: &OrderRequest,
    quote: Option<Decimal>,
    cash: Decimal,
    position: PaperPosition,
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
    let Some(price) = execution_price(order, quote)? else {
        return Ok(Fill {
            status: OrderStatus::Accepted,
            price: None,
            cash_after: cash,
            position_after: position,
        });
    };
    let (cash_after, position_after) = settle(order, price, cash, position)?;
    Ok(Fill {
        status: OrderStatus::Filled,
        price: Some(price),
        cash_after,
        position_after,
    })
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

/// Executes `order` whole at `price`: the cash and the position after, or why the account
/// cannot pay for it.
fn settle(
    order: &OrderRequest,
    price: Decimal,
    cash: Decimal,
    position: PaperPosition,
) -> Result<(Decimal, PaperPosition), String> {
    let notional = order.quantity * price;
    match order.side {
        Side::Buy => {
            if notional > cash {
                return Err(format!(
                    "insufficient cash: order costs {}, cash is {}",
                    notional.round_dp(2),
                    cash.round_dp(2)
                ));
            }
            Ok((
                cash - notional,
                position_after_fill(position, order.quantity, price),
            ))
        }
        Side::Sell => {
            let after = position.quantity - order.quantity;
            let new_short = (-after).max(Decimal::ZERO) - (-position.quantity).max(Decimal::ZERO);
            if new_short > Decimal::ZERO && new_short * price > cash {
                return Err(format!(
                    "insufficient cash to cover a short of {}: needs {}, cash is {}",
                    new_short,
                    (new_short * price).round_dp(2),
                    cash.round_dp(2)
                ));
            }
            Ok((
                cash + notional,
                position_after_fill(position, -order.quantity, price),
            ))
        }
    }
}

/// A position after a fill of `delta` (signed: a buy is positive) at `price`, at average
/// cost: growing it weighs the new price in, reducing it keeps the average, opening it or
/// crossing zero starts at the fill price, and a flat position has none (zero).
fn position_after_fill(position: PaperPosition, delta: Decimal, price: Decimal) -> PaperPosition {
    let before = position.quantity;
    let quantity = before + delta;
    let sign = |d: Decimal| d.cmp(&Decimal::ZERO);
    let avg_price = if quantity.is_zero() {
        Decimal::ZERO
    } else if sign(before) != sign(quantity) {
        price
    } else if quantity.abs() > before.abs() {
        ((before.abs() * position.avg_price + delta.abs() * price) / quantity.abs())
            .round_dp(AVG_PRICE_DP)
    } else {
        position.avg_price
    };
    PaperPosition {
        quantity,
        avg_price,
    }
}

/// What the book answers for one order of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The order was decided (filled, resting, canceled or rejected) and is to be stored;
    /// its state once the whole batch was decided (boxed: a record is large beside an id).
    Decided(Box<PaperOrderRecord>),
    /// The client_order_id was seen before: nothing is stored for it.
    DuplicateId(String),
}

/// One order in the book: stored before this decision, or new in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BookOrder {
    /// The broker's id of a stored order; `None` for an order new in this decision.
    broker_order_id: Option<String>,
    record: PaperOrderRecord,
    /// Whether this decision changed a stored order.
    moved: bool,
}

/// A paper account's book in memory (the part of it loaded), with what the decision at hand
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaperBook {
    pub cash: Decimal,
    pub positions: HashMap<String, PaperPosition>,
    pub quotes: HashMap<String, Quote>,
    /// Client order ids the account has seen (in the store or earlier in this batch).
    seen: HashSet<String>,
    /// The orders loaded, then the new ones, oldest first.
    orders: Vec<BookOrder>,
    /// Indexes into `orders`: by client_order_id, by symbol, by one-cancels-other group.
    by_id: HashMap<String, usize>,
    by_symbol: HashMap<String, Vec<usize>>,
    by_group: HashMap<String, Vec<usize>>,
    /// Symbols whose position a fill changed.
    touched: HashSet<String>,
    /// Symbols whose quote changed.
    requoted: HashSet<String>,
}

impl PaperBook {
    /// The book as loaded from the store.
    pub fn from_stored(stored: tradewarden_engine::ports::PaperBook) -> Self {
        let mut book = PaperBook {
            cash: stored.cash,
            positions: stored.positions,
            quotes: stored.quotes,
            seen: stored.known_client_order_ids,
            ..PaperBook::default()
        };
        for o in stored.orders {
            book.push(BookOrder {
                broker_order_id: Some(o.broker_order_id),
                record: o.record,
                moved: false,
            });
        }
        book
    }

    /// Decides every order in turn against the book as the orders before it left it; the
    /// answers give each order's state once the whole batch is decided (an order a later
    /// one-cancels-other sibling canceled says so).
    pub fn execute(&mut self, orders: &[OrderRequest], now: DateTime<Utc>) -> Vec<Answer> {
        let placed: Vec<Option<usize>> = orders.iter().map(|o| self.place(o, now)).collect();
        placed
            .into_iter()
            .zip(orders)
            .map(|(slot, o)| match slot {
                Some(i) => Answer::Decided(Box::new(self.orders[i].record.clone())),
                None => Answer::DuplicateId(o.client_order_id.clone()),
            })
            .collect()
    }

    /// Takes new quotes, oldest first (a quote older than the symbol's stored one changes
    /// nothing), each filling the resting orders of its symbol that it crosses. Returns how
    /// many symbols' quotes changed.
    pub fn take_quotes(&mut self, quotes: &[Quote], now: DateTime<Utc>) -> usize {
        let mut in_time: Vec<&Quote> = quotes.iter().collect();
        // Stable: of two quotes of one time, the later in the batch wins.
        in_time.sort_by_key(|q| q.at);
        let mut changed = HashSet::new();
        for q in in_time {
            if self.quotes.get(&q.symbol).is_some_and(|s| q.at < s.at) {
                continue;
            }
            self.quotes.insert(q.symbol.clone(), q.clone());
            changed.insert(q.symbol.clone());
            self.cross_resting(&q.symbol, q.price, now);
        }
        let n = changed.len();
        self.requoted.extend(changed);
        n
    }

    /// Cancels a resting order; returns its state after, or `None` for an order the book
    /// does not hold. An order that already ended is returned as it is.
    pub fn cancel(
        &mut self,
        client_order_id: &str,
        now: DateTime<Utc>,
    ) -> Option<StoredPaperOrder> {
        let i = *self.by_id.get(client_order_id)?;
        if self.orders[i].record.status == OrderStatus::Accepted {
            self.end(i, OrderStatus::Canceled, None, now);
        }
        let o = &self.orders[i];
        Some(StoredPaperOrder {
            broker_order_id: o.broker_order_id.clone()?,
            record: o.record.clone(),
        })
    }

    /// What this decision changed, to be saved against the version the book was loaded at.
    pub fn changes(&self, expected_version: i64) -> PaperSave {
        let mut positions: Vec<(String, PaperPosition)> = self
            .touched
            .iter()
            .map(|s| (s.clone(), self.positions[s]))
            .collect();
        positions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut quotes: Vec<Quote> = self
            .requoted
            .iter()
            .map(|s| self.quotes[s].clone())
            .collect();
        quotes.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let records = |new: bool| {
            self.orders
                .iter()
                .filter(move |o| o.broker_order_id.is_none() == new && (new || o.moved))
                .map(|o| o.record.clone())
                .collect()
        };
        PaperSave {
            expected_version,
            cash: self.cash,
            positions,
            orders: records(true),
            updates: records(false),
            quotes,
        }
    }

    /// The account's cash plus its positions at their latest quotes.
    pub fn balance(&self) -> Decimal {
        let marked: Decimal = self
            .positions
            .iter()
            .map(|(s, p)| p.quantity * self.quotes.get(s).map_or(Decimal::ZERO, |q| q.price))
            .sum();
        self.cash + marked
    }

    /// The state of an order the book holds, by client_order_id.
    pub fn order(&self, client_order_id: &str) -> Option<&PaperOrderRecord> {
        self.by_id
            .get(client_order_id)
            .map(|i| &self.orders[*i].record)
    }

    /// Adds an order to the book and its indexes; returns its index.
    fn push(&mut self, order: BookOrder) -> usize {
        let i = self.orders.len();
        let request = &order.record.request;
        self.by_id.insert(request.client_order_id.clone(), i);
        self.by_symbol
            .entry(request.symbol.clone())
            .or_default()
            .push(i);
        if let Some(g) = &request.oco_group {
            self.by_group.entry(g.clone()).or_default().push(i);
        }
        self.orders.push(order);
        i
    }

    /// Decides one new order and adds it; `None` for a client_order_id seen before.
    fn place(&mut self, order: &OrderRequest, now: DateTime<Utc>) -> Option<usize> {
        if !self.seen.insert(order.client_order_id.clone()) {
            return None;
        }
        let (status, reason) = match self.group_refusal(order) {
            Some(refusal) => refusal,
            None => (OrderStatus::Accepted, None),
        };
        let i = self.push(BookOrder {
            broker_order_id: None,
            record: PaperOrderRecord {
                request: order.clone(),
                status,
                filled_quantity: Decimal::ZERO,
                avg_fill_price: None,
                reason,
                at: now,
            },
            moved: false,
        });
        if status == OrderStatus::Accepted {
            let quote = self.quotes.get(&order.symbol).map(|q| q.price);
            self.execute_at(i, quote, now);
        }
        Some(i)
    }

    /// Why the order's one-cancels-other group refuses it, if it does: a group is of one
    /// symbol (rejected otherwise), and a group that already has a fill cancels whatever
    /// joins it.
    fn group_refusal(&self, order: &OrderRequest) -> Option<(OrderStatus, Option<String>)> {
        let group = order.oco_group.as_ref()?;
        let members = self.by_group.get(group)?;
        let member = |i: &usize| &self.orders[*i].record;
        if let Some(other) = members
            .iter()
            .map(member)
            .find(|m| m.request.symbol != order.symbol)
        {
            return Some((
                OrderStatus::Rejected,
                Some(format!(
                    "one-cancels-other group {group} is of {}, not {}",
                    other.request.symbol, order.symbol
                )),
            ));
        }
        let filled = members
            .iter()
            .map(member)
            .find(|m| m.status == OrderStatus::Filled)?;
        Some((
            OrderStatus::Canceled,
            Some(one_cancels_other(&filled.request.client_order_id)),
        ))
    }

    /// Fills the resting order `i` if `quote` crosses it (it is rejected if the account
    /// cannot pay), then cancels its one-cancels-other siblings.
    fn execute_at(&mut self, i: usize, quote: Option<Decimal>, now: DateTime<Utc>) {
        let request = self.orders[i].record.request.clone();
        let position = self
            .positions
            .get(&request.symbol)
            .copied()
            .unwrap_or_default();
        match fill(&request, quote, self.cash, position) {
            Ok(f) if f.status == OrderStatus::Filled => {
                self.cash = f.cash_after;
                self.positions
                    .insert(request.symbol.clone(), f.position_after);
                self.touched.insert(request.symbol.clone());
                let record = &mut self.orders[i].record;
                record.filled_quantity = request.quantity;
                record.avg_fill_price = f.price;
                self.end(i, OrderStatus::Filled, None, now);
                self.cancel_siblings(i, now);
            }
            Ok(_) => {}
            Err(reason) => self.end(i, OrderStatus::Rejected, Some(reason), now),
        }
    }

    /// Fills every resting order of `symbol` that `price` crosses, oldest first.
    fn cross_resting(&mut self, symbol: &str, price: Decimal, now: DateTime<Utc>) {
        let resting: Vec<usize> = self
            .by_symbol
            .get(symbol)
            .into_iter()
            .flatten()
            .copied()
            .filter(|i| self.orders[*i].record.status == OrderStatus::Accepted)
            .collect();
        for i in resting {
            // A sibling that filled before it may have canceled it.
            if self.orders[i].record.status == OrderStatus::Accepted {
                self.execute_at(i, Some(price), now);
            }
        }
    }

    /// Cancels the resting orders of filled order `i`'s one-cancels-other group.
    fn cancel_siblings(&mut self, i: usize, now: DateTime<Utc>) {
        let record = &self.orders[i].record;
        let Some(group) = &record.request.oco_group else {
            return;
        };
        let reason = one_cancels_other(&record.request.client_order_id);
        let siblings: Vec<usize> = self.by_group[group]
            .iter()
            .copied()
            .filter(|j| *j != i && self.orders[*j].record.status == OrderStatus::Accepted)
            .collect();
        for j in siblings {
            self.end(j, OrderStatus::Canceled, Some(reason.clone()), now);
        }
    }

    /// Moves order `i` to `status` at `now`.
    fn end(&mut self, i: usize, status: OrderStatus, reason: Option<String>, now: DateTime<Utc>) {
        let o = &mut self.orders[i];
        o.record.status = status;
        o.record.reason = reason;
        o.record.at = now;
        o.moved = o.broker_order_id.is_some();
    }
}

/// The reason an order is canceled for a sibling's fill.
fn one_cancels_other(filled: &str) -> String {
    format!("one-cancels-other: {filled} filled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + s)
    }

    fn req(
        id: &str,
        side: Side,
        t: OrderType,
        qty: Decimal,
        price: Option<Decimal>,
    ) -> OrderRequest {
        OrderRequest {
            client_order_id: id.into(),
            symbol: "AAPL".into(),
            side,
            order_type: t,
            quantity: qty,
            limit_price: price.filter(|_| t == OrderType::Limit),
            stop_price: price.filter(|_| t == OrderType::Stop),
            oco_group: None,
            attached_exits: None,
        }
    }

    fn in_group(mut r: OrderRequest, group: &str) -> OrderRequest {
        r.oco_group = Some(group.into());
        r
    }

    fn pos(quantity: Decimal, avg_price: Decimal) -> PaperPosition {
        PaperPosition {
            quantity,
            avg_price,
        }
    }

    fn quote(price: Decimal, s: i64) -> Quote {
        Quote {
            symbol: "AAPL".into(),
            price,
            at: at(s),
        }
    }

    /// A book of `cash` holding `position` of AAPL quoted at `price`.
    fn book(cash: Decimal, position: PaperPosition, price: Decimal) -> PaperBook {
        PaperBook {
            cash,
            positions: [("AAPL".to_string(), position)].into(),
            quotes: [("AAPL".to_string(), quote(price, 0))].into(),
            ..PaperBook::default()
        }
    }

    /// The book after a save and a reload: its stored orders are what `changes` wrote.
    fn reloaded(b: &PaperBook, version: i64) -> PaperBook {
        let save = b.changes(version);
        let mut orders: Vec<StoredPaperOrder> = Vec::new();
        for (n, o) in b.orders.iter().enumerate() {
            orders.push(StoredPaperOrder {
                broker_order_id: o
                    .broker_order_id
                    .clone()
                    .unwrap_or_else(|| format!("paper-{n}")),
                record: o.record.clone(),
            });
        }
        PaperBook::from_stored(tradewarden_engine::ports::PaperBook {
            version: version + 1,
            cash: save.cash,
            positions: b.positions.clone(),
            quotes: b.quotes.clone(),
            known_client_order_ids: b.seen.clone(),
            orders,
        })
    }

    fn status(b: &PaperBook, id: &str) -> OrderStatus {
        b.order(id).unwrap().status
    }

    /// (order, quote, cash, position) -> (status, cash after, position after) or an error
    /// substring.
    type Case = (
        OrderRequest,
        Option<Decimal>,
        Decimal,
        PaperPosition,
        Result<(OrderStatus, Decimal, PaperPosition), &'static str>,
    );

    #[test]
    fn fill_table() {
        use OrderStatus::{Accepted, Filled};
        use OrderType::*;
        use Side::*;
        let z = PaperPosition::default();
        let r = |side, t, qty, price| req("c", side, t, qty, price);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (r(Buy, Market, dec!(10), None), Some(dec!(100)), dec!(1000), z, Ok((Filled, dec!(0), pos(dec!(10), dec!(100))))),
            (r(Buy, Market, dec!(11), None), Some(dec!(100)), dec!(1000), z, Err("insufficient cash")),
            (r(Buy, Market, dec!(1), None), None, dec!(1000), z, Err("no quote")),
            (r(Buy, Market, dec!(0), None), Some(dec!(1)), dec!(1000), z, Err("quantity")),
            (r(Sell, Market, dec!(5), None), Some(dec!(100)), dec!(0), pos(dec!(10), dec!(90)), Ok((Filled, dec!(500), pos(dec!(5), dec!(90))))),
            // opening a short needs cash covering it
            (r(Sell, Market, dec!(5), None), Some(dec!(100)), dec!(400), z, Err("short")),
            (r(Sell, Market, dec!(5), None), Some(dec!(100)), dec!(500), z, Ok((Filled, dec!(1000), pos(dec!(-5), dec!(100))))),
            (r(Buy, Limit, dec!(1), None), Some(dec!(100)), dec!(1000), z, Err("limit_price")),
            (r(Sell, Stop, dec!(1), None), Some(dec!(100)), dec!(1000), z, Err("stop_price")),
            // limits: a buy at or above the quote, a sell at or below it, fill at the quote
            (r(Buy, Limit, dec!(1), Some(dec!(90))), Some(dec!(100)), dec!(1000), z, Ok((Accepted, dec!(1000), z))),
            (r(Buy, Limit, dec!(1), Some(dec!(100))), Some(dec!(100)), dec!(1000), z, Ok((Filled, dec!(900), pos(dec!(1), dec!(100))))),
            (r(Buy, Limit, dec!(1), Some(dec!(110))), Some(dec!(100)), dec!(1000), z, Ok((Filled, dec!(900), pos(dec!(1), dec!(100))))),
            (r(Sell, Limit, dec!(1), Some(dec!(110))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Accepted, dec!(0), pos(dec!(1), dec!(80))))),
            (r(Sell, Limit, dec!(1), Some(dec!(100))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Filled, dec!(100), z))),
            (r(Sell, Limit, dec!(1), Some(dec!(90))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Filled, dec!(100), z))),
            // stops: a sell once the quote is at or below it, a buy at or above it
            (r(Sell, Stop, dec!(1), Some(dec!(90))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Accepted, dec!(0), pos(dec!(1), dec!(80))))),
            (r(Sell, Stop, dec!(1), Some(dec!(100))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Filled, dec!(100), z))),
            (r(Sell, Stop, dec!(1), Some(dec!(110))), Some(dec!(100)), dec!(0), pos(dec!(1), dec!(80)), Ok((Filled, dec!(100), z))),
            (r(Buy, Stop, dec!(1), Some(dec!(110))), Some(dec!(100)), dec!(500), pos(dec!(-1), dec!(120)), Ok((Accepted, dec!(500), pos(dec!(-1), dec!(120))))),
            (r(Buy, Stop, dec!(1), Some(dec!(100))), Some(dec!(100)), dec!(500), pos(dec!(-1), dec!(120)), Ok((Filled, dec!(400), z))),
            (r(Buy, Stop, dec!(1), Some(dec!(90))), Some(dec!(100)), dec!(500), pos(dec!(-1), dec!(120)), Ok((Filled, dec!(400), z))),
        ];
        for (order, quote, cash, p, want) in cases {
            let got = fill(&order, quote, cash, p);
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

    #[test]
    fn a_position_keeps_its_average_price() {
        // Catches: an average moved by a reduction, a short's average from the wrong side,
        // a flip that keeps the old average.
        #[rustfmt::skip]
        let cases = [
            ("open long", pos(dec!(0), dec!(0)), dec!(10), dec!(100), pos(dec!(10), dec!(100))),
            ("grow long", pos(dec!(10), dec!(100)), dec!(10), dec!(110), pos(dec!(20), dec!(105))),
            ("reduce long", pos(dec!(20), dec!(105)), dec!(-5), dec!(120), pos(dec!(15), dec!(105))),
            ("close long", pos(dec!(15), dec!(105)), dec!(-15), dec!(90), pos(dec!(0), dec!(0))),
            ("flip long to short", pos(dec!(5), dec!(100)), dec!(-8), dec!(90), pos(dec!(-3), dec!(90))),
            ("open short", pos(dec!(0), dec!(0)), dec!(-10), dec!(100), pos(dec!(-10), dec!(100))),
            ("grow short", pos(dec!(-10), dec!(100)), dec!(-30), dec!(80), pos(dec!(-40), dec!(85))),
            ("cover part", pos(dec!(-40), dec!(85)), dec!(10), dec!(70), pos(dec!(-30), dec!(85))),
            ("flip short to long", pos(dec!(-3), dec!(90)), dec!(5), dec!(95), pos(dec!(2), dec!(95))),
            ("thirds", pos(dec!(1), dec!(1)), dec!(2), dec!(2), pos(dec!(3), dec!(1.66666667))),
        ];
        for (what, before, delta, price, want) in cases {
            assert_eq!(position_after_fill(before, delta, price), want, "{what}");
        }
    }

    /// One resting order and quotes that reach it, stop at it or pass it, on a long and on
    /// a short: (what, position, order, quote, whether it fills).
    type Crossing = (&'static str, PaperPosition, OrderRequest, Decimal, bool);

    #[test]
    fn a_new_quote_fills_the_resting_orders_it_crosses_at_the_quote() {
        use OrderType::{Limit, Stop};
        use Side::{Buy, Sell};
        let long = pos(dec!(10), dec!(100));
        let short = pos(dec!(-10), dec!(100));
        let flat = PaperPosition::default();
        #[rustfmt::skip]
        let cases: Vec<Crossing> = vec![
            // a long's take profit (sell limit 110) and stop (sell stop 95)
            ("long tp not reached", long, req("o", Sell, Limit, dec!(10), Some(dec!(110))), dec!(109.99), false),
            ("long tp at", long, req("o", Sell, Limit, dec!(10), Some(dec!(110))), dec!(110), true),
            ("long tp through", long, req("o", Sell, Limit, dec!(10), Some(dec!(110))), dec!(112), true),
            ("long sl not reached", long, req("o", Sell, Stop, dec!(10), Some(dec!(95))), dec!(95.01), false),
            ("long sl at", long, req("o", Sell, Stop, dec!(10), Some(dec!(95))), dec!(95), true),
            ("long sl through", long, req("o", Sell, Stop, dec!(10), Some(dec!(95))), dec!(90), true),
            // a short's take profit (buy limit 90) and stop (buy stop 105)
            ("short tp not reached", short, req("o", Buy, Limit, dec!(10), Some(dec!(90))), dec!(90.01), false),
            ("short tp at", short, req("o", Buy, Limit, dec!(10), Some(dec!(90))), dec!(90), true),
            ("short tp through", short, req("o", Buy, Limit, dec!(10), Some(dec!(90))), dec!(85), true),
            ("short sl not reached", short, req("o", Buy, Stop, dec!(10), Some(dec!(105))), dec!(104.99), false),
            ("short sl at", short, req("o", Buy, Stop, dec!(10), Some(dec!(105))), dec!(105), true),
            ("short sl through", short, req("o", Buy, Stop, dec!(10), Some(dec!(105))), dec!(110), true),
            // entries that rest: a buy limit below the market, a sell stop below it
            ("buy limit entry", flat, req("o", Buy, Limit, dec!(10), Some(dec!(98))), dec!(97), true),
            ("sell stop entry", flat, req("o", Sell, Stop, dec!(10), Some(dec!(98))), dec!(98.5), false),
        ];
        for (what, position, order, price, fills) in cases {
            let mut b = book(dec!(10000), position, dec!(100));
            b.execute(std::slice::from_ref(&order), at(1));
            assert_eq!(
                status(&b, "o"),
                OrderStatus::Accepted,
                "{what}: rests first"
            );
            let mut b = reloaded(&b, 1);
            assert_eq!(b.take_quotes(&[quote(price, 2)], at(2)), 1, "{what}");
            let o = b.order("o").unwrap().clone();
            if !fills {
                assert_eq!(o.status, OrderStatus::Accepted, "{what}");
                assert_eq!(b.cash, dec!(10000), "{what}");
                assert!(b.changes(1).updates.is_empty(), "{what}");
                continue;
            }
            assert_eq!(
                (o.status, o.filled_quantity, o.avg_fill_price),
                (OrderStatus::Filled, dec!(10), Some(price)),
                "{what}: fills whole at the quote"
            );
            let signed = if order.side == Side::Buy {
                dec!(10)
            } else {
                dec!(-10)
            };
            assert_eq!(b.cash, dec!(10000) - signed * price, "{what}: cash");
            assert_eq!(
                b.positions["AAPL"].quantity,
                position.quantity + signed,
                "{what}: position"
            );
            let save = b.changes(1);
            assert_eq!(save.updates.len(), 1, "{what}: the fill is saved");
            assert_eq!(save.quotes, vec![quote(price, 2)], "{what}: the quote too");
        }
    }

    #[test]
    fn one_cancels_other_when_a_leg_fills_on_a_quote_long_and_short() {
        // Catches: both legs filling (a long turned short), or a sibling left resting.
        use OrderType::{Limit, Stop};
        #[rustfmt::skip]
        let cases = [
            ("long, take profit", pos(dec!(10), dec!(100)), Side::Sell, dec!(110), dec!(95), dec!(111), "tp", "sl"),
            ("long, stop", pos(dec!(10), dec!(100)), Side::Sell, dec!(110), dec!(95), dec!(94), "sl", "tp"),
            ("short, take profit", pos(dec!(-10), dec!(100)), Side::Buy, dec!(90), dec!(105), dec!(89), "tp", "sl"),
            ("short, stop", pos(dec!(-10), dec!(100)), Side::Buy, dec!(90), dec!(105), dec!(106), "sl", "tp"),
        ];
        for (what, position, side, tp, sl, price, fills, canceled) in cases {
            let mut b = book(dec!(5000), position, dec!(100));
            b.execute(
                &[
                    in_group(req("tp", side, Limit, dec!(10), Some(tp)), "g"),
                    in_group(req("sl", side, Stop, dec!(10), Some(sl)), "g"),
                ],
                at(1),
            );
            let mut b = reloaded(&b, 1);
            b.take_quotes(&[quote(price, 2)], at(2));
            assert_eq!(status(&b, fills), OrderStatus::Filled, "{what}");
            let sibling = b.order(canceled).unwrap();
            assert_eq!(sibling.status, OrderStatus::Canceled, "{what}");
            assert_eq!(
                sibling.reason.as_deref(),
                Some(format!("one-cancels-other: {fills} filled").as_str()),
                "{what}"
            );
            assert!(b.positions["AAPL"].quantity.is_zero(), "{what}: flat");
            assert_eq!(b.changes(1).updates.len(), 2, "{what}: both saved");
        }
    }

    #[test]
    fn one_cancels_other_holds_when_a_leg_fills_as_it_is_sent() {
        use OrderType::{Limit, Stop};
        let long = pos(dec!(10), dec!(100));
        // The take profit is already through the market: it fills at once, so the stop sent
        // after it in the batch is canceled, and one sent in a later batch too.
        let mut b = book(dec!(0), long, dec!(120));
        let answers = b.execute(
            &[
                in_group(req("tp", Side::Sell, Limit, dec!(10), Some(dec!(110))), "g"),
                in_group(req("sl", Side::Sell, Stop, dec!(10), Some(dec!(95))), "g"),
            ],
            at(1),
        );
        let states: Vec<OrderStatus> = answers
            .iter()
            .map(|a| match a {
                Answer::Decided(r) => r.status,
                Answer::DuplicateId(_) => panic!("{a:?}"),
            })
            .collect();
        assert_eq!(states, [OrderStatus::Filled, OrderStatus::Canceled]);
        let mut b = reloaded(&b, 1);
        b.execute(
            &[in_group(
                req("sl2", Side::Sell, Stop, dec!(10), Some(dec!(95))),
                "g",
            )],
            at(2),
        );
        assert_eq!(status(&b, "sl2"), OrderStatus::Canceled);
        // The stop sent first rests; the take profit sent after it fills and cancels it, in
        // the answers of the same batch.
        let mut b = book(dec!(0), long, dec!(120));
        let answers = b.execute(
            &[
                in_group(req("sl", Side::Sell, Stop, dec!(10), Some(dec!(95))), "g"),
                in_group(req("tp", Side::Sell, Limit, dec!(10), Some(dec!(110))), "g"),
            ],
            at(1),
        );
        assert!(
            matches!(&answers[0], Answer::Decided(r) if r.status == OrderStatus::Canceled),
            "{answers:?}"
        );
        assert_eq!(b.positions["AAPL"].quantity, dec!(0));
        // A group is of one symbol.
        let mut other = in_group(req("x", Side::Sell, Stop, dec!(1), Some(dec!(1))), "g");
        other.symbol = "MSFT".into();
        b.quotes.insert("MSFT".into(), quote(dec!(5), 0));
        b.execute(&[other], at(3));
        let x = b.order("x").unwrap();
        assert_eq!(x.status, OrderStatus::Rejected);
        assert!(x.reason.as_deref().unwrap().contains("is of AAPL"), "{x:?}");
    }

    #[test]
    fn cancel_ends_a_resting_order_and_reports_an_ended_one_as_it_is() {
        use OrderType::{Limit, Market};
        let mut b = book(dec!(10000), PaperPosition::default(), dec!(100));
        b.execute(
            &[
                req("rest", Side::Buy, Limit, dec!(1), Some(dec!(90))),
                req("done", Side::Buy, Market, dec!(1), None),
            ],
            at(1),
        );
        let mut b = reloaded(&b, 1);
        let canceled = b.cancel("rest", at(2)).unwrap();
        assert_eq!(canceled.record.status, OrderStatus::Canceled);
        assert_eq!(canceled.broker_order_id, "paper-0");
        let filled = b.cancel("done", at(2)).unwrap();
        assert_eq!(
            (filled.record.status, filled.record.filled_quantity),
            (OrderStatus::Filled, dec!(1))
        );
        assert!(b.cancel("never", at(2)).is_none());
        let save = b.changes(1);
        assert_eq!(
            save.updates.len(),
            1,
            "only the resting order moved: {save:?}"
        );
        // A canceled order no longer fills, and canceling it again changes nothing.
        b.take_quotes(&[quote(dec!(80), 3)], at(3));
        assert_eq!(status(&b, "rest"), OrderStatus::Canceled);
        assert_eq!(b.cancel("rest", at(4)).unwrap().record.at, at(2));
    }

    #[test]
    fn quotes_apply_in_time_order_and_an_older_one_changes_nothing() {
        use OrderType::Limit;
        let mut b = book(dec!(0), pos(dec!(10), dec!(100)), dec!(100));
        b.execute(
            &[req("tp", Side::Sell, Limit, dec!(10), Some(dec!(110)))],
            at(1),
        );
        let mut b = reloaded(&b, 1);
        // Older than the stored quote: ignored, even though it crosses.
        assert_eq!(b.take_quotes(&[quote(dec!(200), -1)], at(2)), 0);
        assert_eq!(status(&b, "tp"), OrderStatus::Accepted);
        // A batch whose path went through 111 before ending at 105 fills at 111.
        let path = [
            quote(dec!(105), 9),
            quote(dec!(111), 5),
            quote(dec!(101), 3),
        ];
        assert_eq!(b.take_quotes(&path, at(3)), 1);
        let tp = b.order("tp").unwrap();
        assert_eq!(
            (tp.status, tp.avg_fill_price),
            (OrderStatus::Filled, Some(dec!(111)))
        );
        assert_eq!(b.quotes["AAPL"].price, dec!(105), "the newest is stored");
        assert_eq!(b.cash, dec!(1110));
    }

    #[test]
    fn a_crossed_order_the_account_cannot_pay_is_rejected() {
        use OrderType::Limit;
        let mut b = book(dec!(500), PaperPosition::default(), dec!(100));
        b.execute(
            &[req("buy", Side::Buy, Limit, dec!(10), Some(dec!(90)))],
            at(1),
        );
        let mut b = reloaded(&b, 1);
        b.take_quotes(&[quote(dec!(85), 2)], at(2));
        let o = b.order("buy").unwrap();
        assert_eq!(o.status, OrderStatus::Rejected);
        assert!(
            o.reason.as_deref().unwrap().contains("insufficient cash"),
            "{o:?}"
        );
        assert_eq!(b.cash, dec!(500));
    }

    #[test]
    fn a_round_trip_leaves_its_profit_in_cash_long_and_short() {
        use OrderType::{Limit, Market};
        // (what, entry side, exit limit, exit quote, cash after)
        let cases = [
            ("long up", Side::Buy, dec!(110), dec!(110), dec!(10100)),
            ("short down", Side::Sell, dec!(90), dec!(90), dec!(10100)),
        ];
        for (what, side, limit, price, cash) in cases {
            let exit_side = if side == Side::Buy {
                Side::Sell
            } else {
                Side::Buy
            };
            let mut b = book(dec!(10000), PaperPosition::default(), dec!(100));
            b.execute(
                &[
                    req("in", side, Market, dec!(10), None),
                    req("out", exit_side, Limit, dec!(10), Some(limit)),
                ],
                at(1),
            );
            assert_eq!(b.positions["AAPL"].avg_price, dec!(100), "{what}");
            assert_eq!(b.balance(), dec!(10000), "{what}: equity at entry");
            let mut b = reloaded(&b, 1);
            b.take_quotes(&[quote(price, 2)], at(2));
            assert_eq!((b.cash, b.balance()), (cash, cash), "{what}");
            assert!(b.positions["AAPL"].quantity.is_zero(), "{what}");
        }
    }
}
