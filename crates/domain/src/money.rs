//! Decimal money: prices are validated once at the edge and stay valid inside.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decimal::{DecimalError, parse_decimal};

/// A price in account currency, within [`MIN_PRICE`, `MAX_PRICE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Price(Decimal);

/// Why a value is not a price. Every variant names both bounds, so the message says what
/// would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPositive {
    /// Zero or negative.
    #[error("{0} is out of range (min {MIN_PRICE}, max {MAX_PRICE})")]
    NotPositive(Decimal),
    /// Far beyond any traded price; refused so that arithmetic on it cannot overflow.
    #[error("{0} is out of range (min {MIN_PRICE}, max {MAX_PRICE})")]
    TooLarge(Decimal),
    /// Positive but below any quoted tick; refused so that dividing by it cannot overflow.
    #[error("{0} is out of range (min {MIN_PRICE}, max {MAX_PRICE})")]
    TooSmall(Decimal),
}

/// The name the price error should have had; the same type.
pub type PriceError = NotPositive;

/// The largest price accepted. Keeps quantity × price far inside `Decimal`'s range.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// The smallest price accepted (0.0001, a sub-penny tick). With [`MAX_QUANTITY`] it bounds
/// every budget ÷ price the sizing divides.
pub const MIN_PRICE: Decimal = Decimal::from_parts(1, 0, 0, false, 4);

impl Price {
    /// Accepts values in [`MIN_PRICE`, `MAX_PRICE`].
    pub fn new(value: Decimal) -> Result<Self, NotPositive> {
        if value <= Decimal::ZERO {
            Err(NotPositive::NotPositive(value))
        } else if value < MIN_PRICE {
            Err(NotPositive::TooSmall(value))
        } else if value > MAX_PRICE {
            Err(NotPositive::TooLarge(value))
        } else {
            Ok(Price(value.normalize()))
        }
    }

    /// Parses a price typed as text (`prices set`, a CSV cell): [`parse_decimal`], then
    /// [`Price::new`]. A number beyond `Decimal` is reported with the price's own bounds.
    pub fn parse(s: &str) -> Result<Self, ParsePriceError> {
        match parse_decimal(s) {
            Ok(d) => Price::new(d).map_err(|_| ParsePriceError::OutOfRange {
                text: crate::echo::prefix(&d.to_string()),
            }),
            Err(e) if e.is_out_of_range() => Err(ParsePriceError::OutOfRange {
                text: crate::echo::prefix(s.trim()),
            }),
            Err(e) => Err(ParsePriceError::NotADecimal(e)),
        }
    }

    /// The decimal value.
    pub fn get(self) -> Decimal {
        self.0
    }
}

/// Why a text is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePriceError {
    /// Not a decimal number at all.
    #[error(transparent)]
    NotADecimal(DecimalError),
    /// A number outside [`MIN_PRICE`, `MAX_PRICE`].
    #[error("{text} is out of range (min {MIN_PRICE}, max {MAX_PRICE})")]
    OutOfRange {
        /// The refused number, cut to a short prefix.
        text: String,
    },
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

/// The largest quantity of one order or position: a billion units. With [`MAX_PRICE`] a
/// notional stays below 10^18, far inside `Decimal`'s range.
pub const MAX_QUANTITY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// The smallest quantity accepted: a billionth of a unit, the finest fractional share a
/// broker (Alpaca) trades.
pub const MIN_QUANTITY: Decimal = Decimal::from_parts(1, 0, 0, false, 9);

/// A quantity of one order or position, within [`MIN_QUANTITY`, `MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Quantity(Decimal);

/// Why a value is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is out of range (min {MIN_QUANTITY}, max {MAX_QUANTITY})")]
pub struct QuantityOutOfRange {
    /// The refused value.
    pub value: Decimal,
}

impl Quantity {
    /// Accepts values in [`MIN_QUANTITY`, `MAX_QUANTITY`].
    pub fn new(value: Decimal) -> Result<Self, QuantityOutOfRange> {
        if value < MIN_QUANTITY || value > MAX_QUANTITY {
            Err(QuantityOutOfRange { value })
        } else {
            Ok(Quantity(value.normalize()))
        }
    }

    /// The decimal value.
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Quantity {
    type Error = QuantityOutOfRange;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Quantity::new(value)
    }
}

impl From<Quantity> for Decimal {
    fn from(q: Quantity) -> Decimal {
        q.0
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Arithmetic on figures that came from input, which `Decimal`'s operators would answer with
/// a panic. Carries the operands so the message shows what was computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArithmeticError {
    /// The result does not fit in a `Decimal`.
    #[error("{left} {op} {right} overflows")]
    Overflow {
        /// `+`, `-`, `×` or `÷`.
        op: &'static str,
        /// The left operand.
        left: Decimal,
        /// The right operand.
        right: Decimal,
    },
    /// A division by zero.
    #[error("{dividend} ÷ 0 is undefined")]
    DivisionByZero {
        /// What was to be divided.
        dividend: Decimal,
    },
}

/// `a + b`, or why not.
pub fn checked_add(a: Decimal, b: Decimal) -> Result<Decimal, ArithmeticError> {
    a.checked_add(b).ok_or(ArithmeticError::Overflow {
        op: "+",
        left: a,
        right: b,
    })
}

/// `a − b`, or why not.
pub fn checked_sub(a: Decimal, b: Decimal) -> Result<Decimal, ArithmeticError> {
    a.checked_sub(b).ok_or(ArithmeticError::Overflow {
        op: "-",
        left: a,
        right: b,
    })
}

/// `a × b`, or why not.
pub fn checked_mul(a: Decimal, b: Decimal) -> Result<Decimal, ArithmeticError> {
    a.checked_mul(b).ok_or(ArithmeticError::Overflow {
        op: "×",
        left: a,
        right: b,
    })
}

/// `a ÷ b`, or why not.
pub fn checked_div(a: Decimal, b: Decimal) -> Result<Decimal, ArithmeticError> {
    if b.is_zero() {
        return Err(ArithmeticError::DivisionByZero { dividend: a });
    }
    a.checked_div(b).ok_or(ArithmeticError::Overflow {
        op: "÷",
        left: a,
        right: b,
    })
}

/// `value × percent / 100`, the one way percentages are applied, checked.
pub fn try_percent_of(value: Decimal, percent: Decimal) -> Result<Decimal, ArithmeticError> {
    // Dividing first keeps in range every product whose result is; the order only changes
    // digits beyond the 28th.
    match value.checked_mul(percent) {
        Some(p) => Ok(p / Decimal::ONE_HUNDRED),
        None => checked_mul(value / Decimal::ONE_HUNDRED, percent),
    }
}

/// `value × percent / 100`, saturating at `±Decimal::MAX` where [`try_percent_of`] would
/// overflow. Kept for callers that need a plain figure; the domain itself uses the checked
/// form.
pub fn percent_of(value: Decimal, percent: Decimal) -> Decimal {
    try_percent_of(value, percent).unwrap_or_else(|_| {
        if value.is_sign_negative() != percent.is_sign_negative() {
            Decimal::MIN
        } else {
            Decimal::MAX
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn price_bounds() {
        // (value, accepted). Catches: removing either bound of `Price::new`.
        let cases = [
            (dec!(0), false),
            (dec!(-1), false),
            (dec!(0.0000000000000000000000000001), false),
            (dec!(0.00009999), false),
            (dec!(0.0001), true),
            (dec!(187.250), true),
            (dec!(1000000000), true),
            (dec!(1000000000.01), false),
            (Decimal::MAX, false),
            (Decimal::MIN, false),
        ];
        for (value, ok) in cases {
            assert_eq!(Price::new(value).is_ok(), ok, "{value}");
        }
        assert_eq!(Price::new(dec!(187.250)).unwrap().to_string(), "187.25");
        assert_eq!(
            Price::new(dec!(0.00001)).unwrap_err().to_string(),
            "0.00001 is out of range (min 0.0001, max 1000000000)"
        );
    }

    #[test]
    fn price_parse_table() {
        // (text, parsed or the error message). Catches: `prices set` reading `1_000` or
        // reporting 1e30 as "not a decimal number".
        let cases: [(&str, Result<Decimal, &str>); 6] = [
            ("187.25", Ok(dec!(187.25))),
            (" 1e2 ", Ok(dec!(100))),
            ("1_000", Err("not a decimal number: \"1_000\"")),
            (
                "1e30",
                Err("1e30 is out of range (min 0.0001, max 1000000000)"),
            ),
            (
                "1e-40",
                Err("1e-40 is out of range (min 0.0001, max 1000000000)"),
            ),
            ("0", Err("0 is out of range (min 0.0001, max 1000000000)")),
        ];
        for (text, want) in cases {
            let got = Price::parse(text)
                .map(Price::get)
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(String::from), "{text:?}");
        }
    }

    #[test]
    fn quantity_bounds() {
        let cases = [
            (dec!(0), false),
            (dec!(-1), false),
            (dec!(0.0000000001), false),
            (dec!(0.000000001), true),
            (dec!(400), true),
            (dec!(1000000000), true),
            (dec!(1000000001), false),
        ];
        for (value, ok) in cases {
            assert_eq!(Quantity::new(value).is_ok(), ok, "{value}");
        }
        assert_eq!(
            Quantity::new(dec!(0)).unwrap_err().to_string(),
            "0 is out of range (min 0.000000001, max 1000000000)"
        );
    }

    #[test]
    fn percent_of_is_exact_and_never_panics() {
        // (value, percent, checked result). Catches: an unchecked `value * percent`.
        let cases = [
            (dec!(100000), dec!(40), Some(dec!(40000))),
            (dec!(3), dec!(33.3), Some(dec!(0.999))),
            (Decimal::MAX, dec!(100), Some(Decimal::MAX)),
            (Decimal::MAX, dec!(50), Some(Decimal::MAX / dec!(2))),
            (Decimal::MAX, dec!(101), None),
            (Decimal::MAX, Decimal::MAX, None),
            (Decimal::MIN, Decimal::MAX, None),
            (
                dec!(0.0000000000000000000000000001),
                dec!(0.0000000000000000000000000001),
                Some(dec!(0)),
            ),
        ];
        for (value, percent, want) in cases {
            assert_eq!(
                try_percent_of(value, percent).ok(),
                want,
                "{value} {percent}"
            );
        }
        assert_eq!(percent_of(Decimal::MAX, Decimal::MAX), Decimal::MAX);
        assert_eq!(percent_of(Decimal::MIN, Decimal::MAX), Decimal::MIN);
    }

    #[test]
    fn checked_operations_report_instead_of_panicking() {
        assert!(matches!(
            checked_div(dec!(1), dec!(0)),
            Err(ArithmeticError::DivisionByZero { .. })
        ));
        assert!(checked_div(Decimal::MAX, dec!(0.0000000000000000000000000001)).is_err());
        assert!(checked_mul(Decimal::MAX, dec!(2)).is_err());
        assert!(checked_add(Decimal::MAX, dec!(1)).is_err());
        assert!(checked_sub(Decimal::MIN, dec!(1)).is_err());
        assert_eq!(checked_div(dec!(10), dec!(4)), Ok(dec!(2.5)));
    }
}

/// Serde helpers for decimals written as numbers or as decimal strings in config files.
///
/// Text goes through [`crate::decimal::parse_decimal`]; floats are read through their
/// shortest decimal text, so `33.3` stays `33.3` instead of the nearest binary fraction.
pub mod serde_decimal {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer};

    use crate::decimal::parse_decimal;

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
            Raw::Float(f) if !f.is_finite() => Err(E::custom(format!("not a decimal number: {f}"))),
            Raw::Float(f) => parse_decimal(&f.to_string()).map_err(E::custom),
            Raw::Text(s) => parse_decimal(&s).map_err(E::custom),
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
