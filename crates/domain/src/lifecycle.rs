//! A position after its entry: what its orders' states mean for its transaction (reference
//! §6.2), which waiting exit legs fire or are canceled (§6.3), the sibling of a filled leg
//! (one-cancels-other), and the exit structure a take profit and a stop loss call for.
//!
//! Pure decisions over stored orders; the engine applies them. The original's quirks are
//! fixed here: direction comes from the transaction's side, roles are explicit (no comment
//! parsing), and a leg chained on an exit leg that filled is canceled, never fired (the
//! position it was to protect is gone).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::order::{InstallationId, Order, OrderRole, OrderStatus, OrderType, Side};
use crate::transaction::{Transaction, TransactionStatus};

/// Why a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum CloseReason {
    /// The take-profit leg filled.
    TakeProfit,
    /// The stop-loss leg filled.
    StopLoss,
    /// A close order that an open_positions rule sent filled.
    Rule,
    /// A close order sent by hand (`tradewarden close`) filled.
    ManualClose,
    /// The broker no longer holds the position.
    PositionNotAtBroker,
    /// The entry ended (canceled, rejected, expired) without any execution.
    EntryOrdersTerminalNoExecution,
}

wire_names!(CloseReason);

/// The side that closes a position opened on `side`.
pub fn closing_side(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

/// Whether an order is one of a position's exits (take profit, stop loss or close).
pub fn is_exit(role: OrderRole) -> bool {
    matches!(
        role,
        OrderRole::TakeProfit | OrderRole::StopLoss | OrderRole::Close
    )
}

/// Whether an order's fills grow the position: its entry, and orders that add to it.
pub fn is_opening(role: OrderRole) -> bool {
    matches!(role, OrderRole::Entry | OrderRole::Add)
}

/// Whether an exit order may still execute or be sent: it protects (or closes) the position.
pub fn is_live(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Pending
            | OrderStatus::WaitingTrigger
            | OrderStatus::Submitting
            | OrderStatus::Accepted
            | OrderStatus::PartiallyFilled
    )
}

/// What a refresh changes on a transaction, from its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionChange {
    /// WAITING → OPENED: the entry executed.
    Opened {
        open_price: Decimal,
        quantity: Decimal,
        opened_at: DateTime<Utc>,
    },
    /// The open quantity moved (a later partial fill of the entry, an order that added to the
    /// position, or an exit's partial fill); `open_price` is the average fill of everything
    /// that opened it.
    Quantity {
        quantity: Decimal,
        open_price: Decimal,
    },
    /// → CLOSED.
    Closed {
        close_price: Option<Decimal>,
        closed_at: DateTime<Utc>,
        reason: CloseReason,
    },
}

/// The quantity-weighted average fill price of `orders`, and their filled quantity.
fn average_fill<'a>(orders: impl Iterator<Item = &'a Order>) -> (Decimal, Option<Decimal>) {
    let mut quantity = Decimal::ZERO;
    let mut value = Decimal::ZERO;
    for o in orders.filter(|o| o.filled_quantity > Decimal::ZERO) {
        quantity += o.filled_quantity;
        if let Some(p) = o.avg_fill_price {
            value += p * o.filled_quantity;
        }
    }
    if quantity.is_zero() || value.is_zero() {
        return (quantity, None);
    }
    (quantity, Some((value / quantity).round_dp(8).normalize()))
}

/// The reason a close of `exits` (the filled exit orders) is recorded with: the role of the
/// exit that filled last (the newest order: after a partial close of an instrument-share
/// decrease, the leg that took the rest); a close order's reason is the one the transaction
/// was put CLOSING with (`requested`), else `rule`.
fn close_reason_of(exits: &[&Order], requested: Option<CloseReason>) -> CloseReason {
    let top = exits
        .iter()
        .max_by_key(|o| o.id)
        .map(|o| o.role)
        .unwrap_or(OrderRole::Close);
    match top {
        OrderRole::TakeProfit => CloseReason::TakeProfit,
        OrderRole::StopLoss => CloseReason::StopLoss,
        _ => requested.unwrap_or(CloseReason::Rule),
    }
}

/// What the transaction's orders say about it now (reference §6.2, one rule each):
/// - WAITING whose entries executed → OPENED at their average fill;
/// - WAITING whose entries all ended without any execution → CLOSED
///   (`entry_orders_terminal_no_execution`);
/// - OPENED or CLOSING whose exits executed the whole open quantity → CLOSED at the exits'
///   average fill, the reason from the exit that filled;
/// - an open quantity that moved → its new value.
///
/// `requested` is the reason stored when the transaction was put CLOSING (a rule or a person).
/// None when nothing changes; a CLOSED or FAILED transaction never changes.
pub fn derive_transaction(
    txn: &Transaction,
    orders: &[Order],
    requested: Option<CloseReason>,
    now: DateTime<Utc>,
) -> Option<TransactionChange> {
    if txn.status.is_terminal() {
        return None;
    }
    let entries: Vec<&Order> = orders
        .iter()
        .filter(|o| o.role == OrderRole::Entry)
        .collect();
    let (entered, entry_price) = average_fill(orders.iter().filter(|o| is_opening(o.role)));
    if entered.is_zero() {
        let all_ended = !entries.is_empty() && entries.iter().all(|o| o.status.is_terminal());
        return all_ended.then_some(TransactionChange::Closed {
            close_price: None,
            closed_at: now,
            reason: CloseReason::EntryOrdersTerminalNoExecution,
        });
    }
    let exits: Vec<&Order> = orders
        .iter()
        .filter(|o| is_exit(o.role) && o.filled_quantity > Decimal::ZERO)
        .collect();
    let (exited, exit_price) = average_fill(exits.iter().copied());
    if exited >= entered {
        return Some(TransactionChange::Closed {
            close_price: exit_price,
            closed_at: now,
            reason: close_reason_of(&exits, requested),
        });
    }
    let open = entered - exited;
    let open_price = entry_price.unwrap_or(txn.open_price.unwrap_or_default());
    if txn.status == TransactionStatus::Waiting {
        return Some(TransactionChange::Opened {
            open_price,
            quantity: open,
            opened_at: now,
        });
    }
    (open != txn.quantity).then_some(TransactionChange::Quantity {
        quantity: open,
        open_price,
    })
}

/// What to do with a leg waiting for its parent (reference §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegStep {
    /// Send it now, for this quantity.
    Fire { quantity: Decimal },
    /// Not yet.
    Wait,
    /// It can never fire: cancel it.
    Cancel,
    /// It cannot be decided: the parent is missing, or there is nothing to protect.
    Error(String),
}

/// Decides a `waiting_trigger` leg from its parent. `open_quantity` is the transaction's open
/// quantity now (what a replacement leg protects).
///
/// | parent | leg |
/// |---|---|
/// | an entry that reached the trigger, or filled | fire, for the entry's filled quantity |
/// | an entry partially filled | wait |
/// | an entry canceled or expired after a partial fill | fire, for what was filled |
/// | an entry that ended without any execution | cancel |
/// | an exit leg that reached the trigger (canceled: the leg it replaces) | fire, for the open quantity |
/// | an exit leg that filled (the position is closed) | cancel |
/// | an exit leg that ended otherwise (rejected, expired, error) | fire: protection beats none |
/// | anything else | wait |
pub fn classify_leg(leg: &Order, parent: Option<&Order>, open_quantity: Decimal) -> LegStep {
    let Some(parent) = parent else {
        return LegStep::Error(format!(
            "leg {} waits for order {:?}, which does not exist",
            leg.id, leg.parent_order_id
        ));
    };
    let Some(trigger) = leg.trigger_status else {
        return LegStep::Wait;
    };
    let fire = |quantity: Decimal| {
        if quantity > Decimal::ZERO {
            LegStep::Fire { quantity }
        } else {
            LegStep::Error(format!("leg {} has nothing to protect", leg.id))
        }
    };
    if parent.role == OrderRole::Entry {
        return match parent.status {
            OrderStatus::Filled => fire(parent.filled_quantity),
            s if s == trigger => fire(parent.filled_quantity),
            OrderStatus::PartiallyFilled => LegStep::Wait,
            s if s.is_terminal() && parent.filled_quantity > Decimal::ZERO => {
                fire(parent.filled_quantity)
            }
            s if s.is_terminal() => LegStep::Cancel,
            _ => LegStep::Wait,
        };
    }
    match parent.status {
        OrderStatus::Filled | OrderStatus::PartiallyFilled => LegStep::Cancel,
        s if s == trigger || s.is_terminal() => fire(open_quantity),
        _ => LegStep::Wait,
    }
}

/// The exit orders of a transaction to cancel because `filled` (one of its exits) executed:
/// every other live exit (one-cancels-other). A close order in flight is kept: it was asked
/// for and closes what is left.
pub fn siblings_to_cancel<'a>(filled: &Order, orders: &'a [Order]) -> Vec<&'a Order> {
    orders
        .iter()
        .filter(|o| o.id != filled.id && o.transaction_id == filled.transaction_id)
        .filter(|o| matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss))
        .filter(|o| is_live(o.status))
        .collect()
}

/// One exit leg to place: a limit take profit or a stop stop-loss on the closing side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSpec {
    pub role: OrderRole,
    pub side: Side,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// The structure's generation: 1 for the first legs, one more for each replacement.
    pub generation: u32,
}

/// The legs of one exit structure for a position on `side`: a limit take profit at
/// `take_profit` and a stop at `stop_loss`, both on the closing side; one each at most.
pub fn exit_legs(
    side: Side,
    take_profit: Option<Decimal>,
    stop_loss: Option<Decimal>,
    generation: u32,
) -> Vec<LegSpec> {
    let close = closing_side(side);
    let tp = take_profit.map(|p| LegSpec {
        role: OrderRole::TakeProfit,
        side: close,
        order_type: OrderType::Limit,
        limit_price: Some(p),
        stop_price: None,
        generation,
    });
    let sl = stop_loss.map(|p| LegSpec {
        role: OrderRole::StopLoss,
        side: close,
        order_type: OrderType::Stop,
        limit_price: None,
        stop_price: Some(p),
        generation,
    });
    tp.into_iter().chain(sl).collect()
}

/// A leg's deterministic client order id: `tw-{installation}-{txn}-tp-{n}` /
/// `…-sl-{n}` (and `…-close-{n}`, `…-add-{n}` for closes and additions), like the entry's `tw-{installation}-{txn}-entry` (B3: a crash between storing
/// and sending is settled by looking it up).
pub fn leg_client_order_id(
    installation: &InstallationId,
    transaction_id: i64,
    role: OrderRole,
    generation: u32,
) -> String {
    let tag = match role {
        OrderRole::TakeProfit => "tp",
        OrderRole::StopLoss => "sl",
        OrderRole::Close => "close",
        OrderRole::Entry => "entry",
        OrderRole::Add => "add",
    };
    format!(
        "tw-{}-{transaction_id}-{tag}-{generation}",
        installation.as_str()
    )
}

/// The generation of the next exit structure of a transaction whose orders are `orders`.
pub fn next_generation(orders: &[Order]) -> u32 {
    orders
        .iter()
        .filter(|o| matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss))
        .filter_map(|o| o.client_order_id.rsplit('-').next()?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn at() -> DateTime<Utc> {
        "2026-11-29T12:00:00Z".parse().unwrap()
    }

    fn txn(side: Side, status: TransactionStatus, quantity: Decimal) -> Transaction {
        Transaction {
            id: 7,
            expert_id: 1,
            account: "paper".into(),
            symbol: "AAPL".into(),
            side,
            quantity,
            status,
            open_price: Some(dec!(100)),
            close_price: None,
            take_profit: None,
            stop_loss: None,
            opened_at: None,
            closed_at: None,
            close_reason: None,
            created_at: at(),
        }
    }

    fn order(
        id: i64,
        role: OrderRole,
        status: OrderStatus,
        filled: Decimal,
        price: Option<Decimal>,
    ) -> Order {
        Order {
            id,
            transaction_id: 7,
            expert_id: 1,
            account: "paper".into(),
            symbol: "AAPL".into(),
            side: Side::Buy,
            role,
            order_type: OrderType::Market,
            quantity: dec!(10),
            filled_quantity: filled,
            limit_price: None,
            stop_price: None,
            avg_fill_price: price,
            status,
            client_order_id: format!("tw-x-7-{}-1", role.as_str()),
            broker_order_id: None,
            parent_order_id: None,
            trigger_status: None,
            recommendation_id: None,
            created_at: at(),
        }
    }

    fn leg(id: i64, role: OrderRole, parent: i64, trigger: OrderStatus) -> Order {
        Order {
            parent_order_id: Some(parent),
            trigger_status: Some(trigger),
            ..order(id, role, OrderStatus::WaitingTrigger, dec!(0), None)
        }
    }

    use OrderRole::{Add, Close, Entry, StopLoss, TakeProfit};
    use OrderStatus::*;
    use TransactionStatus::{Closing, Opened, Waiting};

    #[test]
    fn a_transaction_follows_its_orders() {
        let filled = |id, role, qty, price| order(id, role, Filled, qty, Some(price));
        let cases: Vec<(
            &str,
            Transaction,
            Vec<Order>,
            Option<CloseReason>,
            Option<TransactionChange>,
        )> = vec![
            (
                "entry accepted: nothing",
                txn(Side::Buy, Waiting, dec!(10)),
                vec![order(1, Entry, Accepted, dec!(0), None)],
                None,
                None,
            ),
            (
                "entry filled: opened at the fill",
                txn(Side::Buy, Waiting, dec!(10)),
                vec![filled(1, Entry, dec!(10), dec!(101.5))],
                None,
                Some(TransactionChange::Opened {
                    open_price: dec!(101.5),
                    quantity: dec!(10),
                    opened_at: at(),
                }),
            ),
            (
                "entry partly filled: opened for what filled",
                txn(Side::Buy, Waiting, dec!(10)),
                vec![order(1, Entry, PartiallyFilled, dec!(4), Some(dec!(100)))],
                None,
                Some(TransactionChange::Opened {
                    open_price: dec!(100),
                    quantity: dec!(4),
                    opened_at: at(),
                }),
            ),
            (
                "entry rejected: closed without execution",
                txn(Side::Buy, Waiting, dec!(10)),
                vec![order(1, Entry, Rejected, dec!(0), None)],
                None,
                Some(TransactionChange::Closed {
                    close_price: None,
                    closed_at: at(),
                    reason: CloseReason::EntryOrdersTerminalNoExecution,
                }),
            ),
            (
                "take profit filled: closed, take_profit",
                txn(Side::Buy, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, TakeProfit, dec!(10), dec!(110)),
                    leg(3, StopLoss, 1, Filled),
                ],
                None,
                Some(TransactionChange::Closed {
                    close_price: Some(dec!(110)),
                    closed_at: at(),
                    reason: CloseReason::TakeProfit,
                }),
            ),
            (
                "stop filled on a short: closed, stop_loss",
                txn(Side::Sell, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, StopLoss, dec!(10), dec!(105)),
                ],
                None,
                Some(TransactionChange::Closed {
                    close_price: Some(dec!(105)),
                    closed_at: at(),
                    reason: CloseReason::StopLoss,
                }),
            ),
            (
                "close filled: the reason it was requested with",
                txn(Side::Buy, Closing, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, Close, dec!(10), dec!(99)),
                ],
                Some(CloseReason::ManualClose),
                Some(TransactionChange::Closed {
                    close_price: Some(dec!(99)),
                    closed_at: at(),
                    reason: CloseReason::ManualClose,
                }),
            ),
            (
                "close filled without a stored reason: rule",
                txn(Side::Buy, Closing, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, Close, dec!(10), dec!(99)),
                ],
                None,
                Some(TransactionChange::Closed {
                    close_price: Some(dec!(99)),
                    closed_at: at(),
                    reason: CloseReason::Rule,
                }),
            ),
            (
                "exit partly filled: the open quantity shrinks",
                txn(Side::Buy, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    order(2, StopLoss, PartiallyFilled, dec!(3), Some(dec!(95))),
                ],
                None,
                Some(TransactionChange::Quantity {
                    quantity: dec!(7),
                    open_price: dec!(100),
                }),
            ),
            (
                "an addition filled: the quantity grows, the open price averages",
                txn(Side::Buy, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, Add, dec!(30), dec!(120)),
                ],
                None,
                Some(TransactionChange::Quantity {
                    quantity: dec!(40),
                    open_price: dec!(115),
                }),
            ),
            (
                "a partial close, then the stop took the rest: closed by the stop",
                txn(Side::Buy, Opened, dec!(4)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, Close, dec!(6), dec!(101)),
                    filled(3, StopLoss, dec!(4), dec!(95)),
                ],
                None,
                Some(TransactionChange::Closed {
                    close_price: Some(dec!(98.6)),
                    closed_at: at(),
                    reason: CloseReason::StopLoss,
                }),
            ),
            (
                "an addition refused: nothing changes, the position stays",
                txn(Side::Buy, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    order(2, Add, Rejected, dec!(0), None),
                ],
                None,
                None,
            ),
            (
                "a partial close filled: the quantity shrinks, the open price stays",
                txn(Side::Buy, Opened, dec!(40)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    filled(2, Add, dec!(30), dec!(120)),
                    filled(3, Close, dec!(25), dec!(130)),
                ],
                None,
                Some(TransactionChange::Quantity {
                    quantity: dec!(15),
                    open_price: dec!(115),
                }),
            ),
            (
                "opened and unchanged: nothing",
                txn(Side::Buy, Opened, dec!(10)),
                vec![
                    filled(1, Entry, dec!(10), dec!(100)),
                    leg(2, TakeProfit, 1, Filled),
                ],
                None,
                None,
            ),
            (
                "closed stays closed",
                txn(Side::Buy, TransactionStatus::Closed, dec!(10)),
                vec![filled(1, Entry, dec!(10), dec!(100))],
                None,
                None,
            ),
        ];
        for (name, t, orders, requested, want) in cases {
            assert_eq!(
                derive_transaction(&t, &orders, requested, at()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn waiting_legs_fire_wait_or_cancel_by_their_parent() {
        let entry = |status, filled| order(1, Entry, status, filled, Some(dec!(100)));
        let old_leg = |status, filled| order(1, StopLoss, status, filled, Some(dec!(95)));
        let cases: Vec<(&str, Order, Order, LegStep)> = vec![
            (
                "entry filled",
                leg(2, TakeProfit, 1, Filled),
                entry(Filled, dec!(10)),
                LegStep::Fire { quantity: dec!(10) },
            ),
            (
                "entry accepted",
                leg(2, TakeProfit, 1, Filled),
                entry(Accepted, dec!(0)),
                LegStep::Wait,
            ),
            (
                "entry partly filled",
                leg(2, TakeProfit, 1, Filled),
                entry(PartiallyFilled, dec!(4)),
                LegStep::Wait,
            ),
            (
                "entry canceled after a partial fill",
                leg(2, StopLoss, 1, Filled),
                entry(Canceled, dec!(4)),
                LegStep::Fire { quantity: dec!(4) },
            ),
            (
                "entry rejected",
                leg(2, StopLoss, 1, Filled),
                entry(Rejected, dec!(0)),
                LegStep::Cancel,
            ),
            (
                "entry expired",
                leg(2, StopLoss, 1, Filled),
                entry(Expired, dec!(0)),
                LegStep::Cancel,
            ),
            (
                "replaced leg canceled",
                leg(2, StopLoss, 1, Canceled),
                old_leg(Canceled, dec!(0)),
                LegStep::Fire { quantity: dec!(6) },
            ),
            (
                "replaced leg still working",
                leg(2, StopLoss, 1, Canceled),
                old_leg(Accepted, dec!(0)),
                LegStep::Wait,
            ),
            (
                "replaced leg filled: position gone",
                leg(2, StopLoss, 1, Canceled),
                old_leg(Filled, dec!(10)),
                LegStep::Cancel,
            ),
            (
                "replaced leg rejected: protect anyway",
                leg(2, StopLoss, 1, Canceled),
                old_leg(Rejected, dec!(0)),
                LegStep::Fire { quantity: dec!(6) },
            ),
        ];
        for (name, l, parent, want) in cases {
            assert_eq!(classify_leg(&l, Some(&parent), dec!(6)), want, "{name}");
        }
        let orphan = leg(2, StopLoss, 99, Filled);
        assert!(matches!(
            classify_leg(&orphan, None, dec!(6)),
            LegStep::Error(_)
        ));
        let empty = classify_leg(
            &leg(2, StopLoss, 1, Canceled),
            Some(&old_leg(Canceled, dec!(0))),
            dec!(0),
        );
        assert!(
            matches!(empty, LegStep::Error(_)),
            "nothing open: nothing to protect"
        );
    }

    #[test]
    fn a_filled_leg_cancels_its_live_siblings_only() {
        let orders = vec![
            order(1, Entry, Filled, dec!(10), Some(dec!(100))),
            order(2, TakeProfit, Filled, dec!(10), Some(dec!(110))),
            order(3, StopLoss, Accepted, dec!(0), None),
            leg(4, StopLoss, 3, Canceled),
            order(5, StopLoss, Canceled, dec!(0), None),
            order(6, Close, Submitting, dec!(0), None),
        ];
        let ids: Vec<i64> = siblings_to_cancel(&orders[1], &orders)
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(ids, vec![3, 4]);
    }

    #[test]
    fn exit_legs_sit_on_the_closing_side() {
        let long = exit_legs(Side::Buy, Some(dec!(110)), Some(dec!(93)), 1);
        assert_eq!(long.len(), 2);
        assert_eq!(
            (
                long[0].role,
                long[0].side,
                long[0].order_type,
                long[0].limit_price
            ),
            (TakeProfit, Side::Sell, OrderType::Limit, Some(dec!(110)))
        );
        assert_eq!(
            (
                long[1].role,
                long[1].side,
                long[1].order_type,
                long[1].stop_price
            ),
            (StopLoss, Side::Sell, OrderType::Stop, Some(dec!(93)))
        );
        let short = exit_legs(Side::Sell, None, Some(dec!(107)), 2);
        assert_eq!(short.len(), 1);
        assert_eq!((short[0].side, short[0].generation), (Side::Buy, 2));
        assert!(exit_legs(Side::Buy, None, None, 1).is_empty());
    }

    #[test]
    fn leg_ids_are_deterministic_and_count_generations() {
        let inst = InstallationId::parse("ab12").unwrap();
        assert_eq!(
            leg_client_order_id(&inst, 42, TakeProfit, 1),
            "tw-ab12-42-tp-1"
        );
        assert_eq!(
            leg_client_order_id(&inst, 42, StopLoss, 3),
            "tw-ab12-42-sl-3"
        );
        let mut a = order(2, TakeProfit, Canceled, dec!(0), None);
        a.client_order_id = leg_client_order_id(&inst, 7, TakeProfit, 1);
        let mut b = order(3, StopLoss, Accepted, dec!(0), None);
        b.client_order_id = leg_client_order_id(&inst, 7, StopLoss, 2);
        assert_eq!(next_generation(&[]), 1);
        assert_eq!(next_generation(&[a, b]), 3);
    }

    #[test]
    fn close_reasons_have_their_wire_names() {
        assert_eq!(CloseReason::TakeProfit.as_str(), "take_profit");
        assert_eq!(
            CloseReason::PositionNotAtBroker.as_str(),
            "position_not_at_broker"
        );
        assert_eq!(
            CloseReason::parse("entry_orders_terminal_no_execution"),
            Some(CloseReason::EntryOrdersTerminalNoExecution)
        );
    }
}
