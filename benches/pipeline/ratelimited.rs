//! Draining under Okta's rate limit, time-compressed: the bucket's window is shortened and the
//! drain runs for whole windows, so "allowed" is exact. In each window the connector may use its
//! share (`floor(limit × share) − reserve`), and no more than the other client's answered
//! requests left in the bucket: `Σ min(share, limit − other client's answered)` over the windows,
//! times 1000 events a request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use okta_ingest::okta::ClientOptions;
use okta_sim::{RateLimitConfig, Simulator};

use crate::rig::{settings, sim_config, Rig, SAFETY_MARGIN};
use crate::sinks::CountingSink;
use okta_ingest::testkit::rig::SSWS_TOKEN;

const PAGE: u64 = 1000;

/// Another client of the same org, spending part of every window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherClient {
    None,
    /// This many requests a window, spread evenly over it.
    Spread(u32),
    /// This many requests at once as each window opens, from the run's second window on (the
    /// connector is draining by then; a connector that first meets a window already part used
    /// counts that part as its own, see `okta::pacer`).
    Burst(u32),
}

pub struct RateRun {
    /// This connector's share of each window: `floor(limit × share) − reserve`.
    pub share_per_window: u32,
    pub windows: u32,
    /// Requests the connector could use over the run: in each window its share, capped by what
    /// the other client's answered requests left.
    pub allowed_requests: u64,
    pub fetched: u64,
    pub requests: u64,
    pub throttled: u64,
    /// The other client's requests the bucket answered, and those it refused with a 429.
    pub other_answered: u64,
    pub other_throttled: u64,
}

impl RateRun {
    pub fn allowed_events(&self) -> u64 {
        self.allowed_requests * PAGE
    }
}

/// The connector's budget per window: it leaves `ceil(limit × (1 − share))` requests to the
/// org's other apps and `reserve` more untouched.
pub fn share_per_window(limit: u32, options: &ClientOptions) -> u32 {
    let others = (f64::from(limit) * (1.0 - options.rate_share.clamp(0.0, 1.0))).ceil() as u32;
    limit
        .saturating_sub(others)
        .saturating_sub(options.rate_reserve)
}

/// One poll draining a large backlog for `windows` whole windows, beside `other`.
pub async fn drain(
    bucket: RateLimitConfig,
    windows: u32,
    options: ClientOptions,
    other: OtherClient,
) -> RateRun {
    let share = share_per_window(bucket.limit, &options);
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
    let now = epoch_secs();
    let first_reset = now - now % window.as_secs().max(1) + window.as_secs();
    let ledger = Arc::new(Mutex::new(OtherLedger::default()));
    let other_task = spawn_other(other, rig.sim.base_url(), window, ledger.clone());
    let work = window * windows - Duration::from_millis(30);
    let run_end = tokio::time::Instant::now() + work;
    let summary = rig.poll_within(work + SAFETY_MARGIN).await;
    // The poll ends once its share of the last window is spent; the other client goes on to the
    // end of that window, so what it got of each window is counted whole.
    tokio::time::sleep_until(run_end).await;
    if let Some(task) = other_task {
        task.abort();
    }
    rig.shutdown().await;
    let ledger = ledger.lock().expect("not poisoned");
    let allowed_requests = (0..u64::from(windows))
        .map(|w| {
            let reset = first_reset + w * window.as_secs();
            let taken = ledger.answered_by_reset.get(&reset).copied().unwrap_or(0);
            u64::from(share.min(bucket.limit.saturating_sub(taken)))
        })
        .sum();
    RateRun {
        share_per_window: share,
        windows,
        allowed_requests,
        fetched: summary.drain.as_ref().map_or(0, |d| d.fetched),
        requests: summary.okta_requests,
        throttled: summary.okta_throttled,
        other_answered: ledger
            .answered_by_reset
            .values()
            .map(|&n| u64::from(n))
            .sum(),
        other_throttled: ledger.throttled,
    }
}

/// What the other client got: answered requests per window (by `X-Rate-Limit-Reset`), and 429s.
#[derive(Default)]
struct OtherLedger {
    answered_by_reset: BTreeMap<u64, u32>,
    throttled: u64,
}

fn spawn_other(
    other: OtherClient,
    url: String,
    window: Duration,
    ledger: Arc<Mutex<OtherLedger>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::new();
    let request = move || {
        let (client, url, ledger) = (client.clone(), url.clone(), ledger.clone());
        async move {
            let Ok(answer) = client
                .get(format!("{url}/api/v1/logs?limit=1"))
                .header("Authorization", format!("SSWS {SSWS_TOKEN}"))
                .send()
                .await
            else {
                return;
            };
            let mut ledger = ledger.lock().expect("not poisoned");
            if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                ledger.throttled += 1;
            } else if let Some(reset) = answer
                .headers()
                .get("x-rate-limit-reset")
                .and_then(|v| v.to_str().ok()?.parse().ok())
            {
                *ledger.answered_by_reset.entry(reset).or_default() += 1;
            }
        }
    };
    match other {
        OtherClient::None => None,
        OtherClient::Spread(per_window) => Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(window / per_window.max(1));
            loop {
                tick.tick().await;
                request().await;
            }
        })),
        OtherClient::Burst(per_window) => Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(until_next_window(window)).await;
                let burst: Vec<_> = (0..per_window).map(|_| tokio::spawn(request())).collect();
                for sent in burst {
                    let _ = sent.await;
                }
            }
        })),
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
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
