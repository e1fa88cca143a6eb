//! The connector configuration document (stored in Secrets Manager, or a local file).
//!
//! ```json
//! {"org_url": "https://acme.okta.com",
//!  "auth": {"type": "oauth2", "client_id": "0oa...", "private_key": {"kty": "RSA", ...}, "dpop": false},
//!  "event_policy": "catalog", "include_raw": false, "backfill_on_setup": false,
//!  "outputs": ["total"]}
//! ```
//! Validation happens once, at load: every refusal names the field and says what to do.
//! The document is read into the types of the parts it configures (the Okta org and
//! credentials, the normalizer's policy); those parts know nothing of the document.

mod auth;
mod fields;

use std::fmt;

use serde_json::Value;

use crate::normalize::outputs::Outputs;
use crate::normalize::CatalogPolicy;
use crate::okta::auth::keys::KeyError;
use crate::okta::{Credentials, InvalidOrgUrl, Loopback, OrgUrl};
use fields::{field_error, syntax_only, Fields};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept `http://127.0.0.1:PORT` and `http://[::1]:PORT` (tests and the local demo only).
    pub allow_insecure_loopback: bool,
}

impl ValidationOptions {
    fn loopback(self) -> Loopback {
        if self.allow_insecure_loopback {
            Loopback::AllowInsecure
        } else {
            Loopback::Refuse
        }
    }
}

/// Why a configuration document was refused. Never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the connector configuration is not valid JSON ({0}); fix the document syntax")]
    Syntax(String),
    #[error("`{field}`: {problem}")]
    Field { field: String, problem: String },
    #[error("`org_url`: {0}")]
    OrgUrl(#[from] InvalidOrgUrl),
    #[error("`{field}`: {source}")]
    Key {
        field: String,
        #[source]
        source: KeyError,
    },
}

/// Longest tail interval: beyond it, the schedule alone polls as often.
const MAX_TAIL_INTERVAL_SECONDS: u64 = 300;

/// One connector's validated configuration. Debug and Display never show secrets.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub org_url: OrgUrl,
    pub auth: Credentials,
    pub event_policy: CatalogPolicy,
    pub include_raw: bool,
    pub backfill_on_setup: bool,
    /// TOTAL, OCSF or both (docs/ocsf.md).
    pub outputs: Outputs,
    /// Tail mode: a poll that caught up polls again at this interval until its deadline.
    pub tail_interval: Option<std::time::Duration>,
}

impl fmt::Display for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Okta org {} ", self.org_url)?;
        match &self.auth {
            Credentials::Ssws { .. } => f.write_str("with an SSWS API token")?,
            Credentials::OAuth2(oauth) => write!(
                f,
                "with OAuth 2.0 client {} ({} key(s), scopes {}, DPoP {})",
                oauth.client_id,
                oauth.private_keys.len(),
                oauth.scopes.join(" "),
                if oauth.dpop { "on" } else { "off" }
            )?,
        }
        write!(
            f,
            ", event policy {:?}, include_raw {}, backfill_on_setup {}, outputs {:?}",
            self.event_policy, self.include_raw, self.backfill_on_setup, self.outputs
        )
    }
}

impl ConnectorConfig {
    /// Parses and validates a configuration document.
    pub fn from_json(text: &str, opts: ValidationOptions) -> Result<ConnectorConfig, ConfigError> {
        // Parsed as a generic value first so that no serde message ever quotes a secret.
        let document: Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Syntax(syntax_only(&e)))?;
        let mut top = Fields::new(&document, "")?;
        let org_url = OrgUrl::parse(top.required_str("org_url")?, opts.loopback())?;
        let auth = auth::parse_auth(top.required("auth")?)?;
        let event_policy = match top.optional("event_policy") {
            None => CatalogPolicy::default(),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|_| field_error("event_policy", "must be \"catalog\" or \"all\""))?,
        };
        let include_raw = top.optional_bool("include_raw")?.unwrap_or(false);
        let backfill_on_setup = top.optional_bool("backfill_on_setup")?.unwrap_or(false);
        let outputs = match top.optional("outputs") {
            None => Outputs::default(),
            Some(value) => {
                Outputs::from_value(value).map_err(|problem| field_error("outputs", problem))?
            }
        };
        let tail_interval = match top.optional("tail_interval_seconds") {
            None => None,
            Some(value) => match value.as_u64() {
                Some(seconds @ 1..=MAX_TAIL_INTERVAL_SECONDS) => {
                    Some(std::time::Duration::from_secs(seconds))
                }
                _ => {
                    return Err(field_error(
                        "tail_interval_seconds",
                        "must be a whole number of seconds between 1 and 300 (leave it out to poll only on schedule)",
                    ))
                }
            },
        };
        top.refuse_unknown()?;
        Ok(ConnectorConfig {
            org_url,
            auth,
            event_policy,
            include_raw,
            backfill_on_setup,
            outputs,
            tail_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::auth::keys::tests::{ec_jwk, rsa_jwk, test_rsa_key};
    use serde_json::json;

    fn ec_key() -> p256::SecretKey {
        p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng)
    }

    #[test]
    fn full_oauth_document_with_defaults() {
        let key = ec_key();
        let doc = json!({
            "org_url": "https://acme.okta.com",
            "auth": {"type": "oauth2", "client_id": "0oa1", "private_key": ec_jwk(&key, "k1")}
        });
        let config =
            ConnectorConfig::from_json(&doc.to_string(), ValidationOptions::default()).unwrap();
        let Credentials::OAuth2(oauth) = &config.auth else {
            panic!("expected oauth2")
        };
        assert_eq!(oauth.client_id, "0oa1");
        assert_eq!(oauth.scopes, vec!["okta.logs.read".to_owned()]);
        assert!(!oauth.dpop);
        assert_eq!(oauth.private_keys[0].kid(), Some("k1"));
        assert_eq!(config.event_policy, CatalogPolicy::Catalog);
        assert!(!config.include_raw);
        assert!(!config.backfill_on_setup);
        assert_eq!(config.tail_interval, None, "tail mode is off by default");
    }

    #[test]
    fn tail_interval_is_whole_seconds_within_bounds() {
        let doc = |value: Value| {
            json!({"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"},
                   "tail_interval_seconds": value})
            .to_string()
        };
        let config = ConnectorConfig::from_json(&doc(json!(10)), ValidationOptions::default());
        assert_eq!(
            config.unwrap().tail_interval,
            Some(std::time::Duration::from_secs(10))
        );
        for bad in [json!(0), json!(301), json!("10"), json!(2.5)] {
            let err = ConnectorConfig::from_json(&doc(bad.clone()), ValidationOptions::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("`tail_interval_seconds`"), "{bad}: {err}");
        }
    }

    #[test]
    fn key_lists_mix_jwk_and_pem() {
        let pem = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(test_rsa_key(), Default::default())
            .unwrap();
        let doc = json!({
            "org_url": "https://acme.oktapreview.com",
            "auth": {"type": "oauth2", "client_id": "0oa1", "dpop": true, "scopes": ["okta.logs.read"],
                     "private_key": [rsa_jwk(test_rsa_key(), "old"), pem.as_str()]},
            "event_policy": "all", "include_raw": true, "backfill_on_setup": true
        });
        let config =
            ConnectorConfig::from_json(&doc.to_string(), ValidationOptions::default()).unwrap();
        let Credentials::OAuth2(oauth) = &config.auth else {
            panic!("expected oauth2")
        };
        assert_eq!(oauth.private_keys.len(), 2);
        assert_eq!(oauth.private_keys[0].kid(), Some("old"));
        assert_eq!(oauth.private_keys[1].kid(), None);
        assert!(oauth.dpop);
        assert_eq!(config.event_policy, CatalogPolicy::All);
        assert!(config.include_raw && config.backfill_on_setup);
    }

    #[test]
    fn bad_documents_are_refused_naming_the_field() {
        let key = ec_key();
        let good_jwk = ec_jwk(&key, "k1");
        let mut public_jwk = good_jwk.clone();
        public_jwk.as_object_mut().unwrap().remove("d");
        let ssws = |extra: Value| {
            let mut doc = json!({"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"}});
            for (k, v) in extra.as_object().unwrap() {
                doc[k] = v.clone();
            }
            doc.to_string()
        };
        let oauth =
            |auth: Value| json!({"org_url": "https://acme.okta.com", "auth": auth}).to_string();
        let cases: Vec<(String, &str)> = vec![
            ("{not json".into(), "not valid JSON"),
            ("[1]".into(), "`(document)`: must be a JSON object"),
            (
                json!({"auth": {"type": "ssws", "token": "x"}}).to_string(),
                "`org_url`: is missing",
            ),
            (ssws(json!({"org_url": 5})), "`org_url`: must be a string"),
            (
                ssws(json!({"org_url": "http://acme.okta.com"})),
                "`org_url`: must use https",
            ),
            (
                ssws(json!({"org_url": "http://127.0.0.1:8080"})),
                "`org_url`: plain http to a loopback address needs --allow-insecure-loopback",
            ),
            (
                ssws(json!({"colour": "blue"})),
                "`colour`: is not a known setting",
            ),
            (
                ssws(json!({"event_policy": "some"})),
                "`event_policy`: must be \"catalog\" or \"all\"",
            ),
            (
                ssws(json!({"include_raw": "yes"})),
                "`include_raw`: must be true or false",
            ),
            (
                json!({"org_url": "https://acme.okta.com"}).to_string(),
                "`auth`: is missing",
            ),
            (
                oauth(json!({"type": "basic"})),
                "`auth.type`: \"basic\" is not supported",
            ),
            (
                oauth(json!({"type": "ssws", "token": "  "})),
                "`auth.token`: is empty",
            ),
            (
                oauth(json!({"type": "ssws", "token": 12345})),
                "`auth.token`: must be a string",
            ),
            (
                oauth(json!({"type": "ssws", "token": "t", "dpop": true})),
                "`auth.dpop`: is not a known setting",
            ),
            (
                oauth(json!({"type": "oauth2", "private_key": good_jwk})),
                "`auth.client_id`: is missing",
            ),
            (
                oauth(json!({"type": "oauth2", "client_id": "c"})),
                "`auth.private_key`: is missing",
            ),
            (
                oauth(json!({"type": "oauth2", "client_id": "c", "private_key": []})),
                "`auth.private_key`: is an empty list",
            ),
            (
                oauth(json!({"type": "oauth2", "client_id": "c", "private_key": 7})),
                "`auth.private_key`: must be a private JWK object or a PEM string",
            ),
            (
                oauth(
                    json!({"type": "oauth2", "client_id": "c", "private_key": [good_jwk, public_jwk]}),
                ),
                "`auth.private_key[1]`: the JWK has no private part `d`",
            ),
            (
                oauth(
                    json!({"type": "oauth2", "client_id": "c", "private_key": "-----BEGIN PUBLIC KEY-----\nAA\n"}),
                ),
                "`auth.private_key`: this PEM is a public key",
            ),
            (
                oauth(
                    json!({"type": "oauth2", "client_id": "c", "private_key": good_jwk, "scopes": []}),
                ),
                "`auth.scopes`: must be a non-empty list",
            ),
            (
                oauth(
                    json!({"type": "oauth2", "client_id": "c", "private_key": good_jwk, "dpop": 1}),
                ),
                "`auth.dpop`: must be true or false",
            ),
        ];
        for (doc, expected) in cases {
            let err = ConnectorConfig::from_json(&doc, ValidationOptions::default()).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{doc}\n  gave: {err}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn debug_display_and_errors_never_show_secrets() {
        let key = ec_key();
        let jwk = ec_jwk(&key, "k1");
        let d = jwk["d"].as_str().unwrap().to_owned();
        let rsa_pem =
            rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(test_rsa_key(), Default::default())
                .unwrap();
        let pem_body_line = rsa_pem.lines().nth(3).unwrap().to_owned();
        let token = "00aSsWsToKeNvAlUe";
        let oauth_doc = json!({"org_url": "https://acme.okta.com",
            "auth": {"type": "oauth2", "client_id": "0oa1", "private_key": [jwk, rsa_pem.as_str()]}});
        let ssws_doc =
            json!({"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": token}});
        let mut shown = Vec::new();
        for doc in [&oauth_doc, &ssws_doc] {
            let config =
                ConnectorConfig::from_json(&doc.to_string(), ValidationOptions::default()).unwrap();
            shown.push(format!("{config:?}"));
            shown.push(format!("{config}"));
        }
        // Errors raised while secrets are present in the document.
        let mut broken = ssws_doc.clone();
        broken["auth"]["extra"] = json!(token);
        let mut bad_key = oauth_doc.clone();
        bad_key["auth"]["private_key"][0]["x"] = json!("AAAA");
        let mut truncated = ssws_doc.to_string();
        truncated.truncate(truncated.len() - 3);
        for doc in [broken.to_string(), bad_key.to_string(), truncated] {
            let err = ConnectorConfig::from_json(&doc, ValidationOptions::default()).unwrap_err();
            shown.push(format!("{err:?}"));
            shown.push(format!("{err}"));
        }
        for text in shown {
            for secret in [d.as_str(), pem_body_line.as_str(), token] {
                assert!(!text.contains(secret), "secret leaked in: {text}");
            }
        }
    }
}
