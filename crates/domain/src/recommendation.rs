//! Recommendations: what experts publish, and the parser that turns JSON lines into them.
//!
//! Parsing happens here, once, at the edge (see [`parse`]): everything past
//! [`NewRecommendation`] is valid. A line is checked field by field and every problem is
//! reported, not only the first.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Price;
use crate::order::Side;

pub mod import;
pub mod parse;

pub use import::{ChunkPlan, ImportTally, MissingTwin};
pub use parse::{
    DEFAULT_MAX_CLOCK_SKEW_SECONDS, FieldError, LineError, LineParser, ParseContext, ParsedLine,
    json_decimal, parse_batch, parse_batch_checked, parse_time,
};

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
    /// Its identity (B7): at most one recommendation is stored per (expert_id, symbol,
    /// created_at).
    pub fn identity(&self) -> (i64, &str, DateTime<Utc>) {
        (self.expert_id, &self.symbol, self.created_at)
    }

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
