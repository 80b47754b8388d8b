//! Rulesets through the binary: `rules export`, `rules show`, `check`'s listing, rules files
//! of the original's format in the configuration (relative to the configuration file), and
//! a ruleset read from a file driving a real enter_market run on SQLite and PostgreSQL.

mod cmd;
mod common;

use std::path::Path;

use cmd::{Out, run_in, with_config};
use common::{DbKind, TestDb, both};
use serde_json::Value;

/// The example of reference §4.5, as the original writes it (shared with the binary's tests).
const LONG_TERM_ENTER: &str = include_str!("../../domain/tests/fixtures/long_term_enter.json");

/// A configuration on `url` with an inline ruleset `inline` (used by expert 1) and the
/// ruleset entries `extra` (TOML, appended).
fn config(url: &str, extra: &str) -> String {
    format!(
        r#"[database]
url = "{url}"

[[accounts]]
name = "paper"
broker = "paper"

[[experts]]
id = 1
account = "paper"
allow_automated_trade_opening = true
enter_market_ruleset = "inline"

[[rulesets]]
name = "inline"
[[rulesets.rules]]
name = "confident"
continue_processing = true
triggers = [{{ event = "bullish" }}, {{ event = "confidence", op = ">=", value = 60 }}]
actions = [{{ action = "buy" }}, {{ action = "adjust_take_profit", reference = "order_open_price", value = 10 }}]
[[rulesets.rules]]
name = "protect"
triggers = [{{ event = "has_position" }}, {{ event = "profit_loss_percent", op = "<", value = -3 }}]
actions = [{{ action = "adjust_stop_loss", price = 95.5 }}, {{ action = "increase_instrument_share", value = 8 }}]
{extra}
"#
    )
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("tw.db").display())
}

/// Writes `path` (relative to `dir`, directories created).
fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn json(o: &Out) -> Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.describe()))
}

#[test]
fn rules_show_prints_one_line_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(&sqlite_url(dir.path()), "");
    let o = with_config(dir.path(), &text, &["rules", "show", "inline"]);
    o.expect(0, "rules show");
    assert_eq!(
        o.stdout,
        "confident: IF bullish AND confidence >= 60 THEN buy, adjust_take_profit order_open_price +10% (continue_processing)\n\
         protect: IF has_position AND profit_loss_percent < -3 THEN adjust_stop_loss at 95.5, increase_instrument_share to 8%\n"
    );
    assert!(
        !dir.path().join("tw.db").exists(),
        "rules opens no database"
    );
}

#[test]
fn unknown_names_are_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(&sqlite_url(dir.path()), "");
    for args in [
        &["rules", "show", "nope"][..],
        &["rules", "export", "inline", "nope", "other"][..],
    ] {
        let o = with_config(dir.path(), &text, args);
        o.expect(2, &format!("{args:?}"));
        assert!(
            o.stderr.contains("unknown ruleset \"nope\"")
                && o.stderr.contains("no ruleset with this name is configured"),
            "{args:?}: {}",
            o.describe()
        );
        assert!(o.stdout.is_empty(), "{}", o.describe());
    }
    let o = with_config(dir.path(), &text, &["rules", "export", "a", "b"]);
    assert!(o.stderr.contains("\"a\", \"b\""), "{}", o.describe());
}

#[test]
fn rules_export_writes_the_originals_format() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/enter.json", LONG_TERM_ENTER);
    let extra = "[[rulesets]]\nname = \"long-term\"\nfile = \"rules/enter.json\"\n";
    let text = config(&sqlite_url(dir.path()), extra);

    // One name: export_type ruleset.
    let o = with_config(dir.path(), &text, &["rules", "export", "inline"]);
    o.expect(0, "export one");
    let v = json(&o);
    assert_eq!(v["export_version"], "1.0");
    assert_eq!(v["export_type"], "ruleset");
    assert!(
        v["export_timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let rs = &v["ruleset"];
    assert_eq!(rs["name"], "inline");
    // Used as an enter_market ruleset by expert 1.
    assert_eq!(rs["subtype"], "enter_market");
    let rule = &rs["rules"][1];
    assert_eq!(rule["name"], "protect");
    assert_eq!(rule["order_index"], 1);
    assert_eq!(
        rule["triggers"]["trigger_1"],
        serde_json::json!({"event_type": "profit_loss_percent", "operator": "<", "value": -3})
    );
    assert_eq!(
        rule["actions"]["action_0"],
        serde_json::json!({"action_type": "adjust_stop_loss", "stop_loss_price": 95.5})
    );

    // No name: every ruleset, sorted, as export_type rulesets; the file's description and
    // subtype are kept.
    let o = with_config(dir.path(), &text, &["rules", "export"]);
    o.expect(0, "export all");
    let v = json(&o);
    assert_eq!(v["export_type"], "rulesets");
    let names: Vec<&str> = v["rulesets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inline", "long-term"]);
    assert_eq!(v["rulesets"][1]["description"], "…");
    assert_eq!(v["rulesets"][1]["subtype"], "enter_market");
    // Two names: rulesets too, in the order asked.
    let o = with_config(
        dir.path(),
        &text,
        &["rules", "export", "long-term", "inline"],
    );
    o.expect(0, "export two");
    assert_eq!(json(&o)["export_type"], "rulesets");
    assert_eq!(json(&o)["rulesets"][0]["name"], "long-term");
}

/// Every ruleset's rules as `rules show` prints them.
fn shown(dir: &Path, text: &str, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let o = with_config(dir, text, &["rules", "show", n]);
            o.expect(0, n);
            o.stdout
        })
        .collect()
}

#[test]
fn export_then_import_gives_identical_rulesets() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/enter.json", LONG_TERM_ENTER);
    let url = sqlite_url(dir.path());
    let first = config(
        &url,
        "[[rulesets]]\nname = \"long-term\"\nfile = \"rules/enter.json\"\n",
    );
    let o = with_config(dir.path(), &first, &["rules", "export"]);
    o.expect(0, "export");
    write(dir.path(), "exported/all.json", &o.stdout);
    // The same rulesets, now every one of them read from the exported file.
    let second = format!(
        r#"[database]
url = "{url}"
[[accounts]]
name = "paper"
broker = "paper"
[[rulesets]]
name = "inline"
file = "exported/all.json"
ruleset = "inline"
[[rulesets]]
name = "long-term"
file = "exported/all.json"
ruleset = "long-term"
"#
    );
    let names = ["inline", "long-term"];
    assert_eq!(
        shown(dir.path(), &first, &names),
        shown(dir.path(), &second, &names)
    );
    // … and exported again, the same document but for its timestamp.
    let o = with_config(dir.path(), &second, &["rules", "export"]);
    o.expect(0, "export again");
    let mut a = json(&with_config(dir.path(), &first, &["rules", "export"]));
    let mut b = json(&o);
    a["export_timestamp"] = Value::Null;
    b["export_timestamp"] = Value::Null;
    assert_eq!(a, b);
}

#[test]
fn check_lists_every_ruleset_its_rules_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "conf/rules/enter.json", LONG_TERM_ENTER);
    write(
        dir.path(),
        "conf/tradewarden.toml",
        &config(
            &sqlite_url(dir.path()),
            "[[rulesets]]\nname = \"long-term\"\nfile = \"rules/enter.json\"\n",
        ),
    );
    // Run from another directory: the rules file is found relative to the configuration.
    let o = run_in(dir.path(), &["--config", "conf/tradewarden.toml", "check"]);
    o.expect(0, "check");
    for want in [
        "rulesets: 2",
        "  inline: 2 rule(s): confident, protect (from the configuration)",
        "    confident: IF bullish AND confidence >= 60 THEN buy, adjust_take_profit order_open_price +10% (continue_processing)",
        "  long-term: 1 rule(s): BUY_long_conf70 (from rules/enter.json)",
        "    BUY_long_conf70: IF bullish AND confidence >= 70 AND has_no_position THEN buy, adjust_take_profit expert_target_price -10%, adjust_stop_loss order_open_price -5%",
        "min_take_profit_percent 2, min_tp_sl_percent 3, min_stop_loss_percent 7",
    ] {
        assert!(o.stdout.contains(want), "{want:?}: {}", o.describe());
    }
}

#[test]
fn a_bad_rules_file_is_a_configuration_error_naming_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bad = LONG_TERM_ENTER.replace(
        r#"{"event_type":"has_no_position"}"#,
        r#"{"event_type":"has_no_positon"}"#,
    );
    write(dir.path(), "rules/enter.json", &bad);
    let unsupported = LONG_TERM_ENTER.replace(
        r#"{"event_type":"has_no_position"}"#,
        r#"{"event_type":"price_vs_target_low_percent","operator":">","value":5}"#,
    );
    write(dir.path(), "rules/fmp.json", &unsupported);
    let text = config(
        &sqlite_url(dir.path()),
        "[[rulesets]]\nname = \"a\"\nfile = \"rules/enter.json\"\n[[rulesets]]\nname = \"b\"\nfile = \"rules/fmp.json\"\n",
    );
    for args in [&["check"][..], &["rules", "show", "inline"][..]] {
        let o = with_config(dir.path(), &text, args);
        o.expect(2, &format!("{args:?}"));
        for want in [
            "rulesets[1].file: rules/enter.json: ruleset \"LongTerm Enter\", rule \"BUY_long_conf70\", trigger_2.event_type: unknown trigger \"has_no_positon\"",
            "rulesets[2].file: rules/fmp.json: ruleset \"LongTerm Enter\", rule \"BUY_long_conf70\", trigger_2.event_type: trigger \"price_vs_target_low_percent\" is not supported: FMP ratings",
        ] {
            assert!(o.stderr.contains(want), "{want:?}: {}", o.describe());
        }
    }
}

/// A ruleset read from the original's file drives a real run: the confident BUY is
/// ordered, the unconfident one is not.
async fn a_ruleset_from_a_file_drives_enter_market(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/enter.json", LONG_TERM_ENTER);
    let text = config(
        &db.url,
        "[[rulesets]]\nname = \"long-term\"\nfile = \"rules/enter.json\"\n",
    )
    .replace(
        "enter_market_ruleset = \"inline\"",
        "enter_market_ruleset = \"long-term\"",
    );
    let recs = concat!(
        r#"{"expert_id":1,"symbol":"AAA","action":"BUY","confidence":80,"expected_profit_percent":10,"price_at_date":100,"risk_level":"LOW","time_horizon":"LONG_TERM"}"#,
        "\n",
        r#"{"expert_id":1,"symbol":"BBB","action":"BUY","confidence":65,"expected_profit_percent":10,"price_at_date":100,"risk_level":"LOW","time_horizon":"LONG_TERM"}"#,
        "\n",
    );
    write(dir.path(), "recs.jsonl", recs);
    with_config(dir.path(), &text, &["import", "recs.jsonl"]).expect(0, "import");
    let o = with_config(dir.path(), &text, &["process", "--all"]);
    o.expect(0, "process");
    let o = with_config(dir.path(), &text, &["outcomes", "--json"]);
    o.expect(0, "outcomes");
    let outcomes = json(&o);
    let by_symbol = |s: &str| {
        outcomes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["symbol"] == s)
            .unwrap_or_else(|| panic!("no outcome for {s}: {}", o.describe()))
            .clone()
    };
    assert_eq!(by_symbol("AAA")["outcome"], "ordered", "{}", o.describe());
    assert_eq!(
        by_symbol("BBB")["outcome"],
        "rules_not_met",
        "{}",
        o.describe()
    );
    assert!(
        by_symbol("BBB")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("BUY_long_conf70: confidence >= 70 not met")),
        "{}",
        o.describe()
    );
}

both!(a_ruleset_from_a_file_drives_enter_market);
