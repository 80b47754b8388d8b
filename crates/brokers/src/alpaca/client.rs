//! [`AlpacaClient`]: a thin client of Alpaca's trading API v2 (and the latest-trade endpoint
//! of its market data API). Every call waits for the account's [`RateLimiter`], is retried
//! when its failure is retryable ([`CallError::retry`]), and ends in a [`BrokerError`] that
//! names the account and never a key.
//!
//! Submitting is exactly-once by `client_order_id`: a submission that may have reached Alpaca
//! (a timeout, a broken connection, a 5xx) is looked up before anything else is sent, and
//! sent again only when Alpaca does not have it; a 422 for an id already used is
//! [`BrokerError::DuplicateClientOrderId`], which the engine resolves by a look-up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use tradewarden_engine::BrokerError;

use super::limiter::{RateLimit, RateLimiter};
use super::retry::{CallError, Retry, RetryPolicy, parse_retry_after};
use super::secret::Secret;
use super::wire;

/// The most orders one `GET /v2/orders` returns (Alpaca's maximum `limit`).
pub const LIST_LIMIT: usize = 500;

/// Everything a client needs, validated by the configuration.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The account's name in tradewarden, for error messages.
    pub account: String,
    /// The trading API, e.g. `https://paper-api.alpaca.markets`.
    pub base_url: String,
    /// The market data API, e.g. `https://data.alpaca.markets`.
    pub data_url: String,
    pub key_id: Secret,
    pub secret_key: Secret,
    pub retry: RetryPolicy,
    /// How long one HTTP call may take, connection included.
    pub request_timeout: Duration,
    pub rate_limit: RateLimit,
}

/// One Alpaca account's HTTP client. Share it (behind an `Arc`) between all the tasks that
/// use the account, so that they share its rate limiter.
#[derive(Debug)]
pub struct AlpacaClient {
    http: reqwest::Client,
    account: String,
    base_url: String,
    data_url: String,
    key_id: Secret,
    secret_key: Secret,
    retry: RetryPolicy,
    limiter: Arc<RateLimiter>,
}

/// ring as rustls's process-wide provider, once: reqwest is built without its own (it would
/// bring aws-lc-rs next to the ring that sqlx uses). Installing fails harmlessly when some
/// other part of the process installed one first.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl AlpacaClient {
    /// A client for one account.
    pub fn new(s: ClientSettings) -> Result<Self, BrokerError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(s.request_timeout)
            .connect_timeout(s.request_timeout)
            .user_agent(concat!("tradewarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                BrokerError::Unavailable(format!(
                    "Alpaca account \"{}\": cannot build an HTTP client: {}",
                    s.account,
                    chain(&e)
                ))
            })?;
        Ok(AlpacaClient {
            http,
            base_url: s.base_url.trim_end_matches('/').to_string(),
            data_url: s.data_url.trim_end_matches('/').to_string(),
            limiter: Arc::new(RateLimiter::new(s.rate_limit)),
            account: s.account,
            key_id: s.key_id,
            secret_key: s.secret_key,
            retry: s.retry,
        })
    }

    /// The account's name in tradewarden.
    pub fn account_name(&self) -> &str {
        &self.account
    }

    /// `GET /v2/account`.
    pub async fn account(&self) -> Result<wire::Account, BrokerError> {
        self.get(self.trading("/v2/account"), &[]).await
    }

    /// `GET /v2/positions`.
    pub async fn positions(&self) -> Result<Vec<wire::Position>, BrokerError> {
        self.get(self.trading("/v2/positions"), &[]).await
    }

    /// `GET /v2/clock`: whether the market is open, and when it next opens and closes.
    pub async fn clock(&self) -> Result<wire::Clock, BrokerError> {
        self.get(self.trading("/v2/clock"), &[]).await
    }

    /// `GET /v2/assets/{symbol}`; `None` for a symbol Alpaca does not know.
    pub async fn asset(&self, symbol: &str) -> Result<Option<wire::Asset>, BrokerError> {
        let url = self.trading(&format!("/v2/assets/{}", path_segment(symbol)?));
        self.get_optional(url, &[]).await
    }

    /// `GET /v2/orders:by_client_order_id`; `None` when Alpaca never received the order.
    pub async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<wire::Order>, BrokerError> {
        let url = self.trading("/v2/orders:by_client_order_id");
        let query = [("client_order_id", client_order_id.to_string())];
        self.get_optional(url, &query).await
    }

    /// `GET /v2/orders/{id}`.
    pub async fn order(&self, order_id: &str) -> Result<wire::Order, BrokerError> {
        let url = self.trading(&format!("/v2/orders/{}", path_segment(order_id)?));
        self.get(url, &[]).await
    }

    /// `GET /v2/orders?status=all`: the newest [`LIST_LIMIT`] orders, open or closed, in one
    /// call, legs nested in their parents.
    pub async fn list_orders(&self) -> Result<Vec<wire::Order>, BrokerError> {
        let query = [
            ("status", "all".to_string()),
            ("limit", LIST_LIMIT.to_string()),
            ("direction", "desc".to_string()),
            ("nested", "true".to_string()),
        ];
        self.get(self.trading("/v2/orders"), &query).await
    }

    /// `POST /v2/orders`, exactly once by `client_order_id` (see the module's doc).
    pub async fn submit_order(&self, order: &wire::NewOrder) -> Result<wire::Order, BrokerError> {
        let url = self.trading("/v2/orders");
        let body =
            serde_json::to_value(order).map_err(|e| self.fail(CallError::Decode(e.to_string())))?;
        let mut retries = 0;
        loop {
            let sent = self.send(Method::POST, &url, &[], Some(&body)).await;
            let e = match sent.and_then(|text| decode::<wire::Order>(&text)) {
                Ok(o) => return Ok(o),
                Err(e) => e,
            };
            let maybe_delivered = match e.retry() {
                Retry::Yes {
                    maybe_delivered, ..
                } => maybe_delivered,
                Retry::No => matches!(e, CallError::Decode(_)),
            };
            if maybe_delivered {
                // Alpaca may have the order: find out before anything else is sent for it.
                tracing::warn!(account = %self.account, client_order_id = %order.client_order_id, "submission unanswered ({e}); looking it up");
                if let Some(found) = self.order_by_client_id(&order.client_order_id).await? {
                    return Ok(found);
                }
            }
            let Retry::Yes { hint, .. } = e.retry() else {
                return Err(self.submit_error(e, &order.client_order_id));
            };
            if retries >= self.retry.max_retries {
                return Err(self.fail(e));
            }
            retries += 1;
            self.back_off(retries, hint, &e).await;
        }
    }

    /// `DELETE /v2/orders/{id}`. An order that already ended (Alpaca's 422, not cancelable)
    /// is no error: the caller reads its state next.
    pub async fn cancel_order(&self, order_id: &str) -> Result<(), BrokerError> {
        let url = self.trading(&format!("/v2/orders/{}", path_segment(order_id)?));
        let result = self
            .with_retries(|| self.send(Method::DELETE, &url, &[], None))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(CallError::Status { status: 422, .. }) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// `PATCH /v2/orders/{id}`: the order that replaces it. Sent again only when it surely
    /// did not arrive (429, no connection); when it may have, the replacing order is looked
    /// up by its `client_order_id`, if it has one.
    pub async fn replace_order(
        &self,
        order_id: &str,
        change: &wire::ReplaceOrder,
    ) -> Result<wire::Order, BrokerError> {
        let url = self.trading(&format!("/v2/orders/{}", path_segment(order_id)?));
        let body = serde_json::to_value(change)
            .map_err(|e| self.fail(CallError::Decode(e.to_string())))?;
        let mut retries = 0;
        loop {
            let sent = self.send(Method::PATCH, &url, &[], Some(&body)).await;
            let e = match sent.and_then(|text| decode::<wire::Order>(&text)) {
                Ok(o) => return Ok(o),
                Err(e) => e,
            };
            match e.retry() {
                Retry::Yes {
                    maybe_delivered: false,
                    hint,
                } if retries < self.retry.max_retries => {
                    retries += 1;
                    self.back_off(retries, hint, &e).await;
                }
                Retry::Yes {
                    maybe_delivered: true,
                    ..
                } => {
                    if let Some(id) = &change.client_order_id
                        && let Some(found) = self.order_by_client_id(id).await?
                    {
                        return Ok(found);
                    }
                    return Err(self.fail(e));
                }
                _ => return Err(self.fail(e)),
            }
        }
    }

    /// The latest trade price of each symbol the data API knows (`GET
    /// {data_url}/v2/stocks/trades/latest`), in one call.
    pub async fn latest_trades(
        &self,
        symbols: &[String],
    ) -> Result<HashMap<String, Decimal>, BrokerError> {
        if symbols.is_empty() {
            return Ok(HashMap::new());
        }
        let url = format!("{}/v2/stocks/trades/latest", self.data_url);
        let query = [("symbols", symbols.join(","))];
        let latest: wire::LatestTrades = self.get(url, &query).await?;
        let mut prices = HashMap::new();
        for (symbol, trade) in latest.trades {
            let text = trade.price.to_string();
            let price = text
                .parse::<Decimal>()
                .map_err(|_| self.fail(CallError::Decode(format!("price {text:?} of {symbol}"))))?;
            prices.insert(symbol, price);
        }
        Ok(prices)
    }

    fn trading(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A GET, retried while retryable, decoded.
    async fn get<T: DeserializeOwned>(
        &self,
        url: String,
        query: &[(&str, String)],
    ) -> Result<T, BrokerError> {
        self.with_retries(|| async {
            let text = self.send(Method::GET, &url, query, None).await?;
            decode(&text)
        })
        .await
        .map_err(|e| self.fail(e))
    }

    /// [`Self::get`], with Alpaca's 404 as `None`.
    async fn get_optional<T: DeserializeOwned>(
        &self,
        url: String,
        query: &[(&str, String)],
    ) -> Result<Option<T>, BrokerError> {
        let result = self
            .with_retries(|| async {
                let text = self.send(Method::GET, &url, query, None).await?;
                decode(&text)
            })
            .await;
        match result {
            Ok(v) => Ok(Some(v)),
            Err(CallError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or has been repeated
    /// `max_retries` times. Only for calls that are safe to repeat.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut retries = 0;
        loop {
            let e = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match e.retry() {
                Retry::Yes { hint, .. } if retries < self.retry.max_retries => {
                    retries += 1;
                    self.back_off(retries, hint, &e).await;
                }
                _ => return Err(e),
            }
        }
    }

    /// Waits before repetition `retry` of a call that failed with `e`: the policy's backoff,
    /// never shorter than Alpaca's `Retry-After` (`hint`). Says so at WARN first, with the
    /// wait and the hint as fields (`wait_ms`, `retry_after_ms`), so the wait is visible.
    async fn back_off(&self, retry: u32, hint: Option<Duration>, e: &CallError) {
        let wait = self.retry.delay(retry, hint);
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        tracing::warn!(
            account = %self.account,
            retry,
            wait_ms = millis(wait),
            retry_after_ms = hint.map(millis),
            "Alpaca: {}; retry {retry} in {} ms",
            self.scrub(&e.to_string()),
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
    }

    /// One HTTP call, after the rate limiter: the body of a success, or what went wrong.
    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<String, CallError> {
        self.limiter.acquire().await;
        let mut request = self
            .http
            .request(method, url)
            .header("APCA-API-KEY-ID", header_value(&self.key_id)?)
            .header("APCA-API-SECRET-KEY", header_value(&self.secret_key)?);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let text = response.text().await.map_err(|e| transport(&e))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(status_error(status, &text, retry_after))
    }

    /// The error of a failed submission: a used client_order_id is told apart from other
    /// refusals, so that the engine looks the order up instead of recording a rejection.
    fn submit_error(&self, e: CallError, client_order_id: &str) -> BrokerError {
        match &e {
            CallError::Status {
                status: 422,
                message,
                ..
            } if is_duplicate_id(message) => {
                BrokerError::DuplicateClientOrderId(client_order_id.to_string())
            }
            // On the order endpoint a 403 is Alpaca's refusal of the order itself
            // (insufficient buying power, not shortable) unless it refuses the key.
            CallError::Status {
                status: 403,
                message,
                ..
            } if !is_key_refusal(message) => BrokerError::Rejected(self.scrub(message)),
            _ => self.fail(e),
        }
    }

    /// A failed call as the engine's error: retryable ones are `Unavailable` or
    /// `RateLimited`, refused keys `Unauthorized` naming the account, the rest `Rejected`
    /// with Alpaca's message. No key appears in any of them.
    fn fail(&self, e: CallError) -> BrokerError {
        let account = &self.account;
        match e {
            CallError::Status {
                status: status @ (401 | 403),
                message,
                ..
            } => BrokerError::Unauthorized(format!(
                "Alpaca account \"{account}\" refused the API key (HTTP {status}: {}) — check the key id and secret key in the environment variables named by key_id_env and secret_key_env, and that they belong to this account's base_url (paper or live)",
                self.scrub(&message)
            )),
            CallError::Status {
                status: 429,
                retry_after,
                ..
            } => BrokerError::RateLimited { retry_after },
            CallError::Status {
                status: 400..=499,
                message,
                ..
            } => BrokerError::Rejected(self.scrub(&message)),
            e => BrokerError::Unavailable(format!(
                "Alpaca account \"{account}\": {}",
                self.scrub(&e.to_string())
            )),
        }
    }

    /// `text` without either key.
    fn scrub(&self, text: &str) -> String {
        self.secret_key.scrub(&self.key_id.scrub(text))
    }
}

/// A header value marked sensitive (hyper then keeps it out of its debug output).
fn header_value(secret: &Secret) -> Result<reqwest::header::HeaderValue, CallError> {
    let mut v = reqwest::header::HeaderValue::from_str(secret.expose()).map_err(|_| {
        CallError::Connect("an API key holds characters a header cannot carry".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// An id or symbol as one URL path segment; anything that would change the path is refused.
fn path_segment(s: &str) -> Result<&str, BrokerError> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(s)
    } else {
        Err(BrokerError::Rejected(format!(
            "{s:?} is not a valid Alpaca symbol or order id"
        )))
    }
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::Decode(e.to_string()))
}

/// A transport failure, by whether the request may have left.
fn transport(e: &reqwest::Error) -> CallError {
    let what = chain(e);
    if e.is_timeout() {
        CallError::Timeout(what)
    } else if e.is_connect() {
        CallError::Connect(what)
    } else {
        CallError::Transport(what)
    }
}

/// An error and its causes, one line, without the URL's query.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// An error status with Alpaca's `{code, message}` body (or the body's text, shortened).
fn status_error(status: StatusCode, text: &str, retry_after: Option<Duration>) -> CallError {
    let (code, message) = match serde_json::from_str::<wire::ApiError>(text) {
        Ok(e) => (e.code, e.message),
        Err(_) => (None, text.chars().take(200).collect()),
    };
    CallError::Status {
        status: status.as_u16(),
        code,
        message,
        retry_after,
    }
}

/// Alpaca's 422 for a `client_order_id` it has seen ("client_order_id must be unique").
fn is_duplicate_id(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("client_order_id") && (m.contains("unique") || m.contains("already"))
}

/// A 401/403 that refuses the credentials rather than the request. Told apart by Alpaca's
/// message, not its `code`: Alpaca publishes no table of error codes, and the one code seen
/// on 403s, 40310000, comes both with a refused key ("forbidden.") and with refused orders
/// (insufficient buying power, a potential wash trade, not enough quantity available), so
/// the code cannot say which it is.
fn is_key_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unauthorized",
        "forbidden",
        "access denied",
        "not authorized",
        "api key",
    ]
    .iter()
    .any(|w| m.contains(w))
        || m.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_alpacas_message() {
        let cases = [
            ("client_order_id must be unique", true, false),
            ("Client_Order_ID already exists", true, false),
            ("insufficient buying power", false, false),
            ("asset AAPL is not shortable", false, false),
            ("forbidden.", false, true),
            ("request is not authorized", false, true),
            ("unauthorized.", false, true),
            ("", false, true),
        ];
        for (m, dup, key) in cases {
            assert_eq!((is_duplicate_id(m), is_key_refusal(m)), (dup, key), "{m}");
        }
    }

    #[test]
    fn only_plain_ids_and_symbols_go_into_a_path() {
        assert!(path_segment("61e69015-8549-4bfd-b9c3-01e75843f47d").is_ok());
        assert!(path_segment("BRK.B").is_ok());
        for bad in ["", "../account", "a/b", "a?b", "a b"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
