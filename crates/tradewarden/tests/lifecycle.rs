//! A position through its life after the entry (issue 9 items 2, 3, 6), through the binary
//! on SQLite and PostgreSQL: `refresh` fires the exit legs once the entry filled, follows a
//! quote crossing one of them to CLOSED, and changes nothing when asked again; two
//! refreshes of one account at once: one skips; `close` puts a position CLOSING with a
//! market close order that a refresh sees filled (CLOSED, manual_close), says so when asked
//! again, and cancels the entry and legs of a transaction whose entry has not filled.
//!
//! Until enter_market stores exit legs itself, the tests store them through the store, in
//! the shape it will: role take_profit / stop_loss, waiting_trigger on the entry's fill,
//! generation 1.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use tradewarden::host::ProcFs;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::lifecycle::closing_side;
use tradewarden_domain::{Order, OrderRole, OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{
    LeaseAttempt, LeaseHolder, LeaseStore, LifecycleStore, LifecycleWrite, NewExitOrder,
    NewPosition, PositionStore,
};
use tradewarden_engine::{Broker, OrderRequest, SystemClock};
use tradewarden_store::SqlStore;

/// A database, a configuration for the binary on it (one expert, one paper account).
pub struct Life {
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub store: Arc<SqlStore>,
}

impl Life {
    pub async fn new(kind: DbKind) -> Life {
        let db = TestDb::new(kind).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &db.url, 1, 30);
        // Expert 1 may sell (open a short) on a bearish recommendation too. Its safeguard
        // stop is off: these tests store the legs themselves (whole_life.rs covers the
        // legs enter_market stores).
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "enter_market_ruleset = \"confident-buy\"\n",
            "enter_market_ruleset = \"confident-buy\"\nenable_sell = true\nmin_stop_loss_percent = 0\n",
        );
        std::fs::write(
            &config,
            format!(
                "{text}\n[[rulesets.rules]]\nname = \"bearish\"\ntriggers = [{{ event = \"bearish\" }}]\nactions = [{{ action = \"sell\" }}]\n"
            ),
        )
        .unwrap();
        let life = Life {
            config,
            dir,
            store: db.store().await,
            db,
        };
        life.tw(&["prices", "set", "AAPL", "100"]);
        life
    }

    /// Runs the binary; its stdout (it must succeed).
    pub fn tw(&self, args: &[&str]) -> String {
        self.tw_env(args, &[])
    }

    pub fn tw_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let (status, out, err) = tw(&self.config, args, env);
        assert!(status.success(), "{args:?}: {err}");
        out
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.tw(args)).unwrap()
    }

    /// A long (BUY) or short (SELL) of expert 1 on AAPL, filled at 100 through `process`.
    pub fn filled_position(&self, action: &str) -> i64 {
        let recs = self.dir.path().join("recs.jsonl");
        std::fs::write(
            &recs,
            format!(
                "{{\"expert_id\":1,\"symbol\":\"AAPL\",\"action\":\"{action}\",\"confidence\":80,\"expected_profit_percent\":10,\
                 \"price_at_date\":100,\"risk_level\":\"LOW\",\"time_horizon\":\"SHORT_TERM\"}}\n"
            ),
        )
        .unwrap();
        self.tw(&["import", recs.to_str().unwrap()]);
        let reports = self.json(&["process", "--expert", "1"]);
        assert_eq!(reports[0]["counts"]["ordered"], 1, "{reports}");
        let txns = self.json(&["transactions", "--json"]);
        assert_eq!(txns[0]["status"], "OPENED", "{txns}");
        txns[0]["id"].as_i64().unwrap()
    }

    /// The transaction's orders, oldest first.
    pub async fn orders(&self, txn: i64) -> Vec<Order> {
        self.store.position(txn).await.unwrap().unwrap().orders
    }

    pub async fn transaction(&self, txn: i64) -> tradewarden_domain::Transaction {
        self.store.position(txn).await.unwrap().unwrap().transaction
    }

    /// Stores the two exit legs of `txn` as enter_market will: waiting for the entry's fill.
    pub async fn store_legs(&self, txn: i64, tp: Decimal, sl: Decimal) {
        let p = self.store.position(txn).await.unwrap().unwrap();
        let entry = p
            .orders
            .iter()
            .find(|o| o.role == OrderRole::Entry)
            .unwrap();
        let t = &p.transaction;
        let leg = |role, order_type, limit_price, stop_price| NewExitOrder {
            transaction_id: t.id,
            expert_id: t.expert_id,
            account: t.account.clone(),
            symbol: t.symbol.clone(),
            side: closing_side(t.side),
            role,
            order_type,
            quantity: entry.quantity,
            limit_price,
            stop_price,
            generation: 1,
            status: OrderStatus::WaitingTrigger,
            parent_order_id: Some(entry.id),
            trigger_status: Some(OrderStatus::Filled),
            created_at: Utc::now(),
        };
        self.store
            .write_lifecycle(&LifecycleWrite {
                exits: Some((t.id, Some(tp), Some(sl))),
                inserted: vec![
                    leg(OrderRole::TakeProfit, OrderType::Limit, Some(tp), None),
                    leg(OrderRole::StopLoss, OrderType::Stop, None, Some(sl)),
                ],
                at: Utc::now(),
                ..LifecycleWrite::default()
            })
            .await
            .unwrap();
    }

    /// The paper broker's orders resting (accepted) in the account.
    pub async fn resting_at_broker(&self) -> i64 {
        self.store
            .pool()
            .fetch(
                "SELECT COUNT(*) AS n FROM paper_orders WHERE status = 'accepted'",
                &[],
            )
            .await
            .unwrap()[0]
            .i64("n")
            .unwrap()
    }
}

/// The live take-profit and stop-loss legs: (role, status, generation tag).
pub fn live_legs(orders: &[Order]) -> Vec<(OrderRole, OrderStatus, String)> {
    orders
        .iter()
        .filter(|o| matches!(o.role, OrderRole::TakeProfit | OrderRole::StopLoss))
        .filter(|o| tradewarden_domain::lifecycle::is_live(o.status))
        .map(|o| {
            (
                o.role,
                o.status,
                o.client_order_id.rsplit('-').next().unwrap().to_string(),
            )
        })
        .collect()
}

fn counts(v: &Value) -> [i64; 5] {
    [
        "orders_updated",
        "transactions_opened",
        "transactions_closed",
        "legs_fired",
        "legs_canceled",
    ]
    .map(|k| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}")))
}

fn num(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

// Catches: legs never fired, fired twice, a refresh that rewrites what did not change, the
// sibling of a filled leg left live, or a close recorded with the wrong reason or price.
async fn a_long_closes_at_its_take_profit(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;

    let first = life.json(&["refresh"]);
    assert_eq!(first["accounts"], serde_json::json!(["paper"]));
    assert_eq!(counts(&first), [0, 0, 0, 2, 0], "{first}");
    let legs = live_legs(&life.orders(txn).await);
    assert_eq!(
        legs,
        vec![
            (OrderRole::TakeProfit, OrderStatus::Accepted, "1".into()),
            (OrderRole::StopLoss, OrderStatus::Accepted, "1".into())
        ]
    );
    assert_eq!(life.resting_at_broker().await, 2);

    let again = life.json(&["refresh"]);
    assert_eq!(counts(&again), [0, 0, 0, 0, 0], "second refresh: {again}");

    // A quote through the take profit: the broker fills it and cancels the stop.
    life.tw(&["prices", "set", "AAPL", "111"]);
    let closed = life.json(&["refresh"]);
    assert_eq!(counts(&closed), [2, 0, 1, 0, 0], "{closed}");
    let t = life.transaction(txn).await;
    assert_eq!(t.status.as_str(), "CLOSED");
    assert_eq!(t.close_reason.as_deref(), Some("take_profit"));
    assert_eq!(t.close_price, Some(dec!(111)));
    assert!(t.closed_at.is_some());
    assert!(live_legs(&life.orders(txn).await).is_empty());
    assert_eq!(life.resting_at_broker().await, 0);
    assert_eq!(counts(&life.json(&["refresh"])), [0, 0, 0, 0, 0]);

    // The listings show the roles and the close.
    let orders = life.json(&["orders", "--json"]);
    let roles: Vec<&str> = orders
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"take_profit") && roles.contains(&"stop_loss"),
        "{orders}"
    );
    let listed = &life.json(&["transactions", "--json"])[0];
    assert_eq!(
        (&listed["close_reason"], num(&listed["close_price"])),
        (&Value::from("take_profit"), dec!(111))
    );
    assert_eq!(num(&listed["take_profit"]), dec!(110));
    assert_eq!(num(&listed["stop_loss"]), dec!(93));
}
both!(a_long_closes_at_its_take_profit);

// Catches: a short's legs on the wrong side (a buy stop above is what protects a short).
async fn a_short_closes_at_its_stop(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("SELL");
    assert_eq!(life.transaction(txn).await.side, Side::Sell);
    life.store_legs(txn, dec!(90), dec!(105)).await;
    assert_eq!(counts(&life.json(&["refresh"])), [0, 0, 0, 2, 0]);
    life.tw(&["prices", "set", "AAPL", "106"]);
    let closed = life.json(&["refresh"]);
    assert_eq!(counts(&closed), [2, 0, 1, 0, 0], "{closed}");
    let t = life.transaction(txn).await;
    assert_eq!(
        (t.status.as_str(), t.close_reason.as_deref(), t.close_price),
        ("CLOSED", Some("stop_loss"), Some(dec!(106)))
    );
}
both!(a_short_closes_at_its_stop);

// Catches: a close that leaves the legs working (the position could be closed twice), a
// close order sent before it is stored or without the open quantity, a second close that
// changes something or fails, and the close's reason lost on the way to CLOSED.
async fn a_close_by_hand_closes_once(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    life.json(&["refresh"]);
    life.tw(&["prices", "set", "AAPL", "104"]);

    let closing = life.json(&["close", &txn.to_string()]);
    assert_eq!(closing["outcome"], "closing", "{closing}");
    assert_eq!(closing["transaction_id"], txn);
    let order_id = closing["order_id"].as_i64().unwrap();
    let orders = life.orders(txn).await;
    let close = orders.iter().find(|o| o.id == order_id).unwrap();
    assert_eq!(
        (close.role, close.side, close.order_type, close.quantity),
        (
            OrderRole::Close,
            Side::Sell,
            OrderType::Market,
            orders[0].quantity
        )
    );
    assert!(close.client_order_id.ends_with(&format!("-{txn}-close-1")));
    assert!(live_legs(&orders).is_empty(), "legs canceled: {orders:?}");
    assert_eq!(life.resting_at_broker().await, 0);
    assert_eq!(life.transaction(txn).await.status.as_str(), "CLOSING");

    let again = life.json(&["close", &txn.to_string()]);
    assert_eq!(again["outcome"], "already_closing", "{again}");

    let refreshed = life.json(&["refresh"]);
    assert_eq!(refreshed["transactions_closed"], 1, "{refreshed}");
    let t = life.transaction(txn).await;
    assert_eq!(
        (t.status.as_str(), t.close_reason.as_deref(), t.close_price),
        ("CLOSED", Some("manual_close"), Some(dec!(104)))
    );
    let closed = life.json(&["close", &txn.to_string()]);
    assert_eq!(closed["outcome"], "already_closed", "{closed}");

    // The realised profit: bought at 100, sold at 104.
    let accounts = life.json(&["accounts", "--json"]);
    let paper = &accounts[0];
    let quantity = orders[0].quantity;
    assert_eq!(
        num(&paper["cash"]),
        dec!(1000000) + quantity * dec!(4),
        "{paper}"
    );
    assert!(paper["positions"].as_array().unwrap().is_empty(), "{paper}");

    let (status, _, err) = tw(&life.config, &["close", "999999"], &[]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("unknown transaction 999999"), "{err}");
}
both!(a_close_by_hand_closes_once);

// Catches: a second position of the same expert and symbol opened while the first is still
// being closed (the SAFETY CHECK or the unique index ignoring CLOSING): the exposure doubles,
// and a refused close could no longer return the first to OPENED.
async fn a_closing_position_still_holds_its_symbol(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    let closing = life.json(&["close", &txn.to_string()]);
    assert_eq!(closing["outcome"], "closing", "{closing}");

    // The database refuses a second one beside it, whatever the application does.
    let new = NewPosition {
        expert_id: 1,
        account: "paper".into(),
        symbol: "AAPL".into(),
        side: Side::Buy,
        quantity: dec!(1),
        reference_price: dec!(100),
        order_type: OrderType::Market,
        limit_price: None,
        take_profit: None,
        stop_loss: None,
        recommendation_id: None,
        created_at: Utc::now(),
        decision: None,
    };
    assert!(life.store.open_position(&new).await.is_err());

    // A new recommendation is a duplicate while the close is working; the refresh that ends
    // the run then sees the close filled.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let recs = life.dir.path().join("again.jsonl");
    std::fs::write(
        &recs,
        "{\"expert_id\":1,\"symbol\":\"AAPL\",\"action\":\"BUY\",\"confidence\":90,\"expected_profit_percent\":10,\
         \"price_at_date\":100,\"risk_level\":\"LOW\",\"time_horizon\":\"SHORT_TERM\"}\n",
    )
    .unwrap();
    life.tw(&["import", recs.to_str().unwrap()]);
    let reports = life.json(&["process", "--expert", "1", "--use-case", "enter_market"]);
    assert_eq!(reports[0]["counts"]["duplicate_position"], 1, "{reports}");
    assert_eq!(reports[0]["counts"]["ordered"], 0, "{reports}");
    let txns = life.json(&["transactions", "--json"]);
    assert_eq!(txns.as_array().unwrap().len(), 1, "{txns}");
    assert_eq!(txns[0]["status"], "CLOSED", "{txns}");
}
both!(a_closing_position_still_holds_its_symbol);

// Catches: a close of a position whose entry has not filled that sends a close order for
// nothing, or leaves the entry resting (it could fill later, unprotected).
async fn closing_a_waiting_transaction_cancels_its_entry(kind: DbKind) {
    let life = Life::new(kind).await;
    life.tw(&["accounts"]);
    let new = NewPosition {
        expert_id: 1,
        account: "paper".into(),
        symbol: "AAPL".into(),
        side: Side::Buy,
        quantity: dec!(10),
        reference_price: dec!(100),
        order_type: OrderType::Limit,
        limit_price: Some(dec!(90)),
        take_profit: None,
        stop_loss: None,
        recommendation_id: None,
        created_at: Utc::now(),
        decision: None,
    };
    let (t, entry) = life.store.open_position(&new).await.unwrap();
    let broker = PaperBroker::new("paper", life.store.clone(), Arc::new(SystemClock));
    let answer = broker
        .submit(&OrderRequest::for_order(&entry))
        .await
        .unwrap();
    assert_eq!(answer.status, OrderStatus::Accepted);
    life.store
        .apply_broker_order(entry.id, &answer)
        .await
        .unwrap();
    life.store_legs(t.id, dec!(110), dec!(85)).await;
    assert_eq!(counts(&life.json(&["refresh"])), [0, 0, 0, 0, 0]);

    let out = life.json(&["close", &t.id.to_string()]);
    assert_eq!(out["outcome"], "entry_canceled", "{out}");
    let orders = life.orders(t.id).await;
    assert!(
        orders.iter().all(|o| o.status == OrderStatus::Canceled),
        "{orders:?}"
    );
    assert_eq!(life.resting_at_broker().await, 0);
    let t = life.transaction(t.id).await;
    assert_eq!(
        (t.status.as_str(), t.close_reason.as_deref()),
        ("CLOSED", Some("entry_orders_terminal_no_execution"))
    );
}
both!(closing_a_waiting_transaction_cancels_its_entry);

// Catches: a refresh that runs while another holds the account's lease (two refreshes could
// fire the same legs or cancel each other's work).
async fn a_refresh_skips_an_account_another_refreshes(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    // Another refresh, alive (this test process), holds the account's lease.
    let processes = ProcFs::new();
    let holder = LeaseHolder::this_process("other-refresh", &processes, None);
    let taken = life
        .store
        .try_acquire_lease(
            "refresh_account_paper",
            &holder,
            Utc::now(),
            std::time::Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(taken, LeaseAttempt::Acquired);

    let skipped = life.json(&["refresh"]);
    assert_eq!(skipped["accounts"], serde_json::json!([]), "{skipped}");
    assert_eq!(skipped["skipped_accounts"], serde_json::json!(["paper"]));
    assert_eq!(counts(&skipped), [0, 0, 0, 0, 0]);
    assert_eq!(life.resting_at_broker().await, 0, "no leg fired");

    life.store
        .release_lease("refresh_account_paper", "other-refresh")
        .await
        .unwrap();
    let done = life.json(&["refresh"]);
    assert_eq!(done["legs_fired"], 2, "{done}");
}
both!(a_refresh_skips_an_account_another_refreshes);

// Catches: `process` or `run` that no longer refreshes at its end.
async fn process_and_run_end_with_a_refresh(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    life.tw(&["process", "--expert", "1"]);
    assert_eq!(life.resting_at_broker().await, 2);
    assert_eq!(live_legs(&life.orders(txn).await).len(), 2);

    life.tw(&["prices", "set", "AAPL", "111"]);
    let empty = life.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let summary = life.tw(&["run", empty.to_str().unwrap()]);
    assert!(summary.contains("refresh: 2 order(s) updated"), "{summary}");
    let t = life.transaction(txn).await;
    assert_eq!(t.close_reason.as_deref(), Some("take_profit"));
}
both!(process_and_run_end_with_a_refresh);

/// A manager on the test's database, as the binary wires it (one paper account).
async fn manager_on(url: &str) -> tradewarden_engine::TradeManager {
    let store = Arc::new(SqlStore::connect(url).await.unwrap());
    let paper: Arc<dyn Broker> = Arc::new(PaperBroker::new(
        "paper",
        store.clone(),
        Arc::new(SystemClock),
    ));
    let settings = settings(vec![expert(1)], dec!(1000000)).settings;
    tradewarden_engine::TradeManager::new(
        settings,
        store as Arc<dyn tradewarden_engine::Store>,
        [("paper".to_string(), paper)].into(),
        Arc::new(SystemClock),
    )
}

// Catches: a replacement that leaves the old legs live (two structures), places the new legs
// before storing them, or does not take the new prices; a replacement with the prices in
// force that sends anything.
async fn replacing_exits_leaves_one_structure(kind: DbKind) {
    use tradewarden_engine::ExitsOutcome;
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    life.json(&["refresh"]);
    let m = manager_on(&life.db.url).await;

    let out = m.replace_exits(txn, None, Some(dec!(97))).await.unwrap();
    assert_eq!(out, ExitsOutcome::Replaced { generation: 2 });
    let orders = life.orders(txn).await;
    assert_eq!(
        live_legs(&orders),
        vec![
            (OrderRole::TakeProfit, OrderStatus::Accepted, "2".into()),
            (OrderRole::StopLoss, OrderStatus::Accepted, "2".into())
        ],
        "{orders:?}"
    );
    let stop = orders
        .iter()
        .rfind(|o| o.role == OrderRole::StopLoss)
        .unwrap();
    assert_eq!(stop.stop_price, Some(dec!(97)));
    assert_eq!(life.resting_at_broker().await, 2);
    let t = life.transaction(txn).await;
    assert_eq!(
        (t.take_profit, t.stop_loss),
        (Some(dec!(110)), Some(dec!(97)))
    );

    let same = m
        .replace_exits(txn, Some(dec!(110)), Some(dec!(97)))
        .await
        .unwrap();
    assert_eq!(same, ExitsOutcome::Unchanged);
    assert_eq!(counts(&life.json(&["refresh"])), [0, 0, 0, 0, 0]);
}
both!(replacing_exits_leaves_one_structure);

/// The child of [`a_crash_between_storing_and_canceling`]: replaces the exits of
/// `$TW_CHILD_TXN` on `$TW_CHILD_URL`, and dies at `$TRADEWARDEN_FAULT`.
#[tokio::test]
#[ignore = "run by a crash test, in a process of its own"]
async fn child_replace_exits() {
    let (Ok(url), Ok(txn)) = (std::env::var("TW_CHILD_URL"), std::env::var("TW_CHILD_TXN")) else {
        return;
    };
    let m = manager_on(&url).await;
    m.replace_exits(txn.parse().unwrap(), None, Some(dec!(97)))
        .await
        .unwrap();
}

// Catches: a replacement that cancels the old legs before the new ones are stored (a crash
// leaves the position bare), and a refresh that does not finish a half-done replacement
// (two structures, or the new one never placed).
async fn a_crash_between_storing_and_canceling(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    life.json(&["refresh"]);

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_replace_exits", "--exact", "--ignored", "--nocapture"])
        .env("TW_CHILD_URL", &life.db.url)
        .env("TW_CHILD_TXN", txn.to_string())
        .env("TRADEWARDEN_FAULT", "after_replacement_legs_stored")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child must die: {err}");
    assert!(
        err.contains("aborting at after_replacement_legs_stored"),
        "{err}"
    );

    // Still protected: the old legs rest at the broker, the new ones wait.
    let orders = life.orders(txn).await;
    assert_eq!(
        live_legs(&orders),
        vec![
            (OrderRole::TakeProfit, OrderStatus::Accepted, "1".into()),
            (OrderRole::StopLoss, OrderStatus::Accepted, "1".into()),
            (
                OrderRole::TakeProfit,
                OrderStatus::WaitingTrigger,
                "2".into()
            ),
            (OrderRole::StopLoss, OrderStatus::WaitingTrigger, "2".into())
        ]
    );
    assert_eq!(life.resting_at_broker().await, 2);

    life.tw(&["reconcile"]);
    let finished = life.json(&["refresh"]);
    assert_eq!(counts(&finished), [0, 0, 0, 2, 2], "{finished}");
    assert_eq!(
        live_legs(&life.orders(txn).await),
        vec![
            (OrderRole::TakeProfit, OrderStatus::Accepted, "2".into()),
            (OrderRole::StopLoss, OrderStatus::Accepted, "2".into())
        ]
    );
    assert_eq!(life.resting_at_broker().await, 2);
    assert_eq!(counts(&life.json(&["refresh"])), [0, 0, 0, 0, 0]);
}

// Catches: a refresh that records a leg's fill only in memory, or that sends or cancels
// anything twice when the fill is learned again after a restart; the sibling left live.
async fn a_crash_between_a_fill_and_its_record(kind: DbKind) {
    let life = Life::new(kind).await;
    let txn = life.filled_position("BUY");
    life.store_legs(txn, dec!(110), dec!(93)).await;
    life.json(&["refresh"]);
    life.tw(&["prices", "set", "AAPL", "92"]);

    let point = "after_leg_filled_before_recorded";
    let (st, _, err) = tw(&life.config, &["refresh"], &[("TRADEWARDEN_FAULT", point)]);
    assert!(!st.success(), "the refresh must die: {err}");
    assert!(err.contains(&format!("aborting at {point}")), "{err}");
    // The store has not heard of the fill: the legs it knows still protect the position.
    assert_eq!(live_legs(&life.orders(txn).await).len(), 2);
    assert_eq!(life.transaction(txn).await.status.as_str(), "OPENED");

    life.tw(&["reconcile"]);
    let after = life.json(&["refresh"]);
    assert_eq!(counts(&after), [2, 0, 1, 0, 0], "{after}");
    let t = life.transaction(txn).await;
    assert_eq!(
        (t.status.as_str(), t.close_reason.as_deref(), t.close_price),
        ("CLOSED", Some("stop_loss"), Some(dec!(92)))
    );
    assert!(live_legs(&life.orders(txn).await).is_empty());
    assert_eq!(life.resting_at_broker().await, 0);
    let sent = life
        .store
        .pool()
        .fetch("SELECT COUNT(*) AS n FROM paper_orders", &[])
        .await
        .unwrap()[0]
        .i64("n")
        .unwrap();
    assert_eq!(sent, 3, "the entry and two legs, each once");
}

macro_rules! crash {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            #[cfg_attr(
                not(feature = "fault-injection"),
                ignore = "needs --features fault-injection"
            )]
            async fn sqlite() {
                super::$name(DbKind::Sqlite).await;
            }
            #[tokio::test]
            #[cfg_attr(
                not(feature = "fault-injection"),
                ignore = "needs --features fault-injection"
            )]
            async fn postgres() {
                super::$name(DbKind::Postgres).await;
            }
        }
    };
}
crash!(a_crash_between_storing_and_canceling);
crash!(a_crash_between_a_fill_and_its_record);
