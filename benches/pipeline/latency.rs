//! Delivery latency on a schedule, time-compressed: events are persisted at a steady rate while
//! a poll starts every `period`; each latency is (first acknowledgement − persistence), scaled
//! back to real time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use okta_ingest::okta::ClientOptions;
use okta_sim::Simulator;
use tokio::time::{Instant, MissedTickBehavior};

use crate::rig::{settings, sim_config, Rig};
use crate::sinks::TimingSink;

/// How often new events are persisted within the compressed run.
const APPEND_EVERY: Duration = Duration::from_millis(20);

pub struct LatencyPlan {
    /// Real seconds per compressed second (60 s schedule → 1 s polls: 60).
    pub scale: u32,
    pub period: Duration,
    pub polls: u32,
    /// Events persisted per compressed second.
    pub events_per_sec: u32,
}

pub struct LatencyRun {
    pub appended: usize,
    pub delivered: usize,
    /// Scaled back to real time, sorted ascending.
    pub latencies: Vec<Duration>,
}

impl LatencyRun {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

pub async fn run(plan: &LatencyPlan) -> LatencyRun {
    let sim = Simulator::start(sim_config(0, None))
        .await
        .expect("the simulator starts on loopback");
    let sink = Arc::new(TimingSink::default());
    let rig = Rig::over(sim, sink.clone(), settings(ClientOptions::default()));
    let budget = plan.period * 5;
    // The first poll sets the cursor; everything after it is new.
    rig.poll_within(budget).await;

    let persisted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let per_tick = (f64::from(plan.events_per_sec) * APPEND_EVERY.as_secs_f64()).round() as usize;
    let appender = tokio::spawn({
        let (sim, persisted) = (rig.sim.clone(), persisted.clone());
        async move {
            let mut tick = tokio::time::interval(APPEND_EVERY);
            loop {
                tick.tick().await;
                let ids = sim.append_events(per_tick);
                let at = Instant::now();
                persisted
                    .lock()
                    .unwrap()
                    .extend(ids.into_iter().map(|id| (id, at)));
            }
        }
    });
    let mut schedule = tokio::time::interval(plan.period);
    schedule.set_missed_tick_behavior(MissedTickBehavior::Delay);
    schedule.tick().await;
    for _ in 0..plan.polls {
        schedule.tick().await;
        rig.poll_within(budget).await;
    }
    appender.abort();
    // Collect what the last scheduled poll left, as the next scheduled poll would.
    schedule.tick().await;
    rig.poll_within(budget).await;

    let persisted = std::mem::take(&mut *persisted.lock().unwrap());
    let mut latencies: Vec<Duration> = persisted
        .iter()
        .filter_map(|(id, at)| Some(sink.acknowledged_at(id)?.saturating_duration_since(*at)))
        .map(|d| d * plan.scale)
        .collect();
    latencies.sort_unstable();
    rig.shutdown().await;
    LatencyRun {
        appended: persisted.len(),
        delivered: latencies.len(),
        latencies,
    }
}
