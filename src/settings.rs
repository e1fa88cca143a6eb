//! Lambda configuration from the environment, validated once at init.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::drain::DrainSettings;
use crate::okta::{ClientOptions, MAX_PAGE_LIMIT};
use crate::secrets::cache::DEFAULT_SECRET_TTL;
use crate::secrets::secrets_manager::{CONNECTOR_ID_PLACEHOLDER, DEFAULT_SECRET_ID_TEMPLATE};

/// Everything the Lambda reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cursor_table: String,
    pub event_stream: String,
    /// The stream of OCSF records (`OCSF_STREAM`), for connectors with `"ocsf"` in `outputs`.
    pub ocsf_stream: Option<String>,
    /// S3 bucket for events the stream refuses for good; without one they fail their page.
    pub dead_letter_bucket: Option<String>,
    /// KMS key the dead letters are encrypted with; `None` uses the bucket's default key.
    pub dead_letter_kms_key: Option<String>,
    /// Secret id per connector; `{connector_id}` is replaced.
    pub secret_id_template: String,
    /// Serves EventBridge "Scheduled Event" envelopes, which name no connector.
    pub default_connector_id: Option<String>,
    /// Role assumed per invocation with the session tag `connector_id`; `None`: the function's own
    /// credentials serve every connector.
    pub connector_access_role_arn: Option<String>,
    /// Also publish metrics with a `ConnectorId` dimension (small fleets only: it costs per connector).
    pub per_connector_metrics: bool,
    pub run: RunSettings,
}

/// Tunables shared by the Lambda and the local CLI.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub drain: DrainSettings,
    /// Time kept before the invocation deadline for the last checkpoint and the release.
    pub safety_margin: Duration,
    /// Budget when the runtime gives no usable deadline (local emulators, the CLI).
    pub fallback_budget: Duration,
    /// Consecutive failed invocations before the connector pauses itself.
    pub pause_after_failures: u32,
    /// HTTP behaviour towards Okta: timeouts, rate share, backoff.
    pub okta: ClientOptions,
    pub secret_cache_ttl: Duration,
    /// Connectors one warm container keeps clients, secrets and credentials for (least recently used
    /// dropped first).
    pub connector_cache_size: NonZeroUsize,
    /// Accept `http://127.0.0.1` org URLs (the local simulator). Never set in production.
    pub allow_insecure_loopback: bool,
    /// Names this process in the leases it takes (e.g. `okta-ingest pid 4242`), so a refused
    /// run can say who holds the lease.
    pub lease_owner_label: Option<String>,
    /// Tail mode for every connector of this process (the CLI's `--tail-interval-secs`);
    /// otherwise a connector's `tail_interval_seconds` decides.
    pub tail_interval: Option<Duration>,
    /// A poll that finds the live lease held by a run ending within this time waits for that
    /// end and carries on, so a tail hands over without a gap (one period of the 1-minute
    /// schedule).
    pub takeover_horizon: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            drain: DrainSettings::default(),
            safety_margin: Duration::from_secs(20),
            fallback_budget: Duration::from_secs(240),
            pause_after_failures: 5,
            okta: ClientOptions::default(),
            secret_cache_ttl: DEFAULT_SECRET_TTL,
            connector_cache_size: NonZeroUsize::new(128).expect("non-zero"),
            allow_insecure_loopback: false,
            lease_owner_label: None,
            tail_interval: None,
            takeover_horizon: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid environment variable {name}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub problem: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let env = Env(vars);
        let defaults = RunSettings::default();
        let secret_id_template = env
            .text("SECRET_ID_TEMPLATE")?
            .unwrap_or_else(|| DEFAULT_SECRET_ID_TEMPLATE.to_string());
        if !secret_id_template.contains(CONNECTOR_ID_PLACEHOLDER) {
            return Err(SettingsError {
                name: "SECRET_ID_TEMPLATE",
                problem: "must contain {connector_id} so each connector reads only its own secret"
                    .into(),
            });
        }
        let page_limit = env
            .number("PAGE_LIMIT", 1..=u64::from(MAX_PAGE_LIMIT))?
            .map_or(MAX_PAGE_LIMIT, |n| n as u32);
        let lookback = env.number("LOOKBACK_MINUTES", 1..=1440)?.map(|m| m * 60);
        let run = RunSettings {
            drain: DrainSettings {
                page_limit,
                lookback: lookback.map_or(defaults.drain.lookback, Duration::from_secs),
            },
            safety_margin: env
                .number("SAFETY_MARGIN_SECONDS", 1..=600)?
                .map_or(defaults.safety_margin, Duration::from_secs),
            fallback_budget: env
                .number("LOCAL_BUDGET_SECONDS", 1..=3600)?
                .map_or(defaults.fallback_budget, Duration::from_secs),
            pause_after_failures: env
                .number("PAUSE_AFTER_FAILURES", 1..=1000)?
                .map_or(defaults.pause_after_failures, |n| n as u32),
            okta: ClientOptions {
                rate_share: env
                    .fraction("RATE_SHARE")?
                    .unwrap_or(defaults.okta.rate_share),
                rate_reserve: env
                    .number("RATE_RESERVE", 0..=100_000)?
                    .map_or(defaults.okta.rate_reserve, |n| n as u32),
                ..defaults.okta.clone()
            },
            secret_cache_ttl: env
                .number("SECRET_CACHE_SECONDS", 0..=3600)?
                .map_or(defaults.secret_cache_ttl, Duration::from_secs),
            connector_cache_size: env
                .number("CONNECTOR_CACHE_SIZE", 1..=100_000)?
                .and_then(|n| NonZeroUsize::new(n as usize))
                .unwrap_or(defaults.connector_cache_size),
            allow_insecure_loopback: env.flag("OKTA_ALLOW_INSECURE_LOOPBACK")?,
            lease_owner_label: None,
            tail_interval: None,
            takeover_horizon: defaults.takeover_horizon,
        };
        Ok(Settings {
            cursor_table: env.required("CURSOR_TABLE")?,
            event_stream: env.required("EVENT_STREAM")?,
            ocsf_stream: env.text("OCSF_STREAM")?,
            dead_letter_bucket: env.text("DEAD_LETTER_BUCKET")?,
            dead_letter_kms_key: env.text("DEAD_LETTER_KMS_KEY")?,
            secret_id_template,
            default_connector_id: env.text("DEFAULT_CONNECTOR_ID")?,
            connector_access_role_arn: env.text("CONNECTOR_ACCESS_ROLE_ARN")?,
            per_connector_metrics: env.flag("PER_CONNECTOR_METRICS")?,
            run,
        })
    }
}

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn text(&self, name: &'static str) -> Result<Option<String>, SettingsError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(value) => Ok(Some(value.to_string())),
        }
    }

    fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.text(name)?.ok_or(SettingsError {
            name,
            problem: "is required and not set".into(),
        })
    }

    fn number(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, SettingsError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(SettingsError {
                name,
                problem: format!(
                    "{text:?} is not a whole number between {} and {}",
                    range.start(),
                    range.end()
                ),
            }),
        }
    }

    fn fraction(&self, name: &'static str) -> Result<Option<f64>, SettingsError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => Ok(Some(f)),
            _ => Err(SettingsError {
                name,
                problem: format!("{text:?} is not a fraction in (0, 1]"),
            }),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, SettingsError> {
        match self.text(name)?.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(SettingsError {
                name,
                problem: format!("{other:?} is not true or false"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> =
            [("CURSOR_TABLE", "cursors"), ("EVENT_STREAM", "events")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        map
    }

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let settings = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(settings.secret_id_template, "okta-ingest/{connector_id}");
        assert_eq!(settings.run.drain.page_limit, 1000);
        assert_eq!(settings.run.pause_after_failures, 5);
        assert!(!settings.run.allow_insecure_loopback);
    }

    #[test]
    fn each_bad_variable_is_named_in_the_error() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PAGE_LIMIT", "5000")], "PAGE_LIMIT"),
            (&[("PAGE_LIMIT", "ten")], "PAGE_LIMIT"),
            (&[("LOOKBACK_MINUTES", "-1")], "LOOKBACK_MINUTES"),
            (&[("RATE_SHARE", "1.5")], "RATE_SHARE"),
            (
                &[("SECRET_ID_TEMPLATE", "okta-ingest/shared")],
                "SECRET_ID_TEMPLATE",
            ),
            (
                &[("OKTA_ALLOW_INSECURE_LOOPBACK", "yes")],
                "OKTA_ALLOW_INSECURE_LOOPBACK",
            ),
            (&[("CURSOR_TABLE", "")], "CURSOR_TABLE"),
            (&[("CONNECTOR_CACHE_SIZE", "0")], "CONNECTOR_CACHE_SIZE"),
            (
                &[("PER_CONNECTOR_METRICS", "maybe")],
                "PER_CONNECTOR_METRICS",
            ),
        ];
        for (pairs, name) in cases {
            let err = Settings::from_vars(&vars(pairs)).unwrap_err();
            assert_eq!(err.name, *name, "{err}");
            assert!(err.to_string().contains(name));
        }
    }
}
