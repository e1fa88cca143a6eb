use super::*;
use crate::normalize::{CatalogPolicy, NormalizerConfig};
use crate::sink::limits::MAX_PARTITION_KEY_BYTES;
use serde_json::json;
use time::macros::datetime;

const INGESTED: OffsetDateTime = datetime!(2024-05-01 12:00:30.5 UTC);

fn normalizer() -> Normalizer {
    Normalizer::new(NormalizerConfig {
        org: "acme.okta.com".to_owned(),
        connector_id: "conn-1".to_owned(),
        policy: CatalogPolicy::All,
        include_raw: false,
    })
}

fn record(event: serde_json::Value) -> (Value, String) {
    let record = normalizer()
        .normalize_ocsf(&event.to_string(), INGESTED)
        .unwrap();
    (
        serde_json::from_slice(&record.json).unwrap(),
        record.partition_key,
    )
}

fn event(event_type: &str, actor: Value, targets: Value) -> Value {
    json!({
        "uuid": "u-1", "published": "2024-05-01T12:00:00.1+02:00", "eventType": event_type,
        "actor": actor, "target": targets, "severity": "WARN",
        "client": {"ipAddress": "198.51.100.7", "userAgent": {"os": "iOS"}},
        "authenticationContext": {"externalSessionId": "s-1", "credentialType": "OTP"},
        "outcome": {"result": "CHALLENGE"}
    })
}

fn alice() -> Value {
    json!({"id": "00u-alice", "type": "User", "alternateId": "alice@acme.com", "displayName": "Alice"})
}

#[test]
fn time_is_epoch_millis_in_utc_and_severity_follows_okta() {
    let (r, key) = record(event("user.session.start", alice(), json!([])));
    assert_eq!(r["time"], 1_714_557_600_100_i64);
    assert_eq!(r["metadata"]["original_time"], "2024-05-01T10:00:00.100Z");
    assert_eq!(
        (r["severity_id"].as_u64(), r["severity"].as_str()),
        (Some(3), Some("Medium"))
    );
    assert_eq!(
        (r["status_id"].as_u64(), r["status"].as_str()),
        (Some(99), Some("CHALLENGE"))
    );
    assert_eq!(key, "3002:00u-alice");
    assert_eq!(r["src_endpoint"]["os"]["type_id"], 301);
}

#[test]
fn a_non_person_actor_is_an_application_and_the_user_is_the_target() {
    let system = json!({"id": "0oa-sys", "type": "SystemPrincipal", "displayName": "Okta System"});
    let (r, key) = record(event("user.lifecycle.suspend", system, json!([alice()])));
    assert_eq!(r["actor"]["app_name"], "Okta System");
    assert_eq!(r["actor"]["app_uid"], "0oa-sys");
    assert_eq!(
        r["actor"]["session"]["uid"], "s-1",
        "the actor's session outside sign-ins"
    );
    assert_eq!(r["user"]["uid"], "00u-alice");
    assert_eq!(r["user"]["email_addr"], "alice@acme.com");
    assert_eq!(r["activity_id"], 5);
    assert_eq!(key, "3001:00u-alice");
}

#[test]
fn mfa_factor_change_names_the_factor() {
    let (r, _) = record(event("user.mfa.factor.activate", alice(), json!([])));
    assert_eq!(
        r["auth_factors"],
        json!([{"factor_type_id": 7, "factor_type": "OTP"}])
    );
}

#[test]
fn okta_verify_device_with_a_known_platform_is_a_device() {
    let mut e = event("user.authentication.verify", alice(), json!([]));
    e["device"] = json!({"id": "guo-1", "name": "Alice's iPhone", "os_platform": "IOS", "os_version": "17.4", "managed": true});
    let (r, _) = record(e.clone());
    assert_eq!(r["device"]["type_id"], 5);
    assert_eq!(r["device"]["os"]["version"], "17.4");
    assert_eq!(r["device"]["is_managed"], true);
    assert!(r["metadata"]["profiles"]
        .as_array()
        .unwrap()
        .contains(&json!("host")));
    e["device"]["os_platform"] = json!("PALMOS");
    let (r, _) = record(e);
    assert!(r.get("device").is_none());
    assert_eq!(r["unmapped"]["device"]["name"], "Alice's iPhone");
}

#[test]
fn unresolved_user_keeps_okta_id_and_the_typed_name() {
    let unknown = json!({"id": "unknown", "type": "User", "alternateId": "Bob@Acme.com"});
    let (r, key) = record(event("user.session.start", unknown, json!([])));
    assert_eq!(r["user"]["uid"], "unknown");
    assert_eq!(r["user"]["name"], "Bob@Acme.com");
    assert_eq!(r["unmapped"]["subject_resolved"], false);
    assert_eq!(key, "3002:unknown:bob@acme.com");
}

#[test]
fn long_partition_keys_are_capped_like_total_keys() {
    let long = "a".repeat(MAX_PARTITION_KEY_BYTES);
    let key = ocsf_partition_key(3002, &long);
    assert!(key.starts_with("sha256:") && key.len() <= MAX_PARTITION_KEY_BYTES);
    assert_eq!(ocsf_partition_key(3002, &long), key);
    assert_eq!(ocsf_partition_key(2004, "00u1"), "2004:00u1");
}

#[test]
fn excluded_events_are_excluded_from_ocsf_too() {
    let system = json!({"id": "0oa-sys", "type": "SystemPrincipal"});
    let raw = event("policy.rule.update", system, json!([])).to_string();
    let excluded = normalizer().normalize_ocsf(&raw, INGESTED).unwrap_err();
    assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
}
