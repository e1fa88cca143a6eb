//! The in-memory twin of the Okta port: a System Log held in memory, paged the way Okta pages
//! it, with scripted failures and a gate that holds requests, so the drain loop and the
//! actions are tested without HTTP.
//!
//! Positions follow persistence order, as Okta's `after` cursor does: an event appended later
//! with an older `published` (late-persisted) still comes after the current position.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use super::{
    ClientOptions, ConnectionReport, Credentials, LogSource, OktaError, OrgUrl, Page, PageRequest,
    RateLimitStatus, RequestStats, SourceFactory, MAX_PAGE_LIMIT,
};

/// The origin of the twin's `next` links.
pub const ORIGIN: &str = "https://memory.okta.test";

/// A scripted System Log.
#[derive(Debug, Default)]
pub struct MemoryLogSource {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Persistence order; each with its `published` time.
    events: Vec<(OffsetDateTime, Box<RawValue>)>,
    failures: VecDeque<OktaError>,
    /// Requests beyond this many never answer (until the caller gives up).
    answer_limit: Option<u64>,
    rate_limit: Option<RateLimitStatus>,
    requests: Vec<PageRequest>,
    stats: RequestStats,
}

impl MemoryLogSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends events (each needs an RFC 3339 `published`) in persistence order.
    pub fn append(&self, events: impl IntoIterator<Item = serde_json::Value>) {
        let mut state = self.lock();
        for event in events {
            let published = event["published"]
                .as_str()
                .and_then(|p| {
                    OffsetDateTime::parse(p, &time::format_description::well_known::Rfc3339).ok()
                })
                .expect("twin events carry an RFC 3339 published time");
            let raw = RawValue::from_string(event.to_string()).expect("JSON");
            state.events.push((published, raw));
        }
    }

    /// The next requests fail with these errors, in order (each counts as a request).
    pub fn fail_next(&self, errors: impl IntoIterator<Item = OktaError>) {
        self.lock().failures.extend(errors);
    }

    /// Answers `n` more requests, then holds every later one until its caller gives up: a
    /// request stuck in a rate-limit wait or on a dead connection.
    pub fn answer_only(&self, n: u64) {
        let mut state = self.lock();
        state.answer_limit = Some(state.stats.requests + n);
    }

    /// The rate-limit headers every later answer carries.
    pub fn set_rate_limit(&self, status: RateLimitStatus) {
        self.lock().rate_limit = Some(status);
    }

    /// Every request made, in order.
    pub fn requests(&self) -> Vec<PageRequest> {
        self.lock().requests.clone()
    }

    /// The `next` link that points just past the `n`th event.
    pub fn link_after(n: usize, limit: u32) -> Url {
        link(n, limit, None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the request and decides whether it is answered, fails or is held.
    fn admit(&self, request: &PageRequest) -> Admission {
        let mut state = self.lock();
        state.requests.push(request.clone());
        if state
            .answer_limit
            .is_some_and(|limit| state.stats.requests >= limit)
        {
            return Admission::Hold;
        }
        state.stats.requests += 1;
        if let Some(status) = state.rate_limit {
            state.stats.last_rate_limit = Some(status);
        }
        match state.failures.pop_front() {
            Some(err) => {
                if matches!(err, OktaError::RateLimited) {
                    state.stats.throttled_429 += 1;
                }
                Admission::Fail(err)
            }
            None => Admission::Answer,
        }
    }

    fn page(&self, request: &PageRequest) -> Result<Page, OktaError> {
        let state = self.lock();
        let (start, limit, until) = match request {
            PageRequest::Start {
                since,
                until,
                limit,
            } => {
                let start = state
                    .events
                    .iter()
                    .position(|(published, _)| published >= since)
                    .unwrap_or(state.events.len());
                (start, *limit, *until)
            }
            PageRequest::Next(url) => parse_link(url)?,
        };
        let limit = limit.clamp(1, MAX_PAGE_LIMIT);
        let in_window = |published: &OffsetDateTime| until.is_none_or(|end| *published < end);
        let mut events = Vec::new();
        let mut position = start;
        for (published, raw) in state.events.iter().skip(start) {
            if events.len() == limit as usize {
                break;
            }
            position += 1;
            if in_window(published) {
                events.push(raw.clone());
            }
        }
        // Polling requests always link on; bounded ones stop once the window is read.
        let more_in_window = state
            .events
            .iter()
            .skip(position)
            .any(|(published, _)| in_window(published));
        let next = (until.is_none() || more_in_window).then(|| link(position, limit, until));
        let body_bytes = events.iter().map(|e| e.get().len() + 1).sum();
        Ok(Page {
            events,
            next,
            rate_limit: state.rate_limit,
            body_bytes,
        })
    }
}

enum Admission {
    Answer,
    Fail(OktaError),
    Hold,
}

#[async_trait]
impl LogSource for MemoryLogSource {
    async fn fetch_page(
        &self,
        request: &PageRequest,
        deadline: Instant,
    ) -> Result<Page, OktaError> {
        match self.admit(request) {
            Admission::Answer => self.page(request),
            Admission::Fail(err) => Err(err),
            Admission::Hold => {
                tokio::time::sleep_until(deadline).await;
                Err(OktaError::DeadlineExceeded)
            }
        }
    }

    async fn test_connection(
        &self,
        now: OffsetDateTime,
        _deadline: Instant,
    ) -> Result<ConnectionReport, OktaError> {
        let since = now - time::Duration::hours(24);
        let request = PageRequest::Start {
            since,
            until: Some(now),
            limit: MAX_PAGE_LIMIT,
        };
        if let Admission::Fail(err) = self.admit(&request) {
            return Err(err);
        }
        let state = self.lock();
        let recent: Vec<OffsetDateTime> = state
            .events
            .iter()
            .map(|(published, _)| *published)
            .filter(|published| (since..now).contains(published))
            .collect();
        Ok(ConnectionReport {
            org_url: format!("{ORIGIN}/"),
            auth_mode: "ssws",
            key_id: None,
            dpop: false,
            events_last_24h: recent.len() as u64,
            count_is_lower_bound: false,
            newest_event_published: recent.iter().max().copied(),
            requests: 1,
            latency_ms: 0,
        })
    }

    fn stats(&self) -> RequestStats {
        self.lock().stats
    }
}

/// A sign-in of `user` (a catalog event the normalizer publishes), for twin logs.
pub fn sign_in(uuid: &str, user: &str, published: OffsetDateTime) -> serde_json::Value {
    serde_json::json!({
        "uuid": uuid,
        "published": published
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339"),
        "eventType": "user.session.start",
        "displayMessage": "User login to Okta",
        "severity": "INFO",
        "outcome": {"result": "SUCCESS"},
        "actor": {"id": format!("00u{user}"), "type": "User",
                  "alternateId": format!("{user}@acme.example"), "displayName": user},
        "legacyEventType": "core.user_auth.login_success",
    })
}

/// A factory that hands every connector the same twin.
#[derive(Debug, Clone, Default)]
pub struct MemorySources(pub Arc<MemoryLogSource>);

impl SourceFactory for MemorySources {
    type Source = Arc<MemoryLogSource>;

    fn source(
        &self,
        _org: &OrgUrl,
        _credentials: &Credentials,
        _options: &ClientOptions,
    ) -> Result<Self::Source, OktaError> {
        Ok(self.0.clone())
    }
}

fn link(after: usize, limit: u32, until: Option<OffsetDateTime>) -> Url {
    let mut url = Url::parse(ORIGIN)
        .expect("static URL")
        .join("/api/v1/logs")
        .expect("path");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("after", &after.to_string());
        query.append_pair("limit", &limit.to_string());
        if let Some(until) = until {
            query.append_pair("until", &until.unix_timestamp_nanos().to_string());
        }
    }
    url
}

fn parse_link(url: &Url) -> Result<(usize, u32, Option<OffsetDateTime>), OktaError> {
    let foreign = || OktaError::ForeignNextLink {
        link: url.to_string(),
        org: ORIGIN.to_string(),
    };
    if url.origin() != Url::parse(ORIGIN).expect("static URL").origin() {
        return Err(foreign());
    }
    let value = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.into_owned())
    };
    let malformed = || OktaError::MalformedResponse(format!("not a twin link: {url}"));
    let after = value("after")
        .and_then(|v| v.parse().ok())
        .ok_or_else(malformed)?;
    let limit = value("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_PAGE_LIMIT);
    let until = match value("until") {
        Some(nanos) => Some(
            nanos
                .parse::<i128>()
                .ok()
                .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
                .ok_or_else(malformed)?,
        ),
        None => None,
    };
    Ok((after, limit, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize, published: OffsetDateTime) -> serde_json::Value {
        let published = published
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        serde_json::json!({"uuid": format!("e{n}"), "published": published})
    }

    fn uuids(page: &Page) -> Vec<String> {
        page.events
            .iter()
            .map(|raw| {
                serde_json::from_str::<serde_json::Value>(raw.get()).unwrap()["uuid"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn polling_pages_in_persistence_order_and_always_links_on() {
        let now = OffsetDateTime::now_utc();
        let source = MemoryLogSource::new();
        source.append((0..3).map(|n| event(n, now - time::Duration::minutes(10 - n as i64))));
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let first = PageRequest::Start {
            since: now - time::Duration::hours(1),
            until: None,
            limit: 2,
        };
        let page = source.fetch_page(&first, deadline).await.unwrap();
        assert_eq!(uuids(&page), ["e0", "e1"]);
        // A late-persisted event (older `published`) still comes after the position.
        source.append([event(3, now - time::Duration::minutes(30))]);
        let next = PageRequest::Next(page.next.unwrap());
        let page = source.fetch_page(&next, deadline).await.unwrap();
        assert_eq!(uuids(&page), ["e2", "e3"]);
        let caught_up = PageRequest::Next(page.next.unwrap());
        let page = source.fetch_page(&caught_up, deadline).await.unwrap();
        assert!(page.events.is_empty());
        assert!(page.next.is_some(), "a polling page always links on");
        assert_eq!(source.stats().requests, 3);
    }

    #[tokio::test]
    async fn a_bounded_window_ends_without_a_next_link() {
        let now = OffsetDateTime::now_utc();
        let source = MemoryLogSource::new();
        source.append((0..5).map(|n| event(n, now - time::Duration::minutes(10 - n as i64))));
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let window = PageRequest::Start {
            since: now - time::Duration::minutes(9),
            until: Some(now - time::Duration::minutes(7)),
            limit: 1,
        };
        let page = source.fetch_page(&window, deadline).await.unwrap();
        assert_eq!(uuids(&page), ["e1"]);
        let page = source
            .fetch_page(&PageRequest::Next(page.next.unwrap()), deadline)
            .await
            .unwrap();
        assert_eq!(uuids(&page), ["e2"]);
        assert!(page.next.is_none());
    }

    #[tokio::test]
    async fn scripted_failures_come_first_and_held_requests_wait_for_the_deadline() {
        let source = MemoryLogSource::new();
        source.fail_next([OktaError::RateLimited]);
        let request = PageRequest::Next(MemoryLogSource::link_after(0, 10));
        let deadline = Instant::now() + std::time::Duration::from_millis(50);
        let err = source.fetch_page(&request, deadline).await.unwrap_err();
        assert!(matches!(err, OktaError::RateLimited));
        assert_eq!(source.stats().throttled_429, 1);
        source.answer_only(0);
        let err = source.fetch_page(&request, deadline).await.unwrap_err();
        assert!(matches!(err, OktaError::DeadlineExceeded));
        assert_eq!(source.requests().len(), 2);
        let foreign = PageRequest::Next(Url::parse("https://other.test/api/v1/logs").unwrap());
        source.answer_only(1);
        assert!(matches!(
            source.fetch_page(&foreign, deadline).await,
            Err(OktaError::ForeignNextLink { .. })
        ));
    }
}
