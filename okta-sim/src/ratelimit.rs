//! Okta's per-endpoint rate-limit bucket: a fixed window with a request budget.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A request budget per window for `/api/v1/logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitConfig {
    pub limit: u32,
    #[serde(rename = "window_secs", with = "super::config::duration_secs")]
    pub window: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            limit: 120,
            window: Duration::from_secs(60),
        }
    }
}

/// Without a configured bucket the headers still come, with a budget no test exhausts.
const UNLIMITED: RateLimitConfig = RateLimitConfig {
    limit: 1_000_000,
    window: Duration::from_secs(60),
};

/// The rate-limit headers' values for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the window resets.
    pub reset_epoch_s: i64,
    pub exhausted: bool,
}

pub(crate) struct Bucket {
    config: Option<RateLimitConfig>,
    window_start_ms: i64,
    used: u32,
}

impl Bucket {
    pub(crate) fn new(config: Option<RateLimitConfig>) -> Self {
        Bucket {
            config,
            window_start_ms: i64::MIN,
            used: 0,
        }
    }

    pub(crate) fn reconfigure(&mut self, config: Option<RateLimitConfig>) {
        *self = Bucket::new(config);
    }

    /// Counts one request made at `now_ms` and says whether it fits the budget.
    pub(crate) fn consume(&mut self, now_ms: i64) -> Quota {
        let quota = self.peek_at(now_ms);
        if !quota.exhausted {
            self.used += 1;
        }
        Quota {
            remaining: quota.remaining.saturating_sub(u32::from(!quota.exhausted)),
            ..quota
        }
    }

    /// The current quota without spending any of it (for injected 429s).
    pub(crate) fn peek(&mut self, now_ms: i64) -> Quota {
        self.peek_at(now_ms)
    }

    fn peek_at(&mut self, now_ms: i64) -> Quota {
        let cfg = self.config.unwrap_or(UNLIMITED);
        let window_ms = (cfg.window.as_millis() as i64).max(1);
        let start = now_ms - now_ms.rem_euclid(window_ms);
        if start != self.window_start_ms {
            self.window_start_ms = start;
            self.used = 0;
        }
        let end_ms = start + window_ms;
        Quota {
            limit: cfg.limit,
            remaining: cfg.limit.saturating_sub(self.used),
            reset_epoch_s: (end_ms + 999).div_euclid(1000),
            exhausted: self.config.is_some() && self.used >= cfg.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out_within_a_window_and_refills_in_the_next() {
        let mut b = Bucket::new(Some(RateLimitConfig {
            limit: 2,
            window: Duration::from_secs(60),
        }));
        let t = 1_700_000_040_000;
        assert_eq!(b.consume(t).remaining, 1);
        assert_eq!(b.consume(t + 1).remaining, 0);
        let third = b.consume(t + 2);
        assert!(third.exhausted);
        assert_eq!(third.reset_epoch_s, 1_700_000_100);
        assert!(!b.consume(t + 60_000).exhausted);
    }

    #[test]
    fn without_a_bucket_requests_are_never_refused() {
        let mut b = Bucket::new(None);
        for i in 0..1000 {
            assert!(!b.consume(i).exhausted);
        }
        assert_eq!(b.peek(10).limit, UNLIMITED.limit);
    }
}
