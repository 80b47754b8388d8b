//! Alpaca's trading API v2 request and response bodies, as Alpaca documents them: money and
//! quantities as decimal strings, times as RFC 3339. Fields tradewarden does not use are left
//! out (serde ignores them), so a new field at Alpaca breaks nothing.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `POST /v2/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    pub symbol: String,
    /// A decimal string (`rust_decimal` serializes as one).
    pub qty: Decimal,
    /// `buy` or `sell`.
    pub side: &'static str,
    /// `market`, `limit`, `stop` or `stop_limit`.
    #[serde(rename = "type")]
    pub order_type: &'static str,
    /// `day`: an order sent outside regular hours waits for the next session, as Alpaca
    /// queues it.
    pub time_in_force: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    pub client_order_id: String,
    pub extended_hours: bool,
    /// `simple` (the default when absent), `bracket`, `oco` or `oto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<TakeProfit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<StopLoss>,
}

/// The take-profit leg of an advanced order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakeProfit {
    pub limit_price: Decimal,
}

/// The stop-loss leg of an advanced order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopLoss {
    pub stop_price: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
}

/// `PATCH /v2/orders/{order_id}`: what changes; the answer is a new order that replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaceOrder {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<&'static str>,
    /// The replacing order's own client_order_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_order_id: Option<String>,
}

/// An order as Alpaca returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Order {
    pub id: String,
    pub client_order_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub symbol: String,
    /// Absent for an order given as a notional amount.
    pub qty: Option<Decimal>,
    pub filled_qty: Decimal,
    pub filled_avg_price: Option<Decimal>,
    #[serde(default)]
    pub order_class: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub side: String,
    pub time_in_force: String,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    /// `new`, `partially_filled`, `filled`, `canceled`, … (see [`super::status`]).
    pub status: String,
    /// The order that replaced this one, when it was replaced.
    pub replaced_by: Option<String>,
    /// The legs of a bracket, oco or oto order (with `nested=true`).
    pub legs: Option<Vec<Order>>,
}

/// `GET /v2/account` (the fields tradewarden reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub cash: Decimal,
    pub equity: Decimal,
    pub buying_power: Decimal,
}

/// One entry of `GET /v2/positions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Position {
    pub symbol: String,
    /// Alpaca reports a short's quantity negative; `side` says it too.
    pub qty: Decimal,
    /// `long` or `short`.
    pub side: String,
    pub avg_entry_price: Decimal,
    pub current_price: Option<Decimal>,
    pub market_value: Option<Decimal>,
}

/// `GET /v2/clock`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Clock {
    pub timestamp: DateTime<Utc>,
    pub is_open: bool,
    pub next_open: DateTime<Utc>,
    pub next_close: DateTime<Utc>,
}

/// `GET /v2/assets/{symbol}` (the fields tradewarden reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Asset {
    pub symbol: String,
    /// `active` or `inactive`.
    pub status: String,
    pub tradable: bool,
    pub fractionable: bool,
    pub shortable: bool,
    #[serde(default)]
    pub easy_to_borrow: bool,
}

/// An error body: `{"code": 40010001, "message": "..."}` (`code` is absent on some 401s).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    pub code: Option<i64>,
    pub message: String,
}

/// `GET {data_url}/v2/stocks/trades/latest?symbols=…`: the latest trade per symbol.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LatestTrades {
    pub trades: std::collections::HashMap<String, Trade>,
}

/// One trade of the market data API: its price is a JSON number, read through its text so
/// that `187.2` stays exactly 187.2.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Trade {
    #[serde(rename = "t")]
    pub at: DateTime<Utc>,
    #[serde(rename = "p")]
    pub price: serde_json::Number,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_new_order_sends_decimals_as_strings_and_leaves_absent_prices_out() {
        // Catches: money sent as a float, or `"limit_price": null` on a market order.
        let o = NewOrder {
            symbol: "AAPL".into(),
            qty: dec!(10),
            side: "buy",
            order_type: "limit",
            time_in_force: "day",
            limit_price: Some(dec!(187.25)),
            stop_price: None,
            client_order_id: "tw-1".into(),
            extended_hours: false,
            order_class: None,
            take_profit: None,
            stop_loss: None,
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "symbol": "AAPL", "qty": "10", "side": "buy", "type": "limit",
                "time_in_force": "day", "limit_price": "187.25", "client_order_id": "tw-1",
                "extended_hours": false
            })
        );
    }

    #[test]
    fn an_order_reads_as_alpaca_documents_it() {
        let text = r#"{
            "id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": "tw-1",
            "created_at": "2026-11-29T14:30:00.123456Z", "updated_at": "2026-11-29T14:30:01Z",
            "submitted_at": "2026-11-29T14:30:00Z", "filled_at": null, "asset_id": "x",
            "symbol": "AAPL", "asset_class": "us_equity", "notional": null, "qty": "10",
            "filled_qty": "4", "filled_avg_price": "187.31", "order_class": "",
            "order_type": "market", "type": "market", "side": "buy", "time_in_force": "day",
            "limit_price": null, "stop_price": null, "status": "partially_filled",
            "extended_hours": false, "legs": null, "replaced_by": null, "hwm": null
        }"#;
        let o: Order = serde_json::from_str(text).unwrap();
        assert_eq!(
            (o.qty, o.filled_qty, o.filled_avg_price, o.status.as_str()),
            (
                Some(dec!(10)),
                dec!(4),
                Some(dec!(187.31)),
                "partially_filled"
            )
        );
    }
}
