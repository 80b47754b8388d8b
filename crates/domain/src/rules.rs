//! Rulesets: triggers, actions and their evaluation (reference §4.1, §4.3, §4.4).
//!
//! A ruleset is an ordered list of rules; a rule holds when all its triggers hold. The first
//! rule that holds wins unless it says `continue_processing`; a rule that holds and names
//! `stop_processing` halts evaluation and contributes nothing. Unknown trigger or action names
//! are refused when the ruleset is built, never skipped at run time (a quirk of the original).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{checked_div, checked_mul, checked_sub};
use crate::order::Side;
use crate::recommendation::{Action, NewRecommendation, RiskLevel, TimeHorizon};

/// A trigger as written in configuration: `{ event = "confidence", op = ">=", value = 60 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::money::serde_decimal::deserialize_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Decimal>,
}

/// An action as written in configuration: `{ action = "buy" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub action: String,
}

/// A rule as written in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub continue_processing: bool,
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

/// A flag trigger: true or false from the recommendation and the expert's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Bullish,
    Bearish,
    RatingPositive,
    RatingNeutral,
    RatingNegative,
    RatingOverweight,
    RatingUnderweight,
    HasPosition,
    HasNoPosition,
    ShortTerm,
    MediumTerm,
    LongTerm,
    HighRisk,
    MediumRisk,
    LowRisk,
}

const FLAGS: &[(&str, Flag)] = &[
    ("bullish", Flag::Bullish),
    ("bearish", Flag::Bearish),
    ("current_rating_positive", Flag::RatingPositive),
    ("current_rating_neutral", Flag::RatingNeutral),
    ("current_rating_negative", Flag::RatingNegative),
    ("current_rating_overweight", Flag::RatingOverweight),
    ("current_rating_underweight", Flag::RatingUnderweight),
    ("has_position", Flag::HasPosition),
    ("has_no_position", Flag::HasNoPosition),
    ("short_term", Flag::ShortTerm),
    ("medium_term", Flag::MediumTerm),
    ("long_term", Flag::LongTerm),
    ("highrisk", Flag::HighRisk),
    ("mediumrisk", Flag::MediumRisk),
    ("lowrisk", Flag::LowRisk),
];

/// A numeric trigger's measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Confidence,
    ExpectedProfitTargetPercent,
    PercentToNewTarget,
}

const METRICS: &[(&str, Metric)] = &[
    ("confidence", Metric::Confidence),
    (
        "expected_profit_target_percent",
        Metric::ExpectedProfitTargetPercent,
    ),
    ("percent_to_new_target", Metric::PercentToNewTarget),
];

/// A comparison operator, exactly the original's six.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

const OPS: &[(&str, Op)] = &[
    (">", Op::Gt),
    (">=", Op::Ge),
    ("<", Op::Lt),
    ("<=", Op::Le),
    ("==", Op::Eq),
    ("!=", Op::Ne),
];

impl Op {
    fn apply(self, a: Decimal, b: Decimal) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
    fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, o)| *o == self)
            .map(|(s, _)| *s)
            .unwrap_or("?")
    }
}

/// A trigger, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Flag(Flag),
    Compare {
        metric: Metric,
        op: Op,
        value: Decimal,
    },
}

/// What a matching rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Open a long position (needs enable_buy).
    Buy,
    /// Open a short position (needs enable_sell).
    Sell,
    /// Guard: halt evaluation, contribute nothing.
    StopProcessing,
}

impl RuleAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Buy => "buy",
            RuleAction::Sell => "sell",
            RuleAction::StopProcessing => "stop_processing",
        }
    }
    /// The side of the position it opens.
    pub fn side(self) -> Option<Side> {
        match self {
            RuleAction::Buy => Some(Side::Buy),
            RuleAction::Sell => Some(Side::Sell),
            RuleAction::StopProcessing => None,
        }
    }
}

/// A rule, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub continue_processing: bool,
    pub triggers: Vec<Trigger>,
    pub actions: Vec<RuleAction>,
}

/// A named, ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// Why a trigger or action spec is refused; `field` is relative to the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

impl Trigger {
    /// Builds a trigger from its spec, refusing unknown events and malformed comparisons.
    pub fn from_spec(spec: &TriggerSpec) -> Result<Trigger, RuleError> {
        let e = |field: &str, problem: String| RuleError {
            field: field.into(),
            problem,
        };
        if let Some((_, flag)) = FLAGS.iter().find(|(n, _)| *n == spec.event) {
            if spec.op.is_some() || spec.value.is_some() {
                return Err(e(
                    "op",
                    format!("flag trigger \"{}\" takes no op or value", spec.event),
                ));
            }
            return Ok(Trigger::Flag(*flag));
        }
        if let Some((_, metric)) = METRICS.iter().find(|(n, _)| *n == spec.event) {
            let op = match spec.op.as_deref() {
                None => {
                    return Err(e(
                        "op",
                        format!("numeric trigger \"{}\" needs an op", spec.event),
                    ));
                }
                Some(op) => OPS
                    .iter()
                    .find(|(n, _)| *n == op)
                    .map(|(_, o)| *o)
                    .ok_or_else(|| {
                        e(
                            "op",
                            format!("unknown operator \"{op}\" (one of {})", names(OPS)),
                        )
                    })?,
            };
            let value = spec.value.ok_or_else(|| {
                e(
                    "value",
                    format!("numeric trigger \"{}\" needs a value", spec.event),
                )
            })?;
            return Ok(Trigger::Compare {
                metric: *metric,
                op,
                value,
            });
        }
        Err(e(
            "event",
            format!(
                "unknown trigger \"{}\" (one of {}, {})",
                spec.event,
                names(FLAGS),
                names(METRICS)
            ),
        ))
    }

    fn describe(&self) -> String {
        match self {
            Trigger::Flag(f) => FLAGS
                .iter()
                .find(|(_, x)| x == f)
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
            Trigger::Compare { metric, op, value } => {
                let name = METRICS
                    .iter()
                    .find(|(_, m)| m == metric)
                    .map(|(n, _)| *n)
                    .unwrap_or_default();
                format!("{name} {} {value}", op.as_str())
            }
        }
    }
}

impl RuleAction {
    /// Builds an action from its spec; this version knows buy, sell and stop_processing.
    pub fn from_spec(spec: &ActionSpec) -> Result<RuleAction, RuleError> {
        match spec.action.as_str() {
            "buy" => Ok(RuleAction::Buy),
            "sell" => Ok(RuleAction::Sell),
            "stop_processing" => Ok(RuleAction::StopProcessing),
            other => Err(RuleError {
                field: "action".into(),
                problem: format!("unknown action \"{other}\" (one of buy, sell, stop_processing)"),
            }),
        }
    }
}

impl Rule {
    /// Builds a rule, collecting every problem with its path inside the rule
    /// (`triggers[1].op: …`).
    pub fn from_spec(spec: &RuleSpec) -> Result<Rule, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut triggers = Vec::new();
        for (i, t) in spec.triggers.iter().enumerate() {
            match Trigger::from_spec(t) {
                Ok(t) => triggers.push(t),
                Err(e) => errors.push(RuleError {
                    field: format!("triggers[{i}].{}", e.field),
                    problem: e.problem,
                }),
            }
        }
        let mut actions = Vec::new();
        for (i, a) in spec.actions.iter().enumerate() {
            match RuleAction::from_spec(a) {
                Ok(a) => actions.push(a),
                Err(e) => errors.push(RuleError {
                    field: format!("actions[{i}].{}", e.field),
                    problem: e.problem,
                }),
            }
        }
        if spec.actions.is_empty() {
            errors.push(RuleError {
                field: "actions".into(),
                problem: "a rule needs at least one action".into(),
            });
        }
        if errors.is_empty() {
            Ok(Rule {
                name: spec.name.clone(),
                continue_processing: spec.continue_processing,
                triggers,
                actions,
            })
        } else {
            Err(errors)
        }
    }
}

/// What a trigger sees: the recommendation and the expert's position in its symbol.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    pub rec: &'a NewRecommendation,
    /// The expert has a WAITING or OPENED transaction on the symbol (WAITING counts, unlike
    /// the original, so the rule agrees with the duplicate guard).
    pub has_position: bool,
    /// The latest quote of the symbol, if known; else `price_at_date` is used.
    pub current_price: Option<Decimal>,
}

impl Trigger {
    /// Whether the trigger holds. Missing data makes it false, never an error.
    pub fn holds(&self, ctx: &EvalContext<'_>) -> bool {
        let r = ctx.rec;
        match self {
            Trigger::Flag(f) => match f {
                Flag::Bullish => r.action == Action::Buy,
                Flag::Bearish => r.action == Action::Sell,
                Flag::RatingPositive => r.action == Action::Buy,
                Flag::RatingNeutral => r.action == Action::Hold,
                Flag::RatingNegative => r.action == Action::Sell,
                Flag::RatingOverweight => r.action == Action::Overweight,
                Flag::RatingUnderweight => r.action == Action::Underweight,
                Flag::HasPosition => ctx.has_position,
                Flag::HasNoPosition => !ctx.has_position,
                Flag::ShortTerm => r.time_horizon == TimeHorizon::ShortTerm,
                Flag::MediumTerm => r.time_horizon == TimeHorizon::MediumTerm,
                Flag::LongTerm => r.time_horizon == TimeHorizon::LongTerm,
                Flag::HighRisk => r.risk_level == RiskLevel::High,
                Flag::MediumRisk => r.risk_level == RiskLevel::Medium,
                Flag::LowRisk => r.risk_level == RiskLevel::Low,
            },
            Trigger::Compare { metric, op, value } => match metric_value(*metric, ctx) {
                Some(v) => op.apply(v, *value),
                None => false,
            },
        }
    }
}

fn metric_value(metric: Metric, ctx: &EvalContext<'_>) -> Option<Decimal> {
    let r = ctx.rec;
    match metric {
        Metric::Confidence => Some(r.confidence),
        Metric::ExpectedProfitTargetPercent => Some(r.expected_profit_percent),
        Metric::PercentToNewTarget => {
            // The quote comes from outside (it may be 0 or tiny): every step is checked, and a
            // figure that cannot be computed makes the trigger false, like missing data.
            let price = ctx.current_price.unwrap_or(r.price_at_date.get());
            let target = r.target()?;
            let rise = checked_sub(target, price).ok()?;
            checked_mul(checked_div(rise, price).ok()?, Decimal::ONE_HUNDRED).ok()
        }
    }
}

/// The result of evaluating a ruleset against one recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Actions of the matching rules, in order, without duplicates; never `StopProcessing`.
    pub actions: Vec<RuleAction>,
    /// Names of the rules that matched, in order (a halting guard included).
    pub matched: Vec<String>,
    /// The guard rule that halted evaluation, if any.
    pub halted_by: Option<String>,
    /// For every rule that did not match, the first trigger that failed.
    pub misses: Vec<(String, String)>,
}

impl Evaluation {
    /// A one-line account of the evaluation, for decision records.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.matched.is_empty() {
            parts.push(format!("matched {}", self.matched.join(", ")));
        }
        if let Some(g) = &self.halted_by {
            parts.push(format!("halted by stop_processing in {g}"));
        }
        if self.matched.is_empty() {
            if self.misses.is_empty() {
                parts.push("no rule matched".into());
            } else {
                let misses: Vec<String> = self
                    .misses
                    .iter()
                    .map(|(r, t)| format!("{r}: {t} not met"))
                    .collect();
                parts.push(format!("no rule matched ({})", misses.join("; ")));
            }
        }
        parts.join("; ")
    }
}

impl Ruleset {
    /// Evaluates the rules in order with first-match / continue_processing / stop_processing
    /// semantics.
    pub fn evaluate(&self, ctx: &EvalContext<'_>) -> Evaluation {
        let mut ev = Evaluation::default();
        for rule in &self.rules {
            if let Some(failed) = rule.triggers.iter().find(|t| !t.holds(ctx)) {
                ev.misses.push((rule.name.clone(), failed.describe()));
                continue;
            }
            ev.matched.push(rule.name.clone());
            if rule.actions.contains(&RuleAction::StopProcessing) {
                ev.halted_by = Some(rule.name.clone());
                break;
            }
            for a in &rule.actions {
                if !ev.actions.contains(a) {
                    ev.actions.push(*a);
                }
            }
            if !rule.continue_processing {
                break;
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Price;
    use crate::recommendation::parse_time;
    use rust_decimal_macros::dec;

    fn rec(
        action: Action,
        conf: Decimal,
        epp: Decimal,
        risk: RiskLevel,
        horizon: TimeHorizon,
    ) -> NewRecommendation {
        NewRecommendation {
            expert_id: 1,
            symbol: "AAPL".into(),
            action,
            confidence: conf,
            expected_profit_percent: epp,
            price_at_date: Price::new(dec!(100)).unwrap(),
            risk_level: risk,
            time_horizon: horizon,
            target_price: None,
            details: None,
            created_at: parse_time("2026-11-27T10:00:00Z").unwrap(),
        }
    }

    fn trig(event: &str, op: Option<&str>, value: Option<Decimal>) -> Trigger {
        Trigger::from_spec(&TriggerSpec {
            event: event.into(),
            op: op.map(Into::into),
            value,
        })
        .unwrap()
    }

    #[test]
    fn every_trigger() {
        use Action::*;
        let buy = rec(
            Buy,
            dec!(70),
            dec!(10),
            RiskLevel::High,
            TimeHorizon::ShortTerm,
        );
        let sell = rec(
            Sell,
            dec!(40),
            dec!(5),
            RiskLevel::Low,
            TimeHorizon::LongTerm,
        );
        let hold = rec(
            Hold,
            dec!(50),
            dec!(0),
            RiskLevel::Medium,
            TimeHorizon::MediumTerm,
        );
        let ow = rec(
            Overweight,
            dec!(50),
            dec!(0),
            RiskLevel::Medium,
            TimeHorizon::MediumTerm,
        );
        let uw = rec(
            Underweight,
            dec!(50),
            dec!(0),
            RiskLevel::Medium,
            TimeHorizon::MediumTerm,
        );
        let mut with_target = buy.clone();
        with_target.target_price = Some(Price::new(dec!(130)).unwrap());
        // (trigger, rec, has_position, current price, expected)
        let cases: Vec<(Trigger, &NewRecommendation, bool, Option<Decimal>, bool)> = vec![
            (trig("bullish", None, None), &buy, false, None, true),
            (trig("bullish", None, None), &ow, false, None, false),
            (trig("bearish", None, None), &sell, false, None, true),
            (trig("bearish", None, None), &uw, false, None, false),
            (
                trig("current_rating_positive", None, None),
                &buy,
                false,
                None,
                true,
            ),
            (
                trig("current_rating_neutral", None, None),
                &hold,
                false,
                None,
                true,
            ),
            (
                trig("current_rating_neutral", None, None),
                &buy,
                false,
                None,
                false,
            ),
            (
                trig("current_rating_negative", None, None),
                &sell,
                false,
                None,
                true,
            ),
            (
                trig("current_rating_overweight", None, None),
                &ow,
                false,
                None,
                true,
            ),
            (
                trig("current_rating_underweight", None, None),
                &uw,
                false,
                None,
                true,
            ),
            (
                trig("current_rating_underweight", None, None),
                &sell,
                false,
                None,
                false,
            ),
            (trig("has_position", None, None), &buy, true, None, true),
            (trig("has_position", None, None), &buy, false, None, false),
            (trig("has_no_position", None, None), &buy, false, None, true),
            (trig("has_no_position", None, None), &buy, true, None, false),
            (trig("short_term", None, None), &buy, false, None, true),
            (trig("medium_term", None, None), &hold, false, None, true),
            (trig("long_term", None, None), &sell, false, None, true),
            (trig("long_term", None, None), &buy, false, None, false),
            (trig("highrisk", None, None), &buy, false, None, true),
            (trig("mediumrisk", None, None), &hold, false, None, true),
            (trig("lowrisk", None, None), &sell, false, None, true),
            (trig("lowrisk", None, None), &buy, false, None, false),
            (
                trig("confidence", Some(">="), Some(dec!(70))),
                &buy,
                false,
                None,
                true,
            ),
            (
                trig("confidence", Some(">"), Some(dec!(70))),
                &buy,
                false,
                None,
                false,
            ),
            (
                trig("confidence", Some("<"), Some(dec!(50))),
                &sell,
                false,
                None,
                true,
            ),
            (
                trig("confidence", Some("<="), Some(dec!(40))),
                &sell,
                false,
                None,
                true,
            ),
            (
                trig("confidence", Some("=="), Some(dec!(70))),
                &buy,
                false,
                None,
                true,
            ),
            (
                trig("confidence", Some("!="), Some(dec!(70))),
                &buy,
                false,
                None,
                false,
            ),
            (
                trig(
                    "expected_profit_target_percent",
                    Some(">"),
                    Some(dec!(9.99)),
                ),
                &buy,
                false,
                None,
                true,
            ),
            (
                trig("expected_profit_target_percent", Some(">"), Some(dec!(10))),
                &buy,
                false,
                None,
                false,
            ),
            // BUY 100 × 1.10 = 110 → 10 % from price_at_date
            (
                trig("percent_to_new_target", Some("=="), Some(dec!(10))),
                &buy,
                false,
                None,
                true,
            ),
            // … and 22.22 % from a current quote of 90
            (
                trig("percent_to_new_target", Some(">"), Some(dec!(22))),
                &buy,
                false,
                Some(dec!(90)),
                true,
            ),
            // SELL 100 × 0.95 = 95 → −5 %
            (
                trig("percent_to_new_target", Some("=="), Some(dec!(-5))),
                &sell,
                false,
                None,
                true,
            ),
            // an explicit target wins
            (
                trig("percent_to_new_target", Some("=="), Some(dec!(30))),
                &with_target,
                false,
                None,
                true,
            ),
            // HOLD has no target: false, not an error
            (
                trig("percent_to_new_target", Some(">"), Some(dec!(-1000))),
                &hold,
                false,
                None,
                false,
            ),
        ];
        for (t, r, has_position, current_price, want) in cases {
            let ctx = EvalContext {
                rec: r,
                has_position,
                current_price,
            };
            assert_eq!(t.holds(&ctx), want, "{t:?} on {:?}", r.action);
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        let bad = [
            TriggerSpec {
                event: "bulish".into(),
                op: None,
                value: None,
            },
            TriggerSpec {
                event: "confidence".into(),
                op: None,
                value: Some(dec!(1)),
            },
            TriggerSpec {
                event: "confidence".into(),
                op: Some("gte".into()),
                value: Some(dec!(1)),
            },
            TriggerSpec {
                event: "confidence".into(),
                op: Some(">".into()),
                value: None,
            },
            TriggerSpec {
                event: "bullish".into(),
                op: Some(">".into()),
                value: None,
            },
        ];
        for spec in bad {
            assert!(Trigger::from_spec(&spec).is_err(), "{spec:?}");
        }
        assert!(
            RuleAction::from_spec(&ActionSpec {
                action: "close".into()
            })
            .is_err()
        );
        let spec = RuleSpec {
            name: "r".into(),
            continue_processing: false,
            triggers: vec![TriggerSpec {
                event: "nope".into(),
                op: None,
                value: None,
            }],
            actions: vec![
                ActionSpec {
                    action: "buy".into(),
                },
                ActionSpec {
                    action: "sel".into(),
                },
            ],
        };
        let errs = Rule::from_spec(&spec).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["triggers[0].event", "actions[1].action"]);
    }

    fn rule(name: &str, triggers: Vec<Trigger>, actions: Vec<RuleAction>, cont: bool) -> Rule {
        Rule {
            name: name.into(),
            continue_processing: cont,
            triggers,
            actions,
        }
    }

    #[test]
    fn ruleset_semantics() {
        let r = rec(
            Action::Buy,
            dec!(70),
            dec!(10),
            RiskLevel::High,
            TimeHorizon::ShortTerm,
        );
        let ctx = EvalContext {
            rec: &r,
            has_position: false,
            current_price: None,
        };
        let bullish = || trig("bullish", None, None);
        let bearish = || trig("bearish", None, None);
        use RuleAction::*;
        // (rules, expected actions, expected matched, halted)
        let cases: Vec<(Vec<Rule>, Vec<RuleAction>, Vec<&str>, Option<&str>)> = vec![
            // first match wins
            (
                vec![
                    rule("a", vec![bullish()], vec![Buy], false),
                    rule("b", vec![], vec![Sell], false),
                ],
                vec![Buy],
                vec!["a"],
                None,
            ),
            // a miss falls through to the next rule
            (
                vec![
                    rule("a", vec![bearish()], vec![Sell], false),
                    rule("b", vec![bullish()], vec![Buy], false),
                ],
                vec![Buy],
                vec!["b"],
                None,
            ),
            // continue_processing accumulates, duplicates dropped
            (
                vec![
                    rule("a", vec![bullish()], vec![Buy], true),
                    rule("b", vec![], vec![Buy, Sell], false),
                    rule("c", vec![], vec![Buy], false),
                ],
                vec![Buy, Sell],
                vec!["a", "b"],
                None,
            ),
            // a guard halts and contributes nothing, later rules are not evaluated
            (
                vec![
                    rule("guard", vec![bullish()], vec![StopProcessing, Buy], false),
                    rule("b", vec![], vec![Buy], false),
                ],
                vec![],
                vec!["guard"],
                Some("guard"),
            ),
            // a guard after an accumulating rule keeps what was added before it
            (
                vec![
                    rule("a", vec![], vec![Buy], true),
                    rule("guard", vec![], vec![StopProcessing], false),
                    rule("c", vec![], vec![Sell], false),
                ],
                vec![Buy],
                vec!["a", "guard"],
                Some("guard"),
            ),
            // a guard that does not hold is passed
            (
                vec![
                    rule("guard", vec![bearish()], vec![StopProcessing], false),
                    rule("b", vec![], vec![Buy], false),
                ],
                vec![Buy],
                vec!["b"],
                None,
            ),
            // no rule matches
            (
                vec![rule("a", vec![bearish()], vec![Sell], false)],
                vec![],
                vec![],
                None,
            ),
            // empty ruleset
            (vec![], vec![], vec![], None),
        ];
        for (rules, actions, matched, halted) in cases {
            let rs = Ruleset {
                name: "t".into(),
                rules,
            };
            let ev = rs.evaluate(&ctx);
            assert_eq!(ev.actions, actions, "{rs:?}");
            assert_eq!(ev.matched, matched, "{rs:?}");
            assert_eq!(ev.halted_by.as_deref(), halted, "{rs:?}");
        }
    }

    #[test]
    fn describe_names_the_failed_trigger() {
        let r = rec(
            Action::Buy,
            dec!(50),
            dec!(10),
            RiskLevel::High,
            TimeHorizon::ShortTerm,
        );
        let ctx = EvalContext {
            rec: &r,
            has_position: false,
            current_price: None,
        };
        let rs = Ruleset {
            name: "t".into(),
            rules: vec![rule(
                "conf",
                vec![
                    trig("bullish", None, None),
                    trig("confidence", Some(">="), Some(dec!(60))),
                ],
                vec![RuleAction::Buy],
                false,
            )],
        };
        assert_eq!(
            rs.evaluate(&ctx).describe(),
            "no rule matched (conf: confidence >= 60 not met)"
        );
    }

    #[test]
    fn percent_to_new_target_never_panics() {
        // (target_price, current quote, expected_profit_percent, trigger holds). Catches: an
        // unchecked `(target − price) / price × 100` (a large target over a tiny quote
        // overflowed the multiplication; a zero quote divided by zero).
        let t = trig("percent_to_new_target", Some(">"), Some(dec!(0)));
        let big = Some(Price::new(dec!(1000000000)).unwrap());
        // `None` as the expectation: either answer, as long as there is one.
        let cases: Vec<(Option<Price>, Option<Decimal>, Decimal, Option<bool>)> = vec![
            (
                big,
                Some(dec!(0.0000000000000000000000000001)),
                dec!(0),
                Some(false),
            ),
            (big, Some(dec!(0)), dec!(0), Some(false)),
            (big, Some(Decimal::MIN), dec!(0), Some(false)),
            (big, Some(dec!(0.0001)), dec!(0), Some(true)),
            (big, None, dec!(0), Some(true)),
            (
                None,
                Some(dec!(0.0000000000000000000000000001)),
                dec!(10),
                Some(true),
            ),
            (None, None, Decimal::MAX, None),
            (None, None, Decimal::MIN, Some(false)),
            (None, Some(Decimal::MAX), dec!(10), Some(false)),
            (None, Some(Decimal::MIN), Decimal::MAX, None),
        ];
        for (target_price, current_price, epp, want) in cases {
            let mut r = rec(
                Action::Buy,
                dec!(70),
                epp,
                RiskLevel::High,
                TimeHorizon::ShortTerm,
            );
            r.price_at_date = Price::new(dec!(0.0001)).unwrap();
            r.target_price = target_price;
            let ctx = EvalContext {
                rec: &r,
                has_position: false,
                current_price,
            };
            let got = t.holds(&ctx);
            if let Some(want) = want {
                assert_eq!(got, want, "{target_price:?} {current_price:?} {epp}");
            }
        }
    }
}
