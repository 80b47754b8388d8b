//! Which failed calls are worth repeating, and how long to wait first: exponential backoff
//! with jitter, never sooner than Alpaca's `Retry-After`.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The longest `Retry-After` honoured; a longer one is waited for this long, then the call
/// is tried (and classified) again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What went wrong with one HTTP call to Alpaca.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No answer in time: the request may have reached Alpaca and been acted on.
    Timeout(String),
    /// No connection could be made: the request never left.
    Connect(String),
    /// The connection failed after the request may have left.
    Transport(String),
    /// Alpaca answered with an error status and its `{code, message}` body.
    Status {
        status: u16,
        code: Option<i64>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A success answer that is not what Alpaca documents.
    Decode(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(e) => write!(f, "no answer in time ({e})"),
            CallError::Connect(e) => write!(f, "cannot connect ({e})"),
            CallError::Transport(e) => write!(f, "connection failed ({e})"),
            CallError::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            CallError::Decode(e) => write!(f, "unreadable answer ({e})"),
        }
    }
}

/// Whether a failed call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating it may help. `maybe_delivered`: Alpaca may have acted on it already, so a
    /// submission is looked up before it is sent again. `hint`: the server's `Retry-After`.
    Yes {
        maybe_delivered: bool,
        hint: Option<Duration>,
    },
    /// Repeating it will fail the same way.
    No,
}

impl CallError {
    /// Retryable: timeouts, connection failures, 429 and 5xx; everything else is final.
    pub fn retry(&self) -> Retry {
        match self {
            CallError::Timeout(_) | CallError::Transport(_) => Retry::Yes {
                maybe_delivered: true,
                hint: None,
            },
            CallError::Connect(_) => Retry::Yes {
                maybe_delivered: false,
                hint: None,
            },
            // A throttled request was refused before Alpaca acted on it.
            CallError::Status {
                status: 429,
                retry_after,
                ..
            } => Retry::Yes {
                maybe_delivered: false,
                hint: *retry_after,
            },
            CallError::Status {
                status: 500..=599,
                retry_after,
                ..
            } => Retry::Yes {
                maybe_delivered: true,
                hint: *retry_after,
            },
            CallError::Status { .. } | CallError::Decode(_) => Retry::No,
        }
    }
}

/// How often and how patiently a call is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Repetitions after the first attempt (`[brokers] max_retries`).
    pub max_retries: u32,
    /// The wait before the first repetition; it doubles each time.
    pub base: Duration,
    /// The longest wait between two attempts (before `Retry-After`).
    pub cap: Duration,
}

impl RetryPolicy {
    /// `max_retries` repetitions, from 250 ms up to 8 s apart.
    pub fn new(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        }
    }

    /// The wait before repetition `retry` (1 for the first): half the exponential step plus
    /// a random part of the other half, so that tasks throttled together do not come back
    /// together; never shorter than the server's hint.
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.cap);
        let half = step / 2;
        let jitter = half.mul_f64(unit_random());
        (half + jitter).max(hint.unwrap_or_default().min(MAX_RETRY_AFTER))
    }
}

/// A number in `[0, 1)` from the standard library's randomly seeded hasher: jitter needs no
/// more than that, and no extra dependency.
fn unit_random() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` header: seconds, or an HTTP date (then the time until it, from `now`).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after: Option<Duration>) -> CallError {
        CallError::Status {
            status,
            code: None,
            message: "m".into(),
            retry_after,
        }
    }

    #[test]
    fn failures_are_classified_by_type() {
        // Catches: a 4xx retried (a rejected order sent again), a 5xx or timeout resent
        // without a look-up, or a 429's Retry-After dropped.
        let s = Duration::from_secs(2);
        let cases = [
            (
                CallError::Timeout("t".into()),
                Retry::Yes {
                    maybe_delivered: true,
                    hint: None,
                },
            ),
            (
                CallError::Transport("t".into()),
                Retry::Yes {
                    maybe_delivered: true,
                    hint: None,
                },
            ),
            (
                CallError::Connect("c".into()),
                Retry::Yes {
                    maybe_delivered: false,
                    hint: None,
                },
            ),
            (
                status(429, Some(s)),
                Retry::Yes {
                    maybe_delivered: false,
                    hint: Some(s),
                },
            ),
            (
                status(500, None),
                Retry::Yes {
                    maybe_delivered: true,
                    hint: None,
                },
            ),
            (
                status(503, Some(s)),
                Retry::Yes {
                    maybe_delivered: true,
                    hint: Some(s),
                },
            ),
            (status(401, None), Retry::No),
            (status(403, None), Retry::No),
            (status(404, None), Retry::No),
            (status(422, None), Retry::No),
            (CallError::Decode("d".into()), Retry::No),
        ];
        for (e, want) in cases {
            assert_eq!(e.retry(), want, "{e}");
        }
    }

    #[test]
    fn waits_grow_exponentially_with_jitter_and_honour_retry_after() {
        // Catches: a constant wait, no jitter bound, or a Retry-After cut short.
        let p = RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        let ms = Duration::from_millis;
        let cases = [
            (1, None, ms(50), ms(100)),
            (2, None, ms(100), ms(200)),
            (3, None, ms(200), ms(400)),
            (5, None, ms(500), ms(1000)),
            (9, None, ms(500), ms(1000)),
            (1, Some(ms(3000)), ms(3000), ms(3000)),
            (
                1,
                Some(Duration::from_secs(3600)),
                MAX_RETRY_AFTER,
                MAX_RETRY_AFTER,
            ),
        ];
        for (retry, hint, low, high) in cases {
            for _ in 0..20 {
                let d = p.delay(retry, hint);
                assert!(d >= low && d <= high, "retry {retry}, {hint:?}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let cases = [
            ("3", Some(Duration::from_secs(3))),
            (" 0 ", Some(Duration::ZERO)),
            (
                "Sun, 29 Nov 2026 12:00:05 GMT",
                Some(Duration::from_secs(5)),
            ),
            ("Sun, 29 Nov 2026 11:00:00 GMT", None),
            ("soon", None),
        ];
        for (v, want) in cases {
            assert_eq!(parse_retry_after(v, now), want, "{v}");
        }
    }
}
