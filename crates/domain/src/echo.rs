//! How input is echoed back in error messages: a short prefix, so a 10 MB value is never
//! copied into an error, a log line or an HTTP answer.

/// How many characters of an input value an error message repeats.
pub const ECHO_CHARS: usize = 40;

/// The first [`ECHO_CHARS`] characters of `s`, with `…` when something was cut.
pub fn prefix(s: &str) -> String {
    match s.char_indices().nth(ECHO_CHARS) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

/// [`prefix`] quoted and escaped like a Rust string literal (`"a\0b"`), so control
/// characters and NUL show instead of breaking the line.
pub fn quoted(s: &str) -> String {
    format!("{:?}", prefix(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        // (input, echoed). Catches: echoing the whole value.
        let long = "x".repeat(10 * 1024 * 1024);
        let cases: [(&str, String); 4] = [
            ("", "\"\"".into()),
            ("AAPL", "\"AAPL\"".into()),
            ("a\u{0}b", "\"a\\0b\"".into()),
            (&long, format!("\"{}…\"", "x".repeat(ECHO_CHARS))),
        ];
        for (input, want) in cases {
            assert_eq!(quoted(input), want);
        }
        // Cut on a character boundary, never inside a multi-byte character.
        assert_eq!(
            prefix(&"é".repeat(50)),
            format!("{}…", "é".repeat(ECHO_CHARS))
        );
    }
}
