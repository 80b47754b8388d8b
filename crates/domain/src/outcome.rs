//! Decision records: one outcome for every recommendation a run considers (B4, I5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::UseCase;

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
}

impl OutcomeKind {
    /// Every kind, in report order.
    pub const ALL: [OutcomeKind; 7] = [
        OutcomeKind::RulesNotMet,
        OutcomeKind::NotPermitted,
        OutcomeKind::DuplicatePosition,
        OutcomeKind::InsufficientEquity,
        OutcomeKind::Unfunded,
        OutcomeKind::Ordered,
        OutcomeKind::Failed,
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
