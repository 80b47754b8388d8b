//! Recommendations: what experts publish, and the parser that turns one JSON line into one.
//!
//! Parsing happens here, once, at the edge: everything past [`NewRecommendation`] is valid.
//! A line is checked field by field and every problem is reported, not only the first.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::money::Price;
use crate::order::Side;
use crate::symbol::Symbol;

/// What the expert recommends. Ranked SELL < UNDERWEIGHT < HOLD < OVERWEIGHT < BUY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "UPPERCASE")]
pub enum Action {
    Buy,
    Sell,
    Hold,
    Overweight,
    Underweight,
}

wire_names!(Action);

impl Action {
    /// The direction the recommendation points in; OVERWEIGHT counts as BUY, UNDERWEIGHT as
    /// SELL, HOLD has none.
    pub fn direction(self) -> Option<Side> {
        match self {
            Action::Buy | Action::Overweight => Some(Side::Buy),
            Action::Sell | Action::Underweight => Some(Side::Sell),
            Action::Hold => None,
        }
    }
}

/// The risk the expert attaches to its recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "UPPERCASE")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

wire_names!(RiskLevel);

/// The horizon the expert expects its recommendation to play out over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeHorizon {
    ShortTerm,
    MediumTerm,
    LongTerm,
}

wire_names!(TimeHorizon);

/// A validated recommendation that is not stored yet. Identity: (expert_id, symbol, created_at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecommendation {
    pub expert_id: i64,
    pub symbol: String,
    pub action: Action,
    /// 0–100.
    pub confidence: Decimal,
    /// Signed move in the recommendation's direction, in percent.
    pub expected_profit_percent: Decimal,
    pub price_at_date: Price,
    pub risk_level: RiskLevel,
    pub time_horizon: TimeHorizon,
    pub target_price: Option<Price>,
    pub details: Option<String>,
    /// Truncated to microseconds, the precision both databases keep.
    pub created_at: DateTime<Utc>,
}

/// A stored recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub id: i64,
    #[serde(flatten)]
    pub rec: NewRecommendation,
}

impl std::ops::Deref for Recommendation {
    type Target = NewRecommendation;
    fn deref(&self) -> &NewRecommendation {
        &self.rec
    }
}

impl NewRecommendation {
    /// The expert's target price: `target_price` when given, else `price_at_date × (1 ±
    /// expected_profit_percent / 100)` in the recommendation's direction; none for HOLD, and
    /// none when the figures overflow (a recommendation built by hand can hold any
    /// `expected_profit_percent`).
    pub fn target(&self) -> Option<Decimal> {
        if let Some(t) = self.target_price {
            return Some(t.get());
        }
        let p = self.price_at_date.get();
        let move_ = crate::money::try_percent_of(p, self.expected_profit_percent).ok()?;
        match self.action.direction()? {
            Side::Buy => p.checked_add(move_),
            Side::Sell => p.checked_sub(move_),
        }
    }

    /// The sizing priority of the original's current risk manager:
    /// `expected_profit × confidence / 100`, or `−1 + confidence / 100` without a profit estimate.
    /// Saturates at `±Decimal::MAX` (it only orders candidates), so it never panics.
    pub fn priority(&self) -> Decimal {
        let conf = self.confidence / Decimal::ONE_HUNDRED;
        if self.expected_profit_percent.is_zero() {
            conf.saturating_sub(Decimal::ONE)
        } else {
            self.expected_profit_percent.saturating_mul(conf)
        }
    }
}

/// One problem with one field of an input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

const FIELDS: &[&str] = &[
    "expert_id",
    "symbol",
    "action",
    "confidence",
    "expected_profit_percent",
    "price_at_date",
    "risk_level",
    "time_horizon",
    "target_price",
    "details",
    "created_at",
];

/// Reads a decimal from a JSON number or a decimal string.
pub fn json_decimal(v: &Value) -> Result<Decimal, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err("must be a number or a decimal string".into()),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("not a decimal number: {text:?}"))
}

/// Parses an RFC 3339 time into UTC, truncated to microseconds.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|e| format!("not an RFC 3339 time ({e}): {s:?}"))
}

impl NewRecommendation {
    /// Parses one JSON Lines line. `now` is the default `created_at`. Every problem is
    /// returned, each naming its field.
    pub fn parse_line(line: &str, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, problem: String| {
            errors.push(FieldError {
                field: field.to_string(),
                problem,
            })
        };
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                err("json", format!("malformed JSON: {e}"));
                return Err(errors);
            }
        };
        let Value::Object(obj) = value else {
            err("json", "a line must be a JSON object".into());
            return Err(errors);
        };
        for key in obj.keys() {
            if !FIELDS.contains(&key.as_str()) {
                err(key, "unknown field".into());
            }
        }
        let present = |k: &str| obj.get(k).filter(|v| !v.is_null());

        let expert_id = match present("expert_id") {
            None => {
                err("expert_id", "missing".into());
                None
            }
            Some(v) => match v.as_i64() {
                Some(id) if id > 0 => Some(id),
                _ => {
                    err("expert_id", format!("must be a positive integer, got {v}"));
                    None
                }
            },
        };
        let symbol = match present("symbol") {
            None => {
                err("symbol", "missing".into());
                None
            }
            Some(Value::String(s)) => match Symbol::parse(s) {
                Ok(sym) => Some(sym.into_string()),
                Err(e) => {
                    err("symbol", e.to_string());
                    None
                }
            },
            Some(v) => {
                err("symbol", format!("must be a string, got {v}"));
                None
            }
        };
        let mut enum_field =
            |name: &str, allowed: &str, parse: &dyn Fn(&str) -> bool| -> Option<String> {
                match present(name) {
                    None => {
                        err(name, "missing".into());
                        None
                    }
                    Some(Value::String(s)) if parse(s.trim()) => Some(s.trim().to_string()),
                    Some(v) => {
                        err(name, format!("must be one of {allowed}, got {v}"));
                        None
                    }
                }
            };
        let action = enum_field("action", "BUY, SELL, HOLD, OVERWEIGHT, UNDERWEIGHT", &|s| {
            Action::parse(s).is_some()
        })
        .and_then(|s| Action::parse(&s));
        let risk_level = enum_field("risk_level", "LOW, MEDIUM, HIGH", &|s| {
            RiskLevel::parse(s).is_some()
        })
        .and_then(|s| RiskLevel::parse(&s));
        let time_horizon = enum_field("time_horizon", "SHORT_TERM, MEDIUM_TERM, LONG_TERM", &|s| {
            TimeHorizon::parse(s).is_some()
        })
        .and_then(|s| TimeHorizon::parse(&s));

        let mut decimal = |name: &str, required: bool| -> Option<Decimal> {
            match present(name) {
                None => {
                    if required {
                        err(name, "missing".into());
                    }
                    None
                }
                Some(v) => match json_decimal(v) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        err(name, e);
                        None
                    }
                },
            }
        };
        let confidence = decimal("confidence", true);
        let expected_profit_percent = decimal("expected_profit_percent", true);
        let price_at_date = decimal("price_at_date", true);
        let target_price = decimal("target_price", false);
        let confidence = confidence.and_then(|c| {
            if c < Decimal::ZERO || c > Decimal::ONE_HUNDRED {
                err("confidence", format!("must be between 0 and 100, got {c}"));
                None
            } else {
                Some(c.normalize())
            }
        });
        let expected_profit_percent = expected_profit_percent.and_then(|e| {
            if e.abs() > Decimal::from(10_000) {
                err(
                    "expected_profit_percent",
                    format!("must be between -10000 and 10000, got {e}"),
                );
                None
            } else {
                Some(e)
            }
        });
        let price_at_date = price_at_date.and_then(|p| match Price::new(p) {
            Ok(p) => Some(p),
            Err(e) => {
                err("price_at_date", e.to_string());
                None
            }
        });
        let target_price = match target_price {
            None => Some(None),
            Some(p) => match Price::new(p) {
                Ok(p) => Some(Some(p)),
                Err(e) => {
                    err("target_price", e.to_string());
                    None
                }
            },
        };
        let details = match present("details") {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(v) => {
                err("details", format!("must be a string, got {v}"));
                None
            }
        };
        let created_at = match present("created_at") {
            None => Some(now.trunc_subsecs(6)),
            Some(Value::String(s)) => match parse_time(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    err("created_at", e);
                    None
                }
            },
            Some(v) => {
                err("created_at", format!("must be an RFC 3339 string, got {v}"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        match (
            expert_id,
            symbol,
            action,
            confidence,
            expected_profit_percent,
            price_at_date,
            risk_level,
            time_horizon,
            target_price,
            details,
            created_at,
        ) {
            (
                Some(expert_id),
                Some(symbol),
                Some(action),
                Some(confidence),
                Some(expected_profit_percent),
                Some(price_at_date),
                Some(risk_level),
                Some(time_horizon),
                Some(target_price),
                Some(details),
                Some(created_at),
            ) => Ok(NewRecommendation {
                expert_id,
                symbol,
                action,
                confidence,
                expected_profit_percent: expected_profit_percent.normalize(),
                price_at_date,
                risk_level,
                time_horizon,
                target_price,
                details,
                created_at,
            }),
            // Every None above pushed an error, so this arm is unreachable in practice; it
            // still answers with an error rather than panicking.
            _ => Err(vec![FieldError {
                field: "json".into(),
                problem: "incomplete line".into(),
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-27T12:00:00Z").unwrap()
    }

    const GOOD: &str = r#"{"expert_id":3,"symbol":"SYM0042","action":"BUY","confidence":71.5,"expected_profit_percent":8.25,"price_at_date":123.45,"risk_level":"MEDIUM","time_horizon":"SHORT_TERM","created_at":"2026-11-27T10:00:07Z"}"#;

    #[test]
    fn parses_a_generated_line() {
        let r = NewRecommendation::parse_line(GOOD, now()).unwrap();
        assert_eq!(r.expert_id, 3);
        assert_eq!(r.symbol, "SYM0042");
        assert_eq!(r.confidence, dec!(71.5));
        assert_eq!(r.price_at_date.get(), dec!(123.45));
        assert_eq!(r.created_at, parse_time("2026-11-27T10:00:07Z").unwrap());
    }

    #[test]
    fn created_at_defaults_to_now() {
        let line = GOOD.replace(r#","created_at":"2026-11-27T10:00:07Z""#, "");
        assert_eq!(
            NewRecommendation::parse_line(&line, now())
                .unwrap()
                .created_at,
            now()
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let cases: &[(&str, &[&str])] = &[
            ("{not json", &["json"]),
            ("[1,2]", &["json"]),
            (r#"{"expert_id":1}"#, &["symbol", "action", "confidence"]),
            // Bounded so that arithmetic on them cannot overflow.
            (
                r#"{"expert_id":1,"symbol":"A","action":"BUY","confidence":50,"expected_profit_percent":1e9,"price_at_date":"79228162514264337593543950335","risk_level":"LOW","time_horizon":"SHORT_TERM"}"#,
                &["expected_profit_percent", "price_at_date"],
            ),
            (
                r#"{"expert_id":0,"symbol":" ","action":"BUYY","confidence":101,"expected_profit_percent":"x","price_at_date":0,"risk_level":"LOW","time_horizon":"SHORT_TERM","created_at":"yesterday","extra":1}"#,
                &[
                    "expert_id",
                    "symbol",
                    "action",
                    "confidence",
                    "expected_profit_percent",
                    "price_at_date",
                    "created_at",
                    "extra",
                ],
            ),
        ];
        for (line, fields) in cases {
            let errs = NewRecommendation::parse_line(line, now()).unwrap_err();
            for f in *fields {
                assert!(
                    errs.iter().any(|e| e.field == *f),
                    "{line}: expected an error on {f}, got {errs:?}"
                );
            }
        }
    }

    #[test]
    fn target_follows_direction() {
        let mut r = NewRecommendation::parse_line(GOOD, now()).unwrap();
        r.price_at_date = Price::new(dec!(100)).unwrap();
        r.expected_profit_percent = dec!(10);
        assert_eq!(r.target(), Some(dec!(110)));
        r.action = Action::Underweight;
        assert_eq!(r.target(), Some(dec!(90)));
        r.action = Action::Hold;
        assert_eq!(r.target(), None);
        r.target_price = Some(Price::new(dec!(120)).unwrap());
        assert_eq!(r.target(), Some(dec!(120)));
    }

    #[test]
    fn priority_is_profit_times_confidence() {
        let mut r = NewRecommendation::parse_line(GOOD, now()).unwrap();
        r.expected_profit_percent = dec!(10);
        r.confidence = dec!(80);
        assert_eq!(r.priority(), dec!(8));
        r.expected_profit_percent = dec!(0);
        assert_eq!(r.priority(), dec!(-0.2));
    }
}
