//! Orders: entry, take-profit, stop-loss and close orders, and the order status machine.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Buy or sell. On a transaction, BUY means long and SELL means short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

wire_names!(Side);

/// What an order is for. Stored explicitly, never inferred from a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OrderRole {
    Entry,
    TakeProfit,
    StopLoss,
    Close,
}

wire_names!(OrderRole);

/// How the broker executes the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
}

wire_names!(OrderType);

/// The status of an order.
///
/// Legal transitions (anything else is an error; staying in the same status is a no-op):
///
/// | from | to |
/// |---|---|
/// | pending | submitting, canceled, error |
/// | waiting_trigger | submitting, pending, canceled, error |
/// | submitting | accepted, partially_filled, filled, rejected, canceled, expired, error |
/// | accepted | partially_filled, filled, canceled, expired, rejected |
/// | partially_filled | filled, canceled, expired |
/// | filled, canceled, rejected, expired, error | — (final) |
///
/// `submitting` means the order intent is committed and the broker may or may not have it:
/// it is settled by looking its `client_order_id` up at the broker, never by sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    WaitingTrigger,
    Submitting,
    Accepted,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
    Error,
}

/// A status change the table does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal order status transition {from} -> {to}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub to: &'static str,
}

impl OrderStatus {
    /// Every status, for tables and tests.
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::Pending,
        OrderStatus::WaitingTrigger,
        OrderStatus::Submitting,
        OrderStatus::Accepted,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
        OrderStatus::Error,
    ];

    /// The one way a status changes: returns the new status or why it may not.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus::*;
        let legal = self == to
            || matches!(
                (self, to),
                (Pending, Submitting | Canceled | Error)
                    | (WaitingTrigger, Submitting | Pending | Canceled | Error)
                    | (
                        Submitting,
                        Accepted | PartiallyFilled | Filled | Rejected | Canceled | Expired | Error
                    )
                    | (
                        Accepted,
                        PartiallyFilled | Filled | Canceled | Expired | Rejected
                    )
                    | (PartiallyFilled, Filled | Canceled | Expired)
            );
        if legal {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }

    /// No further change is possible. `filled` is final too, though its position lives on.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
                | OrderStatus::Error
        )
    }

    /// Ended without (further) execution: the original's TERMINAL group.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
                | OrderStatus::Error
        )
    }

    /// Some quantity executed.
    pub fn is_executed(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::PartiallyFilled)
    }
}

wire_names!(OrderStatus);

/// One order, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: i64,
    pub transaction_id: i64,
    pub expert_id: i64,
    /// The account the order goes to (extension of the documented shape).
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub role: OrderRole,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub avg_fill_price: Option<Decimal>,
    pub status: OrderStatus,
    pub client_order_id: String,
    pub broker_order_id: Option<String>,
    pub parent_order_id: Option<i64>,
    pub trigger_status: Option<OrderStatus>,
    pub recommendation_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// The deterministic client order id of an order intent: one per (transaction, role), so a
/// retry or a restart finds the same intent under the same id.
pub fn client_order_id(transaction_id: i64, role: OrderRole) -> String {
    format!("tw-{transaction_id}-{}", role.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn transition_table() {
        let legal = [
            (Pending, Submitting),
            (Pending, Canceled),
            (WaitingTrigger, Submitting),
            (Submitting, Filled),
            (Submitting, Accepted),
            (Submitting, Rejected),
            (Submitting, Error),
            (Accepted, PartiallyFilled),
            (PartiallyFilled, Filled),
            (Filled, Filled),
        ];
        let illegal = [
            (Filled, Canceled),
            (Rejected, Submitting),
            (Canceled, Filled),
            (Pending, Filled),
            (Accepted, Submitting),
            (Error, Submitting),
        ];
        for (a, b) in legal {
            assert_eq!(a.transition(b), Ok(b), "{a} -> {b}");
        }
        for (a, b) in illegal {
            assert!(a.transition(b).is_err(), "{a} -> {b} must be refused");
        }
    }

    #[test]
    fn final_statuses_go_nowhere() {
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in OrderStatus::ALL.into_iter().filter(|t| *t != from) {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(client_order_id(12, OrderRole::Entry), "tw-12-entry");
    }
}
