//! The Prometheus series the engine and brokers record (issue 11 item 6), through a real
//! Prometheus recorder, the engine, the real store and the paper broker, on SQLite and
//! PostgreSQL: the rendered text parses, and the counters move with the right labels.
//!
//! The recorder is installed for the test's thread only (`#[tokio::test]` runs on one
//! thread), so the SQLite and PostgreSQL tests of this binary count apart.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rust_decimal_macros::dec;
use tradewarden_domain::rules::{ActionSpec, Rule, RuleAction, Ruleset, Trigger, TriggerSpec};
use tradewarden_domain::{Action, UseCase};
use tradewarden_engine::{RunStatus, RunTrigger};

/// One sample of the exposition text: its name, its labels and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format: `# HELP`/`# TYPE` comments, blank lines, and samples
/// `name{label="value",...} number`. Panics naming the line that is none of them.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| sample(line).unwrap_or_else(|| panic!("not a Prometheus sample: {line:?}")))
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    name_ok.then(|| Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y"` (values here never hold quotes or commas).
fn labels(body: &str) -> Option<BTreeMap<String, String>> {
    body.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The value of the sample `name` with exactly `labels`; 0 when absent.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

/// The rendered metrics, parsed.
fn scrape(handle: &PrometheusHandle) -> Vec<Sample> {
    parse(&handle.render())
}

/// `rating_downgraded → close`: nothing to do for a position whose rating stays.
fn close_on_downgrade() -> Ruleset {
    Ruleset {
        name: "close-on-downgrade".into(),
        rules: vec![Rule {
            name: "downgraded".into(),
            continue_processing: false,
            triggers: vec![
                Trigger::from_spec(&TriggerSpec {
                    event: "rating_downgraded".into(),
                    op: None,
                    value: None,
                })
                .unwrap(),
            ],
            actions: vec![
                RuleAction::from_spec(&ActionSpec {
                    action: "close".into(),
                    ..ActionSpec::default()
                })
                .unwrap(),
            ],
        }],
    }
}

async fn runs_move_the_counters(kind: DbKind) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // Before the manager is built: the locks and the broker wrapper register their handles
    // with whatever recorder is current then.
    let _local = metrics::set_default_local_recorder(&recorder);

    let db = TestDb::new(kind).await;
    let mut e = expert(1);
    e.allow_automated_trade_modification = true;
    e.open_positions_ruleset = Some("close-on-downgrade".into());
    let mut s = settings(vec![e], dec!(100000));
    s.rulesets
        .insert("close-on-downgrade".into(), close_on_downgrade());
    s.lock_timeout = Duration::from_millis(50);
    let h = harness(&db, s, plain).await;

    // Run 1: AAPL ordered (filled at once by the paper broker), MSFT below the confidence.
    h.manager
        .import(&[
            rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)),
            rec(1, "MSFT", Action::Buy, dec!(10), dec!(10), dec!(100)),
        ])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!((r.counts.ordered, r.counts.rules_not_met), (1, 1), "{r:?}");
    // Run 2: AAPL again, refused by the duplicate check.
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(90), dec!(10), dec!(100))])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.duplicate_position, 1, "{r:?}");
    // An open_positions run: the AAPL position's rating did not drop; MSFT has none.
    let r = h
        .manager
        .process_open_positions(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed, "{r:?}");
    // A run while another holds the lock skips.
    let held = h.manager.locks().acquire(1, UseCase::EnterMarket).await;
    let r = h
        .manager
        .process_enter_market(1, None, RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::SkippedLocked);
    drop(held);

    let m = scrape(&handle);
    let em = ("use_case", "enter_market");
    let op = ("use_case", "open_positions");
    // Catches: lock attempts not counted, or counted without their outcome. Three
    // enter_market acquisitions (two runs and the holder above), one open_positions.
    let locks = "tradewarden_lock_acquisitions_total";
    assert_eq!(value(&m, locks, &[em, ("outcome", "acquired")]), 3.0);
    assert_eq!(value(&m, locks, &[em, ("outcome", "contended")]), 1.0);
    assert_eq!(value(&m, locks, &[op, ("outcome", "acquired")]), 1.0);
    // Catches: a hold time recorded on only some release paths (the runs give their lease
    // back through `release`, the holder above by being dropped), or a wait not recorded.
    assert_eq!(value(&m, "tradewarden_lock_hold_seconds_count", &[em]), 3.0);
    assert_eq!(value(&m, "tradewarden_lock_hold_seconds_count", &[op]), 1.0);
    assert_eq!(value(&m, "tradewarden_lock_wait_seconds_count", &[em]), 4.0);
    // Catches: outcomes counted without their use case, or open_positions' not counted.
    let outcomes = "tradewarden_recommendation_outcomes_total";
    assert_eq!(value(&m, outcomes, &[em, ("outcome", "ordered")]), 1.0);
    // MSFT is considered again by run 2 (still in the lookback, no position).
    assert_eq!(
        value(&m, outcomes, &[em, ("outcome", "rules_not_met")]),
        2.0
    );
    assert_eq!(
        value(&m, outcomes, &[em, ("outcome", "duplicate_position")]),
        1.0
    );
    assert_eq!(value(&m, outcomes, &[op, ("outcome", "no_action")]), 1.0);
    assert_eq!(value(&m, outcomes, &[op, ("outcome", "no_position")]), 1.0);
    // Catches: the duplicate check not counted under its `by`.
    assert_eq!(
        value(
            &m,
            "tradewarden_duplicate_positions_prevented_total",
            &[("by", "check")]
        ),
        1.0
    );
    // Catches: orders counted without the broker's kind.
    assert_eq!(
        value(
            &m,
            "tradewarden_orders_submitted_total",
            &[("broker", "paper"), ("result", "accepted")]
        ),
        1.0
    );
    // Catches: broker calls not timed, or timed without the broker's kind and operation.
    let broker_calls: Vec<&Sample> = m
        .iter()
        .filter(|s| s.name == "tradewarden_broker_request_seconds_count")
        .collect();
    assert!(
        broker_calls
            .iter()
            .any(
                |s| s.labels.get("operation").map(String::as_str) == Some("submit_batch")
                    && s.value >= 1.0
            ),
        "{broker_calls:?}"
    );
    assert!(
        broker_calls
            .iter()
            .all(|s| s.labels.get("broker").map(String::as_str) == Some("paper")),
        "{broker_calls:?}"
    );
    // Catches: runs not counted, or counted without their status and trigger. Two
    // processed enter_market runs and the skipped one; one processed open_positions run.
    let runs = "tradewarden_runs_total";
    let cli = ("trigger", "cli");
    assert_eq!(value(&m, runs, &[em, ("status", "processed"), cli]), 2.0);
    assert_eq!(
        value(&m, runs, &[em, ("status", "skipped_locked"), cli]),
        1.0
    );
    assert_eq!(value(&m, runs, &[op, ("status", "processed"), cli]), 1.0);
    // Catches: an unbounded label (an id or a symbol) on any series.
    for s in &m {
        for v in s.labels.values() {
            assert!(
                !v.contains("AAPL") && !v.contains("MSFT") && !v.starts_with("tw-"),
                "{s:?}"
            );
        }
    }
}

both!(runs_move_the_counters);
