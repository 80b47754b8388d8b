//! The recommendation parser: JSON Lines in, [`NewRecommendation`]s or every problem out (I6).
//!
//! - A batch is split on bytes, so one line of invalid UTF-8 is reported with its number
//!   instead of failing the whole input; a UTF-8 byte-order mark at the very start is
//!   skipped, blank lines are ignored, `\r\n` endings are accepted.
//! - A line is read as a JSON object whose values are kept as raw text: numbers go straight
//!   from their digits to `Decimal` through [`parse_decimal`], never through `f64` (I7).
//! - Every field is checked and every problem reported, each naming its field. Input is
//!   echoed only as a short prefix ([`crate::echo`]).
//! - What neither database can store is refused here, so SQLite and PostgreSQL answer the
//!   same (I9): a NUL character in text, a leap second.

use std::borrow::Cow;

use chrono::{DateTime, Duration, SubsecRound, Timelike, Utc};
use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Action, NewRecommendation, RiskLevel, TimeHorizon};
use crate::decimal::{DecimalError, parse_decimal};
use crate::echo;
use crate::money::{MAX_PRICE, MIN_PRICE, Price};
use crate::symbol::Symbol;

/// One problem with one field of an input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name (`json` for the line as a whole).
    pub field: String,
    /// What is wrong, with a short prefix of the value concerned.
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// The clock skew allowed by default between a producer and us: `created_at` may be this
/// many seconds ahead of `now` (the config's `[processing] max_clock_skew_seconds`).
pub const DEFAULT_MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// What parsing needs from outside: the time, and how far ahead of it a recommendation may
/// say it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseContext {
    /// The instant of the import: the default `created_at`, and the reference of the
    /// future check.
    pub now: DateTime<Utc>,
    /// A `created_at` later than `now + max_future_skew` is refused.
    pub max_future_skew: Duration,
}

impl ParseContext {
    /// A context at `now` with the default skew ([`DEFAULT_MAX_CLOCK_SKEW_SECONDS`]).
    pub fn new(now: DateTime<Utc>) -> Self {
        ParseContext {
            now,
            max_future_skew: Duration::seconds(DEFAULT_MAX_CLOCK_SKEW_SECONDS),
        }
    }

    /// A context at `now` with the skew as the configuration states it, in seconds.
    pub fn with_max_clock_skew_seconds(now: DateTime<Utc>, seconds: u32) -> Self {
        ParseContext {
            now,
            max_future_skew: Duration::seconds(i64::from(seconds)),
        }
    }
}

/// A line of a batch that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// 1-based line number in the input.
    pub line: usize,
    /// What the line says.
    pub rec: NewRecommendation,
}

/// A problem with one line of a batch; displays as `line N: field: message`, or
/// `line N: message` when it concerns the line as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LineError {
    /// 1-based line number in the input.
    pub line: usize,
    /// The field concerned; `None` for the line as a whole (invalid UTF-8).
    pub field: Option<String>,
    /// What is wrong, with a short prefix of the value concerned.
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a JSON Lines batch, all or nothing: every line's recommendation, or every problem
/// of every line.
///
/// A line without `created_at` gets `ctx.now` plus its 0-based line index in microseconds
/// (the precision both databases keep), so two such lines for one expert and symbol do not
/// share an identity (expert_id, symbol, created_at) and the file's order is kept.
pub fn parse_batch(input: &[u8], ctx: &ParseContext) -> Result<Vec<ParsedLine>, Vec<LineError>> {
    parse_batch_checked(input, ctx, |_| Ok(()))
}

/// [`parse_batch`] with a caller's check of each well-formed line (for example, that its
/// expert is configured); a refusal `(field, message)` is reported with the line's number,
/// alongside the parse errors of the other lines.
pub fn parse_batch_checked(
    input: &[u8],
    ctx: &ParseContext,
    check: impl Fn(&NewRecommendation) -> Result<(), (String, String)>,
) -> Result<Vec<ParsedLine>, Vec<LineError>> {
    let mut parser = LineParser::new(ctx);
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for bytes in input.split(|b| *b == b'\n') {
        match parser.next_line(bytes, &check) {
            Ok(Some(p)) => parsed.push(p),
            Ok(None) => {}
            Err(errs) => errors.extend(errs),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Numbers and parses the lines of one input as they arrive, so that an input of any size
/// is read line by line: [`parse_batch_checked`] is this parser run over a whole buffer.
/// The rules are the batch's: a byte-order mark is skipped at the start of line 1 only,
/// blank lines are counted but yield nothing, and a line without `created_at` gets `ctx.now`
/// plus its 0-based index in microseconds.
#[derive(Debug, Clone)]
pub struct LineParser {
    ctx: ParseContext,
    /// `ctx.now` at the precision both databases keep.
    base: DateTime<Utc>,
    /// 0-based index of the next line.
    index: usize,
}

impl LineParser {
    /// A parser at line 1 of an input.
    pub fn new(ctx: &ParseContext) -> Self {
        LineParser {
            ctx: *ctx,
            base: ctx.now.trunc_subsecs(6),
            index: 0,
        }
    }

    /// How many lines were given so far, blank ones included.
    pub fn lines(&self) -> usize {
        self.index
    }

    /// Parses the next line of the input (its bytes without the `\n`; a final `\r` is
    /// dropped) and runs `check` on it when it is well formed: its recommendation, `None`
    /// for a blank line, or every problem of the line.
    pub fn next_line(
        &mut self,
        bytes: &[u8],
        check: impl Fn(&NewRecommendation) -> Result<(), (String, String)>,
    ) -> Result<Option<ParsedLine>, Vec<LineError>> {
        let index = self.index;
        self.index += 1;
        let line = index + 1;
        let bytes = if index == 0 {
            bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
        } else {
            bytes
        };
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            vec![LineError {
                line,
                field: None,
                message: format!("not valid UTF-8 (byte {})", e.valid_up_to() + 1),
            }]
        })?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        let default_created_at = i64::try_from(index)
            .ok()
            .and_then(|i| self.base.checked_add_signed(Duration::microseconds(i)))
            .unwrap_or(self.base);
        let rec = parse_with(text, &self.ctx, default_created_at).map_err(|errs| {
            errs.into_iter()
                .map(|e| LineError {
                    line,
                    field: Some(e.field),
                    message: e.problem,
                })
                .collect::<Vec<_>>()
        })?;
        check(&rec).map_err(|(field, message)| {
            vec![LineError {
                line,
                field: Some(field),
                message,
            }]
        })?;
        Ok(Some(ParsedLine { line, rec }))
    }
}

impl NewRecommendation {
    /// Parses one JSON Lines line. `now` is the default `created_at`; a `created_at` more
    /// than [`DEFAULT_MAX_CLOCK_SKEW_SECONDS`] ahead of it is refused. Every problem is
    /// returned, each naming its field. Batches should use [`parse_batch`].
    pub fn parse_line(line: &str, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        Self::parse_line_with(line, &ParseContext::new(now))
    }

    /// [`NewRecommendation::parse_line`] with an explicit context.
    pub fn parse_line_with(line: &str, ctx: &ParseContext) -> Result<Self, Vec<FieldError>> {
        parse_with(line, ctx, ctx.now.trunc_subsecs(6))
    }
}

/// Reads a decimal from a JSON number or a decimal string, through [`parse_decimal`].
pub fn json_decimal(v: &serde_json::Value) -> Result<Decimal, String> {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return Err("must be a number or a decimal string".into()),
    };
    parse_decimal(&text).map_err(|e| e.to_string())
}

/// Parses an RFC 3339 time into UTC, truncated to microseconds. A leap second
/// (`23:59:60`) is refused: PostgreSQL cannot store it, and both databases must agree.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("not an RFC 3339 time ({e}): {}", echo::quoted(s)))?;
    // chrono keeps a leap second as nanoseconds ≥ 10^9 of second 59.
    if t.nanosecond() >= 1_000_000_000 {
        return Err(format!(
            "{} is a leap second (second 60), which cannot be stored; use 23:59:59 or 00:00:00",
            echo::quoted(s)
        ));
    }
    Ok(t.with_timezone(&Utc).trunc_subsecs(6))
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

/// A JSON object's members in input order, each value as its raw text.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(FIELDS.len());
                while let Some((MemberName(name), value)) =
                    map.next_entry::<MemberName<'de>, &'de RawValue>()?
                {
                    members.push((name, value));
                }
                Ok(RawObject(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// A member's name, borrowed from the line unless it holds an escape: no allocation per
/// field of a well-formed line.
struct MemberName<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = MemberName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Name)
    }
}

/// A field's value: `Ok(None)` when absent or null, `Err(Reported)` when refused (the
/// problem is already in the reader's list).
type Got<T> = Result<Option<T>, Reported>;

/// The marker that a problem was recorded.
struct Reported;

/// Reads the fields of one line, collecting every problem.
struct Reader<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    errors: Vec<FieldError>,
}

/// A key as it may be repeated in an error: itself when short and printable, else quoted.
fn field_name(key: &str) -> String {
    if key.len() <= echo::ECHO_CHARS && key.chars().all(|c| c.is_ascii_graphic()) {
        key.to_string()
    } else {
        echo::quoted(key)
    }
}

impl<'a> Reader<'a> {
    /// Reads the object of `line`, refusing unknown and repeated fields.
    fn new(line: &'a str) -> Result<Self, Vec<FieldError>> {
        let whole = |problem: String| {
            vec![FieldError {
                field: "json".into(),
                problem,
            }]
        };
        if !line.trim_start().starts_with('{') {
            return Err(whole("a line must be a JSON object".into()));
        }
        let RawObject(members) =
            serde_json::from_str(line).map_err(|e| whole(format!("malformed JSON: {e}")))?;
        let mut reader = Reader {
            members,
            errors: Vec::new(),
        };
        let problems: Vec<FieldError> = reader
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, (key, _))| {
                if !FIELDS.contains(&key.as_ref()) {
                    Some((field_name(key), "unknown field"))
                } else if reader.members[..i].iter().any(|(k, _)| k == key) {
                    Some((key.to_string(), "given more than once"))
                } else {
                    None
                }
            })
            .map(|(field, problem)| FieldError {
                field,
                problem: problem.into(),
            })
            .collect();
        reader.errors = problems;
        Ok(reader)
    }

    fn refuse(&mut self, field: &str, problem: impl Into<String>) -> Reported {
        self.errors.push(FieldError {
            field: field.to_string(),
            problem: problem.into(),
        });
        Reported
    }

    /// The raw value of a known field; a JSON `null` counts as absent.
    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }

    /// A value that must be present.
    fn required<T>(&mut self, name: &str, got: Got<T>) -> Option<T> {
        match got {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.refuse(name, "missing");
                None
            }
            Err(Reported) => None,
        }
    }

    /// A JSON string without NUL (which PostgreSQL text cannot hold).
    fn string(&mut self, name: &str) -> Got<String> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        match serde_json::from_str::<String>(raw.get()) {
            Ok(s) if s.contains('\0') => Err(self.refuse(
                name,
                "contains a NUL character (\\u0000), which text cannot hold",
            )),
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(self.refuse(
                name,
                format!("must be a string, got {}", echo::prefix(raw.get())),
            )),
        }
    }

    /// The id of an expert: a positive JSON integer.
    fn expert_id(&mut self) -> Got<i64> {
        let Some(raw) = self.raw("expert_id") else {
            return Ok(None);
        };
        match raw.get().parse::<i64>() {
            Ok(id) if id > 0 => Ok(Some(id)),
            _ => Err(self.refuse(
                "expert_id",
                format!(
                    "must be a positive integer, got {}",
                    echo::prefix(raw.get())
                ),
            )),
        }
    }

    fn symbol(&mut self) -> Got<String> {
        match self.string("symbol")? {
            None => Ok(None),
            Some(s) => match Symbol::parse(&s) {
                Ok(sym) => Ok(Some(sym.into_string())),
                Err(e) => Err(self.refuse("symbol", e.to_string())),
            },
        }
    }

    /// One of an enum's wire names (surrounding whitespace ignored).
    fn wire<T>(&mut self, name: &str, parse: fn(&str) -> Option<T>) -> Got<T>
    where
        T: strum::VariantArray + Copy + Into<&'static str>,
    {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        let parsed = serde_json::from_str::<String>(raw.get())
            .ok()
            .and_then(|s| parse(s.trim()));
        match parsed {
            Some(v) => Ok(Some(v)),
            None => {
                let allowed: Vec<&str> = T::VARIANTS.iter().map(|v| (*v).into()).collect();
                Err(self.refuse(
                    name,
                    format!(
                        "must be one of {}, got {}",
                        allowed.join(", "),
                        echo::prefix(raw.get())
                    ),
                ))
            }
        }
    }

    /// A decimal within [min, max], from a JSON number (its digits, never an f64) or a
    /// decimal string.
    fn decimal(&mut self, name: &str, min: Decimal, max: Decimal) -> Got<Decimal> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        let text = raw.get();
        let number = if text.starts_with('"') {
            serde_json::from_str::<String>(text).ok()
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Some(text.to_string())
        } else {
            None
        };
        let Some(number) = number else {
            return Err(self.refuse(
                name,
                format!(
                    "must be a number or a decimal string, got {}",
                    echo::prefix(text)
                ),
            ));
        };
        let out_of_range = || {
            format!(
                "{} is out of range (min {min}, max {max})",
                echo::prefix(number.trim())
            )
        };
        match parse_decimal(&number) {
            Ok(d) if d < min || d > max => Err(self.refuse(name, out_of_range())),
            Ok(d) => Ok(Some(d)),
            Err(DecimalError::TooLarge { .. }) => Err(self.refuse(name, out_of_range())),
            Err(DecimalError::TooSmall { .. }) if min > Decimal::ZERO => {
                Err(self.refuse(name, out_of_range()))
            }
            Err(e) => Err(self.refuse(name, e.to_string())),
        }
    }

    /// A price field: a decimal within the price bounds.
    fn price(&mut self, name: &str) -> Got<Price> {
        match self.decimal(name, MIN_PRICE, MAX_PRICE)? {
            None => Ok(None),
            Some(d) => match Price::new(d) {
                Ok(p) => Ok(Some(p)),
                Err(e) => Err(self.refuse(name, e.to_string())),
            },
        }
    }

    /// `created_at`: an RFC 3339 time not ahead of `ctx.now` by more than the skew, or
    /// `default` when absent.
    fn created_at(&mut self, ctx: &ParseContext, default: DateTime<Utc>) -> Got<DateTime<Utc>> {
        let Some(s) = self.string("created_at")? else {
            return Ok(Some(default));
        };
        let t = parse_time(&s).map_err(|e| self.refuse("created_at", e))?;
        match ctx.now.checked_add_signed(ctx.max_future_skew) {
            Some(limit) if t > limit => Err(self.refuse(
                "created_at",
                format!(
                    "{} is in the future (more than {} s ahead of now)",
                    echo::quoted(&s),
                    ctx.max_future_skew.num_seconds()
                ),
            )),
            _ => Ok(Some(t)),
        }
    }
}

/// Parses one line; `default_created_at` is used when the line has no `created_at`.
fn parse_with(
    line: &str,
    ctx: &ParseContext,
    default_created_at: DateTime<Utc>,
) -> Result<NewRecommendation, Vec<FieldError>> {
    let mut r = Reader::new(line)?;
    let hundred = Decimal::ONE_HUNDRED;
    let max_profit = Decimal::from(10_000);
    let got = r.expert_id();
    let expert_id = r.required("expert_id", got);
    let got = r.symbol();
    let symbol = r.required("symbol", got);
    let got = r.wire("action", Action::parse);
    let action = r.required("action", got);
    let got = r.decimal("confidence", Decimal::ZERO, hundred);
    let confidence = r.required("confidence", got);
    let got = r.decimal("expected_profit_percent", -max_profit, max_profit);
    let expected_profit_percent = r.required("expected_profit_percent", got);
    let got = r.price("price_at_date");
    let price_at_date = r.required("price_at_date", got);
    let got = r.wire("risk_level", RiskLevel::parse);
    let risk_level = r.required("risk_level", got);
    let got = r.wire("time_horizon", TimeHorizon::parse);
    let time_horizon = r.required("time_horizon", got);
    let target_price = r.price("target_price");
    let details = r.string("details");
    let created_at = r.created_at(ctx, default_created_at);
    let build = || {
        Some(NewRecommendation {
            expert_id: expert_id?,
            symbol: symbol?,
            action: action?,
            confidence: confidence?.normalize(),
            expected_profit_percent: expected_profit_percent?.normalize(),
            price_at_date: price_at_date?,
            risk_level: risk_level?,
            time_horizon: time_horizon?,
            target_price: target_price.ok()?,
            details: details.ok()?,
            created_at: created_at.ok()??,
        })
    };
    match build() {
        Some(rec) if r.errors.is_empty() => Ok(rec),
        // Every missing value above recorded a problem; the fallback still answers with an
        // error rather than panicking.
        _ if r.errors.is_empty() => Err(vec![FieldError {
            field: "json".into(),
            problem: "incomplete line".into(),
        }]),
        _ => Err(r.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn now() -> DateTime<Utc> {
        parse_time("2026-11-27T12:00:00Z").unwrap()
    }

    fn ctx() -> ParseContext {
        ParseContext::new(now())
    }

    /// A good line with `field` set to the raw JSON `value` (or removed when `None`).
    fn line_with(field: &str, value: Option<&str>) -> String {
        let mut fields = vec![
            ("expert_id", "3".to_string()),
            ("symbol", "\"SYM0042\"".into()),
            ("action", "\"BUY\"".into()),
            ("confidence", "71.5".into()),
            ("expected_profit_percent", "8.25".into()),
            ("price_at_date", "123.45".into()),
            ("risk_level", "\"MEDIUM\"".into()),
            ("time_horizon", "\"SHORT_TERM\"".into()),
            ("created_at", "\"2026-11-27T10:00:07Z\"".into()),
        ];
        fields.retain(|(k, _)| *k != field);
        if let Some(v) = value {
            fields.push((field, v.to_string()));
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    /// The problems of a line as `field: problem` strings.
    fn problems(line: &str) -> Vec<String> {
        match NewRecommendation::parse_line_with(line, &ctx()) {
            Ok(r) => panic!("{line}: accepted as {r:?}"),
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn refusals_name_the_field_and_the_reason() {
        // (field, raw JSON value, expected problem). Catches: each refusal's removal, and
        // an out-of-range figure reported as "not a decimal number".
        let huge = format!("\"{}\"", "x".repeat(10 * 1024 * 1024));
        let cases: Vec<(&str, &str, &str)> = vec![
            // NUL: PostgreSQL text cannot hold it, SQLite can; both must answer the same.
            (
                "details",
                r#""a\u0000b""#,
                "details: contains a NUL character",
            ),
            (
                "symbol",
                r#""a\u0000b""#,
                "symbol: contains a NUL character",
            ),
            (
                "action",
                r#""BUY\u0000""#,
                "action: must be one of BUY, SELL, HOLD, OVERWEIGHT, UNDERWEIGHT, got \"BUY\\u0000\"",
            ),
            (
                "created_at",
                r#""2026\u0000""#,
                "created_at: contains a NUL character",
            ),
            (
                "created_at",
                r#""2026-12-31T23:59:60Z""#,
                "created_at: \"2026-12-31T23:59:60Z\" is a leap second",
            ),
            (
                "created_at",
                r#""9999-12-31T00:00:00Z""#,
                "created_at: \"9999-12-31T00:00:00Z\" is in the future (more than 300 s ahead of now)",
            ),
            (
                "created_at",
                r#""2026-11-27T12:05:01Z""#,
                "created_at: \"2026-11-27T12:05:01Z\" is in the future",
            ),
            (
                "confidence",
                "1e30",
                "confidence: 1e30 is out of range (min 0, max 100)",
            ),
            (
                "confidence",
                "\"1e30\"",
                "confidence: 1e30 is out of range (min 0, max 100)",
            ),
            (
                "confidence",
                "100.01",
                "confidence: 100.01 is out of range (min 0, max 100)",
            ),
            (
                "confidence",
                "1e-40",
                "confidence: 1e-40 is out of range (min 0.0000000000000000000000000001 in magnitude)",
            ),
            (
                "expected_profit_percent",
                "-1e30",
                "expected_profit_percent: -1e30 is out of range (min -10000, max 10000)",
            ),
            (
                "price_at_date",
                "1e-40",
                "price_at_date: 1e-40 is out of range (min 0.0001, max 1000000000)",
            ),
            (
                "price_at_date",
                "\"0.0000000000000000000000000001\"",
                "price_at_date: 0.0000000000000000000000000001 is out of range (min 0.0001, max 1000000000)",
            ),
            (
                "price_at_date",
                "0",
                "price_at_date: 0 is out of range (min 0.0001, max 1000000000)",
            ),
            (
                "price_at_date",
                "1e400",
                "price_at_date: 1e400 is out of range (min 0.0001, max 1000000000)",
            ),
            (
                "price_at_date",
                "\"1_000\"",
                "price_at_date: not a decimal number: \"1_000\"",
            ),
            (
                "price_at_date",
                "true",
                "price_at_date: must be a number or a decimal string, got true",
            ),
            (
                "target_price",
                "1e10",
                "target_price: 1e10 is out of range (min 0.0001, max 1000000000)",
            ),
            (
                "symbol",
                "\"АAPL\"",
                "symbol: \"АAPL\" contains the non-ASCII character",
            ),
            (
                "symbol",
                "\"AA PL\"",
                "symbol: \"AA PL\" contains whitespace",
            ),
            (
                "expert_id",
                "1.5",
                "expert_id: must be a positive integer, got 1.5",
            ),
            (
                "action",
                "\"BUYY\"",
                "action: must be one of BUY, SELL, HOLD, OVERWEIGHT, UNDERWEIGHT, got \"BUYY\"",
            ),
            // A 10 MB value is echoed as a short prefix, never whole.
            (
                "symbol",
                &huge,
                "symbol: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" is 10485760 characters long (max 32)",
            ),
            (
                "action",
                &huge,
                "action: must be one of BUY, SELL, HOLD, OVERWEIGHT, UNDERWEIGHT, got \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…",
            ),
            (
                "confidence",
                &huge,
                "confidence: not a decimal number: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\"",
            ),
        ];
        for (field, value, want) in cases {
            let got = problems(&line_with(field, Some(value)));
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "{field}={}: want {want:?}, got {got:?}",
                echo::prefix(value)
            );
            assert!(got.iter().all(|p| p.len() < 300), "{got:?}");
        }
    }

    #[test]
    fn line_shape_problems() {
        let huge_key = "k".repeat(10 * 1024 * 1024);
        let cases: Vec<(String, &str)> = vec![
            ("{not json".into(), "json: malformed JSON"),
            ("[1,2]".into(), "json: a line must be a JSON object"),
            (line_with("expert_id", None), "expert_id: missing"),
            (
                line_with("confidence", Some("1")).replace('}', r#","confidence":2}"#),
                "confidence: given more than once",
            ),
            (line_with("extra", Some("1")), "extra: unknown field"),
            (
                line_with(&huge_key, Some("1")),
                "\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…\": unknown field",
            ),
        ];
        for (line, want) in cases {
            let got = problems(&line);
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn what_is_accepted() {
        // Catches: numbers read through f64 (123.456789012345678 would become
        // 123.45678901234568), and the skew check refusing what is within it.
        let cases: Vec<(&str, &str)> = vec![
            ("price_at_date", "123.456789012345678"),
            ("price_at_date", "\"1.2345e2\""),
            ("price_at_date", "1E2"),
            ("confidence", "\" 50 \""),
            ("created_at", "\"2026-11-27T12:04:59Z\""),
            ("created_at", "\"2026-11-27T14:04:59+02:00\""),
            ("created_at", "null"),
            ("details", "\"naïve ünïcode ✓\""),
            ("target_price", "null"),
        ];
        for (field, value) in cases {
            let line = line_with(field, Some(value));
            if let Err(e) = NewRecommendation::parse_line_with(&line, &ctx()) {
                panic!("{field}={value}: {e:?}");
            }
        }
        let r = NewRecommendation::parse_line_with(
            &line_with("price_at_date", Some("123.456789012345678")),
            &ctx(),
        )
        .unwrap();
        assert_eq!(r.price_at_date.get(), dec!(123.456789012345678));
    }

    #[test]
    fn the_skew_is_a_parameter() {
        let line = line_with("created_at", Some("\"2026-11-27T12:00:01Z\""));
        let strict = ParseContext::with_max_clock_skew_seconds(now(), 0);
        assert!(NewRecommendation::parse_line_with(&line, &strict).is_err());
        let lax = ParseContext::with_max_clock_skew_seconds(now(), 1);
        assert!(NewRecommendation::parse_line_with(&line, &lax).is_ok());
        // parse_line keeps working, with the default skew.
        assert!(NewRecommendation::parse_line(&line, now()).is_ok());
        let far = line_with("created_at", Some("\"2026-11-27T12:05:01Z\""));
        assert!(NewRecommendation::parse_line(&far, now()).is_err());
    }

    #[test]
    fn batch_reports_lines_and_keeps_identities_apart() {
        let no_time = line_with("created_at", None);
        let mut input = Vec::new();
        input.extend_from_slice(UTF8_BOM);
        input.extend_from_slice(format!("{no_time}\r\n\n  \n{no_time}\n").as_bytes());
        let parsed = parse_batch(&input, &ctx()).unwrap();
        let lines: Vec<usize> = parsed.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 4]);
        // Catches: giving every line `now` (the two would share an identity).
        assert_eq!(parsed[0].rec.created_at, now());
        assert_eq!(parsed[1].rec.created_at, now() + Duration::microseconds(3));

        let mut bad = Vec::new();
        bad.extend_from_slice(format!("{no_time}\n\n").as_bytes());
        bad.extend_from_slice(b"{\"symbol\":\"\xff\"}\n");
        bad.extend_from_slice(line_with("confidence", Some("101")).as_bytes());
        bad.extend_from_slice(b"\n\xEF\xBB\xBF{}\n");
        let errs: Vec<String> = parse_batch(&bad, &ctx())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs[0], "line 3: not valid UTF-8 (byte 12)");
        assert_eq!(
            errs[1],
            "line 4: confidence: 101 is out of range (min 0, max 100)"
        );
        // A byte-order mark anywhere but at the very start is not skipped.
        assert!(
            errs[2].starts_with("line 5: json: a line must be a JSON object"),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 3);
    }
}
