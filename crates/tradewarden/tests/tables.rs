//! The listing tables as a person reads them, pinned by insta snapshots at 80 and 200
//! columns: no line between rows, numbers right-aligned on their decimal points, statuses
//! never cut, long text (the outcomes' `detail`) cut to the width with `…`, whole when no
//! width is given (`--wide`, or a pipe), and a summary line of counts per status.
//! And end to end: `$COLUMNS` cuts the binary's table, `--wide` does not, `--json` is JSON.

mod cmd;
mod common;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal_macros::dec;
use tradewarden::output::{TableOpts, orders_table, outcomes_table, transactions_table};
use tradewarden_domain::{
    Order, OrderRole, OrderStatus, OrderType, Outcome, OutcomeKind, Side, Transaction,
    TransactionStatus, UseCase,
};

fn at(min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 9, min, 0).unwrap()
}

fn transactions() -> Vec<Transaction> {
    let t = |id, symbol: &str, qty, status, price| Transaction {
        id,
        expert_id: id % 3 + 1,
        account: "paper".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        quantity: qty,
        status,
        open_price: price,
        close_price: None,
        take_profit: None,
        stop_loss: None,
        opened_at: price.map(|_| at(1)),
        closed_at: None,
        close_reason: None,
        created_at: at(0),
    };
    vec![
        t(
            1,
            "AAPL",
            dec!(40),
            TransactionStatus::Opened,
            Some(dec!(187.25)),
        ),
        t(
            2,
            "MSFT",
            dec!(1.5),
            TransactionStatus::Opened,
            Some(dec!(415.1)),
        ),
        t(3, "NVDA", dec!(120), TransactionStatus::Waiting, None),
        t(14, "BRK.B", dec!(3), TransactionStatus::Failed, None),
    ]
}

fn orders() -> Vec<Order> {
    let o = |id, symbol: &str, qty, filled, avg, status| Order {
        id,
        transaction_id: id,
        expert_id: 1,
        account: "paper".into(),
        symbol: symbol.into(),
        side: Side::Buy,
        role: OrderRole::Entry,
        order_type: OrderType::Market,
        quantity: qty,
        filled_quantity: filled,
        limit_price: None,
        stop_price: None,
        avg_fill_price: avg,
        status,
        client_order_id: format!("tw-{id}-entry"),
        broker_order_id: None,
        parent_order_id: None,
        trigger_status: None,
        recommendation_id: Some(id),
        created_at: at(0),
    };
    vec![
        o(
            1,
            "AAPL",
            dec!(40),
            dec!(40),
            Some(dec!(187.25)),
            OrderStatus::Filled,
        ),
        o(2, "MSFT", dec!(1.5), dec!(0), None, OrderStatus::Submitting),
        o(103, "NVDA", dec!(120), dec!(0), None, OrderStatus::Rejected),
    ]
}

fn outcomes() -> Vec<Outcome> {
    let o = |rec, symbol: &str, outcome, order, detail: &str| Outcome {
        recommendation_id: rec,
        expert_id: 1,
        symbol: symbol.into(),
        use_case: UseCase::EnterMarket,
        outcome,
        detail: detail.into(),
        order_id: order,
        decided_at: at(2),
    };
    vec![
        o(
            1,
            "AAPL",
            OutcomeKind::Ordered,
            Some(1),
            "rule bullish-and-confident matched; available 100000, cap 10000 (10%), price 187.25, quantity 53; broker: filled 53 @ 187.25",
        ),
        o(
            2,
            "GOOGL",
            OutcomeKind::RulesNotMet,
            None,
            "no rule matched: bullish-and-confident: confidence 55 >= 60 is false",
        ),
        o(
            17,
            "AAPL",
            OutcomeKind::DuplicatePosition,
            None,
            "existing transaction 1 in OPENED status",
        ),
    ]
}

fn at_width(width: u16) -> TableOpts {
    TableOpts {
        width: Some(width),
        color: false,
    }
}

#[test]
fn tables_at_80_columns() {
    let o = at_width(80);
    insta::assert_snapshot!("transactions_80", transactions_table(&transactions(), &o));
    insta::assert_snapshot!("orders_80", orders_table(&orders(), &o));
    insta::assert_snapshot!("outcomes_80", outcomes_table(&outcomes(), &o));
}

#[test]
fn tables_at_200_columns() {
    let o = at_width(200);
    insta::assert_snapshot!("transactions_200", transactions_table(&transactions(), &o));
    insta::assert_snapshot!("orders_200", orders_table(&orders(), &o));
    insta::assert_snapshot!("outcomes_200", outcomes_table(&outcomes(), &o));
}

#[test]
fn cut_tables_fit_their_width_and_wide_ones_keep_every_cell_whole() {
    let width = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let cut = outcomes_table(&outcomes(), &at_width(80));
    assert!(width(&cut) <= 80, "{cut}");
    assert!(cut.contains('…'), "{cut}");
    let whole = outcomes_table(&outcomes(), &TableOpts::default());
    for o in outcomes() {
        assert!(whole.contains(&o.detail), "{whole}");
    }
    // Statuses and numbers are never cut, however narrow.
    let narrow = orders_table(&orders(), &at_width(60));
    for w in ["submitting", "rejected", "187.25", "103", "quantity"] {
        assert!(narrow.contains(w), "{w}: {narrow}");
    }
}

#[test]
fn colour_marks_the_status_words_only_when_asked() {
    let colored = TableOpts {
        width: None,
        color: true,
    };
    let t = transactions_table(&transactions(), &colored);
    assert!(t.contains('\u{1b}'), "{t}");
    let plain = transactions_table(&transactions(), &TableOpts::default());
    assert!(!plain.contains('\u{1b}'), "{plain}");
}

#[test]
fn the_binary_cuts_to_columns_unless_wide() {
    let dir = tempfile::tempdir().unwrap();
    let url = cmd::sqlite_url(dir.path());
    let config = cmd::config(&url, "");
    let long = "x".repeat(300);
    let line = format!(
        r#"{{"expert_id":1,"symbol":"AAPL","action":"BUY","confidence":80,"expected_profit_percent":5,"price_at_date":100,"risk_level":"LOW","time_horizon":"SHORT_TERM","details":"{long}"}}"#
    );
    std::fs::write(dir.path().join("r.jsonl"), format!("{line}\n")).unwrap();
    cmd::with_config(dir.path(), &config, &["import", "r.jsonl"]).expect(0, "import");
    cmd::with_config(dir.path(), &config, &["process", "--all"]).expect(0, "process");
    let run = |args: &[&str], columns: &str| {
        let mut c = common::bin();
        c.args(["--config", "tradewarden.toml"])
            .args(args)
            .current_dir(dir.path())
            .env("COLUMNS", columns);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let width = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let cut = run(&["outcomes"], "80");
    assert!(width(&cut) <= 80, "{cut}");
    assert!(cut.contains("1 outcome(s): 1 ordered"), "{cut}");
    let wide = run(&["outcomes", "--wide"], "80");
    assert!(width(&wide) > 80, "{wide}");
    let json = run(&["outcomes", "--json"], "80");
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "{json}"
    );
}
