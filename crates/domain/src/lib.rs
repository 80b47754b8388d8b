//! The trade manager's domain: pure types and decisions, no I/O, no async, no wall clock.
//!
//! - [`money`]: decimal prices and quantities, their bounds, and checked arithmetic.
//! - [`decimal`]: the one parser of decimal text.
//! - [`echo`]: how input is repeated in error messages (a short prefix).
//! - [`recommendation`]: what experts publish, and how one JSON line becomes one.
//! - [`order`] and [`transaction`]: the lifecycle types and their transition tables.
//! - [`expert`]: an expert's settings and its balance maths.
//! - [`rules`]: triggers, actions, rulesets and their evaluation.
//! - [`sizing`]: the classic risk manager in notional mode.
//! - [`enter_market`]: the whole enter-market decision for one expert, as a plan.
//! - [`outcome`]: the decision record written for every recommendation a run considers.

pub mod decimal;
pub mod echo;
pub mod enter_market;
pub mod expert;
pub mod money;
pub mod order;
pub mod outcome;
pub mod recommendation;
pub mod rules;
pub mod sizing;
pub mod transaction;

pub use decimal::{DecimalError, parse_decimal};
pub use money::{Price, Quantity};
pub use order::{Order, OrderRole, OrderStatus, OrderType, Side};
pub use outcome::{Outcome, OutcomeKind};
pub use recommendation::{Action, NewRecommendation, Recommendation, RiskLevel, TimeHorizon};
pub use transaction::{Transaction, TransactionStatus};

/// The two processing use cases of an expert; the lock key names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    /// Open new positions from fresh recommendations.
    EnterMarket,
    /// Manage positions the expert already holds.
    OpenPositions,
}

impl UseCase {
    /// The wire and log name (`enter_market`, `open_positions`).
    pub fn as_str(self) -> &'static str {
        match self {
            UseCase::EnterMarket => "enter_market",
            UseCase::OpenPositions => "open_positions",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enter_market" => Some(UseCase::EnterMarket),
            "open_positions" => Some(UseCase::OpenPositions),
            _ => None,
        }
    }
}

impl std::fmt::Display for UseCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The processing lock key of the seed: `expert_{id}_usecase_{use_case}`.
pub fn lock_key(expert_id: i64, use_case: UseCase) -> String {
    format!("expert_{expert_id}_usecase_{use_case}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_reads_like_the_seed() {
        assert_eq!(
            lock_key(7, UseCase::EnterMarket),
            "expert_7_usecase_enter_market"
        );
        assert_eq!(
            lock_key(7, UseCase::OpenPositions),
            "expert_7_usecase_open_positions"
        );
    }
}
