//! No secret material in anything the connector emits: every log line at TRACE level (ours and
//! the libraries'), the invocation summaries (JSON and Debug) and the EMF metrics documents,
//! across full runs with SSWS and OAuth (RSA and EC keys, with and without DPoP) and across
//! failures (a wrong token, invalid_client, refused configurations).
#![cfg(feature = "testkit")]

use std::time::Duration;

use okta_ingest::actions::Summary;
use okta_ingest::invocation::Action;
use okta_ingest::telemetry;
use okta_ingest::testkit::keys::{
    rsa_private_jwk, rsa_public_jwk, rsa_secret_parts, EcKey, RSA_PEM,
};
use okta_ingest::testkit::logs::LogCapture;
use okta_ingest::testkit::rig::{sim_config, test_settings, Rig, CONNECTOR, SSWS_TOKEN};
use okta_sim::ClientRegistration;
use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

const CLIENT_ID: &str = "0oa-secrets-test";
const WRONG_TOKEN: &str = "00wrong-ssws-token-fedcba9876543210";

/// Everything logged by this test binary, at every level and from every crate, in the Lambda's
/// own JSON log format.
fn capture() -> LogCapture {
    LogCapture::global(|capture| telemetry::json_subscriber(EnvFilter::new("trace"), capture))
}

/// Emits an invocation the way the Lambda does and keeps every rendering of its summary.
fn record(outputs: &mut Vec<String>, result: &Result<Summary, Summary>) {
    let summary = match result {
        Ok(summary) | Err(summary) => summary,
    };
    okta_ingest::lambda::metrics::log_summary(summary);
    outputs.push(serde_json::to_string(summary).unwrap());
    outputs.push(format!("{result:?}"));
    outputs.push(
        okta_ingest::lambda::metrics::metrics_document(summary, time::OffsetDateTime::now_utc())
            .to_string(),
    );
}

struct Keys {
    rsa_private: Value,
    rsa_public: Value,
    ec_private: Value,
    ec_public: Value,
    /// Every private part, as it appears in the secret.
    secrets: Vec<String>,
}

fn keys() -> Keys {
    let ec = EcKey::generate("ec-1");
    let mut secrets = rsa_secret_parts();
    secrets.push(ec.private_scalar());
    Keys {
        rsa_private: rsa_private_jwk(),
        rsa_public: rsa_public_jwk(),
        ec_private: ec.private_jwk(),
        ec_public: ec.public_jwk(),
        secrets,
    }
}

/// A rig that re-reads its secret on every invocation, so each scenario's secret takes effect.
async fn fresh_rig(config: okta_sim::SimConfig) -> Rig {
    let mut settings = test_settings();
    settings.secret_cache_ttl = Duration::ZERO;
    Rig::with_settings(config, settings).await
}

fn register(rig: &Rig, public: &Value, dpop: bool) {
    rig.sim.register_client(ClientRegistration {
        client_id: CLIENT_ID.into(),
        public_jwks: vec![public.clone()],
        scopes: vec!["okta.logs.read".into()],
        require_dpop: dpop,
        active: true,
    });
}

fn use_oauth(rig: &Rig, private_key: &Value, dpop: bool) {
    let secret = json!({"org_url": rig.sim.base_url(),
        "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": private_key, "dpop": dpop}});
    rig.secrets.set(CONNECTOR, &secret.to_string());
}

/// A credential after an auth scheme, e.g. `Bearer abc...`: short words ("DPoP on") are fine.
fn credentials_after_schemes(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    for scheme in ["bearer ", "dpop ", "ssws "] {
        for (at, _) in lower.match_indices(scheme) {
            let rest = &text[at + scheme.len()..];
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(*c))
                .collect();
            if token.len() >= 16 {
                found.push(format!("{}{token}", &text[at..at + scheme.len()]));
            }
        }
    }
    found
}

async fn poll_to_end(rig: &Rig, outputs: &mut Vec<String>) {
    for _ in 0..5 {
        let result = rig.poll().await;
        record(outputs, &result);
        if result.is_ok_and(|s| s.drain.is_some_and(|d| d.caught_up)) {
            return;
        }
    }
    panic!("not caught up after 5 polls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_material_in_logs_summaries_or_metrics() {
    let logs = capture();
    let keys = keys();
    let mut outputs = Vec::new();
    let budget = Duration::from_secs(10);

    // SSWS: a full drain, then a revoked (wrong) token.
    let rig = fresh_rig(sim_config(600, 81)).await;
    poll_to_end(&rig, &mut outputs).await;
    rig.secrets.set(
        CONNECTOR,
        &json!({"org_url": rig.sim.base_url(), "auth": {"type": "ssws", "token": WRONG_TOKEN}})
            .to_string(),
    );
    rig.sim.append_events(10);
    let rejected = rig.poll().await;
    assert!(rejected.is_err(), "a wrong token fails the poll");
    record(&mut outputs, &rejected);

    // OAuth with DPoP, RSA (JWK and PEM) and EC keys, each across a full drain.
    for (private, public) in [
        (&keys.rsa_private, &keys.rsa_public),
        (&json!(RSA_PEM), &keys.rsa_public),
        (&keys.ec_private, &keys.ec_public),
    ] {
        let rig = fresh_rig(sim_config(600, 82)).await;
        register(&rig, public, true);
        use_oauth(&rig, private, true);
        let tested = rig.invoke(Action::TestConnection, budget).await;
        assert!(tested.is_ok(), "{tested:?}");
        record(&mut outputs, &tested);
        poll_to_end(&rig, &mut outputs).await;
    }

    // invalid_client: the app knows a different key, then the app is deactivated.
    let rig = fresh_rig(sim_config(100, 83)).await;
    register(&rig, &keys.rsa_public, true);
    use_oauth(&rig, &keys.ec_private, true);
    let refused = rig.invoke(Action::TestConnection, budget).await;
    assert!(refused.is_err(), "a key Okta does not know is refused");
    record(&mut outputs, &refused);
    let rig = fresh_rig(sim_config(100, 84)).await;
    register(&rig, &keys.ec_public, true);
    use_oauth(&rig, &keys.ec_private, true);
    rig.sim.set_client_active(CLIENT_ID, false);
    let deactivated = rig.poll().await;
    assert!(deactivated.as_ref().is_err_and(|s| s
        .message
        .as_deref()
        .unwrap_or("")
        .contains("invalid_client")));
    record(&mut outputs, &deactivated);

    // Refused configurations that carry key material next to the mistake.
    let mut truncated_jwk = keys.rsa_private.clone();
    truncated_jwk.as_object_mut().unwrap().remove("n");
    let broken_pem = RSA_PEM.replacen("MII", "MIX", 1);
    let broken = [
        json!({"org_url": "http://acme.okta.com", "auth": {"type": "ssws", "token": SSWS_TOKEN}})
            .to_string(),
        json!({"org_url": rig.sim.base_url(), "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": truncated_jwk}})
            .to_string(),
        json!({"org_url": rig.sim.base_url(), "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": broken_pem}})
            .to_string(),
        json!({"org_url": rig.sim.base_url(), "auth": {"type": "ssws", "token": SSWS_TOKEN, "tokne": SSWS_TOKEN}})
            .to_string(),
        // Cut mid-document: a syntax error right after the token.
        format!(r#"{{"org_url": "{}", "auth": {{"type": "ssws", "token": "{SSWS_TOKEN}""#, rig.sim.base_url()),
    ];
    for secret in broken {
        rig.secrets.set(CONNECTOR, &secret);
        let failed = rig.invoke(Action::TestConnection, budget).await;
        assert!(failed.is_err(), "{secret} must be refused");
        record(&mut outputs, &failed);
    }

    let logged = logs.contents();
    assert!(
        logged.contains("okta request") && logged.contains("invocation finished"),
        "the capture saw the runs"
    );
    outputs.push(logged);
    let everything = outputs.join("\n");

    let mut material = keys.secrets.clone();
    material.push(SSWS_TOKEN.to_string());
    material.push(WRONG_TOKEN.to_string());
    for secret in &material {
        assert!(
            !everything.contains(secret.as_str()),
            "secret material {}… appears in the output",
            &secret[..8]
        );
    }
    // Client assertions and DPoP proofs are JWTs, whose header always encodes to `eyJ`.
    assert!(
        !everything.contains("eyJ"),
        "a JWT (client assertion or DPoP proof) appears in the output"
    );
    let leaked = credentials_after_schemes(&everything);
    assert!(
        leaked.is_empty(),
        "access tokens appear in the output: {:?}",
        leaked
            .iter()
            .map(|l| l.chars().take(12).collect::<String>())
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_token_scan_finds_credentials_and_ignores_prose() {
    assert_eq!(
        credentials_after_schemes("Authorization: Bearer abcdefghijklmnop0123"),
        ["Bearer abcdefghijklmnop0123"]
    );
    assert_eq!(
        credentials_after_schemes("dpop AAAAAAAAAAAAAAAAAAAA-_").len(),
        1
    );
    assert!(credentials_after_schemes("with OAuth 2.0 client x (DPoP on)").is_empty());
}
