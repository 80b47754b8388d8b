//! A fake Alpaca for tests: an axum app on a random loopback port that speaks the trading API
//! v2 (and the latest-trade endpoint of the data API) in the shapes Alpaca documents, written
//! here as JSON by hand rather than with [`super::wire`], so that a shape the client gets
//! wrong fails a test.
//!
//! It checks the `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers (403 otherwise), fills
//! market orders at once at the symbol's set price, rests the others as `new` until
//! [`FakeAlpaca::fill`], refuses a used `client_order_id` with Alpaca's 422, and records every
//! request with its arrival time. Fault switches: 429 with `Retry-After` for the next n
//! requests, 500 for the next n, an order submission accepted and then left unanswered, and
//! cancels left `pending_cancel` until the test settles them (Alpaca cancels asynchronously).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub at: Instant,
    pub method: String,
    /// The path, without the query.
    pub path: String,
}

/// An order held by the fake.
#[derive(Debug, Clone)]
struct FakeOrder {
    id: String,
    client_order_id: String,
    symbol: String,
    qty: Decimal,
    side: String,
    order_type: String,
    time_in_force: String,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    status: String,
    filled_qty: Decimal,
    filled_avg_price: Option<Decimal>,
    extended_hours: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    replaced_by: Option<String>,
    /// `""` (simple), `oco`, `bracket` or `oto`.
    order_class: String,
    /// The parent of a leg (an index into the book's orders).
    parent: Option<usize>,
    /// The legs of a parent.
    legs: Vec<usize>,
}

impl FakeOrder {
    fn json(&self) -> Value {
        let s = |d: Option<Decimal>| d.map(|d| d.to_string());
        let filled_at = (self.status == "filled").then_some(self.updated_at);
        json!({
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "submitted_at": self.created_at,
            "filled_at": filled_at,
            "expired_at": null,
            "canceled_at": null,
            "failed_at": null,
            "replaced_at": null,
            "replaced_by": self.replaced_by,
            "replaces": null,
            "asset_id": format!("asset-{}", self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": null,
            "qty": self.qty.to_string(),
            "filled_qty": self.filled_qty.to_string(),
            "filled_avg_price": s(self.filled_avg_price),
            "order_class": self.order_class,
            "order_type": self.order_type,
            "type": self.order_type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": s(self.limit_price),
            "stop_price": s(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": null,
            "trail_percent": null,
            "trail_price": null,
            "hwm": null
        })
    }

    fn working(&self) -> bool {
        matches!(
            self.status.as_str(),
            "new" | "accepted" | "partially_filled" | "pending_cancel" | "held"
        )
    }

    /// Whether it carries legs that wait for its fill (a `bracket` or `oto` entry).
    fn is_entry_with_legs(&self) -> bool {
        self.parent.is_none() && matches!(self.order_class.as_str(), "bracket" | "oto")
    }
}

/// A working order as the fake holds it (see [`FakeAlpaca::working_orders`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingOrder {
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub order_type: String,
    /// `""` (simple), `oco`, `bracket` or `oto` (a leg has its parent's).
    pub order_class: String,
    pub qty: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// The parent's client_order_id, for a leg.
    pub leg_of: Option<String>,
}

/// What the fake holds, and its switches.
#[derive(Debug, Default)]
struct Book {
    cash: Decimal,
    prices: HashMap<String, Decimal>,
    /// Signed quantity and average price, by symbol.
    positions: HashMap<String, (Decimal, Decimal)>,
    orders: Vec<FakeOrder>,
    market_open: bool,
    received: Vec<Received>,
    throttle: u32,
    throttle_retry_after: u64,
    server_errors: u32,
    hang_after_accept: u32,
    /// After each request that may change orders (not a GET): the symbols held with no
    /// working stop covering them.
    protection: Vec<(Received, Vec<String>)>,
    /// Cancels leave orders `pending_cancel` until [`FakeAlpaca::settle_cancels`].
    async_cancel: bool,
}

impl Book {
    /// The order at `i` as Alpaca shows it, legs nested.
    fn json(&self, i: usize) -> Value {
        let o = &self.orders[i];
        let mut v = o.json();
        if !o.legs.is_empty() {
            v["legs"] = o.legs.iter().map(|l| self.orders[*l].json()).collect();
        }
        v
    }

    /// The orders of `i`'s one-cancels-other group (its parent and every leg), `i` too.
    fn group(&self, i: usize) -> Vec<usize> {
        let root = self.orders[i].parent.unwrap_or(i);
        std::iter::once(root)
            .chain(self.orders[root].legs.iter().copied())
            .collect()
    }

    /// Cancels every working order of `i`'s group but `except`.
    fn cancel_group(&mut self, i: usize, except: Option<usize>) {
        self.end_group(i, except, "canceled");
    }

    /// Sets every working order of `i`'s group but `except` to `status`.
    fn end_group(&mut self, i: usize, except: Option<usize>, status: &str) {
        let now = Utc::now();
        for j in self.group(i) {
            if Some(j) != except && self.orders[j].working() {
                self.orders[j].status = status.into();
                self.orders[j].updated_at = now;
            }
        }
    }

    /// Fills `order` (index) at `price`: the order, cash and the position; the rest of its
    /// one-cancels-other group is canceled, except that a bracket or oto entry's fill
    /// releases its held legs instead.
    fn fill(&mut self, i: usize, price: Decimal) {
        let now = Utc::now();
        if self.orders[i].is_entry_with_legs() {
            for leg in self.orders[i].legs.clone() {
                if self.orders[leg].status == "held" {
                    self.orders[leg].status = "new".into();
                    self.orders[leg].updated_at = now;
                }
            }
        } else {
            self.cancel_group(i, Some(i));
        }
        let o = &mut self.orders[i];
        o.status = "filled".into();
        o.filled_qty = o.qty;
        o.filled_avg_price = Some(price);
        o.updated_at = now;
        let signed = if o.side == "buy" { o.qty } else { -o.qty };
        let symbol = o.symbol.clone();
        self.cash -= signed * price;
        let (qty, avg) = self.positions.get(&symbol).copied().unwrap_or_default();
        let new_qty = qty + signed;
        let new_avg = if new_qty.is_zero() {
            Decimal::ZERO
        } else if qty.is_zero() || (qty > Decimal::ZERO) != (new_qty > Decimal::ZERO) {
            price
        } else if new_qty.abs() > qty.abs() {
            (qty * avg + signed * price) / new_qty
        } else {
            avg
        };
        if new_qty.is_zero() {
            self.positions.remove(&symbol);
        } else {
            self.positions.insert(symbol, (new_qty, new_avg));
        }
    }

    /// The symbols held without working stop orders (on the closing side) for the whole
    /// quantity: a position that a fall would not close.
    fn bare(&self) -> Vec<String> {
        let mut bare: Vec<String> = self
            .positions
            .iter()
            .filter(|(symbol, (qty, _))| {
                let closing = if *qty > Decimal::ZERO { "sell" } else { "buy" };
                let covered: Decimal = self
                    .orders
                    .iter()
                    .filter(|o| {
                        o.working()
                            && !matches!(o.status.as_str(), "pending_cancel" | "held")
                            && &o.symbol == *symbol
                            && o.side == closing
                            && o.order_type.starts_with("stop")
                    })
                    .map(|o| o.qty - o.filled_qty)
                    .sum();
                covered < qty.abs()
            })
            .map(|(symbol, _)| symbol.clone())
            .collect();
        bare.sort();
        bare
    }

    fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .iter()
                .map(|(s, (q, avg))| *q * self.prices.get(s).copied().unwrap_or(*avg))
                .sum::<Decimal>()
    }
}

struct Shared {
    key_id: String,
    secret_key: String,
    /// How long a hung submission waits before it answers (long past any client timeout).
    hang: Duration,
    /// A parking_lot Mutex: held for bookkeeping only, never across an `.await`.
    book: Mutex<Book>,
}

/// A running fake Alpaca. The server stops when this is dropped.
pub struct FakeAlpaca {
    /// `http://127.0.0.1:PORT`: both the trading and the data API's base URL.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAlpaca {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAlpaca {
    /// Starts a fake that accepts these keys, with 100 000 in cash and the market open.
    pub async fn start(key_id: &str, secret_key: &str) -> FakeAlpaca {
        let shared = Arc::new(Shared {
            key_id: key_id.into(),
            secret_key: secret_key.into(),
            hang: Duration::from_secs(30),
            book: Mutex::new(Book {
                cash: Decimal::from(100_000),
                market_open: true,
                ..Book::default()
            }),
        });
        let app = axum::Router::new()
            .route("/v2/account", get(account))
            .route("/v2/positions", get(positions))
            .route("/v2/clock", get(clock))
            .route("/v2/assets/{symbol}", get(asset))
            .route("/v2/orders", get(list_orders).post(create_order))
            .route("/v2/orders:by_client_order_id", get(order_by_client_id))
            .route(
                "/v2/orders/{id}",
                get(order_by_id).delete(cancel_order).patch(replace_order),
            )
            .route("/v2/stocks/trades/latest", get(latest_trades))
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAlpaca {
            url,
            shared,
            server,
        }
    }

    /// Sets a symbol's price: market orders fill at it, the data API reports it.
    pub fn set_price(&self, symbol: &str, price: Decimal) {
        self.shared.book.lock().prices.insert(symbol.into(), price);
    }

    /// Sets the account's cash.
    pub fn set_cash(&self, cash: Decimal) {
        self.shared.book.lock().cash = cash;
    }

    /// Whether the market is open: the clock says so, and market orders fill at once; while
    /// it is closed, new orders are `accepted` (queued). Opening it fills the queued market
    /// orders at their symbols' prices.
    pub fn set_market_open(&self, open: bool) {
        let mut b = self.shared.book.lock();
        b.market_open = open;
        if !open {
            return;
        }
        let queued: Vec<usize> = (0..b.orders.len())
            .filter(|i| b.orders[*i].status == "accepted")
            .collect();
        for i in queued {
            b.orders[i].status = "new".into();
            if b.orders[i].order_type == "market" {
                let price = b.prices[&b.orders[i].symbol];
                b.fill(i, price);
            }
        }
    }

    /// The next `n` requests are answered 429 with `Retry-After: retry_after_secs`.
    pub fn throttle(&self, n: u32, retry_after_secs: u64) {
        let mut b = self.shared.book.lock();
        b.throttle = n;
        b.throttle_retry_after = retry_after_secs;
    }

    /// The next `n` requests are answered 500.
    pub fn fail_with_500(&self, n: u32) {
        self.shared.book.lock().server_errors = n;
    }

    /// The next `n` order submissions are accepted (the order exists, market orders fill)
    /// and then left unanswered long past any client's timeout.
    pub fn hang_after_accept(&self, n: u32) {
        self.shared.book.lock().hang_after_accept = n;
    }

    /// Whether a cancel is asynchronous, as at Alpaca: the order is `pending_cancel` (still
    /// open) until [`FakeAlpaca::settle_cancels`].
    pub fn cancel_asynchronously(&self, on: bool) {
        self.shared.book.lock().async_cancel = on;
    }

    /// Every `pending_cancel` order becomes `canceled`.
    pub fn settle_cancels(&self) {
        let mut b = self.shared.book.lock();
        let now = Utc::now();
        for o in b.orders.iter_mut().filter(|o| o.status == "pending_cancel") {
            o.status = "canceled".into();
            o.updated_at = now;
        }
    }

    /// Fills a resting order at `price`; false if there is no working order of that id.
    pub fn fill(&self, client_order_id: &str, price: Decimal) -> bool {
        let mut b = self.shared.book.lock();
        let Some(i) = b
            .orders
            .iter()
            .position(|o| o.client_order_id == client_order_id && o.working())
        else {
            return false;
        };
        b.fill(i, price);
        true
    }

    /// Fills a resting order, found by Alpaca's id (a leg's), at `price`.
    pub fn fill_by_id(&self, order_id: &str, price: Decimal) -> bool {
        let mut b = self.shared.book.lock();
        let Some(i) = b
            .orders
            .iter()
            .position(|o| o.id == order_id && o.working())
        else {
            return false;
        };
        b.fill(i, price);
        true
    }

    /// The order class (`""` for simple) and time in force of the order with this
    /// client_order_id.
    pub fn order_class(&self, client_order_id: &str) -> Option<(String, String)> {
        let b = self.shared.book.lock();
        b.orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
            .map(|o| (o.order_class.clone(), o.time_in_force.clone()))
    }

    /// Every request received, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.shared.book.lock().received.clone()
    }

    /// How many requests of `method` to `path` were received.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// The client_order_ids of every order the fake holds (legs too), oldest first.
    pub fn client_order_ids(&self) -> Vec<String> {
        let b = self.shared.book.lock();
        b.orders.iter().map(|o| o.client_order_id.clone()).collect()
    }

    /// How many orders the fake holds.
    pub fn order_count(&self) -> usize {
        self.shared.book.lock().orders.len()
    }

    /// After each request that could change orders (POST, PATCH, DELETE), in order: the
    /// request and the symbols then held without a working stop for their whole quantity.
    pub fn protection_log(&self) -> Vec<(Received, Vec<String>)> {
        self.shared.book.lock().protection.clone()
    }

    /// Every working order (legs too), oldest first: what rests at the fake now.
    pub fn working_orders(&self) -> Vec<WorkingOrder> {
        let b = self.shared.book.lock();
        b.orders
            .iter()
            .filter(|o| o.working())
            .map(|o| WorkingOrder {
                client_order_id: o.client_order_id.clone(),
                symbol: o.symbol.clone(),
                side: o.side.clone(),
                order_type: o.order_type.clone(),
                order_class: o.order_class.clone(),
                qty: o.qty,
                limit_price: o.limit_price,
                stop_price: o.stop_price,
                leg_of: o.parent.map(|p| b.orders[p].client_order_id.clone()),
            })
            .collect()
    }

    /// The status of the order with this client_order_id, if the fake has it.
    pub fn order_status(&self, client_order_id: &str) -> Option<String> {
        let b = self.shared.book.lock();
        b.orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
            .map(|o| o.status.clone())
    }
}

/// Alpaca's error body.
fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// A 422 with Alpaca's generic validation code, as a small value until it is answered.
struct Unprocessable(String);

impl IntoResponse for Unprocessable {
    fn into_response(self) -> Response {
        error(StatusCode::UNPROCESSABLE_ENTITY, 40010001, &self.0)
    }
}

/// Records the request, applies the fault switches, then checks the keys.
async fn gate(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let fault = {
        let mut b = s.book.lock();
        b.received.push(Received {
            at: Instant::now(),
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
        });
        if b.throttle > 0 {
            b.throttle -= 1;
            Some((StatusCode::TOO_MANY_REQUESTS, b.throttle_retry_after))
        } else if b.server_errors > 0 {
            b.server_errors -= 1;
            Some((StatusCode::INTERNAL_SERVER_ERROR, 0))
        } else {
            None
        }
    };
    match fault {
        Some((StatusCode::TOO_MANY_REQUESTS, after)) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                42910000,
                "rate limit exceeded",
            );
            r.headers_mut()
                .insert("retry-after", after.to_string().parse().expect("a number"));
            return r;
        }
        Some((status, _)) => return error(status, 50010000, "internal server error"),
        None => {}
    }
    let key = headers.get("APCA-API-KEY-ID").and_then(|v| v.to_str().ok());
    let secret = headers
        .get("APCA-API-SECRET-KEY")
        .and_then(|v| v.to_str().ok());
    if key != Some(s.key_id.as_str()) || secret != Some(s.secret_key.as_str()) {
        return error(StatusCode::FORBIDDEN, 40310000, "forbidden.");
    }
    let request = Received {
        at: Instant::now(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    };
    let answer = next.run(req).await;
    if request.method != "GET" {
        let mut b = s.book.lock();
        let bare = b.bare();
        b.protection.push((request, bare));
    }
    answer
}

async fn account(State(s): State<Arc<Shared>>) -> Response {
    let b = s.book.lock();
    let equity = b.equity();
    Json(json!({
        "id": "fake-account",
        "account_number": "PA0000000",
        "status": "ACTIVE",
        "currency": "USD",
        "cash": b.cash.to_string(),
        "portfolio_value": equity.to_string(),
        "equity": equity.to_string(),
        "buying_power": b.cash.max(Decimal::ZERO).to_string(),
        "pattern_day_trader": false,
        "trading_blocked": false,
        "account_blocked": false
    }))
    .into_response()
}

async fn positions(State(s): State<Arc<Shared>>) -> Response {
    let b = s.book.lock();
    let mut list: Vec<Value> = b
        .positions
        .iter()
        .map(|(symbol, (qty, avg))| {
            let price = b.prices.get(symbol).copied().unwrap_or(*avg);
            json!({
                "asset_id": format!("asset-{symbol}"),
                "symbol": symbol,
                "exchange": "NASDAQ",
                "asset_class": "us_equity",
                "avg_entry_price": avg.to_string(),
                "qty": qty.to_string(),
                "qty_available": qty.to_string(),
                "side": if *qty < Decimal::ZERO { "short" } else { "long" },
                "market_value": (*qty * price).to_string(),
                "cost_basis": (*qty * *avg).to_string(),
                "unrealized_pl": ((price - *avg) * *qty).to_string(),
                "current_price": price.to_string(),
                "lastday_price": price.to_string(),
                "change_today": "0"
            })
        })
        .collect();
    list.sort_by_key(|p| p["symbol"].as_str().unwrap_or_default().to_string());
    Json(Value::Array(list)).into_response()
}

async fn clock(State(s): State<Arc<Shared>>) -> Response {
    let open = s.book.lock().market_open;
    let now = Utc::now();
    Json(json!({
        "timestamp": now,
        "is_open": open,
        "next_open": now + chrono::Duration::hours(if open { 24 } else { 1 }),
        "next_close": now + chrono::Duration::hours(if open { 1 } else { 8 })
    }))
    .into_response()
}

async fn asset(State(s): State<Arc<Shared>>, Path(symbol): Path<String>) -> Response {
    if !s.book.lock().prices.contains_key(&symbol) {
        return error(StatusCode::NOT_FOUND, 40410000, "asset not found");
    }
    Json(json!({
        "id": format!("asset-{symbol}"),
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "name": symbol,
        "status": "active",
        "tradable": true,
        "marginable": true,
        "shortable": true,
        "easy_to_borrow": true,
        "fractionable": true
    }))
    .into_response()
}

/// A decimal field of a request body, sent as a string (as Alpaca documents) or a number.
fn decimal_field(body: &Value, key: &str) -> Result<Option<Decimal>, Unprocessable> {
    let bad = || Unprocessable(format!("invalid {key}"));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => t.parse().map(Some).map_err(|_| bad()),
        Some(Value::Number(n)) => n.to_string().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A required string field of a request body.
fn string_field(body: &Value, key: &str) -> Result<String, Unprocessable> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Unprocessable(format!("{key} is required")))
}

/// The order a `POST /v2/orders` body describes, checked as Alpaca checks it.
fn new_order(b: &Book, body: &Value) -> Result<FakeOrder, Unprocessable> {
    let symbol = string_field(body, "symbol")?;
    let side = string_field(body, "side")?;
    let order_type = string_field(body, "type")?;
    let time_in_force = string_field(body, "time_in_force")?;
    let client_order_id = string_field(body, "client_order_id")?;
    let qty = decimal_field(body, "qty")?.unwrap_or_default();
    let limit_price = decimal_field(body, "limit_price")?;
    let stop_price = decimal_field(body, "stop_price")?;
    let unprocessable = |m: &str| Unprocessable(m.to_string());
    if b.orders
        .iter()
        .any(|o| o.client_order_id == client_order_id)
    {
        return Err(unprocessable("client_order_id must be unique"));
    }
    if !b.prices.contains_key(&symbol) {
        return Err(unprocessable(&format!("asset \"{symbol}\" not found")));
    }
    if qty <= Decimal::ZERO {
        return Err(unprocessable("qty must be > 0"));
    }
    let prices_ok = match order_type.as_str() {
        "market" => limit_price.is_none() && stop_price.is_none(),
        "limit" => limit_price.is_some() && stop_price.is_none(),
        "stop" => stop_price.is_some() && limit_price.is_none(),
        "stop_limit" => stop_price.is_some() && limit_price.is_some(),
        _ => false,
    };
    if !prices_ok || !matches!(side.as_str(), "buy" | "sell") {
        return Err(unprocessable("invalid order type, side or prices"));
    }
    let now = Utc::now();
    Ok(FakeOrder {
        id: format!("00000000-0000-4000-8000-{:012}", b.orders.len() + 1),
        client_order_id,
        symbol,
        qty,
        side,
        order_type,
        time_in_force,
        limit_price,
        stop_price,
        status: "new".into(),
        filled_qty: Decimal::ZERO,
        filled_avg_price: None,
        extended_hours: body
            .get("extended_hours")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        created_at: now,
        updated_at: now,
        replaced_by: None,
        order_class: String::new(),
        parent: None,
        legs: Vec::new(),
    })
}

/// A nested price field (`take_profit.limit_price`).
fn nested_decimal(body: &Value, outer: &str, key: &str) -> Result<Option<Decimal>, Unprocessable> {
    match body.get(outer) {
        None | Some(Value::Null) => Ok(None),
        Some(inner) => decimal_field(inner, key),
    }
}

/// An `oco` order as Alpaca takes it: a limit parent (the take profit) and its stop leg.
fn new_oco(b: &Book, body: &Value) -> Result<(FakeOrder, FakeOrder), Unprocessable> {
    let tp = nested_decimal(body, "take_profit", "limit_price")?;
    let stop = nested_decimal(body, "stop_loss", "stop_price")?;
    let stop_limit = nested_decimal(body, "stop_loss", "limit_price")?;
    let (Some(tp), Some(stop)) = (tp, stop) else {
        return Err(Unprocessable(
            "oco orders require take_profit.limit_price and stop_loss.stop_price".into(),
        ));
    };
    let mut plain = body.clone();
    plain["limit_price"] = Value::String(tp.to_string());
    let parent = FakeOrder {
        order_class: "oco".into(),
        ..new_order(b, &plain)?
    };
    if parent.order_type != "limit" {
        return Err(Unprocessable("oco orders must be limit orders".into()));
    }
    let leg = FakeOrder {
        id: format!("00000000-0000-4000-8000-{:012}", b.orders.len() + 2),
        client_order_id: format!("alpaca-leg-{}", b.orders.len() + 2),
        order_type: if stop_limit.is_some() {
            "stop_limit"
        } else {
            "stop"
        }
        .into(),
        limit_price: stop_limit,
        stop_price: Some(stop),
        ..parent.clone()
    };
    Ok((parent, leg))
}

/// A `bracket` or `oto` entry as Alpaca takes it: the entry, and its take-profit (limit)
/// and stop legs on the other side, `held` until the entry fills. Alpaca refuses advanced
/// orders for a fractional quantity.
fn new_with_legs(
    b: &Book,
    body: &Value,
    class: &str,
) -> Result<(FakeOrder, Vec<FakeOrder>), Unprocessable> {
    let tp = nested_decimal(body, "take_profit", "limit_price")?;
    let stop = nested_decimal(body, "stop_loss", "stop_price")?;
    let wanted = if class == "bracket" { 2 } else { 1 };
    if usize::from(tp.is_some()) + usize::from(stop.is_some()) != wanted {
        return Err(Unprocessable(format!(
            "{class} orders require {wanted} of take_profit.limit_price and stop_loss.stop_price"
        )));
    }
    let entry = FakeOrder {
        order_class: class.into(),
        ..new_order(b, body)?
    };
    if !entry.qty.fract().is_zero() {
        return Err(Unprocessable(
            "fractional orders must be simple orders".into(),
        ));
    }
    let other_side = if entry.side == "buy" { "sell" } else { "buy" };
    let leg = |n: usize, order_type: &str, limit_price, stop_price| FakeOrder {
        id: format!("00000000-0000-4000-8000-{:012}", b.orders.len() + 1 + n),
        client_order_id: format!("alpaca-leg-{}", b.orders.len() + 1 + n),
        side: other_side.into(),
        order_type: order_type.into(),
        limit_price,
        stop_price,
        status: "held".into(),
        ..entry.clone()
    };
    let mut legs = Vec::new();
    if let Some(tp) = tp {
        legs.push(leg(legs.len() + 1, "limit", Some(tp), None));
    }
    if let Some(stop) = stop {
        legs.push(leg(legs.len() + 1, "stop", None, Some(stop)));
    }
    Ok((entry, legs))
}

/// Stores a new order (and its legs); the index of the order to answer with.
fn store_order(b: &mut Book, body: &Value) -> Result<usize, Unprocessable> {
    let (order, legs) = match body.get("order_class").and_then(Value::as_str) {
        Some("oco") => {
            let (parent, leg) = new_oco(b, body)?;
            (parent, vec![leg])
        }
        Some(class @ ("bracket" | "oto")) => new_with_legs(b, body, class)?,
        _ => (new_order(b, body)?, Vec::new()),
    };
    b.orders.push(order);
    let i = b.orders.len() - 1;
    for leg in legs {
        b.orders.push(FakeOrder {
            parent: Some(i),
            ..leg
        });
        let at = b.orders.len() - 1;
        b.orders[i].legs.push(at);
    }
    Ok(i)
}

async fn create_order(State(s): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let (answer, hang) = {
        let mut b = s.book.lock();
        let i = match store_order(&mut b, &body) {
            Ok(i) => i,
            Err(refusal) => return refusal.into_response(),
        };
        let price = b.prices[&b.orders[i].symbol];
        if b.orders[i].order_type == "market" && b.market_open {
            b.fill(i, price);
        } else if !b.market_open {
            // Outside regular hours Alpaca holds the order, not yet routed, until the open
            // (an entry's legs stay held for its fill).
            for j in b.group(i) {
                if b.orders[j].status != "held" {
                    b.orders[j].status = "accepted".into();
                }
            }
        }
        let hang = b.hang_after_accept > 0;
        if hang {
            b.hang_after_accept -= 1;
        }
        (b.json(i), hang)
    };
    if hang {
        tokio::time::sleep(s.hang).await;
    }
    Json(answer).into_response()
}

async fn order_by_client_id(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let b = s.book.lock();
    let id = q.get("client_order_id").cloned().unwrap_or_default();
    match b.orders.iter().position(|o| o.client_order_id == id) {
        Some(i) => Json(b.json(i)).into_response(),
        None => error(StatusCode::NOT_FOUND, 40410000, "order not found"),
    }
}

async fn order_by_id(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let b = s.book.lock();
    match b.orders.iter().position(|o| o.id == id) {
        Some(i) => Json(b.json(i)).into_response(),
        None => error(StatusCode::NOT_FOUND, 40410000, "order not found"),
    }
}

async fn list_orders(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let b = s.book.lock();
    let status = q.get("status").map_or("open", String::as_str);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .min(500);
    // Legs nested in their parents (`nested=true`).
    let list: Vec<Value> = (0..b.orders.len())
        .rev()
        .filter(|i| b.orders[*i].parent.is_none())
        .filter(|i| match status {
            "all" => true,
            "closed" => !b.orders[*i].working(),
            _ => b.orders[*i].working(),
        })
        .take(limit)
        .map(|i| b.json(i))
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn cancel_order(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut b = s.book.lock();
    let Some(i) = b.orders.iter().position(|o| o.id == id) else {
        return error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    if !b.orders[i].working() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "order is not cancelable",
        );
    }
    // Canceling one order of an OCO cancels the other too.
    let status = if b.async_cancel {
        "pending_cancel"
    } else {
        "canceled"
    };
    b.end_group(i, None, status);
    StatusCode::NO_CONTENT.into_response()
}

async fn replace_order(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut b = s.book.lock();
    let next_id = format!("00000000-0000-4000-8000-{:012}", b.orders.len() + 1);
    let Some(i) = b.orders.iter().position(|o| o.id == id) else {
        return error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    if !b.orders[i].working() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42210000,
            "order is not replaceable",
        );
    }
    let mut new = b.orders[i].clone();
    let fields = (
        decimal_field(&body, "qty"),
        decimal_field(&body, "limit_price"),
        decimal_field(&body, "stop_price"),
    );
    let (Ok(qty), Ok(limit), Ok(stop)) = fields else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            40010001,
            "invalid replacement",
        );
    };
    new.id = next_id.clone();
    new.client_order_id = body
        .get("client_order_id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("replaces-{id}"), str::to_string);
    new.qty = qty.unwrap_or(new.qty);
    new.limit_price = limit.or(new.limit_price);
    new.stop_price = stop.or(new.stop_price);
    new.created_at = Utc::now();
    new.updated_at = new.created_at;
    b.orders[i].status = "replaced".into();
    b.orders[i].replaced_by = Some(next_id);
    b.orders[i].updated_at = new.created_at;
    // The replacement takes the old order's place in its one-cancels-other group (as at
    // Alpaca, a replaced leg stays a leg): the group is never without it.
    let at = b.orders.len();
    if let Some(parent) = new.parent {
        for leg in b.orders[parent].legs.iter_mut().filter(|l| **l == i) {
            *leg = at;
        }
    }
    for leg in new.legs.clone() {
        b.orders[leg].parent = Some(at);
    }
    b.orders.push(new);
    Json(b.json(at)).into_response()
}

async fn latest_trades(
    State(s): State<Arc<Shared>>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    debug_assert_eq!(method, Method::GET);
    let b = s.book.lock();
    let mut trades = serde_json::Map::new();
    for symbol in q
        .get("symbols")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        if let Some(price) = b.prices.get(symbol) {
            let p: serde_json::Number = price
                .to_string()
                .parse()
                .expect("a decimal is a JSON number");
            trades.insert(
                symbol.into(),
                json!({"t": Utc::now(), "x": "V", "p": p, "s": 100, "c": ["@"], "i": 1, "z": "C"}),
            );
        }
    }
    Json(json!({"trades": trades})).into_response()
}
