//! The action catalogue (reference §4.4): what a matching rule may ask for, with its
//! parameters, and how the matched actions reduce to one plan (reference §4.2).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::RuleError;
use super::catalogue::OPTIONS;
use crate::money::Price;
use crate::order::Side;

/// An action as written in configuration: `{ action = "buy" }`,
/// `{ action = "adjust_take_profit", reference = "order_open_price", value = 10 }`,
/// `{ action = "adjust_stop_loss", price = 95.5 }`,
/// `{ action = "increase_instrument_share", value = 8 }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub action: String,
    /// For `adjust_*`: the price a percentage applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// For `adjust_*`: a signed percentage from `reference`; for `*_instrument_share`: the
    /// target share of virtual equity, in percent.
    #[serde(
        default,
        deserialize_with = "crate::money::serde_decimal::deserialize_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Decimal>,
    /// For `adjust_*`: an absolute price instead of `reference` and `value`.
    #[serde(
        default,
        deserialize_with = "crate::money::serde_decimal::deserialize_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
}

/// The price an `adjust_*` percentage applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ExitReference {
    /// The entry's price: its limit, else its fill, else the current price.
    OrderOpenPrice,
    /// The latest quote.
    CurrentPrice,
    /// The recommendation's target price.
    ExpertTargetPrice,
}

wire_names!(ExitReference);

/// Where an `adjust_take_profit` or `adjust_stop_loss` puts the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitTarget {
    /// `percent` from `reference`, positive in the position's profit direction: on a long,
    /// +10 is 10 % above the reference and −5 is 5 % below; mirrored on a short.
    Percent {
        reference: ExitReference,
        percent: Decimal,
    },
    /// This price exactly (floors and the ratchet still apply).
    Price(Price),
}

/// What a matching rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Open a long position (needs enable_buy).
    Buy,
    /// Open a short position (needs enable_sell).
    Sell,
    /// Close the position.
    Close,
    /// Move (or set) the take profit.
    AdjustTakeProfit(ExitTarget),
    /// Move (or set) the stop loss; never loosened.
    AdjustStopLoss(ExitTarget),
    /// Grow the position to this share of the expert's virtual equity, in percent.
    IncreaseInstrumentShare(Decimal),
    /// Shrink the position to this share of the expert's virtual equity, in percent.
    DecreaseInstrumentShare(Decimal),
    /// Guard: halt evaluation, contribute nothing.
    StopProcessing,
}

/// Every action name, in the catalogue's order.
pub const ACTION_NAMES: &[&str] = &[
    "buy",
    "sell",
    "close",
    "adjust_take_profit",
    "adjust_stop_loss",
    "increase_instrument_share",
    "decrease_instrument_share",
    "stop_processing",
];

/// Option actions of the original, refused with the reason.
const OPTION_ACTIONS: &[&str] = &[
    "buy_call",
    "buy_put",
    "sell_covered_call",
    "buy_protective_put",
    "sell_cash_secured_put",
    "open_bull_call_spread",
    "open_bear_put_spread",
    "open_bear_call_spread",
    "open_bull_put_spread",
    "open_straddle",
    "open_strangle",
    "open_short_straddle",
    "open_short_strangle",
    "open_iron_condor",
    "open_jade_lizard",
    "open_call_butterfly",
    "open_put_ratio_spread",
    "open_call_backspread",
    "open_put_backspread",
    "open_pmcc",
    "roll_pmcc_short",
    "close_option",
];

/// The accepted `value` of an `adjust_*` action, in percent.
pub const ADJUST_PERCENT_RANGE: std::ops::RangeInclusive<i64> = -1000..=1000;

impl RuleAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Buy => "buy",
            RuleAction::Sell => "sell",
            RuleAction::Close => "close",
            RuleAction::AdjustTakeProfit(_) => "adjust_take_profit",
            RuleAction::AdjustStopLoss(_) => "adjust_stop_loss",
            RuleAction::IncreaseInstrumentShare(_) => "increase_instrument_share",
            RuleAction::DecreaseInstrumentShare(_) => "decrease_instrument_share",
            RuleAction::StopProcessing => "stop_processing",
        }
    }

    /// The side of the position it opens.
    pub fn side(self) -> Option<Side> {
        match self {
            RuleAction::Buy => Some(Side::Buy),
            RuleAction::Sell => Some(Side::Sell),
            _ => None,
        }
    }

    /// Builds an action from its spec, refusing unknown and option actions and parameters
    /// that are missing, out of range or not used by the action.
    pub fn from_spec(spec: &ActionSpec) -> Result<RuleAction, RuleError> {
        let action = match spec.action.as_str() {
            "buy" => RuleAction::Buy,
            "sell" => RuleAction::Sell,
            "close" => RuleAction::Close,
            "stop_processing" => RuleAction::StopProcessing,
            "adjust_take_profit" => return exit_target(spec).map(RuleAction::AdjustTakeProfit),
            "adjust_stop_loss" => return exit_target(spec).map(RuleAction::AdjustStopLoss),
            "increase_instrument_share" => {
                return share_target(spec).map(RuleAction::IncreaseInstrumentShare);
            }
            "decrease_instrument_share" => {
                return share_target(spec).map(RuleAction::DecreaseInstrumentShare);
            }
            other if OPTION_ACTIONS.contains(&other) => {
                return Err(problem(
                    "action",
                    format!("action \"{other}\" is not supported: {OPTIONS}"),
                ));
            }
            other => {
                return Err(problem(
                    "action",
                    format!(
                        "unknown action \"{other}\" (one of {})",
                        ACTION_NAMES.join(", ")
                    ),
                ));
            }
        };
        refuse_parameters(spec, &["reference", "value", "price"])?;
        Ok(action)
    }
}

fn problem(field: &str, problem: String) -> RuleError {
    RuleError {
        field: field.into(),
        problem,
    }
}

/// Refuses each of `fields` that the spec sets: the action does not use it.
fn refuse_parameters(spec: &ActionSpec, fields: &[&str]) -> Result<(), RuleError> {
    for field in fields {
        let set = match *field {
            "reference" => spec.reference.is_some(),
            "value" => spec.value.is_some(),
            _ => spec.price.is_some(),
        };
        if set {
            return Err(problem(
                field,
                format!("not used by action \"{}\"", spec.action),
            ));
        }
    }
    Ok(())
}

/// `reference` and `value`, or `price`, of an `adjust_*` action.
fn exit_target(spec: &ActionSpec) -> Result<ExitTarget, RuleError> {
    match (spec.reference.as_deref(), spec.value, spec.price) {
        (None, None, Some(price)) => Price::new(price)
            .map(ExitTarget::Price)
            .map_err(|e| problem("price", e.to_string())),
        (Some(reference), Some(percent), None) => {
            let reference = ExitReference::parse(reference).ok_or_else(|| {
                problem(
                    "reference",
                    format!(
                        "unknown reference \"{reference}\" (one of order_open_price, current_price, expert_target_price)"
                    ),
                )
            })?;
            in_range("value", percent, &ADJUST_PERCENT_RANGE)?;
            Ok(ExitTarget::Percent { reference, percent })
        }
        (_, _, Some(_)) => Err(problem(
            "price",
            format!(
                "action \"{}\" takes either price or reference and value, not both",
                spec.action
            ),
        )),
        (None, _, None) => Err(problem(
            "reference",
            format!(
                "action \"{}\" needs reference and value (or price)",
                spec.action
            ),
        )),
        (Some(_), None, None) => Err(problem(
            "value",
            format!(
                "action \"{}\" needs a value with its reference",
                spec.action
            ),
        )),
    }
}

/// The target percentage of a `*_instrument_share` action: 0 to 100.
fn share_target(spec: &ActionSpec) -> Result<Decimal, RuleError> {
    refuse_parameters(spec, &["reference", "price"])?;
    let value = spec.value.ok_or_else(|| {
        problem(
            "value",
            format!(
                "action \"{}\" needs a value (target percent of virtual equity)",
                spec.action
            ),
        )
    })?;
    in_range("value", value, &(0..=100))?;
    Ok(value)
}

fn in_range(
    field: &str,
    value: Decimal,
    range: &std::ops::RangeInclusive<i64>,
) -> Result<(), RuleError> {
    if value < Decimal::from(*range.start()) || value > Decimal::from(*range.end()) {
        return Err(problem(
            field,
            format!(
                "out of range ({}..={}), got {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(())
}

/// The matched actions reduced as the original executes them (reference §4.2): the entry
/// side, whether to close, and the last take-profit, stop-loss, increase and decrease
/// actions (an earlier one of each kind is overridden by a later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionPlan {
    /// `buy` or `sell`; `None` when neither or both were asked for.
    pub entry: Option<Side>,
    /// Both `buy` and `sell` matched: no entry is possible.
    pub conflicting_entry: bool,
    pub close: bool,
    pub take_profit: Option<ExitTarget>,
    pub stop_loss: Option<ExitTarget>,
    /// Target percent of virtual equity.
    pub increase_share: Option<Decimal>,
    /// Target percent of virtual equity.
    pub decrease_share: Option<Decimal>,
}

impl ActionPlan {
    /// Reduces the actions of an evaluation, in their order.
    pub fn from_actions(actions: &[RuleAction]) -> ActionPlan {
        let mut plan = ActionPlan::default();
        for a in actions {
            match *a {
                RuleAction::Buy | RuleAction::Sell => match plan.entry {
                    Some(side) if Some(side) != a.side() => plan.conflicting_entry = true,
                    _ => plan.entry = a.side(),
                },
                RuleAction::Close => plan.close = true,
                RuleAction::AdjustTakeProfit(t) => plan.take_profit = Some(t),
                RuleAction::AdjustStopLoss(t) => plan.stop_loss = Some(t),
                RuleAction::IncreaseInstrumentShare(p) => plan.increase_share = Some(p),
                RuleAction::DecreaseInstrumentShare(p) => plan.decrease_share = Some(p),
                RuleAction::StopProcessing => {}
            }
        }
        if plan.conflicting_entry {
            plan.entry = None;
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn spec(
        action: &str,
        reference: Option<&str>,
        value: Option<Decimal>,
        price: Option<Decimal>,
    ) -> ActionSpec {
        ActionSpec {
            action: action.into(),
            reference: reference.map(Into::into),
            value,
            price,
        }
    }

    fn pct(reference: ExitReference, percent: Decimal) -> ExitTarget {
        ExitTarget::Percent { reference, percent }
    }

    #[test]
    fn every_action_from_its_spec() {
        use ExitReference::*;
        let p = |d| Price::new(d).unwrap();
        let cases = [
            (spec("buy", None, None, None), RuleAction::Buy),
            (spec("sell", None, None, None), RuleAction::Sell),
            (spec("close", None, None, None), RuleAction::Close),
            (
                spec("stop_processing", None, None, None),
                RuleAction::StopProcessing,
            ),
            (
                spec(
                    "adjust_take_profit",
                    Some("order_open_price"),
                    Some(dec!(10)),
                    None,
                ),
                RuleAction::AdjustTakeProfit(pct(OrderOpenPrice, dec!(10))),
            ),
            (
                spec(
                    "adjust_take_profit",
                    Some("expert_target_price"),
                    Some(dec!(-10)),
                    None,
                ),
                RuleAction::AdjustTakeProfit(pct(ExpertTargetPrice, dec!(-10))),
            ),
            (
                spec(
                    "adjust_stop_loss",
                    Some("current_price"),
                    Some(dec!(-5)),
                    None,
                ),
                RuleAction::AdjustStopLoss(pct(CurrentPrice, dec!(-5))),
            ),
            (
                spec("adjust_stop_loss", None, None, Some(dec!(95.5))),
                RuleAction::AdjustStopLoss(ExitTarget::Price(p(dec!(95.5)))),
            ),
            (
                spec("increase_instrument_share", None, Some(dec!(8)), None),
                RuleAction::IncreaseInstrumentShare(dec!(8)),
            ),
            (
                spec("decrease_instrument_share", None, Some(dec!(0)), None),
                RuleAction::DecreaseInstrumentShare(dec!(0)),
            ),
        ];
        for (s, want) in cases {
            let got = RuleAction::from_spec(&s).unwrap();
            assert_eq!(got, want, "{s:?}");
            assert_eq!(got.as_str(), s.action);
        }
    }

    #[test]
    fn bad_action_specs_name_their_field() {
        let cases = [
            (
                spec("sel", None, None, None),
                "action",
                "unknown action \"sel\"",
            ),
            (
                spec("buy_call", None, None, None),
                "action",
                "action \"buy_call\" is not supported: options",
            ),
            (
                spec("close", None, Some(dec!(1)), None),
                "value",
                "not used by action \"close\"",
            ),
            (
                spec("buy", Some("current_price"), None, None),
                "reference",
                "not used by action \"buy\"",
            ),
            (
                spec("adjust_take_profit", None, None, None),
                "reference",
                "action \"adjust_take_profit\" needs reference and value",
            ),
            (
                spec("adjust_take_profit", Some("current_price"), None, None),
                "value",
                "action \"adjust_take_profit\" needs a value",
            ),
            (
                spec("adjust_stop_loss", Some("entry"), Some(dec!(1)), None),
                "reference",
                "unknown reference \"entry\"",
            ),
            (
                spec(
                    "adjust_stop_loss",
                    Some("current_price"),
                    Some(dec!(1)),
                    Some(dec!(2)),
                ),
                "price",
                "action \"adjust_stop_loss\" takes either price or reference and value",
            ),
            (
                spec("adjust_stop_loss", None, None, Some(dec!(0))),
                "price",
                "0 is out of range",
            ),
            (
                spec(
                    "adjust_stop_loss",
                    Some("current_price"),
                    Some(dec!(-1001)),
                    None,
                ),
                "value",
                "out of range (-1000..=1000), got -1001",
            ),
            (
                spec("increase_instrument_share", None, Some(dec!(100.1)), None),
                "value",
                "out of range (0..=100), got 100.1",
            ),
            (
                spec("decrease_instrument_share", None, None, None),
                "value",
                "action \"decrease_instrument_share\" needs a value",
            ),
            (
                spec(
                    "increase_instrument_share",
                    None,
                    Some(dec!(5)),
                    Some(dec!(1)),
                ),
                "price",
                "not used by action",
            ),
        ];
        for (s, field, want) in cases {
            let e = RuleAction::from_spec(&s).unwrap_err();
            assert_eq!(e.field, field, "{s:?}: {e}");
            assert!(e.problem.starts_with(want), "{s:?}: {}", e.problem);
        }
    }

    #[test]
    fn the_plan_keeps_the_last_of_each_kind() {
        use ExitReference::*;
        let tp1 = pct(CurrentPrice, dec!(5));
        let tp2 = pct(OrderOpenPrice, dec!(10));
        let sl = pct(CurrentPrice, dec!(-5));
        // (actions, expected plan)
        let cases = [
            (vec![], ActionPlan::default()),
            (
                vec![
                    RuleAction::Buy,
                    RuleAction::AdjustTakeProfit(tp1),
                    RuleAction::AdjustStopLoss(sl),
                    RuleAction::AdjustTakeProfit(tp2),
                ],
                ActionPlan {
                    entry: Some(Side::Buy),
                    take_profit: Some(tp2),
                    stop_loss: Some(sl),
                    ..ActionPlan::default()
                },
            ),
            (
                vec![RuleAction::Buy, RuleAction::Sell],
                ActionPlan {
                    conflicting_entry: true,
                    ..ActionPlan::default()
                },
            ),
            (
                vec![
                    RuleAction::Close,
                    RuleAction::IncreaseInstrumentShare(dec!(5)),
                    RuleAction::DecreaseInstrumentShare(dec!(3)),
                    RuleAction::IncreaseInstrumentShare(dec!(8)),
                ],
                ActionPlan {
                    close: true,
                    increase_share: Some(dec!(8)),
                    decrease_share: Some(dec!(3)),
                    ..ActionPlan::default()
                },
            ),
        ];
        for (actions, want) in cases {
            assert_eq!(ActionPlan::from_actions(&actions), want, "{actions:?}");
        }
    }
}
