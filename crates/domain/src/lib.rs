//! The trade manager's domain: pure types and decisions, no I/O, no async, no wall clock.
//!
//! - [`money`]: decimal prices and quantities, their bounds, and checked arithmetic.
//! - [`decimal`]: the one parser of decimal text.
//! - [`echo`]: how input is repeated in error messages (a short prefix).
//! - [`symbol`]: the one rule for ticker symbols.
//! - [`recommendation`]: what experts publish, and how one JSON line becomes one.
//! - [`order`] and [`transaction`]: the lifecycle types and their transition tables.
//! - [`expert`]: an expert's settings and its balance maths.
//! - [`rules`]: the condition and action catalogue, rulesets, their evaluation, and the
//!   original's rules files.
//! - [`exits`]: take-profit and stop-loss prices a rule asks for (floors, ratchet), and the
//!   safeguard stop.
//! - [`instrument_share`]: the orders of `increase_instrument_share` /
//!   `decrease_instrument_share`.
//! - [`sizing`]: the classic risk manager in notional mode.
//! - [`enter_market`]: the whole enter-market decision for one expert, as a plan.
//! - [`lifecycle`]: a position after its entry: transaction state from its orders, exit legs.
//! - [`open_positions`]: what an open_positions run does with one position, as a decision.
//! - [`outcome`]: the decision record written for every recommendation a run considers.

/// `as_str`, `parse` and `Display` for an enum whose wire names strum derives
/// (`EnumString`, `IntoStaticStr`); the strum attribute must name the same case as serde's.
///
/// `Display` writes the name with `write_str`, not `pad`, so its output (widths included)
/// stays what the hand-written tables printed.
macro_rules! wire_names {
    ($t:ty) => {
        impl $t {
            /// The wire name, as serde writes it.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Parses the wire name, exactly (no trimming, no case folding).
            pub fn parse(s: &str) -> Option<Self> {
                s.parse().ok()
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod decimal;
pub mod echo;
pub mod enter_market;
pub mod exits;
pub mod expert;
pub mod instrument_share;
pub mod lifecycle;
pub mod money;
pub mod open_positions;
pub mod order;
pub mod outcome;
pub mod recommendation;
pub mod rules;
pub mod sizing;
pub mod symbol;
pub mod transaction;

pub use decimal::{DecimalError, parse_decimal};
pub use exits::{ExitPosition, ExitPrice, ExitSettings, Unchanged, safeguard_stop};
pub use money::{Price, Quantity};
pub use order::{InstallationId, Order, OrderRole, OrderStatus, OrderType, Side};
pub use outcome::{Outcome, OutcomeKind};
pub use recommendation::{
    Action, LineError, NewRecommendation, ParseContext, ParsedLine, Recommendation, RiskLevel,
    TimeHorizon, parse_batch, parse_batch_checked,
};
pub use symbol::{Symbol, SymbolError};
pub use transaction::{Transaction, TransactionStatus};

/// The two processing use cases of an expert; the lock key names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum UseCase {
    /// Open new positions from fresh recommendations.
    EnterMarket,
    /// Manage positions the expert already holds.
    OpenPositions,
}

wire_names!(UseCase);

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

    /// Checks one wire-name enum: serde's name, strum's name, `parse` and `Display` agree for
    /// every variant, so moving to strum changed no JSON, no stored value and no output.
    fn wire_names_agree<T>(as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: strum::VariantArray
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Display
            + std::fmt::Debug
            + PartialEq
            + Copy,
    {
        for v in T::VARIANTS.iter().copied() {
            let name = as_str(v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<T>(&format!("\"{name}\"")).unwrap(),
                v
            );
            assert_eq!(parse(name), Some(v), "{name}");
            assert_eq!(v.to_string(), name);
            // Width is ignored, as the hand-written Display did.
            assert_eq!(format!("{v:>30}"), name);
            assert_eq!(
                parse(&name.to_lowercase()).filter(|_| name != name.to_lowercase()),
                None
            );
            assert_eq!(parse(&format!(" {name}")), None);
        }
    }

    #[test]
    fn every_wire_name_is_unchanged() {
        use crate::*;
        wire_names_agree(Action::as_str, Action::parse);
        wire_names_agree(RiskLevel::as_str, RiskLevel::parse);
        wire_names_agree(TimeHorizon::as_str, TimeHorizon::parse);
        wire_names_agree(Side::as_str, Side::parse);
        wire_names_agree(OrderRole::as_str, OrderRole::parse);
        wire_names_agree(OrderType::as_str, OrderType::parse);
        wire_names_agree(OrderStatus::as_str, OrderStatus::parse);
        wire_names_agree(TransactionStatus::as_str, TransactionStatus::parse);
        wire_names_agree(OutcomeKind::as_str, OutcomeKind::parse);
        wire_names_agree(UseCase::as_str, UseCase::parse);
        wire_names_agree(rules::ExitReference::as_str, rules::ExitReference::parse);
    }

    #[test]
    fn the_wire_names_themselves() {
        // The JSON and database contract, spelled out once. Catches: a changed case rule.
        use crate::*;
        let names: Vec<&str> = vec![
            Action::Overweight.as_str(),
            RiskLevel::Medium.as_str(),
            TimeHorizon::ShortTerm.as_str(),
            Side::Sell.as_str(),
            OrderRole::TakeProfit.as_str(),
            OrderType::Stop.as_str(),
            OrderStatus::PartiallyFilled.as_str(),
            OrderStatus::WaitingTrigger.as_str(),
            TransactionStatus::Opened.as_str(),
            OutcomeKind::InsufficientEquity.as_str(),
            UseCase::OpenPositions.as_str(),
        ];
        assert_eq!(
            names,
            [
                "OVERWEIGHT",
                "MEDIUM",
                "SHORT_TERM",
                "SELL",
                "take_profit",
                "stop",
                "partially_filled",
                "waiting_trigger",
                "OPENED",
                "insufficient_equity",
                "open_positions",
            ]
        );
        // The ALL constants list every variant once, whatever their order.
        fn same<T: strum::VariantArray + PartialEq + std::fmt::Debug>(all: &[T]) {
            assert_eq!(all.len(), T::VARIANTS.len());
            assert!(T::VARIANTS.iter().all(|v| all.contains(v)), "{all:?}");
        }
        same(&OrderStatus::ALL);
        same(&TransactionStatus::ALL);
        same(&OutcomeKind::ALL);
    }
}
