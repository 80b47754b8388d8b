//! The original's rules files (export format v1.0): a file written by hand in its format
//! loads; import → export → import gives identical rulesets; every problem names the
//! ruleset, the rule and the key.

use chrono::{DateTime, Utc};
use rust_decimal_macros::dec;
use tradewarden_domain::UseCase;
use tradewarden_domain::money::Price;
use tradewarden_domain::rules::file::{
    ExportType, ExportedRuleset, FileError, PickError, RulesFile, export_ruleset, export_rulesets,
};
use tradewarden_domain::rules::{
    ExitReference, ExitTarget, Flag, Metric, Op, Rule, RuleAction, Ruleset, Trigger,
};

/// The example of reference §4.5, as the original writes it (shared with the binary's tests).
const LONG_TERM_ENTER: &str = include_str!("fixtures/long_term_enter.json");

fn at() -> DateTime<Utc> {
    "2026-11-27T10:00:00Z".parse().unwrap()
}

fn load(text: &str, name: Option<&str>) -> Ruleset {
    let file = RulesFile::parse(text).unwrap();
    file.pick(name).unwrap().to_ruleset("configured").unwrap()
}

#[test]
fn the_references_example_loads() {
    let file = RulesFile::parse(LONG_TERM_ENTER).unwrap();
    assert_eq!(file.export_type, ExportType::Ruleset);
    let doc = file.pick(None).unwrap();
    assert_eq!(doc.name.as_deref(), Some("LongTerm Enter"));
    assert_eq!(doc.subtype, Some(UseCase::EnterMarket));
    assert_eq!(doc.description.as_deref(), Some("…"));
    let rs = doc.to_ruleset("long-term").unwrap();
    assert_eq!(
        rs,
        Ruleset {
            name: "long-term".into(),
            rules: vec![Rule {
                name: "BUY_long_conf70".into(),
                continue_processing: false,
                triggers: vec![
                    Trigger::Flag(Flag::Bullish),
                    Trigger::Compare {
                        metric: Metric::Confidence,
                        op: Op::Ge,
                        value: dec!(70),
                    },
                    Trigger::Flag(Flag::HasNoPosition),
                ],
                actions: vec![
                    RuleAction::Buy,
                    RuleAction::AdjustTakeProfit(ExitTarget::Percent {
                        reference: ExitReference::ExpertTargetPrice,
                        percent: dec!(-10),
                    }),
                    RuleAction::AdjustStopLoss(ExitTarget::Percent {
                        reference: ExitReference::OrderOpenPrice,
                        percent: dec!(-5),
                    }),
                ],
            }],
        }
    );
    assert_eq!(
        rs.rules[0].sentence(),
        "IF bullish AND confidence >= 70 AND has_no_position THEN buy, adjust_take_profit expert_target_price -10%, adjust_stop_loss order_open_price -5%"
    );
}

/// Rulesets using every condition and action kind, in several rules.
fn everything() -> Vec<Ruleset> {
    let t = |event: &str, op: Option<&str>, value| {
        Trigger::from_spec(&tradewarden_domain::rules::TriggerSpec {
            event: event.into(),
            op: op.map(Into::into),
            value,
        })
        .unwrap()
    };
    let p = |d| Price::new(d).unwrap();
    let flags = [
        "bullish",
        "bearish",
        "current_rating_positive",
        "current_rating_neutral",
        "current_rating_negative",
        "current_rating_overweight",
        "current_rating_underweight",
        "has_position",
        "has_no_position",
        "has_buy_position",
        "has_sell_position",
        "has_position_account",
        "has_no_position_account",
        "short_term",
        "medium_term",
        "long_term",
        "highrisk",
        "mediumrisk",
        "lowrisk",
        "rating_negative_to_neutral",
        "rating_negative_to_positive",
        "rating_neutral_to_negative",
        "rating_neutral_to_positive",
        "rating_positive_to_negative",
        "rating_positive_to_neutral",
        "rating_upgraded",
        "rating_downgraded",
        "new_target_higher",
        "new_target_lower",
    ];
    let metrics = [
        ("confidence", ">=", dec!(70)),
        ("expected_profit_target_percent", ">", dec!(2.5)),
        ("percent_to_new_target", "<", dec!(-0.125)),
        ("percent_to_current_target", "<=", dec!(1)),
        ("new_target_percent", "==", dec!(3)),
        ("percent_open_to_new_target", "!=", dec!(0)),
        ("profit_loss_amount", ">", dec!(1234.56)),
        ("profit_loss_percent", "<", dec!(-7.5)),
        ("days_opened", ">", dec!(30)),
        ("instrument_account_share", ">=", dec!(12)),
        ("days_since_last_close", ">", dec!(5)),
        ("days_since_last_profitable_close", ">", dec!(0.5)),
        ("days_since_last_losing_close", ">", dec!(10)),
    ];
    let mut rules: Vec<Rule> = flags
        .chunks(7)
        .enumerate()
        .map(|(i, chunk)| Rule {
            name: format!("flags-{i}"),
            continue_processing: i % 2 == 0,
            triggers: chunk.iter().map(|f| t(f, None, None)).collect(),
            actions: vec![RuleAction::Close],
        })
        .collect();
    rules.push(Rule {
        name: "numbers".into(),
        continue_processing: true,
        triggers: metrics
            .iter()
            .map(|(m, op, v)| t(m, Some(op), Some(*v)))
            .collect(),
        actions: vec![
            RuleAction::Buy,
            RuleAction::AdjustTakeProfit(ExitTarget::Price(p(dec!(187.25)))),
            RuleAction::AdjustStopLoss(ExitTarget::Price(p(dec!(95.5)))),
            RuleAction::IncreaseInstrumentShare(dec!(8)),
            RuleAction::DecreaseInstrumentShare(dec!(0)),
        ],
    });
    rules.push(Rule {
        name: "always".into(),
        continue_processing: false,
        triggers: vec![],
        actions: vec![
            RuleAction::Sell,
            RuleAction::AdjustTakeProfit(ExitTarget::Percent {
                reference: ExitReference::CurrentPrice,
                percent: dec!(12.345),
            }),
            RuleAction::AdjustStopLoss(ExitTarget::Percent {
                reference: ExitReference::ExpertTargetPrice,
                percent: dec!(-0.0001),
            }),
            RuleAction::StopProcessing,
        ],
    });
    vec![
        Ruleset {
            name: "alpha".into(),
            rules,
        },
        Ruleset {
            name: "beta".into(),
            rules: vec![Rule {
                name: "guard".into(),
                continue_processing: false,
                triggers: vec![t("lowrisk", None, None)],
                actions: vec![RuleAction::StopProcessing],
            }],
        },
    ]
}

#[test]
fn import_export_import_gives_identical_rulesets() {
    let rulesets = everything();
    // Several rulesets: export_type rulesets.
    let exported: Vec<ExportedRuleset<'_>> = rulesets
        .iter()
        .map(|r| ExportedRuleset {
            ruleset: r,
            description: Some("made by hand"),
            subtype: Some(UseCase::OpenPositions),
        })
        .collect();
    let text = export_rulesets(&exported, at()).unwrap();
    let file = RulesFile::parse(&text).unwrap();
    assert_eq!(file.export_type, ExportType::Rulesets);
    for original in &rulesets {
        let doc = file.pick(Some(&original.name)).unwrap();
        assert_eq!(doc.subtype, Some(UseCase::OpenPositions));
        assert_eq!(doc.description.as_deref(), Some("made by hand"));
        let back = doc.to_ruleset(&original.name).unwrap();
        assert_eq!(&back, original);
        // … and once more: the second export is the first, byte for byte.
        let again = export_ruleset(
            &ExportedRuleset {
                ruleset: &back,
                description: None,
                subtype: None,
            },
            at(),
        )
        .unwrap();
        let reread = load(&again, None);
        assert_eq!(reread.rules, original.rules);
    }
    // The hand-written example survives the round trip too.
    let example = load(LONG_TERM_ENTER, None);
    let text = export_ruleset(
        &ExportedRuleset {
            ruleset: &example,
            description: None,
            subtype: Some(UseCase::EnterMarket),
        },
        at(),
    )
    .unwrap();
    assert_eq!(load(&text, None), example);
}

#[test]
fn the_export_is_the_originals_shape() {
    let rulesets = everything();
    let text = export_ruleset(
        &ExportedRuleset {
            ruleset: &rulesets[0],
            description: None,
            subtype: Some(UseCase::EnterMarket),
        },
        at(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["export_version"], "1.0");
    assert_eq!(v["export_type"], "ruleset");
    assert_eq!(v["export_timestamp"], "2026-11-27T10:00:00Z");
    let rs = &v["ruleset"];
    assert_eq!(rs["name"], "alpha");
    assert_eq!(rs["type"], "trading_recommendation_rule");
    assert_eq!(rs["subtype"], "enter_market");
    assert!(rs["description"].is_null());
    let numbers = &rs["rules"][5];
    assert_eq!(numbers["name"], "numbers");
    assert_eq!(numbers["order_index"], 5);
    assert_eq!(numbers["subtype"], "enter_market");
    assert_eq!(numbers["extra_parameters"], serde_json::json!({}));
    assert_eq!(
        numbers["triggers"]["trigger_0"],
        serde_json::json!({"event_type": "confidence", "operator": ">=", "value": 70})
    );
    assert_eq!(
        numbers["actions"]["action_1"],
        serde_json::json!({"action_type": "adjust_take_profit", "take_profit_price": 187.25})
    );
    assert_eq!(
        numbers["actions"]["action_2"],
        serde_json::json!({"action_type": "adjust_stop_loss", "stop_loss_price": 95.5})
    );
    assert_eq!(
        numbers["actions"]["action_3"],
        serde_json::json!({"action_type": "increase_instrument_share", "value": 8, "target_percent": 8})
    );
    assert_eq!(
        rs["rules"][0]["triggers"]["trigger_0"],
        serde_json::json!({"event_type": "bullish"})
    );
    // Numbers are written from their digits: 1234.56 and −0.0001 exactly.
    assert!(text.contains("\"value\": 1234.56"), "{text}");
    assert!(text.contains("\"value\": -0.0001"), "{text}");
    // trigger_10 follows trigger_9.
    let t9 = text.find("\"trigger_9\"").unwrap();
    let t10 = text.find("\"trigger_10\"").unwrap();
    assert!(t9 < t10);
}

/// The reference example with one trigger or action replaced.
fn example_with(from: &str, to: &str) -> String {
    assert!(LONG_TERM_ENTER.contains(from), "{from}");
    LONG_TERM_ENTER.replace(from, to)
}

fn problems(text: &str) -> Vec<String> {
    let file = RulesFile::parse(text).unwrap();
    let doc = file.pick(None).unwrap();
    doc.to_ruleset("x")
        .unwrap_err()
        .iter()
        .map(FileError::to_string)
        .collect()
}

#[test]
fn every_problem_names_the_ruleset_the_rule_and_the_key() {
    let at = "ruleset \"LongTerm Enter\", rule \"BUY_long_conf70\", ";
    // (replace, by, the problem's start after `at`)
    let cases = [
        (
            r#"{"event_type":"bullish"}"#,
            r#"{"event_type":"bulish"}"#,
            "trigger_0.event_type: unknown trigger \"bulish\"",
        ),
        (
            r#"{"event_type":"has_no_position"}"#,
            r#"{"event_type":"price_vs_target_high_percent","operator":">","value":1}"#,
            "trigger_2.event_type: trigger \"price_vs_target_high_percent\" is not supported: FMP ratings",
        ),
        (
            r#"{"event_type":"has_no_position"}"#,
            r#"{"event_type":"iv_rank","operator":">","value":1}"#,
            "trigger_2.event_type: trigger \"iv_rank\" is not supported: options",
        ),
        (
            r#"{"event_type":"has_no_position"}"#,
            r#"{"event_type":"percent_above_recent_low","operator":">","value":1}"#,
            "trigger_2.event_type: trigger \"percent_above_recent_low\" is not supported: daily bars",
        ),
        (
            r#"{"event_type":"has_no_position"}"#,
            r#"{"event_type":"days_to_earnings","operator":">","value":1}"#,
            "trigger_2.event_type: trigger \"days_to_earnings\" is not supported: earnings",
        ),
        (
            r#""operator":">=","value":70.0"#,
            r#""operator":"=>","value":70.0"#,
            "trigger_1.operator: unknown operator \"=>\"",
        ),
        (
            r#""operator":">=","value":70.0"#,
            r#""operator":">=","value":170.0"#,
            "trigger_1.value: out of range (0..=100), got 170",
        ),
        (
            r#""operator":">=","value":70.0"#,
            r#""operator":">=","value":"abc""#,
            "trigger_1.value: not a decimal number",
        ),
        (
            r#"{"event_type":"bullish"}"#,
            r#"{"event_type":"bullish","colour":"blue"}"#,
            "trigger_0.colour: unknown key",
        ),
        (
            r#"{"action_type":"buy"}"#,
            r#"{"action_type":"buy_call"}"#,
            "action_0.action_type: action \"buy_call\" is not supported: options",
        ),
        (
            r#"{"action_type":"buy"}"#,
            r#"{"action_type":"by"}"#,
            "action_0.action_type: unknown action \"by\"",
        ),
        (
            r#"{"action_type":"buy"}"#,
            r#"{"action_type":"buy","lot_size":10}"#,
            "action_0.lot_size: unknown key",
        ),
        (
            r#""reference_value":"expert_target_price","value":-10.0"#,
            r#""reference_value":"expert_target","value":-10.0"#,
            "action_1.reference_value: unknown reference \"expert_target\"",
        ),
        (
            r#""reference_value":"order_open_price","value":-5.0"#,
            r#""stop_loss_price":0"#,
            "action_2.stop_loss_price: 0 is out of range",
        ),
        (
            r#""reference_value":"order_open_price","value":-5.0"#,
            r#""take_profit_price":90"#,
            "action_2.take_profit_price: not used by action \"adjust_stop_loss\"",
        ),
    ];
    for (from, to, want) in cases {
        let errs = problems(&example_with(from, to));
        let want = format!("{at}{want}");
        assert!(
            errs.iter().any(|e| e.starts_with(&want)),
            "want {want:?} in {errs:#?}"
        );
    }
}

#[test]
fn what_the_original_tolerates_loads() {
    // Word-form operators, keys set to null, numbers as strings, a `type` instead of an
    // `action_type`, target_percent for a share action, rules ordered by order_index.
    let text = r#"{"export_version":"1.0","export_type":"rulesets","export_timestamp":"x",
      "rulesets":[{"name":"A","rules":[]},{"name":"B","description":null,"subtype":null,"rules":[
        {"name":"second","order_index":1,"triggers":{},"actions":{"action_0":{"type":"close","value":null}}},
        {"name":"first","order_index":0,
         "triggers":{"trigger_1":{"event_type":"days_opened","operator":"gte","value":"30","reference_value":null},
                     "trigger_0":{"event_type":"has_position","operator":null,"value":null}},
         "actions":{"action_0":{"action_type":"increase_instrument_share","target_percent":8.5}}}]}]}"#;
    let rs = load(text, Some("B"));
    let names: Vec<&str> = rs.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(
        rs.rules[0].sentence(),
        "IF has_position AND days_opened >= 30 THEN increase_instrument_share to 8.5%"
    );
    assert_eq!(rs.rules[1].sentence(), "IF always THEN close");
    // A loose rule export is one unnamed ruleset.
    let loose = r#"{"export_version":"1.0","export_type":"rule","export_timestamp":"x",
      "rule":{"name":"r","triggers":{"trigger_0":{"event_type":"bearish"}},"actions":{"action_0":{"action_type":"sell"}}}}"#;
    assert_eq!(
        load(loose, None).rules[0].sentence(),
        "IF bearish THEN sell"
    );
}

#[test]
fn choosing_a_ruleset() {
    let two = r#"{"export_version":"1.0","export_type":"rulesets","rulesets":[{"name":"A","rules":[]},{"name":"B","rules":[]}]}"#;
    let file = RulesFile::parse(two).unwrap();
    assert_eq!(
        file.pick(None).unwrap_err(),
        PickError::Ambiguous(vec!["A".into(), "B".into()])
    );
    assert!(matches!(
        file.pick(Some("C")),
        Err(PickError::NotFound { .. })
    ));
    assert_eq!(
        file.pick(Some("C")).unwrap_err().to_string(),
        "no ruleset \"C\" in the file (it holds: A, B)"
    );
    let loose = r#"{"export_version":"1.0","export_type":"rules","rules":[]}"#;
    assert_eq!(
        RulesFile::parse(loose)
            .unwrap()
            .pick(Some("A"))
            .unwrap_err(),
        PickError::LooseRules
    );
    let none = r#"{"export_version":"1.0","export_type":"rulesets","rulesets":[]}"#;
    assert_eq!(
        RulesFile::parse(none).unwrap().pick(None).unwrap_err(),
        PickError::Empty
    );
}

#[test]
fn broken_envelopes_are_refused() {
    for (text, want) in [
        ("not json", "not a rules file"),
        (
            r#"{"export_version":"2.0","export_type":"rules","rules":[]}"#,
            "export_version: expected \"1.0\", got \"2.0\"",
        ),
        (
            r#"{"export_type":"rules","rules":[]}"#,
            "export_version: expected \"1.0\", got nothing",
        ),
        (
            r#"{"export_version":"1.0","export_type":"ruleset"}"#,
            "export_type \"ruleset\" needs a ruleset",
        ),
        (
            r#"{"export_version":"1.0","export_type":"everything"}"#,
            "export_type: expected ruleset, rulesets, rule or rules, got \"everything\"",
        ),
        (
            r#"{"export_version":"1.0","export_type":"ruleset","ruleset":{"name":"A","subtype":"exit","rules":[]}}"#,
            "ruleset \"A\", subtype: expected enter_market or open_positions",
        ),
    ] {
        let e = RulesFile::parse(text).unwrap_err().to_string();
        assert!(e.starts_with(want), "{text}: {e}");
    }
}
