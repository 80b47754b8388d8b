//! `tradewarden accounts` (issue 9 item 7): per configured account its name, broker, cash,
//! equity and positions. The tables as a person reads them, pinned by insta snapshots at 80
//! and 200 columns; and end to end on SQLite and PostgreSQL: a fresh account shows its
//! starting cash, a position shows its average price, last price and unrealised profit,
//! `--json` is the contract's shape.

mod common;

use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tradewarden::cmd::accounts::AccountView;
use tradewarden::output::{TableOpts, accounts_tables};
use tradewarden_engine::ports::{HeldPosition, Holdings};

fn held(
    symbol: &str,
    quantity: Decimal,
    avg: Option<Decimal>,
    last: Option<Decimal>,
) -> HeldPosition {
    HeldPosition {
        symbol: symbol.into(),
        quantity,
        avg_price: avg,
        last_price: last,
    }
}

/// Two accounts: one long, short and unquoted; one empty.
fn accounts() -> Vec<AccountView> {
    let busy = Holdings {
        cash: dec!(81234.5),
        positions: vec![
            held("AAPL", dec!(40), Some(dec!(187.25)), Some(dec!(190.1))),
            held("MSFT", dec!(-12), Some(dec!(415.1)), Some(dec!(420))),
            held("NVDA", dec!(3.5), None, None),
        ],
    };
    let idle = Holdings {
        cash: dec!(100000),
        positions: Vec::new(),
    };
    vec![
        AccountView::new("main", "paper", &busy),
        AccountView::new("spare", "paper", &idle),
    ]
}

fn at_width(width: u16) -> TableOpts {
    TableOpts {
        width: Some(width),
        color: false,
    }
}

#[test]
fn accounts_tables_at_80_and_200_columns() {
    insta::assert_snapshot!("accounts_80", accounts_tables(&accounts(), &at_width(80)));
    insta::assert_snapshot!("accounts_200", accounts_tables(&accounts(), &at_width(200)));
}

#[test]
fn an_accounts_view_is_its_holdings_priced() {
    // Catches: equity without the positions, a short counted as an asset, P&L with the wrong
    // sign.
    let [main, _] = accounts().try_into().unwrap();
    // 81234.5 + 40 × 190.1 − 12 × 420 + 3.5 × 0 (no price known)
    assert_eq!(main.equity, dec!(83798.5));
    let pnl: Vec<Option<Decimal>> = main.positions.iter().map(|p| p.unrealized_pnl).collect();
    assert_eq!(pnl, [Some(dec!(114)), Some(dec!(-58.8)), None]);
    assert_eq!(
        serde_json::to_value(&main.positions[1]).unwrap(),
        json!({"symbol": "MSFT", "quantity": "-12", "avg_price": "415.1", "last_price": "420", "unrealized_pnl": "-58.8"})
    );
}

async fn a_fresh_account_shows_its_starting_cash(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, 30);
    let (status, out, err) = tw(&config, &["accounts", "--json"], &[]);
    assert!(status.success(), "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        all,
        json!([{"name": "paper", "broker": "paper", "cash": "1000000", "equity": "1000000", "positions": []}])
    );
    let (status, out, err) = tw(&config, &["accounts"], &[]);
    assert!(status.success(), "{err}");
    assert!(out.contains("1 account(s), 0 position(s)"), "{out}");
    assert!(out.contains("paper") && out.contains("1000000"), "{out}");
}
both!(a_fresh_account_shows_its_starting_cash);

async fn a_run_shows_its_positions_in_the_account(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, 1, 30);
    let recs = dir.path().join("r.jsonl");
    std::fs::write(
        &recs,
        r#"{"expert_id":1,"symbol":"AAPL","action":"BUY","confidence":80,"expected_profit_percent":5,"price_at_date":200,"risk_level":"LOW","time_horizon":"SHORT_TERM"}"#,
    )
    .unwrap();
    let (status, _, err) = tw(&config, &["run", recs.to_str().unwrap()], &[]);
    assert!(status.success(), "{err}");
    let (status, _, err) = tw(&config, &["prices", "set", "AAPL", "210"], &[]);
    assert!(status.success(), "{err}");
    let (status, out, err) = tw(&config, &["accounts", "--json"], &[]);
    assert!(status.success(), "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    let paper = &all[0];
    let p = &paper["positions"][0];
    let num = |v: &Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    let quantity = num(&p["quantity"]);
    assert!(quantity > dec!(0), "{out}");
    assert_eq!(
        (&p["symbol"], num(&p["avg_price"]), num(&p["last_price"])),
        (&json!("AAPL"), dec!(200), dec!(210))
    );
    assert_eq!(num(&p["unrealized_pnl"]), quantity * dec!(10));
    assert_eq!(num(&paper["cash"]), dec!(1000000) - quantity * dec!(200));
    assert_eq!(num(&paper["equity"]), dec!(1000000) + quantity * dec!(10));
    let (status, table, err) = tw(&config, &["accounts"], &[]);
    assert!(status.success(), "{err}");
    assert!(
        table.contains("unrealized_pnl") && table.contains("1 account(s), 1 position(s)"),
        "{table}"
    );
}
both!(a_run_shows_its_positions_in_the_account);
