//! A position through its whole life on the paper broker (issue 9, the first test it asks
//! for), through the binary on SQLite and PostgreSQL, a long and a short each: `process`
//! opens it with its exit legs (take profit +10 %, stop −5 % from the entry, from the rules)
//! and fills the entry; refresh fires the legs; `prices set` crosses the take profit (or, in
//! the other case, the stop); `refresh` sees the leg filled and its sibling canceled, and
//! closes the transaction with the right reason and prices; `accounts --json` shows the
//! realised profit or loss in the cash.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;

/// What the paper account starts with.
const START: Decimal = dec!(1000000);

/// One paper account; expert 1 buys on a bullish and sells (opens a short) on a bearish
/// recommendation, each with a take profit 10 % and a stop 5 % from the entry.
fn config(dir: &Path, db_url: &str) -> PathBuf {
    let exits = "{ action = \"adjust_take_profit\", reference = \"order_open_price\", value = 10 }, \
                 { action = \"adjust_stop_loss\", reference = \"order_open_price\", value = -5 }";
    let s = format!(
        "[database]\nurl = \"{db_url}\"\n\n[processing]\nlock_timeout_ms = 100\nlookback_days = 1\n\n\
         [[accounts]]\nname = \"paper\"\nbroker = \"paper\"\ncash = {START}\n\n\
         [[experts]]\nid = 1\nname = \"e1\"\naccount = \"paper\"\nvirtual_equity_percent = 100\n\
         max_virtual_equity_per_instrument_percent = 10\nallow_automated_trade_opening = true\n\
         enable_sell = true\nenter_market_ruleset = \"with-exits\"\n\n\
         [[rulesets]]\nname = \"with-exits\"\n\n\
         [[rulesets.rules]]\nname = \"long\"\ntriggers = [{{ event = \"bullish\" }}]\n\
         actions = [{{ action = \"buy\" }}, {exits}]\n\n\
         [[rulesets.rules]]\nname = \"short\"\ntriggers = [{{ event = \"bearish\" }}]\n\
         actions = [{{ action = \"sell\" }}, {exits}]\n"
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, s).unwrap();
    path
}

/// The binary on one database.
struct Life {
    config: PathBuf,
    dir: tempfile::TempDir,
    _db: TestDb,
}

impl Life {
    async fn new(kind: DbKind) -> Life {
        let db = TestDb::new(kind).await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &db.url);
        Life {
            config,
            dir,
            _db: db,
        }
    }

    /// Runs the binary; its stdout (it must succeed).
    fn run(&self, args: &[&str]) -> String {
        let (status, out, err) = tw(&self.config, args, &[]);
        assert!(status.success(), "{args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// Imports one recommendation of AAPL at 100 and processes it: the position.
    fn open(&self, action: &str) -> Value {
        let recs = self.dir.path().join("recs.jsonl");
        let line = serde_json::json!({
            "expert_id": 1, "symbol": "AAPL", "action": action, "confidence": 80,
            "expected_profit_percent": 10, "price_at_date": "100",
            "risk_level": "MEDIUM", "time_horizon": "SHORT_TERM",
        });
        std::fs::write(&recs, line.to_string()).unwrap();
        self.json(&["import", recs.to_str().unwrap()]);
        let reports = self.json(&["process", "--expert", "1"]);
        assert_eq!(reports[0]["counts"]["ordered"], 1, "{reports}");
        self.transaction()
    }

    fn transaction(&self) -> Value {
        let txns = self.json(&["transactions", "--json"]);
        let [t] = txns.as_array().unwrap().as_slice() else {
            panic!("one transaction: {txns}")
        };
        t.clone()
    }

    /// The transaction's orders by role: (status, avg_fill_price).
    fn orders(&self) -> Vec<(String, String, Option<Decimal>)> {
        let orders = self.json(&["orders", "--json"]);
        let mut v: Vec<&Value> = orders.as_array().unwrap().iter().collect();
        v.sort_by_key(|o| o["id"].as_i64());
        v.iter()
            .map(|o| {
                (
                    o["role"].as_str().unwrap().to_string(),
                    o["status"].as_str().unwrap().to_string(),
                    num(&o["avg_fill_price"]),
                )
            })
            .collect()
    }

    /// The paper account's cash and its positions.
    fn account(&self) -> (Decimal, Vec<Value>) {
        let all = self.json(&["accounts", "--json"]);
        let paper = &all[0];
        assert_eq!(paper["name"], "paper", "{all}");
        (
            num(&paper["cash"]).unwrap(),
            paper["positions"].as_array().unwrap().clone(),
        )
    }
}

fn num(v: &Value) -> Option<Decimal> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn s(x: &str) -> String {
    x.to_string()
}

/// One life: `action` opens the position at 100, a quote at `cross` goes through the exit
/// `reason` names, which fills at that quote.
async fn whole_life(kind: DbKind, action: &str, cross: &str, reason: &str) {
    let life = Life::new(kind).await;
    let t = life.open(action);
    let (long, qty) = (action == "BUY", num(&t["quantity"]).unwrap());
    assert_eq!(t["status"], "OPENED", "{t}");
    assert_eq!(num(&t["open_price"]), Some(dec!(100)), "{t}");
    let exits = (num(&t["take_profit"]), num(&t["stop_loss"]));
    let want = if long { (110, 95) } else { (90, 105) };
    assert_eq!(exits, (Some(want.0.into()), Some(want.1.into())), "{t}");

    // The entry filled; the refresh that ends `process` fired both legs, now resting at
    // the broker. Another refresh finds them so.
    life.json(&["refresh"]);
    let resting = vec![
        (s("entry"), s("filled"), Some(dec!(100))),
        (s("take_profit"), s("accepted"), None),
        (s("stop_loss"), s("accepted"), None),
    ];
    assert_eq!(life.orders(), resting);
    let (cash, positions) = life.account();
    let entered = if long {
        START - qty * dec!(100)
    } else {
        START + qty * dec!(100)
    };
    assert_eq!((cash, positions.len()), (entered, 1), "{positions:?}");

    // A quote through the exit fills it at the quote; the broker cancels the sibling.
    life.run(&["prices", "set", "AAPL", cross]);
    let refreshed = life.json(&["refresh"]);
    assert_eq!(refreshed["transactions_closed"], 1, "{refreshed}");
    let cross: Decimal = cross.parse().unwrap();
    let (tp, sl) = match reason {
        "take_profit" => ((s("filled"), Some(cross)), (s("canceled"), None)),
        _ => ((s("canceled"), None), (s("filled"), Some(cross))),
    };
    assert_eq!(
        life.orders(),
        vec![
            resting[0].clone(),
            (s("take_profit"), tp.0, tp.1),
            (s("stop_loss"), sl.0, sl.1),
        ]
    );
    let t = life.transaction();
    assert_eq!(
        (&t["status"], &t["close_reason"], num(&t["close_price"])),
        (&"CLOSED".into(), &reason.into(), Some(cross)),
        "{t}"
    );
    assert!(t["closed_at"].is_string(), "{t}");

    // The realised profit or loss is in the cash; nothing is held any more.
    let pnl = if long {
        (cross - dec!(100)) * qty
    } else {
        (dec!(100) - cross) * qty
    };
    let (cash, positions) = life.account();
    assert_eq!((cash, positions.len()), (START + pnl, 0), "{positions:?}");
    // Catches: a life that ends with a profit where it should lose, or the reverse.
    assert_eq!(pnl > Decimal::ZERO, reason == "take_profit", "{pnl}");

    // Nothing is left to do: a second refresh changes nothing.
    let again = life.json(&["refresh"]);
    for k in [
        "orders_updated",
        "transactions_opened",
        "transactions_closed",
        "legs_fired",
        "legs_canceled",
    ] {
        assert_eq!(again[k], 0, "{k}: {again}");
    }
}

// Catches (each): exit legs not stored at entry or never fired, a fill at the broker the
// store never learns of, the wrong close reason or price, a sibling left live, a short's
// exits on the long side.
async fn long_through_its_take_profit(kind: DbKind) {
    whole_life(kind, "BUY", "111", "take_profit").await;
}
both!(long_through_its_take_profit);

async fn long_through_its_stop(kind: DbKind) {
    whole_life(kind, "BUY", "94", "stop_loss").await;
}
both!(long_through_its_stop);

async fn short_through_its_take_profit(kind: DbKind) {
    whole_life(kind, "SELL", "89", "take_profit").await;
}
both!(short_through_its_take_profit);

async fn short_through_its_stop(kind: DbKind) {
    whole_life(kind, "SELL", "106", "stop_loss").await;
}
both!(short_through_its_stop);
