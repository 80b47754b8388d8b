//! Price ingestion for the `prices` commands (and the API later): one quote, or a CSV file
//! of `symbol,price[,time]` rows, validated whole before anything is stored.

use chrono::{DateTime, Utc};
use tradewarden_domain::recommendation::parse_time;
use tradewarden_domain::{Price, Symbol};
use tradewarden_engine::ports::Quote;

use crate::failure::{Failure, bad_lines};

/// Parses one quote; `time` defaults to `now`.
pub fn parse_quote(
    symbol: &str,
    price: &str,
    time: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Quote, String> {
    // The same symbol and decimal rules as the recommendation parser: one door, one rule.
    let symbol = Symbol::parse(symbol)
        .map_err(|e| format!("symbol: {e}"))?
        .into_string();
    let price = Price::parse(price)
        .map_err(|e| format!("price: {e}"))?
        .get();
    let at = match time.map(str::trim).filter(|t| !t.is_empty()) {
        None => now,
        Some(t) => parse_time(t).map_err(|e| format!("time: {e}"))?,
    };
    Ok(Quote { symbol, price, at })
}

/// `symbol,price[,time]` rows (a header row `symbol,…` is skipped, quoted fields are
/// allowed); every bad line is reported and nothing is returned unless all are good.
pub fn parse_prices_csv(input: &[u8], now: DateTime<Utc>) -> Result<Vec<Quote>, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let mut first = true;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let n = e.position().map_or(0, |p| p.line());
                errs.push(format!("line {n}: not CSV: {e}"));
                continue;
            }
        };
        let n = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let is_header = first
            && record
                .get(0)
                .is_some_and(|f| f.eq_ignore_ascii_case("symbol"));
        first = false;
        if is_header {
            continue;
        }
        if !(2..=3).contains(&record.len()) {
            errs.push(format!(
                "line {n}: expected symbol,price[,time], got {} field(s)",
                record.len()
            ));
            continue;
        }
        match parse_quote(&record[0], &record[1], record.get(2), now) {
            Ok(q) => out.push(q),
            Err(e) => errs.push(format!("line {n}: {e}")),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Failure::Input(bad_lines(errs.into_iter())))
    }
}
