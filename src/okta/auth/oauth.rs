//! OAuth 2.0 client credentials with `private_key_jwt`: token requests, key rotation and the
//! token cache shared by every request of a (warm, reused) client.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::assertion::client_assertion;
use super::dpop::{nonce_in, DpopSigner, NonceFor};
use super::keys::SigningKey;
use crate::okta::body::read_small_body;
use crate::okta::error::USE_DPOP_NONCE;
use crate::okta::stats::Counters;
use crate::okta::{OAuth2Credentials, OktaError, OrgUrl};
use crate::secrets::SecretString;

/// Okta issues tokens for an hour; used when a response omits `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Longest `expires_in` believed: a huge value must not overflow the expiry instant.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

const NO_KEY: &str = "no private key configured; add one to auth.private_key";

/// A token from the cache, with what is needed to use it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: SecretString,
    /// Number of the token in this client's life: lets a 401 invalidate exactly the token it saw.
    pub(crate) generation: u64,
}

struct CachedToken {
    token: AccessToken,
    expires_at: Instant,
    lifetime: Duration,
}

impl CachedToken {
    /// Whether to fetch a new token now. The margin is at most half the token's life, so a
    /// short-lived token is still reused for a while instead of fetched for every page.
    fn needs_renewal(&self, renew_margin: Duration, now: Instant) -> bool {
        let margin = renew_margin.min(self.lifetime / 2);
        self.expires_at.saturating_duration_since(now) <= margin
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Why one key's token request failed.
enum TokenFailure {
    /// Okta did not accept this key (or client): the next key may work.
    InvalidClient(OktaError),
    Other(OktaError),
}

pub(crate) struct OAuthAuth {
    client_id: String,
    keys: Vec<SigningKey>,
    scope: String,
    token_url: Url,
    http: reqwest::Client,
    request_timeout: Duration,
    renew_margin: Duration,
    counters: Arc<Counters>,
    dpop: Option<DpopSigner>,
    /// Index of the key Okta last accepted: rotation starts there next time.
    preferred_key: AtomicUsize,
    cache: Mutex<Option<CachedToken>>,
    generations: AtomicU64,
}

impl std::fmt::Debug for OAuthAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthAuth")
            .field("client_id", &self.client_id)
            .field("keys", &self.keys.len())
            .field("dpop", &self.dpop.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct OAuthSettings {
    pub(crate) http: reqwest::Client,
    pub(crate) request_timeout: Duration,
    pub(crate) renew_margin: Duration,
    pub(crate) counters: Arc<Counters>,
}

impl OAuthAuth {
    pub(crate) fn new(
        config: &OAuth2Credentials,
        org: &OrgUrl,
        settings: OAuthSettings,
    ) -> Result<OAuthAuth, OktaError> {
        if config.private_keys.is_empty() {
            return Err(OktaError::UnusableCredentials(NO_KEY));
        }
        Ok(OAuthAuth {
            client_id: config.client_id.clone(),
            keys: config.private_keys.clone(),
            scope: config.scopes.join(" "),
            token_url: org.join("/oauth2/v1/token"),
            http: settings.http,
            request_timeout: settings.request_timeout,
            renew_margin: settings.renew_margin,
            counters: settings.counters,
            dpop: if config.dpop {
                Some(DpopSigner::generate()?)
            } else {
                None
            },
            preferred_key: AtomicUsize::new(0),
            cache: Mutex::new(None),
            generations: AtomicU64::new(0),
        })
    }

    pub(crate) fn dpop(&self) -> Option<&DpopSigner> {
        self.dpop.as_ref()
    }

    /// The `kid` of the key Okta accepted last (or of the first key before any token request).
    pub(crate) fn key_id(&self) -> Option<String> {
        let index = self.preferred_key.load(Ordering::Relaxed);
        self.keys
            .get(index)
            .and_then(|k| k.kid().map(str::to_owned))
    }

    /// A token with more than the renewal margin left, fetched only when needed. The lock is
    /// held while fetching so concurrent callers share one token request.
    pub(crate) async fn access_token(&self, deadline: Instant) -> Result<AccessToken, OktaError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if !cached.needs_renewal(self.renew_margin, Instant::now()) {
                return Ok(cached.token.clone());
            }
        }
        let (value, lifetime) = match self.fetch_with_rotation(deadline).await {
            Ok(fetched) => fetched,
            Err(error) => {
                // An early renewal that hit an outage must not throw away a token that still works.
                if let Some(cached) = cache
                    .as_ref()
                    .filter(|c| error.is_transient() && c.expires_at > Instant::now())
                {
                    tracing::warn!(error = %error, "renewing the access token failed; using the cached one until it expires");
                    return Ok(cached.token.clone());
                }
                return Err(error);
            }
        };
        let token = AccessToken {
            value,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        };
        *cache = Some(CachedToken {
            token: token.clone(),
            expires_at: Instant::now() + lifetime,
            lifetime,
        });
        Ok(token)
    }

    /// Forgets `token` after the API refused it, unless a newer one already replaced it.
    pub(crate) async fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.generation == token.generation)
        {
            *cache = None;
        }
    }

    async fn fetch_with_rotation(
        &self,
        deadline: Instant,
    ) -> Result<(SecretString, Duration), OktaError> {
        let start = self.preferred_key.load(Ordering::Relaxed);
        let count = self.keys.len();
        let mut last_rejection = None;
        for offset in 0..count {
            let index = (start + offset) % count;
            match self.request_token(index, deadline).await {
                Ok(token) => {
                    self.preferred_key.store(index, Ordering::Relaxed);
                    if offset > 0 {
                        tracing::info!(
                            kid = self.keys[index].kid().unwrap_or("(pem key)"),
                            key_index = index,
                            "Okta accepted another private key of the list; using it from now on"
                        );
                    }
                    return Ok(token);
                }
                Err(TokenFailure::InvalidClient(error)) => {
                    tracing::warn!(
                        kid = self.keys[index].kid().unwrap_or("(pem key)"),
                        key_index = index,
                        "Okta rejected this private key; trying the next one"
                    );
                    last_rejection = Some(error);
                }
                Err(TokenFailure::Other(error)) => return Err(error),
            }
        }
        Err(last_rejection.unwrap_or(OktaError::UnusableCredentials(NO_KEY)))
    }

    /// One key's token request; retried once with the server's nonce when DPoP demands it.
    async fn request_token(
        &self,
        key_index: usize,
        deadline: Instant,
    ) -> Result<(SecretString, Duration), TokenFailure> {
        let mut nonce_retry_left = self.dpop.is_some();
        loop {
            let (status, nonce, body) = self.post_token_request(key_index, deadline).await?;
            if status.is_success() {
                return self.read_token(&body).map_err(TokenFailure::Other);
            }
            let error: TokenErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            let code = error.error.unwrap_or_else(|| "unknown_error".to_owned());
            let description = error.error_description.unwrap_or_default();
            if code == USE_DPOP_NONCE {
                if let (Some(dpop), Some(nonce)) = (&self.dpop, nonce.as_deref()) {
                    // Kept even when out of retries: the caller's backoff retry then uses it.
                    dpop.set_nonce(NonceFor::TokenEndpoint, nonce);
                    if nonce_retry_left {
                        nonce_retry_left = false;
                        continue;
                    }
                }
            }
            return Err(classify_token_error(
                status.as_u16(),
                code,
                description,
                self.dpop.is_some(),
            ));
        }
    }

    /// The client-credentials form, signed with one key.
    fn token_form(&self, key_index: usize, now: OffsetDateTime) -> Result<SecretString, OktaError> {
        let assertion = client_assertion(
            &self.keys[key_index],
            &self.client_id,
            self.token_url.as_str(),
            now,
        )?;
        Ok(SecretString::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("scope", &self.scope)
                .append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .append_pair("client_assertion", assertion.expose())
                .finish(),
        ))
    }

    /// Posts one token request: the status, the DPoP nonce the server asked for, and the
    /// (bounded) body.
    async fn post_token_request(
        &self,
        key_index: usize,
        deadline: Instant,
    ) -> Result<(reqwest::StatusCode, Option<String>, Vec<u8>), TokenFailure> {
        let wall_now = OffsetDateTime::now_utc();
        let form = self
            .token_form(key_index, wall_now)
            .map_err(TokenFailure::Other)?;
        // Measured after signing (RSA can take a while), just before sending.
        let time_left = deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            return Err(TokenFailure::Other(OktaError::DeadlineExceeded));
        }
        let mut request = self
            .http
            .post(self.token_url.clone())
            .timeout(self.request_timeout.min(time_left))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.expose().to_owned());
        if let Some(dpop) = &self.dpop {
            let proof = dpop
                .proof("POST", &self.token_url, None, wall_now)
                .map_err(TokenFailure::Other)?;
            request = request.header("DPoP", proof);
        }
        self.counters.token_request();
        let started = Instant::now();
        let response = request.send().await.map_err(|e| {
            TokenFailure::Other(OktaError::Transport(format!(
                "token request to {} failed: {}",
                self.token_url,
                describe_transport(&e)
            )))
        })?;
        let status = response.status();
        tracing::debug!(
            status = status.as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            key_index,
            "okta token request"
        );
        let nonce = nonce_in(response.headers());
        let body = read_small_body(response).await.map_err(|e| {
            TokenFailure::Other(OktaError::Transport(format!(
                "reading the token response failed: {}",
                describe_transport(&e)
            )))
        })?;
        Ok((status, nonce, body))
    }

    /// The token and its lifetime from a successful answer.
    fn read_token(&self, body: &[u8]) -> Result<(SecretString, Duration), OktaError> {
        let parsed: TokenResponse = serde_json::from_slice(body).map_err(|_| {
            OktaError::MalformedResponse(
                "the token endpoint's answer is not a JSON token response".into(),
            )
        })?;
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                OktaError::MalformedResponse(
                    "the token endpoint's answer has no access_token".into(),
                )
            })?;
        check_token_type(parsed.token_type.as_deref(), self.dpop.is_some())?;
        let lifetime = parsed
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
            .min(MAX_TOKEN_LIFETIME);
        Ok((SecretString::new(token), lifetime))
    }
}

/// A token of the wrong type would only meet 401s from the API: say which setting to change.
fn check_token_type(token_type: Option<&str>, dpop: bool) -> Result<(), OktaError> {
    let mismatch = |summary: &str| {
        Err(OktaError::AuthRejected {
            code: "token_type_mismatch".into(),
            summary: summary.into(),
        })
    };
    match token_type {
        Some(t) if dpop && t.eq_ignore_ascii_case("Bearer") => mismatch(
            "Okta issued a Bearer token: the service app does not require DPoP; set \"dpop\": false",
        ),
        Some(t) if !dpop && t.eq_ignore_ascii_case("DPoP") => mismatch(
            "Okta issued a DPoP token: the service app requires DPoP; set \"dpop\": true",
        ),
        _ => Ok(()),
    }
}

/// Sorts a refused token request. Only refusals that retrying cannot heal are
/// [`OktaError::AuthRejected`] or [`OktaError::Forbidden`] (the connector pauses at once); any
/// other answer (a proxy's HTML 404 or 408, `invalid_dpop_proof` after clock skew, an unknown
/// code) is an ordinary failure that the failure count judges over several runs.
fn classify_token_error(
    status: u16,
    code: String,
    description: String,
    sent_dpop_proof: bool,
) -> TokenFailure {
    let detail = |fallback: &str| {
        if description.is_empty() {
            format!("{fallback} (HTTP {status})")
        } else {
            description.clone()
        }
    };
    match code.as_str() {
        // The nonce changed again after our one retry: a race, retried with backoff.
        USE_DPOP_NONCE => TokenFailure::Other(OktaError::Http {
            status,
            summary: "the token endpoint changed its DPoP nonce again".into(),
            code,
        }),
        // Unknown client, unregistered or inactive key, deactivated app: the next key may work.
        "invalid_client" => TokenFailure::InvalidClient(OktaError::AuthRejected {
            summary: format!(
                "{} (check the client ID and that the private key is registered and active on the service app)",
                detail("the client was refused")
            ),
            code,
        }),
        "unauthorized_client" => TokenFailure::Other(OktaError::AuthRejected {
            summary: format!(
                "{} (allow the Client Credentials grant on the service app)",
                detail("the client may not use this grant")
            ),
            code,
        }),
        "invalid_scope" => TokenFailure::Other(OktaError::Forbidden {
            summary: format!(
                "{} (grant okta.logs.read to the service app)",
                detail("the scope was refused")
            ),
            code,
        }),
        // Without a proof this is the app requiring DPoP, which no retry changes.
        "invalid_dpop_proof" if !sent_dpop_proof => TokenFailure::Other(OktaError::AuthRejected {
            summary: format!(
                "{} (the service app requires DPoP; set \"dpop\": true)",
                detail("a DPoP proof is required")
            ),
            code,
        }),
        _ => TokenFailure::Other(OktaError::Http {
            status,
            summary: if status >= 500 || status == 429 {
                format!("token endpoint unavailable: {description}")
            } else {
                format!("the token endpoint refused the request: {}", detail("no explanation given"))
            },
            code,
        }),
    }
}

/// A transport error in words, without the chain's internals.
pub(crate) fn describe_transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("could not connect ({error})")
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(failure: TokenFailure) -> (bool, OktaError) {
        match failure {
            TokenFailure::InvalidClient(e) => (true, e),
            TokenFailure::Other(e) => (false, e),
        }
    }

    fn classify(status: u16, code: &str, description: &str, sent_proof: bool) -> (bool, OktaError) {
        kind(classify_token_error(
            status,
            code.into(),
            description.into(),
            sent_proof,
        ))
    }

    #[test]
    fn refusals_retrying_cannot_heal_pause_at_once() {
        let (rotate, error) = classify(401, "invalid_client", "bad key", false);
        assert!(rotate, "the next key may be accepted");
        assert!(matches!(error, OktaError::AuthRejected { .. }));
        assert!(error.pauses_connector());

        let (rotate, error) = classify(400, "invalid_scope", "nope", false);
        assert!(!rotate);
        assert!(matches!(error, OktaError::Forbidden { .. }), "{error}");
        assert!(
            error.to_string().contains("grant okta.logs.read"),
            "{error}"
        );

        let (rotate, error) = classify(400, "unauthorized_client", "x", false);
        assert!(!rotate);
        assert!(error.pauses_connector(), "{error}");
        assert!(error.to_string().contains("Client Credentials"), "{error}");

        // No proof sent: the app requires DPoP and the configuration says otherwise.
        let (_, error) = classify(400, "invalid_dpop_proof", "proof missing", false);
        assert!(error.pauses_connector(), "{error}");
        assert!(error.to_string().contains("\"dpop\": true"), "{error}");
    }

    #[test]
    fn other_token_endpoint_refusals_are_ordinary_failures() {
        for (status, code, sent_proof) in [
            // A proof was sent and refused: clock skew, a replayed jti; may pass next run.
            (400, "invalid_dpop_proof", true),
            // A proxy's HTML error pages carry no OAuth code.
            (404, "unknown_error", false),
            (408, "unknown_error", false),
            (400, "invalid_grant", false),
            (403, "access_denied", false),
            (400, "invalid_request", false),
        ] {
            let (rotate, error) = classify(status, code, "", sent_proof);
            assert!(!rotate, "{code}");
            assert!(
                matches!(error, OktaError::Http { status: s, .. } if s == status),
                "{code}: {error}"
            );
            assert!(!error.pauses_connector(), "{code}: {error}");
        }
        let (_, error) = classify(408, "unknown_error", "", false);
        assert!(error.is_transient(), "a 408 is retried within the run");
        let (_, error) = classify(503, "unknown_error", "", false);
        assert!(matches!(error, OktaError::Http { status: 503, .. }));
        assert!(error.is_transient());
    }

    #[test]
    fn repeated_use_dpop_nonce_is_transient_not_auth_rejected() {
        let (rotate, error) = classify(400, "use_dpop_nonce", "nonce required", true);
        assert!(!rotate);
        assert!(error.is_transient(), "{error}");
        assert!(!error.pauses_connector(), "{error}");
    }

    #[test]
    fn token_type_must_match_the_dpop_setting() {
        assert!(check_token_type(Some("DPoP"), true).is_ok());
        assert!(check_token_type(Some("Bearer"), false).is_ok());
        assert!(check_token_type(None, true).is_ok());
        let err = check_token_type(Some("Bearer"), true).unwrap_err();
        assert!(err.to_string().contains("\"dpop\": false"), "{err}");
        let err = check_token_type(Some("DPoP"), false).unwrap_err();
        assert!(err.to_string().contains("\"dpop\": true"), "{err}");
    }

    #[test]
    fn renewal_margin_is_at_most_half_the_token_life() {
        let now = Instant::now();
        let cached = |lifetime: Duration, left: Duration| CachedToken {
            token: AccessToken {
                value: SecretString::new("t".into()),
                generation: 1,
            },
            expires_at: now + left,
            lifetime,
        };
        let margin = Duration::from_secs(300);
        // A 60 s token with 50 s left is not renewed although the margin is 300 s.
        assert!(
            !cached(Duration::from_secs(60), Duration::from_secs(50)).needs_renewal(margin, now)
        );
        assert!(cached(Duration::from_secs(60), Duration::from_secs(30)).needs_renewal(margin, now));
        assert!(
            cached(Duration::from_secs(3600), Duration::from_secs(299)).needs_renewal(margin, now)
        );
        assert!(
            !cached(Duration::from_secs(3600), Duration::from_secs(301)).needs_renewal(margin, now)
        );
    }
}
