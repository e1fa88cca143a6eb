//! A connector wired to the in-process simulator, an in-memory cursor store and a bench sink.

use std::sync::Arc;
use std::time::Duration;

use okta_ingest::actions::{Connector, Summary};
use okta_ingest::cursor::memory::MemoryCursorStore;
use okta_ingest::invocation::{Action, ConnectorId, Invocation};
use okta_ingest::okta::ClientOptions;
use okta_ingest::secrets::memory::MemorySecretSource;
use okta_ingest::settings::RunSettings;
use okta_ingest::sink::EventSink;
use okta_sim::{RateLimitConfig, SimConfig, Simulator};
use tokio::time::Instant;

const CONNECTOR: &str = "bench";
const SSWS_TOKEN: &str = "00bench-ssws-token-0123456789abcdef";
/// Kept before the deadline for the last checkpoint and the lease release.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(200);

pub type BenchConnector<K> = Connector<Arc<MemorySecretSource>, Arc<MemoryCursorStore>, Arc<K>>;

/// A backlog published over the last 10 minutes, inside the first poll's 15-minute look-back.
pub fn sim_config(events: usize, rate_limit: Option<RateLimitConfig>) -> SimConfig {
    SimConfig {
        seed: 7,
        initial_events: events,
        backlog_span: Duration::from_secs(600),
        ssws_tokens: vec![SSWS_TOKEN.to_owned()],
        rate_limit,
        ..SimConfig::default()
    }
}

pub fn settings(okta: ClientOptions) -> RunSettings {
    RunSettings {
        allow_insecure_loopback: true,
        safety_margin: SAFETY_MARGIN,
        okta,
        ..RunSettings::default()
    }
}

pub fn connector<K: EventSink>(
    sim: &Simulator,
    sink: Arc<K>,
    settings: RunSettings,
) -> BenchConnector<K> {
    let secrets = Arc::new(MemorySecretSource::new());
    let secret = serde_json::json!({
        "org_url": sim.base_url(),
        "auth": {"type": "ssws", "token": SSWS_TOKEN},
    });
    secrets.set(CONNECTOR, &secret.to_string());
    Connector::new(secrets, Arc::new(MemoryCursorStore::new()), sink, settings)
}

/// One scheduled poll with `budget` until the runtime would stop it; failed runs still report.
pub async fn poll<K: EventSink>(connector: &BenchConnector<K>, budget: Duration) -> Summary {
    let invocation = Invocation {
        connector_id: ConnectorId::parse(CONNECTOR).expect("a valid connector id"),
        action: Action::Poll,
    };
    connector.handle(&invocation, Instant::now() + budget).await
}
