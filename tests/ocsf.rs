//! The OCSF output against the OCSF 1.8.0 schema (compiled per class by
//! `okta_ingest::testkit::ocsf_schema`) and against reviewed golden records.
//! Regenerate the goldens with `UPDATE_GOLDEN=1 cargo test --features testkit --test ocsf` and
//! review the diff.
#![cfg(feature = "testkit")]

use std::collections::BTreeSet;
use std::path::Path;

use okta_ingest::normalize::catalog::Catalog;
use okta_ingest::normalize::ocsf::class::OcsfClass;
use okta_ingest::normalize::{CatalogPolicy, ExclusionReason, Normalizer};
use okta_ingest::testkit::fixtures::{fixtures_normalizer, golden_mismatch, okta_fixtures};
use okta_ingest::testkit::ocsf_schema::{assert_valid_ocsf, schema};
use okta_sim::{SimConfig, Simulator};
use proptest::prelude::*;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

const INGESTED: OffsetDateTime = datetime!(2024-05-01 15:00:00.250 UTC);

fn normalizer(policy: CatalogPolicy) -> Normalizer {
    fixtures_normalizer(policy, false)
}

fn fixture(name: &str) -> Value {
    let (_, raw) = okta_fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::from_str(&raw).unwrap()
}

/// The OCSF record of `raw`, validated against its class and checked against its keys;
/// `None` when the normalizer excludes the event.
fn ocsf(normalizer: &Normalizer, raw: &str) -> Option<Value> {
    let record = normalizer.normalize_ocsf(raw, INGESTED).ok()?;
    assert!(
        record.json.ends_with(b"}\n") && record.json.iter().filter(|b| **b == b'\n').count() == 1
    );
    let value: Value = serde_json::from_slice(&record.json).unwrap();
    assert_valid_ocsf(&value);
    assert_eq!(value["metadata"]["uid"], record.event_id.as_str());
    let class_prefix = format!("{}:", value["class_uid"]);
    assert!(
        record.partition_key.starts_with(&class_prefix),
        "{} does not start with the class",
        record.partition_key
    );
    Some(value)
}

fn ocsf_of(policy: CatalogPolicy, event: &Value) -> Value {
    ocsf(&normalizer(policy), &event.to_string()).expect("the event is published")
}

#[test]
fn every_fixture_gives_a_valid_record_matching_its_reviewed_golden() {
    let normalizer = normalizer(CatalogPolicy::Catalog);
    let mut mismatches = Vec::new();
    let mut published = 0;
    for (name, raw) in okta_fixtures() {
        let Some(actual) = ocsf(&normalizer, &raw) else {
            continue;
        };
        published += 1;
        mismatches.extend(golden_mismatch("ocsf", &name, &actual));
    }
    assert!(published >= 37, "only {published} fixtures were published");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_fixture_is_valid_under_the_all_policy_too() {
    let normalizer = normalizer(CatalogPolicy::All);
    let classes: BTreeSet<u64> = okta_fixtures()
        .iter()
        .filter_map(|(_, raw)| ocsf(&normalizer, raw))
        .map(|record| record["class_uid"].as_u64().unwrap())
        .collect();
    let expected: BTreeSet<u64> = OcsfClass::ALL.iter().map(|c| u64::from(c.uid())).collect();
    assert_eq!(classes, expected, "the fixtures reach every class");
}

/// No fixture escapes validation by being excluded: under both policies only the `excluded-*`
/// fixtures are left out, and the OCSF output leaves out exactly what the TOTAL output does.
#[test]
fn only_the_excluded_fixtures_go_unvalidated_and_both_formats_agree() {
    for policy in [CatalogPolicy::Catalog, CatalogPolicy::All] {
        let normalizer = normalizer(policy);
        let fixtures = okta_fixtures();
        assert!(fixtures.len() >= 42, "{} fixtures", fixtures.len());
        for (name, raw) in fixtures {
            let total = normalizer.normalize(&raw, INGESTED).ok();
            let record = ocsf(&normalizer, &raw);
            assert_eq!(
                total.is_some(),
                record.is_some(),
                "{name} under {policy:?}: TOTAL and OCSF disagree on publishing it"
            );
            // Under `all`, a fixture excluded only for being outside the catalog is published.
            let expected_out = name.starts_with("excluded-")
                && !(policy == CatalogPolicy::All
                    && catalog_exclusion(&raw) == Some(ExclusionReason::NotInCatalog));
            assert_eq!(record.is_none(), expected_out, "{name} under {policy:?}");
        }
    }
}

fn catalog_exclusion(raw: &str) -> Option<ExclusionReason> {
    normalizer(CatalogPolicy::Catalog)
        .normalize(raw, INGESTED)
        .err()
        .map(|e| e.reason)
}

/// (event type, shape) of every row of the simulator's kinds.tsv.
fn simulated_kinds() -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("okta-sim/src/kinds.tsv"),
    )
    .unwrap();
    tsv.lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("event_type\t"))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols[0].to_owned(), cols[3].to_owned())
        })
        .collect()
}

/// Every event type the simulator generates, in the shapes its generator varies (failures,
/// foreign and hostile clients, admins acting on users, system principals), gives a valid record
/// under both policies, and the OCSF output publishes exactly the events the TOTAL output does.
#[tokio::test(flavor = "multi_thread")]
async fn every_simulated_kind_gives_valid_records_under_both_policies() {
    let sim = Simulator::start(SimConfig {
        seed: 16,
        initial_events: 3000,
        system_event_ratio: 0.2,
        non_catalog_ratio: 0.3,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let events = sim.events();
    let kinds = simulated_kinds();
    let generated: BTreeSet<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    let all_kinds: BTreeSet<&str> = kinds.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        generated, all_kinds,
        "the sample holds every simulated kind"
    );
    // The simulator's push events name the pushed person only as an AppUser target (no User), so
    // neither format can attribute them to a person; they are checked to be excluded for that.
    const NO_USER_TARGET: &[&str] = &["application.provision.user.push"];
    let human_kinds: BTreeSet<&str> = kinds
        .iter()
        .filter(|(t, shape)| shape != "system" && !NO_USER_TARGET.contains(&t.as_str()))
        .map(|(t, _)| t.as_str())
        .collect();
    let catalog = Catalog::builtin();
    for policy in [CatalogPolicy::Catalog, CatalogPolicy::All] {
        let normalizer = normalizer(policy);
        let mut published = BTreeSet::new();
        for event in &events {
            let raw = event.to_string();
            let total = normalizer.normalize(&raw, INGESTED);
            let record = ocsf(&normalizer, &raw);
            let event_type = event["eventType"].as_str().unwrap();
            if NO_USER_TARGET.contains(&event_type) {
                let reason = total.as_ref().err().map(|e| e.reason);
                assert_eq!(
                    reason,
                    Some(ExclusionReason::NoHumanIdentity),
                    "{event_type}"
                );
            }
            match (&total.ok(), &record) {
                (Some(total), Some(record)) => {
                    assert_eq!(record["metadata"]["uid"], total.event_id.as_str());
                    published.insert(event_type);
                }
                (None, None) => {}
                _ => panic!(
                    "{event_type} under {policy:?}: TOTAL and OCSF disagree on publishing it"
                ),
            }
        }
        let expected: BTreeSet<&str> = match policy {
            CatalogPolicy::Catalog => human_kinds
                .iter()
                .copied()
                .filter(|t| catalog.get(t).is_some())
                .collect(),
            CatalogPolicy::All => human_kinds.clone(),
        };
        let missing: Vec<_> = expected.difference(&published).collect();
        let extra: Vec<_> = published.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "under {policy:?}: not published {missing:?}, published beyond the policy {extra:?}"
        );
    }
}

#[test]
fn catalog_types_land_in_their_documented_class_and_activity() {
    let cases = [
        ("user.authentication.sso", 3002, 1, "Logon"),
        ("user.session.end", 3002, 2, "Logoff"),
        ("user.authentication.auth_via_mfa", 3002, 1, "Logon"),
        ("user.lifecycle.create", 3001, 1, "Create"),
        ("user.account.lock", 3001, 9, "Lock"),
        ("user.mfa.factor.activate", 3001, 10, "MFA Factor Enable"),
        ("group.user_membership.add", 3006, 3, "Add User"),
        ("user.account.privilege.grant", 3005, 1, "Assign Privileges"),
        (
            "app.user_management.assign_user_to_app",
            3005,
            1,
            "Assign Privileges",
        ),
        ("security.threat.detected", 2004, 1, "Create"),
    ];
    for (name, class_uid, activity_id, activity_name) in cases {
        let record = ocsf_of(CatalogPolicy::Catalog, &fixture(name));
        assert_eq!(record["class_uid"], class_uid, "{name}");
        assert_eq!(record["activity_id"], activity_id, "{name}");
        assert_eq!(record["activity_name"], activity_name, "{name}");
        assert_eq!(record["type_uid"], class_uid * 100 + activity_id, "{name}");
        assert_eq!(record["metadata"]["event_code"], name);
        assert_eq!(record["metadata"]["version"], "1.8.0");
    }
}

#[test]
fn sign_in_carries_user_endpoint_session_protocol_and_risk() {
    let record = ocsf_of(
        CatalogPolicy::Catalog,
        &fixture("user.authentication.auth_via_mfa"),
    );
    assert_eq!(record["is_mfa"], true);
    assert!(record["user"]["uid"].is_string());
    assert!(record["src_endpoint"]["ip"].is_string());
    assert!(record["http_request"]["user_agent"].is_string());
    assert!(record["auth_factors"][0]["factor_type_id"].is_u64());
    assert!(record["session"]["uid"].is_string());
    let published = record["metadata"]["original_time"].as_str().unwrap();
    let time =
        OffsetDateTime::parse(published, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        record["time"],
        (time.unix_timestamp_nanos() / 1_000_000) as i64
    );
    assert_eq!(
        record["metadata"]["logged_time"],
        (INGESTED.unix_timestamp_nanos() / 1_000_000) as i64
    );
}

#[test]
fn threat_detection_is_a_finding_with_risk_action_and_evidence() {
    let record = ocsf_of(CatalogPolicy::Catalog, &fixture("security.threat.detected"));
    assert_eq!(record["risk_level_id"], 3);
    assert_eq!(record["risk_details"], "Password Spray, Known Threat Actor");
    assert_eq!(record["action_id"], 2);
    assert_eq!(record["disposition_id"], 2);
    assert_eq!(record["finding_info"]["title"], "Password Spray");
    assert!(record["evidences"][0]["src_endpoint"]["ip"].is_string());
    assert!(record["evidences"][0]["user"]["uid"].is_string());
    assert!(record.get("user").is_none());
}

#[test]
fn types_outside_the_catalog_fall_back_by_family_then_to_api_activity() {
    let mut event = fixture("user.account.privilege.grant");
    event["eventType"] = json!("user.account.update_profile");
    let record = ocsf_of(CatalogPolicy::All, &event);
    assert_eq!(
        (record["class_uid"].as_u64(), record["activity_id"].as_u64()),
        (Some(3001), Some(99))
    );
    assert_eq!(record["activity_name"], "user.account.update_profile");
    event["eventType"] = json!("policy.rule.update");
    let record = ocsf_of(CatalogPolicy::All, &event);
    assert_eq!(
        (record["class_uid"].as_u64(), record["activity_id"].as_u64()),
        (Some(6003), Some(3))
    );
    assert_eq!(record["api"]["operation"], "policy.rule.update");
    assert!(
        record["unmapped"]["user"]["uid"].is_string(),
        "the subject is kept"
    );
}

#[test]
fn a_class_whose_required_attribute_has_no_source_falls_back_to_api_activity() {
    let mut grant = fixture("user.account.privilege.grant");
    grant["target"] = json!([grant["target"][0]]);
    let record = ocsf_of(CatalogPolicy::Catalog, &grant);
    assert_eq!(
        record["class_uid"], 6003,
        "no role target: no privileges to name"
    );
    let mut add = fixture("group.user_membership.add");
    let users: Vec<Value> = add["target"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "User")
        .cloned()
        .collect();
    add["target"] = Value::Array(users);
    assert_eq!(ocsf_of(CatalogPolicy::Catalog, &add)["class_uid"], 6003);
}

#[test]
fn fallback_without_a_source_endpoint_is_a_base_event() {
    let mut event = fixture("user.account.privilege.grant");
    event["eventType"] = json!("policy.rule.update");
    event["client"] = Value::Null;
    event["securityContext"] = Value::Null;
    let record = ocsf_of(CatalogPolicy::All, &event);
    assert_eq!(record["class_uid"], 0);
    assert_eq!(record["activity_id"], 99);
    assert!(record["unmapped"]["user"]["uid"].is_string());
}

#[test]
fn undecodable_ip_and_country_names_stay_out_of_typed_attributes() {
    let mut event = fixture("user.session.start");
    event["client"]["ipAddress"] = json!("not-an-ip");
    let record = ocsf_of(CatalogPolicy::Catalog, &event);
    assert_eq!(record["unmapped"]["client_ip"], "not-an-ip");
    assert!(record["src_endpoint"].get("ip").is_none());
    let location = &record["src_endpoint"]["location"];
    assert!(location.get("country").is_none(), "{location}");
    event["client"]["geographicalContext"]["country"] = json!("us");
    let record = ocsf_of(CatalogPolicy::Catalog, &event);
    assert_eq!(record["src_endpoint"]["location"]["country"], "US");
}

#[test]
fn partition_key_is_the_class_then_the_subject_key() {
    let normalizer = normalizer(CatalogPolicy::Catalog);
    let raw = fixture("user.account.privilege.grant").to_string();
    let total = normalizer.normalize(&raw, INGESTED).unwrap();
    let ocsf = normalizer.normalize_ocsf(&raw, INGESTED).unwrap();
    assert_eq!(ocsf.partition_key, format!("3005:{}", total.partition_key));
    assert_eq!(ocsf.event_id, total.event_id);
    assert_eq!(ocsf.published, total.published);
    // An unresolved login long enough to need hashing keeps its class in front.
    let mut event = fixture("odd-unknown-username-failed-sign-in");
    event["actor"]["alternateId"] = json!(format!("{}@acme.example", "x".repeat(300)));
    let record = normalizer
        .normalize_ocsf(&event.to_string(), INGESTED)
        .unwrap();
    assert!(
        record.partition_key.starts_with("3002:sha256:") && record.partition_key.len() <= 256,
        "{}",
        record.partition_key
    );
}

#[test]
fn the_compiled_schemas_cover_the_emitted_classes() {
    let classes = schema().classes();
    for class in OcsfClass::ALL {
        let (_, name) = classes
            .iter()
            .find(|(uid, _)| *uid == u64::from(class.uid()))
            .unwrap_or_else(|| panic!("no class {}", class.uid()));
        assert_eq!(
            name.replace('_', " "),
            class
                .name()
                .to_lowercase()
                .replace("user access management", "user access")
        );
    }
    let compiled = schema().class_schema(3002, &BTreeSet::new());
    let defs = compiled["$defs"].as_object().unwrap();
    assert!(defs.contains_key("user") && defs.contains_key("network_endpoint"));
    assert!(
        defs.len() < 150,
        "only the objects the class reaches: {}",
        defs.len()
    );
}

type Spoiler = fn(&mut Value);

/// A valid record and a list of ways to spoil it, each of which validation must catch.
#[test]
fn validation_refuses_records_that_break_the_schema() {
    let valid = ocsf_of(
        CatalogPolicy::Catalog,
        &fixture("user.authentication.auth_via_mfa"),
    );
    assert!(schema().violations(&valid).is_empty());
    let spoilers: Vec<(&str, Spoiler)> = vec![
        ("required user missing", |r| {
            drop(r.as_object_mut().unwrap().remove("user"))
        }),
        ("required time missing", |r| {
            drop(r.as_object_mut().unwrap().remove("time"))
        }),
        ("activity outside the enum", |r| {
            r["activity_id"] = json!(42);
            r["type_uid"] = json!(300242);
        }),
        ("type_uid not class*100+activity", |r| {
            r["type_uid"] = json!(300202)
        }),
        ("class_uid of another class", |r| {
            r["class_uid"] = json!(3001)
        }),
        ("activity name not its caption", |r| {
            r["activity_name"] = json!("Logoff")
        }),
        ("invented top-level attribute", |r| {
            r["okta_zone"] = json!("x")
        }),
        ("invented nested attribute", |r| {
            r["user"]["login"] = json!("x")
        }),
        ("time as a string", |r| {
            r["time"] = json!("2024-05-01T12:00:00Z")
        }),
        ("ip that is no ip", |r| {
            r["src_endpoint"]["ip"] = json!("999.1.1.1.1")
        }),
        ("severity id outside the enum", |r| {
            r["severity_id"] = json!(7)
        }),
        ("profile attribute without its profile", |r| {
            r["metadata"].as_object_mut().unwrap().remove("profiles");
            r["risk_level_id"] = json!(1);
            r["risk_level"] = json!("Low");
        }),
        ("service and dst_endpoint both missing", |r| {
            drop(r.as_object_mut().unwrap().remove("service"))
        }),
        ("metadata without product", |r| {
            drop(r["metadata"].as_object_mut().unwrap().remove("product"))
        }),
        ("unknown class", |r| r["class_uid"] = json!(3999)),
        ("nested enum value outside the enum", |r| {
            r["auth_factors"][0]["factor_type_id"] = json!(42)
        }),
        ("nested required attribute missing", |r| {
            drop(
                r["auth_factors"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("factor_type_id"),
            )
        }),
    ];
    for (what, spoil) in spoilers {
        let mut record = valid.clone();
        spoil(&mut record);
        assert!(
            !schema().violations(&record).is_empty(),
            "validation accepted: {what}"
        );
    }
    // Another class's own requirements: a finding without its finding_info.
    let mut finding = ocsf_of(CatalogPolicy::Catalog, &fixture("security.threat.detected"));
    assert!(schema().violations(&finding).is_empty());
    finding.as_object_mut().unwrap().remove("finding_info");
    assert!(
        !schema().violations(&finding).is_empty(),
        "validation accepted a finding without finding_info"
    );
    let mut free = valid.clone();
    free["unmapped"]["anything"] = json!({ "nested": [1, "two"] });
    assert!(
        schema().violations(&free).is_empty(),
        "unmapped is free-form"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of present, null and oddly typed sections still yields a valid record.
    #[test]
    fn drifted_events_still_give_valid_records(
        name in prop::sample::select(vec![
            "user.authentication.sso", "user.session.start", "user.account.lock",
            "group.user_membership.add", "user.account.privilege.grant",
            "security.threat.detected", "user.mfa.factor.activate", "user.lifecycle.create",
        ]),
        drops in prop::collection::vec(prop::sample::select(vec![
            "client", "securityContext", "authenticationContext", "debugContext", "outcome",
            "severity", "displayMessage", "transaction", "request", "device",
        ]), 0..6),
        odd_ip in prop::option::of("[a-z0-9:.]{0,20}"),
        event_type in prop::option::of("[a-z]{1,8}\\.[a-z_]{1,12}"),
    ) {
        let mut event = fixture(name);
        for key in drops {
            event[key] = Value::Null;
        }
        if let (Some(ip), true) = (odd_ip, event["client"].is_object()) {
            event["client"]["ipAddress"] = json!(ip);
        }
        if let Some(event_type) = event_type {
            event["eventType"] = json!(event_type);
        }
        if let Some(record) = ocsf(&normalizer(CatalogPolicy::All), &event.to_string()) {
            prop_assert!(record["class_uid"].is_u64());
        }
    }
}
