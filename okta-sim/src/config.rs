//! How a simulator is set up: backlog, event mix, credentials and limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ratelimit::RateLimitConfig;

/// The simulator's configuration. Also readable from JSON (durations in seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Makes the generated System Log reproducible.
    pub seed: u64,
    /// Events in the log at start.
    pub initial_events: usize,
    /// The initial events' `published` times are spread over this span, ending now.
    #[serde(rename = "backlog_span_secs", with = "duration_secs")]
    pub backlog_span: Duration,
    /// Share of events not attributable to a person (policy, application, org warnings).
    pub system_event_ratio: f64,
    /// Share of human events whose type is outside the product's event catalog.
    pub non_catalog_ratio: f64,
    /// The `/api/v1/logs` bucket; `None` never refuses but still sends the headers.
    pub rate_limit: Option<RateLimitConfig>,
    /// Lifetime of issued access tokens.
    #[serde(rename = "token_ttl_secs", with = "duration_secs")]
    pub token_ttl: Duration,
    /// API tokens accepted as `Authorization: SSWS <token>`.
    pub ssws_tokens: Vec<String>,
    /// OAuth service apps allowed at the token endpoint.
    pub clients: Vec<ClientRegistration>,
    /// The largest `limit` accepted (Okta: 1000).
    pub max_page_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            initial_events: 1000,
            backlog_span: Duration::from_secs(3600),
            system_event_ratio: 0.1,
            non_catalog_ratio: 0.1,
            rate_limit: None,
            token_ttl: Duration::from_secs(3600),
            ssws_tokens: Vec::new(),
            clients: Vec::new(),
            max_page_size: 1000,
        }
    }
}

/// An OAuth 2.0 service app using `private_key_jwt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    /// Public JWKs (each with a `kid`) that client assertions may be signed with.
    pub public_jwks: Vec<serde_json::Value>,
    /// Scopes the app was granted.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Tokens must be DPoP-bound (the app's "Require DPoP" setting).
    #[serde(default)]
    pub require_dpop: bool,
    /// A deactivated app gets `invalid_client`.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn default_scopes() -> Vec<String> {
    vec!["okta.logs.read".to_string()]
}

fn active_by_default() -> bool {
    true
}

/// Durations as (fractional) seconds in JSON.
pub(crate) mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_config_uses_seconds_and_defaults() {
        let cfg: SimConfig = serde_json::from_str(
            r#"{"seed": 7, "backlog_span_secs": 90, "rate_limit": {"limit": 10, "window_secs": 1.5},
                "clients": [{"client_id": "0oa1", "public_jwks": []}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.backlog_span, Duration::from_secs(90));
        assert_eq!(cfg.rate_limit.unwrap().window, Duration::from_millis(1500));
        assert_eq!(cfg.token_ttl, Duration::from_secs(3600));
        assert!(cfg.clients[0].active);
        assert_eq!(cfg.clients[0].scopes, vec!["okta.logs.read"]);
    }

    #[test]
    fn negative_durations_are_refused() {
        assert!(serde_json::from_str::<SimConfig>(r#"{"token_ttl_secs": -1}"#).is_err());
    }
}
