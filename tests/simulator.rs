#![cfg(feature = "testkit")]
//! The simulator behaves like Okta's System Log and token endpoint, as the connector relies on.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use okta_ingest::testkit::keys::{rsa_public_jwk, EcKey, RSA_KID, RSA_PEM};
use okta_sim::{
    ClientRegistration, Fault, FaultKind, FleetError, RateLimitConfig, SimConfig, SimFleet,
    Simulator,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

static APP_KEY: LazyLock<EcKey> = LazyLock::new(|| EcKey::generate("ec-1"));
static DPOP_KEY: LazyLock<EcKey> = LazyLock::new(|| EcKey::generate("dpop"));
const SSWS: &str = "00a-test-api-token";

/// JSON bodies without reqwest's `json` feature (not needed by the product).
trait ReadJson {
    fn json<T: serde::de::DeserializeOwned>(
        self,
    ) -> impl std::future::Future<Output = Result<T, serde_json::Error>>;
}

impl ReadJson for reqwest::Response {
    async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text().await.expect("response body"))
    }
}

trait SendJson {
    fn json(self, body: &Value) -> Self;
}

impl SendJson for reqwest::RequestBuilder {
    fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

fn client(id: &str, scopes: &[&str], require_dpop: bool) -> ClientRegistration {
    ClientRegistration {
        client_id: id.to_string(),
        public_jwks: vec![rsa_public_jwk(), APP_KEY.public_jwk()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        require_dpop,
        active: true,
    }
}

async fn start(initial_events: usize, tweak: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut config = SimConfig {
        seed: 7,
        initial_events,
        backlog_span: Duration::from_secs(600),
        ssws_tokens: vec![SSWS.to_string()],
        clients: vec![
            client("0oa-logs", &["okta.logs.read"], false),
            client("0oa-users", &["okta.users.read"], false),
            client("0oa-dpop", &["okta.logs.read"], true),
        ],
        ..SimConfig::default()
    };
    tweak(&mut config);
    Simulator::start(config).await.unwrap()
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn assertion(alg: Algorithm, client_id: &str, aud: &str, jti: &str) -> String {
    let (kid, key) = match alg {
        Algorithm::RS256 => (
            RSA_KID,
            EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        ),
        _ => (APP_KEY.kid.as_str(), APP_KEY.encoding_key()),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now_s(),
        "exp": now_s() + 300, "jti": jti});
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn dpop_proof(htm: &str, htu: &str, nonce: Option<&str>, access_token: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".to_string());
    header.jwk = Some(serde_json::from_value(DPOP_KEY.thumbprint_jwk()).unwrap());
    let mut claims = json!({"htm": htm, "htu": htu, "iat": now_s(), "jti": jti()});
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    if let Some(t) = access_token {
        claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())));
    }
    let key = DPOP_KEY.encoding_key();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn token_request(
    sim: &Simulator,
    client_id: &str,
    assertion: &str,
    scope: &str,
    dpop: Option<String>,
) -> reqwest::Response {
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
        ("client_id", client_id),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = reqwest::Client::new()
        .post(format!("{}/oauth2/v1/token", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn bearer_token(sim: &Simulator, client_id: &str, alg: Algorithm, scope: &str) -> String {
    let aud = format!("{}/oauth2/v1/token", sim.base_url());
    let a = assertion(alg, client_id, &aud, &jti());
    let resp = token_request(sim, client_id, &a, scope, None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_string()
}

async fn get(url: &str, authorization: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap()
}

fn ssws() -> String {
    format!("SSWS {SSWS}")
}

fn links(resp: &reqwest::Response) -> (Option<String>, Option<String>) {
    let mut self_link = None;
    let mut next = None;
    for value in resp.headers().get_all("link") {
        let v = value.to_str().unwrap();
        let url = v[v.find('<').unwrap() + 1..v.find('>').unwrap()].to_string();
        if v.contains("rel=\"next\"") {
            next = Some(url);
        } else if v.contains("rel=\"self\"") {
            self_link = Some(url);
        }
    }
    (self_link, next)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    let s = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn first_url(sim: &Simulator, limit: usize) -> String {
    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    format!(
        "{}/api/v1/logs?since={}&sortOrder=ASCENDING&limit={limit}",
        sim.base_url(),
        rfc3339(since)
    )
}

/// Follows next links until an empty page; returns the uuids read and the last next link.
async fn drain(url: String) -> (Vec<String>, String) {
    drain_as(url, &ssws()).await
}

async fn drain_as(mut url: String, authorization: &str) -> (Vec<String>, String) {
    let mut uuids = Vec::new();
    loop {
        let resp = get(&url, authorization).await;
        assert_eq!(resp.status(), 200);
        let next = links(&resp)
            .1
            .expect("polling pages always carry a next link");
        let page: Vec<Value> = resp.json().await.unwrap();
        if page.is_empty() {
            return (uuids, next);
        }
        uuids.extend(page.iter().map(|e| e["uuid"].as_str().unwrap().to_string()));
        url = next;
    }
}

fn uuids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn polling_with_limit_1000_pages_to_caught_up_and_the_empty_page_keeps_a_next_link() {
    let sim = start(2500, |_| {}).await;
    let resp = get(&first_url(&sim, 1000), &ssws()).await;
    let (self_link, next) = links(&resp);
    assert!(self_link.unwrap().contains("limit=1000"));
    let first: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(first.len(), 1000);
    let (rest, caught_up) = drain(next.unwrap()).await;
    assert_eq!([uuids(&first), rest].concat(), uuids(&sim.events()));
    let again = get(&caught_up, &ssws()).await;
    assert!(links(&again).1.is_some());
    assert_eq!(again.json::<Vec<Value>>().await.unwrap().len(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn late_persisted_events_appear_after_the_cursor() {
    let sim = start(300, |_| {}).await;
    let (_, cursor) = drain(first_url(&sim, 1000)).await;
    let late = sim.append_late_events(3, Duration::from_secs(1800));
    let fresh = sim.append_events(2);
    let (read, _) = drain(cursor).await;
    assert_eq!(read, [late, fresh].concat());
    let events = sim.events();
    let late_published = events[300]["published"].as_str().unwrap();
    let last_backlog = events[299]["published"].as_str().unwrap();
    assert!(
        late_published < last_backlog,
        "late events carry an older published time"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bounded_query_orders_by_published_and_ends_without_next() {
    let sim = start(250, |_| {}).await;
    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let mut url = format!(
        "{}/api/v1/logs?since={}&until={}&limit=100",
        sim.base_url(),
        rfc3339(until - time::Duration::hours(1)),
        rfc3339(until)
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let resp = get(&url, &ssws()).await;
        assert_eq!(resp.status(), 200);
        let next = links(&resp).1;
        let page: Vec<Value> = resp.json().await.unwrap();
        seen.extend(
            page.iter()
                .map(|e| e["published"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn forged_cursor_oversized_limit_and_unknown_filter_are_refused_with_400() {
    let sim = start(10, |_| {}).await;
    for query in [
        "after=1700000000000_1",
        "limit=1001",
        "filter=actor.id%20eq%20%22x%22",
    ] {
        let url = format!("{}/api/v1/logs?{query}", sim.base_url());
        let resp = get(&url, &ssws()).await;
        assert_eq!(resp.status(), 400, "{query}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["errorCode"].as_str().unwrap().starts_with("E0000"));
        assert!(body["errorId"].is_string() && body["errorCauses"].is_array());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn event_type_filter_selects_matching_events() {
    let sim = start(500, |_| {}).await;
    let url = format!(
        "{}&filter=eventType%20eq%20%22user.session.start%22",
        first_url(&sim, 1000)
    );
    let page: Vec<Value> = get(&url, &ssws()).await.json().await.unwrap();
    let expected: Vec<Value> = sim
        .events()
        .into_iter()
        .filter(|e| e["eventType"] == "user.session.start")
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(uuids(&page), uuids(&expected));
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_headers_count_down_and_an_exhausted_bucket_answers_429() {
    let sim = start(5, |c| {
        c.rate_limit = Some(RateLimitConfig {
            limit: 3,
            window: Duration::from_secs(60),
        })
    })
    .await;
    let url = first_url(&sim, 10);
    for expected_remaining in ["2", "1", "0"] {
        let resp = get(&url, &ssws()).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-rate-limit-limit"], "3");
        assert_eq!(resp.headers()["x-rate-limit-remaining"], expected_remaining);
    }
    let resp = get(&url, &ssws()).await;
    assert_eq!(resp.status(), 429);
    let reset: i64 = resp.headers()["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= now_s() && reset <= now_s() + 61);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], "E0000047");
    sim.set_rate_limit(None);
    let resp = get(&url, &ssws()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-rate-limit-remaining"));
    sim.shutdown().await;
}

#[tokio::test]
async fn ssws_token_is_accepted_and_unknown_credentials_get_401() {
    let sim = start(5, |_| {}).await;
    let url = first_url(&sim, 10);
    assert_eq!(get(&url, &ssws()).await.status(), 200);
    for auth in ["SSWS wrong", "Bearer not-a-token", "Basic abc"] {
        let resp = get(&url, auth).await;
        assert_eq!(resp.status(), 401, "{auth}");
        assert!(resp.headers().contains_key("www-authenticate"));
        assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], "E0000011");
    }
    let schemes: Vec<Option<String>> = sim.requests().into_iter().map(|r| r.auth_scheme).collect();
    assert_eq!(schemes[0].as_deref(), Some("SSWS"));
    assert_eq!(schemes[2].as_deref(), Some("Bearer"));
    sim.shutdown().await;
}

#[tokio::test]
async fn rs256_and_es256_assertions_get_tokens_that_read_logs() {
    let sim = start(5, |_| {}).await;
    let url = first_url(&sim, 10);
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let token = bearer_token(&sim, "0oa-logs", alg, "okta.logs.read").await;
        assert_eq!(get(&url, &format!("Bearer {token}")).await.status(), 200);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_and_missing_scope_are_refused_on_logs() {
    let sim = start(5, |c| c.token_ttl = Duration::from_millis(300)).await;
    let url = first_url(&sim, 10);
    let short = bearer_token_with_ttl(&sim).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get(&url, &format!("Bearer {short}")).await.status(), 401);
    sim.shutdown().await;

    let sim = start(5, |_| {}).await;
    let url = first_url(&sim, 10);
    let token = bearer_token(&sim, "0oa-logs", Algorithm::RS256, "okta.logs.read").await;
    sim.revoke_tokens();
    assert_eq!(get(&url, &format!("Bearer {token}")).await.status(), 401);
    let users_only = bearer_token(&sim, "0oa-users", Algorithm::ES256, "okta.users.read").await;
    let resp = get(&url, &format!("Bearer {users_only}")).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], "E0000006");
    sim.shutdown().await;
}

async fn bearer_token_with_ttl(sim: &Simulator) -> String {
    let aud = format!("{}/oauth2/v1/token", sim.base_url());
    let a = assertion(Algorithm::RS256, "0oa-logs", &aud, &jti());
    let body: Value = token_request(sim, "0oa-logs", &a, "okta.logs.read", None)
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn replayed_wrong_audience_unknown_and_deactivated_clients_are_invalid_client() {
    let sim = start(5, |_| {}).await;
    let aud = format!("{}/oauth2/v1/token", sim.base_url());
    let used = assertion(Algorithm::RS256, "0oa-logs", &aud, "jti-once");
    let ok = token_request(&sim, "0oa-logs", &used, "okta.logs.read", None).await;
    assert_eq!(ok.status(), 200);
    let replay = token_request(&sim, "0oa-logs", &used, "okta.logs.read", None).await;
    let foreign_aud = "https://acme.okta.com/oauth2/v1/token";
    let a = assertion(Algorithm::ES256, "0oa-logs", foreign_aud, &jti());
    let wrong_aud = token_request(&sim, "0oa-logs", &a, "okta.logs.read", None).await;
    let a = assertion(Algorithm::RS256, "0oa-nobody", &aud, &jti());
    let unknown = token_request(&sim, "0oa-nobody", &a, "okta.logs.read", None).await;
    for (what, resp) in [
        ("replayed jti", replay),
        ("wrong aud", wrong_aud),
        ("unknown client", unknown),
    ] {
        assert_eq!(resp.status(), 401, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{what}");
    }
    let a = assertion(Algorithm::RS256, "0oa-logs", &aud, &jti());
    let scope = token_request(&sim, "0oa-logs", &a, "okta.users.manage", None).await;
    assert_eq!(scope.status(), 400);
    assert_eq!(
        scope.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    sim.set_client_active("0oa-logs", false);
    let a = assertion(Algorithm::RS256, "0oa-logs", &aud, &jti());
    let deactivated = token_request(&sim, "0oa-logs", &a, "okta.logs.read", None).await;
    assert_eq!(deactivated.status(), 401);
    let body: Value = deactivated.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    sim.shutdown().await;
}

#[tokio::test]
async fn dpop_client_goes_through_the_nonce_dance_and_proofs_must_match_the_token() {
    let sim = start(5, |_| {}).await;
    let token_url = format!("{}/oauth2/v1/token", sim.base_url());
    let logs_url = format!("{}/api/v1/logs", sim.base_url());
    let a = assertion(Algorithm::ES256, "0oa-dpop", &token_url, &jti());
    let no_proof = token_request(&sim, "0oa-dpop", &a, "okta.logs.read", None).await;
    assert_eq!(no_proof.status(), 400);
    assert_eq!(
        no_proof.json::<Value>().await.unwrap()["error"],
        "invalid_dpop_proof"
    );

    let a = assertion(Algorithm::ES256, "0oa-dpop", &token_url, &jti());
    let proof = dpop_proof("POST", &token_url, None, None);
    let first = token_request(&sim, "0oa-dpop", &a, "okta.logs.read", Some(proof)).await;
    assert_eq!(first.status(), 400);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert_eq!(
        first.json::<Value>().await.unwrap()["error"],
        "use_dpop_nonce"
    );
    let proof = dpop_proof("POST", &token_url, Some(&nonce), None);
    let granted = token_request(&sim, "0oa-dpop", &a, "okta.logs.read", Some(proof)).await;
    assert_eq!(granted.status(), 200);
    let body: Value = granted.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();

    let call = |proof: String| {
        reqwest::Client::new()
            .get(format!("{logs_url}?limit=5"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
    };
    let good = call(dpop_proof("GET", &logs_url, None, Some(token))).await;
    assert_eq!(good.unwrap().status(), 200);
    let wrong_ath = call(dpop_proof("GET", &logs_url, None, Some("other"))).await;
    assert_eq!(wrong_ath.unwrap().status(), 401);
    let no_ath = call(dpop_proof("GET", &logs_url, None, None)).await;
    assert_eq!(no_ath.unwrap().status(), 401);
    assert_eq!(
        get(&logs_url, &format!("Bearer {token}")).await.status(),
        401
    );
    let schemes: Vec<Option<String>> = sim.requests().into_iter().map(|r| r.auth_scheme).collect();
    assert!(schemes.contains(&Some("DPoP".to_string())));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_fault_kind_is_observable_and_none_moves_the_cursor() {
    let sim = start(50, |_| {}).await;
    let url = first_url(&sim, 20);
    let clean = get(&url, &ssws()).await.text().await.unwrap();

    for status in [500, 502, 503, 504] {
        sim.inject(Fault::Status(status), 1);
        let resp = get(&url, &ssws()).await;
        assert_eq!(resp.status(), status);
        assert!(resp.json::<Value>().await.unwrap()["errorCode"].is_string());
    }
    sim.inject(Fault::RateLimited, 1);
    let resp = get(&url, &ssws()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    assert!(resp.headers().contains_key("retry-after"));

    sim.inject(Fault::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(get(&url, &ssws()).await.text().await.unwrap(), clean);
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.inject(Fault::DropConnection, 1);
    let resp = get(&url, &ssws()).await;
    assert!(resp.text().await.is_err(), "the body must break off");

    sim.inject(Fault::TruncatedBody, 1);
    let body = get(&url, &ssws()).await.text().await.unwrap();
    assert!(!body.is_empty() && serde_json::from_str::<Value>(&body).is_err());

    sim.inject(Fault::MalformedBody, 1);
    let body = get(&url, &ssws()).await.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err());

    sim.inject(Fault::ForeignNextLink, 1);
    let resp = get(&url, &ssws()).await;
    assert!(links(&resp)
        .1
        .unwrap()
        .starts_with("https://evil.example.com/"));

    sim.inject(Fault::TokenEndpointStatus(503), 1);
    let aud = format!("{}/oauth2/v1/token", sim.base_url());
    let a = assertion(Algorithm::RS256, "0oa-logs", &aud, &jti());
    let outage = token_request(&sim, "0oa-logs", &a, "okta.logs.read", None).await;
    assert_eq!(outage.status(), 503);
    let recovered = token_request(&sim, "0oa-logs", &a, "okta.logs.read", None).await;
    assert_eq!(recovered.status(), 200);

    // After all that, the same request still answers the same page.
    assert_eq!(get(&url, &ssws()).await.text().await.unwrap(), clean);
    sim.shutdown().await;
}

#[tokio::test]
async fn seeded_random_faults_hit_some_requests_and_can_be_cleared() {
    let sim = start(10, |_| {}).await;
    let url = first_url(&sim, 10);
    sim.set_random_faults(11, 0.5, vec![FaultKind::Status]);
    let mut failures = 0;
    for _ in 0..20 {
        if get(&url, &ssws()).await.status().is_server_error() {
            failures += 1;
        }
    }
    assert!((3..=17).contains(&failures), "failures: {failures}");
    sim.clear_faults();
    assert_eq!(get(&url, &ssws()).await.status(), 200);
    sim.shutdown().await;
}

fn without_published(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("published");
            e
        })
        .collect()
}

#[tokio::test]
async fn same_seed_gives_the_same_events() {
    let a = start(200, |_| {}).await;
    let b = start(200, |_| {}).await;
    let c = start(200, |c| c.seed = 8).await;
    assert_eq!(without_published(a.events()), without_published(b.events()));
    assert_ne!(without_published(a.events()), without_published(c.events()));
    let types: std::collections::HashSet<String> = a
        .events()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_string())
        .collect();
    assert!(types.len() > 20, "a varied log: {types:?}");
    for sim in [a, b, c] {
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn control_api_appends_events_and_scripts_faults() {
    let sim = start(0, |_| {}).await;
    let appended: Value = control_post(&sim, "events", json!({"count": 3}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(appended["uuids"].as_array().unwrap().len(), 3);
    let raw = json!({"raw": [{"eventType": "user.session.start", "uuid": "scripted-1"}]});
    control_post(&sim, "events", raw).await;
    let events: Vec<Value> = control_get(&sim, "events").await;
    assert_eq!(events.len(), 4);
    assert_eq!(events[3]["uuid"], "scripted-1");
    let fault = json!({"fault": "status", "status": 502, "times": 1});
    let set = control_post(&sim, "faults", fault).await;
    assert_eq!(set.status(), 204);
    assert_eq!(get(&first_url(&sim, 10), &ssws()).await.status(), 502);
    let log: Vec<Value> = control_get(&sim, "requests").await;
    assert_eq!(log.last().unwrap()["status"], 502);
    assert_eq!(log.last().unwrap()["auth_scheme"], "SSWS");
    sim.shutdown().await;
}

/// POSTs `body` to the simulator's control API (`/__sim/<path>`).
async fn control_post(sim: &Simulator, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/__sim/{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// GETs `/__sim/<path>` of the simulator's control API as JSON.
async fn control_get(sim: &Simulator, path: &str) -> Vec<Value> {
    reqwest::get(format!("{}/__sim/{path}", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Org `i` of a fleet test: its own seed, API token and (for org 0 only) a small bucket.
fn fleet_org(i: u64) -> SimConfig {
    SimConfig {
        seed: 100 + i,
        initial_events: 40 + 10 * i as usize,
        backlog_span: Duration::from_secs(600),
        ssws_tokens: vec![format!("00org-{i}-token")],
        rate_limit: (i == 0).then_some(RateLimitConfig {
            limit: 5,
            window: Duration::from_secs(60),
        }),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_fleet_gives_each_org_its_own_events_credentials_and_rate_limit_bucket() {
    let fleet = SimFleet::start((0..3).map(fleet_org).collect())
        .await
        .unwrap();
    assert_eq!(fleet.len(), 3);
    let mut seen = std::collections::HashSet::new();
    for (i, sim) in fleet.orgs().iter().enumerate() {
        assert_eq!(fleet.org_index(&sim.base_url()), Some(i));
        assert_eq!(fleet.org_index(&first_url(sim, 5)), Some(i));
        let (read, _) = drain_as(first_url(sim, 1000), &format!("SSWS 00org-{i}-token")).await;
        assert_eq!(read, uuids(&sim.events()), "org {i} serves its own log");
        assert_eq!(read.len(), 40 + 10 * i);
        for uuid in read {
            assert!(seen.insert(uuid), "an event uuid appears in two orgs");
        }
    }
    // Another org's token is refused: credentials are per org.
    let foreign = get(&first_url(fleet.org(1), 10), "SSWS 00org-0-token").await;
    assert_eq!(foreign.status(), 401);
    // Org 0's bucket (5 per window; two requests spent above) runs dry without touching org 1's.
    let url = first_url(fleet.org(0), 10);
    let statuses = sequential_statuses(&url, "SSWS 00org-0-token", 4).await;
    assert_eq!(statuses, [200, 200, 200, 429]);
    let other = get(&first_url(fleet.org(1), 10), "SSWS 00org-1-token").await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.headers()["x-rate-limit-limit"], "1000000");
    // Events appended to one org show up there only.
    let appended = fleet.org(2).append_events(3);
    assert_eq!(fleet.org(2).event_count(), 60 + 3);
    assert_eq!(fleet.org(1).event_count(), 50);
    assert!(appended.iter().all(|id| seen.insert(id.clone())));
    assert_eq!(fleet.org_index("http://127.0.0.1:1"), None);
    assert_eq!(fleet.org_index("not a url"), None);
    fleet.shutdown().await;
}

/// The statuses of `n` sequential GETs of `url`.
async fn sequential_statuses(url: &str, authorization: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        statuses.push(get(url, authorization).await.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_fleet_refuses_orgs_that_share_a_seed_or_ports_past_65535() {
    let twins = vec![fleet_org(1), fleet_org(2), fleet_org(1)];
    let err = SimFleet::start(twins).await.err().expect("refused");
    assert!(matches!(
        err,
        FleetError::SharedSeed {
            first: 0,
            second: 2,
            seed: 101
        }
    ));
    assert!(
        err.to_string().contains("give each org its own seed"),
        "{err}"
    );
    let err = SimFleet::start_on(vec![fleet_org(0), fleet_org(1)], 65535)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, FleetError::PortRange { .. }), "{err}");
    let uniform = SimFleet::uniform(4, fleet_org(0)).await.unwrap();
    let seeds: std::collections::HashSet<String> = uniform
        .orgs()
        .iter()
        .map(|sim| sim.events()[0]["uuid"].to_string())
        .collect();
    assert_eq!(seeds.len(), 4, "org i of a uniform fleet has seed + i");
    uniform.shutdown().await;
}
