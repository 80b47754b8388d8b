//! The Alpaca broker against the fake Alpaca (real HTTP on loopback): every call of the
//! Broker trait, each failure class, exactly-once submission and the rate limit.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden_brokers::AlpacaBroker;
use tradewarden_brokers::alpaca::fake::FakeAlpaca;
use tradewarden_brokers::alpaca::{ClientSettings, RateLimit, RetryPolicy, Secret, wire};
use tradewarden_domain::{OrderStatus, OrderType, Side};
use tradewarden_engine::{Broker, BrokerError, OrderRequest};

const KEY_ID: &str = "PKTESTKEYID0001";
const SECRET: &str = "s3cr3t-Very-Private-Text";

fn settings(fake: &FakeAlpaca, secret: &str) -> ClientSettings {
    ClientSettings {
        account: "alpaca-paper".into(),
        base_url: fake.url.clone(),
        data_url: fake.url.clone(),
        key_id: Secret::new(KEY_ID),
        secret_key: Secret::new(secret),
        retry: RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        },
        request_timeout: Duration::from_millis(800),
        rate_limit: RateLimit::ALPACA,
    }
}

async fn started() -> (FakeAlpaca, AlpacaBroker) {
    let fake = FakeAlpaca::start(KEY_ID, SECRET).await;
    fake.set_price("AAPL", dec!(187.25));
    fake.set_price("MSFT", dec!(410.5));
    let broker = AlpacaBroker::new(settings(&fake, SECRET), false).unwrap();
    (fake, broker)
}

fn market(id: &str, symbol: &str, side: Side, quantity: Decimal) -> OrderRequest {
    OrderRequest {
        client_order_id: id.into(),
        symbol: symbol.into(),
        side,
        order_type: OrderType::Market,
        quantity,
        limit_price: None,
        stop_price: None,
        oco_group: None,
        attached_exits: None,
    }
}

fn limit(id: &str, price: Decimal) -> OrderRequest {
    OrderRequest {
        order_type: OrderType::Limit,
        limit_price: Some(price),
        ..market(id, "AAPL", Side::Buy, dec!(5))
    }
}

#[tokio::test]
async fn a_market_order_is_filled_and_found_by_its_client_order_id() {
    let (_fake, broker) = started().await;
    let placed = broker
        .submit(&market("tw-1-entry", "AAPL", Side::Buy, dec!(10)))
        .await
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Filled);
    assert_eq!(placed.avg_fill_price, Some(dec!(187.25)));
    assert_eq!(placed.symbol.as_deref(), Some("AAPL"));
    assert_eq!(placed.side, Some(Side::Buy));
    assert_eq!(placed.quantity, Some(dec!(10)));

    let found = broker
        .order_by_client_id("tw-1-entry")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.broker_order_id, placed.broker_order_id);
    assert_eq!(found.filled_quantity, dec!(10));
    assert_eq!(
        broker.order_by_client_id("tw-never-sent").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn many_orders_are_looked_up_with_one_list_call() {
    // Catches: a refresh that asks once per order (against Alpaca's rate limit).
    let (fake, broker) = started().await;
    broker
        .submit(&market("tw-a", "AAPL", Side::Buy, dec!(1)))
        .await
        .unwrap();
    broker.submit(&limit("tw-b", dec!(150))).await.unwrap();
    let before = fake.received().len();
    let ids: Vec<String> = ["tw-a", "tw-b", "tw-missing"].map(String::from).to_vec();
    let answers = broker.orders_by_client_ids(&ids).await;
    let statuses: Vec<Option<OrderStatus>> = answers
        .into_iter()
        .map(|a| a.unwrap().map(|o| o.status))
        .collect();
    assert_eq!(
        statuses,
        [Some(OrderStatus::Filled), Some(OrderStatus::Accepted), None]
    );
    let calls = &fake.received()[before..];
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", "/v2/orders")
    );
}

#[tokio::test]
async fn a_reused_client_order_id_places_no_second_order() {
    // Catches: a 422 for a used id taken as a rejection (or sent again).
    let (fake, broker) = started().await;
    let order = market("tw-dup", "AAPL", Side::Buy, dec!(3));
    broker.submit(&order).await.unwrap();
    let again = broker.submit(&order).await;
    assert_eq!(
        again,
        Err(BrokerError::DuplicateClientOrderId("tw-dup".into()))
    );
    assert_eq!(fake.order_count(), 1);
    // The engine resolves it by a look-up, which finds the first.
    let found = broker.order_by_client_id("tw-dup").await.unwrap().unwrap();
    assert_eq!(found.status, OrderStatus::Filled);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    // Catches: a throttled submission given up on, or a Retry-After ignored.
    let captured = Captured::default();
    let _guard = captured.install();
    let (fake, broker) = started().await;
    fake.throttle(2, 1);
    let placed = broker
        .submit(&market("tw-429", "AAPL", Side::Buy, dec!(1)))
        .await
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Filled);
    assert_eq!(fake.count("POST", "/v2/orders"), 3);
    assert_eq!(fake.order_count(), 1);
    // Waited as told: before each repetition the client chose a wait of at least the
    // Retry-After (its backoff alone would be 5 to 20 ms here), and said so.
    let log = captured.lines();
    let waits: Vec<(u64, u64)> = log
        .iter()
        .filter(|l| l.contains("HTTP 429"))
        .map(|l| (field(l, "wait_ms"), field(l, "retry_after_ms")))
        .collect();
    assert_eq!(waits.len(), 2, "{log:?}");
    for (wait, retry_after) in waits {
        assert_eq!(retry_after, 1000, "{log:?}");
        assert!(wait >= retry_after, "{log:?}");
    }
}

/// What the client logs, captured: a WARN-level fmt subscriber writing to a buffer, the
/// default of the calling thread while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The number after `name=` in a log line (0 when absent).
fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_500s_then_success_place_exactly_one_order() {
    let (fake, broker) = started().await;
    fake.fail_with_500(2);
    let placed = broker
        .submit(&market("tw-500", "AAPL", Side::Sell, dec!(2)))
        .await
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Filled);
    assert_eq!(fake.order_count(), 1);
}

#[tokio::test]
async fn too_many_500s_leave_the_order_unknown_not_rejected() {
    // Catches: a server failure recorded as a refusal (the order could exist).
    let (fake, broker) = started().await;
    fake.fail_with_500(100);
    let answer = broker
        .submit(&market("tw-down", "AAPL", Side::Buy, dec!(1)))
        .await;
    assert!(
        matches!(&answer, Err(e @ BrokerError::Unavailable(_)) if e.is_retryable()),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_submission_timed_out_after_acceptance_is_looked_up_not_resent() {
    // Catches: a timed-out order sent again (two orders at Alpaca), or taken as failed.
    let (fake, broker) = started().await;
    fake.hang_after_accept(1);
    let placed = broker
        .submit(&market("tw-hang", "AAPL", Side::Buy, dec!(4)))
        .await
        .unwrap();
    assert_eq!(placed.client_order_id, "tw-hang");
    assert_eq!(placed.status, OrderStatus::Filled);
    assert_eq!(fake.order_count(), 1);
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    // The look-up came right after the timed-out submission, before anything else.
    let received = fake.received();
    assert_eq!(received[1].path, "/v2/orders:by_client_order_id");
}

#[tokio::test]
async fn a_bad_key_is_unauthorized_naming_the_account_and_no_secret() {
    let fake = FakeAlpaca::start(KEY_ID, SECRET).await;
    fake.set_price("AAPL", dec!(1));
    let wrong = "wrong-Secret-Text-42";
    let broker = AlpacaBroker::new(settings(&fake, wrong), false).unwrap();
    let errors = [
        broker.account().await.unwrap_err(),
        broker
            .submit(&market("tw-x", "AAPL", Side::Buy, dec!(1)))
            .await
            .unwrap_err(),
        broker.positions().await.unwrap_err(),
    ];
    for e in &errors {
        assert!(matches!(e, BrokerError::Unauthorized(_)), "{e:?}");
        assert!(!e.is_retryable());
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("alpaca-paper"), "{shown}");
        assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");
    }
    let debug = format!("{broker:?}");
    assert!(!debug.contains(wrong) && !debug.contains(KEY_ID), "{debug}");
    // Final: asked once each, not retried.
    assert_eq!(fake.received().len(), 3);
    assert_eq!(fake.order_count(), 0);
}

#[tokio::test]
async fn a_refused_order_is_rejected_with_alpacas_message() {
    let (fake, broker) = started().await;
    let answer = broker
        .submit(&market("tw-unknown", "NOPE", Side::Buy, dec!(1)))
        .await;
    assert_eq!(
        answer,
        Err(BrokerError::Rejected("asset \"NOPE\" not found".into()))
    );
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
}

#[tokio::test]
async fn a_burst_of_250_orders_stays_within_the_rate_limit_at_the_server() {
    // Catches: a limiter per task instead of per account, a bucket that lets twice the
    // budget through in one window, or no limiter. Counts requests, not our speed.
    let fake = FakeAlpaca::start(KEY_ID, SECRET).await;
    fake.set_price("AAPL", dec!(10));
    fake.set_cash(dec!(1000000));
    let limit = RateLimit {
        requests: 50,
        window: Duration::from_secs(1),
    };
    let broker = Arc::new(
        AlpacaBroker::new(
            ClientSettings {
                rate_limit: limit,
                request_timeout: Duration::from_secs(10),
                ..settings(&fake, SECRET)
            },
            false,
        )
        .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..250 {
        let broker = broker.clone();
        tasks.spawn(async move {
            broker
                .submit(&market(
                    &format!("tw-burst-{i}"),
                    "AAPL",
                    Side::Buy,
                    dec!(1),
                ))
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap().status, OrderStatus::Filled);
    }
    assert_eq!(fake.order_count(), 250);
    let at: Vec<_> = fake.received().iter().map(|r| r.at).collect();
    let busiest = at
        .iter()
        .map(|s| {
            at.iter()
                .filter(|t| **t >= *s && **t < *s + limit.window)
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 50, "{busiest} requests in one window");
}

#[tokio::test]
async fn account_positions_holdings_and_quotes_read_alpacas_shapes() {
    let (fake, broker) = started().await;
    broker
        .submit(&market("tw-l", "AAPL", Side::Buy, dec!(10)))
        .await
        .unwrap();
    broker
        .submit(&market("tw-s", "MSFT", Side::Sell, dec!(2)))
        .await
        .unwrap();
    fake.set_price("AAPL", dec!(190));
    let cash = dec!(100000) - dec!(1872.5) + dec!(821);
    let account = broker.account().await.unwrap();
    assert_eq!(account.cash, cash);
    assert_eq!(account.balance, cash + dec!(1900) - dec!(821));
    let mut positions = broker.positions().await.unwrap();
    positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    let signed: Vec<(String, Decimal)> = positions
        .into_iter()
        .map(|p| (p.symbol, p.quantity))
        .collect();
    assert_eq!(
        signed,
        [("AAPL".into(), dec!(10)), ("MSFT".into(), dec!(-2))]
    );
    let holdings = broker.holdings().await.unwrap();
    assert_eq!(holdings.cash, cash);
    assert_eq!(holdings.positions[0].avg_price, Some(dec!(187.25)));
    assert_eq!(holdings.positions[0].last_price, Some(dec!(190)));
    let quotes = broker
        .quotes(&["AAPL".into(), "MSFT".into(), "NOPE".into()])
        .await
        .unwrap();
    assert_eq!(quotes.len(), 2);
    assert_eq!(quotes["MSFT"], dec!(410.5));
    assert!(broker.accepts_quotes().is_none());
}

#[tokio::test]
async fn cancel_ends_a_working_order_and_reports_an_ended_one_as_it_is() {
    let (fake, broker) = started().await;
    broker.submit(&limit("tw-rest", dec!(150))).await.unwrap();
    broker
        .submit(&market("tw-done", "AAPL", Side::Buy, dec!(1)))
        .await
        .unwrap();
    assert_eq!(
        broker.cancel("tw-rest").await.unwrap().status,
        OrderStatus::Canceled
    );
    assert_eq!(fake.order_status("tw-rest").as_deref(), Some("canceled"));
    assert_eq!(
        broker.cancel("tw-done").await.unwrap().status,
        OrderStatus::Filled
    );
    assert_eq!(
        broker.cancel("tw-nothing").await,
        Err(BrokerError::UnknownOrder("tw-nothing".into()))
    );
}

#[tokio::test]
async fn clock_assets_and_replace_speak_alpacas_api() {
    let (fake, broker) = started().await;
    let client = broker.client();
    assert!(client.clock().await.unwrap().is_open);
    fake.set_market_open(false);
    assert!(!client.clock().await.unwrap().is_open);
    let asset = client.asset("AAPL").await.unwrap().unwrap();
    assert!(asset.tradable && asset.fractionable && asset.shortable);
    assert_eq!(client.asset("NOPE").await.unwrap(), None);

    let placed = broker.submit(&limit("tw-move", dec!(150))).await.unwrap();
    let replaced = client
        .replace_order(
            placed.broker_order_id.as_deref().unwrap(),
            &wire::ReplaceOrder {
                limit_price: Some(dec!(151.5)),
                client_order_id: Some("tw-move-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.limit_price, Some(dec!(151.5)));
    assert_eq!(replaced.client_order_id, "tw-move-2");
    let old = broker.order_by_client_id("tw-move").await.unwrap().unwrap();
    assert_eq!(old.status, OrderStatus::Canceled);
    assert!(fake.fill("tw-move-2", dec!(151.5)));
    let new = broker
        .order_by_client_id("tw-move-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (new.status, new.avg_fill_price),
        (OrderStatus::Filled, Some(dec!(151.5)))
    );
}

/// A take-profit and stop-loss pair of one exit structure, as the engine sends it.
fn exit_legs(generation: u32) -> [OrderRequest; 2] {
    let group = Some(format!("tw-ab12-7-exit-{generation}"));
    [
        OrderRequest {
            client_order_id: format!("tw-ab12-7-tp-{generation}"),
            order_type: OrderType::Limit,
            limit_price: Some(dec!(200)),
            oco_group: group.clone(),
            attached_exits: None,
            ..market("", "AAPL", Side::Sell, dec!(10))
        },
        OrderRequest {
            client_order_id: format!("tw-ab12-7-sl-{generation}"),
            order_type: OrderType::Stop,
            stop_price: Some(dec!(170)),
            oco_group: group,
            attached_exits: None,
            ..market("", "AAPL", Side::Sell, dec!(10))
        },
    ]
}

#[tokio::test]
async fn exit_legs_go_as_one_native_oco_order_found_under_our_ids() {
    // Catches: legs sent as two simple orders (no one-cancels-other at Alpaca), or a stop
    // leg that cannot be found by our id afterwards (a refresh would take it as never sent).
    let (fake, broker) = started().await;
    let legs = exit_legs(1);
    let answers = broker.submit_batch(&legs).await;
    let [tp, sl] = [answers[0].clone().unwrap(), answers[1].clone().unwrap()];
    assert_eq!(fake.count("POST", "/v2/orders"), 1);
    assert_eq!(
        fake.order_class("tw-ab12-7-tp-1"),
        Some(("oco".into(), "gtc".into()))
    );
    assert_eq!(
        (tp.client_order_id.as_str(), tp.status),
        ("tw-ab12-7-tp-1", OrderStatus::Accepted)
    );
    assert_eq!(
        (sl.client_order_id.as_str(), sl.status),
        ("tw-ab12-7-sl-1", OrderStatus::Accepted)
    );
    assert_ne!(tp.broker_order_id, sl.broker_order_id);

    let found = broker
        .order_by_client_id("tw-ab12-7-sl-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.broker_order_id, found.quantity),
        (sl.broker_order_id.clone(), Some(dec!(10)))
    );

    // The take profit fills: Alpaca cancels the stop; one list call tells both.
    assert!(fake.fill("tw-ab12-7-tp-1", dec!(200)));
    let before = fake.received().len();
    let ids = legs.map(|l| l.client_order_id).to_vec();
    let statuses: Vec<_> = broker
        .orders_by_client_ids(&ids)
        .await
        .into_iter()
        .map(|a| a.unwrap().map(|o| (o.client_order_id, o.status)))
        .collect();
    assert_eq!(
        statuses,
        [
            Some(("tw-ab12-7-tp-1".to_string(), OrderStatus::Filled)),
            Some(("tw-ab12-7-sl-1".to_string(), OrderStatus::Canceled)),
        ]
    );
    assert_eq!(fake.received().len() - before, 1);
}

#[tokio::test]
async fn a_filled_stop_cancels_its_take_profit_and_a_lone_leg_goes_alone() {
    let (fake, broker) = started().await;
    let answers = broker.submit_batch(&exit_legs(2)).await;
    let sl = answers[1].clone().unwrap();
    assert!(fake.fill_by_id(sl.broker_order_id.as_deref().unwrap(), dec!(170)));
    let tp = broker
        .order_by_client_id("tw-ab12-7-tp-2")
        .await
        .unwrap()
        .unwrap();
    let sl = broker
        .order_by_client_id("tw-ab12-7-sl-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (tp.status, sl.status),
        (OrderStatus::Canceled, OrderStatus::Filled)
    );
    assert_eq!(sl.avg_fill_price, Some(dec!(170)));

    // A stop sent alone (a moved stop, say): a simple order, good till canceled.
    let [_, lone] = exit_legs(3);
    let placed = broker.submit_batch(std::slice::from_ref(&lone)).await;
    assert_eq!(placed[0].as_ref().unwrap().status, OrderStatus::Accepted);
    assert_eq!(
        fake.order_class("tw-ab12-7-sl-3"),
        Some((String::new(), "gtc".into()))
    );
}

#[tokio::test]
async fn canceling_a_stop_leg_by_our_id_cancels_the_oco() {
    let (fake, broker) = started().await;
    broker.submit_batch(&exit_legs(1)).await;
    let canceled = broker.cancel("tw-ab12-7-sl-1").await.unwrap();
    assert_eq!(
        (canceled.client_order_id.as_str(), canceled.status),
        ("tw-ab12-7-sl-1", OrderStatus::Canceled)
    );
    assert_eq!(
        fake.order_status("tw-ab12-7-tp-1").as_deref(),
        Some("canceled")
    );
}

#[tokio::test]
async fn outside_regular_hours_a_market_entry_is_queued_and_says_so() {
    // Catches: a queued entry taken as failed, or reported without saying it waits.
    let (fake, broker) = started().await;
    fake.set_market_open(false);
    assert!(!broker.client().clock().await.unwrap().is_open);
    let placed = broker
        .submit(&market("tw-night", "AAPL", Side::Buy, dec!(2)))
        .await
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Accepted);
    assert_eq!(
        placed.reason.as_deref(),
        Some("queued by Alpaca until the market opens")
    );
    fake.set_market_open(true);
    let found = broker
        .order_by_client_id("tw-night")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.status, found.reason), (OrderStatus::Filled, None));
}

#[tokio::test]
async fn a_stop_leg_replaced_in_place_stays_in_its_oco_and_the_position_is_never_bare() {
    // Catches: a replaced leg that drops out of its one-cancels-other group at the fake
    // (the take profit's fill would leave the new stop working on a flat position), or a
    // replace that leaves the position without a stop between requests.
    let (fake, broker) = started().await;
    broker
        .submit(&market("tw-ab12-7-entry", "AAPL", Side::Buy, dec!(10)))
        .await
        .unwrap();
    let answers = broker.submit_batch(&exit_legs(1)).await;
    let sl = answers[1].clone().unwrap();
    let from = fake.protection_log().len();
    let moved = broker
        .client()
        .replace_order(
            sl.broker_order_id.as_deref().unwrap(),
            &wire::ReplaceOrder {
                stop_price: Some(dec!(180)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.stop_price, Some(dec!(180)));
    let log = fake.protection_log();
    assert_eq!(log.len() - from, 1, "{log:?}");
    assert!(
        log[from..].iter().all(|(_, bare)| bare.is_empty()),
        "{log:?}"
    );
    let working = fake.working_orders();
    assert_eq!(working.len(), 2, "{working:?}");
    assert_eq!(working[1].stop_price, Some(dec!(180)), "{working:?}");
    assert_eq!(working[1].leg_of.as_deref(), Some("tw-ab12-7-tp-1"));
    // Still one-cancels-other: the take profit fills, Alpaca cancels the moved stop.
    assert!(fake.fill("tw-ab12-7-tp-1", dec!(200)));
    assert!(
        fake.working_orders().is_empty(),
        "{:?}",
        fake.working_orders()
    );
}
