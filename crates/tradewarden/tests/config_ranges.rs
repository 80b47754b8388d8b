//! Every number of the configuration and the command line has a documented range and an
//! exit-2 error naming its key; a value `check` accepts never fails at run time (each key at
//! its largest and smallest accepted value runs, on SQLite and PostgreSQL).

mod cmd;
mod common;

use cmd::{config, run_in, sqlite_url, with_config};
use common::{DbKind, TestDb};
use serde_json::Value;

#[test]
fn numbers_out_of_range_are_refused_by_check_and_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for (line, want) in [
        (
            "lease_seconds = 9223372036854775807",
            "processing.lease_seconds: out of range (1..=86400), got 9223372036854775807",
        ),
        (
            "lookback_days = 1000000000",
            "processing.lookback_days: out of range (1..=3650), got 1000000000",
        ),
        (
            "lock_timeout_ms = 86400000",
            "processing.lock_timeout_ms: out of range (0..=600000), got 86400000",
        ),
        (
            "max_intent_age_seconds = 0",
            "processing.max_intent_age_seconds: out of range (1..=604800), got 0",
        ),
    ] {
        for args in [&["check"][..], &["process", "--all"][..]] {
            let o = with_config(dir.path(), &config(&url, line), args);
            o.expect(2, &format!("{line} / {args:?}"));
            assert!(
                o.stderr.contains(want),
                "{line} / {args:?}: want {want:?}: {}",
                o.describe()
            );
        }
    }
    assert!(
        !dir.path().join("tw.db").exists(),
        "a bad config opens nothing"
    );
}

#[test]
fn exit_percentages_out_of_range_are_refused() {
    // The expert settings that bound take profits and stops: 0..=99, in percent. Catches:
    // a key read without its range (a negative floor would pull exits toward the price; a
    // stop 100 % away is no price).
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for key in [
        "min_take_profit_percent",
        "min_tp_sl_percent",
        "min_stop_loss_percent",
    ] {
        for (value, got) in [
            ("-1", "-1"),
            (
                "\"-0.0000000000000000000000000001\"",
                "-0.0000000000000000000000000001",
            ),
            ("100", "100"),
            ("1e20", "100000000000000000000"),
        ] {
            let text = config(&url, "").replace(
                "enter_market_ruleset = \"r\"",
                &format!("enter_market_ruleset = \"r\"\n{key} = {value}"),
            );
            for args in [&["check"][..], &["process", "--all"][..]] {
                let o = with_config(dir.path(), &text, args);
                o.expect(2, &format!("{key} = {value} / {args:?}"));
                let want =
                    format!("experts[0].{key}: must be at least 0 and at most 99, got {got}");
                assert!(
                    o.stderr.contains(&want),
                    "{key} = {value}: want {want:?}: {}",
                    o.describe()
                );
            }
        }
    }
    assert!(
        !dir.path().join("tw.db").exists(),
        "a bad config opens nothing"
    );
}

#[test]
fn lookback_days_on_the_command_line_has_the_same_range() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for days in ["4294967295", "3651", "0"] {
        let o = with_config(
            dir.path(),
            &config(&url, ""),
            &["process", "--all", "--lookback-days", days],
        );
        o.expect(2, days);
        assert!(
            o.stderr.contains("--lookback-days") && o.stderr.contains("1..=3650"),
            "{days}: {}",
            o.describe()
        );
    }
    let o = with_config(
        dir.path(),
        &config(&url, ""),
        &["process", "--all", "--lookback-days", "3650"],
    );
    o.expect(0, "3650 days");
}

#[test]
fn ids_on_the_command_line_are_positive() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for args in [
        &["process", "--expert", "0"][..],
        &["transactions", "--expert", "0"][..],
        &["outcomes", "--recommendation", "0"][..],
    ] {
        let o = with_config(dir.path(), &config(&url, ""), args);
        o.expect(2, &format!("{args:?}"));
        assert!(o.stderr.contains("1.."), "{args:?}: {}", o.describe());
    }
}

/// Every numeric key at its largest (`max = true`) or smallest accepted value; two experts,
/// ids 1 and the largest, on one account.
fn limits_config(url: &str, max: bool) -> String {
    let pick = |lo: &str, hi: &str| if max { hi.to_string() } else { lo.to_string() };
    let tiny = "\"0.0000000000000000000000000001\"";
    let (op_lo, op_hi) = if max { (">=", "<=") } else { ("<=", ">=") };
    let percent = pick(tiny, "100");
    let exit_percent = pick("0", "99");
    format!(
        r#"[database]
url = "{url}"
connect_timeout_seconds = {connect}

[processing]
lock_timeout_ms = {lock}
lookback_days = {lookback}
lease_seconds = {lease}
max_clock_skew_seconds = {skew}
max_intent_age_seconds = {age}

[[accounts]]
name = "paper"
broker = "paper"
cash = {cash}
minimum_equity_threshold_percent = {threshold}

[[experts]]
id = 1
account = "paper"
virtual_equity_percent = {percent}
max_virtual_equity_per_instrument_percent = {percent}
min_take_profit_percent = {exit_percent}
min_tp_sl_percent = {exit_percent}
min_stop_loss_percent = {exit_percent}
allow_automated_trade_opening = true
enter_market_ruleset = "limits"

[[experts]]
id = 9223372036854775807
account = "paper"
virtual_equity_percent = {percent}
max_virtual_equity_per_instrument_percent = {percent}
min_take_profit_percent = {exit_percent}
min_tp_sl_percent = {exit_percent}
min_stop_loss_percent = {exit_percent}
allow_automated_trade_opening = true
enter_market_ruleset = "limits"

[[rulesets]]
name = "limits"
[[rulesets.rules]]
name = "low-limits"
continue_processing = true
triggers = [
  {{ event = "confidence", op = "{op_lo}", value = 0 }},
  {{ event = "expected_profit_target_percent", op = "{op_lo}", value = -10000 }},
  {{ event = "percent_to_new_target", op = "{op_lo}", value = -1000000 }},
]
actions = [{{ action = "buy" }}]
[[rulesets.rules]]
name = "high-limits"
triggers = [
  {{ event = "confidence", op = "{op_hi}", value = 100 }},
  {{ event = "expected_profit_target_percent", op = "{op_hi}", value = 10000 }},
  {{ event = "percent_to_new_target", op = "{op_hi}", value = 1000000 }},
]
actions = [{{ action = "buy" }}]
"#,
        connect = pick("1", "300"),
        lock = pick("0", "600000"),
        lookback = pick("1", "3650"),
        lease = pick("1", "86400"),
        skew = pick("0", "86400"),
        age = pick("1", "604800"),
        cash = pick("0", "1000000000000000"),
        threshold = pick("0", "100"),
    )
}

/// Recommendations of both experts, at the extremes a recommendation may carry.
fn limits_recommendations() -> String {
    let mut s = String::new();
    for id in ["1", "9223372036854775807"] {
        for (symbol, confidence, profit, price) in [
            ("AAA", "100", "10000", "0.01"),
            ("BBB", "0", "-10000", "1000000000"),
            ("CCC", "80", "10", "100"),
        ] {
            s.push_str(&format!(
                r#"{{"expert_id":{id},"symbol":"{symbol}","action":"BUY","confidence":{confidence},"expected_profit_percent":{profit},"price_at_date":{price},"risk_level":"LOW","time_horizon":"SHORT_TERM"}}"#
            ));
            s.push('\n');
        }
    }
    s
}

async fn every_numeric_key_at_its_limits_runs(kind: DbKind) {
    for max in [true, false] {
        let db = TestDb::new(kind).await;
        let dir = tempfile::tempdir().unwrap();
        let text = limits_config(&db.url, max);
        let what = if max { "maximum" } else { "minimum" };
        with_config(dir.path(), &text, &["check"]).expect(0, &format!("{what}: check"));
        std::fs::write(dir.path().join("recs.jsonl"), limits_recommendations()).unwrap();
        with_config(dir.path(), &text, &["import", "recs.jsonl"])
            .expect(0, &format!("{what}: import"));
        let o = with_config(dir.path(), &text, &["process", "--all"]);
        o.expect(0, &format!("{what}: first process"));
        let reports: Value = serde_json::from_str(&o.stdout).expect("reports");
        let reports = reports.as_array().expect("an array");
        assert_eq!(reports.len(), 2, "{}", o.describe());
        assert!(
            reports.iter().all(|r| r["status"] == "processed"),
            "{what}: {}",
            o.describe()
        );
        let ordered: u64 = reports
            .iter()
            .map(|r| r["counts"]["ordered"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(ordered > 0, max, "{what}: orders placed: {}", o.describe());
        let days = if max { "3650" } else { "1" };
        for args in [
            &["process", "--all", "--lookback-days", days][..],
            &["reconcile"][..],
            &["transactions", "--json"][..],
        ] {
            let o = with_config(dir.path(), &text, args);
            o.expect(0, &format!("{what}: {args:?}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_every_numeric_key_at_its_limits_runs() {
    every_numeric_key_at_its_limits_runs(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_every_numeric_key_at_its_limits_runs() {
    every_numeric_key_at_its_limits_runs(DbKind::Postgres).await;
}

#[test]
fn check_shows_the_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["check"]);
    o.expect(0, "check");
    for want in [
        "(connect_timeout_seconds = 5)",
        "max_clock_skew_seconds = 300",
        "max_intent_age_seconds = 300",
        "job_timeout_seconds = 3600",
    ] {
        assert!(o.stdout.contains(want), "{want}: {}", o.describe());
    }
}
