//! [`RateLimiter`]: a token bucket (in its GCRA form) that keeps one Alpaca account under its
//! request budget — Alpaca documents 200 requests a minute per account — however many tasks
//! of the process share the account's client.
//!
//! Each request reserves the next free slot and sleeps until it (first come, first served; no
//! polling). The bucket holds `burst` tokens (a tenth of the budget) and refills the rest of
//! the budget evenly over the window, so any window of the configured length holds at most
//! `requests` requests: `burst` saved up plus `requests − burst` refilled.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A request budget: at most `requests` in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

impl RateLimit {
    /// Alpaca's documented limit of the trading API: 200 requests a minute per account.
    pub const ALPACA: RateLimit = RateLimit {
        requests: 200,
        window: Duration::from_secs(60),
    };
}

/// One account's shared limiter. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RateLimiter {
    /// The time between two refilled tokens.
    interval: Duration,
    /// How far ahead of its theoretical time a request may go: the saved-up burst.
    tolerance: Duration,
    /// The theoretical time of the next request (GCRA's TAT); `None` before the first.
    /// A std Mutex: it is held for a few arithmetic operations, never across an `.await`.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `limit` (a budget of 0 requests is taken as 1).
    pub fn new(limit: RateLimit) -> Self {
        let requests = limit.requests.max(1);
        let burst = (requests / 10).max(1);
        let refilled = (requests - burst).max(1);
        let interval = limit.window / refilled;
        RateLimiter {
            interval,
            tolerance: interval * (burst - 1),
            next: Mutex::new(None),
        }
    }

    /// Waits until this request may go.
    pub async fn acquire(&self) {
        let at = self.reserve(Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// Reserves the next slot for a request made at `now` and returns when it may go.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let theoretical = next.map_or(now, |t| t.max(now));
        let allowed = theoretical
            .checked_sub(self.tolerance)
            .map_or(now, |a| a.max(now));
        *next = Some(theoretical + self.interval);
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most requests of `slots` that fall in any half-open window `[s, s + window)`.
    fn busiest_window(slots: &[Instant], window: Duration) -> usize {
        slots
            .iter()
            .map(|s| {
                slots
                    .iter()
                    .filter(|t| **t >= *s && **t < *s + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_burst_never_puts_more_than_the_budget_in_any_window() {
        // Catches: a bucket refilled at the full rate on top of its burst (up to twice the
        // budget in one window), or no limiting at all.
        let cases = [
            (RateLimit::ALPACA, 250),
            (RateLimit::ALPACA, 1000),
            (
                RateLimit {
                    requests: 20,
                    window: Duration::from_secs(1),
                },
                250,
            ),
            (
                RateLimit {
                    requests: 1,
                    window: Duration::from_secs(1),
                },
                5,
            ),
            (
                RateLimit {
                    requests: 3,
                    window: Duration::from_millis(100),
                },
                50,
            ),
        ];
        for (limit, n) in cases {
            let limiter = RateLimiter::new(limit);
            let start = Instant::now();
            let slots: Vec<Instant> = (0..n).map(|_| limiter.reserve(start)).collect();
            let busiest = busiest_window(&slots, limit.window);
            assert!(
                busiest <= limit.requests.max(1) as usize,
                "{limit:?}: {busiest}"
            );
            // And it does not starve: the first burst goes at once.
            assert_eq!(slots[0], start, "{limit:?}");
        }
    }

    #[test]
    fn an_idle_account_saves_up_only_one_burst() {
        // Catches: tokens accumulated without bound while idle.
        let limit = RateLimit {
            requests: 20,
            window: Duration::from_secs(1),
        };
        let limiter = RateLimiter::new(limit);
        let start = Instant::now();
        let _ = limiter.reserve(start);
        let later = start + Duration::from_secs(3600);
        let slots: Vec<Instant> = (0..40).map(|_| limiter.reserve(later)).collect();
        assert_eq!(slots.iter().filter(|t| **t == later).count(), 2);
        assert!(busiest_window(&slots, limit.window) <= 20);
    }
}
