//! Draining under Okta's rate limit, time-compressed: the bucket's window is shortened and the
//! drain runs for whole windows, so "allowed" is exact: requests per window × windows × 1000.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use okta_ingest::okta::ClientOptions;
use okta_sim::{RateLimitConfig, Simulator};

use crate::rig::{settings, sim_config, Rig, SAFETY_MARGIN};
use crate::sinks::CountingSink;
use okta_ingest::testkit::rig::SSWS_TOKEN;

const PAGE: u64 = 1000;

pub struct RateRun {
    /// Requests per window this connector may use: its share of the bucket minus its reserve.
    pub allowed_per_window: u32,
    pub windows: u32,
    pub fetched: u64,
    pub requests: u64,
    pub throttled: u64,
}

impl RateRun {
    pub fn allowed_events(&self) -> u64 {
        u64::from(self.allowed_per_window) * u64::from(self.windows) * PAGE
    }
}

/// The connector's budget per window: it leaves `ceil(limit × (1 − share))` requests to the
/// org's other apps and `reserve` more untouched.
pub fn allowed_per_window(limit: u32, options: &ClientOptions) -> u32 {
    let others = (f64::from(limit) * (1.0 - options.rate_share.clamp(0.0, 1.0))).ceil() as u32;
    limit
        .saturating_sub(others)
        .saturating_sub(options.rate_reserve)
}

/// One poll draining a large backlog for `windows` whole windows, while another client of the
/// org spends `competitor` requests of every window (spread evenly over it; 0 = none): the
/// connector may use what the others leave, up to its share.
pub async fn drain(
    bucket: RateLimitConfig,
    windows: u32,
    options: ClientOptions,
    competitor: u32,
) -> RateRun {
    let share = allowed_per_window(bucket.limit, &options);
    let allowed_per_window = share.min(bucket.limit.saturating_sub(competitor));
    // More backlog than the run may read, so only the rate limit stops it.
    let backlog = (u64::from(bucket.limit) * u64::from(windows + 1) * PAGE) as usize;
    let sim = Simulator::start(sim_config(backlog, Some(bucket)))
        .await
        .expect("the simulator starts on loopback");
    let sink = Arc::new(CountingSink::default());
    let rig = Rig::over(sim, sink, settings(options));

    // Start just after a window opens and stop just before the last one closes.
    let window = bucket.window;
    tokio::time::sleep(until_next_window(window) + Duration::from_millis(10)).await;
    let other = (competitor > 0).then(|| {
        let (url, every) = (rig.sim.base_url(), window / competitor);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let _ = client
                    .get(format!("{url}/api/v1/logs?limit=1"))
                    .header("Authorization", format!("SSWS {SSWS_TOKEN}"))
                    .send()
                    .await;
            }
        })
    });
    let work = window * windows - Duration::from_millis(30);
    let summary = rig.poll_within(work + SAFETY_MARGIN).await;
    if let Some(other) = other {
        other.abort();
    }
    rig.shutdown().await;
    RateRun {
        allowed_per_window,
        windows,
        fetched: summary.drain.as_ref().map_or(0, |d| d.fetched),
        requests: summary.okta_requests,
        throttled: summary.okta_throttled,
    }
}

/// The simulator aligns its windows to multiples of the window length since the epoch.
fn until_next_window(window: Duration) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis();
    let length = window.as_millis().max(1);
    Duration::from_millis((length - now % length) as u64)
}
