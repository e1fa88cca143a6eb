//! The connector configuration document (stored in Secrets Manager, or a local file).
//!
//! ```json
//! {"org_url": "https://acme.okta.com",
//!  "auth": {"type": "oauth2", "client_id": "0oa...", "private_key": {"kty": "RSA", ...}, "dpop": false},
//!  "event_policy": "catalog", "include_raw": false, "backfill_on_setup": false}
//! ```
//! Validation happens once, at load: every refusal names the field and says what to do.

use std::fmt;

use serde_json::{Map, Value};
use url::{Host, Url};

use crate::normalize::CatalogPolicy;
use crate::okta::auth::keys::{KeyError, SigningKey};
use crate::secrets::SecretString;

/// The scope the connector needs; nothing broader.
pub const DEFAULT_SCOPE: &str = "okta.logs.read";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept `http://127.0.0.1:PORT` and `http://[::1]:PORT` (tests and the local demo only).
    pub allow_insecure_loopback: bool,
}

/// Why a configuration document was refused. Never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the connector configuration is not valid JSON ({0}); fix the document syntax")]
    Syntax(String),
    #[error("`{field}`: {problem}")]
    Field { field: String, problem: String },
    #[error("`{field}`: {source}")]
    Key {
        field: String,
        #[source]
        source: KeyError,
    },
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The Okta org's base URL, e.g. `https://acme.okta.com` (never with a trailing slash).
#[derive(Clone, PartialEq, Eq)]
pub struct OrgUrl {
    url: Url,
    text: String,
}

impl OrgUrl {
    /// Validates an org URL: https, a DNS host, no path, query, fragment or credentials.
    pub fn parse(text: &str, opts: ValidationOptions) -> Result<OrgUrl, ConfigError> {
        let refuse = |problem: &str| field_error("org_url", problem);
        let url = Url::parse(text.trim()).map_err(|e| {
            refuse(&format!(
                "{e}; give the org URL as shown in the Okta admin console, e.g. https://acme.okta.com"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "must not contain user credentials; remove the `user@` part",
            ));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(refuse(&format!(
                "must not have a path (found {:?}); use just the org, e.g. https://acme.okta.com",
                url.path()
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse(
                "must not have a query or fragment; use just the org, e.g. https://acme.okta.com",
            ));
        }
        match (url.scheme(), url.host()) {
            ("https", Some(Host::Domain(domain))) => {
                if !domain.contains('.') || domain.ends_with('.') {
                    return Err(refuse(&format!(
                        "host {domain:?} is not a full domain name; use e.g. https://acme.okta.com"
                    )));
                }
            }
            ("https", _) => {
                return Err(refuse(
                    "must use the org's domain name, not an IP address; e.g. https://acme.okta.com",
                ))
            }
            // No port check: the url crate drops an explicit default :80, and http://127.0.0.1
            // is that same port anyway.
            ("http", Some(host)) if is_loopback(&host) => {
                if !opts.allow_insecure_loopback {
                    return Err(refuse(
                        "plain http to a loopback address needs --allow-insecure-loopback (tests and demos only)",
                    ));
                }
            }
            ("http", _) => {
                return Err(refuse(
                    "must use https; http is only accepted for http://127.0.0.1:PORT or http://[::1]:PORT with --allow-insecure-loopback",
                ))
            }
            (scheme, _) => {
                return Err(refuse(&format!(
                    "scheme {scheme:?} is not supported; use https://your-org.okta.com"
                )))
            }
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(OrgUrl { url, text })
    }

    pub fn as_url(&self) -> &Url {
        &self.url
    }

    pub fn origin(&self) -> url::Origin {
        self.url.origin()
    }

    /// The org URL with `path` (starting with `/`) appended.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        url.set_path(path);
        url
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
        Host::Domain(_) => false,
    }
}

impl fmt::Display for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgUrl({})", self.text)
    }
}

/// How the connector authenticates to Okta.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// An API token (`Authorization: SSWS <token>`).
    Ssws { token: SecretString },
    /// A service app using client credentials with `private_key_jwt` (recommended).
    OAuth2(OAuth2Config),
}

#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub client_id: String,
    /// Tried in order; several keys allow rotation without downtime.
    pub private_keys: Vec<SigningKey>,
    pub scopes: Vec<String>,
    pub dpop: bool,
}

/// One connector's validated configuration. Debug and Display never show secrets.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub org_url: OrgUrl,
    pub auth: AuthConfig,
    pub event_policy: CatalogPolicy,
    pub include_raw: bool,
    pub backfill_on_setup: bool,
}

impl fmt::Display for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Okta org {} ", self.org_url)?;
        match &self.auth {
            AuthConfig::Ssws { .. } => f.write_str("with an SSWS API token")?,
            AuthConfig::OAuth2(oauth) => write!(
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
            ", event policy {:?}, include_raw {}, backfill_on_setup {}",
            self.event_policy, self.include_raw, self.backfill_on_setup
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
        let org_url = OrgUrl::parse(top.required_str("org_url")?, opts)?;
        let auth = parse_auth(top.required("auth")?)?;
        let event_policy = match top.optional("event_policy") {
            None => CatalogPolicy::default(),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|_| field_error("event_policy", "must be \"catalog\" or \"all\""))?,
        };
        let include_raw = top.optional_bool("include_raw")?.unwrap_or(false);
        let backfill_on_setup = top.optional_bool("backfill_on_setup")?.unwrap_or(false);
        top.refuse_unknown()?;
        Ok(ConnectorConfig {
            org_url,
            auth,
            event_policy,
            include_raw,
            backfill_on_setup,
        })
    }
}

/// serde_json syntax errors carry only a position, never document content.
fn syntax_only(error: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        error.classify(),
        error.line(),
        error.column()
    )
}

fn parse_auth(value: &Value) -> Result<AuthConfig, ConfigError> {
    let mut fields = Fields::new(value, "auth")?;
    let auth = match fields.required_str("type")? {
        "ssws" => {
            let token = fields.required_str("token")?.trim();
            if token.is_empty() {
                return Err(field_error("auth.token", "is empty; paste the API token"));
            }
            AuthConfig::Ssws {
                token: SecretString::new(token.to_owned()),
            }
        }
        "oauth2" => {
            let client_id = fields.required_str("client_id")?.trim().to_owned();
            if client_id.is_empty() {
                return Err(field_error(
                    "auth.client_id",
                    "is empty; copy the Client ID from the service app's General tab",
                ));
            }
            let private_keys = parse_keys(fields.required("private_key")?)?;
            let scopes = match fields.optional("scopes") {
                None => vec![DEFAULT_SCOPE.to_owned()],
                Some(value) => parse_scopes(value)?,
            };
            let dpop = fields.optional_bool("dpop")?.unwrap_or(false);
            AuthConfig::OAuth2(OAuth2Config {
                client_id,
                private_keys,
                scopes,
                dpop,
            })
        }
        other => {
            return Err(field_error(
                "auth.type",
                format!("{other:?} is not supported; use \"oauth2\" or \"ssws\""),
            ))
        }
    };
    fields.refuse_unknown()?;
    Ok(auth)
}

fn parse_keys(value: &Value) -> Result<Vec<SigningKey>, ConfigError> {
    let parse_one = |value: &Value, field: String| match value {
        Value::String(pem) => {
            SigningKey::from_pem(pem).map_err(|source| ConfigError::Key { field, source })
        }
        Value::Object(_) => {
            SigningKey::from_jwk(value).map_err(|source| ConfigError::Key { field, source })
        }
        _ => Err(field_error(
            field,
            "must be a private JWK object or a PEM string",
        )),
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(field_error(
            "auth.private_key",
            "is an empty list; add at least one private key",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_one(item, format!("auth.private_key[{i}]")))
            .collect(),
        single => Ok(vec![parse_one(single, "auth.private_key".to_owned())?]),
    }
}

fn parse_scopes(value: &Value) -> Result<Vec<String>, ConfigError> {
    let scopes: Option<Vec<String>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    match scopes {
        Some(scopes)
            if !scopes.is_empty() && scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')) =>
        {
            Ok(scopes)
        }
        _ => Err(field_error(
            "auth.scopes",
            "must be a non-empty list of scope names, e.g. [\"okta.logs.read\"]",
        )),
    }
}

/// Reads members of one JSON object, remembering which were used so leftovers can be refused.
struct Fields<'a> {
    prefix: &'static str,
    members: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, prefix: &'static str) -> Result<Fields<'a>, ConfigError> {
        let members = value.as_object().ok_or_else(|| {
            let name = if prefix.is_empty() {
                "(document)"
            } else {
                prefix
            };
            field_error(name, "must be a JSON object")
        })?;
        Ok(Fields {
            prefix,
            members,
            used: Vec::new(),
        })
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn optional(&mut self, name: &'static str) -> Option<&'a Value> {
        self.used.push(name);
        self.members.get(name).filter(|v| !v.is_null())
    }

    fn required(&mut self, name: &'static str) -> Result<&'a Value, ConfigError> {
        self.optional(name)
            .ok_or_else(|| field_error(self.path(name), "is missing"))
    }

    fn required_str(&mut self, name: &'static str) -> Result<&'a str, ConfigError> {
        self.required(name)?
            .as_str()
            .ok_or_else(|| field_error(self.path(name), "must be a string"))
    }

    fn optional_bool(&mut self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(field_error(self.path(name), "must be true or false")),
        }
    }

    fn refuse_unknown(&self) -> Result<(), ConfigError> {
        match self
            .members
            .keys()
            .find(|k| !self.used.contains(&k.as_str()))
        {
            Some(unknown) => Err(field_error(
                self.path(unknown),
                "is not a known setting; remove it or check its spelling",
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::auth::keys::tests::{ec_jwk, rsa_jwk, test_rsa_key};
    use serde_json::json;

    const LOOPBACK: ValidationOptions = ValidationOptions {
        allow_insecure_loopback: true,
    };

    fn ec_key() -> p256::SecretKey {
        p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng)
    }

    #[test]
    fn accepted_org_urls_lose_their_trailing_slash() {
        let strict = ValidationOptions::default();
        for (input, expected) in [
            ("https://acme.okta.com", "https://acme.okta.com"),
            ("https://acme.okta.com/", "https://acme.okta.com"),
            (
                "https://acme.oktapreview.com",
                "https://acme.oktapreview.com",
            ),
            ("https://acme.okta-emea.com/", "https://acme.okta-emea.com"),
            ("https://login.acme.example", "https://login.acme.example"),
        ] {
            assert_eq!(OrgUrl::parse(input, strict).unwrap().as_str(), expected);
        }
        assert_eq!(
            OrgUrl::parse("http://127.0.0.1:8080/", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            OrgUrl::parse("http://[::1]:9000", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://[::1]:9000"
        );
    }

    #[test]
    fn loopback_on_the_default_http_port_is_accepted_with_the_flag() {
        // The url crate drops an explicit :80, which used to look like "no port" and was refused.
        for input in [
            "http://127.0.0.1:80",
            "http://127.0.0.1",
            "http://[::1]:80/",
        ] {
            let url = OrgUrl::parse(input, LOOPBACK).unwrap();
            assert_eq!(url.as_url().port_or_known_default(), Some(80), "{input}");
        }
        assert_eq!(
            OrgUrl::parse("http://127.0.0.1:80", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://127.0.0.1"
        );
    }

    #[test]
    fn refused_org_urls_say_why() {
        let strict = ValidationOptions::default();
        for (input, opts, hint) in [
            ("http://acme.okta.com", strict, "must use https"),
            (
                "https://acme.okta.com/oauth2/default",
                strict,
                "must not have a path",
            ),
            ("https://acme.okta.com/?x=1", strict, "query"),
            ("https://acme.okta.com/#top", strict, "fragment"),
            ("https://admin:pw@acme.okta.com", strict, "credentials"),
            ("https://10.0.0.1", strict, "not an IP address"),
            ("https://localhost", strict, "not a full domain name"),
            ("ftp://acme.okta.com", strict, "not supported"),
            ("acme.okta.com", strict, "e.g. https://acme.okta.com"),
            ("http://127.0.0.1:8080", strict, "--allow-insecure-loopback"),
            ("http://127.0.0.1:80", strict, "--allow-insecure-loopback"),
            ("http://192.168.1.5:80", LOOPBACK, "must use https"),
        ] {
            let err = OrgUrl::parse(input, opts).unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with("`org_url`"), "{input}: {message}");
            assert!(message.contains(hint), "{input}: {message}");
        }
    }

    #[test]
    fn org_urls_with_and_without_slash_have_one_origin() {
        let a = OrgUrl::parse("https://acme.okta.com/", ValidationOptions::default()).unwrap();
        let b = OrgUrl::parse("https://acme.okta.com", ValidationOptions::default()).unwrap();
        assert_eq!(a.origin(), b.origin());
        assert_eq!(
            a.join("/api/v1/logs").as_str(),
            "https://acme.okta.com/api/v1/logs"
        );
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
        let AuthConfig::OAuth2(oauth) = &config.auth else {
            panic!("expected oauth2")
        };
        assert_eq!(oauth.client_id, "0oa1");
        assert_eq!(oauth.scopes, vec!["okta.logs.read".to_owned()]);
        assert!(!oauth.dpop);
        assert_eq!(oauth.private_keys[0].kid(), Some("k1"));
        assert_eq!(config.event_policy, CatalogPolicy::Catalog);
        assert!(!config.include_raw);
        assert!(!config.backfill_on_setup);
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
        let AuthConfig::OAuth2(oauth) = &config.auth else {
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
