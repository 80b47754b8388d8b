//! The open_positions decision for one recommendation (reference §3, without its quirks):
//! what to do with the expert's position in the recommendation's symbol — nothing, close
//! it, or move its take profit / stop loss — as a plain value the engine carries out.
//!
//! - No OPENED position (none, or only a WAITING entry): [`Decision::NoPosition`].
//! - The position is CLOSING or has a close order working: [`Decision::CloseWorking`], the
//!   ruleset is not even asked (a second close must never be started).
//! - Otherwise the open_positions ruleset decides. `close` wins over exit moves (the
//!   original's priorities). Exit prices come from [`crate::exits`]: direction from the
//!   position's side, the floors, and the ratchet — a stop move that would loosen the stop is
//!   no change, named in the detail. `buy` / `sell` do nothing here (they are entries),
//!   said in the detail.
//! - `increase_instrument_share` / `decrease_instrument_share` (after `close`, before exit
//!   moves): [`Decision::Share`], an order on the same transaction sized by
//!   [`crate::instrument_share`]; decreasing to 0 % is a close. Exit moves of the same plan
//!   are left to the next run (the legs are resized to the new quantity anyway).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::exits::{self, ExitPosition, ExitPrice, ExitSettings, Unchanged};
use crate::instrument_share::{ShareInputs, ShareOrder, decrease_share, increase_share};
use crate::money::Price;
use crate::order::Side;
use crate::outcome::OutcomeKind;
use crate::recommendation::{Action, NewRecommendation};
use crate::rules::{ActionPlan, LastCloses, PositionFacts, RuleFacts, Ruleset};
use crate::transaction::TransactionStatus;

/// The expert's OPENED or CLOSING transaction in a symbol, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPosition {
    pub transaction_id: i64,
    /// BUY is long, SELL short.
    pub side: Side,
    pub status: TransactionStatus,
    pub quantity: Decimal,
    /// The entry's average fill.
    pub open_price: Option<Decimal>,
    pub opened_at: Option<DateTime<Utc>>,
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
    /// A close order of the transaction is still working at the broker.
    pub close_working: bool,
}

impl HeldPosition {
    /// Of two transactions of one symbol (an OPENED or WAITING one beside one still
    /// CLOSING), whether this one is the one to decide on: OPENED first (it is managed),
    /// then CLOSING (its close is working), then WAITING (nothing to manage yet).
    pub fn precedes(&self, other: &HeldPosition) -> bool {
        fn rank(s: TransactionStatus) -> u8 {
            match s {
                TransactionStatus::Opened => 0,
                TransactionStatus::Closing => 1,
                _ => 2,
            }
        }
        rank(self.status) < rank(other.status)
    }
}

/// Everything known about one considered recommendation.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// The newest recommendation of the expert on the symbol in the window.
    pub recommendation: &'a NewRecommendation,
    /// The action of the one before it (for rating changes), if any.
    pub previous_action: Option<Action>,
    /// The expert's OPENED or CLOSING transaction in the symbol.
    pub position: Option<&'a HeldPosition>,
    /// The latest quote.
    pub current_price: Option<Decimal>,
    /// The position's value in percent of the expert's virtual equity.
    pub instrument_account_share: Option<Decimal>,
    /// When the expert last closed a position in the symbol.
    pub last_closes: LastCloses,
    /// The expert's money, for the instrument-share actions; `None` when the broker's
    /// account could not be read.
    pub funds: Option<Funds>,
}

/// What the instrument-share actions size from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Funds {
    /// The expert's virtual equity.
    pub virtual_equity: Decimal,
    /// What the expert may still spend (as enter_market computes it).
    pub available: Decimal,
    /// `max_virtual_equity_per_instrument_percent`.
    pub max_instrument_percent: Decimal,
}

/// What to do for one recommendation; each variant is one outcome kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No OPENED position: nothing to manage.
    NoPosition { detail: String },
    /// The position is already being closed.
    CloseWorking { transaction_id: i64, detail: String },
    /// Nothing to change.
    NoAction { transaction_id: i64, detail: String },
    /// Close the position.
    Close { transaction_id: i64, detail: String },
    /// Buy more or sell part of the position (instrument-share actions): `order` on the same
    /// transaction.
    Share {
        transaction_id: i64,
        order: ShareOrder,
        detail: String,
    },
    /// Move the exits; `None` keeps that exit as it is.
    Adjust {
        transaction_id: i64,
        take_profit: Option<Price>,
        stop_loss: Option<Price>,
        detail: String,
    },
}

impl Decision {
    /// The outcome recorded when the decision is carried out as decided.
    pub fn outcome(&self) -> OutcomeKind {
        match self {
            Decision::NoPosition { .. } => OutcomeKind::NoPosition,
            Decision::CloseWorking { .. } => OutcomeKind::CloseWorking,
            Decision::NoAction { .. } => OutcomeKind::NoAction,
            Decision::Close { .. } => OutcomeKind::Closed,
            Decision::Share { .. } | Decision::Adjust { .. } => OutcomeKind::Adjusted,
        }
    }

    /// The decision's words, for the outcome's detail.
    pub fn detail(&self) -> &str {
        match self {
            Decision::NoPosition { detail }
            | Decision::CloseWorking { detail, .. }
            | Decision::NoAction { detail, .. }
            | Decision::Close { detail, .. }
            | Decision::Share { detail, .. }
            | Decision::Adjust { detail, .. } => detail,
        }
    }

    /// The transaction concerned, if any.
    pub fn transaction_id(&self) -> Option<i64> {
        match self {
            Decision::NoPosition { .. } => None,
            Decision::CloseWorking { transaction_id, .. }
            | Decision::NoAction { transaction_id, .. }
            | Decision::Close { transaction_id, .. }
            | Decision::Share { transaction_id, .. }
            | Decision::Adjust { transaction_id, .. } => Some(*transaction_id),
        }
    }
}

/// Decides what to do with the expert's position for one recommendation.
pub fn decide(ruleset: &Ruleset, settings: &ExitSettings, s: &Situation<'_>) -> Decision {
    let Some(held) = s.position.filter(|p| {
        matches!(
            p.status,
            TransactionStatus::Opened | TransactionStatus::Closing
        )
    }) else {
        return Decision::NoPosition {
            detail: format!(
                "no OPENED transaction for {} of this expert",
                s.recommendation.symbol
            ),
        };
    };
    let transaction_id = held.transaction_id;
    if held.status == TransactionStatus::Closing || held.close_working {
        return Decision::CloseWorking {
            transaction_id,
            detail: format!(
                "transaction {transaction_id} is {}: a close is already working",
                held.status
            ),
        };
    }
    let facts = RuleFacts {
        recommendation: s.recommendation,
        previous_action: s.previous_action,
        current_price: s.current_price,
        position: Some(facts_of(held)),
        account_has_position: None,
        instrument_account_share: s.instrument_account_share,
        last_closes: Some(s.last_closes),
    };
    let evaluation = ruleset.evaluate(&facts);
    let described = evaluation.describe();
    if evaluation.actions.is_empty() {
        return Decision::NoAction {
            transaction_id,
            detail: described,
        };
    }
    let plan = evaluation.plan();
    if plan.close {
        return Decision::Close {
            transaction_id,
            detail: format!("{described}; close transaction {transaction_id}"),
        };
    }
    if plan.increase_share.is_some() || plan.decrease_share.is_some() {
        return share(held, s, &plan, described);
    }
    adjust(held, s, settings, &plan, described)
}

/// The instrument-share decision of `plan`: an order toward the target share, a close for
/// a decrease to 0 %, or no action with the reason (no quote, no account, nothing to do).
fn share(held: &HeldPosition, s: &Situation<'_>, plan: &ActionPlan, described: String) -> Decision {
    let transaction_id = held.transaction_id;
    let no_action = |why: String| Decision::NoAction {
        transaction_id,
        detail: format!("{described}; instrument share unchanged: {why}"),
    };
    let (increase, target) = match (plan.increase_share, plan.decrease_share) {
        (Some(t), _) => (true, t),
        (None, Some(t)) => (false, t),
        (None, None) => return no_action("no share action".into()),
    };
    if !increase && target.is_zero() {
        return Decision::Close {
            transaction_id,
            detail: format!(
                "{described}; instrument share to 0%: close transaction {transaction_id}"
            ),
        };
    }
    let Some(price) = s.current_price.and_then(|p| Price::new(p).ok()) else {
        return no_action(format!("no quote for {}", s.recommendation.symbol));
    };
    let Some(funds) = s.funds else {
        return no_action("the account's equity is unknown".into());
    };
    let inputs = ShareInputs {
        side: held.side,
        quantity: held.quantity,
        price,
        virtual_equity: funds.virtual_equity,
        max_instrument_percent: funds.max_instrument_percent,
        available: funds.available,
    };
    let sized = match increase {
        true => increase_share(&inputs, target),
        false => decrease_share(&inputs, target),
    };
    let order = match sized {
        Ok(o) => o,
        Err(u) => return no_action(u.reason),
    };
    let now = s.instrument_account_share.map_or_else(
        || "?".to_string(),
        |p| p.round_dp(1).normalize().to_string(),
    );
    let mut detail = format!(
        "{described}; instrument share {now}% → {}% of virtual equity: {} {}",
        target.normalize(),
        order.side.as_str().to_lowercase(),
        order.quantity.normalize()
    );
    if plan.take_profit.is_some() || plan.stop_loss.is_some() {
        detail.push_str("; exit moves wait for the next run");
    }
    Decision::Share {
        transaction_id,
        order,
        detail,
    }
}

/// The position as the triggers see it.
fn facts_of(held: &HeldPosition) -> PositionFacts {
    PositionFacts {
        side: held.side,
        quantity: held.quantity,
        open_price: held.open_price,
        opened_at: held.opened_at,
        take_profit: held.take_profit,
        stop_loss: held.stop_loss,
    }
}

/// The exit moves of `plan` (and the actions this use case leaves alone, named).
fn adjust(
    held: &HeldPosition,
    s: &Situation<'_>,
    settings: &ExitSettings,
    plan: &ActionPlan,
    described: String,
) -> Decision {
    let price = |d: Option<Decimal>| d.and_then(|d| Price::new(d).ok());
    let pos = ExitPosition {
        side: held.side,
        entry_price: price(held.open_price),
        current_price: price(s.current_price),
        expert_target: price(s.recommendation.target()),
        take_profit: price(held.take_profit),
        stop_loss: price(held.stop_loss),
    };
    let mut notes = vec![described];
    let take_profit = plan.take_profit.map(|t| {
        let got = exits::take_profit_price(&pos, &t, settings);
        note_move(&mut notes, "take profit", pos.take_profit, &got);
        got
    });
    let stop_loss = plan.stop_loss.map(|t| {
        let got = exits::stop_loss_price(&pos, &t, settings);
        note_move(&mut notes, "stop loss", pos.stop_loss, &got);
        got
    });
    if plan.entry.is_some() {
        notes.push("buy/sell does nothing in open_positions".into());
    }
    let take_profit = take_profit.and_then(|r| r.ok()).map(|e| e.price);
    let stop_loss = stop_loss.and_then(|r| r.ok()).map(|e| e.price);
    let detail = notes.join("; ");
    let transaction_id = held.transaction_id;
    if take_profit.is_none() && stop_loss.is_none() {
        return Decision::NoAction {
            transaction_id,
            detail,
        };
    }
    Decision::Adjust {
        transaction_id,
        take_profit,
        stop_loss,
        detail,
    }
}

/// `take profit 110 → 115.5 (pushed out …)` or `stop loss unchanged: a stop is never …`.
fn note_move(
    notes: &mut Vec<String>,
    what: &str,
    old: Option<Price>,
    got: &Result<ExitPrice, Unchanged>,
) {
    let from = old.map_or_else(|| "none".to_string(), |p| p.to_string());
    notes.push(match got {
        Ok(e) => match &e.note {
            Some(n) => format!("{what} {from} → {} ({n})", e.price),
            None => format!("{what} {from} → {}", e.price),
        },
        Err(u) => format!("{what} unchanged: {u}"),
    });
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::recommendation::{RiskLevel, TimeHorizon};
    use crate::rules::{ActionSpec, Rule, RuleAction, Trigger, TriggerSpec};

    fn rec(action: Action) -> NewRecommendation {
        NewRecommendation {
            expert_id: 1,
            symbol: "AAPL".into(),
            action,
            confidence: dec!(80),
            expected_profit_percent: dec!(10),
            price_at_date: Price::new(dec!(100)).unwrap(),
            risk_level: RiskLevel::Low,
            time_horizon: TimeHorizon::ShortTerm,
            target_price: None,
            details: None,
            created_at: Utc::now(),
        }
    }

    fn held(side: Side, stop: Option<Decimal>) -> HeldPosition {
        HeldPosition {
            transaction_id: 7,
            side,
            status: TransactionStatus::Opened,
            quantity: dec!(10),
            open_price: Some(dec!(100)),
            opened_at: None,
            take_profit: None,
            stop_loss: stop,
            close_working: false,
        }
    }

    fn action(name: &str, reference: Option<&str>, value: Option<Decimal>) -> RuleAction {
        RuleAction::from_spec(&ActionSpec {
            action: name.into(),
            reference: reference.map(Into::into),
            value,
            price: None,
        })
        .unwrap()
    }

    fn ruleset(trigger: &str, actions: Vec<RuleAction>) -> Ruleset {
        Ruleset {
            name: "op".into(),
            rules: vec![Rule {
                name: "r".into(),
                continue_processing: false,
                triggers: vec![
                    Trigger::from_spec(&TriggerSpec {
                        event: trigger.into(),
                        op: None,
                        value: None,
                    })
                    .unwrap(),
                ],
                actions,
            }],
        }
    }

    fn situation<'a>(
        r: &'a NewRecommendation,
        p: Option<&'a HeldPosition>,
        price: Decimal,
        previous: Option<Action>,
    ) -> Situation<'a> {
        Situation {
            recommendation: r,
            previous_action: previous,
            position: p,
            current_price: Some(price),
            instrument_account_share: Some(dec!(1)),
            last_closes: LastCloses::default(),
            funds: Some(Funds {
                virtual_equity: dec!(100000),
                available: dec!(50000),
                max_instrument_percent: dec!(10),
            }),
        }
    }

    #[test]
    fn decisions_table() {
        // Catches: a close started twice, a stop loosened, a downgrade not closing, a move
        // on the recommendation's direction instead of the position's.
        let s = ExitSettings::default();
        let close_on_downgrade = ruleset("rating_downgraded", vec![RuleAction::Close]);
        let trail = ruleset(
            "has_position",
            vec![action(
                "adjust_stop_loss",
                Some("current_price"),
                Some(dec!(-3)),
            )],
        );
        let sell = rec(Action::Sell);
        let buy = rec(Action::Buy);
        let long = held(Side::Buy, Some(dec!(100)));
        let short = held(Side::Sell, Some(dec!(100)));
        let mut closing = held(Side::Buy, None);
        closing.status = TransactionStatus::Closing;
        let mut close_order = held(Side::Buy, None);
        close_order.close_working = true;
        let mut waiting = held(Side::Buy, None);
        waiting.status = TransactionStatus::Waiting;
        // (ruleset, situation, outcome, words the detail holds, new stop)
        let cases: Vec<(&Ruleset, Situation<'_>, OutcomeKind, &str, Option<Decimal>)> = vec![
            (
                &close_on_downgrade,
                situation(&sell, Some(&long), dec!(100), Some(Action::Buy)),
                OutcomeKind::Closed,
                "close transaction 7",
                None,
            ),
            (
                &close_on_downgrade,
                situation(&buy, Some(&long), dec!(100), Some(Action::Sell)),
                OutcomeKind::NoAction,
                "no rule matched",
                None,
            ),
            (
                &close_on_downgrade,
                situation(&sell, None, dec!(100), Some(Action::Buy)),
                OutcomeKind::NoPosition,
                "no OPENED",
                None,
            ),
            (
                &close_on_downgrade,
                situation(&sell, Some(&waiting), dec!(100), Some(Action::Buy)),
                OutcomeKind::NoPosition,
                "no OPENED",
                None,
            ),
            (
                &close_on_downgrade,
                situation(&sell, Some(&closing), dec!(100), Some(Action::Buy)),
                OutcomeKind::CloseWorking,
                "CLOSING",
                None,
            ),
            (
                &close_on_downgrade,
                situation(&sell, Some(&close_order), dec!(100), Some(Action::Buy)),
                OutcomeKind::CloseWorking,
                "close is already working",
                None,
            ),
            // a long's stop moves up with the price: 110 × 0.97
            (
                &trail,
                situation(&sell, Some(&long), dec!(110), None),
                OutcomeKind::Adjusted,
                "stop loss 100 → 106.7",
                Some(dec!(106.7)),
            ),
            // and never down
            (
                &trail,
                situation(&buy, Some(&long), dec!(95), None),
                OutcomeKind::NoAction,
                "never loosened",
                None,
            ),
            // a short's stop moves down with the price, whatever the recommendation says
            (
                &trail,
                situation(&buy, Some(&short), dec!(90), None),
                OutcomeKind::Adjusted,
                "stop loss 100 → 92.7",
                Some(dec!(92.7)),
            ),
            (
                &trail,
                situation(&buy, Some(&short), dec!(105), None),
                OutcomeKind::NoAction,
                "never loosened",
                None,
            ),
        ];
        for (i, (rules, sit, kind, words, stop)) in cases.into_iter().enumerate() {
            let d = decide(rules, &s, &sit);
            assert_eq!(d.outcome(), kind, "case {i}: {d:?}");
            assert!(d.detail().contains(words), "case {i}: {d:?}");
            if let Decision::Adjust { stop_loss, .. } = &d {
                assert_eq!(stop_loss.map(Price::get), stop, "case {i}");
            }
        }
    }

    #[test]
    fn share_actions_size_an_order_on_the_position() {
        // Catches: a share action ignored, sized on the wrong side, a decrease to 0 % that
        // is not a close, an order without a quote or when already at the target.
        let up = |v| {
            ruleset(
                "has_position",
                vec![action("increase_instrument_share", None, Some(v))],
            )
        };
        let down = |v| {
            ruleset(
                "has_position",
                vec![action("decrease_instrument_share", None, Some(v))],
            )
        };
        let r = rec(Action::Buy);
        let long = held(Side::Buy, None);
        let short = held(Side::Sell, None);
        let s = ExitSettings::default();
        let mut no_quote = situation(&r, Some(&long), dec!(100), None);
        no_quote.current_price = None;
        let mut no_funds = situation(&r, Some(&long), dec!(100), None);
        no_funds.funds = None;
        // 10 units at 100 = 1 % of 100000
        let cases: Vec<(
            Ruleset,
            Situation<'_>,
            OutcomeKind,
            &str,
            Option<(Side, Decimal)>,
        )> = vec![
            (
                up(dec!(8)),
                situation(&r, Some(&long), dec!(100), None),
                OutcomeKind::Adjusted,
                "instrument share 1% → 8% of virtual equity: buy 70",
                Some((Side::Buy, dec!(70))),
            ),
            (
                up(dec!(8)),
                situation(&r, Some(&short), dec!(100), None),
                OutcomeKind::Adjusted,
                "sell 70",
                Some((Side::Sell, dec!(70))),
            ),
            (
                up(dec!(1)),
                situation(&r, Some(&long), dec!(100), None),
                OutcomeKind::NoAction,
                "already at or above 1%",
                None,
            ),
            (
                down(dec!(0.5)),
                situation(&r, Some(&long), dec!(100), None),
                OutcomeKind::Adjusted,
                "1% → 0.5% of virtual equity: sell 5",
                Some((Side::Sell, dec!(5))),
            ),
            (
                down(dec!(0.5)),
                situation(&r, Some(&short), dec!(100), None),
                OutcomeKind::Adjusted,
                "buy 5",
                Some((Side::Buy, dec!(5))),
            ),
            (
                down(dec!(0)),
                situation(&r, Some(&long), dec!(100), None),
                OutcomeKind::Closed,
                "instrument share to 0%: close transaction 7",
                None,
            ),
            (
                down(dec!(2)),
                situation(&r, Some(&long), dec!(100), None),
                OutcomeKind::NoAction,
                "already at or below 2%",
                None,
            ),
            (
                up(dec!(8)),
                no_quote,
                OutcomeKind::NoAction,
                "no quote for AAPL",
                None,
            ),
            (
                up(dec!(8)),
                no_funds,
                OutcomeKind::NoAction,
                "equity is unknown",
                None,
            ),
        ];
        for (i, (rules, sit, kind, words, order)) in cases.into_iter().enumerate() {
            let d = decide(&rules, &s, &sit);
            assert_eq!(d.outcome(), kind, "case {i}: {d:?}");
            assert!(d.detail().contains(words), "case {i}: {d:?}");
            if let Decision::Share { order: o, .. } = &d {
                assert_eq!(Some((o.side, o.quantity)), order, "case {i}");
            }
        }
    }
}
