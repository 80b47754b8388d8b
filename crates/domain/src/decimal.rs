//! The one decimal parser: every decimal that arrives as text (a JSON line, a CLI argument, a
//! CSV cell, a config value) goes through [`parse_decimal`].
//!
//! The grammar is JSON's number grammar, so a figure means the same wherever it is typed:
//!
//! ```text
//! [-] digits [ . digits ] [ (e|E) [+|-] digits ]
//! ```
//!
//! - Surrounding ASCII whitespace is ignored; whitespace inside is refused (`1 000`).
//! - Refused although `rust_decimal`'s `FromStr` accepts them: digit separators (`1_000`), a
//!   leading `+` (`+5`, which JSON refuses too), a bare point (`.5`, `5.`), the empty string.
//! - Accepted beyond JSON: leading zeros (`007.50`), so a zero-padded CSV column still reads.
//! - Scientific notation is accepted wherever its value is in range (`1.5e3`, `25E-2`).
//! - Out of range is told apart from not-a-number: a magnitude above `Decimal::MAX` or a
//!   non-zero magnitude below 10^-28 (which would silently become 0) is "out of range".
//!   Digits beyond the 28th decimal place of an in-range value are rounded, as `Decimal` does.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::echo;

/// The smallest non-zero magnitude a `Decimal` holds: 10^-28.
pub const SMALLEST_NONZERO: Decimal = Decimal::from_parts(1, 0, 0, false, 28);

/// Why a text is not a decimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not in the grammar at all (`abc`, `1_000`, `+5`, `""`).
    #[error("not a decimal number: {text}")]
    NotANumber {
        /// The refused text, quoted and cut to a short prefix.
        text: String,
    },
    /// A number, but larger in magnitude than any `Decimal` (`1e30`).
    #[error("{text} is out of range (min {}, max {})", Decimal::MIN, Decimal::MAX)]
    TooLarge {
        /// The refused number, cut to a short prefix.
        text: String,
        /// It was negative (below the minimum rather than above the maximum).
        negative: bool,
    },
    /// A non-zero number too small in magnitude for a `Decimal` (`1e-40`); reading it as 0
    /// would change its meaning.
    #[error("{text} is out of range (min {SMALLEST_NONZERO} in magnitude)")]
    TooSmall {
        /// The refused number, cut to a short prefix.
        text: String,
    },
}

impl DecimalError {
    /// A number in the grammar whose value no `Decimal` holds.
    pub fn is_out_of_range(&self) -> bool {
        !matches!(self, DecimalError::NotANumber { .. })
    }
}

/// Parses a decimal by the grammar in the module documentation.
pub fn parse_decimal(s: &str) -> Result<Decimal, DecimalError> {
    let text = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let parts = Parts::scan(text).ok_or_else(|| DecimalError::NotANumber {
        text: echo::quoted(text),
    })?;
    parts.to_decimal(text)
}

/// A number split by the grammar: `[-] int [. frac] [e exp]`.
struct Parts<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    /// Saturated: an exponent of 19 digits is out of range whatever its mantissa.
    exp: i64,
}

/// The length of the run of ASCII digits `s` starts with.
fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

impl<'a> Parts<'a> {
    fn scan(text: &'a str) -> Option<Parts<'a>> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (int, mut rest) = rest.split_at(digits(rest));
        if int.is_empty() {
            return None;
        }
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            (frac, rest) = r.split_at(digits(r));
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp = 0i64;
        if let Some(r) = rest.strip_prefix(['e', 'E']) {
            let (exp_negative, r) = match r.as_bytes().first() {
                Some(b'-') => (true, &r[1..]),
                Some(b'+') => (false, &r[1..]),
                _ => (false, r),
            };
            if r.is_empty() || digits(r) != r.len() {
                return None;
            }
            let magnitude = match r.trim_start_matches('0') {
                "" => 0,
                m => m.parse::<i64>().unwrap_or(i64::MAX),
            };
            exp = if exp_negative { -magnitude } else { magnitude };
            rest = "";
        }
        rest.is_empty().then_some(Parts {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// The value, written out in plain notation and read by `Decimal`, once its magnitude is
    /// known to be in range (so the plain text stays short whatever the exponent).
    fn to_decimal(&self, text: &str) -> Result<Decimal, DecimalError> {
        let too_large = || DecimalError::TooLarge {
            text: echo::prefix(text),
            negative: self.negative,
        };
        let too_small = || DecimalError::TooSmall {
            text: echo::prefix(text),
        };
        // value = significant × 10^exp10, significant without leading or trailing zeros.
        let all = format!("{}{}", self.int, self.frac);
        let leading = all.trim_start_matches('0');
        let significant = leading.trim_end_matches('0');
        if significant.is_empty() {
            return Ok(Decimal::ZERO);
        }
        let trailing = (leading.len() - significant.len()) as i64;
        let exp10 = self
            .exp
            .saturating_sub(self.frac.len() as i64)
            .saturating_add(trailing);
        let n = significant.len() as i64;
        // 10^(top − 1) ≤ |value| < 10^top
        let top = n.saturating_add(exp10);
        if top > 29 {
            return Err(too_large());
        }
        if top < -28 {
            return Err(too_small());
        }
        let plain = plain(significant, exp10);
        let signed = if self.negative {
            format!("-{plain}")
        } else {
            plain
        };
        match Decimal::from_str(&signed) {
            Ok(d) if d.is_zero() => Err(too_small()),
            Ok(d) => Ok(d),
            Err(_) => Err(too_large()),
        }
    }
}

/// `significant × 10^exp10` in plain notation; the caller has bounded `exp10`.
fn plain(significant: &str, exp10: i64) -> String {
    let n = significant.len();
    if exp10 >= 0 {
        return format!("{significant}{}", "0".repeat(exp10 as usize));
    }
    let k = exp10.unsigned_abs() as usize;
    if k >= n {
        format!("0.{}{significant}", "0".repeat(k - n))
    } else {
        format!("{}.{}", &significant[..n - k], &significant[n - k..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[derive(Debug, PartialEq)]
    enum Want {
        Ok(Decimal),
        NotANumber,
        TooLarge,
        TooSmall,
    }

    fn kind(r: Result<Decimal, DecimalError>) -> Want {
        match r {
            Ok(d) => Want::Ok(d),
            Err(DecimalError::NotANumber { .. }) => Want::NotANumber,
            Err(DecimalError::TooLarge { .. }) => Want::TooLarge,
            Err(DecimalError::TooSmall { .. }) => Want::TooSmall,
        }
    }

    #[test]
    fn grammar_table() {
        use Want::*;
        // Catches: falling back to `Decimal::from_str`, which accepts `1_000`, `+5`, `.5`, and
        // reads 1e-29 as 0.
        let cases: &[(&str, Want)] = &[
            ("123.45", Ok(dec!(123.45))),
            ("  123.45\t", Ok(dec!(123.45))),
            ("-5", Ok(dec!(-5))),
            ("-0", Ok(dec!(0))),
            ("0", Ok(dec!(0))),
            ("007.50", Ok(dec!(7.5))),
            ("1e5", Ok(dec!(100000))),
            ("1E+5", Ok(dec!(100000))),
            ("1.5e3", Ok(dec!(1500))),
            ("25E-2", Ok(dec!(0.25))),
            ("0e999999999999999999999", Ok(dec!(0))),
            ("1e-28", Ok(dec!(0.0000000000000000000000000001))),
            ("79228162514264337593543950335", Ok(Decimal::MAX)),
            ("-79228162514264337593543950335", Ok(Decimal::MIN)),
            ("7.9228162514264337593543950335e28", Ok(Decimal::MAX)),
            (
                "0.12345678901234567890123456789",
                Ok(dec!(0.1234567890123456789012345679)),
            ),
            ("1_000", NotANumber),
            ("+5", NotANumber),
            (".5", NotANumber),
            ("5.", NotANumber),
            ("", NotANumber),
            ("   ", NotANumber),
            ("1 000", NotANumber),
            ("1.2.3", NotANumber),
            ("1e", NotANumber),
            ("1e+", NotANumber),
            ("e5", NotANumber),
            ("--1", NotANumber),
            ("0x10", NotANumber),
            ("NaN", NotANumber),
            ("inf", NotANumber),
            ("1\u{0}", NotANumber),
            ("１２", NotANumber),
            ("1e30", TooLarge),
            ("-1e30", TooLarge),
            ("79228162514264337593543950336", TooLarge),
            ("1e99999999999999999999999", TooLarge),
            ("1e-40", TooSmall),
            ("-1e-29", TooSmall),
            ("0.00000000000000000000000000001", TooSmall),
            ("1e-99999999999999999999999", TooSmall),
        ];
        for (text, want) in cases {
            assert_eq!(&kind(parse_decimal(text)), want, "{text:?}");
        }
    }

    #[test]
    fn messages_name_the_bound_and_cut_the_echo() {
        assert_eq!(
            parse_decimal("1e30").unwrap_err().to_string(),
            "1e30 is out of range (min -79228162514264337593543950335, \
             max 79228162514264337593543950335)"
        );
        assert_eq!(
            parse_decimal("1e-40").unwrap_err().to_string(),
            "1e-40 is out of range (min 0.0000000000000000000000000001 in magnitude)"
        );
        assert_eq!(
            parse_decimal("1_000").unwrap_err().to_string(),
            "not a decimal number: \"1_000\""
        );
        let huge = "9".repeat(10 * 1024 * 1024);
        assert!(parse_decimal(&huge).unwrap_err().to_string().len() < 200);
        let junk = "x".repeat(10 * 1024 * 1024);
        assert!(parse_decimal(&junk).unwrap_err().to_string().len() < 200);
    }
}
