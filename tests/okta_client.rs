#![cfg(feature = "testkit")]
//! `OktaClient` against a small scripted fake of Okta's token and System Log endpoints.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use okta_ingest::config::{ConnectorConfig, ValidationOptions};
use okta_ingest::okta::{ClientOptions, LogSource, OktaClient, OktaError, Page, PageRequest};
use okta_ingest::testkit::keys::EcKey;
use okta_ingest::testkit::logs::LogCapture;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::time::Instant;

/// One scripted HTTP answer. `{base}` in headers and body becomes the fake's own URL.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Okta's rate-limit headers: a limit of 100 with `remaining` left until `reset` (epoch seconds).
    fn rate_limit(self, remaining: &str, reset: impl Into<String>) -> Reply {
        self.header("x-rate-limit-limit", "100")
            .header("x-rate-limit-remaining", remaining.to_owned())
            .header("x-rate-limit-reset", reset)
    }

    /// Okta's 401 for a token it does not accept.
    fn invalid_token() -> Reply {
        Reply::new(
            401,
            r#"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#,
        )
    }

    /// A token endpoint answer issuing `access_token` of `token_type` for an hour.
    fn token(access_token: &str, token_type: &str) -> Reply {
        Reply::new(
            200,
            json!({"access_token": access_token, "token_type": token_type, "expires_in": 3600})
                .to_string(),
        )
    }

    /// A page of `count` events with a `next` link.
    fn page(count: usize, next: &str) -> Reply {
        let events: Vec<Value> = (0..count)
            .map(|i| {
                json!({"uuid": format!("ev-{i}"), "eventType": "user.session.start",
                       "published": format!("2024-05-01T10:00:{:02}.000Z", i % 60)})
            })
            .collect();
        Reply::new(200, Value::from(events).to_string())
            .header("link", "<{base}/api/v1/logs?since=x>; rel=\"self\"")
            .header("link", format!("<{next}>; rel=\"next\""))
    }
}

#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    query: String,
    body: String,
    at: SystemTime,
}

#[derive(Default)]
struct FakeState {
    base: String,
    logs: Mutex<VecDeque<Reply>>,
    tokens: Mutex<VecDeque<Reply>>,
    log_requests: Mutex<Vec<Seen>>,
    token_requests: Mutex<Vec<Seen>>,
    issued: Mutex<u32>,
    expires_in: u64,
    /// Public keys by kid; assertions signed by other keys get `invalid_client`.
    registered: HashMap<String, DecodingKey>,
    /// When set, token requests need a DPoP proof carrying this nonce.
    dpop_nonce: Option<String>,
}

struct Fake {
    base: String,
    state: Arc<FakeState>,
}

impl Fake {
    async fn start(mut state: FakeState) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        state.base = base.clone();
        let state = Arc::new(state);
        let app = Router::new()
            .route("/api/v1/logs", get(logs))
            .route("/oauth2/v1/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { base, state }
    }

    /// A fake without OAuth that answers the log requests with `replies`.
    async fn ssws(replies: impl IntoIterator<Item = Reply>) -> Fake {
        let fake = Fake::start(FakeState::default()).await;
        fake.script_logs(replies);
        fake
    }

    fn script_logs(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.logs.lock().unwrap().extend(replies);
    }

    fn script_tokens(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.tokens.lock().unwrap().extend(replies);
    }

    fn log_requests(&self) -> Vec<Seen> {
        self.state.log_requests.lock().unwrap().clone()
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.state.token_requests.lock().unwrap().clone()
    }

    /// The `authorization` header of every log request, in order.
    fn authorizations(&self) -> Vec<String> {
        self.log_requests()
            .iter()
            .map(|r| header(r, "authorization").to_owned())
            .collect()
    }

    /// How long the client waited between its first and second log request.
    fn wait_before_the_retry(&self) -> Duration {
        let requests = self.log_requests();
        requests[1].at.duration_since(requests[0].at).unwrap()
    }

    /// A client with the SSWS token of [`Fake::ssws_config`].
    fn ssws_client(&self, options: ClientOptions) -> OktaClient {
        new_client(&self.ssws_config(), options).unwrap()
    }

    fn ssws_config(&self) -> ConnectorConfig {
        config(json!({"org_url": self.base, "auth": {"type": "ssws", "token": "00sswsToken"}}))
    }

    fn oauth_config(&self, keys: Value, dpop: bool) -> ConnectorConfig {
        config(json!({"org_url": self.base,
            "auth": {"type": "oauth2", "client_id": "0oaclient", "private_key": keys, "dpop": dpop}}))
    }
}

fn config(doc: Value) -> ConnectorConfig {
    ConnectorConfig::from_json(
        &doc.to_string(),
        ValidationOptions {
            allow_insecure_loopback: true,
        },
    )
    .unwrap()
}

fn render(reply: &Reply, base: &str) -> Response {
    let mut headers = HeaderMap::new();
    for (name, value) in &reply.headers {
        headers.append(*name, value.replace("{base}", base).parse().unwrap());
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, headers, reply.body.replace("{base}", base)).into_response()
}

fn seen(headers: HeaderMap, query: Option<String>, body: String) -> Seen {
    Seen {
        headers,
        query: query.unwrap_or_default(),
        body,
        at: SystemTime::now(),
    }
}

async fn logs(
    State(state): State<Arc<FakeState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    state
        .log_requests
        .lock()
        .unwrap()
        .push(seen(headers, query, String::new()));
    let reply = state.logs.lock().unwrap().pop_front();
    let reply = reply.unwrap_or_else(|| Reply::page(0, "{base}/api/v1/logs?after=end"));
    tokio::time::sleep(reply.delay).await;
    render(&reply, &state.base)
}

fn oauth_error(status: u16, error: &str) -> Response {
    render(
        &Reply::new(
            status,
            json!({"error": error, "error_description": format!("fake: {error}")}).to_string(),
        ),
        "",
    )
}

async fn token(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: String) -> Response {
    state
        .token_requests
        .lock()
        .unwrap()
        .push(seen(headers.clone(), None, body.clone()));
    let scripted = state.tokens.lock().unwrap().pop_front();
    if let Some(reply) = scripted {
        tokio::time::sleep(reply.delay).await;
        return render(&reply, &state.base);
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let kid = jsonwebtoken::decode_header(&assertion)
        .ok()
        .and_then(|h| h.kid);
    let Some(key) = kid.and_then(|kid| state.registered.get(&kid)) else {
        return oauth_error(401, "invalid_client");
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[format!("{}/oauth2/v1/token", state.base)]);
    validation.set_issuer(&["0oaclient"]);
    if jsonwebtoken::decode::<Value>(&assertion, key, &validation).is_err() {
        return oauth_error(401, "invalid_client");
    }
    if let Some(nonce) = &state.dpop_nonce {
        let proof = headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(proof).map(|d| d.claims);
        if claims
            .ok()
            .and_then(|c| c["nonce"].as_str().map(str::to_owned))
            .as_deref()
            != Some(nonce)
        {
            return render(
                &Reply::new(
                    400,
                    json!({"error": "use_dpop_nonce", "error_description": "nonce required"})
                        .to_string(),
                )
                .header("dpop-nonce", nonce.clone()),
                "",
            );
        }
    }
    // Like Okta: a token request with a DPoP proof gets a DPoP-bound token.
    let token_type = if headers.contains_key("dpop") {
        "DPoP"
    } else {
        "Bearer"
    };
    let mut issued = state.issued.lock().unwrap();
    *issued += 1;
    let body = json!({"access_token": format!("tok-{issued}"), "token_type": token_type,
                      "expires_in": state.expires_in, "scope": "okta.logs.read"});
    render(&Reply::new(200, body.to_string()), "")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client of the fake org with one EC key (`k1`) and quick retries.
fn oauth_client(fake: &Fake, key: &EcKey, dpop: bool) -> OktaClient {
    new_client(&fake.oauth_config(key.private_jwk(), dpop), quick_options()).unwrap()
}

/// A client of the fake org with one EC key (`k1`), no DPoP, and `options`.
fn oauth_client_with(fake: &Fake, key: &EcKey, options: ClientOptions) -> OktaClient {
    new_client(&fake.oauth_config(key.private_jwk(), false), options).unwrap()
}

/// The first page of a polling stream, with a 10 s budget.
async fn first_page(client: &OktaClient) -> Result<Page, OktaError> {
    client.fetch_page(&start_request(), deadline(10)).await
}

fn quick_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

fn start_request() -> PageRequest {
    PageRequest::Start {
        since: OffsetDateTime::now_utc() - time::Duration::minutes(15),
        until: None,
        limit: 1000,
    }
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn header<'a>(seen: &'a Seen, name: &str) -> &'a str {
    seen.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The claims of a DPoP proof, unverified: the tests read what the client put in.
fn proof_claims(proof: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(proof)
        .unwrap()
        .claims
}

fn epoch_secs_from_now(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs
}

/// The second log request came a second (the wait the 429 asked for) after the first.
fn assert_retried_after_about_a_second(fake: &Fake) {
    let waited = fake.wait_before_the_retry();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

/// A rate limit that outlasts a 3 s budget fails at once instead of waiting.
async fn assert_fails_fast_as_rate_limited(client: &OktaClient) {
    let started = Instant::now();
    let err = client
        .fetch_page(&start_request(), deadline(3))
        .await
        .unwrap_err();
    assert!(matches!(err, OktaError::RateLimited), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// An OAuth fake that knows one EC key with kid `k1`.
async fn oauth_fake(expires_in: u64, dpop_nonce: Option<&str>) -> (Fake, EcKey) {
    let key = EcKey::generate("k1");
    let fake = Fake::start(FakeState {
        expires_in,
        registered: HashMap::from([("k1".to_owned(), key.decoding_key())]),
        dpop_nonce: dpop_nonce.map(str::to_owned),
        ..FakeState::default()
    })
    .await;
    (fake, key)
}

#[tokio::test]
async fn ssws_token_is_sent_and_the_page_is_returned_with_its_next_link() {
    let fake = Fake::ssws([Reply::page(3, "{base}/api/v1/logs?after=abc&limit=1000")]).await;
    let client = fake.ssws_client(quick_options());

    let page = first_page(&client).await.unwrap();

    assert_eq!(page.events.len(), 3);
    assert_eq!(
        page.next.unwrap().as_str(),
        format!("{}/api/v1/logs?after=abc&limit=1000", fake.base)
    );
    let request = &fake.log_requests()[0];
    assert_eq!(header(request, "authorization"), "SSWS 00sswsToken");
    assert!(header(request, "user-agent").starts_with("okta-ingest/"));
    assert!(
        request.query.contains("sortOrder=ASCENDING"),
        "{}",
        request.query
    );
    assert!(request.query.contains("limit=1000"));
    assert_eq!(client.stats().requests, 1);
    assert_eq!(client.stats().token_requests, 0);
}

#[tokio::test]
async fn oauth_token_is_requested_with_a_signed_assertion_and_reused() {
    let (fake, key) = oauth_fake(3600, None).await;
    let client = oauth_client(&fake, &key, false);

    first_page(&client).await.unwrap();
    first_page(&client).await.unwrap();

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1, "the cached token serves both requests");
    let form: HashMap<String, String> = url::form_urlencoded::parse(tokens[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "okta.logs.read");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    for request in fake.log_requests() {
        assert_eq!(header(&request, "authorization"), "Bearer tok-1");
    }
    assert_eq!(client.stats().token_requests, 1);
}

#[tokio::test]
async fn oauth_token_is_renewed_before_it_expires() {
    let (fake, key) = oauth_fake(2, None).await;
    let options = ClientOptions {
        token_renew_margin: Duration::from_secs(1),
        ..quick_options()
    };
    let client = oauth_client_with(&fake, &key, options);

    first_page(&client).await.unwrap();
    first_page(&client).await.unwrap();
    // Now less than the renewal margin is left of the 2 s token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    first_page(&client).await.unwrap();

    assert_eq!(
        fake.authorizations(),
        ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    );
}

#[tokio::test]
async fn rejected_key_falls_back_to_the_next_and_is_tried_first_afterwards() {
    let (fake, key) = oauth_fake(1, None).await;
    let retired = EcKey::generate("k0");
    let keys = json!([retired.private_jwk(), key.private_jwk()]);
    let options = ClientOptions {
        token_renew_margin: Duration::ZERO,
        ..quick_options()
    };
    let client = new_client(&fake.oauth_config(keys, false), options).unwrap();

    let report = client
        .test_connection(OffsetDateTime::now_utc(), deadline(10))
        .await
        .unwrap();
    assert_eq!(report.key_id.as_deref(), Some("k1"));
    assert_eq!(
        fake.token_requests().len(),
        2,
        "k0 was refused, k1 accepted"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    first_page(&client).await.unwrap();
    let kids: Vec<String> = fake
        .token_requests()
        .iter()
        .map(|r| {
            let form: HashMap<String, String> = url::form_urlencoded::parse(r.body.as_bytes())
                .into_owned()
                .collect();
            jsonwebtoken::decode_header(&form["client_assertion"])
                .unwrap()
                .kid
                .unwrap()
        })
        .collect();
    assert_eq!(kids, ["k0", "k1", "k1"]);
}

#[tokio::test]
async fn every_key_rejected_is_auth_rejected() {
    let (fake, _) = oauth_fake(3600, None).await;
    let client = new_client(
        &fake.oauth_config(EcKey::generate("other").private_jwk(), false),
        quick_options(),
    )
    .unwrap();
    let err = first_page(&client).await.unwrap_err();
    assert!(
        matches!(err, OktaError::AuthRejected { ref code, .. } if code == "invalid_client"),
        "{err}"
    );
    assert!(err.pauses_connector());
    assert!(fake.log_requests().is_empty());
}

#[tokio::test]
async fn missing_scope_at_the_token_endpoint_is_forbidden() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::new(
        400,
        r#"{"error":"invalid_scope","error_description":"The requested scope is invalid"}"#,
    )]);
    let client = oauth_client(&fake, &key, false);
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::Forbidden { .. }), "{err}");
    assert!(err.to_string().contains("okta.logs.read"));
}

#[tokio::test]
async fn token_endpoint_outage_is_retried() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::new(503, "")]);
    let client = oauth_client(&fake, &key, false);
    first_page(&client).await.unwrap();
    assert_eq!(fake.token_requests().len(), 2);
}

#[tokio::test]
async fn dpop_token_request_retries_with_the_server_nonce_and_api_calls_carry_proofs() {
    let (fake, key) = oauth_fake(3600, Some("nonce-1")).await;
    let client = oauth_client(&fake, &key, true);

    first_page(&client).await.unwrap();

    let tokens = fake.token_requests();
    assert_eq!(
        tokens.len(),
        2,
        "first refused with use_dpop_nonce, then retried"
    );
    assert!(proof_claims(header(&tokens[0], "dpop"))
        .get("nonce")
        .is_none());
    assert_eq!(proof_claims(header(&tokens[1], "dpop"))["nonce"], "nonce-1");

    let api = &fake.log_requests()[0];
    assert_eq!(header(api, "authorization"), "DPoP tok-1");
    let proof = header(api, "dpop");
    let proof_header = jsonwebtoken::decode_header(proof).unwrap();
    assert_eq!(proof_header.typ.as_deref(), Some("dpop+jwt"));
    let claims = proof_claims(proof);
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], format!("{}/api/v1/logs", fake.base));
    assert_eq!(claims["ath"], b64(&Sha256::digest(b"tok-1")));
    // The token endpoint's nonce is its own; the API asks for one itself if it wants one.
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn api_dpop_nonce_challenge_is_answered_once() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs([Reply::new(401, "")
        .header("www-authenticate", "DPoP error=\"use_dpop_nonce\"")
        .header("dpop-nonce", "api-nonce")]);
    let client = oauth_client(&fake, &key, true);
    first_page(&client).await.unwrap();
    let requests = fake.log_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        proof_claims(header(&requests[1], "dpop"))["nonce"],
        "api-nonce"
    );
    assert_eq!(
        fake.token_requests().len(),
        1,
        "a nonce challenge needs no new token"
    );
}

#[tokio::test]
async fn api_401_renews_the_token_once_and_retries() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs([Reply::invalid_token()]);
    let client = oauth_client(&fake, &key, false);
    first_page(&client).await.unwrap();
    assert_eq!(fake.authorizations(), ["Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test]
async fn api_401_after_renewal_is_auth_rejected_with_oktas_error() {
    let (fake, key) = oauth_fake(3600, None).await;
    let refused = Reply::invalid_token();
    fake.script_logs([refused.clone(), refused.clone(), refused]);
    let client = oauth_client(&fake, &key, false);
    let err = first_page(&client).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::AuthRejected { code, summary } if code == "E0000011" && summary == "Invalid token provided"),
        "{err}"
    );
    assert_eq!(fake.log_requests().len(), 2);
    assert_eq!(fake.token_requests().len(), 2);
}

#[tokio::test]
async fn ssws_401_is_auth_rejected_without_retry() {
    let fake = Fake::ssws([Reply::invalid_token()]).await;
    let client = fake.ssws_client(quick_options());
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::AuthRejected { .. }), "{err}");
    assert_eq!(fake.log_requests().len(), 1);
}

#[tokio::test]
async fn forbidden_403_and_not_found_404_are_typed_and_not_retried() {
    let fake = Fake::ssws([
        Reply::new(403, r#"{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action"}"#),
        Reply::new(404, r#"{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method"}"#),
    ]).await;
    let client = fake.ssws_client(quick_options());
    let forbidden = first_page(&client).await.unwrap_err();
    assert!(
        matches!(&forbidden, OktaError::Forbidden { code, .. } if code == "E0000006"),
        "{forbidden}"
    );
    let missing = first_page(&client).await.unwrap_err();
    assert!(
        matches!(&missing, OktaError::Http { status: 404, code, .. } if code == "E0000022"),
        "{missing}"
    );
    assert!(missing.to_string().contains("org URL"), "{missing}");
    assert_eq!(fake.log_requests().len(), 2);
}

#[tokio::test]
async fn throttled_request_waits_until_the_reset_header_plus_the_measured_margin() {
    let fake = Fake::start(FakeState::default()).await;
    let reset = epoch_secs_from_now(2);
    fake.script_logs([Reply::new(429, r#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#)
        .rate_limit("0", reset.to_string())]);
    let client = fake.ssws_client(quick_options());

    first_page(&client).await.unwrap();

    let requests = fake.log_requests();
    assert_eq!(requests.len(), 2);
    let retried_at = requests[1].at.duration_since(UNIX_EPOCH).unwrap();
    // Past the reset by a margin measured from the answer's Date header (the fake's clock is
    // ours), not a whole extra second; the pacer's unit tests check the margin itself.
    assert!(
        retried_at >= Duration::from_secs(reset),
        "retried before the reset"
    );
    let waited = requests[1].at.duration_since(requests[0].at).unwrap();
    assert!(
        waited < Duration::from_secs(4),
        "waited {waited:?}, more than the header (and margin) asked"
    );
    let stats = client.stats();
    assert_eq!(stats.throttled_429, 1);
    assert_eq!(stats.retries, 1);
}

#[tokio::test]
async fn throttled_request_uses_retry_after_without_reset() {
    let fake = Fake::ssws([Reply::new(429, "").header("retry-after", "1")]).await;
    let client = fake.ssws_client(quick_options());
    first_page(&client).await.unwrap();
    assert_retried_after_about_a_second(&fake);
}

#[tokio::test]
async fn reset_beyond_the_deadline_fails_fast_as_rate_limited() {
    let fake =
        Fake::ssws([Reply::new(429, "").rate_limit("0", epoch_secs_from_now(60).to_string())])
            .await;
    let client = fake.ssws_client(quick_options());
    assert_fails_fast_as_rate_limited(&client).await;
    assert_eq!(fake.log_requests().len(), 1);
}

#[tokio::test]
async fn used_share_makes_the_next_request_wait_for_the_window() {
    let fake = Fake::start(FakeState::default()).await;
    let reset = epoch_secs_from_now(2);
    fake.script_logs([
        Reply::page(1, "{base}/api/v1/logs?after=1").rate_limit("40", reset.to_string())
    ]);
    let client = fake.ssws_client(quick_options());

    let page = first_page(&client).await.unwrap();
    client
        .fetch_page(&PageRequest::Next(page.next.unwrap()), deadline(10))
        .await
        .unwrap();

    let requests = fake.log_requests();
    assert!(requests[1].at.duration_since(UNIX_EPOCH).unwrap() >= Duration::from_secs(reset));
    assert_eq!(client.stats().throttled_429, 0);
    assert_eq!(client.stats().last_rate_limit.unwrap().remaining, 40);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_succeed() {
    let fake = Fake::ssws([
        Reply::new(503, ""),
        Reply::new(500, "oops"),
        Reply::page(2, "{base}/api/v1/logs?after=2"),
    ])
    .await;
    let client = fake.ssws_client(quick_options());
    let page = first_page(&client).await.unwrap();
    assert_eq!(page.events.len(), 2);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (3, 2));
}

#[tokio::test]
async fn server_errors_past_max_retries_surface_the_last_one() {
    let fake = Fake::ssws(vec![Reply::new(502, ""); 10]).await;
    let options = ClientOptions {
        max_retries: 2,
        ..quick_options()
    };
    let client = fake.ssws_client(options);
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::Http { status: 502, .. }), "{err}");
    assert_eq!(fake.log_requests().len(), 3);
}

#[tokio::test]
async fn timed_out_request_is_retried() {
    let fake =
        Fake::ssws([Reply::page(1, "{base}/api/v1/logs?after=1").delayed(Duration::from_secs(2))])
            .await;
    let options = ClientOptions {
        request_timeout: Duration::from_millis(300),
        ..quick_options()
    };
    let client = fake.ssws_client(options);
    let page = first_page(&client).await.unwrap();
    assert!(
        page.events.is_empty(),
        "the retry got the default empty page"
    );
    assert_eq!(fake.log_requests().len(), 2);
}

#[tokio::test]
async fn foreign_next_link_is_refused() {
    let fake = Fake::ssws([Reply::page(
        2,
        "https://attacker.example.com/api/v1/logs?after=1",
    )])
    .await;
    let client = fake.ssws_client(quick_options());
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::ForeignNextLink { .. }), "{err}");
}

#[tokio::test]
async fn malformed_and_truncated_bodies_are_retried_like_server_errors() {
    let fake = Fake::ssws([
        Reply::new(200, r#"{"uuid": "not-an-array"}"#),
        Reply::new(200, r#"[{"uuid": "a", "eventType": "user.sess"#),
        Reply::new(200, "<html>maintenance</html>"),
        Reply::page(5, "{base}/api/v1/logs?after=1"),
    ])
    .await;
    let client = fake.ssws_client(quick_options());
    let page = first_page(&client).await.unwrap();
    assert_eq!(page.events.len(), 5);
    assert_eq!(fake.log_requests().len(), 4);
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test]
async fn malformed_bodies_past_max_retries_are_a_malformed_response() {
    let fake = Fake::ssws((0..10).map(|_| Reply::new(200, "<html>maintenance</html>"))).await;
    let options = ClientOptions {
        max_retries: 2,
        ..quick_options()
    };
    let client = fake.ssws_client(options);
    let err = first_page(&client).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::MalformedResponse(m) if m.contains("not a JSON array")),
        "{err}"
    );
    assert!(!err.pauses_connector());
    assert_eq!(fake.log_requests().len(), 3, "one try and two retries");
}

#[tokio::test]
async fn an_oversized_body_is_refused_without_retrying() {
    let fake = Fake::ssws([Reply::page(50, "{base}/api/v1/logs?after=1")]).await;
    let options = ClientOptions {
        max_body_bytes: 1024,
        ..quick_options()
    };
    let client = fake.ssws_client(options);
    let err = first_page(&client).await.unwrap_err();
    assert!(
        matches!(&err, OktaError::MalformedResponse(m) if m.contains("cap")),
        "{err}"
    );
    assert_eq!(
        fake.log_requests().len(),
        1,
        "the same page would be as large again"
    );
}

#[tokio::test]
async fn a_slow_token_renewal_leaves_the_page_request_only_the_time_left() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::token("tok-slow", "Bearer").delayed(Duration::from_millis(1500))]);
    // The API stalls far longer than the budget.
    fake.script_logs([
        Reply::page(1, "{base}/api/v1/logs?after=1").delayed(Duration::from_secs(30))
    ]);
    let options = ClientOptions {
        request_timeout: Duration::from_secs(20),
        ..quick_options()
    };
    let client = oauth_client_with(&fake, &key, options);
    let started = Instant::now();
    let err = client
        .fetch_page(&start_request(), deadline(2))
        .await
        .unwrap_err();
    // Timed from before the token request, the GET would have run until 1.5 s + 2 s.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(3000), "took {elapsed:?}");
    assert!(
        matches!(err, OktaError::Transport(_) | OktaError::DeadlineExceeded),
        "{err}"
    );
    assert_eq!(fake.log_requests().len(), 1);
}

#[tokio::test]
async fn a_proxy_error_page_from_the_token_endpoint_is_an_ordinary_failure() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::new(404, "<html><body>Not Found</body></html>")]);
    let client = oauth_client(&fake, &key, false);
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::Http { status: 404, .. }), "{err}");
    assert!(!err.pauses_connector(), "{err}");
    // A 408 from the same proxy is retried at once.
    fake.script_tokens([Reply::new(408, "<html>Request Timeout</html>")]);
    first_page(&client).await.unwrap();
    assert_eq!(fake.token_requests().len(), 3);
}

#[tokio::test]
async fn a_rate_limit_reset_days_ahead_is_probed_again_not_waited_for() {
    let fake = Fake::start(FakeState::default()).await;
    let garbled = epoch_secs_from_now(10 * 24 * 3600).to_string();
    fake.script_logs([
        Reply::new(429, "").rate_limit("0", garbled.clone()),
        Reply::page(1, "{base}/api/v1/logs?after=1").rate_limit("0", garbled),
    ]);
    let client = fake.ssws_client(quick_options());
    first_page(&client).await.unwrap();
    // The pacer does not wait days for the next page either: it probes.
    first_page(&client).await.unwrap();
    assert_eq!(fake.log_requests().len(), 3);
}

#[tokio::test]
async fn test_connection_counts_the_last_day_and_reports_a_lower_bound_past_the_budget() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs(vec![Reply::page(5, "{base}/api/v1/logs?after=more"); 12]);
    let client = oauth_client(&fake, &key, false);
    let now = OffsetDateTime::now_utc();

    let report = client.test_connection(now, deadline(10)).await.unwrap();

    assert_eq!(report.auth_mode, "oauth2");
    assert_eq!(report.key_id.as_deref(), Some("k1"));
    assert!(!report.dpop);
    assert_eq!(report.requests, 10);
    assert_eq!(report.events_last_24h, 50);
    assert!(report.count_is_lower_bound);
    assert_eq!(
        report.newest_event_published,
        Some(time::macros::datetime!(2024-05-01 10:00:04 UTC))
    );
    let first = &fake.log_requests()[0];
    assert!(
        first.query.contains("until="),
        "bounded query: {}",
        first.query
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["newest_event_published"], "2024-05-01T10:00:04Z");
}

#[tokio::test]
async fn test_connection_gives_an_exact_count_when_the_window_ends() {
    let fake = Fake::ssws([
        Reply::page(3, "{base}/api/v1/logs?after=1"),
        Reply::new(200, r#"[{"published":"2024-05-01T11:00:00.000Z"}]"#),
    ])
    .await;
    let client = fake.ssws_client(quick_options());
    let report = client
        .test_connection(OffsetDateTime::now_utc(), deadline(10))
        .await
        .unwrap();
    assert_eq!(report.auth_mode, "ssws");
    assert_eq!(report.key_id, None);
    assert_eq!((report.events_last_24h, report.requests), (4, 2));
    assert!(!report.count_is_lower_bound);
}

#[tokio::test]
async fn body_cut_off_mid_transfer_is_retried() {
    let fake =
        Fake::ssws([Reply::new(200, r#"[{"uuid":"a"}"#).header("content-length", "5000")]).await;
    let client = fake.ssws_client(quick_options());
    let page = first_page(&client).await.unwrap();
    assert!(
        page.events.is_empty(),
        "the retry got the default empty page"
    );
    assert_eq!(client.stats().retries, 1);
}

/// The crate's logs of every test in this binary, at every level, as plain text.
fn capture_logs() -> LogCapture {
    LogCapture::global(|capture| {
        tracing_subscriber::fmt()
            .with_env_filter("okta_ingest=trace")
            .with_ansi(false)
            .with_writer(capture)
            .finish()
    })
}

#[tokio::test]
async fn logs_never_contain_tokens_assertions_proofs_or_keys() {
    let buffer = capture_logs();
    let (fake, key) = oauth_fake(3600, Some("nonce-1")).await;
    let retired = EcKey::generate("k0");
    let keys = json!([retired.private_jwk(), key.private_jwk()]);
    fake.script_logs([Reply::new(503, ""), Reply::new(401, "")]);
    let client = new_client(&fake.oauth_config(keys.clone(), true), quick_options()).unwrap();
    first_page(&client).await.unwrap();

    let logged = buffer.contents();
    assert!(
        logged.contains("okta request"),
        "the test captured the client's logs: {logged}"
    );
    let mut secrets: Vec<String> = vec!["tok-1".into(), "tok-2".into()];
    secrets.push(keys[0]["d"].as_str().unwrap().to_owned());
    secrets.push(keys[1]["d"].as_str().unwrap().to_owned());
    for request in fake.token_requests() {
        secrets.push(header(&request, "dpop").to_owned());
        let form: HashMap<String, String> = url::form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect();
        secrets.push(form["client_assertion"].clone());
    }
    for request in fake.log_requests() {
        secrets.push(header(&request, "dpop").to_owned());
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !logged.contains(secret.as_str()),
            "secret {secret:.12}… was logged"
        );
    }
}

#[tokio::test]
async fn token_with_a_line_break_is_a_config_error_not_a_retry() {
    let fake = Fake::start(FakeState::default()).await;
    let config =
        config(json!({"org_url": fake.base, "auth": {"type": "ssws", "token": "00ab\ncd"}}));
    let client = new_client(&config, quick_options()).unwrap();
    let err = first_page(&client).await.unwrap_err();
    assert!(matches!(err, OktaError::UnusableCredentials(_)), "{err}");
    assert!(!err.to_string().contains("00ab"));
    assert!(fake.log_requests().is_empty());
}

#[tokio::test]
async fn stale_reset_429_waits_briefly_instead_of_spending_retries() {
    let fake =
        Fake::ssws(
            [Reply::new(429, "").rate_limit("0", (epoch_secs_from_now(0) - 10).to_string())],
        )
        .await;
    // No retries allowed: only a 429 wait (not backoff) can get the page.
    let options = ClientOptions {
        max_retries: 0,
        ..quick_options()
    };
    let client = fake.ssws_client(options);
    first_page(&client).await.unwrap();
    assert_retried_after_about_a_second(&fake);
}

#[tokio::test]
async fn huge_retry_after_fails_fast_as_rate_limited_without_panicking() {
    let fake = Fake::ssws([Reply::new(429, "").header("retry-after", u64::MAX.to_string())]).await;
    let client = fake.ssws_client(quick_options());
    assert_fails_fast_as_rate_limited(&client).await;
}

#[tokio::test]
async fn huge_expires_in_is_clamped_and_the_token_reused() {
    let (fake, key) = oauth_fake(u64::MAX, None).await;
    let client = oauth_client(&fake, &key, false);
    for _ in 0..2 {
        first_page(&client).await.unwrap();
    }
    assert_eq!(fake.token_requests().len(), 1);
}

#[tokio::test]
async fn failed_early_renewal_keeps_using_the_still_valid_token() {
    let (fake, key) = oauth_fake(4, None).await;
    let options = ClientOptions {
        token_renew_margin: Duration::from_secs(2),
        ..quick_options()
    };
    let client = oauth_client_with(&fake, &key, options);
    first_page(&client).await.unwrap();
    // Within the renewal margin but not expired; the token endpoint is down for one request.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fake.script_tokens([Reply::new(503, "")]);
    first_page(&client).await.unwrap();
    assert_eq!(fake.authorizations(), ["Bearer tok-1", "Bearer tok-1"]);
    assert_eq!(fake.token_requests().len(), 2, "the renewal was attempted");
}

#[tokio::test]
async fn short_lived_token_is_reused_across_pages_despite_a_longer_margin() {
    // Default margin is 300 s; a 60 s token must not be fetched again for every page.
    let (fake, key) = oauth_fake(60, None).await;
    let client = oauth_client(&fake, &key, false);
    for _ in 0..3 {
        first_page(&client).await.unwrap();
    }
    assert_eq!(fake.token_requests().len(), 1);
}

fn use_dpop_nonce(nonce: &str) -> Reply {
    Reply::new(
        400,
        json!({"error": "use_dpop_nonce", "error_description": "nonce required"}).to_string(),
    )
    .header("dpop-nonce", nonce)
}

#[tokio::test]
async fn token_endpoint_nonce_changing_again_is_retried_not_auth_rejected() {
    let (fake, key) = oauth_fake(3600, Some("nonce-2")).await;
    fake.script_tokens([use_dpop_nonce("nonce-1"), use_dpop_nonce("nonce-2")]);
    let client = oauth_client(&fake, &key, true);
    first_page(&client).await.unwrap();
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 3);
    assert_eq!(proof_claims(header(&tokens[2], "dpop"))["nonce"], "nonce-2");
}

fn api_nonce_challenge(nonce: String) -> Reply {
    Reply::new(401, "")
        .header("www-authenticate", "DPoP error=\"use_dpop_nonce\"")
        .header("dpop-nonce", nonce)
}

#[tokio::test]
async fn api_nonce_changing_again_is_retried_without_a_new_token() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs((1..=3).map(|i| api_nonce_challenge(format!("api-{i}"))));
    let client = oauth_client(&fake, &key, true);
    first_page(&client).await.unwrap();
    assert_eq!(fake.log_requests().len(), 4);
    assert_eq!(fake.token_requests().len(), 1);
}

#[tokio::test]
async fn endless_api_nonce_churn_fails_without_pausing_the_connector() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs((1..=20).map(|i| api_nonce_challenge(format!("api-{i}"))));
    let client = oauth_client(&fake, &key, true);
    let err = first_page(&client).await.unwrap_err();
    assert!(!err.pauses_connector(), "{err}");
    assert!(matches!(err, OktaError::Http { status: 401, .. }), "{err}");
}

#[tokio::test]
async fn bearer_token_while_dpop_is_configured_is_refused_naming_the_setting() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::token("tok-1", "Bearer")]);
    let client = oauth_client(&fake, &key, true);
    let err = first_page(&client).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, OktaError::AuthRejected { .. }), "{message}");
    assert!(message.contains("\"dpop\": false"), "{message}");
    assert!(!message.contains("tok-"), "no token in errors: {message}");
    assert!(fake.log_requests().is_empty(), "no 401 loop at the API");
}

#[tokio::test]
async fn dpop_token_while_dpop_is_off_is_refused_naming_the_setting() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_tokens([Reply::token("tok-x", "DPoP")]);
    let client = oauth_client(&fake, &key, false);
    let err = first_page(&client).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("\"dpop\": true"), "{message}");
    assert!(fake.log_requests().is_empty());
}

#[tokio::test]
async fn refused_dpop_token_with_a_nonce_header_still_renews_then_is_auth_rejected() {
    let (fake, key) = oauth_fake(3600, None).await;
    fake.script_logs((1..=3).map(|i| {
        Reply::new(401, "")
            .header("www-authenticate", "DPoP error=\"invalid_token\"")
            .header("dpop-nonce", format!("api-{i}"))
    }));
    let client = oauth_client(&fake, &key, true);
    let err = first_page(&client).await.unwrap_err();
    assert!(err.pauses_connector(), "{err}");
    assert_eq!(fake.log_requests().len(), 3);
    assert_eq!(fake.token_requests().len(), 2, "renewed once");
}

fn new_client(config: &ConnectorConfig, options: ClientOptions) -> Result<OktaClient, OktaError> {
    OktaClient::new(&config.org_url, &config.auth, options)
}
