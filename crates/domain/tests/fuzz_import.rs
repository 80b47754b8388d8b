//! The import parser against arbitrary input (I6): random bytes, and valid lines with random
//! bytes spliced in, never panic; a batch is either all lines or a list of errors, each
//! naming a line that exists. Runs in the normal test suite for a bounded number of cases.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use tradewarden_domain::recommendation::{ParseContext, parse_batch};

const VALID: &str = r#"{"expert_id":1,"symbol":"AAPL","action":"BUY","confidence":80,"expected_profit_percent":10,"price_at_date":"187.25","risk_level":"LOW","time_horizon":"SHORT_TERM","created_at":"2026-11-27T10:00:00Z"}"#;

fn ctx() -> ParseContext {
    ParseContext::new(Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap())
}

/// Every error names a line of the input; a success has one recommendation per non-blank line.
fn check(input: &[u8]) {
    let lines = input.split(|b| *b == b'\n').count();
    match parse_batch(input, &ctx()) {
        Ok(parsed) => assert!(parsed.len() <= lines),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                assert!(e.to_string().len() < 2_000, "an echo must be cut: {e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        check(&input);
    }

    #[test]
    fn valid_lines_with_bytes_spliced_in_never_panic(
        at in 0..VALID.len(),
        cut in 0..16usize,
        splice in proptest::collection::vec(any::<u8>(), 0..64),
        copies in 1..4usize,
    ) {
        let mut line = VALID.as_bytes().to_vec();
        let end = (at + cut).min(line.len());
        line.splice(at..end, splice);
        let mut input = Vec::new();
        for _ in 0..copies {
            input.extend_from_slice(&line);
            input.push(b'\n');
        }
        check(&input);
    }

    #[test]
    fn numbers_of_any_size_never_panic(
        field in prop::sample::select(vec!["confidence", "expected_profit_percent", "price_at_date", "target_price", "expert_id"]),
        number in "-?[0-9]{0,40}(\\.[0-9]{0,40})?([eE][-+]?[0-9]{1,4})?",
    ) {
        let line = VALID.replacen("\"action\"", &format!("\"{field}\":{number},\"action\""), 1);
        check(line.as_bytes());
    }
}
