//! "Test connection": proves the credentials work and tells how busy the System Log is.

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::client::OktaClient;
use super::{OktaError, PageRequest, MAX_PAGE_LIMIT};

/// Counting stops after this many log requests so a busy org cannot eat the rate budget.
const REQUEST_BUDGET: u32 = 10;

/// What a successful connection test found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    pub org_url: String,
    /// "oauth2" or "ssws".
    pub auth_mode: &'static str,
    /// The `kid` of the private key Okta accepted (OAuth with JWK keys only).
    pub key_id: Option<String>,
    pub dpop: bool,
    /// Events published in the 24 hours before the test.
    pub events_last_24h: u64,
    /// True when the request budget ran out first: the real count is higher.
    pub count_is_lower_bound: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest_event_published: Option<OffsetDateTime>,
    /// System Log requests made (the token request not included).
    pub requests: u32,
    /// Wall time of the whole test, token included.
    pub latency_ms: u64,
}

#[derive(serde::Deserialize)]
struct Published {
    published: Option<String>,
}

/// Obtains a token through the first request, then counts the last 24 hours of events with
/// bounded queries ([`super::LogSource::test_connection`] of the real client).
pub(super) async fn test_connection(
    client: &OktaClient,
    now: OffsetDateTime,
    deadline: Instant,
) -> Result<ConnectionReport, OktaError> {
    let started = Instant::now();
    // The first page request obtains the token (with the usual retries), so a failure
    // here names the credential problem exactly as the poll would meet it.
    let mut url = client.page_url(&PageRequest::Start {
        since: now - time::Duration::hours(24),
        until: Some(now),
        limit: MAX_PAGE_LIMIT,
    })?;
    let mut requests = 0;
    let mut events = 0u64;
    let mut newest: Option<OffsetDateTime> = None;
    let mut exhausted = true;
    while requests < REQUEST_BUDGET {
        let page = client.get_page(&url, deadline).await?;
        requests += 1;
        events += page.events.len() as u64;
        for raw in &page.events {
            let published = serde_json::from_str::<Published>(raw.get())
                .ok()
                .and_then(|p| p.published)
                .and_then(|p| {
                    OffsetDateTime::parse(&p, &time::format_description::well_known::Rfc3339).ok()
                });
            if published > newest {
                newest = published;
            }
        }
        // Bounded (`until`) queries end without a next link; an empty page ends them too.
        match page.next {
            Some(next) if !page.events.is_empty() => url = next,
            _ => {
                exhausted = false;
                break;
            }
        }
    }
    Ok(ConnectionReport {
        org_url: client.org.to_string(),
        auth_mode: client.auth.mode(),
        key_id: client.auth.key_id(),
        dpop: client.auth.uses_dpop(),
        events_last_24h: events,
        count_is_lower_bound: exhausted,
        newest_event_published: newest,
        requests,
        latency_ms: started.elapsed().as_millis() as u64,
    })
}
