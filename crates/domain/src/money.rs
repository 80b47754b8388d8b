//! Decimal money: prices are validated once at the edge and stay valid inside.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A strictly positive price in account currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Price(Decimal);

/// Why a value is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPositive {
    #[error("must be greater than 0, got {0}")]
    NotPositive(Decimal),
    /// Far beyond any traded price; refused so that arithmetic on it cannot overflow.
    #[error("must be at most 1000000000, got {0}")]
    TooLarge(Decimal),
}

/// The largest price accepted. Keeps quantity × price far inside `Decimal`'s range.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

impl Price {
    /// Accepts values greater than zero and at most [`MAX_PRICE`].
    pub fn new(value: Decimal) -> Result<Self, NotPositive> {
        if value <= Decimal::ZERO {
            Err(NotPositive::NotPositive(value))
        } else if value > MAX_PRICE {
            Err(NotPositive::TooLarge(value))
        } else {
            Ok(Price(value.normalize()))
        }
    }

    /// The decimal value.
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Price {
    type Error = NotPositive;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Price::new(value)
    }
}

impl From<Price> for Decimal {
    fn from(p: Price) -> Decimal {
        p.0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `value × percent / 100`, the one way percentages are applied.
pub fn percent_of(value: Decimal, percent: Decimal) -> Decimal {
    value * percent / Decimal::ONE_HUNDRED
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn price_must_be_positive() {
        assert!(Price::new(dec!(0)).is_err());
        assert!(Price::new(dec!(-1)).is_err());
        assert!(Price::new(dec!(1000000000.01)).is_err());
        assert!(Price::new(dec!(1000000000)).is_ok());
        assert_eq!(Price::new(dec!(187.250)).unwrap().to_string(), "187.25");
    }

    #[test]
    fn percent_of_is_exact() {
        assert_eq!(percent_of(dec!(100000), dec!(40)), dec!(40000));
        assert_eq!(percent_of(dec!(3), dec!(33.3)), dec!(0.999));
    }
}

/// Serde helpers for decimals written as numbers or as decimal strings in config files.
///
/// Floats are read through their shortest decimal text, so `33.3` stays `33.3` instead of the
/// nearest binary fraction.
pub mod serde_decimal {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer};
    use std::str::FromStr;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }

    fn convert<E: serde::de::Error>(raw: Raw) -> Result<Decimal, E> {
        match raw {
            Raw::Int(i) => Ok(Decimal::from(i)),
            Raw::Float(f) => Decimal::from_str(&f.to_string())
                .or_else(|_| Decimal::from_scientific(&f.to_string()))
                .map_err(|_| E::custom(format!("not a decimal number: {f}"))),
            Raw::Text(s) => Decimal::from_str(s.trim())
                .map_err(|_| E::custom(format!("not a decimal number: {s:?}"))),
        }
    }

    /// For `#[serde(deserialize_with = "...")]` on a `Decimal`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        convert(Raw::deserialize(d)?)
    }

    /// For an `Option<Decimal>` field.
    pub fn deserialize_option<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Decimal>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(raw) => convert(raw).map(Some),
        }
    }
}
