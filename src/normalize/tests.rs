use super::*;
use crate::sink::limits::MAX_PARTITION_KEY_BYTES;
use event::SubjectSource;
use sha2::{Digest, Sha256};
use time::macros::datetime;

const INGESTED: OffsetDateTime = datetime!(2024-05-01 12:00:30.5 UTC);

fn normalizer(policy: CatalogPolicy) -> Normalizer {
    Normalizer::new(NormalizerConfig {
        org: "acme.okta.com".to_owned(),
        connector_id: "conn-1".to_owned(),
        policy,
        include_raw: false,
    })
}

fn raw(event_type: &str, actor: &str, targets: &str) -> String {
    format!(
        r#"{{"uuid":"u-1","published":"2024-05-01T12:00:00.1Z","eventType":"{event_type}",
            "actor":{actor},"target":{targets}}}"#
    )
}

const ALICE: &str = r#"{"id":"00u-alice","type":"User","alternateId":"alice@acme.com"}"#;
const ADMIN: &str = r#"{"id":"00u-admin","type":"User","alternateId":"admin@acme.com"}"#;
const SYSTEM: &str = r#"{"id":"0oa-system","type":"SystemPrincipal"}"#;
const APP: &str = r#"{"id":"0oa-app","type":"AppInstance","alternateId":"Slack"}"#;

#[test]
fn user_actor_is_the_subject_of_their_own_sign_in() {
    let raw = raw("user.authentication.sso", ALICE, &format!("[{APP}]"));
    let n = normalizer(CatalogPolicy::Catalog);
    let (event, _) = n.to_event(&raw, INGESTED).unwrap();
    assert_eq!(event.subject.id.as_deref(), Some("00u-alice"));
    assert_eq!(event.subject_source, SubjectSource::Actor);
    assert_eq!(event.application.unwrap().name.as_deref(), Some("Slack"));
}

#[test]
fn admin_granting_privilege_is_actor_and_the_grantee_is_subject() {
    let raw = raw("user.account.privilege.grant", ADMIN, &format!("[{ALICE}]"));
    let record = normalizer(CatalogPolicy::Catalog)
        .normalize(&raw, INGESTED)
        .unwrap();
    assert_eq!(record.partition_key, "00u-alice");
    let n = normalizer(CatalogPolicy::Catalog);
    let (event, _) = n.to_event(&raw, INGESTED).unwrap();
    assert_eq!(event.actor.id.as_deref(), Some("00u-admin"));
    assert_eq!(event.subject.login.as_deref(), Some("alice@acme.com"));
    assert_eq!(event.subject_source, SubjectSource::Target);
}

#[test]
fn target_rule_falls_back_to_a_user_actor_without_user_targets() {
    let raw = raw("user.lifecycle.create", ADMIN, "null");
    let record = normalizer(CatalogPolicy::Catalog)
        .normalize(&raw, INGESTED)
        .unwrap();
    assert_eq!(record.partition_key, "00u-admin");
}

#[test]
fn system_principal_actor_resolves_to_the_first_user_target() {
    let raw = raw(
        "user.session.clear",
        SYSTEM,
        &format!("[{APP},{ALICE},{ADMIN}]"),
    );
    let record = normalizer(CatalogPolicy::Catalog)
        .normalize(&raw, INGESTED)
        .unwrap();
    assert_eq!(record.partition_key, "00u-alice");
}

#[test]
fn event_with_no_user_anywhere_is_excluded_as_no_human_identity() {
    let blocked = raw("security.request.blocked", SYSTEM, &format!("[{APP}]"));
    let excluded = normalizer(CatalogPolicy::Catalog)
        .normalize(&blocked, INGESTED)
        .unwrap_err();
    assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
    assert_eq!(excluded.event_id.as_deref(), Some("u-1"));
    let null_actor = raw("user.session.start", "null", "null");
    let excluded = normalizer(CatalogPolicy::Catalog)
        .normalize(&null_actor, INGESTED)
        .unwrap_err();
    assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
}

#[test]
fn type_outside_the_catalog_depends_on_the_policy() {
    let raw = raw("policy.lifecycle.update", ADMIN, "[]");
    let excluded = normalizer(CatalogPolicy::Catalog)
        .normalize(&raw, INGESTED)
        .unwrap_err();
    assert_eq!(excluded.reason, ExclusionReason::NotInCatalog);
    assert_eq!(
        excluded.event_type.as_deref(),
        Some("policy.lifecycle.update")
    );
    let all = normalizer(CatalogPolicy::All);
    let (event, _) = all.to_event(&raw, INGESTED).unwrap();
    assert_eq!(event.classification, Classification::Other);
    assert_eq!(event.signal_class, None);
    assert!(event.groups.is_empty());
    assert_eq!(event.subject.id.as_deref(), Some("00u-admin"));
}

#[test]
fn missing_identity_fields_or_bad_published_are_malformed() {
    let n = normalizer(CatalogPolicy::Catalog);
    for raw in [
        r#"{"published":"2024-05-01T12:00:00Z","eventType":"user.session.start"}"#,
        r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"  "}"#,
        r#"{"uuid":"u","eventType":"user.session.start"}"#,
        r#"{"uuid":"u","published":"last tuesday","eventType":"user.session.start"}"#,
        r#"[1,2]"#,
        r#"{"uuid":"u""#,
    ] {
        let excluded = n.normalize(raw, INGESTED).unwrap_err();
        assert_eq!(excluded.reason, ExclusionReason::Malformed, "{raw}");
    }
}

#[test]
fn record_is_one_json_line_with_utc_millisecond_times() {
    let raw = raw("user.session.start", ALICE, "[]");
    let record = normalizer(CatalogPolicy::Catalog)
        .normalize(&raw, INGESTED)
        .unwrap();
    assert_eq!(record.event_id, "u-1");
    assert_eq!(record.published, datetime!(2024-05-01 12:00:00.1 UTC));
    let text = std::str::from_utf8(&record.json).unwrap();
    assert!(text.starts_with(r#"{"schema_version":"1","event_id":"u-1","#));
    assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
    assert!(text.contains(r#""published":"2024-05-01T12:00:00.100Z""#));
    assert!(text.contains(r#""ingested_at":"2024-05-01T12:00:30.500Z""#));
    assert!(text.contains(r#""raw":null"#));
}

#[test]
fn normalize_into_appends_one_line_per_event_to_the_buffer() {
    let n = normalizer(CatalogPolicy::Catalog);
    let mut out = Vec::new();
    let first = raw("user.session.start", ALICE, "[]");
    let second = raw("user.account.privilege.grant", ADMIN, &format!("[{ALICE}]"));
    let (id, key, _) = n.normalize_into(&first, INGESTED, &mut out).unwrap();
    assert_eq!((id.as_str(), key.as_str()), ("u-1", "00u-alice"));
    n.normalize_into(&second, INGESTED, &mut out).unwrap();
    let blocked = raw("security.request.blocked", SYSTEM, "[]");
    assert!(n.normalize_into(&blocked, INGESTED, &mut out).is_err());
    let lines: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["actor"]["id"], "00u-admin");
}

#[test]
fn raw_event_is_embedded_only_when_configured() {
    let raw = raw("user.session.start", ALICE, "[]");
    let mut config = normalizer(CatalogPolicy::Catalog).config;
    config.include_raw = true;
    let record = Normalizer::new(config).normalize(&raw, INGESTED).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
    assert_eq!(value["raw"]["actor"]["id"], "00u-alice");
}

#[test]
fn raw_copy_that_would_overflow_a_stream_record_is_left_out() {
    let event = raw("user.session.start", ALICE, "[]");
    // A field the normalized event does not carry, large enough to overflow the record.
    let huge = format!(
        r#"{{"padding":"{}",{}"#,
        "x".repeat(1024 * 1024),
        &event[1..]
    );
    let mut config = normalizer(CatalogPolicy::Catalog).config;
    config.include_raw = true;
    let record = Normalizer::new(config).normalize(&huge, INGESTED).unwrap();
    assert!(
        record.json.len() < MAX_RECORD_DATA_BYTES,
        "{}",
        record.json.len()
    );
    let value: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
    assert_eq!(value["raw"], serde_json::Value::Null);
    assert_eq!(
        value["actor"]["id"], "00u-alice",
        "the normalized fields are kept"
    );
}

#[test]
fn unparsable_risk_is_kept_raw_and_parsed_behaviors_are_a_map() {
    let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.session.start",
        "actor":{"id":"00u1","type":"User"},
        "debugContext":{"debugData":{"risk":"HIGH!","behaviors":"{New IP=POSITIVE}","threatSuspected":"false"}}}"#;
    let n = normalizer(CatalogPolicy::Catalog);
    let (event, _) = n.to_event(raw, INGESTED).unwrap();
    assert_eq!(event.risk.unparsed_risk.as_deref(), Some("HIGH!"));
    assert_eq!(event.risk.level, None);
    assert_eq!(event.risk.unparsed_behaviors, None);
    let behaviors = event.risk.behaviors.unwrap();
    assert_eq!(behaviors["New IP"], debug_data::BehaviorSignal::Positive);
    assert_eq!(event.risk.threat_suspected, Some(false));
}

#[test]
fn mfa_event_without_debug_factor_takes_the_credential_type() {
    let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.authentication.auth_via_mfa",
        "actor":{"id":"00u1","type":"User"},"authenticationContext":{"credentialType":"OTP"}}"#;
    let n = normalizer(CatalogPolicy::Catalog);
    let (event, _) = n.to_event(raw, INGESTED).unwrap();
    assert_eq!(event.authentication.factor.as_deref(), Some("OTP"));
}

#[test]
fn drifted_scalar_types_are_null_and_the_event_is_kept() {
    let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.session.start",
        "actor":{"id":"00u1","type":"User","alternateId":{"login":"x"}},
        "authenticationContext":{"authenticationStep":"n/a"},
        "client":{"ipAddress":"198.51.100.1","geographicalContext":{"geolocation":{"lat":"unknown","lon":[]}}}}"#;
    let n = normalizer(CatalogPolicy::Catalog);
    let (event, _) = n.to_event(raw, INGESTED).unwrap();
    assert_eq!(event.subject.id.as_deref(), Some("00u1"));
    assert_eq!(event.subject.login, None);
    assert_eq!(event.authentication.step, None);
    assert_eq!((event.geo.lat, event.geo.lon), (None, None));
    assert_eq!(event.client.ip.as_deref(), Some("198.51.100.1"));
}

#[test]
fn unresolved_user_is_published_and_keyed_by_the_lowercased_typed_name() {
    const UNKNOWN: &str =
        r#"{"id":"unknown","type":"User","alternateId":" Bob@Acme.com ","displayName":"unknown"}"#;
    let raw = raw("user.session.start", UNKNOWN, "[]");
    let n = normalizer(CatalogPolicy::Catalog);
    let record = n.normalize(&raw, INGESTED).unwrap();
    assert_eq!(record.partition_key, "unknown:bob@acme.com");
    let (event, _) = n.to_event(&raw, INGESTED).unwrap();
    assert!(!event.subject_resolved);
    assert_eq!(event.subject.id.as_deref(), Some("unknown"));
    let nameless = raw_nameless();
    assert_eq!(
        n.normalize(&nameless, INGESTED).unwrap().partition_key,
        "unknown"
    );
    let alice = raw_alice();
    let (resolved, _) = n.to_event(&alice, INGESTED).unwrap();
    assert!(resolved.subject_resolved);
}

fn raw_nameless() -> String {
    raw(
        "user.session.start",
        r#"{"id":"UNKNOWN","type":"User"}"#,
        "[]",
    )
}

fn raw_alice() -> String {
    raw("user.session.start", ALICE, "[]")
}

#[test]
fn partition_key_longer_than_256_bytes_is_its_sha256() {
    let party = |id: String| event::Party {
        id: Some(Cow::Owned(id)),
        kind: Some(Cow::Borrowed("User")),
        login: None,
        display_name: None,
    };
    let at_limit = "a".repeat(MAX_PARTITION_KEY_BYTES);
    assert_eq!(partition_key(&party(at_limit.clone()), true), at_limit);
    let over = "a".repeat(MAX_PARTITION_KEY_BYTES + 1);
    let key = partition_key(&party(over.clone()), true);
    let digest: String = Sha256::digest(over.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(key, format!("sha256:{digest}"));
    assert!(key.len() <= MAX_PARTITION_KEY_BYTES);
    assert_eq!(partition_key(&party(over), true), key);
}

#[test]
fn all_policy_attributes_user_directed_types_outside_the_catalog_to_the_user_target() {
    let n = normalizer(CatalogPolicy::All);
    let update = raw("user.account.update_profile", ADMIN, &format!("[{ALICE}]"));
    let (event, _) = n.to_event(&update, INGESTED).unwrap();
    assert_eq!(event.subject.id.as_deref(), Some("00u-alice"));
    assert_eq!(event.subject_source, SubjectSource::Target);
    assert_eq!(event.actor.id.as_deref(), Some("00u-admin"));
    let other = raw("policy.rule.update", ADMIN, &format!("[{ALICE}]"));
    let (event, _) = n.to_event(&other, INGESTED).unwrap();
    assert_eq!(event.subject.id.as_deref(), Some("00u-admin"));
    assert_eq!(event.subject_source, SubjectSource::Actor);
}
