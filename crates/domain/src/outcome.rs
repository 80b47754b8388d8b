//! Decision records: one outcome for every recommendation a run considers (B4, I5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{OrderStatus, TransactionStatus, UseCase};

/// What became of a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OutcomeKind {
    Ordered,
    RulesNotMet,
    NotPermitted,
    DuplicatePosition,
    InsufficientEquity,
    Unfunded,
    Failed,
    /// open_positions: the expert holds no OPENED position in the symbol.
    NoPosition,
    /// open_positions: the position is already being closed (CLOSING, or a close order
    /// working); it is left alone.
    CloseWorking,
    /// open_positions: no rule matched, or what matched changes nothing (a refused stop
    /// move is one, with the ratchet named in the detail).
    NoAction,
    /// open_positions: a close of the position was started.
    Closed,
    /// open_positions: the take profit and/or stop loss were moved.
    Adjusted,
}

impl OutcomeKind {
    /// Every kind, in report order: enter_market's, then open_positions'.
    pub const ALL: [OutcomeKind; 12] = [
        OutcomeKind::RulesNotMet,
        OutcomeKind::NotPermitted,
        OutcomeKind::DuplicatePosition,
        OutcomeKind::InsufficientEquity,
        OutcomeKind::Unfunded,
        OutcomeKind::Ordered,
        OutcomeKind::Failed,
        OutcomeKind::NoPosition,
        OutcomeKind::CloseWorking,
        OutcomeKind::NoAction,
        OutcomeKind::Closed,
        OutcomeKind::Adjusted,
    ];
}

wire_names!(OutcomeKind);

/// One decision record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub recommendation_id: i64,
    pub expert_id: i64,
    pub symbol: String,
    pub use_case: UseCase,
    pub outcome: OutcomeKind,
    /// Which rule matched or why not, the sizing inputs, the broker's answer.
    pub detail: String,
    pub order_id: Option<i64>,
    pub decided_at: DateTime<Utc>,
}

/// What an entry order's outcome says once the order has `status`: its kind, and the words
/// appended to the decision's detail (which rule matched, the sizing). A broker's answer, a
/// run that got none, and an intent that was never sent (`error` with its `reason`) each
/// have their text; the first three are those of the first version, unchanged.
pub fn entry_outcome(
    status: OrderStatus,
    client_order_id: &str,
    reason: Option<&str>,
) -> (OutcomeKind, String) {
    match (status, reason) {
        (OrderStatus::Error, Some(reason)) => {
            (OutcomeKind::Failed, format!("; not sent: {reason}"))
        }
        (OrderStatus::Rejected | OrderStatus::Error, _) => {
            (OutcomeKind::Failed, format!("; broker: {status}"))
        }
        (OrderStatus::Submitting, _) => (
            OutcomeKind::Failed,
            "; no broker answer, order left submitting for reconciliation".to_string(),
        ),
        // A working order the broker says more about: Alpaca queueing it until the market
        // opens, say.
        (st @ (OrderStatus::Accepted | OrderStatus::PartiallyFilled), Some(note)) => (
            OutcomeKind::Ordered,
            format!("; order {client_order_id} {st} ({note})"),
        ),
        (st, _) => (
            OutcomeKind::Ordered,
            format!("; order {client_order_id} {st}"),
        ),
    }
}

/// The outcome written with a position, before its order is sent (I5): `ordered`,
/// provisional until the broker's answer completes it.
pub fn provisional_entry_outcome(client_order_id: &str) -> (OutcomeKind, String) {
    (
        OutcomeKind::Ordered,
        format!("; order {client_order_id} submitting, awaiting the broker's answer"),
    )
}

/// The transaction holding a refused slot, as the SAFETY CHECK line and the outcome name it:
/// its id and status, or `unknown` / `WAITING/OPENED` when it could not be read back.
pub fn slot_holder(existing: Option<(i64, TransactionStatus)>) -> (String, &'static str) {
    match existing {
        Some((id, st)) => (id.to_string(), st.as_str()),
        None => ("unknown".to_string(), "WAITING/OPENED"),
    }
}

/// The detail of a position the database's one-active-position index refused (B1), naming
/// the transaction that holds the slot when it could be read.
pub fn refused_by_index(decision: &str, existing: Option<(i64, TransactionStatus)>) -> String {
    let (id, status) = slot_holder(existing);
    format!("{decision}; refused by the database: existing transaction {id} in {status} status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_outcome_texts() {
        // Catches: a changed text of the first version (users and scripts read them), or an
        // expired intent reported without its reason.
        let cases: [(OrderStatus, Option<&str>, OutcomeKind, &str); 7] = [
            (
                OrderStatus::Filled,
                None,
                OutcomeKind::Ordered,
                "; order c filled",
            ),
            (
                OrderStatus::Accepted,
                None,
                OutcomeKind::Ordered,
                "; order c accepted",
            ),
            (
                OrderStatus::Accepted,
                Some("queued by Alpaca until the market opens"),
                OutcomeKind::Ordered,
                "; order c accepted (queued by Alpaca until the market opens)",
            ),
            (
                OrderStatus::Rejected,
                Some("no cash"),
                OutcomeKind::Failed,
                "; broker: rejected",
            ),
            (
                OrderStatus::Error,
                None,
                OutcomeKind::Failed,
                "; broker: error",
            ),
            (
                OrderStatus::Submitting,
                None,
                OutcomeKind::Failed,
                "; no broker answer, order left submitting for reconciliation",
            ),
            (
                OrderStatus::Error,
                Some("intent_expired: 9 s old"),
                OutcomeKind::Failed,
                "; not sent: intent_expired: 9 s old",
            ),
        ];
        for (status, reason, kind, text) in cases {
            assert_eq!(
                entry_outcome(status, "c", reason),
                (kind, text.to_string()),
                "{status}"
            );
        }
        assert_eq!(
            refused_by_index("d", Some((7, TransactionStatus::Waiting))),
            "d; refused by the database: existing transaction 7 in WAITING status"
        );
    }
}
