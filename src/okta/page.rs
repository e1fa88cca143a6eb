use serde_json::value::RawValue;
use time::OffsetDateTime;
use url::Url;

/// What to ask the System Log for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// The first request of a stream: `since` (and `until` for bounded backfill windows),
    /// ascending, `limit` events per page.
    Start {
        since: OffsetDateTime,
        until: Option<OffsetDateTime>,
        limit: u32,
    },
    /// A `rel="next"` link returned by Okta (already checked to be same-origin).
    Next(Url),
}

/// One page of the System Log as Okta sent it.
#[derive(Debug)]
pub struct Page {
    /// Each event's raw JSON, in the order Okta returned them.
    pub events: Vec<Box<RawValue>>,
    /// The `rel="next"` link. Polling requests always carry one (an empty page means "caught up");
    /// bounded (`until`) requests end without one.
    pub next: Option<Url>,
    pub rate_limit: Option<RateLimitStatus>,
    /// Size of the response body, for metrics and limits.
    pub body_bytes: usize,
}

/// The X-Rate-Limit-* headers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset: OffsetDateTime,
}
