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
    /// Closes the position, or part of it (`decrease_instrument_share`).
    Close,
    /// Adds to an OPENED position on its side (`increase_instrument_share`): its fills grow
    /// the transaction's quantity and average into its open price.
    Add,
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
/// | canceled | partially_filled, filled (a late fill that raced the cancel) |
/// | expired | partially_filled, filled (a fill at expiry reported after it) |
/// | filled, rejected, error | — (final) |
///
/// `submitting` means the order intent is committed and the broker may or may not have it:
/// it is settled by looking its `client_order_id` up at the broker, never by sending again.
///
/// The edges out of `canceled` and `expired` are what a real broker produces, not what we
/// would like: a cancel (or the end of a day order) and an execution can cross at the
/// exchange, and Alpaca then reports the fill after having reported the order canceled or
/// expired. Refusing the fill would leave a position at the broker that the store does not
/// know about.
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

/// A status change the table does not allow (of an order or, with its upper-case names, of a
/// transaction).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {from} -> {to}")]
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

    /// The one way a status changes: returns the new status or why it may not. One legal
    /// edge a line; everything else is an error.
    #[rustfmt::skip]
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus::*;
        match (self, to) {
            (from, to) if from == to        => Ok(to), // a repeated answer changes nothing
            (Pending, Submitting)           => Ok(to),
            (Pending, Canceled)             => Ok(to),
            (Pending, Error)                => Ok(to),
            (WaitingTrigger, Submitting)    => Ok(to), // the parent filled
            (WaitingTrigger, Pending)       => Ok(to),
            (WaitingTrigger, Canceled)      => Ok(to), // the parent ended without a fill
            (WaitingTrigger, Error)         => Ok(to),
            (Submitting, Accepted)          => Ok(to),
            (Submitting, PartiallyFilled)   => Ok(to),
            (Submitting, Filled)            => Ok(to), // a market order filled at once
            (Submitting, Rejected)          => Ok(to),
            (Submitting, Canceled)          => Ok(to), // IOC and FOK
            (Submitting, Expired)           => Ok(to),
            (Submitting, Error)             => Ok(to), // never reached the broker
            (Accepted, PartiallyFilled)     => Ok(to),
            (Accepted, Filled)              => Ok(to),
            (Accepted, Canceled)            => Ok(to),
            (Accepted, Expired)             => Ok(to),
            (Accepted, Rejected)            => Ok(to), // a stop refused when it triggers
            (PartiallyFilled, Filled)       => Ok(to),
            (PartiallyFilled, Canceled)     => Ok(to), // the rest canceled, the fills stay
            (PartiallyFilled, Expired)      => Ok(to), // the rest expired, the fills stay
            (Canceled, PartiallyFilled)     => Ok(to), // real world: a late fill racing the cancel
            (Canceled, Filled)              => Ok(to), // real world: a late fill racing the cancel
            (Expired, PartiallyFilled)      => Ok(to), // real world: a fill at expiry, reported after it
            (Expired, Filled)               => Ok(to), // real world: a fill at expiry, reported after it
            _ => Err(IllegalTransition { from: self.as_str(), to: to.as_str() }),
        }
    }

    /// Every status from which `to` may be reached, `to` itself included (staying is a
    /// no-op, so a repeated answer, such as a further partial fill, is applied again).
    ///
    /// Derived from [`OrderStatus::transition`], never written twice: the store's
    /// `UPDATE … WHERE status IN (…)` lists these, so the database enforces the table and
    /// no concurrent writer can apply an illegal edge.
    pub fn predecessors(to: OrderStatus) -> Vec<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .filter(|from| from.transition(to).is_ok())
            .collect()
    }

    /// We expect no further change: the order ended. `filled` is final too, though its
    /// position lives on. A broker may still report a late fill on `canceled` or `expired`
    /// (see the table), which [`OrderStatus::transition`] accepts.
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

    /// The broker may have the order and still be executing it: `submitting` (its answer is
    /// not stored yet), `accepted`, `partially_filled`. A position it concerns may change at
    /// any moment.
    pub fn may_be_executing(self) -> bool {
        matches!(
            self,
            OrderStatus::Submitting | OrderStatus::Accepted | OrderStatus::PartiallyFilled
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

/// The id of one database (one installation of tradewarden), part of every client_order_id
/// it gives out: transaction ids restart at 1 in every database, so without it two databases
/// sharing a broker account (or one reset) would give the same ids, and settling would adopt
/// the other's order as ours. 1 to [`InstallationId::MAX_LEN`] lower-case ASCII letters or
/// digits; the store writes one at random, once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstallationId(String);

impl InstallationId {
    /// The longest installation id: with it, a client_order_id stays within
    /// [`CLIENT_ORDER_ID_MAX_LEN`] whatever the transaction id and role.
    pub const MAX_LEN: usize = 10;

    /// Checks a stored installation id.
    pub fn parse(s: &str) -> Result<Self, String> {
        let valid = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(InstallationId(s.to_string()))
        } else {
            Err(format!(
                "installation id must be 1 to {} lower-case letters or digits, got {s:?}",
                Self::MAX_LEN
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest client_order_id a broker takes (Alpaca's limit).
pub const CLIENT_ORDER_ID_MAX_LEN: usize = 48;

/// The deterministic client order id of an order intent, `tw-{installation}-{transaction}-{role}`:
/// one per (database, transaction, role), so a retry or a restart finds the same intent under
/// the same id, and no other database ever gives it out.
pub fn client_order_id(
    installation: &InstallationId,
    transaction_id: i64,
    role: OrderRole,
) -> String {
    format!(
        "tw-{}-{transaction_id}-{}",
        installation.as_str(),
        role.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    /// Every legal edge other than staying, written out once more on purpose: a changed
    /// table must change this list too.
    const LEGAL: [(OrderStatus, OrderStatus); 26] = [
        (Pending, Submitting),
        (Pending, Canceled),
        (Pending, Error),
        (WaitingTrigger, Submitting),
        (WaitingTrigger, Pending),
        (WaitingTrigger, Canceled),
        (WaitingTrigger, Error),
        (Submitting, Accepted),
        (Submitting, PartiallyFilled),
        (Submitting, Filled),
        (Submitting, Rejected),
        (Submitting, Canceled),
        (Submitting, Expired),
        (Submitting, Error),
        (Accepted, PartiallyFilled),
        (Accepted, Filled),
        (Accepted, Canceled),
        (Accepted, Expired),
        (Accepted, Rejected),
        (PartiallyFilled, Filled),
        (PartiallyFilled, Canceled),
        (PartiallyFilled, Expired),
        (Canceled, PartiallyFilled),
        (Canceled, Filled),
        (Expired, PartiallyFilled),
        (Expired, Filled),
    ];

    #[test]
    fn transition_table() {
        // Every pair: legal exactly when listed (or staying). Catches: a dropped or an added
        // edge, the late-fill edges included.
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let listed = from == to || LEGAL.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), listed, "{from} -> {to}");
            }
        }
        let illegal = [
            (Filled, Canceled),
            (Filled, PartiallyFilled),
            (Rejected, Submitting),
            (Rejected, Filled),
            (Error, Filled),
            (Pending, Filled),
            (Accepted, Submitting),
            (PartiallyFilled, Accepted),
            (Canceled, Accepted),
        ];
        for (a, b) in illegal {
            assert!(a.transition(b).is_err(), "{a} -> {b} must be refused");
        }
        assert_eq!(
            Filled.transition(Canceled).unwrap_err().to_string(),
            "illegal status transition filled -> canceled"
        );
    }

    #[test]
    fn a_real_broker_sequence_is_accepted() {
        // Alpaca: accepted, two partial fills, a cancel that loses the race, the last fill.
        let answers = [Accepted, PartiallyFilled, PartiallyFilled, Canceled, Filled];
        let mut status = Submitting;
        for next in answers {
            status = status.transition(next).unwrap();
        }
        assert_eq!(status, Filled);
    }

    #[test]
    fn final_statuses_only_take_late_fills() {
        for from in OrderStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in OrderStatus::ALL.into_iter().filter(|t| *t != from) {
                let late_fill = matches!(from, Canceled | Expired) && to.is_executed();
                assert_eq!(from.transition(to).is_ok(), late_fill, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn predecessors_agree_with_transition() {
        // For every pair, `from` is a predecessor of `to` exactly when the edge is legal.
        for to in OrderStatus::ALL {
            let preds = OrderStatus::predecessors(to);
            for from in OrderStatus::ALL {
                assert_eq!(
                    preds.contains(&from),
                    from.transition(to).is_ok(),
                    "{from} -> {to}"
                );
            }
        }
        assert_eq!(
            OrderStatus::predecessors(Filled),
            [
                Submitting,
                Accepted,
                PartiallyFilled,
                Filled,
                Canceled,
                Expired
            ]
        );
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        let inst = InstallationId::parse("a1b2c3d4e5").unwrap();
        assert_eq!(
            client_order_id(&inst, 12, OrderRole::Entry),
            "tw-a1b2c3d4e5-12-entry"
        );
    }

    #[test]
    fn client_order_ids_fit_the_broker_limit() {
        // Catches: an installation id allowed to grow, or a longer id format, past Alpaca's
        // 48 characters.
        let longest = InstallationId::parse(&"z".repeat(InstallationId::MAX_LEN)).unwrap();
        for role in <OrderRole as strum::VariantArray>::VARIANTS {
            for txn in [i64::MIN, i64::MAX] {
                let id = client_order_id(&longest, txn, *role);
                assert!(id.len() <= CLIENT_ORDER_ID_MAX_LEN, "{id}: {}", id.len());
            }
        }
    }

    #[test]
    fn installation_ids_are_checked() {
        for bad in ["", "ABC", "a-b", "abcdefghijk", "é"] {
            assert!(InstallationId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(InstallationId::parse("0f").unwrap().as_str(), "0f");
    }
}
