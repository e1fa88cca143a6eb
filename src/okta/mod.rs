//! The Okta port: reading the System Log (`GET /api/v1/logs`) and proving a connection works.
//!
//! [`LogSource`] is the port; [`OktaClient`] is the real implementation and
//! `memory::MemoryLogSource` the scripted in-memory twin (feature `testkit`). A [`SourceFactory`] builds one
//! source per connector configuration, so the connector never names the HTTP client.

pub mod auth;
mod body;
mod client;
mod error;
mod exchange;
mod facts;
mod link;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod model;
mod org;
mod pacer;
mod page;
mod ratelimit;
mod stats;
mod test_connection;

pub use auth::{Credentials, OAuth2Credentials};
pub use client::{ClientOptions, OktaClient};
pub use error::OktaError;
pub use facts::{LOGS_READ_SCOPE, MAX_PAGE_LIMIT, RETENTION};
pub use org::{InvalidOrgUrl, Loopback, OrgUrl};
pub use pacer::share_of;
pub use page::{Page, PageRequest, RateLimitStatus};
pub use stats::RequestStats;
pub use test_connection::ConnectionReport;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::time::Instant;

/// A source of System Log pages. The real one talks HTTP to Okta; tests use scripted twins.
#[async_trait]
pub trait LogSource: Send + Sync {
    /// Fetches one page. Transient failures (429, 5xx, timeouts, resets) are retried inside,
    /// but never past `deadline`.
    async fn fetch_page(&self, request: &PageRequest, deadline: Instant)
        -> Result<Page, OktaError>;

    /// Proves the credentials work and counts the events of the 24 hours before `now`, with a
    /// bounded number of requests.
    async fn test_connection(
        &self,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<ConnectionReport, OktaError>;

    /// What this source has done since it was created (requests, 429s, the last rate-limit
    /// headers). Callers take differences for per-invocation figures.
    fn stats(&self) -> RequestStats;
}

#[async_trait]
impl<T: LogSource + ?Sized> LogSource for Arc<T> {
    async fn fetch_page(
        &self,
        request: &PageRequest,
        deadline: Instant,
    ) -> Result<Page, OktaError> {
        (**self).fetch_page(request, deadline).await
    }

    async fn test_connection(
        &self,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<ConnectionReport, OktaError> {
        (**self).test_connection(now, deadline).await
    }

    fn stats(&self) -> RequestStats {
        (**self).stats()
    }
}

/// Builds the source of one connector from its org and credentials. The connector caches
/// what it builds and asks again only when the connector's secret changes.
pub trait SourceFactory: Send + Sync {
    type Source: LogSource + 'static;

    fn source(
        &self,
        org: &OrgUrl,
        credentials: &Credentials,
        options: &ClientOptions,
    ) -> Result<Self::Source, OktaError>;
}

/// The production factory: an [`OktaClient`] per connector configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct OktaSources;

impl SourceFactory for OktaSources {
    type Source = OktaClient;

    fn source(
        &self,
        org: &OrgUrl,
        credentials: &Credentials,
        options: &ClientOptions,
    ) -> Result<OktaClient, OktaError> {
        OktaClient::new(org, credentials, options.clone())
    }
}
