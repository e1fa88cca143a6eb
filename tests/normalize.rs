//! Golden, exclusion, schema and property tests of the normalizer over tests/fixtures/okta.
//! Regenerate the goldens with `UPDATE_GOLDEN=1 cargo test --features testkit --test normalize`
//! and review the diff.
#![cfg(feature = "testkit")]

use std::path::Path;

use okta_ingest::normalize::catalog::Catalog;
use okta_ingest::normalize::event::TotalEvent;
use okta_ingest::normalize::{CatalogPolicy, ExclusionReason, Normalizer};
use okta_ingest::testkit::fixtures::{
    fixtures_normalizer as normalizer, golden_mismatch, okta_fixtures,
};
use okta_ingest::testkit::schema;
use proptest::prelude::*;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

const INGESTED: OffsetDateTime = datetime!(2024-05-01 15:00:00.250 UTC);

/// The normalized event, checked against the schema and the record's keys, or the exclusion.
fn outcome(normalizer: &Normalizer, raw: &str) -> Value {
    match normalizer.normalize(raw, INGESTED) {
        Ok(record) => {
            let value: Value = serde_json::from_slice(&record.json).unwrap();
            schema::assert_valid_total_event(&value);
            assert_eq!(value["event_id"], record.event_id.as_str());
            assert_eq!(record.partition_key, expected_partition_key(&value));
            value
        }
        Err(excluded) => json!({
            "excluded": excluded.reason.as_str(),
            "event_id": excluded.event_id,
            "event_type": excluded.event_type,
        }),
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The documented partition key of a normalized event (docs/schema.md, "Partition key").
fn expected_partition_key(event: &Value) -> String {
    let subject = &event["subject"];
    let key = if event["subject_resolved"] == true {
        subject["id"].as_str().unwrap().to_owned()
    } else {
        match subject["login"].as_str().map(str::trim) {
            Some(login) if !login.is_empty() => format!("unknown:{}", login.to_lowercase()),
            _ => "unknown".to_owned(),
        }
    };
    if key.len() <= 256 {
        key
    } else {
        format!("sha256:{}", sha256_hex(&key))
    }
}

fn fixture(name: &str) -> String {
    okta_fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

#[test]
fn every_fixture_matches_its_reviewed_golden_output() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let mismatches: Vec<String> = okta_fixtures()
        .into_iter()
        .filter_map(|(name, raw)| golden_mismatch("normalized", &name, &outcome(&normalizer, &raw)))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_catalog_type_has_a_fixture_normalized_with_its_classification() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let fixtures = okta_fixtures();
    for entry in Catalog::builtin().entries() {
        let (_, raw) = fixtures
            .iter()
            .find(|(name, _)| name == entry.event_type)
            .unwrap_or_else(|| panic!("no fixture for {}", entry.event_type));
        let event = outcome(&normalizer, raw);
        assert_eq!(event["event_type"], entry.event_type);
        let classification = serde_json::to_value(entry.classification).unwrap();
        assert_eq!(event["classification"], classification);
        assert_eq!(event["groups"], json!(entry.groups));
        assert_eq!(event["subject"]["type"], "User");
    }
}

#[test]
fn excluded_fixtures_give_their_typed_reason() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let cases = [
        (
            "excluded-system-principal-without-user-target",
            ExclusionReason::NoHumanIdentity,
        ),
        ("excluded-null-actor", ExclusionReason::NoHumanIdentity),
        (
            "excluded-policy-lifecycle-update",
            ExclusionReason::NotInCatalog,
        ),
        (
            "excluded-app-lifecycle-activate",
            ExclusionReason::NotInCatalog,
        ),
        ("excluded-missing-uuid", ExclusionReason::Malformed),
    ];
    let fixtures = okta_fixtures();
    for (name, reason) in cases {
        let (_, raw) = fixtures.iter().find(|(n, _)| n == name).unwrap();
        let excluded = normalizer.normalize(raw, INGESTED).unwrap_err();
        assert_eq!(excluded.reason, reason, "{name}");
        assert!(!excluded.detail.is_empty());
    }
}

#[test]
fn all_policy_publishes_admin_actions_outside_the_catalog_as_other() {
    let normalizer = normalizer(CatalogPolicy::All, false);
    let fixtures = okta_fixtures();
    let (_, policy_update) = fixtures
        .iter()
        .find(|(n, _)| n == "excluded-policy-lifecycle-update")
        .unwrap();
    let event = outcome(&normalizer, policy_update);
    assert_eq!(event["classification"], "other");
    assert_eq!(event["signal_class"], Value::Null);
    assert_eq!(event["groups"], json!([]));
    assert_eq!(event["subject"]["login"], "it-admin@acme.example");
    let (_, system) = fixtures
        .iter()
        .find(|(n, _)| n == "excluded-system-principal-without-user-target")
        .unwrap();
    let excluded = normalizer.normalize(system, INGESTED).unwrap_err();
    assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
}

#[test]
fn raw_event_is_embedded_verbatim_when_configured() {
    let normalizer = normalizer(CatalogPolicy::Catalog, true);
    for (name, raw) in okta_fixtures() {
        let event = outcome(&normalizer, &raw);
        if event.get("excluded").is_none() {
            let original: Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(event["raw"], original, "{name}");
        }
    }
}

#[test]
fn output_deserializes_into_the_typed_event() {
    let normalizer = normalizer(CatalogPolicy::Catalog, true);
    let (_, raw) = okta_fixtures()
        .into_iter()
        .find(|(n, _)| n == "user.authentication.auth_via_mfa")
        .unwrap();
    let record = normalizer.normalize(&raw, INGESTED).unwrap();
    let event: TotalEvent = serde_json::from_slice(&record.json).unwrap();
    assert_eq!(
        event.authentication.factor.as_deref(),
        Some("OKTA_VERIFY_PUSH")
    );
    assert_eq!(event.risk.level.as_deref(), Some("MEDIUM"));
    assert_eq!(event.risk.reasons, ["Anomalous Device", "New IP"]);
    assert_eq!(event.device.as_ref().unwrap().managed, Some(true));
    let again = serde_json::to_vec(&event).unwrap();
    assert_eq!(again, record.json[..record.json.len() - 1]);
}

/// The keys of a JSON object in the order they appear in the text.
struct KeyOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

#[test]
fn top_level_fields_come_in_the_documented_schema_order() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/total-event-v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let documented: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    for (name, raw) in okta_fixtures() {
        if let Ok(record) = normalizer.normalize(&raw, INGESTED) {
            let KeyOrder(keys) = serde_json::from_slice(&record.json).unwrap();
            assert_eq!(keys, documented, "{name}");
        }
    }
}

/// JSON whose object keys are mostly LogEvent field names, so values land on typed paths.
fn okta_like_json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "uuid",
        "published",
        "eventType",
        "actor",
        "target",
        "id",
        "type",
        "alternateId",
        "displayName",
        "detailEntry",
        "client",
        "ipAddress",
        "userAgent",
        "rawUserAgent",
        "geographicalContext",
        "geolocation",
        "lat",
        "lon",
        "city",
        "request",
        "ipChain",
        "ip",
        "authenticationContext",
        "authenticationStep",
        "issuer",
        "outcome",
        "result",
        "securityContext",
        "asNumber",
        "isProxy",
        "debugContext",
        "debugData",
        "risk",
        "behaviors",
        "threatSuspected",
        "device",
        "managed",
        "transaction",
        "severity",
        "x",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!("User")),
        Just(json!("2024-05-01T12:00:00Z")),
        Just(json!("user.session.start")),
        Just(json!("{level=HIGH, reasons=a, b}")),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(
                |entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

fn fixture_values() -> Vec<Value> {
    okta_fixtures()
        .iter()
        .map(|(_, raw)| serde_json::from_str(raw).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_and_outputs_are_schema_valid(value in okta_like_json()) {
        let text = value.to_string();
        for policy in [CatalogPolicy::Catalog, CatalogPolicy::All] {
            let _ = outcome(&normalizer(policy, true), &text);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in ".*") {
        let _ = outcome(&normalizer(CatalogPolicy::All, true), &text);
    }

    #[test]
    fn fixtures_with_one_field_replaced_never_panic(
        index in any::<proptest::sample::Index>(),
        path_choice in any::<proptest::sample::Index>(),
        replacement in okta_like_json(),
    ) {
        let fixtures = fixture_values();
        let mut value = index.get(&fixtures).clone();
        // Walk down to a random nested field and replace it.
        let mut cursor = &mut value;
        let mut seed = path_choice.index(usize::MAX);
        while let Some(object) = cursor.as_object_mut().filter(|o| !o.is_empty()) {
            let key = object.keys().nth(seed % object.len()).unwrap().clone();
            seed /= object.len().max(2);
            if seed % 3 == 0 {
                object.insert(key, replacement.clone());
                break;
            }
            cursor = object.get_mut(&key).unwrap();
        }
        let _ = outcome(&normalizer(CatalogPolicy::All, true), &value.to_string());
    }
}

#[test]
fn drifted_field_types_become_null_and_the_event_is_still_published() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let record = normalizer
        .normalize(&fixture("odd-drifted-field-types"), INGESTED)
        .expect("a drifted field must not exclude the event");
    let event: Value = serde_json::from_slice(&record.json).unwrap();
    schema::assert_valid_total_event(&event);
    assert_eq!(event["subject"]["id"], "00u1a2b3c4d5e6f7g8h9");
    for (path, expected) in [
        ("/authentication/step", Value::Null),
        ("/session/external_session_id", Value::Null),
        ("/geo/lat", Value::Null),
        ("/geo/lon", Value::Null),
        ("/geo/city", Value::Null),
        ("/network/asn", Value::Null),
        ("/network/is_proxy", Value::Null),
        ("/display_message", Value::Null),
        ("/geo/country", json!("United States")),
        ("/client/ip", json!("198.51.100.23")),
    ] {
        assert_eq!(event.pointer(path), Some(&expected), "{path}");
    }
}

#[test]
fn every_scalar_field_of_an_unusable_type_keeps_the_event() {
    let normalizer = normalizer(CatalogPolicy::All, false);
    let base: Value = serde_json::from_str(&fixture("user.session.start")).unwrap();
    let scalar_paths = [
        "/authenticationContext/authenticationStep",
        "/authenticationContext/credentialType",
        "/client/geographicalContext/geolocation/lat",
        "/client/geographicalContext/geolocation/lon",
        "/client/userAgent/rawUserAgent",
        "/client/ipAddress",
        "/securityContext/asNumber",
        "/securityContext/isProxy",
        "/outcome/result",
        "/severity",
        "/actor/alternateId",
    ];
    for path in scalar_paths {
        for drifted in [
            json!("n/a"),
            json!({"a": [1, {"b": 2}]}),
            json!([1, "x"]),
            json!(true),
        ] {
            let mut raw = base.clone();
            *raw.pointer_mut(path).unwrap() = drifted.clone();
            let event = outcome(&normalizer, &raw.to_string());
            assert!(
                event.get("excluded").is_none(),
                "{path} = {drifted}: {event}"
            );
        }
    }
}

#[test]
fn failed_sign_in_for_an_unknown_username_is_published_keyed_by_the_typed_name() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let raw = fixture("odd-unknown-username-failed-sign-in");
    let record = normalizer.normalize(&raw, INGESTED).unwrap();
    assert_eq!(record.partition_key, "unknown:bob.smith@acme.example");
    let event = outcome(&normalizer, &raw);
    assert_eq!(event["subject"]["id"], "unknown");
    assert_eq!(event["subject"]["login"], "Bob.Smith@Acme.example");
    assert_eq!(event["subject_resolved"], false);
    assert_eq!(event["outcome"]["result"], "failure");

    let key_for = |login: Value| {
        let mut value: Value = serde_json::from_str(&raw).unwrap();
        value["actor"]["alternateId"] = login;
        normalizer
            .normalize(&value.to_string(), INGESTED)
            .unwrap()
            .partition_key
    };
    assert_eq!(
        key_for(json!("carol@acme.example")),
        "unknown:carol@acme.example"
    );
    assert_eq!(key_for(json!("  ")), "unknown");
    assert_eq!(key_for(Value::Null), "unknown");
}

#[test]
fn resolved_subjects_are_flagged_resolved() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let event = outcome(&normalizer, &fixture("user.session.start"));
    assert_eq!(event["subject_resolved"], true);
}

#[test]
fn partition_keys_over_256_bytes_become_a_deterministic_sha256() {
    let normalizer = normalizer(CatalogPolicy::Catalog, false);
    let mut base: Value = serde_json::from_str(&fixture("user.session.start")).unwrap();
    let key_for = |actor: Value, base: &mut Value| {
        base["actor"] = actor;
        let raw = base.to_string();
        let _ = outcome(&normalizer, &raw);
        normalizer.normalize(&raw, INGESTED).unwrap().partition_key
    };
    let at_limit = "0".repeat(256);
    let key = key_for(json!({"id": at_limit, "type": "User"}), &mut base);
    assert_eq!(key, at_limit);

    // Multi-byte characters: 200 characters but 400 bytes.
    let long_id = "é".repeat(200);
    let key = key_for(json!({"id": long_id, "type": "User"}), &mut base);
    assert_eq!(key, format!("sha256:{}", sha256_hex(&long_id)));
    assert_eq!(key.len(), 7 + 64);
    let again = key_for(json!({"id": long_id, "type": "User"}), &mut base);
    assert_eq!(again, key);

    let long_login = format!("{}@acme.example", "X".repeat(300));
    let key = key_for(
        json!({"id": "unknown", "type": "User", "alternateId": long_login}),
        &mut base,
    );
    let unknown_key = format!("unknown:{}", long_login.to_lowercase());
    assert_eq!(key, format!("sha256:{}", sha256_hex(&unknown_key)));
}

#[test]
fn all_policy_makes_the_user_target_the_subject_of_user_directed_types_outside_the_catalog() {
    let normalizer = normalizer(CatalogPolicy::All, false);
    let admin = json!({"id": "00uadmin", "type": "User", "alternateId": "admin@acme.example"});
    let alice = json!({"id": "00ualice", "type": "User", "alternateId": "alice@acme.example"});
    let group = json!({"id": "00ggroup", "type": "UserGroup", "alternateId": "Engineering"});
    let event_for = |event_type: &str, targets: Value| {
        let raw = json!({"uuid": "u-1", "published": "2024-05-01T12:00:00Z",
            "eventType": event_type, "actor": admin, "target": targets});
        outcome(&normalizer, &raw.to_string())
    };
    for event_type in [
        "user.account.update_profile",
        "user.lifecycle.reactivate",
        "user.mfa.factor.suspend",
        "application.user_membership.change_username",
        "group.user_membership.rule_add",
    ] {
        let event = event_for(event_type, json!([group, alice]));
        assert_eq!(event["classification"], "other", "{event_type}");
        assert_eq!(event["subject"]["id"], "00ualice", "{event_type}");
        assert_eq!(event["subject_source"], "target", "{event_type}");
        assert_eq!(event["actor"]["id"], "00uadmin", "{event_type}");
        // Without a User target the admin is still the subject rather than the event being lost.
        let event = event_for(event_type, json!([group]));
        assert_eq!(event["subject"]["id"], "00uadmin", "{event_type}");
    }
    for event_type in [
        "policy.lifecycle.update",
        "user.accounts.something",
        "user.session.access_admin_app",
    ] {
        let event = event_for(event_type, json!([alice]));
        assert_eq!(event["subject"]["id"], "00uadmin", "{event_type}");
        assert_eq!(event["subject_source"], "actor", "{event_type}");
    }
}
