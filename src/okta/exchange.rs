//! One exchange with `GET /api/v1/logs`: authorize, send, and sort the answer into a page or
//! a failure the retry loop knows what to do with.

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use super::auth::{asks_for_new_nonce, describe_transport, nonce_in, RequestAuth};
use super::body::read_small_body;
use super::client::OktaClient;
use super::link::next_link;
use super::ratelimit::{parse_rate_limit, throttle_wait};
use super::{OktaError, Page, RateLimitStatus};

/// How one attempt went, and so what the retry loop does next.
pub(super) enum Failure {
    /// Retry after exponential backoff.
    Transient(OktaError),
    /// 429: wait as the headers say (None: back off).
    Throttled(Option<std::time::Duration>, OktaError),
    /// 401: maybe a DPoP nonce to retry with, maybe a token to renew.
    Unauthorized(Refusal),
    Fatal(OktaError),
}

/// A 401 and what it says about the credentials used.
pub(super) struct Refusal {
    pub(super) error: OktaError,
    pub(super) dpop_nonce: Option<String>,
    /// WWW-Authenticate says `use_dpop_nonce`: only the nonce is wrong, not the token.
    pub(super) nonce_error: bool,
    pub(super) used: RequestAuth,
}

impl From<OktaError> for Failure {
    /// A failure before the API answered (obtaining the token): retried when it may heal.
    fn from(error: OktaError) -> Failure {
        if error.is_transient() {
            Failure::Transient(error)
        } else {
            Failure::Fatal(error)
        }
    }
}

/// Okta's JSON error body (`errorCode`, `errorSummary`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OktaErrorBody {
    error_code: Option<String>,
    error_summary: Option<String>,
}

impl OktaClient {
    pub(super) async fn attempt(&self, url: &Url, deadline: Instant) -> Result<Page, Failure> {
        if Instant::now() >= deadline {
            return Err(Failure::Fatal(OktaError::DeadlineExceeded));
        }
        let auth = self.auth.authorize("GET", url, deadline).await?;
        // Measured after authorize: a slow token renewal must not stretch the GET past the deadline.
        let time_left = deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            return Err(Failure::Fatal(OktaError::DeadlineExceeded));
        }
        let response = self.send(url, &auth, time_left).await?;
        let status = response.status();
        let rate_limit = parse_rate_limit(response.headers());
        self.observe_bucket(response.headers(), status, rate_limit);
        if status.is_success() {
            let headers = response.headers().clone();
            let body = self.read_body(response).await?;
            // A complete answer that is no event array (a proxy's error page, a corrupted
            // body) is likely gone on the next try: retried like a 5xx.
            let events = parse_events(&body).map_err(Failure::Transient)?;
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

    async fn send(
        &self,
        url: &Url,
        auth: &RequestAuth,
        time_left: std::time::Duration,
    ) -> Result<reqwest::Response, Failure> {
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.options.request_timeout.min(time_left))
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
        tracing::debug!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            remaining = parse_rate_limit(response.headers()).map(|r| r.remaining),
            "okta request"
        );
        Ok(response)
    }

    /// Feeds the pacer: the window's headers (a 429 is not counted by the bucket) and the
    /// answer's `Date`, which tells how far Okta's clock is from ours.
    fn observe_bucket(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        rate_limit: Option<RateLimitStatus>,
    ) {
        let now = OffsetDateTime::now_utc();
        let mut pacer = self.pacer();
        if let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        {
            pacer.observe_date(OffsetDateTime::from(date), now);
        }
        if let Some(rate_limit) = rate_limit {
            self.counters.set_rate_limit(rate_limit);
            if status != StatusCode::TOO_MANY_REQUESTS {
                pacer.observe(rate_limit, now);
            }
        }
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
                let margin = self.pacer().reset_margin();
                Failure::Throttled(
                    throttle_wait(headers, OffsetDateTime::now_utc(), margin),
                    OktaError::RateLimited,
                )
            }
            401 => Failure::Unauthorized(Refusal {
                dpop_nonce: nonce_in(headers),
                nonce_error: asks_for_new_nonce(headers),
                error: OktaError::AuthRejected {
                    code: code.clone(),
                    summary: if summary.is_empty() {
                        "the credentials were refused (revoked token or deactivated app?)".into()
                    } else {
                        summary
                    },
                },
                used,
            }),
            403 => Failure::Fatal(OktaError::Forbidden {
                code: code.clone(),
                summary: format!("{summary} (grant okta.logs.read to the service app, or use a token of an admin who may read the System Log)"),
            }),
            404 => Failure::Fatal(http(format!(
                "{summary} (is the org URL {} right?)",
                self.org
            ))),
            _ => Failure::from(http(summary)),
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
        OktaError::UnusableCredentials(
            "the credentials contain characters that cannot travel in an HTTP header; paste the token again without line breaks",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

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
