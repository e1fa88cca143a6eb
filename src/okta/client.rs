//! `OktaClient`: the real [`LogSource`], reading `GET /api/v1/logs` over HTTPS with paging,
//! rate-limit pacing and retries inside the caller's deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use super::auth::Authenticator;
use super::exchange::{Failure, Refusal};
use super::pacer::{Pace, Pacer};
use super::stats::{Counters, RequestStats};
use super::{
    ConnectionReport, Credentials, LogSource, OktaError, OrgUrl, Page, PageRequest, MAX_PAGE_LIMIT,
};

/// Tuning of one client. `Default` suits production.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Upper bound for one HTTP exchange, body included.
    pub request_timeout: Duration,
    /// Larger response bodies are refused (a 1000-event page is a few MiB).
    pub max_body_bytes: usize,
    /// Fraction of X-Rate-Limit-Limit this connector may use per window before waiting for
    /// the reset (`RATE_SHARE`).
    pub rate_share: f64,
    /// Requests per window left unused on top of the other clients' part (`RATE_RESERVE`);
    /// 0 uses the whole share.
    pub rate_reserve: u32,
    /// First delay of the exponential backoff after a 5xx, timeout or broken connection.
    pub backoff_base: Duration,
    /// Largest backoff delay before jitter.
    pub backoff_cap: Duration,
    /// Retries of one page after transient failures (429 waits are bounded by the deadline instead).
    pub max_retries: u32,
    pub user_agent: String,
    /// A cached OAuth token is renewed when less than this is left of its life.
    pub token_renew_margin: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 32 * 1024 * 1024,
            rate_share: 0.5,
            rate_reserve: 0,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            max_retries: 5,
            user_agent: concat!("okta-ingest/", env!("CARGO_PKG_VERSION")).to_owned(),
            token_renew_margin: Duration::from_secs(300),
        }
    }
}

/// Reads the System Log of one org. Create it once per connector and reuse it: it caches the
/// OAuth token and remembers the rate-limit window across calls.
pub struct OktaClient {
    pub(super) org: OrgUrl,
    pub(super) http: reqwest::Client,
    pub(super) auth: Authenticator,
    pub(super) options: ClientOptions,
    pub(super) counters: Arc<Counters>,
    /// This connector's use of the current rate-limit window.
    pub(super) pacer: Mutex<Pacer>,
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("org", &self.org)
            .field("auth", &self.auth.mode())
            .finish_non_exhaustive()
    }
}

/// What one page's retry loop has spent so far.
struct Retries {
    backoff: ExponentialBackoff,
    /// Retries after transient failures (429 waits do not count).
    transient: u32,
    token_renewed: bool,
    nonce_retried: bool,
}

/// How long an idle connection to an org is kept: long enough for the next page of a drain,
/// which is asked for as soon as the previous one answers. A container serving many orgs would
/// otherwise hold an open connection (with its TLS buffers) to every org it polled in the last
/// minute and a half; a tail round or a wait for the rate-limit window opens a new one.
const IDLE_CONNECTION_KEPT: std::time::Duration = std::time::Duration::from_secs(1);

/// One HTTP client (connection pool, TLS configuration and root store) for every connector of
/// the process: a connector's state is its token, nonce and rate-limit window, none of which
/// lives in the HTTP client, and pooled connections are per host, so per org. Built per
/// connector it would cost each cached connector its own TLS setup.
fn shared_http(user_agent: &str) -> Result<reqwest::Client, OktaError> {
    static SHARED: Mutex<Option<(String, reqwest::Client)>> = Mutex::new(None);
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((agent, http)) = shared.as_ref() {
        if agent == user_agent {
            return Ok(http.clone());
        }
    }
    let http = reqwest::Client::builder()
        .user_agent(user_agent)
        // Okta's next links stay on the org; a redirect elsewhere would carry our token.
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(IDLE_CONNECTION_KEPT)
        .build()
        .map_err(|e| OktaError::HttpClient(e.to_string()))?;
    *shared = Some((user_agent.to_owned(), http.clone()));
    Ok(http)
}

impl OktaClient {
    pub fn new(
        org: &OrgUrl,
        credentials: &Credentials,
        options: ClientOptions,
    ) -> Result<OktaClient, OktaError> {
        let http = shared_http(&options.user_agent)?;
        let counters = Arc::new(Counters::default());
        let auth = Authenticator::new(
            credentials,
            org,
            http.clone(),
            options.request_timeout,
            options.token_renew_margin,
            counters.clone(),
        )?;
        Ok(OktaClient {
            org: org.clone(),
            http,
            auth,
            options,
            counters,
            pacer: Mutex::default(),
        })
    }

    /// The URL one page request resolves to.
    pub fn page_url(&self, request: &PageRequest) -> Result<Url, OktaError> {
        match request {
            PageRequest::Start {
                since,
                until,
                limit,
            } => {
                let mut url = self.org.join("/api/v1/logs");
                {
                    let mut query = url.query_pairs_mut();
                    query.append_pair("since", &okta_timestamp(*since)?);
                    if let Some(until) = until {
                        query.append_pair("until", &okta_timestamp(*until)?);
                    }
                    query.append_pair("sortOrder", "ASCENDING");
                    query.append_pair("limit", &(*limit).clamp(1, MAX_PAGE_LIMIT).to_string());
                }
                Ok(url)
            }
            // Links from responses were checked on arrival; a stored cursor on another
            // origin means the org URL changed since it was written.
            PageRequest::Next(url) if url.origin() == self.org.origin() => Ok(url.clone()),
            PageRequest::Next(url) => Err(OktaError::CursorOnOtherOrg {
                cursor_origin: url.origin().ascii_serialization(),
                org: self.org.to_string(),
            }),
        }
    }

    /// Repeats transient failures with backoff, waits out 429s and renews a refused token once.
    pub(crate) async fn get_page(&self, url: &Url, deadline: Instant) -> Result<Page, OktaError> {
        let mut retries = Retries {
            backoff: ExponentialBuilder::new()
                .with_min_delay(self.options.backoff_base)
                .with_max_delay(self.options.backoff_cap)
                .with_jitter()
                .with_jitter_seed(rand::random())
                .without_max_times()
                .build(),
            transient: 0,
            token_renewed: false,
            nonce_retried: false,
        };
        loop {
            self.pace(deadline).await?;
            let error = match self.attempt(url, deadline).await {
                Ok(page) => return Ok(page),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Unauthorized(refusal)) => {
                    match self.after_refusal(refusal, &mut retries).await? {
                        Some(error) => error,
                        None => continue,
                    }
                }
                Err(Failure::Throttled(Some(wait), error)) => {
                    self.wait_for_reset(wait, error, deadline).await?;
                    continue;
                }
                Err(Failure::Throttled(None, error)) | Err(Failure::Transient(error)) => error,
            };
            self.back_off(error, &mut retries, deadline).await?;
        }
    }

    /// After a 401: retry at once with the nonce a DPoP server asked for, or with a renewed
    /// token (once each). `Some(error)`: back off and retry (the nonce rotated again, a race
    /// with Okta rather than bad credentials). `Err`: the credentials are refused.
    async fn after_refusal(
        &self,
        refusal: Refusal,
        retries: &mut Retries,
    ) -> Result<Option<OktaError>, OktaError> {
        let nonce_taken = refusal
            .dpop_nonce
            .is_some_and(|n| self.auth.accept_dpop_nonce(&n));
        if nonce_taken && !retries.nonce_retried {
            retries.nonce_retried = true;
            return Ok(None);
        }
        if nonce_taken && refusal.nonce_error {
            return Ok(Some(OktaError::Http {
                status: 401,
                code: super::error::USE_DPOP_NONCE.into(),
                summary: "Okta changed the DPoP nonce again; retrying".into(),
            }));
        }
        if !retries.token_renewed && self.auth.renew_after_rejection(&refusal.used).await {
            tracing::info!("Okta refused the access token; renewing it once");
            retries.token_renewed = true;
            return Ok(None);
        }
        Err(refusal.error)
    }

    /// After a 429 that says when the window resets: wait for it if the deadline allows.
    async fn wait_for_reset(
        &self,
        wait: Duration,
        error: OktaError,
        deadline: Instant,
    ) -> Result<(), OktaError> {
        // Compared as durations: `now + wait` would overflow on a hostile header.
        if wait > deadline.saturating_duration_since(Instant::now()) {
            tracing::warn!(
                wait_ms = wait.as_millis() as u64,
                "rate limit resets after the deadline"
            );
            return Err(error);
        }
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "rate limited (429): waiting for the reset"
        );
        self.counters.retry();
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// After a transient failure: sleep the next backoff delay, or give up with `error` when
    /// the retries or the time run out.
    async fn back_off(
        &self,
        error: OktaError,
        retries: &mut Retries,
        deadline: Instant,
    ) -> Result<(), OktaError> {
        retries.transient += 1;
        if retries.transient > self.options.max_retries {
            return Err(error);
        }
        let delay = retries
            .backoff
            .next()
            .unwrap_or(self.options.backoff_cap)
            .min(self.options.backoff_cap);
        if delay >= deadline.saturating_duration_since(Instant::now()) {
            return Err(error);
        }
        tracing::info!(retry = retries.transient, delay_ms = delay.as_millis() as u64, error = %error, "transient Okta failure; retrying");
        self.counters.retry();
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Waits when this connector already used its share of the rate-limit window.
    async fn pace(&self, deadline: Instant) -> Result<(), OktaError> {
        let decision = self.pacer().decide(
            self.options.rate_share,
            self.options.rate_reserve,
            OffsetDateTime::now_utc(),
        );
        match decision {
            Pace::Go => Ok(()),
            Pace::WaitFor(wait) => {
                if wait > deadline.saturating_duration_since(Instant::now()) {
                    return Err(OktaError::RateLimited);
                }
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "rate share used: waiting for the window to reset"
                );
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    pub(super) fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// RFC 3339 in UTC with milliseconds (`2024-05-01T08:00:00.500Z`), as Okta documents for `since`/`until`.
fn okta_timestamp(at: OffsetDateTime) -> Result<String, OktaError> {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .map_err(|e| OktaError::UnsendableTimestamp(format!("{at} ({e})")))
}

#[async_trait]
impl LogSource for OktaClient {
    async fn fetch_page(
        &self,
        request: &PageRequest,
        deadline: Instant,
    ) -> Result<Page, OktaError> {
        let url = self.page_url(request)?;
        self.get_page(&url, deadline).await
    }

    async fn test_connection(
        &self,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<ConnectionReport, OktaError> {
        super::test_connection::test_connection(self, now, deadline).await
    }

    fn stats(&self) -> RequestStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::Loopback;
    use crate::secrets::SecretString;
    use time::macros::datetime;

    fn client() -> OktaClient {
        let org = OrgUrl::parse("https://acme.okta.com/", Loopback::Refuse).unwrap();
        let token = SecretString::new("00abc".into());
        OktaClient::new(&org, &Credentials::Ssws { token }, ClientOptions::default()).unwrap()
    }

    #[test]
    fn start_request_builds_an_ascending_bounded_query() {
        let url = client()
            .page_url(&PageRequest::Start {
                since: datetime!(2024-05-01 10:00:00.5 +02:00),
                until: Some(datetime!(2024-05-02 00:00:00 UTC)),
                limit: 5000,
            })
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://acme.okta.com/api/v1/logs?since=2024-05-01T08%3A00%3A00.500Z&until=2024-05-02T00%3A00%3A00.000Z&sortOrder=ASCENDING&limit=1000"
        );
    }

    #[test]
    fn limit_is_clamped_to_at_least_one() {
        let url = client()
            .page_url(&PageRequest::Start {
                since: datetime!(2024-05-01 00:00:00 UTC),
                until: None,
                limit: 0,
            })
            .unwrap();
        assert_eq!(
            url.query_pairs().find(|(k, _)| k == "limit").unwrap().1,
            "1"
        );
        assert!(url.query_pairs().all(|(k, _)| k != "until"));
    }

    #[test]
    fn next_request_must_stay_on_the_org() {
        let client = client();
        let ours = Url::parse("https://acme.okta.com/api/v1/logs?after=1").unwrap();
        assert_eq!(
            client.page_url(&PageRequest::Next(ours.clone())).unwrap(),
            ours
        );
        let foreign = Url::parse("https://other.okta.com/api/v1/logs?after=1").unwrap();
        let err = client.page_url(&PageRequest::Next(foreign)).unwrap_err();
        assert!(
            matches!(&err, OktaError::CursorOnOtherOrg { cursor_origin, org }
                if cursor_origin == "https://other.okta.com" && org == "https://acme.okta.com"),
            "{err}"
        );
        let message = err.to_string();
        for step in [
            "put its URL back in the secret",
            "remove the `cursor` attribute",
            "`resume`",
            "Org URL changed",
        ] {
            assert!(message.contains(step), "{message}");
        }
    }

    #[test]
    fn client_debug_shows_no_token() {
        let shown = format!("{:?}", client());
        assert!(!shown.contains("00abc"), "{shown}");
    }
}
