//! A rule as a person reads it: `IF bullish AND confidence >= 60 THEN buy`.

use std::fmt;

use rust_decimal::Decimal;

use super::{ExitTarget, Rule, RuleAction, Trigger};

impl fmt::Display for Trigger {
    /// `bullish`, `confidence >= 60`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Flag(flag) => f.write_str(flag.name()),
            Trigger::Compare { metric, op, value } => {
                write!(f, "{} {} {value}", metric.name(), op.as_str())
            }
        }
    }
}

/// A percentage with its sign: `+10%`, `-5%`.
fn signed_percent(p: Decimal) -> String {
    if p.is_sign_negative() {
        format!("{}%", p.normalize())
    } else {
        format!("+{}%", p.normalize())
    }
}

impl fmt::Display for ExitTarget {
    /// `order_open_price +10%`, `at 95.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitTarget::Percent { reference, percent } => {
                write!(f, "{reference} {}", signed_percent(*percent))
            }
            ExitTarget::Price(p) => write!(f, "at {p}"),
        }
    }
}

impl fmt::Display for RuleAction {
    /// `buy`, `adjust_stop_loss current_price -5%`, `increase_instrument_share to 8%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleAction::AdjustTakeProfit(t) | RuleAction::AdjustStopLoss(t) => {
                write!(f, "{} {t}", self.as_str())
            }
            RuleAction::IncreaseInstrumentShare(p) | RuleAction::DecreaseInstrumentShare(p) => {
                write!(f, "{} to {}%", self.as_str(), p.normalize())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

impl Rule {
    /// The rule on one line: `IF t1 AND t2 THEN a1, a2`; `IF always` without triggers, and
    /// `(continue_processing)` at the end when later rules are evaluated too.
    pub fn sentence(&self) -> String {
        let triggers = if self.triggers.is_empty() {
            "always".to_string()
        } else {
            join(&self.triggers, " AND ")
        };
        let mut s = format!("IF {triggers} THEN {}", join(&self.actions, ", "));
        if self.continue_processing {
            s.push_str(" (continue_processing)");
        }
        s
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Price;
    use crate::rules::{ExitReference, Flag, Metric, Op};
    use rust_decimal_macros::dec;

    #[test]
    fn rules_read_as_sentences() {
        let compare = |metric, op, value| Trigger::Compare { metric, op, value };
        // (rule, sentence)
        let cases = [
            (
                Rule {
                    name: "r".into(),
                    continue_processing: false,
                    triggers: vec![
                        Trigger::Flag(Flag::Bullish),
                        compare(Metric::Confidence, Op::Ge, dec!(70)),
                        Trigger::Flag(Flag::HasNoPosition),
                    ],
                    actions: vec![
                        RuleAction::Buy,
                        RuleAction::AdjustTakeProfit(ExitTarget::Percent {
                            reference: ExitReference::ExpertTargetPrice,
                            percent: dec!(-10.0),
                        }),
                        RuleAction::AdjustStopLoss(ExitTarget::Percent {
                            reference: ExitReference::OrderOpenPrice,
                            percent: dec!(5),
                        }),
                    ],
                },
                "IF bullish AND confidence >= 70 AND has_no_position THEN buy, adjust_take_profit expert_target_price -10%, adjust_stop_loss order_open_price +5%",
            ),
            (
                Rule {
                    name: "r".into(),
                    continue_processing: true,
                    triggers: vec![],
                    actions: vec![
                        RuleAction::AdjustStopLoss(ExitTarget::Price(
                            Price::new(dec!(95.5)).unwrap(),
                        )),
                        RuleAction::IncreaseInstrumentShare(dec!(8)),
                        RuleAction::Close,
                    ],
                },
                "IF always THEN adjust_stop_loss at 95.5, increase_instrument_share to 8%, close (continue_processing)",
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(rule.sentence(), want);
        }
    }
}
