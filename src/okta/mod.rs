//! Reading the Okta System Log (`GET /api/v1/logs`).

pub mod auth;
mod body;
mod client;
mod link;
pub mod model;
mod page;
mod ratelimit;
mod stats;
mod test_connection;

pub use client::{ClientOptions, OktaClient, MAX_PAGE_LIMIT};
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

/// Why reading the System Log failed. The variants decide what the drain does next.
#[derive(Debug, thiserror::Error)]
pub enum OktaError {
    #[error("invalid connector configuration: {0}")]
    Config(String),
    /// Credentials that retrying will not fix (invalid_client, deactivated app, revoked token).
    #[error("Okta rejected the credentials ({code}): {summary}")]
    AuthRejected { code: String, summary: String },
    /// The credentials work but lack a permission (e.g. the okta.logs.read scope).
    #[error("Okta denied access ({code}): {summary}")]
    Forbidden { code: String, summary: String },
    #[error("Okta answered HTTP {status} ({code}): {summary}")]
    Http {
        status: u16,
        code: String,
        summary: String,
    },
    #[error("Okta kept answering 429 (rate limited) until the time budget ran out")]
    RateLimited,
    #[error("network error talking to Okta: {0}")]
    Transport(String),
    #[error("the time budget ran out before Okta answered")]
    DeadlineExceeded,
    #[error("malformed response from Okta: {0}")]
    MalformedResponse(String),
    #[error("refused next link {link}: its origin differs from the org URL {org}")]
    ForeignNextLink { link: String, org: String },
}

impl OktaError {
    /// Failures that will not heal by retrying: the connector pauses at once instead of
    /// burning its failure budget.
    pub fn pauses_connector(&self) -> bool {
        matches!(
            self,
            OktaError::AuthRejected { .. } | OktaError::Forbidden { .. }
        )
    }
}
