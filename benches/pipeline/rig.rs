//! The benches' simulator and connector settings, on the test rig (`okta_ingest::testkit::rig`)
//! with a bench sink in place of the memory sink.

use std::sync::Arc;
use std::time::Duration;

use okta_ingest::okta::ClientOptions;
use okta_ingest::settings::RunSettings;
use okta_ingest::testkit::rig;
use okta_sim::{RateLimitConfig, SimConfig, Simulator};

use crate::sinks::CountingSink;

pub use okta_ingest::testkit::rig::Rig;

/// Kept before the deadline for the last checkpoint and the lease release.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(200);

/// A backlog published over the last 10 minutes, inside the first poll's 15-minute look-back.
pub fn sim_config(events: usize, rate_limit: Option<RateLimitConfig>) -> SimConfig {
    SimConfig {
        rate_limit,
        ..rig::sim_config(events, 7)
    }
}

/// Production pacing and retries (`okta`), with the bench's safety margin.
pub fn settings(okta: ClientOptions) -> RunSettings {
    RunSettings {
        allow_insecure_loopback: true,
        safety_margin: SAFETY_MARGIN,
        okta,
        ..RunSettings::default()
    }
}

/// A connector with production pacing over a simulator of `events`, publishing to a sink that
/// only counts.
pub async fn counting_rig(events: usize) -> Rig<CountingSink> {
    let sim = Simulator::start(sim_config(events, None))
        .await
        .expect("the simulator starts on loopback");
    Rig::over(
        sim,
        Arc::new(CountingSink::default()),
        settings(ClientOptions::default()),
    )
}
