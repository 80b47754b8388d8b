//! The enter-market decision for one expert (DESIGN.md §5 steps 3–5), as a pure plan, with
//! the exits every entry is placed with (issue 9 items 1–2: the ruleset's take profit and
//! stop, else a safeguard stop).
//!
//! The engine loads the inputs, calls [`plan`], and carries the plan out. Nothing here knows
//! about locks, databases or brokers.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;

use crate::exits::{
    ExitPosition, ExitSettings, safeguard_stop, stop_loss_price, take_profit_price,
};
use crate::expert::{Expert, ExpertBalance};
use crate::money::Price;
use crate::order::Side;
use crate::outcome::OutcomeKind;
use crate::recommendation::{Action, Recommendation};
use crate::rules::{ActionPlan, Evaluation, RuleFacts, Ruleset};
use crate::sizing::{Sized, SizingCandidate, size_candidates};
use crate::transaction::{ActivePosition, TransactionStatus};

/// Everything the decision needs, loaded by the engine.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub expert: &'a Expert,
    pub ruleset: &'a Ruleset,
    /// The account's minimum_equity_threshold_percent.
    pub equity_threshold_percent: Decimal,
    /// The expert's recommendations in the lookback window (any order, HOLD included or not).
    pub recommendations: &'a [Recommendation],
    /// The expert's WAITING and OPENED transactions.
    pub positions: &'a [ActivePosition],
    pub balance: ExpertBalance,
    /// The latest quote per symbol of the expert's account.
    pub quotes: &'a HashMap<String, Decimal>,
}

/// What to do with one recommendation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record this outcome and do nothing else.
    Skip {
        outcome: OutcomeKind,
        detail: String,
        /// For `duplicate_position`: the transaction that blocks it.
        existing: Option<(i64, TransactionStatus)>,
    },
    /// Open a position: store the transaction, its entry order and its exit legs, then
    /// submit the entry.
    Order {
        side: Side,
        quantity: Decimal,
        price: Decimal,
        /// The take profit and stop the position is protected with from its entry.
        exits: EntryExits,
        detail: String,
    },
}

/// The exits an entry is placed with: each becomes a leg that waits for the entry's fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryExits {
    pub take_profit: Option<Price>,
    pub stop_loss: Option<Price>,
}

/// One recommendation with its decision, in processing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned<'a> {
    pub rec: &'a Recommendation,
    pub decision: Decision,
}

/// A recommendation that passed every check and waits for sizing.
struct ToSize {
    /// Its index in the plan.
    index: usize,
    side: Side,
    candidate: SizingCandidate,
    /// The rule evaluation, for the decision record.
    described: String,
    /// The matched actions (their take profit and stop) and the recommendation's target.
    actions: ActionPlan,
    target: Option<Price>,
}

/// What step 4 decided for one recommendation: a final decision, or a candidate for sizing.
enum Checked {
    Decided(Decision),
    Size {
        side: Side,
        price: Decimal,
        described: String,
        actions: ActionPlan,
    },
}

/// Steps 3–5 of the enter_market run: select, evaluate, check, size.
pub fn plan<'a>(inp: &Inputs<'a>) -> Vec<Planned<'a>> {
    let selected = select(inp.recommendations);
    let active: HashMap<&str, &ActivePosition> = inp
        .positions
        .iter()
        .map(|p| (p.symbol.as_str(), p))
        .collect();
    let equity_ok = inp
        .balance
        .has_sufficient_equity(inp.equity_threshold_percent);

    let mut planned: Vec<Planned<'a>> = Vec::with_capacity(selected.len());
    let mut to_size: Vec<ToSize> = Vec::new();
    for rec in selected {
        let existing = active.get(rec.symbol.as_str()).copied();
        let decision = match check(inp, rec, existing, equity_ok) {
            Checked::Decided(d) => d,
            Checked::Size {
                side,
                price,
                described,
                actions,
            } => {
                to_size.push(ToSize {
                    index: planned.len(),
                    side,
                    candidate: SizingCandidate {
                        symbol: rec.symbol.clone(),
                        price,
                        priority: rec.priority(),
                    },
                    described,
                    actions,
                    target: rec.target_price,
                });
                // Placeholder until sizing below decides.
                skip(OutcomeKind::Unfunded, String::new())
            }
        };
        planned.push(Planned { rec, decision });
    }
    size(inp, &mut planned, to_size);
    planned
}

fn skip(outcome: OutcomeKind, detail: String) -> Decision {
    Decision::Skip {
        outcome,
        detail,
        existing: None,
    }
}

/// Step 4 for one recommendation: rules, permission, duplicate position, equity, quote.
fn check(
    inp: &Inputs<'_>,
    rec: &Recommendation,
    existing: Option<&ActivePosition>,
    equity_ok: bool,
) -> Checked {
    let quote = inp.quotes.get(&rec.symbol).copied();
    let (side, described, actions) = match screen(inp.expert, inp.ruleset, rec, existing, quote) {
        Screened::Decided(d) => return Checked::Decided(d),
        Screened::Open {
            side,
            described,
            actions,
        } => (side, described, actions),
    };
    let decision = if !equity_ok {
        skip(
            OutcomeKind::InsufficientEquity,
            format!(
                "{described}; available {} below {}% of virtual balance {}",
                inp.balance.available.round_dp(2),
                inp.equity_threshold_percent,
                inp.balance.virtual_balance.round_dp(2)
            ),
        )
    } else if let Some(price) = quote {
        return Checked::Size {
            side,
            price,
            described,
            actions,
        };
    } else {
        skip(
            OutcomeKind::Unfunded,
            format!("{described}; no quote for {}", rec.symbol),
        )
    };
    Checked::Decided(decision)
}

/// What the first checks of step 4 (rules, permission, duplicate position) left: a final
/// decision, or a side to open that the account's money and the quote decide on.
enum Screened {
    Decided(Decision),
    Open {
        side: Side,
        described: String,
        actions: ActionPlan,
    },
}

/// What the rules and the expert's permissions say of one recommendation, before the
/// duplicate guard.
enum Verdict {
    /// No rule chose a side.
    NoSide,
    /// The rules chose more than one side.
    Conflicting,
    /// The side the rules chose, refused by the expert's flag named.
    NotPermitted(Side, &'static str),
    /// The side to open.
    Open(Side),
}

/// The [`Verdict`] of the rules' evaluation `ev` for `expert`.
fn verdict(expert: &Expert, ev: &Evaluation) -> Verdict {
    let mut sides = ev.actions.iter().filter_map(|a| a.side());
    let side = match (sides.next(), sides.next()) {
        (None, _) => return Verdict::NoSide,
        (Some(_), Some(_)) => return Verdict::Conflicting,
        (Some(side), None) => side,
    };
    match side {
        Side::Buy if !expert.enable_buy => Verdict::NotPermitted(side, "enable_buy"),
        Side::Sell if !expert.enable_sell => Verdict::NotPermitted(side, "enable_sell"),
        _ => Verdict::Open(side),
    }
}

/// Rules, permission and the duplicate guard for one recommendation: the part of step 4
/// that needs neither the account's money nor (unless a trigger reads it) the quote.
fn screen(
    expert: &Expert,
    ruleset: &Ruleset,
    rec: &Recommendation,
    existing: Option<&ActivePosition>,
    quote: Option<Decimal>,
) -> Screened {
    let ev = ruleset.evaluate(&RuleFacts::entry(rec, existing, quote));
    let described = ev.describe();
    let side = match verdict(expert, &ev) {
        Verdict::NoSide => return Screened::Decided(skip(OutcomeKind::RulesNotMet, described)),
        Verdict::Conflicting => {
            return Screened::Decided(skip(
                OutcomeKind::RulesNotMet,
                format!("{described}; conflicting actions buy and sell"),
            ));
        }
        Verdict::NotPermitted(side, flag) => {
            return Screened::Decided(skip(
                OutcomeKind::NotPermitted,
                format!(
                    "{described}; {} not allowed: {flag} is false",
                    side.as_str()
                ),
            ));
        }
        Verdict::Open(side) => side,
    };
    if let Some(p) = existing {
        return Screened::Decided(Decision::Skip {
            outcome: OutcomeKind::DuplicatePosition,
            detail: format!(
                "{described}; existing transaction {} in {} status",
                p.transaction_id, p.status
            ),
            existing: Some((p.transaction_id, p.status)),
        });
    }
    Screened::Open {
        side,
        described,
        actions: ev.plan(),
    }
}

/// Whether [`plan`] on these inputs needs the account's money and quotes: some selected
/// recommendation gets past the rules, the permission and the duplicate guard, or a
/// trigger reads the price. When it does not, every decision is the same whatever the
/// account holds (a run whose candidates are all duplicates asks its broker nothing).
pub fn needs_account(
    expert: &Expert,
    ruleset: &Ruleset,
    recommendations: &[Recommendation],
    positions: &[ActivePosition],
) -> bool {
    if ruleset.reads_price() {
        return true;
    }
    // A symbol the expert holds is decided without the account whatever the rules say
    // (duplicate position, rules not met or not permitted): only the others are evaluated.
    let held: HashSet<&str> = positions.iter().map(|p| p.symbol.as_str()).collect();
    select(recommendations)
        .into_iter()
        .filter(|rec| !held.contains(rec.symbol.as_str()))
        .any(|rec| {
            let ev = ruleset.evaluate(&RuleFacts::entry(rec, None, None));
            matches!(verdict(expert, &ev), Verdict::Open(_))
        })
}

/// Step 5: sizes the candidates together and turns each into an order or an `unfunded` skip.
fn size(inp: &Inputs<'_>, planned: &mut [Planned<'_>], to_size: Vec<ToSize>) {
    let mut existing_alloc: HashMap<String, Decimal> = HashMap::new();
    for p in inp.positions {
        // Saturating: a holding too large to add up leaves its symbol no room (fail closed).
        let held = existing_alloc.entry(p.symbol.clone()).or_default();
        *held = held.saturating_add(p.notional());
    }
    let candidates: Vec<SizingCandidate> = to_size.iter().map(|c| c.candidate.clone()).collect();
    let sized = size_candidates(
        inp.balance.available,
        inp.expert.max_virtual_equity_per_instrument_percent,
        &existing_alloc,
        &candidates,
    );
    for (c, s) in to_size.into_iter().zip(sized) {
        let index = c.index;
        planned[index].decision = sized_decision(c, &s, &inp.expert.exits);
    }
}

/// The decision for one sized candidate, with the sizing inputs and its exits in its detail.
fn sized_decision(c: ToSize, s: &Sized, settings: &ExitSettings) -> Decision {
    let ToSize {
        side,
        candidate,
        described,
        actions,
        target,
        ..
    } = c;
    if let Some(refused) = &s.refused {
        return skip(
            OutcomeKind::Unfunded,
            format!("{described}; cannot be sized: {refused}"),
        );
    }
    let inputs = format!(
        "price {}, priority {}, instrument room {}, budget left {}",
        candidate.price,
        candidate.priority.round_dp(4).normalize(),
        s.instrument_room.round_dp(2).normalize(),
        s.remaining.round_dp(2).normalize()
    );
    if s.quantity <= Decimal::ZERO {
        return skip(
            OutcomeKind::Unfunded,
            format!("{described}; not one share affordable ({inputs})"),
        );
    }
    // Sizing refuses a quote that is not a price; kept as a refusal, never a panic.
    let entry = match Price::new(candidate.price) {
        Ok(p) => p,
        Err(e) => {
            return skip(
                OutcomeKind::Unfunded,
                format!(
                    "{described}; cannot be sized: quote for {}: {e}",
                    candidate.symbol
                ),
            );
        }
    };
    let (exits, exits_detail) = entry_exits(side, entry, target, &actions, settings);
    Decision::Order {
        side,
        quantity: s.quantity,
        price: candidate.price,
        exits,
        detail: format!(
            "{described}; sized {} {} ({inputs}); {exits_detail}",
            side.as_str(),
            s.quantity
        ),
    }
}

/// The exits of an entry on `side` at `entry` (the quote it is sized at, also the current
/// price): the take profit of the ruleset's `adjust_take_profit`, the stop of its
/// `adjust_stop_loss`, each with the floors of [`crate::exits`]; without a stop from the
/// ruleset, the safeguard stop `min_stop_loss_percent` from the entry (none when it is 0).
/// Returns them with a sentence for the decision record naming each and any floor's note.
pub fn entry_exits(
    side: Side,
    entry: Price,
    expert_target: Option<Price>,
    actions: &ActionPlan,
    settings: &ExitSettings,
) -> (EntryExits, String) {
    let pos = ExitPosition {
        side,
        entry_price: Some(entry),
        current_price: Some(entry),
        expert_target,
        take_profit: None,
        stop_loss: None,
    };
    let mut exits = EntryExits::default();
    let mut said = Vec::with_capacity(2);
    if let Some(target) = &actions.take_profit {
        match take_profit_price(&pos, target, settings) {
            Ok(tp) => {
                exits.take_profit = Some(tp.price);
                said.push(with_note(format!("take profit {}", tp.price), tp.note));
            }
            Err(why) => said.push(format!("no take profit: {why}")),
        }
    }
    match &actions.stop_loss {
        Some(target) => match stop_loss_price(&pos, target, settings) {
            Ok(sl) => {
                exits.stop_loss = Some(sl.price);
                said.push(with_note(format!("stop loss {}", sl.price), sl.note));
            }
            Err(why) => said.push(format!("no stop loss: {why}")),
        },
        None => said.push(safeguard(side, entry, settings, &mut exits)),
    }
    (exits, said.join("; "))
}

/// The safeguard stop of an entry whose ruleset gives none, put in `exits`; what was done,
/// in words.
fn safeguard(side: Side, entry: Price, settings: &ExitSettings, exits: &mut EntryExits) -> String {
    let percent = settings.min_stop_loss_percent.normalize();
    match safeguard_stop(side, entry, percent) {
        Ok(Some(stop)) => {
            exits.stop_loss = Some(stop);
            format!("stop loss {stop} (safeguard stop, {percent}% from {entry})")
        }
        Ok(None) => "no stop loss (safeguard stop off: min_stop_loss_percent = 0)".to_string(),
        Err(why) => format!("no stop loss: {why}"),
    }
}

/// `text`, followed by a floor's note in parentheses when there is one.
fn with_note(text: String, note: Option<String>) -> String {
    match note {
        Some(n) => format!("{text} ({n})"),
        None => text,
    }
}

/// Step 3: HOLD excluded, newest per symbol, highest expected profit first.
pub fn select(recs: &[Recommendation]) -> Vec<&Recommendation> {
    let mut newest: HashMap<&str, &Recommendation> = HashMap::new();
    for r in recs.iter().filter(|r| r.action != Action::Hold) {
        newest
            .entry(r.symbol.as_str())
            .and_modify(|cur| {
                if (r.created_at, r.id) > (cur.created_at, cur.id) {
                    *cur = r;
                }
            })
            .or_insert(r);
    }
    let mut out: Vec<&Recommendation> = newest.into_values().collect();
    out.sort_by(|a, b| {
        b.expected_profit_percent
            .cmp(&a.expected_profit_percent)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Price, Quantity};
    use crate::recommendation::{NewRecommendation, RiskLevel, TimeHorizon, parse_time};
    use crate::rules::{Rule, RuleAction, Trigger, TriggerSpec};
    use rust_decimal_macros::dec;

    fn rec(id: i64, symbol: &str, action: Action, epp: Decimal, at: &str) -> Recommendation {
        Recommendation {
            id,
            rec: NewRecommendation {
                expert_id: 1,
                symbol: symbol.into(),
                action,
                confidence: dec!(80),
                expected_profit_percent: epp,
                price_at_date: Price::new(dec!(100)).unwrap(),
                risk_level: RiskLevel::Medium,
                time_horizon: TimeHorizon::ShortTerm,
                target_price: None,
                details: None,
                created_at: parse_time(at).unwrap(),
            },
        }
    }

    fn confident_buy() -> Ruleset {
        let t = |e: &str, op: Option<&str>, v: Option<Decimal>| {
            Trigger::from_spec(&TriggerSpec {
                event: e.into(),
                op: op.map(Into::into),
                value: v,
            })
            .unwrap()
        };
        Ruleset {
            name: "confident-buy".into(),
            rules: vec![Rule {
                name: "bullish-and-confident".into(),
                continue_processing: false,
                triggers: vec![
                    t("bullish", None, None),
                    t("confidence", Some(">="), Some(dec!(60))),
                ],
                actions: vec![RuleAction::Buy],
            }],
        }
    }

    #[test]
    fn selection_keeps_newest_per_symbol_and_sorts_by_profit() {
        let recs = [
            rec(1, "A", Action::Buy, dec!(5), "2026-11-27T10:00:00Z"),
            rec(2, "A", Action::Sell, dec!(9), "2026-11-27T11:00:00Z"),
            rec(3, "B", Action::Buy, dec!(20), "2026-11-27T10:00:00Z"),
            rec(4, "C", Action::Hold, dec!(50), "2026-11-27T10:00:00Z"),
        ];
        let ids: Vec<i64> = select(&recs).iter().map(|r| r.id).collect();
        assert_eq!(ids, [3, 2]);
    }

    #[test]
    fn plan_records_every_outcome() {
        let mut expert = Expert::with_defaults(1, "demo", "paper");
        expert.allow_automated_trade_opening = true;
        expert.max_virtual_equity_per_instrument_percent = dec!(40);
        let rs = confident_buy();
        let recs = [
            rec(1, "AAPL", Action::Buy, dec!(30), "2026-11-27T10:00:00Z"),
            rec(2, "MSFT", Action::Buy, dec!(20), "2026-11-27T10:00:00Z"),
            rec(3, "GOOGL", Action::Buy, dec!(10), "2026-11-27T10:00:00Z"),
            rec(4, "TSLA", Action::Sell, dec!(10), "2026-11-27T10:00:00Z"),
            rec(5, "NVDA", Action::Buy, dec!(5), "2026-11-27T10:00:00Z"),
            rec(6, "AMZN", Action::Buy, dec!(1), "2026-11-27T10:00:00Z"),
        ];
        let positions = [ActivePosition {
            transaction_id: 9,
            symbol: "NVDA".into(),
            side: Side::Buy,
            status: TransactionStatus::Waiting,
            quantity: dec!(0),
            price: dec!(100),
        }];
        let quotes: HashMap<String, Decimal> = ["AAPL", "MSFT", "GOOGL", "TSLA", "NVDA", "AMZN"]
            .iter()
            .map(|s| (s.to_string(), dec!(100)))
            .collect();
        let balance = ExpertBalance {
            virtual_balance: dec!(100000),
            used: dec!(0),
            available: dec!(100000),
        };
        let inputs = Inputs {
            expert: &expert,
            ruleset: &rs,
            equity_threshold_percent: dec!(5),
            recommendations: &recs,
            positions: &positions,
            balance,
            quotes: &quotes,
        };
        let got: Vec<(i64, String)> = plan(&inputs)
            .iter()
            .map(|p| {
                let what = match &p.decision {
                    Decision::Order { quantity, .. } => format!("order {quantity}"),
                    Decision::Skip { outcome, .. } => outcome.to_string(),
                };
                (p.rec.id, what)
            })
            .collect();
        let want: Vec<(i64, String)> = vec![
            (1, "order 400".into()),
            (2, "order 400".into()),
            (3, "order 200".into()),
            (4, "rules_not_met".into()),
            (5, "duplicate_position".into()),
            (6, "unfunded".into()),
        ];
        assert_eq!(got, want);

        // Not permitted when buying is off; insufficient equity when the balance is spent.
        let mut no_buy = expert.clone();
        no_buy.enable_buy = false;
        let inputs2 = Inputs {
            expert: &no_buy,
            ..inputs
        };
        assert!(plan(&inputs2).iter().all(|p| matches!(&p.decision, Decision::Skip { outcome, .. } if *outcome != OutcomeKind::Ordered)));
        assert!(matches!(
            &plan(&inputs2)[0].decision,
            Decision::Skip {
                outcome: OutcomeKind::NotPermitted,
                ..
            }
        ));
        let mut rich_expert = expert.clone();
        rich_expert.enable_buy = true;
        let poor = ExpertBalance {
            virtual_balance: dec!(100000),
            used: dec!(99000),
            available: dec!(1000),
        };
        let inputs3 = Inputs {
            expert: &rich_expert,
            balance: poor,
            ..inputs
        };
        assert!(matches!(
            &plan(&inputs3)[0].decision,
            Decision::Skip {
                outcome: OutcomeKind::InsufficientEquity,
                ..
            }
        ));
    }

    /// A ruleset whose triggers compute every metric and which then buys whatever happens.
    fn probing_buy() -> Ruleset {
        let t = |e: &str, op: &str, v: Decimal| {
            Trigger::from_spec(&TriggerSpec {
                event: e.into(),
                op: Some(op.into()),
                value: Some(v),
            })
            .unwrap()
        };
        Ruleset {
            name: "probe".into(),
            rules: vec![
                Rule {
                    name: "metrics".into(),
                    continue_processing: true,
                    triggers: vec![
                        t("percent_to_new_target", ">", dec!(0)),
                        t("expected_profit_target_percent", "!=", dec!(0)),
                        t("confidence", ">=", dec!(0)),
                    ],
                    actions: vec![RuleAction::Buy],
                },
                Rule {
                    name: "always".into(),
                    continue_processing: false,
                    triggers: vec![],
                    actions: vec![RuleAction::Buy],
                },
            ],
        }
    }

    #[test]
    fn plan_never_panics_on_extreme_values() {
        // Every combination of extreme balances, settings and quotes, against recommendations
        // with extreme figures. Catches: any unchecked arithmetic on the way from a
        // recommendation to an order (the 1e-28 price divided into a budget).
        let extremes = [
            Decimal::ZERO,
            dec!(0.0000000000000000000000000001),
            dec!(0.0001),
            dec!(1),
            dec!(1000000000),
            Decimal::MAX,
            dec!(-1),
            Decimal::MIN,
        ];
        let prices = [dec!(0.0001), dec!(1), dec!(1000000000)];
        let actions = [Action::Buy, Action::Sell, Action::Underweight];
        let mut recs = Vec::new();
        for (i, epp) in extremes.iter().enumerate() {
            for (j, price) in prices.iter().enumerate() {
                for (k, action) in actions.iter().enumerate() {
                    let id = (i * 9 + j * 3 + k) as i64;
                    let mut r = rec(id, &format!("S{id}"), *action, *epp, "2026-11-27T10:00:00Z");
                    r.rec.price_at_date = Price::new(*price).unwrap();
                    r.rec.confidence = extremes[(i + j) % extremes.len()];
                    r.rec.target_price = (k == 2).then(|| Price::new(prices[2 - j]).unwrap());
                    recs.push(r);
                }
            }
        }
        // Every symbol gets a quote, cycling through the extremes; a few hold a position.
        let quotes: HashMap<String, Decimal> = recs
            .iter()
            .enumerate()
            .map(|(n, r)| (r.symbol.clone(), extremes[n % extremes.len()]))
            .collect();
        let positions: Vec<ActivePosition> = extremes
            .iter()
            .enumerate()
            .map(|(n, x)| ActivePosition {
                transaction_id: n as i64,
                symbol: format!("S{}", n * 7),
                side: Side::Sell,
                status: TransactionStatus::Opened,
                quantity: *x,
                price: Decimal::MAX,
            })
            .collect();
        let rs = probing_buy();
        let mut expert = Expert::with_defaults(1, "x", "paper");
        expert.enable_sell = true;
        let mut plans = 0;
        for available in extremes {
            for virtual_balance in extremes {
                for pct in extremes {
                    for threshold in extremes {
                        expert.max_virtual_equity_per_instrument_percent = pct;
                        let inputs = Inputs {
                            expert: &expert,
                            ruleset: &rs,
                            equity_threshold_percent: threshold,
                            recommendations: &recs,
                            positions: &positions,
                            balance: ExpertBalance {
                                virtual_balance,
                                used: Decimal::ZERO,
                                available,
                            },
                            quotes: &quotes,
                        };
                        for p in plan(&inputs) {
                            if let Decision::Order {
                                quantity, price, ..
                            } = p.decision
                            {
                                assert!(Quantity::new(quantity).is_ok(), "{quantity}");
                                assert!(Price::new(price).is_ok(), "{price}");
                            }
                        }
                        plans += 1;
                    }
                }
            }
        }
        assert_eq!(plans, 8 * 8 * 8 * 8);
    }

    #[test]
    fn entry_exits_from_the_rules_or_the_safeguard() {
        use crate::rules::{ExitReference, ExitTarget};
        let p = |d: Decimal| Price::new(d).unwrap();
        let pct = |reference, percent| ExitTarget::Percent { reference, percent };
        let plan = |tp: Option<ExitTarget>, sl: Option<ExitTarget>| ActionPlan {
            take_profit: tp,
            stop_loss: sl,
            ..ActionPlan::default()
        };
        let tp10 = Some(pct(ExitReference::OrderOpenPrice, dec!(10)));
        let sl5 = Some(pct(ExitReference::OrderOpenPrice, dec!(-5)));
        let defaults = ExitSettings::default();
        let off = ExitSettings {
            min_stop_loss_percent: dec!(0),
            ..defaults
        };
        // (what, side, actions, settings, expected TP, expected SL, words the detail has).
        // Catches: exits ignored at entry, a short not mirrored, floors or the safeguard
        // skipped, a safeguard that 0 does not turn off.
        let cases: Vec<(
            &str,
            Side,
            ActionPlan,
            ExitSettings,
            Option<Decimal>,
            Option<Decimal>,
            &str,
        )> = vec![
            (
                "long TP and SL from the rules",
                Side::Buy,
                plan(tp10, sl5),
                defaults,
                Some(dec!(110)),
                Some(dec!(95)),
                "take profit 110; stop loss 95",
            ),
            (
                "short mirrored",
                Side::Sell,
                plan(tp10, sl5),
                defaults,
                Some(dec!(90)),
                Some(dec!(105)),
                "take profit 90; stop loss 105",
            ),
            (
                "TP floor pushes it out",
                Side::Buy,
                plan(Some(pct(ExitReference::OrderOpenPrice, dec!(0.5))), sl5),
                defaults,
                Some(dec!(102)),
                Some(dec!(95)),
                "take profit 102 (pushed out to the 2% take-profit floor",
            ),
            (
                "TP from the expert's target",
                Side::Buy,
                plan(Some(pct(ExitReference::ExpertTargetPrice, dec!(0))), sl5),
                defaults,
                Some(dec!(120)),
                Some(dec!(95)),
                "take profit 120; stop loss 95",
            ),
            (
                "safeguard stop without an SL rule",
                Side::Buy,
                plan(tp10, None),
                defaults,
                Some(dec!(110)),
                Some(dec!(93)),
                "stop loss 93 (safeguard stop, 7% from 100)",
            ),
            (
                "short safeguard above",
                Side::Sell,
                plan(None, None),
                defaults,
                None,
                Some(dec!(107)),
                "stop loss 107 (safeguard stop, 7% from 100)",
            ),
            (
                "safeguard off",
                Side::Buy,
                plan(tp10, None),
                off,
                Some(dec!(110)),
                None,
                "no stop loss (safeguard stop off",
            ),
            (
                "nothing at all",
                Side::Buy,
                plan(None, None),
                off,
                None,
                None,
                "no stop loss",
            ),
            (
                "a TP that cannot be computed",
                Side::Sell,
                plan(Some(pct(ExitReference::OrderOpenPrice, dec!(100))), sl5),
                defaults,
                None,
                Some(dec!(105)),
                "no take profit: the take profit would be 0",
            ),
        ];
        for (what, side, actions, settings, tp, sl, words) in cases {
            let (exits, detail) =
                entry_exits(side, p(dec!(100)), Some(p(dec!(120))), &actions, &settings);
            assert_eq!(exits.take_profit.map(Price::get), tp, "{what}");
            assert_eq!(exits.stop_loss.map(Price::get), sl, "{what}");
            assert!(detail.contains(words), "{what}: {detail}");
        }
    }

    #[test]
    fn an_ordered_decision_carries_its_exits_in_the_plan_and_the_detail() {
        // Catches: a plan that decides exits and drops them before the order.
        let mut expert = Expert::with_defaults(1, "demo", "paper");
        expert.max_virtual_equity_per_instrument_percent = dec!(40);
        let rs = confident_buy();
        let recs = [rec(1, "AAPL", Action::Buy, dec!(5), "2026-11-27T10:00:00Z")];
        let quotes: HashMap<String, Decimal> = [("AAPL".to_string(), dec!(187.25))].into();
        let inputs = Inputs {
            expert: &expert,
            ruleset: &rs,
            equity_threshold_percent: dec!(5),
            recommendations: &recs,
            positions: &[],
            balance: ExpertBalance {
                virtual_balance: dec!(100000),
                used: dec!(0),
                available: dec!(100000),
            },
            quotes: &quotes,
        };
        let planned = plan(&inputs);
        let Decision::Order { exits, detail, .. } = &planned[0].decision else {
            panic!("{planned:?}")
        };
        assert_eq!(exits.take_profit, None);
        assert_eq!(exits.stop_loss.map(Price::get), Some(dec!(174.14)));
        assert!(
            detail.ends_with("; stop loss 174.14 (safeguard stop, 7% from 187.25)"),
            "{detail}"
        );
    }

    #[test]
    fn an_unusable_quote_is_unfunded_with_the_reason() {
        let mut expert = Expert::with_defaults(1, "demo", "paper");
        expert.max_virtual_equity_per_instrument_percent = dec!(40);
        let rs = confident_buy();
        let recs = [rec(1, "TINY", Action::Buy, dec!(5), "2026-11-27T10:00:00Z")];
        let quotes: HashMap<String, Decimal> =
            [("TINY".to_string(), dec!(0.0000000000000000000000000001))].into();
        let inputs = Inputs {
            expert: &expert,
            ruleset: &rs,
            equity_threshold_percent: dec!(5),
            recommendations: &recs,
            positions: &[],
            balance: ExpertBalance {
                virtual_balance: dec!(100000),
                used: dec!(0),
                available: dec!(100000),
            },
            quotes: &quotes,
        };
        let planned = plan(&inputs);
        let Decision::Skip {
            outcome, detail, ..
        } = &planned[0].decision
        else {
            panic!("{planned:?}")
        };
        assert_eq!(*outcome, OutcomeKind::Unfunded);
        assert!(
            detail.contains("cannot be sized: quote for TINY"),
            "{detail}"
        );
    }
}
