//! A connector wired to the in-process Okta simulator and the in-memory twins of the AWS
//! systems, with the ground truth needed to prove nothing was lost or duplicated. Tests use the
//! memory sink; benches put their own sink in its place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::actions::{Connector, Outcome, Summary};
use crate::cursor::memory::MemoryCursorStore;
use crate::invocation::{Action, ConnectorId, Invocation};
use crate::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};
use crate::okta::ClientOptions;
use crate::secrets::memory::MemorySecretSource;
use crate::settings::RunSettings;
use crate::sink::memory::MemorySink;
use crate::sink::EventSink;
use okta_sim::{SimConfig, Simulator};
use tokio::time::Instant;

pub const CONNECTOR: &str = "acme";
pub const SSWS_TOKEN: &str = "00sim-ssws-token-0123456789abcdef";

/// The connector of a [`Rig`] whose events go to `K`.
pub type RigConnector<K = MemorySink> =
    Connector<Arc<MemorySecretSource>, Arc<MemoryCursorStore>, Arc<K>>;

/// Settings for tests: the simulator on loopback, quick backoff, small margins.
pub fn test_settings() -> RunSettings {
    RunSettings {
        allow_insecure_loopback: true,
        safety_margin: Duration::from_millis(300),
        okta: ClientOptions {
            request_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(100),
            ..ClientOptions::default()
        },
        ..RunSettings::default()
    }
}

/// The Lambda's settings for tests, as the environment `vars` (plus
/// `OKTA_ALLOW_INSECURE_LOOPBACK=true`) give them, with the quick Okta client of [`test_settings`].
pub fn lambda_settings(vars: &[(&str, &str)]) -> crate::settings::Settings {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .chain(&[("OKTA_ALLOW_INSECURE_LOOPBACK", "true")])
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut settings = crate::settings::Settings::from_vars(&vars)
        .unwrap_or_else(|err| panic!("test settings refused: {err}"));
    settings.run.okta = test_settings().okta;
    settings
}

/// A simulator whose backlog (`events`, published over the last 10 minutes) lies inside the
/// first poll's 15-minute look-back, accepting [`SSWS_TOKEN`].
pub fn sim_config(events: usize, seed: u64) -> SimConfig {
    org_sim_config(SSWS_TOKEN, events, seed)
}

/// [`sim_config`] for an org of its own, accepting `token`.
pub fn org_sim_config(token: &str, events: usize, seed: u64) -> SimConfig {
    SimConfig {
        seed,
        initial_events: events,
        backlog_span: Duration::from_secs(600),
        ssws_tokens: vec![token.to_string()],
        ..SimConfig::default()
    }
}

pub fn ssws_secret(sim: &Simulator) -> String {
    org_ssws_secret(sim, SSWS_TOKEN)
}

/// The connector config of `sim`'s org with the SSWS `token`.
pub fn org_ssws_secret(sim: &Simulator, token: &str) -> String {
    serde_json::json!({"org_url": sim.base_url(), "auth": {"type": "ssws", "token": token}})
        .to_string()
}

/// A summary as `Err` when the invocation failed, so tests can `unwrap` the successful ones.
// Both variants are the same summary: boxing one would only add noise to the tests.
#[allow(clippy::result_large_err)]
pub fn failed_as_err(summary: Summary) -> Result<Summary, Summary> {
    if summary.outcome == Outcome::Failed {
        Err(summary)
    } else {
        Ok(summary)
    }
}

pub struct Rig<K = MemorySink> {
    /// Shared, so a task can append events while the connector drains.
    pub sim: Arc<Simulator>,
    pub secrets: Arc<MemorySecretSource>,
    pub store: Arc<MemoryCursorStore>,
    pub sink: Arc<K>,
    pub connector: RigConnector<K>,
}

impl Rig {
    /// A simulator started from `config` and a connector with [`test_settings`].
    pub async fn start(config: SimConfig) -> Rig {
        Rig::with_settings(config, test_settings()).await
    }

    pub async fn with_settings(config: SimConfig, settings: RunSettings) -> Rig {
        let sim = Simulator::start(config).await.expect("simulator starts");
        Rig::over(sim, Arc::new(MemorySink::new()), settings)
    }
}

impl<K: EventSink> Rig<K> {
    /// A connector for the running `sim` (with its [`SSWS_TOKEN`]) delivering to `sink`.
    pub fn over(sim: Simulator, sink: Arc<K>, settings: RunSettings) -> Rig<K> {
        let secrets = Arc::new(MemorySecretSource::new());
        secrets.set(CONNECTOR, &ssws_secret(&sim));
        let store = Arc::new(MemoryCursorStore::new());
        let connector = Connector::new(secrets.clone(), store.clone(), sink.clone(), settings);
        Rig {
            sim: Arc::new(sim),
            secrets,
            store,
            sink,
            connector,
        }
    }

    pub async fn invoke(&self, action: Action, budget: Duration) -> Result<Summary, Summary> {
        let invocation = Invocation {
            connector_id: ConnectorId::parse(CONNECTOR).unwrap(),
            action,
        };
        let summary = self
            .connector
            .handle(&invocation, Instant::now() + budget)
            .await;
        failed_as_err(summary)
    }

    pub async fn poll(&self) -> Result<Summary, Summary> {
        self.invoke(Action::Poll, Duration::from_secs(30)).await
    }

    /// The operator's `disable` with `reason`.
    pub async fn disable(&self, reason: &str) -> Result<Summary, Summary> {
        let reason = reason.into();
        self.invoke(Action::Disable { reason }, Duration::from_secs(5))
            .await
    }

    pub async fn resume(&self) -> Result<Summary, Summary> {
        self.invoke(Action::Resume, Duration::from_secs(5)).await
    }

    /// One scheduled poll with `budget` until the runtime would stop it; its summary either way.
    pub async fn poll_within(&self, budget: Duration) -> Summary {
        let invocation = Invocation {
            connector_id: ConnectorId::parse(CONNECTOR).unwrap(),
            action: Action::Poll,
        };
        self.connector
            .handle(&invocation, Instant::now() + budget)
            .await
    }

    /// Polls until a poll ends caught up (at most `max` polls).
    pub async fn poll_until_caught_up(&self, max: usize) {
        for _ in 0..max {
            if let Ok(summary) = self.poll().await {
                if summary.drain.as_ref().is_some_and(|d| d.caught_up) {
                    return;
                }
            }
        }
        panic!("not caught up after {max} polls");
    }

    /// The connector's backfill cursor item (panics when there is none).
    pub fn backfill_item(&self) -> crate::cursor::CursorItem {
        self.store
            .snapshot(&crate::cursor::backfill_key(CONNECTOR))
            .expect("a backfill item exists")
    }

    /// Stops the simulator (once no task holds it any more).
    pub async fn shutdown(self) {
        drop(self.connector);
        if let Ok(sim) = Arc::try_unwrap(self.sim) {
            sim.shutdown().await;
        }
    }
}

impl Rig {
    /// The Okta uuids the connector must publish: every simulator event the normalizer accepts.
    pub fn expected_ids(&self) -> BTreeSet<String> {
        let normalizer = Normalizer::new(NormalizerConfig {
            org: "127.0.0.1".into(),
            connector_id: CONNECTOR.into(),
            policy: CatalogPolicy::Catalog,
            include_raw: false,
        });
        let now = time::OffsetDateTime::now_utc();
        self.sim
            .events()
            .iter()
            .filter_map(|event| normalizer.normalize(&event.to_string(), now).ok())
            .map(|record| record.event_id)
            .collect()
    }

    /// How often each uuid reached the sink.
    pub fn delivered(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for record in self.sink.records() {
            *counts.entry(record.event_id).or_insert(0) += 1;
        }
        counts
    }

    /// Panics unless every expected event was delivered; returns the number of duplicates.
    pub fn assert_nothing_missing(&self) -> usize {
        let delivered = self.delivered();
        let expected = self.expected_ids();
        let missing: Vec<_> = expected
            .iter()
            .filter(|id| !delivered.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} events missing, e.g. {:?}",
            missing.len(),
            expected.len(),
            missing.iter().take(3).collect::<Vec<_>>()
        );
        let unexpected: Vec<_> = delivered
            .keys()
            .filter(|id| !expected.contains(*id))
            .collect();
        assert!(
            unexpected.is_empty(),
            "delivered events that should be excluded: {unexpected:?}"
        );
        delivered.values().map(|n| n - 1).sum()
    }
}
