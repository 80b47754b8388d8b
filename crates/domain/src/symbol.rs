//! Symbols: the one rule for what a ticker may be, checked once where it enters.
//!
//! The rule is the one the recommendation import has always applied, so every symbol already
//! stored still parses: surrounding whitespace is trimmed, ASCII letters are uppercased, and
//! what remains must be 1 to [`MAX_SYMBOL_LEN`] characters of `A–Z`, `0–9` and `. - _ /`
//! (`BRK.B`, `BTC/USD`). Anything else is refused, never repaired: whitespace inside, a
//! non-ASCII look-alike (Cyrillic `АAPL`), a control character.

use serde::{Deserialize, Serialize};

use crate::echo;

/// The longest symbol accepted.
pub const MAX_SYMBOL_LEN: usize = 32;

/// A valid, normalised (uppercase, trimmed) ticker symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

/// Why a text is not a symbol. Each variant carries the text (a short prefix of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Nothing but whitespace.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_SYMBOL_LEN`].
    #[error("{text} is {len} characters long (max {MAX_SYMBOL_LEN})")]
    TooLong {
        /// The text, quoted and cut to a short prefix.
        text: String,
        /// Its length in characters.
        len: usize,
    },
    /// Whitespace between its characters.
    #[error("{text} contains whitespace")]
    Whitespace {
        /// The text, quoted and cut to a short prefix.
        text: String,
    },
    /// A character outside ASCII, often a look-alike letter.
    #[error("{text} contains the non-ASCII character {ch:?} (U+{code:04X}); symbols are ASCII")]
    NotAscii {
        /// The text, quoted and cut to a short prefix.
        text: String,
        /// The first non-ASCII character.
        ch: char,
        /// Its code point, to tell look-alikes apart.
        code: u32,
    },
    /// An ASCII character outside `A–Z 0–9 . - _ /` (NUL and other controls included).
    #[error("{text} contains {ch:?}; a symbol is made of A-Z, 0-9 and . - _ /")]
    BadCharacter {
        /// The text, quoted and cut to a short prefix.
        text: String,
        /// The first character refused.
        ch: char,
    },
}

impl Symbol {
    /// Trims, uppercases ASCII letters and checks the rule in the module documentation.
    pub fn parse(s: &str) -> Result<Symbol, SymbolError> {
        let trimmed = s.trim();
        let text = || echo::quoted(trimmed);
        if trimmed.is_empty() {
            return Err(SymbolError::Empty);
        }
        if let Some(ch) = trimmed.chars().find(|c| !c.is_ascii()) {
            return Err(SymbolError::NotAscii {
                text: text(),
                ch,
                code: ch as u32,
            });
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(SymbolError::Whitespace { text: text() });
        }
        if let Some(ch) = trimmed
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".-_/".contains(*c)))
        {
            return Err(SymbolError::BadCharacter { text: text(), ch });
        }
        // ASCII from here on: bytes are characters.
        if trimmed.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong {
                text: text(),
                len: trimmed.len(),
            });
        }
        Ok(Symbol(trimmed.to_ascii_uppercase()))
    }

    /// The symbol's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The symbol's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Symbol::parse(s)
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Symbol::parse(&s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0
    }
}

impl PartialEq<str> for Symbol {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Symbol {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_table() {
        // (input, the symbol, or the start of the error). Catches: loosening any part of the
        // rule (a Cyrillic look-alike or an inner space would make a second, distinct symbol).
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("AAPL", Ok("AAPL")),
            ("  aapl\t", Ok("AAPL")),
            ("brk.b", Ok("BRK.B")),
            ("BTC/USD", Ok("BTC/USD")),
            ("SYM_1-X", Ok("SYM_1-X")),
            (&"A".repeat(32), Ok(&"A".repeat(32))),
            ("", Err("must not be empty")),
            ("   ", Err("must not be empty")),
            ("AA PL", Err("\"AA PL\" contains whitespace")),
            (
                "AA\u{a0}PL",
                Err("\"AA\\u{a0}PL\" contains the non-ASCII character '\\u{a0}' (U+00A0)"),
            ),
            (
                "АAPL",
                Err("\"АAPL\" contains the non-ASCII character 'А' (U+0410)"),
            ),
            ("a\u{0}b", Err("\"a\\0b\" contains '\\0'")),
            ("AAPL;DROP", Err("\"AAPL;DROP\" contains ';'")),
            (
                &"A".repeat(33),
                Err("\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" is 33 characters"),
            ),
        ];
        for (input, want) in cases {
            match (Symbol::parse(input), want) {
                (Ok(s), Ok(w)) => assert_eq!(s.as_str(), *w),
                (Err(e), Err(w)) => assert!(e.to_string().starts_with(w), "{input:?}: {e}"),
                (got, _) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn serde_is_a_validated_string() {
        let s: Symbol = serde_json::from_str("\" msft \"").unwrap();
        assert_eq!(s, "MSFT");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"MSFT\"");
        assert!(serde_json::from_str::<Symbol>("\"M SFT\"").is_err());
        assert_eq!(s.to_string(), "MSFT");
        let long = "X".repeat(10 * 1024 * 1024);
        assert!(Symbol::parse(&long).unwrap_err().to_string().len() < 200);
    }
}
