//! Exit legs at entry (issue 9 items 1–2), through the binary on SQLite and PostgreSQL: every
//! entry `process` opens is stored with its take profit and stop (the ruleset's, else the
//! safeguard stop), and with one leg per exit — on the closing side, for the entry's
//! quantity, `waiting_trigger` on the entry's fill — committed with the entry intent before
//! anything is sent (a process that dies right there leaves them, and the broker has never
//! heard of them); once the entry fills, the refresh that ends `process` sends both legs
//! as one one-cancels-other group. Needs `--features fault-injection` (the README's test
//! command enables it) to stop a run between storing and sending.

mod common;

use std::path::Path;
use std::sync::Arc;

use tradewarden_store::SqlStore;

use common::*;
use rust_decimal::Decimal;
use serde_json::Value;
use tradewarden_brokers::PaperBroker;
use tradewarden_engine::{Broker, SystemClock};

/// Three experts on one paper account: 1 buys with TP +10 % and SL −5 % from its rules; 2
/// sells (short) with a TP of +10 % and no stop rule (the safeguard stop); 3 buys with no
/// exit rule and the safeguard turned off.
fn config(dir: &Path, db_url: &str) -> std::path::PathBuf {
    let expert = |id: i64, ruleset: &str, extra: &str| {
        format!(
            "[[experts]]\nid = {id}\nname = \"e{id}\"\naccount = \"paper\"\nvirtual_equity_percent = 30\n\
             max_virtual_equity_per_instrument_percent = 10\nallow_automated_trade_opening = true\n\
             enter_market_ruleset = \"{ruleset}\"\n{extra}\n"
        )
    };
    let s = format!(
        "[database]\nurl = \"{db_url}\"\n\n[processing]\nlock_timeout_ms = 100\nlookback_days = 1\n\n\
         [[accounts]]\nname = \"paper\"\nbroker = \"paper\"\ncash = 1000000\n\n{}{}{}\
         [[rulesets]]\nname = \"protected-buy\"\n\n[[rulesets.rules]]\nname = \"buy-with-exits\"\n\
         triggers = [{{ event = \"bullish\" }}]\nactions = [{{ action = \"buy\" }}, \
         {{ action = \"adjust_take_profit\", reference = \"order_open_price\", value = 10 }}, \
         {{ action = \"adjust_stop_loss\", reference = \"order_open_price\", value = -5 }}]\n\n\
         [[rulesets]]\nname = \"short-with-target\"\n\n[[rulesets.rules]]\nname = \"sell-with-tp\"\n\
         triggers = [{{ event = \"bearish\" }}]\nactions = [{{ action = \"sell\" }}, \
         {{ action = \"adjust_take_profit\", reference = \"order_open_price\", value = 10 }}]\n\n\
         [[rulesets]]\nname = \"plain-buy\"\n\n[[rulesets.rules]]\nname = \"buy\"\n\
         triggers = [{{ event = \"bullish\" }}]\nactions = [{{ action = \"buy\" }}]\n",
        expert(1, "protected-buy", ""),
        expert(2, "short-with-target", "enable_sell = true\n"),
        expert(3, "plain-buy", "min_stop_loss_percent = 0\n"),
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, s).unwrap();
    path
}

fn rec_line(expert_id: i64, symbol: &str, action: &str, price: &str) -> String {
    serde_json::json!({
        "expert_id": expert_id,
        "symbol": symbol,
        "action": action,
        "confidence": 80,
        "expected_profit_percent": 10,
        "price_at_date": price,
        "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM",
    })
    .to_string()
}

fn run_json(config: &Path, args: &[&str]) -> Value {
    let (status, out, err) = tw(config, args, &[]);
    assert!(status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("an array: {v}"))
}

/// The decimal a JSON string holds, or `None` for null.
fn num(v: &Value) -> Option<Decimal> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn dec(s: &str) -> Option<Decimal> {
    Some(s.parse().unwrap())
}

/// A leg as `orders --json` shows it: (role, side, type, limit, stop, quantity, status,
/// trigger_status).
fn leg_shape(
    o: &Value,
) -> (
    String,
    String,
    String,
    Option<Decimal>,
    Option<Decimal>,
    Option<Decimal>,
    String,
    Value,
) {
    let text = |k: &str| o[k].as_str().unwrap_or_default().to_string();
    (
        text("role"),
        text("side"),
        text("order_type"),
        num(&o["limit_price"]),
        num(&o["stop_price"]),
        num(&o["quantity"]),
        text("status"),
        o["trigger_status"].clone(),
    )
}

/// The legs of each position as `orders --json` shows them, by symbol: (transaction,
/// entry, take profit, stop loss), for the two positions that have both legs.
type Legs = Vec<(String, Value, Value, Value, Value)>;

/// Checks the transactions' exits and every leg's shape; returns the legs.
fn check_legs(config: &Path, status: &str) -> Legs {
    let txns = run_json(config, &["transactions", "--json"]);
    let txn = |symbol: &str| {
        rows(&txns)
            .iter()
            .find(|t| t["symbol"] == symbol)
            .unwrap_or_else(|| panic!("{symbol}: {txns}"))
            .clone()
    };
    let exits = |t: &Value| (num(&t["take_profit"]), num(&t["stop_loss"]));
    assert_eq!(exits(&txn("AAPL")), (dec("110"), dec("95")));
    // The short: TP 10 % below, the safeguard stop 7 % above (no stop rule).
    assert_eq!(exits(&txn("MSFT")), (dec("180"), dec("214")));
    assert_eq!(exits(&txn("NVDA")), (None, None));

    let orders = run_json(config, &["orders", "--json"]);
    let of = |t: &Value| -> Vec<Value> {
        let mut v: Vec<Value> = rows(&orders)
            .iter()
            .filter(|o| o["transaction_id"] == t["id"])
            .cloned()
            .collect();
        v.sort_by_key(|o| o["id"].as_i64());
        v
    };
    let filled = Value::String("filled".into());
    let mut out = Vec::new();
    for (symbol, close_side, tp, sl) in [
        ("AAPL", "SELL", dec("110"), dec("95")),
        ("MSFT", "BUY", dec("180"), dec("214")),
    ] {
        let t = txn(symbol);
        let [entry, take, stop] = of(&t)
            .try_into()
            .unwrap_or_else(|o: Vec<Value>| panic!("{symbol}: an entry and two legs, got {o:?}"));
        assert_eq!(entry["role"], "entry", "{symbol}");
        let quantity = num(&entry["quantity"]);
        let shape = |role: &str, kind: &str, limit, stop| {
            (
                role.to_string(),
                close_side.to_string(),
                kind.to_string(),
                limit,
                stop,
                quantity,
                status.to_string(),
                filled.clone(),
            )
        };
        assert_eq!(
            leg_shape(&take),
            shape("take_profit", "limit", tp, None),
            "{symbol}"
        );
        assert_eq!(
            leg_shape(&stop),
            shape("stop_loss", "stop", None, sl),
            "{symbol}"
        );
        for (leg, tag) in [(&take, "tp"), (&stop, "sl")] {
            assert_eq!(leg["parent_order_id"], entry["id"], "{symbol} {tag}");
            let want = format!("-{}-{tag}-1", t["id"]);
            let coid = leg["client_order_id"].as_str().unwrap();
            assert!(coid.starts_with("tw-") && coid.ends_with(&want), "{coid}");
        }
        out.push((symbol.to_string(), t, entry, take, stop));
    }
    let nvda = of(&txn("NVDA"));
    assert_eq!(nvda.len(), 1, "no exits, no legs: {nvda:?}");
    out
}

/// The one-cancels-other group the paper broker holds each of `ids` in (`None`: it does
/// not hold the order at all).
async fn broker_groups(store: &SqlStore, ids: &[String]) -> Vec<Option<Option<String>>> {
    let mut out = Vec::new();
    for id in ids {
        let rows = store
            .pool()
            .fetch(
                "SELECT oco_group FROM paper_orders WHERE client_order_id = $1",
                &[id.as_str().into()],
            )
            .await
            .unwrap();
        out.push(rows.first().map(|r| r.opt_text("oco_group").unwrap()));
    }
    out
}

async fn process_stores_each_entry_with_its_waiting_exit_legs(kind: DbKind) {
    // Catches: exits decided and not stored on the transaction, legs missing (or a leg
    // where none was decided), legs on the entry's side, for another quantity, not waiting
    // on the entry's fill, stored after the entry was sent (or not at all when the run
    // stops there), sent at entry, or fired outside one one-cancels-other group.
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &db.url);
    let recs = [
        rec_line(1, "AAPL", "BUY", "100"),
        rec_line(2, "MSFT", "SELL", "200"),
        rec_line(3, "NVDA", "BUY", "50"),
    ];
    std::fs::write(dir.path().join("recs.jsonl"), recs.join("\n")).unwrap();
    run_json(
        &config,
        &["import", dir.path().join("recs.jsonl").to_str().unwrap()],
    );

    // The run dies right after storing its intents: each entry's legs were committed with
    // it, waiting, and nothing has reached the broker.
    let fault = [("TRADEWARDEN_FAULT", "after_order_stored")];
    let (status, _, err) = tw(&config, &["process", "--all"], &fault);
    assert!(
        !status.success(),
        "the run must stop at the fault point: {err}"
    );
    let stored = check_legs(&config, "waiting_trigger");
    let store = db.store().await;
    let paper = PaperBroker::new("paper", store.clone(), Arc::new(SystemClock));
    for (symbol, _, entry, take, stop) in &stored {
        assert_eq!(entry["status"], "submitting", "{symbol}");
        let ids = [entry, take, stop].map(|o| o["client_order_id"].as_str().unwrap().to_string());
        for found in paper.orders_by_client_ids(&ids).await {
            assert_eq!(
                found.unwrap(),
                None,
                "{symbol}: nothing is sent before the intents are stored"
            );
        }
    }

    // The decision records, written with the positions, name the exits and where the stop
    // came from.
    let outcomes = run_json(&config, &["outcomes", "--json"]);
    let detail = |symbol: &str| {
        rows(&outcomes)
            .iter()
            .find(|o| o["symbol"] == symbol)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (symbol, words) in [
        ("AAPL", "take profit 110; stop loss 95"),
        (
            "MSFT",
            "take profit 180; stop loss 214 (safeguard stop, 7% from 200)",
        ),
        (
            "NVDA",
            "no stop loss (safeguard stop off: min_stop_loss_percent = 0)",
        ),
    ] {
        assert!(
            detail(symbol).contains(words),
            "{symbol}: {}",
            detail(symbol)
        );
    }

    // The next run sends the entries (the broker never had them); they fill, and the
    // refresh that ends the run fires each position's legs as one group.
    let reports = run_json(&config, &["process", "--all"]);
    assert!(
        rows(&reports).iter().all(|r| r["status"] == "processed"),
        "{reports}"
    );
    for (symbol, _, entry, take, stop) in check_legs(&config, "accepted") {
        assert_eq!(entry["status"], "filled", "{symbol}");
        let ids = [&take, &stop].map(|o| o["client_order_id"].as_str().unwrap().to_string());
        let groups = broker_groups(&store, &ids).await;
        assert!(
            matches!(&groups[..], [Some(Some(a)), Some(Some(b))] if a == b),
            "{symbol}: both legs at the broker in one group: {groups:?}"
        );
    }
}

// Catches: the same without the fault-injection feature (the run could not be stopped).
#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn sqlite_process_stores_each_entry_with_its_waiting_exit_legs() {
    process_stores_each_entry_with_its_waiting_exit_legs(DbKind::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs --features fault-injection"
)]
async fn postgres_process_stores_each_entry_with_its_waiting_exit_legs() {
    process_stores_each_entry_with_its_waiting_exit_legs(DbKind::Postgres).await;
}
