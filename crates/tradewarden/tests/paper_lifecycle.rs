//! The paper broker moves with quotes (issue 9 item 4), on SQLite and PostgreSQL: a limit or
//! stop order rests until a new quote crosses it — `prices set`, `prices import` or a
//! recommendation's price — and then fills at that quote; the orders of a one-cancels-other
//! group cancel each other inside the broker; a cancel ends a resting order and reports a
//! filled one as filled; `accounts --json` shows cash, positions and equity moving with
//! quotes and with realised profit and loss.
//!
//! Orders go through the library's paper broker on the test's database, as the engine sends
//! them (tradewarden itself sends exit legs only once the lifecycle refresh exists); quotes
//! and the accounts go through the binary.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::ports::{
    AcceptsQuotes, BookScope, PaperBook, PaperLedger, PaperSave, Quote, StoredPaperOrder,
};
use tradewarden_engine::{Broker, BrokerError, BrokerOrder, OrderRequest, StoreError, SystemClock};

/// What the paper account starts with in [`write_config`].
const START: Decimal = dec!(1000000);

/// A database, a configuration for the binary on it, and the paper broker of its account.
struct Setup {
    config: PathBuf,
    broker: PaperBroker,
    _dir: tempfile::TempDir,
    db: TestDb,
}

impl Setup {
    /// `prices set` (which opens the paper account, as every command does) quotes each
    /// symbol at 100.
    async fn new(kind: DbKind, symbols: &[&str]) -> Setup {
        let db = TestDb::new(kind).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &db.url, 1, 30);
        let setup = Setup {
            broker: PaperBroker::new("paper", db.store().await, Arc::new(SystemClock)),
            config,
            _dir: dir,
            db,
        };
        for s in symbols {
            setup.quote(s, "100");
        }
        setup
    }

    /// Runs the binary; its stdout.
    fn tw(&self, args: &[&str]) -> String {
        let (status, out, err) = tw(&self.config, args, &[]);
        assert!(status.success(), "{args:?}: {err}");
        out
    }

    fn quote(&self, symbol: &str, price: &str) {
        self.tw(&["prices", "set", symbol, price]);
    }

    /// The paper account as `accounts --json` shows it.
    fn account(&self) -> Value {
        let all: Value = serde_json::from_str(&self.tw(&["accounts", "--json"])).unwrap();
        let [paper] = all.as_array().unwrap().as_slice() else {
            panic!("one account: {all}")
        };
        assert_eq!(
            (&paper["name"], &paper["broker"]),
            (&"paper".into(), &"paper".into())
        );
        paper.clone()
    }

    async fn submit(&self, order: OrderRequest) -> BrokerOrder {
        self.broker.submit(&order).await.unwrap()
    }

    async fn lookup(&self, ids: &[&str]) -> Vec<Option<BrokerOrder>> {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        self.broker
            .orders_by_client_ids(&ids)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }
}

fn order(id: &str, symbol: &str, side: Side, t: OrderType, price: Option<Decimal>) -> OrderRequest {
    OrderRequest {
        client_order_id: id.into(),
        symbol: symbol.into(),
        side,
        order_type: t,
        quantity: dec!(10),
        limit_price: price.filter(|_| t == OrderType::Limit),
        stop_price: price.filter(|_| t == OrderType::Stop),
        oco_group: None,
        attached_exits: None,
    }
}

fn num(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}"))
        .parse()
        .unwrap()
}

/// The account's position in `symbol`, if it holds one.
fn position<'a>(account: &'a Value, symbol: &str) -> Option<&'a Value> {
    account["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == symbol)
}

/// (quantity, avg_price, last_price, unrealized_pnl) of a position.
fn figures(p: &Value) -> (Decimal, Decimal, Decimal, Decimal) {
    (
        num(&p["quantity"]),
        num(&p["avg_price"]),
        num(&p["last_price"]),
        num(&p["unrealized_pnl"]),
    )
}

async fn a_resting_limit_fills_when_a_quote_crosses_it(kind: DbKind) {
    let s = Setup::new(kind, &["AAPL"]).await;
    let rest = s
        .submit(order(
            "buy-1",
            "AAPL",
            Side::Buy,
            OrderType::Limit,
            Some(dec!(95)),
        ))
        .await;
    assert_eq!(
        rest.status,
        OrderStatus::Accepted,
        "below the market, it rests"
    );
    let a = s.account();
    assert_eq!((num(&a["cash"]), num(&a["equity"])), (START, START));
    assert!(position(&a, "AAPL").is_none(), "{a}");
    // Not crossed yet.
    s.quote("AAPL", "95.01");
    assert_eq!(
        s.lookup(&["buy-1"]).await[0].as_ref().unwrap().status,
        OrderStatus::Accepted
    );
    assert_eq!(num(&s.account()["cash"]), START);
    // Crossed: filled whole, at the quote (better than its limit).
    s.quote("AAPL", "94.5");
    let filled = s.lookup(&["buy-1"]).await[0].clone().unwrap();
    assert_eq!(
        (filled.status, filled.filled_quantity, filled.avg_fill_price),
        (OrderStatus::Filled, dec!(10), Some(dec!(94.5)))
    );
    let a = s.account();
    assert_eq!(num(&a["cash"]), START - dec!(945));
    assert_eq!(num(&a["equity"]), START);
    let p = position(&a, "AAPL").unwrap();
    assert_eq!(figures(p), (dec!(10), dec!(94.5), dec!(94.5), dec!(0)));
    // Equity and the unrealised profit move with the quote; cash does not.
    s.quote("AAPL", "100");
    let a = s.account();
    assert_eq!(num(&a["cash"]), START - dec!(945));
    assert_eq!(num(&a["equity"]), START + dec!(55));
    let p = position(&a, "AAPL").unwrap();
    assert_eq!(figures(p), (dec!(10), dec!(94.5), dec!(100), dec!(55)));
    // A quote older than the stored one changes nothing, and crosses nothing.
    s.submit(order(
        "sell-1",
        "AAPL",
        Side::Sell,
        OrderType::Limit,
        Some(dec!(120)),
    ))
    .await;
    let old = Quote {
        symbol: "AAPL".into(),
        price: dec!(130),
        at: Utc::now() - chrono::Duration::hours(1),
    };
    assert_eq!(s.broker.record_quotes(&[old]).await.unwrap(), 0);
    assert_eq!(
        s.lookup(&["sell-1"]).await[0].as_ref().unwrap().status,
        OrderStatus::Accepted
    );
}
both!(a_resting_limit_fills_when_a_quote_crosses_it);

/// One position through its exit legs: (entry side, the quote on the way, the exit quote,
/// the leg that fills).
type Exit = (Side, &'static str, &'static str, &'static str);

async fn exit_legs_cancel_each_other_and_the_round_trip_shows_in_cash(kind: DbKind) {
    // Catches: a broker without one-cancels-other (the sibling fills later and opens a
    // position the other way), a short's profit with the wrong sign, equity that ignores
    // quotes.
    let cases: [(&str, Exit); 4] = [
        ("LONGTP", (Side::Buy, "105", "111", "tp")),
        ("LONGSL", (Side::Buy, "105", "94", "sl")),
        ("SHORTTP", (Side::Sell, "95", "89", "tp")),
        ("SHORTSL", (Side::Sell, "95", "106", "sl")),
    ];
    let symbols: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let s = Setup::new(kind, &symbols).await;
    for (symbol, (side, between, exit, fills)) in cases {
        let long = side == Side::Buy;
        let close = if long { Side::Sell } else { Side::Buy };
        let cash_before = num(&s.account()["cash"]);
        let entry = s
            .submit(order(
                &format!("{symbol}-entry"),
                symbol,
                side,
                OrderType::Market,
                None,
            ))
            .await;
        assert_eq!(entry.avg_fill_price, Some(dec!(100)), "{symbol}");
        // The legs of one exit structure: a limit take profit and a stop, one group.
        let (tp, sl) = if long {
            (dec!(110), dec!(95))
        } else {
            (dec!(90), dec!(105))
        };
        let group = Some(format!("tw-x-{symbol}-exit-1"));
        let leg = |role: &str, t, price| OrderRequest {
            oco_group: group.clone(),
            attached_exits: None,
            ..order(
                &format!("tw-x-{symbol}-{role}-1"),
                symbol,
                close,
                t,
                Some(price),
            )
        };
        for l in [
            leg("tp", OrderType::Limit, tp),
            leg("sl", OrderType::Stop, sl),
        ] {
            assert_eq!(s.submit(l).await.status, OrderStatus::Accepted, "{symbol}");
        }
        // On the way: both legs rest, equity and unrealised profit follow the quote.
        s.quote(symbol, between);
        let a = s.account();
        let p = position(&a, symbol).unwrap_or_else(|| panic!("{symbol}: {a}"));
        let signed = if long { dec!(10) } else { dec!(-10) };
        let between: Decimal = between.parse().unwrap();
        assert_eq!(
            figures(p),
            (signed, dec!(100), between, dec!(50)),
            "{symbol}"
        );
        assert_eq!(num(&a["equity"]), cash_before + dec!(50), "{symbol}");
        // The exit quote fills one leg at the quote and cancels the other.
        s.quote(symbol, exit);
        let tp_id = format!("tw-x-{symbol}-tp-1");
        let sl_id = format!("tw-x-{symbol}-sl-1");
        let found = s.lookup(&[&tp_id, &sl_id]).await;
        let (tp_now, sl_now) = (found[0].clone().unwrap(), found[1].clone().unwrap());
        let ((filled, canceled), canceled_price) = if fills == "tp" {
            ((tp_now, sl_now), sl)
        } else {
            ((sl_now, tp_now), tp)
        };
        let exit: Decimal = exit.parse().unwrap();
        assert_eq!(
            (filled.status, filled.avg_fill_price),
            (OrderStatus::Filled, Some(exit)),
            "{symbol}"
        );
        assert_eq!(canceled.status, OrderStatus::Canceled, "{symbol}");
        assert!(
            canceled
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("one-cancels-other"),
            "{symbol}: {canceled:?}"
        );
        // Flat, and the realised profit or loss is in the cash.
        let a = s.account();
        assert!(position(&a, symbol).is_none(), "{symbol}: {a}");
        let realised = (exit - dec!(100)) * signed;
        assert_eq!(num(&a["cash"]), cash_before + realised, "{symbol}");
        assert_eq!(num(&a["equity"]), cash_before + realised, "{symbol}");
        // A later quote through the canceled leg changes nothing.
        let through = if canceled_price > dec!(100) {
            canceled_price + dec!(5)
        } else {
            canceled_price - dec!(5)
        };
        s.quote(symbol, &through.to_string());
        assert!(position(&s.account(), symbol).is_none(), "{symbol}");
    }
}
both!(exit_legs_cancel_each_other_and_the_round_trip_shows_in_cash);

async fn a_recommendations_price_and_a_prices_file_fill_resting_orders_too(kind: DbKind) {
    // Catches: a quote path that stores the price without crossing the resting orders.
    let s = Setup::new(kind, &["AAPL"]).await;
    s.submit(order(
        "buy-1",
        "AAPL",
        Side::Buy,
        OrderType::Limit,
        Some(dec!(95)),
    ))
    .await;
    // A recommendation's price_at_date is a quote.
    let dir = tempfile::tempdir().unwrap();
    let recs = dir.path().join("r.jsonl");
    std::fs::write(
        &recs,
        r#"{"expert_id":1,"symbol":"AAPL","action":"HOLD","confidence":50,"expected_profit_percent":1,"price_at_date":94,"risk_level":"LOW","time_horizon":"SHORT_TERM"}"#,
    )
    .unwrap();
    s.tw(&["import", recs.to_str().unwrap()]);
    let buy = s.lookup(&["buy-1"]).await[0].clone().unwrap();
    assert_eq!(
        (buy.status, buy.avg_fill_price),
        (OrderStatus::Filled, Some(dec!(94)))
    );
    // A prices file is a path: the stop is crossed on the way down, though the file ends
    // above it; the stored quote is the newest.
    s.submit(order(
        "stop-1",
        "AAPL",
        Side::Sell,
        OrderType::Stop,
        Some(dec!(90)),
    ))
    .await;
    let at = |secs: i64| {
        (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let csv = dir.path().join("p.csv");
    std::fs::write(
        &csv,
        format!(
            "symbol,price,time\nAAPL,92,{}\nAAPL,89.5,{}\nAAPL,91,{}\n",
            at(1),
            at(2),
            at(3)
        ),
    )
    .unwrap();
    s.tw(&["prices", "import", csv.to_str().unwrap()]);
    let stop = s.lookup(&["stop-1"]).await[0].clone().unwrap();
    assert_eq!(
        (stop.status, stop.avg_fill_price),
        (OrderStatus::Filled, Some(dec!(89.5)))
    );
    let a = s.account();
    assert!(position(&a, "AAPL").is_none(), "{a}");
    assert_eq!(num(&a["cash"]), START - dec!(940) + dec!(895));
}
both!(a_recommendations_price_and_a_prices_file_fill_resting_orders_too);

async fn cancel_ends_a_resting_order_and_reports_a_filled_one(kind: DbKind) {
    // Catches: a cancel that errs on a filled order (a cancel racing a fill must report the
    // fill), or a canceled order that a later quote still fills.
    let s = Setup::new(kind, &["AAPL"]).await;
    s.submit(order(
        "rest",
        "AAPL",
        Side::Buy,
        OrderType::Limit,
        Some(dec!(90)),
    ))
    .await;
    s.submit(order("done", "AAPL", Side::Buy, OrderType::Market, None))
        .await;
    let canceled = s.broker.cancel("rest").await.unwrap();
    assert_eq!(canceled.status, OrderStatus::Canceled);
    assert_eq!(canceled.filled_quantity, dec!(0));
    let filled = s.broker.cancel("done").await.unwrap();
    assert_eq!(
        (filled.status, filled.filled_quantity, filled.avg_fill_price),
        (OrderStatus::Filled, dec!(10), Some(dec!(100)))
    );
    assert!(matches!(
        s.broker.cancel("never-sent").await,
        Err(BrokerError::UnknownOrder(id)) if id == "never-sent"
    ));
    s.quote("AAPL", "85");
    let found = s.lookup(&["rest", "never-sent", "done"]).await;
    assert_eq!(found[0].as_ref().unwrap().status, OrderStatus::Canceled);
    assert!(found[1].is_none(), "{found:?}");
    assert_eq!(found[2].as_ref().unwrap().status, OrderStatus::Filled);
    let a = s.account();
    assert_eq!(
        figures(position(&a, "AAPL").unwrap()).0,
        dec!(10),
        "only the market buy"
    );
}
both!(cancel_ends_a_resting_order_and_reports_a_filled_one);

async fn a_position_held_before_the_upgrade_takes_its_quote_as_average_price(kind: DbKind) {
    // Catches: a migration that leaves the cost basis at zero (a huge unrealised profit).
    let db = TestDb::new(kind).await;
    tradewarden_store::SqlStore::migrate_to(&db.url, 6)
        .await
        .unwrap();
    let store = tradewarden_store::db::Pool::connect(&db.url).await.unwrap();
    let now = Utc::now();
    for (sql, args) in [
        (
            "INSERT INTO paper_accounts (account, cash, version) VALUES ('paper', $1, 1)",
            vec![dec!(1000).into()],
        ),
        (
            "INSERT INTO paper_positions (account, symbol, quantity) VALUES ('paper', 'AAPL', $1)",
            vec![dec!(10).into()],
        ),
        (
            "INSERT INTO quotes (account, symbol, price, at) VALUES ('paper', 'AAPL', $1, $2)",
            vec![dec!(123.45).into(), now.into()],
        ),
    ] {
        store.execute(sql, &args).await.unwrap();
    }
    store.close().await;
    let broker = PaperBroker::new("paper", db.store().await, Arc::new(SystemClock));
    let held = broker.holdings().await.unwrap();
    assert_eq!(held.positions.len(), 1);
    let p = &held.positions[0];
    assert_eq!(
        (p.quantity, p.avg_price, p.last_price, p.unrealized_pnl()),
        (
            dec!(10),
            Some(dec!(123.45)),
            Some(dec!(123.45)),
            Some(dec!(0))
        )
    );
}
both!(a_position_held_before_the_upgrade_takes_its_quote_as_average_price);

/// A ledger that lets another process send an order between a decision's load and its save,
/// once.
struct OrderSentMeanwhile {
    inner: Arc<tradewarden_store::SqlStore>,
    other: PaperBroker,
    order: parking_lot::Mutex<Option<OrderRequest>>,
}

#[async_trait::async_trait]
impl PaperLedger for OrderSentMeanwhile {
    async fn open_paper_accounts(&self, accounts: &[(String, Decimal)]) -> Result<(), StoreError> {
        self.inner.open_paper_accounts(accounts).await
    }
    async fn load_book(
        &self,
        account: &str,
        scope: BookScope<'_>,
    ) -> Result<Option<PaperBook>, StoreError> {
        self.inner.load_book(account, scope).await
    }
    async fn save_book(
        &self,
        account: &str,
        save: &PaperSave,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let meanwhile = self.order.lock().take();
        if let Some(order) = meanwhile {
            self.other.submit(&order).await.unwrap();
        }
        self.inner.save_book(account, save).await
    }
    async fn load_paper_orders(
        &self,
        account: &str,
        client_order_ids: &[String],
    ) -> Result<Vec<StoredPaperOrder>, StoreError> {
        self.inner
            .load_paper_orders(account, client_order_ids)
            .await
    }
    async fn save_quotes(&self, account: &str, quotes: &[Quote]) -> Result<usize, StoreError> {
        self.inner.save_quotes(account, quotes).await
    }
}

async fn a_quote_decided_before_an_order_rested_is_decided_again(kind: DbKind) {
    // Catches: quotes saved without the book's version (the order that rested meanwhile would
    // stay resting under a quote that crosses it).
    let s = Setup::new(kind, &["AAPL"]).await;
    let store = s.db.store().await;
    let ledger = OrderSentMeanwhile {
        other: PaperBroker::new("paper", store.clone(), Arc::new(SystemClock)),
        inner: store,
        order: parking_lot::Mutex::new(Some(order(
            "buy-1",
            "AAPL",
            Side::Buy,
            OrderType::Limit,
            Some(dec!(95)),
        ))),
    };
    let quoting = PaperBroker::new("paper", Arc::new(ledger), Arc::new(SystemClock));
    let quote = Quote {
        symbol: "AAPL".into(),
        price: dec!(94),
        at: Utc::now(),
    };
    assert_eq!(quoting.record_quotes(&[quote]).await.unwrap(), 1);
    let buy = s.lookup(&["buy-1"]).await[0].clone().unwrap();
    assert_eq!(
        (buy.status, buy.avg_fill_price),
        (OrderStatus::Filled, Some(dec!(94)))
    );
}
both!(a_quote_decided_before_an_order_rested_is_decided_again);
