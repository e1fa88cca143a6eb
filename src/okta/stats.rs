//! Request counters for metrics, shared by the client and its token cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::RateLimitStatus;

/// What one client has done since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RequestStats {
    /// Calls to /api/v1/logs (retries included).
    pub requests: u64,
    /// Responses with HTTP 429.
    pub throttled_429: u64,
    /// Requests repeated after a 429, a 5xx, a timeout or a broken connection.
    pub retries: u64,
    /// Calls to the OAuth token endpoint.
    pub token_requests: u64,
    #[serde(skip)]
    pub last_rate_limit: Option<RateLimitStatus>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    throttled_429: AtomicU64,
    retries: AtomicU64,
    token_requests: AtomicU64,
    last_rate_limit: Mutex<Option<RateLimitStatus>>,
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.throttled_429.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_rate_limit(&self, status: RateLimitStatus) {
        *self
            .last_rate_limit
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimitStatus> {
        *self
            .last_rate_limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> RequestStats {
        RequestStats {
            requests: self.requests.load(Ordering::Relaxed),
            throttled_429: self.throttled_429.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            token_requests: self.token_requests.load(Ordering::Relaxed),
            last_rate_limit: self.rate_limit(),
        }
    }
}
