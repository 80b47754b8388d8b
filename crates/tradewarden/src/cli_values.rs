//! The value types and parsers `cli.rs` names for a few flags: the configuration's number
//! ranges, the status enums of the domain (any case, refused when unknown), and times.
//!
//! `build.rs` includes `cli.rs` with stand-ins for these (plain strings), so the man page
//! needs neither the domain nor chrono at build time; the binary parses with these.

use chrono::{DateTime, NaiveDateTime, Utc};
use clap::builder::{PossibleValuesParser, TypedValueParser};

pub use crate::config::{EXPERT_ID, LOOKBACK_DAYS};
pub use tradewarden_domain::{OrderStatus, OutcomeKind, TransactionStatus};

/// A time given on the command line.
pub type Time = DateTime<Utc>;

/// A `--status` parser over a status enum's wire names, any case.
fn status_parser<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|s| name(*s))).try_map(move |s: String| {
        all.iter()
            .copied()
            .find(|v| name(*v).eq_ignore_ascii_case(&s))
            .ok_or_else(|| format!("unknown status {s:?}"))
    })
}

/// `--status` of `transactions`.
pub fn transaction_status() -> impl TypedValueParser<Value = TransactionStatus> {
    status_parser(&TransactionStatus::ALL, TransactionStatus::as_str)
}

/// `--status` of `orders`.
pub fn order_status() -> impl TypedValueParser<Value = OrderStatus> {
    status_parser(&OrderStatus::ALL, OrderStatus::as_str)
}

/// `--status` of `outcomes`.
pub fn outcome_kind() -> impl TypedValueParser<Value = OutcomeKind> {
    status_parser(&OutcomeKind::ALL, OutcomeKind::as_str)
}

/// `--start` of `demo gen`: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_start(s: &str) -> Result<Time, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .map(|t| t.and_utc())
        .map_err(|e| format!("expected YYYY-MM-DDTHH:MM:SSZ: {e}"))
}
