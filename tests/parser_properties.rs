//! Property tests for the parsers that read outside input through the public API: the
//! connector configuration (a secret anyone with write access to it controls), org URLs,
//! invocation payloads and the Lambda environment. Each one answers `Ok` or its own error,
//! never panics, and refusals never echo secret values.

use std::collections::HashMap;

use okta_ingest::config::{ConnectorConfig, ValidationOptions};
use okta_ingest::invocation::{ConnectorId, Invocation};
use okta_ingest::okta::{Loopback, OrgUrl};
use okta_ingest::settings::Settings;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Marks secret values so a leak can be recognised in any message.
const MARK: &str = "LEAKCHECK";

const CONFIG_KEYS: &[&str] = &[
    "org_url",
    "auth",
    "type",
    "token",
    "client_id",
    "private_key",
    "scopes",
    "dpop",
    "kty",
    "crv",
    "alg",
    "kid",
    "n",
    "e",
    "d",
    "p",
    "q",
    "dp",
    "dq",
    "qi",
    "x",
    "y",
    "event_policy",
    "include_raw",
    "backfill_on_setup",
];

/// Members whose values are secret: never to be quoted back.
const SECRET_KEYS: &[&str] = &["token", "private_key", "d", "p", "q", "dp", "dq", "qi"];

fn secret_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{8,24}".prop_map(|s| format!("{MARK}{s}"))
}

fn plain_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "ssws",
            "oauth2",
            "RSA",
            "EC",
            "P-256",
            "RS256",
            "ES256",
            "AQAB",
            "https://acme.okta.com",
            "http://127.0.0.1:8080",
            "catalog",
            "all",
            "okta.logs.read",
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        ])
        .prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
    ]
}

/// Configuration-shaped JSON: known member names, nested objects and arrays, and secret
/// markers under the secret member names only.
fn config_value() -> impl Strategy<Value = Value> {
    plain_value().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop::sample::select(CONFIG_KEYS),
                    inner,
                    secret_text(),
                    any::<bool>()
                ),
                0..6
            )
            .prop_map(|members| {
                let mut object = Map::new();
                for (key, value, secret, use_secret) in members {
                    let value = if SECRET_KEYS.contains(&key) && use_secret {
                        Value::from(secret)
                    } else {
                        value
                    };
                    object.insert(key.to_string(), value);
                }
                Value::Object(object)
            }),
        ]
    })
}

/// A document that gets past the outer checks, so the secret members are actually read.
fn nearly_valid_config() -> impl Strategy<Value = Value> {
    let key_member = prop_oneof![
        plain_value(),
        secret_text().prop_map(Value::from),
        secret_text().prop_map(|s| Value::from(format!(
            "-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----\n"
        ))),
    ];
    let jwk = (
        prop::sample::select(vec!["RSA", "EC", "oct"]),
        prop::collection::vec(
            (
                prop::sample::select(CONFIG_KEYS),
                key_member.clone(),
                plain_value(),
            ),
            0..6,
        ),
        secret_text(),
    )
        .prop_map(|(kty, members, d)| -> Value {
            let mut object = Map::new();
            object.insert("kty".into(), Value::from(kty));
            object.insert("d".into(), Value::from(d));
            // Secret values only under secret member names: others may be quoted back.
            for (key, secret, plain) in members {
                let value = if SECRET_KEYS.contains(&key) {
                    secret
                } else {
                    plain
                };
                object.insert(key.to_string(), value);
            }
            Value::Object(object)
        })
        .boxed();
    let private_key = prop_oneof![
        key_member,
        jwk.clone(),
        prop::collection::vec(jwk, 0..3).prop_map(Value::from),
    ];
    (
        prop::sample::select(vec!["https://acme.okta.com", "http://127.0.0.1:9", "https://acme"]),
        prop::sample::select(vec!["ssws", "oauth2", "basic"]),
        secret_text(),
        private_key,
        prop::collection::vec((prop::sample::select(CONFIG_KEYS), plain_value()), 0..3),
    )
        .prop_map(|(org_url, kind, token, private_key, extra)| {
            let mut auth = json!({"type": kind, "token": token, "client_id": "0oa1", "private_key": private_key});
            for (key, value) in extra {
                if !SECRET_KEYS.contains(&key) {
                    auth[key] = value;
                }
            }
            json!({"org_url": org_url, "auth": auth})
        })
}

fn assert_no_mark(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.contains(MARK), "secret value echoed: {}", text);
    Ok(())
}

fn options() -> impl Strategy<Value = ValidationOptions> {
    any::<bool>().prop_map(|allow_insecure_loopback| ValidationOptions {
        allow_insecure_loopback,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_a_config_or_a_config_error(text in "\\PC{0,200}", opts in options()) {
        match ConnectorConfig::from_json(&text, opts) {
            Ok(config) => assert_no_mark(&format!("{config:?} {config}"))?,
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn config_shaped_documents_never_echo_secret_values(document in config_value(), opts in options()) {
        match ConnectorConfig::from_json(&document.to_string(), opts) {
            Ok(config) => assert_no_mark(&format!("{config:?} {config}"))?,
            Err(err) => assert_no_mark(&format!("{err} {err:?}"))?,
        }
    }

    #[test]
    fn nearly_valid_documents_never_echo_secret_values(document in nearly_valid_config(), opts in options()) {
        match ConnectorConfig::from_json(&document.to_string(), opts) {
            Ok(config) => assert_no_mark(&format!("{config:?} {config}"))?,
            Err(err) => assert_no_mark(&format!("{err} {err:?}"))?,
        }
    }

    #[test]
    fn truncated_documents_never_echo_the_token(token in secret_text(), cut in 0usize..200) {
        let text = json!({"org_url": "https://acme.okta.com",
            "auth": {"type": "ssws", "token": token}, "include_raw": false}).to_string();
        let cut = cut.min(text.len());
        if let Err(err) = ConnectorConfig::from_json(&text[..cut], ValidationOptions::default()) {
            assert_no_mark(&format!("{err} {err:?}"))?;
        }
    }

    #[test]
    fn accepted_org_urls_are_https_domains_without_extras(text in "(https?|ftp)://[a-z0-9.:@/?#\\[\\]-]{0,30}") {
        if let Ok(org) = OrgUrl::parse(&text, Loopback::Refuse) {
            let url = org.as_url();
            prop_assert_eq!(url.scheme(), "https");
            prop_assert!(matches!(url.host(), Some(url::Host::Domain(d)) if d.contains('.')));
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert!(url.query().is_none() && url.fragment().is_none());
            prop_assert!(matches!(url.path(), "" | "/"));
        }
    }

    #[test]
    fn connector_ids_accept_only_plain_tokens(text in "\\PC{0,80}") {
        match ConnectorId::parse(&text) {
            Ok(id) => {
                prop_assert!(!id.as_str().is_empty() && id.as_str().len() <= 64);
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
            Err(err) => prop_assert!(err.to_string().len() < 400, "bounded message"),
        }
    }

    #[test]
    fn arbitrary_payloads_are_an_invocation_or_an_error(payload in invocation_value(), default in proptest::option::of("[a-z]{1,8}")) {
        if let Ok(invocation) = Invocation::parse(&payload, default.as_deref()) {
            prop_assert!(ConnectorId::parse(invocation.connector_id.as_str()).is_ok());
        }
    }

    #[test]
    fn arbitrary_environments_are_settings_or_name_the_bad_variable(
        vars in prop::collection::hash_map(prop::sample::select(ENV_NAMES), "[ -~]{0,12}", 0..8)
    ) {
        let vars: HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        match Settings::from_vars(&vars) {
            Ok(settings) => {
                prop_assert!(settings.secret_id_template.contains("{connector_id}"), "template keeps its placeholder");
                prop_assert!((1..=1000).contains(&settings.run.drain.page_limit));
                prop_assert!(settings.run.okta.rate_share > 0.0 && settings.run.okta.rate_share <= 1.0);
            }
            Err(err) => prop_assert!(ENV_NAMES.contains(&err.name), "{}", err),
        }
    }
}

const ENV_NAMES: &[&str] = &[
    "CURSOR_TABLE",
    "EVENT_STREAM",
    "SECRET_ID_TEMPLATE",
    "DEFAULT_CONNECTOR_ID",
    "PAGE_LIMIT",
    "LOOKBACK_MINUTES",
    "SAFETY_MARGIN_SECONDS",
    "LOCAL_BUDGET_SECONDS",
    "PAUSE_AFTER_FAILURES",
    "RATE_SHARE",
    "SECRET_CACHE_SECONDS",
    "OKTA_ALLOW_INSECURE_LOOPBACK",
];

/// Payload-shaped JSON: the invocation members with plausible and hostile values.
fn invocation_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "poll",
            "test_connection",
            "backfill",
            "disable",
            "resume",
            "acme",
            "../other",
            "Scheduled Event",
            "aws.events",
            "2024-05-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ])
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    let keys = vec![
        "connector_id",
        "action",
        "reason",
        "days",
        "window",
        "start",
        "end",
        "detail-type",
        "source",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop::collection::btree_map(prop::sample::select(keys.clone()), inner, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    })
}
