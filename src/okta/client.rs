//! `OktaClient`: the real [`LogSource`], reading `GET /api/v1/logs` over HTTPS with paging,
//! rate-limit pacing and retries inside the caller's deadline.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use super::auth::{describe_transport, Authenticator, RequestAuth};
use super::body::read_small_body;
use super::link::{check_same_origin, next_link};
use super::ratelimit::{pace, parse_rate_limit, throttle_wait, Pace};
use super::stats::{Counters, RequestStats};
use super::{LogSource, OktaError, Page, PageRequest};
use crate::config::{ConnectorConfig, OrgUrl};

/// Okta's largest page.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// Tuning of one client. `Default` suits production.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Upper bound for one HTTP exchange, body included.
    pub request_timeout: Duration,
    /// Larger response bodies are refused (a 1000-event page is a few MiB).
    pub max_body_bytes: usize,
    /// Fraction of X-Rate-Limit-Limit this connector may use before waiting for the reset.
    pub rate_share: f64,
    /// Requests kept unused beyond the others' share, so the org never hits the wall because of us.
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
            rate_reserve: 2,
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
    pub(crate) org: OrgUrl,
    http: reqwest::Client,
    pub(crate) auth: Authenticator,
    options: ClientOptions,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("org", &self.org)
            .field("auth", &self.auth.mode())
            .finish_non_exhaustive()
    }
}

/// Okta's JSON error body (`errorCode`, `errorSummary`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OktaErrorBody {
    error_code: Option<String>,
    error_summary: Option<String>,
}

/// How one attempt went, and so what the retry loop does next.
enum Failure {
    /// Retry after exponential backoff.
    Transient(OktaError),
    /// 429: wait as the headers say (None: back off).
    Throttled(Option<Duration>, OktaError),
    /// 401: maybe a DPoP nonce to retry with, maybe a token to renew.
    Unauthorized {
        error: OktaError,
        dpop_nonce: Option<String>,
        /// WWW-Authenticate says `use_dpop_nonce`: only the nonce is wrong, not the token.
        nonce_error: bool,
        used: RequestAuth,
    },
    Fatal(OktaError),
}

impl OktaClient {
    pub fn new(config: &ConnectorConfig, options: ClientOptions) -> Result<OktaClient, OktaError> {
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            // Okta's next links stay on the org; a redirect elsewhere would carry our token.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OktaError::Config(format!("creating the HTTP client failed: {e}")))?;
        let counters = Arc::new(Counters::default());
        let auth = Authenticator::new(
            &config.auth,
            &config.org_url,
            http.clone(),
            options.request_timeout,
            options.token_renew_margin,
            counters.clone(),
        )?;
        Ok(OktaClient {
            org: config.org_url.clone(),
            http,
            auth,
            options,
            counters,
        })
    }

    pub fn stats(&self) -> RequestStats {
        self.counters.snapshot()
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
            PageRequest::Next(url) => {
                check_same_origin(url, &self.org)?;
                Ok(url.clone())
            }
        }
    }

    /// Repeats transient failures with backoff, waits out 429s and renews a refused token once.
    pub(crate) async fn get_page(&self, url: &Url, deadline: Instant) -> Result<Page, OktaError> {
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(self.options.backoff_base)
            .with_max_delay(self.options.backoff_cap)
            .with_jitter()
            .with_jitter_seed(rand::random())
            .without_max_times()
            .build();
        let mut retries = 0;
        let mut token_renewed = false;
        let mut nonce_retried = false;
        loop {
            self.pace(deadline).await?;
            let error = match self.attempt(url, deadline).await {
                Ok(page) => return Ok(page),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Unauthorized {
                    error,
                    dpop_nonce,
                    nonce_error,
                    used,
                }) => {
                    let nonce_taken = dpop_nonce.is_some_and(|n| self.auth.accept_dpop_nonce(&n));
                    if nonce_taken && !nonce_retried {
                        nonce_retried = true;
                        continue;
                    }
                    if nonce_taken && nonce_error {
                        // The nonce rotated again: a race with Okta, not bad credentials,
                        // so back off and retry rather than pause the connector.
                        OktaError::Http {
                            status: 401,
                            code: "use_dpop_nonce".into(),
                            summary: "Okta changed the DPoP nonce again; retrying".into(),
                        }
                    } else {
                        if !token_renewed && self.auth.renew_after_rejection(&used).await {
                            tracing::info!("Okta refused the access token; renewing it once");
                            token_renewed = true;
                            continue;
                        }
                        return Err(error);
                    }
                }
                Err(Failure::Throttled(Some(wait), error)) => {
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
                    continue;
                }
                Err(Failure::Throttled(None, error)) | Err(Failure::Transient(error)) => error,
            };
            retries += 1;
            if retries > self.options.max_retries {
                return Err(error);
            }
            let delay = backoff
                .next()
                .unwrap_or(self.options.backoff_cap)
                .min(self.options.backoff_cap);
            if delay >= deadline.saturating_duration_since(Instant::now()) {
                return Err(error);
            }
            tracing::info!(retry = retries, delay_ms = delay.as_millis() as u64, error = %error, "transient Okta failure; retrying");
            self.counters.retry();
            tokio::time::sleep(delay).await;
        }
    }

    /// Waits when this connector already used its share of the rate-limit window.
    async fn pace(&self, deadline: Instant) -> Result<(), OktaError> {
        let last = self.counters.rate_limit();
        match pace(
            last.as_ref(),
            self.options.rate_share,
            self.options.rate_reserve,
            OffsetDateTime::now_utc(),
        ) {
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

    async fn attempt(&self, url: &Url, deadline: Instant) -> Result<Page, Failure> {
        let now = Instant::now();
        if now >= deadline {
            return Err(Failure::Fatal(OktaError::DeadlineExceeded));
        }
        let auth = self
            .auth
            .authorize("GET", url, deadline)
            .await
            .map_err(classify)?;
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.options.request_timeout.min(deadline - now))
            .header(ACCEPT, "application/json")
            .header(
                AUTHORIZATION,
                sensitive_header(auth.authorization.expose()).map_err(Failure::Fatal)?,
            );
        if let Some(proof) = &auth.dpop_proof {
            request = request.header("DPoP", sensitive_header(proof).map_err(Failure::Fatal)?);
        }
        self.counters.request();
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(OktaError::Transport(describe_transport(&e))))?;
        let status = response.status();
        let rate_limit = parse_rate_limit(response.headers());
        if let Some(status) = rate_limit {
            self.counters.set_rate_limit(status);
        }
        tracing::debug!(
            status = status.as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            remaining = rate_limit.map(|r| r.remaining),
            "okta request"
        );
        if status.is_success() {
            let headers = response.headers().clone();
            let body = self.read_body(response).await?;
            let events = parse_events(&body).map_err(Failure::Fatal)?;
            let next = next_link(&headers, &self.org).map_err(Failure::Fatal)?;
            return Ok(Page {
                events,
                next,
                rate_limit,
                body_bytes: body.len(),
            });
        }
        let headers = response.headers().clone();
        // Failing to read the (bounded) error body only loses Okta's explanation.
        let body = read_small_body(response).await.unwrap_or_default();
        let okta: OktaErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let code = okta.error_code.unwrap_or_else(|| "unknown".to_owned());
        let summary = okta.error_summary.unwrap_or_default();
        Err(self.classify_status(status, &headers, code, summary, auth))
    }

    fn classify_status(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        code: String,
        summary: String,
        used: RequestAuth,
    ) -> Failure {
        let http = |summary: String| OktaError::Http {
            status: status.as_u16(),
            code: code.clone(),
            summary,
        };
        match status.as_u16() {
            429 => {
                self.counters.throttled();
                Failure::Throttled(
                    throttle_wait(headers, OffsetDateTime::now_utc()),
                    OktaError::RateLimited,
                )
            }
            401 => Failure::Unauthorized {
                dpop_nonce: headers
                    .get("dpop-nonce")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                nonce_error: headers
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.contains("use_dpop_nonce")),
                error: OktaError::AuthRejected {
                    code: code.clone(),
                    summary: if summary.is_empty() {
                        "the credentials were refused (revoked token or deactivated app?)".into()
                    } else {
                        summary
                    },
                },
                used,
            },
            403 => Failure::Fatal(OktaError::Forbidden {
                code: code.clone(),
                summary: format!("{summary} (grant okta.logs.read to the service app, or use a token of an admin who may read the System Log)"),
            }),
            404 => Failure::Fatal(http(format!(
                "{summary} (is the org URL {} right?)",
                self.org
            ))),
            500..=599 => Failure::Transient(http(summary)),
            _ => Failure::Fatal(http(summary)),
        }
    }

    /// Reads the body up to the cap; a connection that breaks mid-body is transient.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let cap = self.options.max_body_bytes;
        let too_large = |size: u64| {
            Failure::Fatal(OktaError::MalformedResponse(format!(
                "the page body ({size} bytes or more) exceeds the {cap}-byte cap; lower the page limit or raise max_body_bytes"
            )))
        };
        if let Some(length) = response.content_length() {
            if length > cap as u64 {
                return Err(too_large(length));
            }
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > cap {
                        return Err(too_large((body.len() + chunk.len()) as u64));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(Failure::Transient(OktaError::Transport(format!(
                        "the page body broke off after {} bytes: {}",
                        body.len(),
                        describe_transport(&e)
                    ))))
                }
            }
        }
    }
}

/// A page body: a JSON array of events, each kept raw. Keeping an event raw skips its
/// contents without recursion, so hostile nesting cannot exhaust the stack; the normalizer's
/// typed parse (serde_json's 128-level limit) then refuses such an event on its own.
pub(crate) fn parse_events(body: &[u8]) -> Result<Vec<Box<RawValue>>, OktaError> {
    serde_json::from_slice(body).map_err(|e| {
        OktaError::MalformedResponse(format!("the page body is not a JSON array of events ({e})"))
    })
}

/// A header value that HTTP-level debug output will not print.
fn sensitive_header(value: &str) -> Result<HeaderValue, OktaError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        OktaError::Config(
            "the credentials contain characters that cannot travel in an HTTP header; paste the token again without line breaks".into(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Whether a failure before or while talking to Okta may heal by retrying.
fn classify(error: OktaError) -> Failure {
    match error {
        OktaError::Transport(_) => Failure::Transient(error),
        OktaError::Http { status, .. } if status >= 500 || status == 429 => {
            Failure::Transient(error)
        }
        // The token endpoint rotated its DPoP nonce again after our one retry: a race, not a
        // credentials problem.
        OktaError::Http { ref code, .. } if code == "use_dpop_nonce" => Failure::Transient(error),
        other => Failure::Fatal(other),
    }
}

/// RFC 3339 in UTC with milliseconds (`2024-05-01T08:00:00.500Z`), as Okta documents for `since`/`until`.
fn okta_timestamp(at: OffsetDateTime) -> Result<String, OktaError> {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .map_err(|e| OktaError::Config(format!("timestamp {at} cannot be formatted: {e}")))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ValidationOptions;
    use time::macros::datetime;

    fn client() -> OktaClient {
        let config = ConnectorConfig::from_json(
            r#"{"org_url": "https://acme.okta.com/", "auth": {"type": "ssws", "token": "00abc"}}"#,
            ValidationOptions::default(),
        )
        .unwrap();
        OktaClient::new(&config, ClientOptions::default()).unwrap()
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
        assert!(matches!(
            client.page_url(&PageRequest::Next(foreign)),
            Err(OktaError::ForeignNextLink { .. })
        ));
    }

    #[test]
    fn client_debug_shows_no_token() {
        let shown = format!("{:?}", client());
        assert!(!shown.contains("00abc"), "{shown}");
    }

    #[test]
    fn deeply_nested_events_neither_crash_the_page_nor_reach_the_sink() {
        // Far beyond serde_json's 128-level limit. Keeping an event raw skips its nesting
        // without recursion; the normalizer's typed parse then refuses it as one bad event.
        let depth = 100_000;
        let nested = format!(
            "{{\"uuid\":\"u1\",\"x\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let events = parse_events(format!("[{nested}]").as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let err = serde_json::from_str::<serde_json::Value>(events[0].get()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let normalizer = crate::normalize::Normalizer::new(crate::normalize::NormalizerConfig {
            org: "acme.okta.com".into(),
            connector_id: "acme".into(),
            policy: crate::normalize::CatalogPolicy::Catalog,
            include_raw: false,
        });
        let exclusion = normalizer
            .normalize(events[0].get(), time::OffsetDateTime::now_utc())
            .unwrap_err();
        assert_eq!(
            exclusion.reason.as_str(),
            "malformed_event",
            "{}",
            exclusion.detail
        );
    }

    #[test]
    fn unbalanced_deep_nesting_is_a_malformed_response() {
        let body = format!("[{}", "[".repeat(100_000));
        assert!(matches!(
            parse_events(body.as_bytes()),
            Err(OktaError::MalformedResponse(_))
        ));
    }

    #[test]
    fn nesting_within_the_limit_is_accepted() {
        let body = format!("[{{\"x\":{}{}}}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_events(body.as_bytes()).unwrap().len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_are_a_page_or_malformed(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            match parse_events(&body) {
                Ok(events) => {
                    let text = std::str::from_utf8(&body).expect("JSON is UTF-8");
                    proptest::prop_assert!(text.trim_start().starts_with('['));
                    for event in events {
                        serde_json::from_str::<serde_json::Value>(event.get()).expect("raw events are JSON");
                    }
                }
                Err(err) => proptest::prop_assert!(matches!(err, OktaError::MalformedResponse(_))),
            }
        }

        #[test]
        fn arrays_of_json_values_round_trip_as_raw_events(values in proptest::collection::vec(json_value(), 0..8)) {
            let body = serde_json::to_vec(&values).unwrap();
            let events = parse_events(&body).unwrap();
            proptest::prop_assert_eq!(events.len(), values.len());
            for (raw, value) in events.iter().zip(&values) {
                let parsed: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
                proptest::prop_assert_eq!(&parsed, value);
            }
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
