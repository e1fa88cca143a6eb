//! Reading the Okta System Log (`GET /api/v1/logs`).

pub mod auth;
mod body;
mod client;
mod error;
mod exchange;
mod facts;
mod link;
pub mod model;
mod org;
mod page;
mod ratelimit;
mod stats;
mod test_connection;

pub use auth::{Credentials, OAuth2Credentials};
pub use client::{ClientOptions, OktaClient};
pub use error::OktaError;
pub use facts::{LOGS_READ_SCOPE, MAX_PAGE_LIMIT, RETENTION};
pub use org::{InvalidOrgUrl, Loopback, OrgUrl};
pub use page::{Page, PageRequest, RateLimitStatus};
pub use stats::RequestStats;
pub use test_connection::ConnectionReport;

use async_trait::async_trait;
use tokio::time::Instant;

/// A source of System Log pages. The real one talks HTTP to Okta; tests use scripted twins.
#[async_trait]
pub trait LogSource: Send + Sync {
    /// Fetches one page. Transient failures (429, 5xx, timeouts, resets) are retried inside,
    /// but never past `deadline`.
    async fn fetch_page(&self, request: &PageRequest, deadline: Instant)
        -> Result<Page, OktaError>;
}
