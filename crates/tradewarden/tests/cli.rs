//! End-to-end tests through the real `tradewarden` binary: each test works in a temporary
//! directory (its own `./tradewarden.toml` and SQLite file) and checks the command-line
//! contract of issue 2 — exit codes, stdout/stderr, JSON shapes, config precedence, import,
//! prices, the `run` batch job and the log format.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tradewarden");

/// The result of one command.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn from(o: Output) -> Out {
        Out {
            code: o
                .status
                .code()
                .expect("the binary exited, not killed by a signal"),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        }
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit 0 and returns stdout parsed as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {}", self.describe());
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }
}

/// A temporary working directory the binary runs in.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `sqlite://<tempdir>/tw.db`
    fn db_url(&self) -> String {
        format!("sqlite://{}", self.path().join("tw.db").display())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// The binary, run in the sandbox, with `$TRADEWARDEN_CONFIG` removed.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env_remove("TRADEWARDEN_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        Out::from(self.command(args).output().expect("run the binary"))
    }

    fn run_env(&self, args: &[&str], key: &str, value: &Path) -> Out {
        let mut c = self.command(args);
        c.env(key, value);
        Out::from(c.output().expect("run the binary"))
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Out {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn the binary");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .expect("write stdin");
        Out::from(child.wait_with_output().expect("wait for the binary"))
    }

    /// Writes `./tradewarden.toml` with the given experts on one paper account.
    fn config(&self, cash: u64, experts: &[Expert]) -> PathBuf {
        self.write(
            "tradewarden.toml",
            &config_text(&self.db_url(), cash, experts),
        )
    }
}

/// One `[[experts]]` entry of a generated configuration.
struct Expert {
    id: i64,
    name: &'static str,
    virtual_equity_percent: u32,
}

fn expert(id: i64, virtual_equity_percent: u32) -> Expert {
    Expert {
        id,
        name: "expert",
        virtual_equity_percent,
    }
}

fn config_text(db_url: &str, cash: u64, experts: &[Expert]) -> String {
    let mut s = format!(
        r#"[database]
url = "{db_url}"

[processing]
lock_timeout_ms = 500
lookback_days = 1

[[accounts]]
name = "paper"
broker = "paper"
cash = {cash}
minimum_equity_threshold_percent = 5
"#
    );
    for e in experts {
        s.push_str(&format!(
            r#"
[[experts]]
id = {}
name = "{}"
account = "paper"
enabled = true
virtual_equity_percent = {}
enable_buy = true
enable_sell = false
allow_automated_trade_opening = true
max_virtual_equity_per_instrument_percent = 10
enter_market_ruleset = "confident-buy"
"#,
            e.id, e.name, e.virtual_equity_percent
        ));
    }
    s.push_str(
        r#"
[[rulesets]]
name = "confident-buy"

[[rulesets.rules]]
name = "bullish-and-confident"
continue_processing = false
triggers = [{ event = "bullish" }, { event = "confidence", op = ">=", value = 60 }]
actions = [{ action = "buy" }]
"#,
    );
    s
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A time the generator accepts (`%Y-%m-%dT%H:%M:%SZ`).
fn gen_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs `tradewarden demo gen` with `args` (the flags of the original's Python generator)
/// and returns its JSON Lines.
fn generate(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["demo", "gen"])
        .args(args)
        .output()
        .expect("tradewarden demo gen runs");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One JSON Lines recommendation.
fn rec_line(
    expert_id: i64,
    symbol: &str,
    confidence: u32,
    price: &str,
    at: Option<&str>,
) -> String {
    let mut v = serde_json::json!({
        "expert_id": expert_id,
        "symbol": symbol,
        "action": "BUY",
        "confidence": confidence,
        "expected_profit_percent": 10,
        "price_at_date": price,
        "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM",
    });
    if let Some(at) = at {
        v["created_at"] = Value::String(at.to_string());
    }
    v.to_string()
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {v}"))
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("decimal as string: {v}")),
    )
    .unwrap_or_else(|e| panic!("{v} is not a decimal: {e}"))
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("counts.{key} in {report}"))
}

/// Asserts no two WAITING/OPENED transactions share (expert_id, symbol); returns the active
/// (expert_id, symbol) pairs.
fn assert_one_active_per_symbol(transactions: &Value) -> HashSet<(i64, String)> {
    let mut active = HashSet::new();
    for t in array(transactions) {
        let st = t["status"].as_str().unwrap();
        if st == "WAITING" || st == "OPENED" {
            let key = (
                t["expert_id"].as_i64().unwrap(),
                t["symbol"].as_str().unwrap().to_string(),
            );
            assert!(
                active.insert(key.clone()),
                "two active transactions for {key:?}"
            );
        }
    }
    active
}

// ---------------------------------------------------------------------------------------------
// 1. The issue's end-to-end test.
// ---------------------------------------------------------------------------------------------

#[test]
fn run_then_process_again_orders_nothing_and_every_candidate_is_a_duplicate() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 33), expert(2, 33), expert(3, 33)]);
    let start = gen_time(Utc::now() - Duration::minutes(10));
    let workload = generate(&["--experts", "3", "--symbols", "30", "--start", &start]);
    assert_eq!(workload.lines().count(), 90);
    sb.write("recs.jsonl", &workload);

    let first = sb.run(&["run", "recs.jsonl", "--json"]).json();
    let first = array(&first);
    assert_eq!(first.len(), 3, "one report per expert");
    let mut ordered: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in first {
        assert_eq!(r["status"], "processed", "{r}");
        assert!(count(r, "considered") > 0, "{r}");
        let expert_id = r["expert_id"].as_i64().unwrap();
        let orders = array(&r["orders"]);
        assert_eq!(orders.len() as u64, count(r, "ordered"), "{r}");
        for o in orders {
            assert_eq!(o["status"], "filled", "a paper market order fills: {o}");
            ordered
                .entry(expert_id)
                .or_default()
                .push(o["recommendation_id"].as_i64().unwrap());
        }
    }
    let total: usize = ordered.values().map(Vec::len).sum();
    assert!(total > 0, "the first run must order something: {first:?}");

    let second = sb.run(&["process", "--all"]).json();
    let second = array(&second);
    assert_eq!(second.len(), 3);
    for r in second {
        assert_eq!(r["status"], "processed", "{r}");
        assert_eq!(count(r, "ordered"), 0, "no new orders: {r}");
        assert!(array(&r["orders"]).is_empty(), "no new orders: {r}");
        let expert_id = r["expert_id"].as_i64().unwrap();
        let n = ordered.get(&expert_id).map_or(0, Vec::len) as u64;
        assert_eq!(
            count(r, "duplicate_position"),
            n,
            "every candidate ordered before is a duplicate now: {r}"
        );
    }

    for rec_id in ordered.values().flatten() {
        let id = rec_id.to_string();
        let outcomes = sb
            .run(&["outcomes", "--json", "--recommendation", &id])
            .json();
        let kinds: Vec<&str> = array(&outcomes)
            .iter()
            .map(|o| {
                assert_eq!(o["recommendation_id"].as_i64(), Some(*rec_id));
                o["outcome"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            kinds,
            ["ordered", "duplicate_position"],
            "recommendation {rec_id}: first run ordered, second run refused"
        );
    }

    let txns = sb.run(&["transactions", "--json"]).json();
    let active = assert_one_active_per_symbol(&txns);
    assert_eq!(active.len(), total, "one active position per order");
}

// ---------------------------------------------------------------------------------------------
// 2. JSON shapes.
// ---------------------------------------------------------------------------------------------

const ORDER_KEYS: &[&str] = &[
    "id",
    "transaction_id",
    "expert_id",
    "symbol",
    "side",
    "role",
    "order_type",
    "quantity",
    "filled_quantity",
    "limit_price",
    "stop_price",
    "avg_fill_price",
    "status",
    "client_order_id",
    "broker_order_id",
    "parent_order_id",
    "trigger_status",
    "recommendation_id",
    "created_at",
];
const TRANSACTION_KEYS: &[&str] = &[
    "id",
    "expert_id",
    "symbol",
    "side",
    "quantity",
    "status",
    "open_price",
    "close_price",
    "take_profit",
    "stop_loss",
    "opened_at",
    "closed_at",
    "close_reason",
    "created_at",
];
const OUTCOME_KEYS: &[&str] = &[
    "recommendation_id",
    "expert_id",
    "symbol",
    "use_case",
    "outcome",
    "detail",
    "order_id",
    "decided_at",
];
/// Deliberate extensions of the documented ORDER and TRANSACTION shapes: `Order::account` and
/// `Transaction::account` in crates/domain ("extension of the documented shape").
const EXTENSIONS: &[&str] = &["account"];

const ORDER_STATUSES: &[&str] = &[
    "pending",
    "waiting_trigger",
    "accepted",
    "partially_filled",
    "filled",
    "canceled",
    "rejected",
    "expired",
    "error",
];
const OUTCOME_KINDS: &[&str] = &[
    "ordered",
    "rules_not_met",
    "not_permitted",
    "duplicate_position",
    "insufficient_equity",
    "unfunded",
    "failed",
];

fn assert_keys(what: &str, v: &Value, documented: &[&str], extensions: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected an object, got {v}"));
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    for k in documented {
        assert!(keys.contains(k), "{what}: missing key {k:?} in {v}");
    }
    for k in &keys {
        assert!(
            documented.contains(k) || extensions.contains(k),
            "{what}: undocumented key {k:?} in {v}"
        );
    }
}

fn assert_decimal(what: &str, v: &Value, key: &str, nullable: bool) {
    match &v[key] {
        Value::Null if nullable => {}
        Value::String(s) => {
            Decimal::from_str(s)
                .unwrap_or_else(|e| panic!("{what}.{key}: {s:?} is not a decimal: {e}"));
        }
        other => panic!("{what}.{key}: expected a decimal string, got {other}"),
    }
}

fn assert_time(what: &str, v: &Value, key: &str, nullable: bool) {
    match &v[key] {
        Value::Null if nullable => {}
        Value::String(s) => {
            let t = DateTime::parse_from_rfc3339(s)
                .unwrap_or_else(|e| panic!("{what}.{key}: {s:?} is not RFC 3339: {e}"));
            assert_eq!(
                t.offset().local_minus_utc(),
                0,
                "{what}.{key}: {s:?} is not UTC"
            );
        }
        other => panic!("{what}.{key}: expected an RFC 3339 string, got {other}"),
    }
}

fn assert_one_of(what: &str, v: &Value, key: &str, allowed: &[&str]) {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{what}.{key}: expected a string in {v}"));
    assert!(
        allowed.contains(&s),
        "{what}.{key}: {s:?} not one of {allowed:?}"
    );
}

fn assert_int(what: &str, v: &Value, key: &str, nullable: bool) {
    match &v[key] {
        Value::Null if nullable => {}
        Value::Number(n) if n.is_i64() => {}
        other => panic!("{what}.{key}: expected an integer, got {other}"),
    }
}

fn assert_order(v: &Value) {
    let w = "ORDER";
    assert_keys(w, v, ORDER_KEYS, EXTENSIONS);
    for k in ["id", "transaction_id", "expert_id"] {
        assert_int(w, v, k, false);
    }
    for k in ["parent_order_id", "recommendation_id"] {
        assert_int(w, v, k, true);
    }
    assert_one_of(w, v, "side", &["BUY", "SELL"]);
    assert_one_of(
        w,
        v,
        "role",
        &["entry", "take_profit", "stop_loss", "close"],
    );
    assert_one_of(w, v, "order_type", &["market", "limit", "stop"]);
    assert_one_of(w, v, "status", ORDER_STATUSES);
    if !v["trigger_status"].is_null() {
        assert_one_of(w, v, "trigger_status", ORDER_STATUSES);
    }
    for k in ["quantity", "filled_quantity"] {
        assert_decimal(w, v, k, false);
    }
    for k in ["limit_price", "stop_price", "avg_fill_price"] {
        assert_decimal(w, v, k, true);
    }
    assert!(v["client_order_id"].is_string(), "{w}.client_order_id: {v}");
    assert!(
        v["broker_order_id"].is_string() || v["broker_order_id"].is_null(),
        "{w}.broker_order_id: {v}"
    );
    assert_time(w, v, "created_at", false);
}

fn assert_transaction(v: &Value) {
    let w = "TRANSACTION";
    assert_keys(w, v, TRANSACTION_KEYS, EXTENSIONS);
    assert_int(w, v, "id", false);
    assert_int(w, v, "expert_id", false);
    assert_one_of(w, v, "side", &["BUY", "SELL"]);
    assert_one_of(
        w,
        v,
        "status",
        &["WAITING", "OPENED", "CLOSING", "CLOSED", "FAILED"],
    );
    assert_decimal(w, v, "quantity", false);
    for k in ["open_price", "close_price", "take_profit", "stop_loss"] {
        assert_decimal(w, v, k, true);
    }
    for k in ["opened_at", "closed_at"] {
        assert_time(w, v, k, true);
    }
    assert_time(w, v, "created_at", false);
    assert!(
        v["close_reason"].is_string() || v["close_reason"].is_null(),
        "{w}.close_reason: {v}"
    );
}

fn assert_outcome(v: &Value) {
    let w = "OUTCOME";
    assert_keys(w, v, OUTCOME_KEYS, &[]);
    assert_int(w, v, "recommendation_id", false);
    assert_int(w, v, "expert_id", false);
    assert_int(w, v, "order_id", true);
    assert_one_of(w, v, "use_case", &["enter_market"]);
    assert_one_of(w, v, "outcome", OUTCOME_KINDS);
    assert!(v["symbol"].is_string() && v["detail"].is_string(), "{v}");
    assert_time(w, v, "decided_at", false);
}

#[test]
fn json_shapes_are_the_documented_ones() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    let lines = [
        rec_line(1, "AAPL", 80, "100", None),
        rec_line(1, "MSFT", 70, "250.5", None),
        rec_line(1, "GOOGL", 40, "150", None), // not confident: rules_not_met
    ]
    .join("\n");
    sb.write("recs.jsonl", &lines);
    let imported = sb.run(&["import", "recs.jsonl"]).json();
    assert_eq!(
        imported,
        serde_json::json!({"imported": 3, "already_present": 0})
    );

    let reports = sb.run(&["process", "--expert", "1"]).json();
    let reports = array(&reports);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_keys(
        "REPORT",
        r,
        &["expert_id", "use_case", "status", "counts", "orders"],
        // Extension (issue 11): the id of the run's record (`tradewarden runs`).
        &["run_id"],
    );
    assert!(r["run_id"].is_i64(), "a recorded run names its record: {r}");
    assert_eq!(r["expert_id"], 1);
    assert_eq!(r["use_case"], "enter_market");
    assert_eq!(r["status"], "processed");
    assert_keys(
        "REPORT.counts",
        &r["counts"],
        &[
            "considered",
            "rules_not_met",
            "not_permitted",
            "duplicate_position",
            "insufficient_equity",
            "unfunded",
            "ordered",
            "failed",
        ],
        &[],
    );
    assert_eq!(count(r, "considered"), 3);
    assert_eq!(count(r, "ordered"), 2);
    assert_eq!(count(r, "rules_not_met"), 1);
    let report_orders = array(&r["orders"]);
    assert_eq!(report_orders.len(), 2);
    report_orders.iter().for_each(assert_order);

    // Each entry and its safeguard stop leg, fired by the refresh that ends `process` once
    // the entry filled.
    let orders = sb.run(&["orders", "--json"]).json();
    assert_eq!(array(&orders).len(), 4);
    array(&orders).iter().for_each(assert_order);
    let (entries, legs): (Vec<&Value>, Vec<&Value>) =
        array(&orders).iter().partition(|o| o["role"] == "entry");
    assert_eq!(
        entries,
        report_orders.iter().collect::<Vec<_>>(),
        "`orders --json` shows what the report showed"
    );
    for leg in legs {
        assert_eq!(
            (&leg["role"], &leg["status"], &leg["order_type"]),
            (&"stop_loss".into(), &"accepted".into(), &"stop".into()),
            "{leg}"
        );
    }

    let txns = sb.run(&["transactions", "--json"]).json();
    assert_eq!(array(&txns).len(), 2);
    array(&txns).iter().for_each(assert_transaction);
    for t in array(&txns) {
        assert_eq!(
            t["status"], "OPENED",
            "a filled entry opens its transaction"
        );
        assert_time("TRANSACTION", t, "opened_at", false);
        assert_decimal("TRANSACTION", t, "open_price", false);
    }

    let outcomes = sb.run(&["outcomes", "--json"]).json();
    assert_eq!(array(&outcomes).len(), 3);
    array(&outcomes).iter().for_each(assert_outcome);
    let kinds: BTreeSet<&str> = array(&outcomes)
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["ordered", "rules_not_met"]));
    for o in array(&outcomes) {
        assert_eq!(
            o["order_id"].is_null(),
            o["outcome"] != "ordered",
            "only an ordered outcome names its order: {o}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Import: all or nothing, every bad line listed, idempotent, stdin.
// ---------------------------------------------------------------------------------------------

#[test]
fn import_is_all_or_nothing_lists_every_bad_line_and_is_idempotent() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    let t = |m: i64| rfc3339(Utc::now() - Duration::minutes(m));
    let (t1, t2, t3) = (t(30), t(20), t(10));
    let good = [
        rec_line(1, "AAPL", 80, "100", Some(&t1)),
        rec_line(1, "MSFT", 70, "200", Some(&t2)),
        rec_line(1, "NVDA", 65, "50", Some(&t3)),
    ];
    // (line number, field) of each bad line in the mixed file.
    let mixed = [
        good[0].clone(),                                                    // 1
        "{not json".to_string(),                                            // 2 json
        good[1].clone(),                                                    // 3
        rec_line(1, "TSLA", 70, "10", None).replace("\"BUY\"", "\"BUYY\""), // 4 action
        rec_line(1, "AMD", 150, "10", None),                                // 5 confidence
        rec_line(1, "INTC", 70, "0", None),                                 // 6 price_at_date
        rec_line(1, "", 70, "10", None),                                    // 7 symbol
        rec_line(1, "IBM", 70, "10", Some("yesterday")),                    // 8 created_at
        rec_line(99, "ORCL", 70, "10", None),                               // 9 expert_id
        String::new(),                                                      // 10 blank: ignored
        good[2].clone(),                                                    // 11
    ]
    .join("\n");
    let bad = [
        (2, "json"),
        (4, "action"),
        (5, "confidence"),
        (6, "price_at_date"),
        (7, "symbol"),
        (8, "created_at"),
        (9, "expert_id"),
    ];
    sb.write("mixed.jsonl", &mixed);
    let out = sb.run(&["import", "mixed.jsonl"]);
    assert_eq!(out.code, 2, "a bad line is bad input: {}", out.describe());
    assert!(
        out.stdout.trim().is_empty(),
        "nothing on stdout: {}",
        out.describe()
    );
    for (n, field) in bad {
        let prefix = format!("line {n}: {field}: ");
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("stderr lacks {prefix:?}: {}", out.describe()));
        assert!(line.len() > prefix.len(), "{line:?} names no problem");
    }
    for n in [1, 3, 10, 11] {
        assert!(
            !out.stderr.contains(&format!("line {n}:")),
            "good line {n} reported: {}",
            out.describe()
        );
    }

    // Nothing was stored: the good lines alone are all new.
    sb.write("good.jsonl", &good.join("\n"));
    let first = sb.run(&["import", "good.jsonl"]).json();
    assert_eq!(
        first,
        serde_json::json!({"imported": 3, "already_present": 0})
    );
    // Re-import stores nothing.
    let again = sb.run(&["import", "good.jsonl"]).json();
    assert_eq!(
        again,
        serde_json::json!({"imported": 0, "already_present": 3})
    );

    // The same identity with different content is an error for that line, and stores nothing.
    let changed = [
        rec_line(1, "AMZN", 90, "10", Some(&t1)),
        good[1].replace("\"confidence\":70", "\"confidence\":71"),
    ]
    .join("\n");
    assert_ne!(changed.lines().nth(1), Some(good[1].as_str()));
    let out = sb.run_stdin(&["import", "-"], &changed);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("line 2: recommendation: "),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("line 1:"), "{}", out.describe());

    // `import -` reads stdin; the AMZN line was not stored by the failed import.
    let amzn = rec_line(1, "AMZN", 90, "10", Some(&t1));
    let stdin = sb.run_stdin(&["import", "-"], &format!("{amzn}\n{}\n", good[0]));
    assert_eq!(
        stdin.json(),
        serde_json::json!({"imported": 1, "already_present": 1})
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Exit codes, configuration errors, init, check, config precedence.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_expert_is_exit_2() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    let out = sb.run(&["process", "--expert", "99"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("99"),
        "names the expert: {}",
        out.describe()
    );
    assert!(out.stdout.trim().is_empty(), "{}", out.describe());
    // The known one is fine.
    let ok = sb.run(&["process", "--expert", "1"]).json();
    assert_eq!(array(&ok)[0]["status"], "processed");
}

#[test]
fn a_status_filter_that_can_never_match_is_exit_2() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    for (cmd, bad, good) in [
        ("transactions", "OPEN", "opened"),
        ("orders", "done", "FILLED"),
        ("outcomes", "skipped", "ordered"),
    ] {
        let out = sb.run(&[cmd, "--status", bad, "--json"]);
        assert_eq!(out.code, 2, "{cmd}: {}", out.describe());
        assert!(out.stderr.contains("--status"), "{cmd}: {}", out.describe());
        // Any case of a known status is accepted.
        let ok = sb.run(&[cmd, "--status", good, "--json"]);
        assert_eq!(ok.code, 0, "{cmd}: {}", ok.describe());
    }
}

#[test]
fn a_bad_config_reports_every_problem_with_its_key_path() {
    let sb = Sandbox::new();
    let text = format!(
        r#"
[database]
url = "{}"

[[accounts]]
name = "paper"
broker = "paper"
cash = "lots"

[[experts]]
id = 1
account = "papr"
virtual_equity_percent = 150
enter_market_ruleset = "nope"
colour = "blue"

[[rulesets]]
name = "r"
[[rulesets.rules]]
name = "x"
triggers = [{{ event = "bulish" }}]
actions = [{{ action = "clos" }}]
"#,
        sb.db_url()
    );
    sb.write("tradewarden.toml", &text);
    let want = [
        "accounts[0].cash: not a decimal number",
        "experts[0].account: unknown account \"papr\"",
        "experts[0].virtual_equity_percent: must be greater than 0 and at most 100",
        "experts[0].enter_market_ruleset: unknown ruleset \"nope\"",
        "experts[0].colour: unknown key",
        "rulesets[0].rules[0].triggers[0].event: unknown trigger \"bulish\"",
        "rulesets[0].rules[0].actions[0].action: unknown action \"clos\"",
    ];
    for args in [&["check"][..], &["process", "--all"][..]] {
        let out = sb.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.describe());
        for w in want {
            assert!(
                out.stderr.contains(w),
                "{args:?}: stderr lacks {w:?}: {}",
                out.describe()
            );
        }
    }
    assert!(
        !sb.path().join("tw.db").exists(),
        "a bad config touches no database"
    );
}

#[test]
fn init_writes_the_default_and_refuses_to_overwrite_without_force() {
    let sb = Sandbox::new();
    let default = include_str!("../src/default_config.toml");
    let out = sb.run(&["init"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let path = sb.path().join("tradewarden.toml");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), default);

    let edited = format!("{default}\n# my edit\n");
    std::fs::write(&path, &edited).unwrap();
    let out = sb.run(&["init"]);
    assert_eq!(out.code, 2, "refuses to overwrite: {}", out.describe());
    assert!(out.stderr.contains("--force"), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "untouched");

    let out = sb.run(&["init", "--force"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), default);

    // An explicit PATH.
    let out = sb.run(&["init", "other.toml"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(sb.path().join("other.toml")).unwrap(),
        default
    );
    assert_eq!(sb.run(&["init", "other.toml"]).code, 2);

    // `check` on what init wrote prints what it defines.
    let out = sb.run(&["check"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    for w in [
        "configuration: tradewarden.toml (valid)",
        "database: sqlite://tradewarden.db",
        "lock_timeout_ms = 500",
        "lookback_days = 1",
        "accounts: 1",
        "paper (broker paper, cash 100000",
        "experts: 1",
        "1 \"demo\" on paper",
        "rulesets: 1",
        "confident-buy: 1 rule(s): bullish-and-confident",
    ] {
        assert!(
            out.stdout.contains(w),
            "check lacks {w:?}: {}",
            out.describe()
        );
    }
    assert!(
        !sb.path().join("tradewarden.db").exists(),
        "check opens no database"
    );
}

#[test]
fn config_flag_beats_env_beats_local_file_beats_builtin_default() {
    let sb = Sandbox::new();
    let named = |name: &'static str| {
        config_text(
            &sb.db_url(),
            100_000,
            &[Expert {
                id: 1,
                name,
                virtual_equity_percent: 100,
            }],
        )
    };
    let flag = sb.write("flag.toml", &named("from-flag"));
    let env = sb.write("env.toml", &named("from-env"));
    let local = sb.write("tradewarden.toml", &named("from-local"));
    let flag_s = flag.to_str().unwrap();

    let name_in = |out: &Out| -> String {
        assert_eq!(out.code, 0, "{}", out.describe());
        let line = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("1 \""))
            .unwrap_or_else(|| panic!("no expert line: {}", out.describe()));
        line.split('"').nth(1).unwrap().to_string()
    };

    let out = sb.run_env(&["--config", flag_s, "check"], "TRADEWARDEN_CONFIG", &env);
    assert_eq!(name_in(&out), "from-flag");
    let out = sb.run_env(&["check"], "TRADEWARDEN_CONFIG", &env);
    assert_eq!(name_in(&out), "from-env");
    let out = sb.run(&["check"]);
    assert_eq!(name_in(&out), "from-local");
    std::fs::remove_file(&local).unwrap();
    let out = sb.run(&["check"]);
    assert_eq!(name_in(&out), "demo");
    assert!(
        out.stdout.contains("built-in default"),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Prices: set, import (header or not, time column or not), newest by time wins.
// ---------------------------------------------------------------------------------------------

#[test]
fn prices_say_how_many_stored_quotes_they_changed() {
    // Catches: `prices set` / `prices import` claiming every quote was stored when a newer
    // one already was (they used to print only the accounts and the rows).
    let sb = Sandbox::new();
    let second = "\n[[accounts]]\nname = \"second\"\nbroker = \"paper\"\ncash = 1000\n";
    sb.write(
        "tradewarden.toml",
        &(config_text(&sb.db_url(), 100_000, &[expert(1, 100)]) + second),
    );
    // Expert 1's recommendation quotes XYZ for its account `paper`, two minutes ahead.
    let ahead = rfc3339(Utc::now() + Duration::minutes(2));
    sb.write("recs.jsonl", &rec_line(1, "XYZ", 80, "50", Some(&ahead)));
    assert_eq!(sb.run(&["import", "recs.jsonl"]).code, 0);

    let out = sb.run(&["prices", "set", "XYZ", "80"]);
    assert_eq!(
        out.stdout,
        "XYZ 80 quoted for 2 paper account(s) (1 changed; a newer quote is already stored for the others)\n",
        "{}",
        out.describe()
    );
    let out = sb.run(&["prices", "set", "ABC", "10"]);
    assert_eq!(out.stdout, "ABC 10 quoted for 2 paper account(s)\n");

    // XYZ newer than both (2 changed), ABC older than both (0), DEF new to both (2).
    sb.write(
        "p.csv",
        &format!(
            "XYZ,70,{}\nABC,11,{}\nDEF,5\n",
            rfc3339(Utc::now() + Duration::minutes(3)),
            rfc3339(Utc::now() - Duration::hours(1))
        ),
    );
    assert_eq!(
        sb.run(&["prices", "import", "p.csv"]).json(),
        serde_json::json!({"imported": 3, "changed": 4})
    );
}

#[test]
fn quotes_from_prices_set_and_import_size_and_fill_the_order_newest_wins() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    let ago = |m: i64| rfc3339(Utc::now() - Duration::minutes(m));
    // Each recommendation's price_at_date is a quote as of 30 minutes ago.
    let recs = [
        rec_line(1, "XYZ", 80, "50", Some(&ago(30))),
        rec_line(1, "ABC", 80, "40", Some(&ago(30))),
        rec_line(1, "DEF", 80, "30", Some(&ago(30))),
    ]
    .join("\n");
    sb.write("recs.jsonl", &recs);
    assert_eq!(
        sb.run(&["import", "recs.jsonl"]).json(),
        serde_json::json!({"imported": 3, "already_present": 0})
    );

    // XYZ: `prices set` quotes it now at 80; an older CSV quote (no header) does not win.
    let out = sb.run(&["prices", "set", "xyz", "80"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    sb.write("older.csv", &format!("XYZ,60,{}\n", ago(10)));
    let out = sb.run(&["prices", "import", "older.csv"]);
    assert_eq!(out.code, 0, "{}", out.describe());

    // ABC: a header and a time column; the newer quote then an older one, 100 wins.
    sb.write(
        "abc.csv",
        &format!("symbol,price,time\nABC,100,{}\n", ago(1)),
    );
    assert_eq!(sb.run(&["prices", "import", "abc.csv"]).code, 0);
    sb.write(
        "abc_old.csv",
        &format!("symbol,price,time\nABC,70,{}\n", ago(20)),
    );
    assert_eq!(sb.run(&["prices", "import", "abc_old.csv"]).code, 0);

    // DEF: no header, no time column: quoted now.
    sb.write("def.csv", "DEF,55\n");
    assert_eq!(sb.run(&["prices", "import", "def.csv"]).code, 0);

    // A file with bad lines stores nothing, not even its good line (XYZ at 999, now).
    sb.write(
        "bad.csv",
        "symbol,price\nXYZ,999\nXYZ,notaprice\nABC,5,not-a-time\nDEF,-1\nGHI\n",
    );
    let out = sb.run(&["prices", "import", "bad.csv"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    for n in 3..=6 {
        assert!(
            out.stderr.contains(&format!("line {n}: ")),
            "line {n} not reported: {}",
            out.describe()
        );
    }
    assert!(!out.stderr.contains("line 2: "), "{}", out.describe());
    let out = sb.run(&["prices", "set", "XYZ", "0"]);
    assert_eq!(out.code, 2, "a price must be > 0: {}", out.describe());

    let reports = sb.run(&["process", "--expert", "1"]).json();
    let orders = array(&array(&reports)[0]["orders"]);
    let by_symbol: HashMap<&str, &Value> = orders
        .iter()
        .map(|o| (o["symbol"].as_str().unwrap(), o))
        .collect();
    // Balance 100000, cap 10 %: 10000 per symbol, whole shares at the newest quote.
    for (symbol, price, quantity) in [("XYZ", 80, 125), ("ABC", 100, 100), ("DEF", 55, 181)] {
        let o = by_symbol
            .get(symbol)
            .unwrap_or_else(|| panic!("no order for {symbol}: {orders:?}"));
        assert_eq!(o["status"], "filled", "{o}");
        assert_eq!(
            dec(&o["avg_fill_price"]),
            Decimal::from(price),
            "{symbol} fills at its newest quote: {o}"
        );
        assert_eq!(
            dec(&o["quantity"]),
            Decimal::from(quantity),
            "{symbol} is sized at the quote it fills at: {o}"
        );
    }
    assert_eq!(orders.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// 6. The README's first command: `run` on the shipped example with the built-in default.
// ---------------------------------------------------------------------------------------------

#[test]
fn run_on_the_shipped_example_with_the_builtin_default_opens_positions() {
    let sb = Sandbox::new();
    let example = repo_root().join("examples/recommendations.jsonl");
    assert!(example.exists(), "{example:?} is shipped");
    let out = sb.run(&["run", example.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(
        sb.path().join("tradewarden.db").exists(),
        "the default database is ./tradewarden.db"
    );
    let created = out
        .stdout
        .lines()
        .find_map(|l| l.strip_suffix(" order(s) created"))
        .unwrap_or_else(|| panic!("summary names the orders: {}", out.describe()));
    let created: usize = created.trim().parse().unwrap();
    assert!(created > 0, "{}", out.describe());
    assert!(
        out.stdout.contains("expert 1 (demo): processed"),
        "{}",
        out.describe()
    );

    let txns = sb.run(&["transactions", "--json"]).json();
    let opened: BTreeSet<&str> = array(&txns)
        .iter()
        .filter(|t| t["status"] == "OPENED")
        .map(|t| t["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(opened.len(), created, "{txns}");
    // The confident buys of the example; GOOGL (55), TSLA (SELL) and AMZN (HOLD) are not.
    assert_eq!(opened, BTreeSet::from(["AAPL", "MSFT", "NVDA"]));

    // The readable listings work on the same database.
    let out = sb.run(&["transactions"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(out.stdout.contains("AAPL"), "{}", out.describe());
}

// ---------------------------------------------------------------------------------------------
// 7. Log format: JSON lines on stderr, pure JSON on stdout.
// ---------------------------------------------------------------------------------------------

#[test]
fn json_logs_go_to_stderr_and_stdout_stays_pure_json() {
    let sb = Sandbox::new();
    sb.config(100_000, &[expert(1, 100)]);
    sb.write("recs.jsonl", &rec_line(1, "AAPL", 80, "100", None));
    assert_eq!(sb.run(&["import", "recs.jsonl"]).code, 0);

    let out = sb.run(&[
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "process",
        "--expert",
        "1",
    ]);
    let reports = out.json();
    assert_eq!(count(&array(&reports)[0], "ordered"), 1);

    let mut messages = Vec::new();
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line:?}"));
        let msg = v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        messages.push((v["level"].as_str().unwrap_or_default().to_string(), msg));
    }
    for want in [
        "Acquired processing lock for expert 1 (enter_market)",
        "Released processing lock for expert 1 (enter_market)",
    ] {
        assert!(
            messages
                .iter()
                .any(|(level, m)| level == "DEBUG" && m == want),
            "no DEBUG {want:?} in {messages:#?}"
        );
    }

    // At the default level the debug lines are not emitted.
    let out = sb.run(&["--log-format", "json", "process", "--expert", "1"]);
    out.json();
    assert!(
        !out.stderr.contains("Acquired processing lock"),
        "{}",
        out.describe()
    );
}
