//! The condition catalogue (reference §4.3): every trigger name, what it measures, the range
//! its threshold may take, and how a written trigger becomes a typed [`Trigger`].
//!
//! Options, FMP ratings, daily bars and earnings conditions of the original are named here
//! too, so that a rule using one is refused with the reason instead of as a typo.

use std::ops::RangeInclusive;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::RuleError;
use crate::recommendation::Action;

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

/// A rating bucket of the original's `rating_X_to_Y` flags: positive is BUY, neutral HOLD,
/// negative SELL. OVERWEIGHT and UNDERWEIGHT belong to none (as in the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grade {
    Positive,
    Neutral,
    Negative,
}

impl Grade {
    /// The bucket of a recommended action, if it has one.
    pub fn of(action: Action) -> Option<Grade> {
        match action {
            Action::Buy => Some(Grade::Positive),
            Action::Hold => Some(Grade::Neutral),
            Action::Sell => Some(Grade::Negative),
            Action::Overweight | Action::Underweight => None,
        }
    }
}

/// A flag trigger: true or false from the facts, no threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Bullish,
    Bearish,
    RatingPositive,
    RatingNeutral,
    RatingNegative,
    RatingOverweight,
    RatingUnderweight,
    /// The expert has a WAITING or OPENED transaction on the symbol.
    HasPosition,
    HasNoPosition,
    /// … and it is long.
    HasBuyPosition,
    /// … and it is short.
    HasSellPosition,
    /// The broker account holds the symbol, whoever opened it.
    HasPositionAccount,
    HasNoPositionAccount,
    ShortTerm,
    MediumTerm,
    LongTerm,
    HighRisk,
    MediumRisk,
    LowRisk,
    /// The previous recommendation was in bucket `from`, the current one is in `to`.
    RatingChange {
        from: Grade,
        to: Grade,
    },
    /// The current recommendation ranks above the previous one (SELL < UNDERWEIGHT < HOLD <
    /// OVERWEIGHT < BUY).
    RatingUpgraded,
    /// … below it.
    RatingDowngraded,
    /// The expert's new target is more than [`NEW_TARGET_TOLERANCE_PERCENT`] above the
    /// position's take profit.
    NewTargetHigher,
    /// … more than that below it.
    NewTargetLower,
}

/// How far (in percent of the take profit) a new target must be from it for
/// `new_target_higher` / `new_target_lower` to hold: the original's 2 %.
pub const NEW_TARGET_TOLERANCE_PERCENT: Decimal = Decimal::from_parts(2, 0, 0, false, 0);

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
    ("has_buy_position", Flag::HasBuyPosition),
    ("has_sell_position", Flag::HasSellPosition),
    ("has_position_account", Flag::HasPositionAccount),
    ("has_no_position_account", Flag::HasNoPositionAccount),
    ("short_term", Flag::ShortTerm),
    ("medium_term", Flag::MediumTerm),
    ("long_term", Flag::LongTerm),
    ("highrisk", Flag::HighRisk),
    ("mediumrisk", Flag::MediumRisk),
    ("lowrisk", Flag::LowRisk),
    (
        "rating_negative_to_neutral",
        rating(Grade::Negative, Grade::Neutral),
    ),
    (
        "rating_negative_to_positive",
        rating(Grade::Negative, Grade::Positive),
    ),
    (
        "rating_neutral_to_negative",
        rating(Grade::Neutral, Grade::Negative),
    ),
    (
        "rating_neutral_to_positive",
        rating(Grade::Neutral, Grade::Positive),
    ),
    (
        "rating_positive_to_negative",
        rating(Grade::Positive, Grade::Negative),
    ),
    (
        "rating_positive_to_neutral",
        rating(Grade::Positive, Grade::Neutral),
    ),
    ("rating_upgraded", Flag::RatingUpgraded),
    ("rating_downgraded", Flag::RatingDowngraded),
    ("new_target_higher", Flag::NewTargetHigher),
    ("new_target_lower", Flag::NewTargetLower),
];

const fn rating(from: Grade, to: Grade) -> Flag {
    Flag::RatingChange { from, to }
}

/// A numeric trigger's measured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// The recommendation's confidence, 0–100.
    Confidence,
    /// The recommendation's expected profit, in percent.
    ExpectedProfitTargetPercent,
    /// (expert target − price) / price × 100.
    PercentToNewTarget,
    /// (take profit − price) / price × 100.
    PercentToCurrentTarget,
    /// (expert target − take profit) / take profit × 100.
    NewTargetPercent,
    /// (expert target − open price) / open price × 100.
    PercentOpenToNewTarget,
    /// The position's unrealised profit (negative: loss) at the price, to the cent.
    ProfitLossAmount,
    /// … in percent of what was paid, to 4 decimal places.
    ProfitLossPercent,
    /// Days from the position's opening to the recommendation, fractional.
    DaysOpened,
    /// The expert's holding in the symbol, in percent of its virtual equity.
    InstrumentAccountShare,
    /// Days from the expert's last close on the symbol to the recommendation;
    /// [`NEVER_CLOSED_DAYS`] when it never closed one.
    DaysSinceLastClose,
    /// … counting only closes with a profit.
    DaysSinceLastProfitableClose,
    /// … counting only closes with a loss.
    DaysSinceLastLosingClose,
}

/// What `days_since_last_*` measure when the expert never closed such a position on the
/// symbol: the original's sentinel, so a cooldown gate (`> 30`) passes.
pub const NEVER_CLOSED_DAYS: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

const METRICS: &[(&str, Metric)] = &[
    ("confidence", Metric::Confidence),
    (
        "expected_profit_target_percent",
        Metric::ExpectedProfitTargetPercent,
    ),
    ("percent_to_new_target", Metric::PercentToNewTarget),
    ("percent_to_current_target", Metric::PercentToCurrentTarget),
    ("new_target_percent", Metric::NewTargetPercent),
    ("percent_open_to_new_target", Metric::PercentOpenToNewTarget),
    ("profit_loss_amount", Metric::ProfitLossAmount),
    ("profit_loss_percent", Metric::ProfitLossPercent),
    ("days_opened", Metric::DaysOpened),
    ("instrument_account_share", Metric::InstrumentAccountShare),
    ("days_since_last_close", Metric::DaysSinceLastClose),
    (
        "days_since_last_profitable_close",
        Metric::DaysSinceLastProfitableClose,
    ),
    (
        "days_since_last_losing_close",
        Metric::DaysSinceLastLosingClose,
    ),
];

impl Metric {
    /// The thresholds a trigger on this metric may compare with: the range of what it
    /// measures where it has one (confidence 0–100), else a bound far beyond any real figure,
    /// so that comparing never meets an absurd number.
    pub fn value_range(self) -> RangeInclusive<i64> {
        match self {
            Metric::Confidence => 0..=100,
            Metric::ExpectedProfitTargetPercent => -10_000..=10_000,
            Metric::PercentToNewTarget
            | Metric::PercentToCurrentTarget
            | Metric::NewTargetPercent
            | Metric::PercentOpenToNewTarget
            | Metric::ProfitLossPercent => -1_000_000..=1_000_000,
            // The largest configurable cash.
            Metric::ProfitLossAmount => -1_000_000_000_000_000..=1_000_000_000_000_000,
            // A century, either way (a position may open after the recommendation).
            Metric::DaysOpened => -36_500..=36_500,
            Metric::DaysSinceLastClose
            | Metric::DaysSinceLastProfitableClose
            | Metric::DaysSinceLastLosingClose => -36_500..=1_000_000_000,
            Metric::InstrumentAccountShare => 0..=1_000_000,
        }
    }
}

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
    /// `a OP b`.
    pub fn apply(self, a: Decimal, b: Decimal) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }

    /// The written form (`>=`).
    pub fn as_str(self) -> &'static str {
        name_of(OPS, &self)
    }
}

/// Conditions of the original that tradewarden refuses, with the reason.
const UNSUPPORTED_EVENTS: &[(&str, &str)] = &[
    ("has_option_position", OPTIONS),
    ("has_covered_call", OPTIONS),
    ("has_protective_put", OPTIONS),
    ("has_assigned_shares", OPTIONS),
    ("iv_rank", OPTIONS),
    ("iv_to_realized_vol", OPTIONS),
    ("days_to_expiry", OPTIONS),
    ("short_leg_days_to_expiry", OPTIONS),
    ("covered_call_days_to_expiry", OPTIONS),
    ("loss_pct_of_max_loss", OPTIONS),
    ("profit_multiple_of_premium", OPTIONS),
    ("credit_decayed_pct", OPTIONS),
    ("long_leg_delta", OPTIONS),
    ("price_vs_target_low_percent", FMP),
    ("price_vs_target_high_percent", FMP),
    ("price_vs_target_consensus_percent", FMP),
    ("percent_below_recent_high", BARS),
    ("percent_above_recent_low", BARS),
    ("relative_volume", BARS),
    ("days_to_earnings", EARNINGS),
    ("rec_days_to_earnings", EARNINGS),
    ("days_after_event", EARNINGS),
];

/// Why option conditions and actions are refused.
pub(super) const OPTIONS: &str = "options (tradewarden trades shares only)";
const FMP: &str = "FMP ratings (tradewarden has no analyst price targets)";
const BARS: &str = "daily bars (tradewarden keeps only the latest quote)";
const EARNINGS: &str = "earnings (tradewarden has no earnings calendar)";

/// The first name in `table` of `value`.
pub(super) fn name_of<T: PartialEq>(table: &[(&'static str, T)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| v == value)
        .map_or("?", |(n, _)| *n)
}

/// Every name of `table`, for "one of …" in errors.
pub(super) fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn lookup<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

impl Flag {
    /// The trigger's name.
    pub fn name(self) -> &'static str {
        name_of(FLAGS, &self)
    }
}

impl Metric {
    /// The trigger's name.
    pub fn name(self) -> &'static str {
        name_of(METRICS, &self)
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

fn problem(field: &str, problem: String) -> RuleError {
    RuleError {
        field: field.into(),
        problem,
    }
}

impl Trigger {
    /// Builds a trigger from its spec, refusing unknown and unsupported events, malformed
    /// comparisons and thresholds outside the metric's range.
    pub fn from_spec(spec: &TriggerSpec) -> Result<Trigger, RuleError> {
        if let Some(flag) = lookup(FLAGS, &spec.event) {
            if spec.op.is_some() || spec.value.is_some() {
                return Err(problem(
                    "op",
                    format!("flag trigger \"{}\" takes no op or value", spec.event),
                ));
            }
            return Ok(Trigger::Flag(flag));
        }
        if let Some(metric) = lookup(METRICS, &spec.event) {
            return compare(metric, spec);
        }
        if let Some(why) = lookup(UNSUPPORTED_EVENTS, &spec.event) {
            return Err(problem(
                "event",
                format!("trigger \"{}\" is not supported: {why}", spec.event),
            ));
        }
        Err(problem(
            "event",
            format!(
                "unknown trigger \"{}\" (one of {}, {})",
                spec.event,
                names(FLAGS),
                names(METRICS)
            ),
        ))
    }

    /// The trigger's name (`confidence`).
    pub fn event(&self) -> &'static str {
        match self {
            Trigger::Flag(f) => f.name(),
            Trigger::Compare { metric, .. } => metric.name(),
        }
    }
}

/// A numeric trigger: an operator and a threshold in the metric's range.
fn compare(metric: Metric, spec: &TriggerSpec) -> Result<Trigger, RuleError> {
    let Some(op) = spec.op.as_deref() else {
        return Err(problem(
            "op",
            format!("numeric trigger \"{}\" needs an op", spec.event),
        ));
    };
    let op = lookup(OPS, op).ok_or_else(|| {
        problem(
            "op",
            format!("unknown operator \"{op}\" (one of {})", names(OPS)),
        )
    })?;
    let value = spec.value.ok_or_else(|| {
        problem(
            "value",
            format!("numeric trigger \"{}\" needs a value", spec.event),
        )
    })?;
    let range = metric.value_range();
    if value < Decimal::from(*range.start()) || value > Decimal::from(*range.end()) {
        return Err(problem(
            "value",
            format!(
                "out of range ({}..={}), got {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(Trigger::Compare { metric, op, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn spec(event: &str, op: Option<&str>, value: Option<Decimal>) -> TriggerSpec {
        TriggerSpec {
            event: event.into(),
            op: op.map(Into::into),
            value,
        }
    }

    #[test]
    fn every_name_reads_back() {
        // Catches: a name listed twice, or a variant missing from its table.
        for (name, flag) in FLAGS {
            assert_eq!(flag.name(), *name);
            assert_eq!(
                Trigger::from_spec(&spec(name, None, None)),
                Ok(Trigger::Flag(*flag))
            );
        }
        for (name, metric) in METRICS {
            assert_eq!(metric.name(), *name);
            let t = Trigger::from_spec(&spec(name, Some(">"), Some(dec!(0)))).unwrap();
            assert_eq!(t.event(), *name);
        }
        assert_eq!(FLAGS.len(), 29);
        assert_eq!(METRICS.len(), 13);
    }

    #[test]
    fn bad_specs_are_refused_naming_the_field() {
        // (spec, field, start of the problem)
        let cases = [
            (
                spec("bulish", None, None),
                "event",
                "unknown trigger \"bulish\"",
            ),
            (
                spec("confidence", None, Some(dec!(1))),
                "op",
                "numeric trigger \"confidence\" needs an op",
            ),
            (
                spec("confidence", Some("gte"), Some(dec!(1))),
                "op",
                "unknown operator \"gte\"",
            ),
            (
                spec("confidence", Some(">"), None),
                "value",
                "numeric trigger \"confidence\" needs a value",
            ),
            (
                spec("bullish", Some(">"), None),
                "op",
                "flag trigger \"bullish\" takes no op",
            ),
            (
                spec("confidence", Some(">"), Some(dec!(101))),
                "value",
                "out of range (0..=100), got 101",
            ),
            (
                spec("days_opened", Some(">"), Some(dec!(-36501))),
                "value",
                "out of range (-36500..=36500), got -36501",
            ),
            (
                spec("instrument_account_share", Some(">"), Some(dec!(-0.1))),
                "value",
                "out of range (0..=1000000), got -0.1",
            ),
            (
                spec("price_vs_target_low_percent", Some(">"), Some(dec!(1))),
                "event",
                "trigger \"price_vs_target_low_percent\" is not supported: FMP ratings",
            ),
            (
                spec("iv_rank", Some(">"), Some(dec!(1))),
                "event",
                "trigger \"iv_rank\" is not supported: options",
            ),
            (
                spec("percent_below_recent_high", Some(">"), Some(dec!(1))),
                "event",
                "trigger \"percent_below_recent_high\" is not supported: daily bars",
            ),
            (
                spec("days_to_earnings", Some(">"), Some(dec!(1))),
                "event",
                "trigger \"days_to_earnings\" is not supported: earnings",
            ),
        ];
        for (s, field, want) in cases {
            let e = Trigger::from_spec(&s).unwrap_err();
            assert_eq!(e.field, field, "{s:?}");
            assert!(e.problem.starts_with(want), "{s:?}: {}", e.problem);
        }
    }

    #[test]
    fn thresholds_at_the_ends_of_their_range_are_accepted() {
        for (name, metric) in METRICS {
            let r = metric.value_range();
            for v in [*r.start(), *r.end()] {
                assert!(
                    Trigger::from_spec(&spec(name, Some("<="), Some(Decimal::from(v)))).is_ok(),
                    "{name} {v}"
                );
            }
        }
    }
}
