//! What a trigger sees ([`RuleFacts`], filled by the engine) and whether it holds.
//!
//! Conditions never fail: a fact that is missing (no position, no take profit, a figure
//! that cannot be computed) makes the trigger false, as in the original. Direction always
//! comes from the position's side, never from the recommendation's action (a quirk of the
//! original, fixed).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::catalogue::{
    Flag, Grade, Metric, NEVER_CLOSED_DAYS, NEW_TARGET_TOLERANCE_PERCENT, Trigger,
};
use crate::money::{checked_div, checked_mul, checked_sub};
use crate::order::Side;
use crate::recommendation::{Action, NewRecommendation, RiskLevel, TimeHorizon};
use crate::transaction::{ActivePosition, TransactionStatus};

/// The expert's position in the symbol, as the conditions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionFacts {
    /// BUY is long, SELL short.
    pub side: Side,
    /// How many units it holds (or will hold, while WAITING).
    pub quantity: Decimal,
    /// The average fill of the entry; `None` while nothing filled.
    pub open_price: Option<Decimal>,
    /// When the entry filled; `None` while nothing filled.
    pub opened_at: Option<DateTime<Utc>>,
    /// The position's take profit: its current target.
    pub take_profit: Option<Decimal>,
    /// The position's stop loss.
    pub stop_loss: Option<Decimal>,
}

impl PositionFacts {
    /// What an active transaction tells without its exits: side, quantity, and for an
    /// OPENED (or CLOSING) one its open price (a WAITING one's price is only what it was sized
    /// at).
    pub fn from_active(p: &ActivePosition) -> PositionFacts {
        PositionFacts {
            side: p.side,
            quantity: p.quantity,
            open_price: matches!(
                p.status,
                TransactionStatus::Opened | TransactionStatus::Closing
            )
            .then_some(p.price),
            opened_at: None,
            take_profit: None,
            stop_loss: None,
        }
    }
}

/// When the expert last closed a position on the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LastCloses {
    /// Any close; `None`: never.
    pub any: Option<DateTime<Utc>>,
    /// The last close with a profit.
    pub profitable: Option<DateTime<Utc>>,
    /// The last close with a loss.
    pub losing: Option<DateTime<Utc>>,
}

/// Everything a trigger may look at, for one recommendation. `None` means "not known to
/// this run", which makes the triggers that need it false.
#[derive(Debug, Clone, Copy)]
pub struct RuleFacts<'a> {
    /// The recommendation being evaluated; its `created_at` is the evaluation's "now" for
    /// day counts, as in the original.
    pub recommendation: &'a NewRecommendation,
    /// The action of the expert's recommendation on the symbol before this one (for the
    /// rating changes); `None` when there is none.
    pub previous_action: Option<Action>,
    /// The latest quote; `price_at_date` stands in when there is none.
    pub current_price: Option<Decimal>,
    /// The expert's WAITING or OPENED transaction on the symbol. (WAITING counts, unlike
    /// the original, so that `has_position` agrees with the duplicate guard.)
    pub position: Option<PositionFacts>,
    /// Whether the broker account holds the symbol at all (`has_position_account`).
    pub account_has_position: Option<bool>,
    /// The expert's holding in the symbol in percent of its virtual equity.
    pub instrument_account_share: Option<Decimal>,
    /// The expert's past closes on the symbol.
    pub last_closes: Option<LastCloses>,
}

impl<'a> RuleFacts<'a> {
    /// The facts an enter_market run has: the recommendation, the expert's active
    /// transaction on the symbol if any, and the latest quote. Everything else is unknown.
    pub fn entry(
        recommendation: &'a NewRecommendation,
        held: Option<&ActivePosition>,
        current_price: Option<Decimal>,
    ) -> Self {
        RuleFacts {
            recommendation,
            previous_action: None,
            current_price,
            position: held.map(PositionFacts::from_active),
            account_has_position: None,
            instrument_account_share: None,
            last_closes: None,
        }
    }

    /// The price conditions measure against: the latest quote, else `price_at_date`.
    pub fn price(&self) -> Decimal {
        self.current_price
            .unwrap_or(self.recommendation.price_at_date.get())
    }
}

impl Metric {
    /// Whether the measure reads the current price ([`RuleFacts::price`]): without it, a
    /// trigger's verdict is the same whatever the quote.
    pub fn reads_price(self) -> bool {
        match self {
            Metric::PercentToNewTarget
            | Metric::PercentToCurrentTarget
            | Metric::ProfitLossAmount
            | Metric::ProfitLossPercent => true,
            Metric::Confidence
            | Metric::ExpectedProfitTargetPercent
            | Metric::NewTargetPercent
            | Metric::PercentOpenToNewTarget
            | Metric::DaysOpened
            | Metric::InstrumentAccountShare
            | Metric::DaysSinceLastClose
            | Metric::DaysSinceLastProfitableClose
            | Metric::DaysSinceLastLosingClose => false,
        }
    }
}

impl Trigger {
    /// Whether the trigger reads the current price (flags never do).
    pub fn reads_price(&self) -> bool {
        match self {
            Trigger::Flag(_) => false,
            Trigger::Compare { metric, .. } => metric.reads_price(),
        }
    }

    /// Whether the trigger holds. Missing data makes it false, never an error.
    pub fn holds(&self, facts: &RuleFacts<'_>) -> bool {
        match self {
            Trigger::Flag(f) => f.holds(facts),
            Trigger::Compare { metric, op, value } => {
                metric.measure(facts).is_some_and(|v| op.apply(v, *value))
            }
        }
    }
}

/// The original's five-grade rank: SELL 0 < UNDERWEIGHT 1 < HOLD 2 < OVERWEIGHT 3 < BUY 4.
fn rank(action: Action) -> u8 {
    match action {
        Action::Sell => 0,
        Action::Underweight => 1,
        Action::Hold => 2,
        Action::Overweight => 3,
        Action::Buy => 4,
    }
}

impl Flag {
    /// Whether the flag holds for these facts.
    pub fn holds(self, facts: &RuleFacts<'_>) -> bool {
        let r = facts.recommendation;
        let side = facts.position.map(|p| p.side);
        let previous = facts.previous_action;
        match self {
            Flag::Bullish | Flag::RatingPositive => r.action == Action::Buy,
            Flag::Bearish | Flag::RatingNegative => r.action == Action::Sell,
            Flag::RatingNeutral => r.action == Action::Hold,
            Flag::RatingOverweight => r.action == Action::Overweight,
            Flag::RatingUnderweight => r.action == Action::Underweight,
            Flag::HasPosition => side.is_some(),
            Flag::HasNoPosition => side.is_none(),
            Flag::HasBuyPosition => side == Some(Side::Buy),
            Flag::HasSellPosition => side == Some(Side::Sell),
            Flag::HasPositionAccount => facts.account_has_position == Some(true),
            Flag::HasNoPositionAccount => facts.account_has_position == Some(false),
            Flag::ShortTerm => r.time_horizon == TimeHorizon::ShortTerm,
            Flag::MediumTerm => r.time_horizon == TimeHorizon::MediumTerm,
            Flag::LongTerm => r.time_horizon == TimeHorizon::LongTerm,
            Flag::HighRisk => r.risk_level == RiskLevel::High,
            Flag::MediumRisk => r.risk_level == RiskLevel::Medium,
            Flag::LowRisk => r.risk_level == RiskLevel::Low,
            Flag::RatingChange { from, to } => {
                previous.and_then(Grade::of) == Some(from) && Grade::of(r.action) == Some(to)
            }
            Flag::RatingUpgraded => previous.is_some_and(|p| rank(r.action) > rank(p)),
            Flag::RatingDowngraded => previous.is_some_and(|p| rank(r.action) < rank(p)),
            Flag::NewTargetHigher => Metric::NewTargetPercent
                .measure(facts)
                .is_some_and(|d| d > NEW_TARGET_TOLERANCE_PERCENT),
            Flag::NewTargetLower => Metric::NewTargetPercent
                .measure(facts)
                .is_some_and(|d| d < -NEW_TARGET_TOLERANCE_PERCENT),
        }
    }
}

/// `(to − from) / from × 100`, checked; `None` when `from` is not positive or a step
/// overflows (figures come from outside: a quote may be tiny).
fn percent_change(from: Decimal, to: Decimal) -> Option<Decimal> {
    if from <= Decimal::ZERO {
        return None;
    }
    let rise = checked_sub(to, from).ok()?;
    checked_mul(checked_div(rise, from).ok()?, Decimal::ONE_HUNDRED).ok()
}

/// Fractional days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Decimal {
    Decimal::from((to - from).num_milliseconds()) / Decimal::from(86_400_000)
}

/// The gain per unit in the position's direction: price − open on a long, open − price
/// on a short.
fn gain_per_unit(p: &PositionFacts, price: Decimal) -> Option<Decimal> {
    let open = p.open_price?;
    match p.side {
        Side::Buy => checked_sub(price, open).ok(),
        Side::Sell => checked_sub(open, price).ok(),
    }
}

impl Metric {
    /// The measured value, or `None` when a fact it needs is missing or it cannot be
    /// computed.
    pub fn measure(self, facts: &RuleFacts<'_>) -> Option<Decimal> {
        let r = facts.recommendation;
        let price = facts.price();
        let position = facts.position;
        let take_profit = || position?.take_profit;
        let since = |t: Option<Option<DateTime<Utc>>>| {
            t.map(|t| t.map_or(NEVER_CLOSED_DAYS, |t| days_between(t, r.created_at)))
        };
        let closes = facts.last_closes;
        match self {
            Metric::Confidence => Some(r.confidence),
            Metric::ExpectedProfitTargetPercent => Some(r.expected_profit_percent),
            Metric::PercentToNewTarget => percent_change(price, r.target()?),
            Metric::PercentToCurrentTarget => percent_change(price, take_profit()?),
            Metric::NewTargetPercent => percent_change(take_profit()?, r.target()?),
            Metric::PercentOpenToNewTarget => percent_change(position?.open_price?, r.target()?),
            Metric::ProfitLossAmount => {
                let p = position?;
                checked_mul(gain_per_unit(&p, price)?, p.quantity)
                    .ok()
                    .map(|v| v.round_dp(2))
            }
            Metric::ProfitLossPercent => {
                let p = position?;
                let open = p.open_price?;
                let change = percent_change(open, price)?;
                let signed = match p.side {
                    Side::Buy => change,
                    Side::Sell => -change,
                };
                Some(signed.round_dp(4))
            }
            Metric::DaysOpened => Some(days_between(position?.opened_at?, r.created_at)),
            Metric::InstrumentAccountShare => facts.instrument_account_share,
            Metric::DaysSinceLastClose => since(closes.map(|c| c.any)),
            Metric::DaysSinceLastProfitableClose => since(closes.map(|c| c.profitable)),
            Metric::DaysSinceLastLosingClose => since(closes.map(|c| c.losing)),
        }
    }
}
