//! The open_positions run (issue 9 item 5) through the engine on the real store and paper
//! broker, on SQLite and PostgreSQL: close on a downgrade, move a stop up, refuse to move it
//! down, skip a position whose close is working, no position, and its own lock beside
//! enter_market's.
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
use tradewarden_engine::ports::{LeaseAttempt, LeaseHolder, ListFilter, Quote};
use tradewarden_engine::{Clock, RunStatus, SystemClock};

/// A one-rule ruleset: `trigger → action`.
fn one_rule(name: &str, trigger: &str, action: ActionSpec) -> Ruleset {
    Ruleset {
        name: name.into(),
        rules: vec![Rule {
            name: format!("{trigger}-rule"),
            continue_processing: false,
            triggers: vec![
                Trigger::from_spec(&TriggerSpec {
                    event: trigger.into(),
                    op: None,
                    value: None,
                })
                .unwrap(),
            ],
            actions: vec![RuleAction::from_spec(&action).unwrap()],
        }],
    }
}

fn close_on_downgrade() -> Ruleset {
    one_rule(
        "close-on-downgrade",
        "rating_downgraded",
        ActionSpec {
            action: "close".into(),
            ..ActionSpec::default()
        },
    )
}

fn trailing_stop() -> Ruleset {
    one_rule(
        "trailing-stop",
        "has_buy_position",
        ActionSpec {
            action: "adjust_stop_loss".into(),
            reference: Some("current_price".into()),
            value: Some(dec!(-3)),
            price: None,
        },
    )
}

/// Settings of expert 1 allowed to open and modify positions, its open_positions ruleset
/// `ruleset`.
fn managing(ruleset: Ruleset) -> TestSettings {
    let mut e = expert(1);
    e.allow_automated_trade_modification = true;
    e.open_positions_ruleset = Some(ruleset.name.clone());
    let mut s = settings(vec![e], dec!(100000));
    s.rulesets.insert(ruleset.name.clone(), ruleset);
    s.lock_timeout = Duration::from_millis(50);
    s
}

/// An hour ago, on the microsecond grid the store keeps.
fn hours_ago(h: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::hours(h)
}

/// Opens a long AAPL position at 100 through an enter_market run (the paper broker fills
/// the market entry at once), recommended two hours ago; returns its transaction.
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
    let t = transactions(h).await.remove(0);
    assert_eq!(t.status, TransactionStatus::Opened, "{t:?}");
    t
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

/// A newer recommendation of expert 1 on AAPL, an hour ago.
async fn recommend(h: &Harness, action: Action, price: Decimal) {
    h.manager
        .import(&[rec_at(
            1,
            "AAPL",
            action,
            dec!(80),
            dec!(10),
            price,
            hours_ago(1),
        )])
        .await
        .unwrap();
}

async fn transactions(h: &Harness) -> Vec<Transaction> {
    h.store.transactions(&ListFilter::default()).await.unwrap()
}

async fn orders(h: &Harness) -> Vec<Order> {
    h.store.orders(&ListFilter::default()).await.unwrap()
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

async fn close_on_a_downgrade(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, managing(close_on_downgrade()), plain).await;
    let t = open_long(&h).await;
    recommend(&h, Action::Sell, dec!(100)).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed, "{r:?}");
    assert_eq!(r.counts.considered, 1, "{r:?}");
    // Catches: a downgrade that does not close, or a close that is not carried out.
    let o = outcomes(&h).await;
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].outcome, OutcomeKind::Closed, "{o:?}");
    assert!(o[0].detail.contains("rating_downgraded"), "{o:?}");
    let close: Vec<Order> = orders(&h)
        .await
        .into_iter()
        .filter(|o| o.role == OrderRole::Close && o.transaction_id == t.id)
        .collect();
    assert_eq!(close.len(), 1, "one close order: {close:?}");
    assert_eq!(o[0].order_id, Some(close[0].id));
    assert_eq!(close[0].quantity, t.quantity);
    // Catches: a second close started for a position already closing.
    let again = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    let counts = again.counts.positions.unwrap();
    assert_eq!(counts.closed, 0, "{again:?}");
    let closes = orders(&h)
        .await
        .into_iter()
        .filter(|o| o.role == OrderRole::Close)
        .count();
    assert_eq!(closes, 1);
}

async fn move_a_stop_up_never_down(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, managing(trailing_stop()), plain).await;
    let t = open_long(&h).await;
    // The price rose to 110: the stop follows to 3 % below it.
    quote(&h, "AAPL", dec!(110)).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: a stop move not carried out, or taken from the recommendation's direction.
    assert_eq!(r.counts.positions.unwrap().adjusted, 1, "{r:?}");
    let t1 = transactions(&h)
        .await
        .into_iter()
        .find(|x| x.id == t.id)
        .unwrap();
    assert_eq!(t1.stop_loss, Some(dec!(106.7)), "{t1:?}");
    let legs = |os: Vec<Order>| -> Vec<Order> {
        os.into_iter()
            .filter(|o| o.role == OrderRole::StopLoss && !o.status.is_final())
            .collect()
    };
    let live = legs(orders(&h).await);
    assert_eq!(live.len(), 1, "one live stop leg: {live:?}");
    assert_eq!(live[0].stop_price, Some(dec!(106.7)), "{live:?}");
    // The price fell back to 105: 3 % below is 101.85, a looser stop: refused.
    quote(&h, "AAPL", dec!(105)).await;
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: a rule that loosens a stop (the ratchet removed).
    assert_eq!(r.counts.positions.unwrap().no_action, 1, "{r:?}");
    let o = outcomes(&h).await;
    assert_eq!(o[0].outcome, OutcomeKind::NoAction, "{o:?}");
    assert!(o[0].detail.contains("never loosened"), "{o:?}");
    let t2 = transactions(&h)
        .await
        .into_iter()
        .find(|x| x.id == t.id)
        .unwrap();
    assert_eq!(t2.stop_loss, Some(dec!(106.7)), "{t2:?}");
    assert_eq!(legs(orders(&h).await), live, "legs unchanged");
}

async fn a_position_whose_close_is_working_is_left_alone(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, managing(close_on_downgrade()), plain).await;
    let t = open_long(&h).await;
    recommend(&h, Action::Sell, dec!(100)).await;
    // A close requested meanwhile (by hand, say): the transaction is CLOSING.
    h.store
        .pool()
        .execute(
            &format!(
                "UPDATE transactions SET status = 'CLOSING' WHERE id = {}",
                t.id
            ),
            &[],
        )
        .await
        .unwrap();
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: a second close started while one is working.
    assert_eq!(r.counts.positions.unwrap().close_working, 1, "{r:?}");
    let o = outcomes(&h).await;
    assert_eq!(o[0].outcome, OutcomeKind::CloseWorking, "{o:?}");
    assert!(
        orders(&h).await.iter().all(|o| o.role != OrderRole::Close),
        "no close order sent"
    );
}

async fn a_recommendation_without_a_position(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness(&db, managing(close_on_downgrade()), plain).await;
    h.manager
        .import(&[
            rec_at(
                1,
                "MSFT",
                Action::Buy,
                dec!(80),
                dec!(10),
                dec!(100),
                hours_ago(2),
            ),
            rec_at(
                1,
                "MSFT",
                Action::Sell,
                dec!(80),
                dec!(10),
                dec!(100),
                hours_ago(1),
            ),
        ])
        .await
        .unwrap();
    let r = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    // Catches: a considered recommendation without its outcome, or the newest per symbol
    // not kept (two would be considered).
    assert_eq!(r.counts.considered, 1, "{r:?}");
    assert_eq!(r.counts.positions.unwrap().no_position, 1, "{r:?}");
    let o = outcomes(&h).await;
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].outcome, OutcomeKind::NoPosition, "{o:?}");
    assert_eq!(o[0].symbol, "MSFT");
}

async fn its_lock_is_its_own(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let h = harness_with_leases(
        &db,
        managing(close_on_downgrade()),
        plain,
        "this-process",
        Duration::from_secs(30),
        std::sync::Arc::new(SystemClock),
    )
    .await;
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    quote(&h, "AAPL", dec!(100)).await;
    // Another process holds the expert's open_positions lock.
    let other = LeaseHolder::anonymous("another-process");
    assert_eq!(
        h.store
            .try_acquire_lease(
                "expert_1_usecase_open_positions",
                &other,
                SystemClock.now(),
                Duration::from_secs(300),
            )
            .await
            .unwrap(),
        LeaseAttempt::Acquired
    );
    // Catches: open_positions running without its lock.
    let op = h
        .manager
        .process_open_positions(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(op.status, RunStatus::SkippedLocked, "{op:?}");
    assert!(outcomes(&h).await.is_empty());
    // Catches: one lock key for both use cases (enter_market would be skipped too).
    let em = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(em.status, RunStatus::Processed, "{em:?}");
    assert_eq!(em.counts.ordered, 1, "{em:?}");
}

async fn gates_say_why_a_run_is_skipped(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut s = managing(close_on_downgrade());
    s.experts
        .get_mut(&1)
        .unwrap()
        .allow_automated_trade_modification = false;
    let mut e2 = expert(2);
    e2.allow_automated_trade_modification = true;
    s.experts.insert(2, e2);
    let h = harness(&db, s, plain).await;
    // Catches: a run without permission, or without a ruleset, that still acts.
    let statuses: Vec<(i64, RunStatus)> = h
        .manager
        .process_all_open_positions(None, tradewarden_engine::RunTrigger::Cli)
        .await
        .iter()
        .map(|r| (r.expert_id, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, RunStatus::AutomationDisabled),
            (2, RunStatus::NoRuleset)
        ]
    );
}

/// A config of one expert that opens with confident-buy and closes on a downgrade.
fn cli_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let text = format!(
        "[database]\nurl = \"{url}\"\n\n[processing]\nlock_timeout_ms = 100\nlookback_days = 1\n\n\
         [[accounts]]\nname = \"paper\"\nbroker = \"paper\"\ncash = 100000\n\n\
         [[experts]]\nid = 1\nname = \"e1\"\naccount = \"paper\"\n\
         allow_automated_trade_opening = true\nallow_automated_trade_modification = true\n\
         enter_market_ruleset = \"confident-buy\"\nopen_positions_ruleset = \"close-on-downgrade\"\n\n\
         [[rulesets]]\nname = \"confident-buy\"\n\n[[rulesets.rules]]\nname = \"bullish\"\n\
         triggers = [{{ event = \"bullish\" }}]\nactions = [{{ action = \"buy\" }}]\n\n\
         [[rulesets]]\nname = \"close-on-downgrade\"\n\n[[rulesets.rules]]\nname = \"downgraded\"\n\
         triggers = [{{ event = \"rating_downgraded\" }}]\nactions = [{{ action = \"close\" }}]\n"
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One JSON line: expert 1's `action` on AAPL at 100, `hours` ago.
fn line(action: &str, hours: i64) -> String {
    serde_json::json!({
        "expert_id": 1,
        "symbol": "AAPL",
        "action": action,
        "confidence": 80,
        "expected_profit_percent": 10,
        "price_at_date": "100",
        "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM",
        "created_at": hours_ago(hours).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
    .to_string()
}

fn reports(out: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(out).expect("JSON reports");
    v.as_array().expect("an array").clone()
}

async fn process_runs_both_use_cases_and_one_on_request(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let config = cli_config(dir.path(), &db.url);
    let recs = dir.path().join("recs.jsonl");
    std::fs::write(&recs, line("BUY", 2)).unwrap();
    let (st, _, err) = tw(&config, &["import", recs.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    // Catches: `process` without --use-case not running open_positions after enter_market.
    let (st, out, err) = tw(&config, &["process", "--expert", "1"], &[]);
    assert!(st.success(), "{err}");
    let r = reports(&out);
    let use_cases: Vec<&str> = r.iter().map(|r| r["use_case"].as_str().unwrap()).collect();
    assert_eq!(use_cases, ["enter_market", "open_positions"], "{out}");
    assert_eq!(r[0]["counts"]["ordered"], 1, "{out}");
    assert!(
        r[0]["counts"].get("closed").is_none(),
        "enter_market keys unchanged: {out}"
    );
    assert_eq!(r[1]["counts"]["no_action"], 1, "{out}");
    // A downgrade: --use-case open_positions alone closes the position.
    std::fs::write(&recs, line("SELL", 1)).unwrap();
    let (st, _, err) = tw(&config, &["import", recs.to_str().unwrap()], &[]);
    assert!(st.success(), "{err}");
    let (st, out, err) = tw(
        &config,
        &["process", "--expert", "1", "--use-case", "open_positions"],
        &[],
    );
    assert!(st.success(), "{err}");
    let r = reports(&out);
    assert_eq!(r.len(), 1, "{out}");
    assert_eq!(r[0]["use_case"], "open_positions", "{out}");
    assert_eq!(r[0]["counts"]["closed"], 1, "{out}");
    let (st, out, err) = tw(&config, &["outcomes", "--json"], &[]);
    assert!(st.success(), "{err}");
    assert!(out.contains("\"closed\""), "{out}");
}

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
    close_on_a_downgrade,
    move_a_stop_up_never_down,
    a_position_whose_close_is_working_is_left_alone,
    a_recommendation_without_a_position,
    its_lock_is_its_own,
    gates_say_why_a_run_is_skipped,
    process_runs_both_use_cases_and_one_on_request,
);
