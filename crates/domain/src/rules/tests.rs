//! Table-driven tests of every condition (on a long and on a short) and of ruleset
//! semantics.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::money::Price;
use crate::order::Side;
use crate::recommendation::{Action, NewRecommendation, RiskLevel, TimeHorizon, parse_time};

fn now() -> DateTime<Utc> {
    parse_time("2026-11-27T10:00:00Z").unwrap()
}

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
        created_at: now(),
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

fn flag(event: &str) -> Trigger {
    trig(event, None, None)
}

fn facts(r: &NewRecommendation) -> RuleFacts<'_> {
    RuleFacts {
        recommendation: r,
        previous_action: None,
        current_price: None,
        position: None,
        account_has_position: None,
        instrument_account_share: None,
        last_closes: None,
    }
}

#[test]
fn every_recommendation_trigger() {
    // The triggers of the first version: unchanged behaviour.
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
    // (trigger, rec, current price, expected)
    let cases: Vec<(Trigger, &NewRecommendation, Option<Decimal>, bool)> = vec![
        (flag("bullish"), &buy, None, true),
        (flag("bullish"), &ow, None, false),
        (flag("bearish"), &sell, None, true),
        (flag("bearish"), &uw, None, false),
        (flag("current_rating_positive"), &buy, None, true),
        (flag("current_rating_neutral"), &hold, None, true),
        (flag("current_rating_neutral"), &buy, None, false),
        (flag("current_rating_negative"), &sell, None, true),
        (flag("current_rating_overweight"), &ow, None, true),
        (flag("current_rating_underweight"), &uw, None, true),
        (flag("current_rating_underweight"), &sell, None, false),
        (flag("short_term"), &buy, None, true),
        (flag("medium_term"), &hold, None, true),
        (flag("long_term"), &sell, None, true),
        (flag("long_term"), &buy, None, false),
        (flag("highrisk"), &buy, None, true),
        (flag("mediumrisk"), &hold, None, true),
        (flag("lowrisk"), &sell, None, true),
        (flag("lowrisk"), &buy, None, false),
        (
            trig("confidence", Some(">="), Some(dec!(70))),
            &buy,
            None,
            true,
        ),
        (
            trig("confidence", Some(">"), Some(dec!(70))),
            &buy,
            None,
            false,
        ),
        (
            trig("confidence", Some("<"), Some(dec!(50))),
            &sell,
            None,
            true,
        ),
        (
            trig("confidence", Some("<="), Some(dec!(40))),
            &sell,
            None,
            true,
        ),
        (
            trig("confidence", Some("=="), Some(dec!(70))),
            &buy,
            None,
            true,
        ),
        (
            trig("confidence", Some("!="), Some(dec!(70))),
            &buy,
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
            None,
            true,
        ),
        (
            trig("expected_profit_target_percent", Some(">"), Some(dec!(10))),
            &buy,
            None,
            false,
        ),
        // BUY 100 × 1.10 = 110 → 10 % from price_at_date
        (
            trig("percent_to_new_target", Some("=="), Some(dec!(10))),
            &buy,
            None,
            true,
        ),
        // … and 22.22 % from a current quote of 90
        (
            trig("percent_to_new_target", Some(">"), Some(dec!(22))),
            &buy,
            Some(dec!(90)),
            true,
        ),
        // SELL 100 × 0.95 = 95 → −5 %
        (
            trig("percent_to_new_target", Some("=="), Some(dec!(-5))),
            &sell,
            None,
            true,
        ),
        // an explicit target wins
        (
            trig("percent_to_new_target", Some("=="), Some(dec!(30))),
            &with_target,
            None,
            true,
        ),
        // HOLD has no target: false, not an error
        (
            trig("percent_to_new_target", Some(">"), Some(dec!(-1000))),
            &hold,
            None,
            false,
        ),
    ];
    for (t, r, current_price, want) in cases {
        let f = RuleFacts {
            current_price,
            ..facts(r)
        };
        assert_eq!(t.holds(&f), want, "{t} on {:?}", r.action);
    }
}

/// An OPENED position bought (or sold short) at 100, 10 units, 5 days before the
/// recommendation, with a take profit of 110 (long) / 90 (short).
fn opened(side: Side) -> PositionFacts {
    PositionFacts {
        side,
        quantity: dec!(10),
        open_price: Some(dec!(100)),
        opened_at: Some(now() - Duration::days(5) - Duration::hours(12)),
        take_profit: Some(match side {
            Side::Buy => dec!(110),
            Side::Sell => dec!(90),
        }),
        stop_loss: None,
    }
}

#[test]
fn every_position_condition_on_a_long_and_a_short() {
    // The recommendation: BUY with a target of 120 (long) or SELL with a target of 80
    // (short); the current quote is 105 (long: up 5 %) or 95 (short: down 5 %). Both
    // positions are 5 % in profit.
    let long_rec = {
        let mut r = rec(
            Action::Buy,
            dec!(70),
            dec!(20),
            RiskLevel::Low,
            TimeHorizon::LongTerm,
        );
        r.target_price = Some(Price::new(dec!(120)).unwrap());
        r
    };
    let short_rec = {
        let mut r = rec(
            Action::Sell,
            dec!(70),
            dec!(20),
            RiskLevel::Low,
            TimeHorizon::LongTerm,
        );
        r.target_price = Some(Price::new(dec!(80)).unwrap());
        r
    };
    let long = RuleFacts {
        current_price: Some(dec!(105)),
        position: Some(opened(Side::Buy)),
        ..facts(&long_rec)
    };
    let short = RuleFacts {
        current_price: Some(dec!(95)),
        position: Some(opened(Side::Sell)),
        ..facts(&short_rec)
    };
    // (trigger, long holds, short holds)
    let cases: Vec<(Trigger, bool, bool)> = vec![
        (flag("has_position"), true, true),
        (flag("has_no_position"), false, false),
        (flag("has_buy_position"), true, false),
        (flag("has_sell_position"), false, true),
        // +5 % in profit on both: the direction comes from the position's side
        (
            trig("profit_loss_percent", Some("=="), Some(dec!(5))),
            true,
            true,
        ),
        (
            trig("profit_loss_amount", Some("=="), Some(dec!(50))),
            true,
            true,
        ),
        (
            trig("profit_loss_amount", Some("<"), Some(dec!(0))),
            false,
            false,
        ),
        // 5.5 days
        (trig("days_opened", Some(">"), Some(dec!(5))), true, true),
        (trig("days_opened", Some("=="), Some(dec!(5.5))), true, true),
        (trig("days_opened", Some(">"), Some(dec!(6))), false, false),
        // (110 − 105) / 105 = 4.76 %; (90 − 95) / 95 = −5.26 %
        (
            trig("percent_to_current_target", Some(">"), Some(dec!(4.76))),
            true,
            false,
        ),
        (
            trig("percent_to_current_target", Some("<"), Some(dec!(-5.26))),
            false,
            true,
        ),
        // (120 − 110) / 110 = 9.09 %; (80 − 90) / 90 = −11.1 %
        (
            trig("new_target_percent", Some(">"), Some(dec!(9))),
            true,
            false,
        ),
        (
            trig("new_target_percent", Some("<"), Some(dec!(-11))),
            false,
            true,
        ),
        (flag("new_target_higher"), true, false),
        (flag("new_target_lower"), false, true),
        // (120 − 100) / 100 = 20 %; (80 − 100) / 100 = −20 %
        (
            trig("percent_open_to_new_target", Some("=="), Some(dec!(20))),
            true,
            false,
        ),
        (
            trig("percent_open_to_new_target", Some("=="), Some(dec!(-20))),
            false,
            true,
        ),
    ];
    for (t, want_long, want_short) in cases {
        assert_eq!(t.holds(&long), want_long, "{t} on the long");
        assert_eq!(t.holds(&short), want_short, "{t} on the short");
    }
}

#[test]
fn losing_positions_measure_a_loss() {
    let r = rec(
        Action::Hold,
        dec!(50),
        dec!(0),
        RiskLevel::Low,
        TimeHorizon::LongTerm,
    );
    // Long at 100 now 90; short at 100 now 110: both 10 % down, 100 lost on 10 units.
    for (side, price) in [(Side::Buy, dec!(90)), (Side::Sell, dec!(110))] {
        let f = RuleFacts {
            current_price: Some(price),
            position: Some(opened(side)),
            ..facts(&r)
        };
        for (t, want) in [
            (
                trig("profit_loss_percent", Some("=="), Some(dec!(-10))),
                true,
            ),
            (
                trig("profit_loss_amount", Some("=="), Some(dec!(-100))),
                true,
            ),
            (trig("profit_loss_amount", Some(">"), Some(dec!(0))), false),
        ] {
            assert_eq!(t.holds(&f), want, "{t} on {side:?}");
        }
    }
}

#[test]
fn profit_loss_is_rounded_as_the_original() {
    // Long 3 units at 100, quote 100.123456: amount 0.370368 → 0.37; percent 0.123456 → 0.1235.
    let r = rec(
        Action::Hold,
        dec!(50),
        dec!(0),
        RiskLevel::Low,
        TimeHorizon::LongTerm,
    );
    let f = RuleFacts {
        current_price: Some(dec!(100.123456)),
        position: Some(PositionFacts {
            quantity: dec!(3),
            ..opened(Side::Buy)
        }),
        ..facts(&r)
    };
    assert_eq!(Metric::ProfitLossAmount.measure(&f), Some(dec!(0.37)));
    assert_eq!(Metric::ProfitLossPercent.measure(&f), Some(dec!(0.1235)));
}

#[test]
fn missing_facts_make_conditions_false() {
    // No position, no previous recommendation, nothing loaded: every condition that needs
    // one of them is false, whatever the operator. Catches: a default of 0 standing in.
    let r = rec(
        Action::Buy,
        dec!(70),
        dec!(10),
        RiskLevel::High,
        TimeHorizon::ShortTerm,
    );
    let f = facts(&r);
    let numeric = [
        "percent_to_current_target",
        "new_target_percent",
        "percent_open_to_new_target",
        "profit_loss_amount",
        "profit_loss_percent",
        "days_opened",
        "instrument_account_share",
        "days_since_last_close",
        "days_since_last_profitable_close",
        "days_since_last_losing_close",
    ];
    for event in numeric {
        for op in [">", ">=", "<", "<=", "==", "!="] {
            let t = trig(event, Some(op), Some(dec!(0)));
            assert!(!t.holds(&f), "{t} without facts");
        }
    }
    for event in [
        "has_buy_position",
        "has_sell_position",
        "has_position_account",
        "has_no_position_account",
        "rating_upgraded",
        "rating_downgraded",
        "rating_negative_to_positive",
        "new_target_higher",
        "new_target_lower",
    ] {
        assert!(!flag(event).holds(&f), "{event} without facts");
    }
    assert!(flag("has_no_position").holds(&f));
    // A WAITING position (no open price, no opening time, no take profit) is a position,
    // but measures nothing that needs those.
    let waiting = RuleFacts {
        position: Some(PositionFacts {
            open_price: None,
            opened_at: None,
            take_profit: None,
            ..opened(Side::Buy)
        }),
        ..f
    };
    assert!(flag("has_position").holds(&waiting));
    assert!(flag("has_buy_position").holds(&waiting));
    for event in ["profit_loss_percent", "days_opened", "new_target_percent"] {
        assert!(
            !trig(event, Some("!="), Some(dec!(1))).holds(&waiting),
            "{event}"
        );
    }
}

#[test]
fn rating_changes() {
    use Action::*;
    let all = [
        ("rating_negative_to_neutral", Sell, Hold),
        ("rating_negative_to_positive", Sell, Buy),
        ("rating_neutral_to_negative", Hold, Sell),
        ("rating_neutral_to_positive", Hold, Buy),
        ("rating_positive_to_negative", Buy, Sell),
        ("rating_positive_to_neutral", Buy, Hold),
    ];
    let actions = [Buy, Sell, Hold, Overweight, Underweight];
    for (event, from, to) in all {
        for prev in actions {
            for cur in actions {
                let r = rec(
                    cur,
                    dec!(50),
                    dec!(0),
                    RiskLevel::Low,
                    TimeHorizon::LongTerm,
                );
                let f = RuleFacts {
                    previous_action: Some(prev),
                    ..facts(&r)
                };
                let want = prev == from && cur == to;
                assert_eq!(flag(event).holds(&f), want, "{event}: {prev:?} → {cur:?}");
            }
        }
    }
    // Upgrades and downgrades on the five grades.
    let cases = [
        (Sell, Underweight, true, false),
        (Underweight, Hold, true, false),
        (Hold, Overweight, true, false),
        (Overweight, Buy, true, false),
        (Buy, Sell, false, true),
        (Overweight, Hold, false, true),
        (Hold, Hold, false, false),
    ];
    for (prev, cur, up, down) in cases {
        let r = rec(
            cur,
            dec!(50),
            dec!(0),
            RiskLevel::Low,
            TimeHorizon::LongTerm,
        );
        let f = RuleFacts {
            previous_action: Some(prev),
            ..facts(&r)
        };
        assert_eq!(flag("rating_upgraded").holds(&f), up, "{prev:?} → {cur:?}");
        assert_eq!(
            flag("rating_downgraded").holds(&f),
            down,
            "{prev:?} → {cur:?}"
        );
    }
}

#[test]
fn new_target_tolerance_is_two_percent() {
    // Take profit 100; a new target of 102 is within the 2 % tolerance, 102.01 above it.
    for (target, higher, lower) in [
        (dec!(102), false, false),
        (dec!(102.01), true, false),
        (dec!(98), false, false),
        (dec!(97.99), false, true),
    ] {
        let mut r = rec(
            Action::Buy,
            dec!(50),
            dec!(0),
            RiskLevel::Low,
            TimeHorizon::LongTerm,
        );
        r.target_price = Some(Price::new(target).unwrap());
        let f = RuleFacts {
            position: Some(PositionFacts {
                take_profit: Some(dec!(100)),
                ..opened(Side::Buy)
            }),
            ..facts(&r)
        };
        assert_eq!(flag("new_target_higher").holds(&f), higher, "{target}");
        assert_eq!(flag("new_target_lower").holds(&f), lower, "{target}");
    }
}

#[test]
fn account_share_and_closes() {
    let r = rec(
        Action::Buy,
        dec!(50),
        dec!(0),
        RiskLevel::Low,
        TimeHorizon::LongTerm,
    );
    let ten_days = now() - Duration::days(10);
    let f = RuleFacts {
        account_has_position: Some(true),
        instrument_account_share: Some(dec!(8.5)),
        last_closes: Some(LastCloses {
            any: Some(ten_days),
            profitable: None,
            losing: Some(ten_days),
        }),
        ..facts(&r)
    };
    let never = RuleFacts {
        account_has_position: Some(false),
        last_closes: Some(LastCloses::default()),
        ..facts(&r)
    };
    // (trigger, holds with f, holds with never)
    let cases = [
        (flag("has_position_account"), true, false),
        (flag("has_no_position_account"), false, true),
        (
            trig("instrument_account_share", Some(">"), Some(dec!(8))),
            true,
            false,
        ),
        (
            trig("days_since_last_close", Some("=="), Some(dec!(10))),
            true,
            false,
        ),
        (
            trig("days_since_last_losing_close", Some("<"), Some(dec!(30))),
            true,
            false,
        ),
        // never closed: the original's sentinel, so a cooldown gate passes
        (
            trig(
                "days_since_last_profitable_close",
                Some(">"),
                Some(dec!(30)),
            ),
            true,
            true,
        ),
        (
            trig("days_since_last_close", Some(">"), Some(dec!(30))),
            false,
            true,
        ),
        (
            trig("days_since_last_close", Some("=="), Some(dec!(1000000000))),
            false,
            true,
        ),
    ];
    for (t, want, want_never) in cases {
        assert_eq!(t.holds(&f), want, "{t}");
        assert_eq!(t.holds(&never), want_never, "{t} (never closed)");
    }
}

#[test]
fn entry_facts_are_what_enter_market_knows() {
    use crate::transaction::{ActivePosition, TransactionStatus};
    let r = rec(
        Action::Buy,
        dec!(50),
        dec!(0),
        RiskLevel::Low,
        TimeHorizon::LongTerm,
    );
    let held = ActivePosition {
        transaction_id: 7,
        symbol: "AAPL".into(),
        side: Side::Sell,
        status: TransactionStatus::Waiting,
        quantity: dec!(3),
        price: dec!(100),
    };
    let f = RuleFacts::entry(&r, Some(&held), Some(dec!(99)));
    assert!(flag("has_position").holds(&f));
    assert!(flag("has_sell_position").holds(&f));
    assert_eq!(
        f.position.unwrap().open_price,
        None,
        "WAITING has no open price"
    );
    let opened = ActivePosition {
        status: TransactionStatus::Opened,
        ..held
    };
    let f = RuleFacts::entry(&r, Some(&opened), Some(dec!(99)));
    assert_eq!(f.position.unwrap().open_price, Some(dec!(100)));
    assert!(flag("has_no_position").holds(&RuleFacts::entry(&r, None, None)));
}

#[test]
fn conditions_never_panic_on_extreme_figures() {
    // Catches: unchecked arithmetic in any measure (a tiny or zero quote, huge targets).
    let mut r = rec(
        Action::Buy,
        dec!(70),
        Decimal::MAX,
        RiskLevel::High,
        TimeHorizon::ShortTerm,
    );
    r.price_at_date = Price::new(dec!(0.0001)).unwrap();
    let extremes = [
        Decimal::MIN,
        dec!(-1),
        dec!(0),
        dec!(0.0000000000000000000000000001),
        Decimal::MAX,
    ];
    for (_, metric) in catalogue_metrics() {
        for price in extremes {
            for open in extremes {
                let f = RuleFacts {
                    current_price: Some(price),
                    position: Some(PositionFacts {
                        side: Side::Sell,
                        quantity: Decimal::MAX,
                        open_price: Some(open),
                        opened_at: Some(DateTime::<Utc>::MIN_UTC),
                        take_profit: Some(open),
                        stop_loss: None,
                    }),
                    instrument_account_share: Some(price),
                    last_closes: Some(LastCloses {
                        any: Some(DateTime::<Utc>::MAX_UTC),
                        profitable: Some(DateTime::<Utc>::MIN_UTC),
                        losing: None,
                    }),
                    ..facts(&r)
                };
                let _ = metric.measure(&f);
            }
        }
    }
}

/// Every metric, through its name.
fn catalogue_metrics() -> Vec<(&'static str, Metric)> {
    [
        "confidence",
        "expected_profit_target_percent",
        "percent_to_new_target",
        "percent_to_current_target",
        "new_target_percent",
        "percent_open_to_new_target",
        "profit_loss_amount",
        "profit_loss_percent",
        "days_opened",
        "instrument_account_share",
        "days_since_last_close",
        "days_since_last_profitable_close",
        "days_since_last_losing_close",
    ]
    .into_iter()
    .map(|n| match trig(n, Some(">"), Some(dec!(0))) {
        Trigger::Compare { metric, .. } => (n, metric),
        Trigger::Flag(_) => unreachable!("{n} is numeric"),
    })
    .collect()
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
        let f = RuleFacts {
            current_price,
            ..facts(&r)
        };
        let got = t.holds(&f);
        if let Some(want) = want {
            assert_eq!(got, want, "{target_price:?} {current_price:?} {epp}");
        }
    }
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
    let f = facts(&r);
    let bullish = || flag("bullish");
    let bearish = || flag("bearish");
    let tp = RuleAction::AdjustTakeProfit(ExitTarget::Percent {
        reference: ExitReference::OrderOpenPrice,
        percent: dec!(10),
    });
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
        // continue_processing accumulates, duplicates dropped (actions with parameters too)
        (
            vec![
                rule("a", vec![bullish()], vec![Buy, tp], true),
                rule("b", vec![], vec![Buy, Sell, tp], false),
                rule("c", vec![], vec![Buy], false),
            ],
            vec![Buy, tp, Sell],
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
        let ev = rs.evaluate(&f);
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
    let rs = Ruleset {
        name: "t".into(),
        rules: vec![rule(
            "conf",
            vec![
                flag("bullish"),
                trig("confidence", Some(">="), Some(dec!(60))),
            ],
            vec![RuleAction::Buy],
            false,
        )],
    };
    assert_eq!(
        rs.evaluate(&facts(&r)).describe(),
        "no rule matched (conf: confidence >= 60 not met)"
    );
}

#[test]
fn bad_rule_specs_name_every_field() {
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
                ..ActionSpec::default()
            },
            ActionSpec {
                action: "sel".into(),
                ..ActionSpec::default()
            },
        ],
    };
    let errs = Rule::from_spec(&spec).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["triggers[0].event", "actions[1].action"]);
    let empty = RuleSpec {
        actions: vec![],
        triggers: vec![],
        ..spec
    };
    assert_eq!(Rule::from_spec(&empty).unwrap_err()[0].field, "actions");
}

#[test]
fn a_ruleset_reads_the_price_only_through_a_price_measure() {
    // Catches: a run that skips asking for quotes while a trigger of its ruleset needs one.
    let trigger = |event: &str, op: Option<&str>, value: Option<Decimal>| {
        Trigger::from_spec(&TriggerSpec {
            event: event.into(),
            op: op.map(Into::into),
            value,
        })
        .unwrap()
    };
    let ruleset = |triggers: Vec<Trigger>| Ruleset {
        name: "r".into(),
        rules: vec![Rule {
            name: "r".into(),
            continue_processing: false,
            triggers,
            actions: vec![RuleAction::Buy],
        }],
    };
    let blind = ruleset(vec![
        trigger("bullish", None, None),
        trigger("confidence", Some(">="), Some(dec!(60))),
        trigger("new_target_higher", None, None),
    ]);
    assert!(!blind.reads_price());
    for event in [
        "percent_to_new_target",
        "percent_to_current_target",
        "profit_loss_amount",
        "profit_loss_percent",
    ] {
        let seeing = ruleset(vec![
            trigger("bullish", None, None),
            trigger(event, Some(">"), Some(dec!(1))),
        ]);
        assert!(seeing.reads_price(), "{event}");
    }
}
