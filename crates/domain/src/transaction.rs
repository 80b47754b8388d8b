//! Transactions: one position of one expert in one symbol, and its status machine.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{ArithmeticError, checked_mul};
use crate::order::Side;

/// The status of a transaction.
///
/// Legal transitions (staying is a no-op, anything else an error):
///
/// | from | to |
/// |---|---|
/// | WAITING | OPENED, CLOSING, CLOSED, FAILED |
/// | OPENED | CLOSING, CLOSED |
/// | CLOSING | OPENED (close canceled), CLOSED |
/// | CLOSED, FAILED | — |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "UPPERCASE")]
pub enum TransactionStatus {
    Waiting,
    Opened,
    Closing,
    Closed,
    Failed,
}

impl TransactionStatus {
    /// Every status.
    pub const ALL: [TransactionStatus; 5] = [
        TransactionStatus::Waiting,
        TransactionStatus::Opened,
        TransactionStatus::Closing,
        TransactionStatus::Closed,
        TransactionStatus::Failed,
    ];

    /// WAITING or OPENED: the statuses of which an expert may hold one per symbol.
    pub fn is_active(self) -> bool {
        matches!(self, TransactionStatus::Waiting | TransactionStatus::Opened)
    }

    /// CLOSED or FAILED.
    pub fn is_terminal(self) -> bool {
        matches!(self, TransactionStatus::Closed | TransactionStatus::Failed)
    }

    /// The one way a status changes.
    pub fn transition(
        self,
        to: TransactionStatus,
    ) -> Result<TransactionStatus, crate::order::IllegalTransition> {
        use TransactionStatus::*;
        let legal = self == to
            || matches!(
                (self, to),
                (Waiting, Opened | Closing | Closed | Failed)
                    | (Opened, Closing | Closed)
                    | (Closing, Opened | Closed)
            );
        if legal {
            Ok(to)
        } else {
            Err(crate::order::IllegalTransition {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

wire_names!(TransactionStatus);

/// One position of one expert in one symbol, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: i64,
    pub expert_id: i64,
    /// The account the position lives in (extension of the documented shape).
    pub account: String,
    pub symbol: String,
    pub side: Side,
    pub quantity: Decimal,
    pub status: TransactionStatus,
    pub open_price: Option<Decimal>,
    pub close_price: Option<Decimal>,
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    pub opened_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What the expert's active transaction holds, as sizing and balances need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePosition {
    pub transaction_id: i64,
    pub symbol: String,
    pub side: Side,
    pub status: TransactionStatus,
    pub quantity: Decimal,
    /// The fill price once OPENED; for WAITING, the price the entry was sized at.
    pub price: Decimal,
}

impl ActivePosition {
    /// `|quantity × price|`: what the position holds of the expert's equity, or why it
    /// cannot be computed.
    pub fn try_notional(&self) -> Result<Decimal, ArithmeticError> {
        checked_mul(self.quantity, self.price).map(|n| n.abs())
    }

    /// [`ActivePosition::try_notional`], saturating at `Decimal::MAX`: a position too large
    /// to measure counts as holding everything (fail closed), never as holding nothing.
    pub fn notional(&self) -> Decimal {
        self.try_notional().unwrap_or(Decimal::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionStatus::*;

    #[test]
    fn transitions() {
        for (a, b, ok) in [
            (Waiting, Opened, true),
            (Waiting, Failed, true),
            (Opened, Closing, true),
            (Closing, Closed, true),
            (Opened, Waiting, false),
            (Closed, Opened, false),
            (Failed, Waiting, false),
            (Opened, Failed, false),
        ] {
            assert_eq!(a.transition(b).is_ok(), ok, "{a} -> {b}");
        }
        assert!(Waiting.is_active() && Opened.is_active() && !Closing.is_active());
    }
}
