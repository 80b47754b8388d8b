//! `increase_instrument_share` / `decrease_instrument_share` in the open_positions run
//! (issue 9 item 1) through the engine on the real store and paper broker, on SQLite and
//! PostgreSQL: an increase grows the position and its legs, a decrease shrinks both and
//! keeps it OPENED, a decrease to 0 % closes it, and a position already at its target is
//! left alone.
//!
//! Every test names, in a `// Catches:` comment, the removal that would make it fail.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden_domain::rules::{ActionSpec, Rule, RuleAction, Ruleset, Trigger, TriggerSpec};
use tradewarden_domain::{
    Action, Order, OrderRole, Outcome, OutcomeKind, Transaction, TransactionStatus, UseCase,
};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::ports::{ListFilter, Quote};
use tradewarden_engine::{Clock, SystemClock};

/// A ruleset of one rule: on a long, `action` to `value` % of virtual equity.
fn share_rule(action: &str, value: Decimal) -> Ruleset {
    Ruleset {
        name: format!("{action}-{value}"),
        rules: vec![Rule {
            name: "share".into(),
            continue_processing: false,
            triggers: vec![
                Trigger::from_spec(&TriggerSpec {
                    event: "has_buy_position".into(),
                    op: None,
                    value: None,
                })
                .unwrap(),
            ],
            actions: vec![
                RuleAction::from_spec(&ActionSpec {
                    action: action.into(),
                    value: Some(value),
                    ..ActionSpec::default()
                })
                .unwrap(),
            ],
        }],
    }
}

/// Expert 1 managing its positions with `ruleset`; its safeguard stop `stop_percent` below
/// the entry.
fn managing(ruleset: Ruleset, stop_percent: Decimal) -> TestSettings {
    let mut e = expert(1);
    e.allow_automated_trade_modification = true;
    e.open_positions_ruleset = Some(ruleset.name.clone());
    e.exits.min_stop_loss_percent = stop_percent;
    let mut s = settings(vec![e], dec!(100000));
    s.rulesets.insert(ruleset.name.clone(), ruleset);
    s.lock_timeout = Duration::from_millis(50);
    s
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::hours(h)
}

/// Sets the paper account's quote of `symbol` directly (no resting order is crossed).
async fn quote(h: &Harness, symbol: &str, price: Decimal) {
    h.store
        .save_quotes(
            "paper",
            &[Quote {
                symbol: symbol.into(),
                price,
                at: SystemClock.now(),
            }],
        )
        .await
        .unwrap();
}

/// A long of AAPL at 100 through an enter_market run: 100 units (10 % of 100,000, the
/// per-instrument cap), its safeguard stop resting at the broker; returns its transaction.
async fn open_long(h: &Harness) -> Transaction {
    quote(h, "AAPL", dec!(100)).await;
    h.manager
        .import(&[rec_at(
            1,
            "AAPL",
            Action::Buy,
            dec!(80),
            dec!(10),
            dec!(100),
            hours_ago(2),
        )])
        .await
        .unwrap();
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.ordered, 1, "{r:?}");
    // The refresh places its legs at the broker.
    h.manager.refresh().await.unwrap();
    let t = transaction(h).await;
    assert_eq!(
        (t.status, t.quantity),
        (TransactionStatus::Opened, dec!(100)),
        "{t:?}"
    );
    let stops = live_stops(h).await;
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].1.ends_with("-sl-1"), "{stops:?}");
    t
}

async fn transaction(h: &Harness) -> Transaction {
    h.store
        .transactions(&ListFilter::default())
        .await
        .unwrap()
        .remove(0)
}

async fn orders(h: &Harness) -> Vec<Order> {
    h.store.orders(&ListFilter::default()).await.unwrap()
}

/// The live stop legs: (quantity, client id).
async fn live_stops(h: &Harness) -> Vec<(Decimal, String)> {
    orders(h)
        .await
        .into_iter()
        .filter(|o| o.role == OrderRole::StopLoss && !o.status.is_final())
        .map(|o| (o.quantity, o.client_order_id))
        .collect()
}

/// The open_positions outcomes, newest first.
async fn outcomes(h: &Harness) -> Vec<Outcome> {
    let mut o: Vec<Outcome> = h
        .store
        .outcomes(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.use_case == UseCase::OpenPositions)
        .collect();
    o.sort_by_key(|o| std::cmp::Reverse(o.decided_at));
    o
}

async fn an_increase_grows_the_position_and_its_legs(kind: DbKind) {
    let db = TestDb::new(kind).await;
    // The stop 60 % below the entry, so that a quote of 50 does not reach it.
    let h = harness(
        &db,
        managing(share_rule("increase_instrument_share", dec!(8)), dec!(60)),
        plain,
    )
    .await;
    let t = open_long(&h).await;
    // At 50 the holding is 5,000 of 95,000: 5.3 %. To 8 % (7,600): 52 more.
    quote(&h, "AAPL", dec!(50)).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.positions.unwrap().adjusted, 1, "{r:?}");
    let o = outcomes(&h).await;
    // Catches: a share action not carried out, or sized from another base.
    assert_eq!(o[0].outcome, OutcomeKind::Adjusted, "{o:?}");
    assert!(
        o[0].detail
            .contains("instrument share 5.3% → 8% of virtual equity: buy 52"),
        "{o:?}"
    );
    let add: Vec<Order> = orders(&h)
        .await
        .into_iter()
        .filter(|o| o.role == OrderRole::Add)
        .collect();
    assert_eq!(add.len(), 1, "{add:?}");
    assert_eq!(o[0].order_id, Some(add[0].id));
    let id = &add[0].client_order_id;
    assert!(
        id.starts_with("tw-") && id.ends_with(&format!("-{}-add-1", t.id)),
        "{id}"
    );
    // Catches: a fill that does not grow the transaction or average its open price.
    let t1 = transaction(&h).await;
    assert_eq!(
        (t1.status, t1.quantity, t1.open_price),
        (
            TransactionStatus::Opened,
            dec!(152),
            Some(dec!(82.89473684))
        ),
        "{t1:?}"
    );
    // Catches: legs left at the old size, or two live structures.
    let stops = live_stops(&h).await;
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].0, dec!(152), "{stops:?}");
    assert!(stops[0].1.ends_with("-sl-2"), "{stops:?}");
    // Now at 7,600 of 95,000 = 8 %: nothing more to buy.
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.positions.unwrap().no_action, 1, "{r:?}");
    assert!(
        outcomes(&h).await[0]
            .detail
            .contains("already at or above 8%")
    );
    assert_eq!(transaction(&h).await.quantity, dec!(152));
}

async fn a_decrease_shrinks_it_and_keeps_it_opened(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(
        &db,
        managing(share_rule("decrease_instrument_share", dec!(4)), dec!(7)),
        plain,
    )
    .await;
    open_long(&h).await;
    // 10,000 of 100,000 = 10 %; to 4 % (4,000): sell 60.
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.positions.unwrap().adjusted, 1, "{r:?}");
    let o = outcomes(&h).await;
    assert!(
        o[0].detail
            .contains("instrument share 10% → 4% of virtual equity: sell 60"),
        "{o:?}"
    );
    // Catches: a partial close that closes the transaction or does not shrink it.
    let t = transaction(&h).await;
    assert_eq!(
        (t.status, t.quantity, t.open_price),
        (TransactionStatus::Opened, dec!(40), Some(dec!(100))),
        "{t:?}"
    );
    let closes: Vec<Order> = orders(&h)
        .await
        .into_iter()
        .filter(|o| o.role == OrderRole::Close)
        .collect();
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].quantity, dec!(60));
    // Catches: legs that would sell more than is held.
    let stops = live_stops(&h).await;
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].0, dec!(40), "{stops:?}");
    assert!(stops[0].1.ends_with("-sl-2"), "{stops:?}");
    // At 4 % already: no action.
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.counts.positions.unwrap().no_action, 1, "{r:?}");
    assert!(
        outcomes(&h).await[0]
            .detail
            .contains("already at or below 4%")
    );
}

async fn a_decrease_to_zero_closes_it(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(
        &db,
        managing(share_rule("decrease_instrument_share", dec!(0)), dec!(7)),
        plain,
    )
    .await;
    open_long(&h).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: 0 % taken as a partial close keeping one unit.
    assert_eq!(r.counts.positions.unwrap().closed, 1, "{r:?}");
    h.manager.refresh().await.unwrap();
    let t = transaction(&h).await;
    assert_eq!(
        (t.status, t.close_reason.as_deref()),
        (TransactionStatus::Closed, Some("rule")),
        "{t:?}"
    );
}

async fn already_at_target_is_left_alone(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(
        &db,
        managing(share_rule("increase_instrument_share", dec!(8)), dec!(7)),
        plain,
    )
    .await;
    open_long(&h).await;
    let before = orders(&h).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: an order sent for a position already above its target.
    assert_eq!(r.counts.positions.unwrap().no_action, 1, "{r:?}");
    let o = outcomes(&h).await;
    assert!(o[0].detail.contains("already at or above 8%"), "{o:?}");
    assert_eq!(orders(&h).await, before);
    assert_eq!(transaction(&h).await.quantity, dec!(100));
}

/// A config of one expert that opens with `buy` and grows its holding to 8 % of virtual
/// equity; its safeguard stop 60 % below the entry.
fn cli_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let text = format!(
        "[database]\nurl = \"{url}\"\n\n[processing]\nlock_timeout_ms = 100\nlookback_days = 1\n\n\
         [[accounts]]\nname = \"paper\"\nbroker = \"paper\"\ncash = 100000\n\n\
         [[experts]]\nid = 1\nname = \"e1\"\naccount = \"paper\"\n\
         allow_automated_trade_opening = true\nallow_automated_trade_modification = true\n\
         min_stop_loss_percent = 60\n\
         enter_market_ruleset = \"confident-buy\"\nopen_positions_ruleset = \"grow\"\n\n\
         [[rulesets]]\nname = \"confident-buy\"\n\n[[rulesets.rules]]\nname = \"bullish\"\n\
         triggers = [{{ event = \"bullish\" }}]\nactions = [{{ action = \"buy\" }}]\n\n\
         [[rulesets]]\nname = \"grow\"\n\n[[rulesets.rules]]\nname = \"to-8\"\n\
         triggers = [{{ event = \"has_buy_position\" }}]\n\
         actions = [{{ action = \"increase_instrument_share\", value = 8 }}]\n"
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How many orders the paper broker received under a client id ending in `suffix`.
async fn at_broker(store: &tradewarden_store::SqlStore, suffix: &str) -> i64 {
    store
        .pool()
        .fetch(
            &format!(
                "SELECT COUNT(*) AS n FROM paper_orders WHERE client_order_id LIKE '%{suffix}'"
            ),
            &[],
        )
        .await
        .unwrap()[0]
        .i64("n")
        .unwrap()
}

/// Through the binary: a long of 100 at 100, the quote falls to 50, `process --use-case
/// open_positions` buys 52 more. With `fault`, the process dies once the order is stored;
/// `reconcile` and `refresh` then finish it.
async fn through_the_binary(kind: DbKind, fault: Option<&str>) {
    let db = TestDb::new(kind).await;
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let config = cli_config(dir.path(), &db.url);
    let ok = |args: &[&str], env: &[(&str, &str)]| {
        let (st, out, err) = tw(&config, args, env);
        assert!(st.success(), "{args:?}: {err}");
        out
    };
    ok(&["prices", "set", "AAPL", "100"], &[]);
    let recs = dir.path().join("recs.jsonl");
    let line = serde_json::json!({
        "expert_id": 1, "symbol": "AAPL", "action": "BUY", "confidence": 80,
        "expected_profit_percent": 10, "price_at_date": "100", "risk_level": "LOW",
        "time_horizon": "SHORT_TERM",
        "created_at": hours_ago(2).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    std::fs::write(&recs, format!("{line}\n")).unwrap();
    ok(&["import", recs.to_str().unwrap()], &[]);
    ok(
        &["process", "--expert", "1", "--use-case", "enter_market"],
        &[],
    );
    ok(&["prices", "set", "AAPL", "50"], &[]);
    let args = ["process", "--expert", "1", "--use-case", "open_positions"];
    match fault {
        Some(point) => {
            let (st, _, err) = tw(&config, &args, &[("TRADEWARDEN_FAULT", point)]);
            assert!(!st.success(), "the run must die: {err}");
            assert!(err.contains(&format!("aborting at {point}")), "{err}");
            // Stored, not sent.
            assert_eq!(at_broker(&store, "-add-1").await, 0);
            ok(&["reconcile"], &[]);
            ok(&["refresh"], &[]);
        }
        None => {
            let out = ok(&args, &[]);
            assert!(out.contains("\"adjusted\": 1"), "{out}");
            let out = ok(&["outcomes", "--json"], &[]);
            assert!(
                out.contains("instrument share 5.3% → 8% of virtual equity: buy 52"),
                "{out}"
            );
        }
    }
    // Catches: an addition sent twice (or never), the quantity not grown, the legs not
    // resized, two live structures.
    assert_eq!(at_broker(&store, "-add-1").await, 1);
    let t = store
        .transactions(&ListFilter::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (t.status, t.quantity, t.open_price),
        (
            TransactionStatus::Opened,
            dec!(152),
            Some(dec!(82.89473684))
        ),
        "{t:?}"
    );
    let stops: Vec<Order> = store
        .orders(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.role == OrderRole::StopLoss && !o.status.is_final())
        .collect();
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].quantity, dec!(152), "{stops:?}");
    let held = store
        .pool()
        .fetch(
            "SELECT COUNT(*) AS n FROM paper_orders WHERE status = 'accepted'",
            &[],
        )
        .await
        .unwrap()[0]
        .i64("n")
        .unwrap();
    assert_eq!(held, 1, "one stop resting at the broker");
    // At 8 % now: the next run buys nothing.
    let out = ok(&args, &[]);
    assert!(out.contains("\"no_action\": 1"), "{out}");
    assert_eq!(at_broker(&store, "-add-2").await, 0);
}

async fn through_the_binary_once(kind: DbKind) {
    through_the_binary(kind, None).await;
}

// Catches: a share order sent before it is stored, or never settled after a crash.
async fn a_crash_after_storing_the_order(kind: DbKind) {
    through_the_binary(kind, Some("after_share_order_stored")).await;
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
crash!(a_crash_after_storing_the_order);

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::DbKind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::DbKind::Postgres).await;
                }
            )*
        }
    };
}

both!(
    an_increase_grows_the_position_and_its_legs,
    a_decrease_shrinks_it_and_keeps_it_opened,
    a_decrease_to_zero_closes_it,
    already_at_target_is_left_alone,
    through_the_binary_once,
);
