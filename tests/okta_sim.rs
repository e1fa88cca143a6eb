//! OAuth 2.0 (private_key_jwt with RSA and EC keys, JWK and PEM, DPoP) and SSWS against the
//! simulator's token endpoint and System Log, through the whole connector.
#![cfg(feature = "testkit")]

use std::time::Duration;

use okta_ingest::invocation::Action;
use okta_ingest::testkit::keys::{rsa_private_jwk, rsa_public_jwk, EcKey, RSA_PEM};
use okta_ingest::testkit::rig::{sim_config, test_settings, Rig, CONNECTOR};
use okta_sim::ClientRegistration;
use serde_json::{json, Value};

const CLIENT_ID: &str = "0oa-ingest-test";

/// A fresh EC key's (private, public) JWKs.
fn jwk_pair(kid: &str) -> (Value, Value) {
    let key = EcKey::generate(kid);
    (key.private_jwk(), key.public_jwk())
}

fn register(rig: &Rig, jwks: Vec<Value>, dpop: bool) {
    rig.sim.register_client(ClientRegistration {
        client_id: CLIENT_ID.into(),
        public_jwks: jwks,
        scopes: vec!["okta.logs.read".into()],
        require_dpop: dpop,
        active: true,
    });
}

fn use_oauth(rig: &Rig, private_key: Value, dpop: bool) {
    let secret = json!({"org_url": rig.sim.base_url(),
        "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": private_key, "dpop": dpop}});
    rig.secrets.set(CONNECTOR, &secret.to_string());
}

fn token_requests(rig: &Rig) -> usize {
    rig.sim
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/v1/token")
        .count()
}

#[tokio::test]
async fn rsa_jwk_and_rsa_pem_keys_drain_everything() {
    for private_key in [rsa_private_jwk(), json!(RSA_PEM)] {
        let rig = Rig::start(sim_config(1500, 31)).await;
        register(&rig, vec![rsa_public_jwk()], false);
        use_oauth(&rig, private_key, false);
        rig.poll_until_caught_up(1).await;
        assert_eq!(rig.assert_nothing_missing(), 0);
        assert_eq!(token_requests(&rig), 1, "the token is cached across pages");
        let schemes: Vec<_> = rig
            .sim
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/logs")
            .map(|r| r.auth_scheme.clone())
            .collect();
        assert!(
            schemes.iter().all(|s| s.as_deref() == Some("Bearer")),
            "{schemes:?}"
        );
    }
}

#[tokio::test]
async fn ec_jwk_with_dpop_handles_the_nonce_and_binds_every_call() {
    let rig = Rig::start(sim_config(1200, 32)).await;
    let (private, public) = jwk_pair("ec-1");
    register(&rig, vec![public], true);
    use_oauth(&rig, private, true);
    let summary = rig
        .invoke(Action::TestConnection, Duration::from_secs(10))
        .await
        .unwrap();
    let report = serde_json::to_value(summary.connection.unwrap()).unwrap();
    assert_eq!(
        (report["auth_mode"].as_str(), report["dpop"].as_bool()),
        (Some("oauth2"), Some(true))
    );
    rig.poll_until_caught_up(1).await;
    assert_eq!(rig.assert_nothing_missing(), 0);
    let logs: Vec<_> = rig
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/logs")
        .collect();
    assert!(logs
        .iter()
        .all(|r| r.auth_scheme.as_deref() == Some("DPoP")));
    assert!(logs.iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn key_rotation_uses_the_first_key_okta_accepts_and_reports_it() {
    let rig = Rig::start(sim_config(300, 33)).await;
    let (retired, _) = jwk_pair("old-key");
    let (current, public) = jwk_pair("new-key");
    register(&rig, vec![public], false);
    use_oauth(&rig, json!([retired, current]), false);
    let summary = rig
        .invoke(Action::TestConnection, Duration::from_secs(10))
        .await
        .unwrap();
    let report = serde_json::to_value(summary.connection.unwrap()).unwrap();
    assert_eq!(report["key_id"], "new-key");
    rig.poll_until_caught_up(1).await;
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let mut config = sim_config(400, 34);
    config.token_ttl = Duration::from_secs(3);
    let mut settings = test_settings();
    settings.okta.token_renew_margin = Duration::from_secs(1);
    let rig = Rig::with_settings(config, settings).await;
    let (private, public) = jwk_pair("ec-1");
    register(&rig, vec![public], false);
    use_oauth(&rig, private, false);
    rig.poll_until_caught_up(1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    rig.sim.append_events(200);
    rig.poll_until_caught_up(1).await;
    assert_eq!(
        token_requests(&rig),
        2,
        "a fresh token once the old one neared expiry"
    );
    let rejected = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert_eq!(rejected, 0, "an expired token was never sent");
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn deactivated_app_pauses_the_connector_until_resumed() {
    let rig = Rig::start(sim_config(300, 35)).await;
    let (private, public) = jwk_pair("ec-1");
    register(&rig, vec![public], false);
    use_oauth(&rig, private, false);
    rig.sim.set_client_active(CLIENT_ID, false);
    let failed = rig.poll().await.expect_err("invalid_client");
    assert!(failed.message.unwrap().contains("invalid_client"));
    assert!(rig.store.snapshot(CONNECTOR).unwrap().paused.is_some());
    rig.sim.set_client_active(CLIENT_ID, true);
    rig.resume().await.unwrap();
    rig.poll_until_caught_up(1).await;
    assert_eq!(rig.assert_nothing_missing(), 0);
}
