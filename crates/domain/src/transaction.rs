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
/// | CLOSING | OPENED (close refused or canceled), CLOSED |
/// | CLOSED, FAILED | — |
///
/// CLOSED and FAILED stay final: reopening one could make a second active transaction for
/// the expert and symbol (I1), which the partial unique index would refuse anyway.
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

    /// WAITING, OPENED or CLOSING: the (expert, symbol) is taken (B1, the SAFETY CHECK). A
    /// CLOSING position is still held until its close fills, and a refused close returns it to
    /// OPENED, so no second position may open beside it.
    pub fn holds_position(self) -> bool {
        self.is_active() || self == TransactionStatus::Closing
    }

    /// CLOSED or FAILED.
    pub fn is_terminal(self) -> bool {
        matches!(self, TransactionStatus::Closed | TransactionStatus::Failed)
    }

    /// The one way a status changes, and the single table of legal edges: one a line,
    /// everything else is an error.
    #[rustfmt::skip]
    pub fn transition(
        self,
        to: TransactionStatus,
    ) -> Result<TransactionStatus, crate::order::IllegalTransition> {
        use TransactionStatus::*;
        match (self, to) {
            (from, to) if from == to => Ok(to), // a repeated update changes nothing
            (Waiting, Opened)        => Ok(to), // the entry filled (in part)
            (Waiting, Closing)       => Ok(to), // a close requested before the entry filled
            (Waiting, Closed)        => Ok(to), // the entry ended without any execution
            (Waiting, Failed)        => Ok(to), // the entry never reached the broker
            (Opened, Closing)        => Ok(to), // a close requested
            (Opened, Closed)         => Ok(to), // closed at once (a take profit or stop loss filled)
            (Closing, Opened)        => Ok(to), // the close was refused or canceled
            (Closing, Closed)        => Ok(to), // the close filled
            _ => Err(crate::order::IllegalTransition { from: self.as_str(), to: to.as_str() }),
        }
    }

    /// Every status from which `to` may be reached, `to` itself included (staying is a
    /// no-op). Derived from [`TransactionStatus::transition`] exactly as
    /// [`crate::OrderStatus::predecessors`] is, for the store's `UPDATE transactions …
    /// WHERE status IN (…)`, so the database enforces this table too.
    pub fn predecessors(to: TransactionStatus) -> Vec<TransactionStatus> {
        TransactionStatus::ALL
            .into_iter()
            .filter(|from| from.transition(to).is_ok())
            .collect()
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

    /// Every legal edge other than staying, written out once more on purpose.
    const LEGAL: [(TransactionStatus, TransactionStatus); 8] = [
        (Waiting, Opened),
        (Waiting, Closing),
        (Waiting, Closed),
        (Waiting, Failed),
        (Opened, Closing),
        (Opened, Closed),
        (Closing, Opened),
        (Closing, Closed),
    ];

    #[test]
    fn transitions() {
        // Every pair: legal exactly when listed (or staying). Catches: a dropped or added edge.
        for from in TransactionStatus::ALL {
            for to in TransactionStatus::ALL {
                let listed = from == to || LEGAL.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), listed, "{from} -> {to}");
            }
        }
        for (a, b) in [
            (Opened, Waiting),
            (Closed, Opened),
            (Failed, Waiting),
            (Opened, Failed),
            (Closing, Failed),
            (Closed, Closing),
        ] {
            assert!(a.transition(b).is_err(), "{a} -> {b}");
        }
        assert!(Waiting.is_active() && Opened.is_active() && !Closing.is_active());
    }

    #[test]
    fn predecessors_agree_with_transition() {
        for to in TransactionStatus::ALL {
            let preds = TransactionStatus::predecessors(to);
            for from in TransactionStatus::ALL {
                assert_eq!(
                    preds.contains(&from),
                    from.transition(to).is_ok(),
                    "{from} -> {to}"
                );
            }
        }
        // The lists the store's UPDATEs will use.
        let cases = [
            (Opened, vec![Waiting, Opened, Closing]),
            (Closing, vec![Waiting, Opened, Closing]),
            (Closed, vec![Waiting, Opened, Closing, Closed]),
            (Failed, vec![Waiting, Failed]),
            (Waiting, vec![Waiting]),
        ];
        for (to, want) in cases {
            assert_eq!(TransactionStatus::predecessors(to), want, "{to}");
        }
    }
}
