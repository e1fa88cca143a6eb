//! Delivery latency and what it costs, on the schedule the Lambda runs on, time-compressed.
//!
//! A scheduler starts an invocation (`Connector::handle` with a poll and the Lambda's
//! deadline) every schedule period, concurrently as Lambda would, while events are persisted at
//! a steady rate. With a tail interval, those invocations run the product's tail mode, lease
//! handover included. Every duration the product waits on is divided by `scale`: the schedule
//! period, the function timeout, the safety margin, the tail interval (the tail's own sleeps
//! run on the same clock, as they are plain tokio sleeps of that interval) and the takeover
//! horizon. Each latency (first acknowledgement by the sink − persistence) is multiplied back
//! by `scale`; so is the connector's real processing time, which makes the figures
//! pessimistic, never flattering.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use okta_ingest::actions::Outcome;
use okta_ingest::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};
use okta_ingest::okta::ClientOptions;
use okta_sim::{SimConfig, Simulator};
use tokio::time::{Instant, MissedTickBehavior};

use crate::rig::{settings, sim_config, Rig};
use crate::sinks::TimingSink;

/// How often new events are persisted within the compressed run.
const APPEND_EVERY: Duration = Duration::from_millis(20);

/// The production schedule and function, in real time.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub period: Duration,
    /// The function timeout (infra template `FunctionTimeout`).
    pub timeout: Duration,
    /// `SAFETY_MARGIN_SECONDS`.
    pub safety_margin: Duration,
}

#[derive(Clone, Copy)]
pub struct LatencyPlan {
    /// `None`: tail mode off.
    pub tail_interval: Option<Duration>,
    pub schedule: Schedule,
    /// Real seconds per compressed second.
    pub scale: u32,
    /// Scheduled invocations while events are persisted.
    pub ticks: u32,
    /// Events persisted per real second.
    pub events_per_sec: u32,
}

/// One invocation the scheduler started.
struct Invocation {
    started: Instant,
    ended: Option<Instant>,
    outcome: Option<Outcome>,
}

pub struct LatencyRun {
    pub appended: usize,
    pub delivered: usize,
    /// Scaled back to real time, sorted ascending.
    pub latencies: Vec<Duration>,
    pub invocations: usize,
    pub lease_held: usize,
    /// Lambda-billed seconds per second of the run: the sum of invocation durations over the
    /// run's span (both in compressed time).
    pub billed_per_sec: f64,
    /// Mean duration of an invocation, in the run's own (compressed) time.
    pub mean_invocation: Duration,
    pub okta_requests_per_min: f64,
}

impl LatencyRun {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

pub async fn run(plan: LatencyPlan) -> LatencyRun {
    let scale = plan.scale;
    // Catalog events only; the few the normalizer still excludes (no User to attribute them to)
    // are left out of the count below, so every counted event must reach the sink: one left
    // behind would be missing from the latencies instead of counting as the slowest.
    let config = SimConfig {
        system_event_ratio: 0.0,
        non_catalog_ratio: 0.0,
        ..sim_config(0, None)
    };
    let sim = Simulator::start(config)
        .await
        .expect("the simulator starts on loopback");
    let sink = Arc::new(TimingSink::default());
    let mut run_settings = settings(ClientOptions::default());
    run_settings.safety_margin = plan.schedule.safety_margin / scale;
    run_settings.tail_interval = plan.tail_interval.map(|interval| interval / scale);
    run_settings.takeover_horizon =
        okta_ingest::settings::RunSettings::default().takeover_horizon / scale;
    let rig = Arc::new(Rig::over(sim, sink.clone(), run_settings));

    let persisted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let per_tick =
        (f64::from(plan.events_per_sec * scale) * APPEND_EVERY.as_secs_f64()).round() as usize;
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

    let invocations: Arc<Mutex<Vec<Invocation>>> = Arc::default();
    let timeout = plan.schedule.timeout / scale;
    let mut schedule = tokio::time::interval(plan.schedule.period / scale);
    schedule.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = Vec::new();
    let mut invoke = || {
        let (rig, invocations) = (rig.clone(), invocations.clone());
        tasks.push(tokio::spawn(async move {
            let index = {
                let mut list = invocations.lock().unwrap();
                list.push(Invocation {
                    started: Instant::now(),
                    ended: None,
                    outcome: None,
                });
                list.len() - 1
            };
            let summary = rig.poll_within(timeout).await;
            let mut list = invocations.lock().unwrap();
            list[index].ended = Some(Instant::now());
            list[index].outcome = Some(summary.outcome);
        }));
    };
    let started = Instant::now();
    for _ in 0..plan.ticks {
        schedule.tick().await;
        invoke();
    }
    schedule.tick().await;
    appender.abort();
    // What the run persisted last is collected as it would be: by the tail's next rounds, or
    // by the next scheduled poll; the schedule keeps running meanwhile.
    let settle_until = Instant::now()
        + plan
            .tail_interval
            .map_or(plan.schedule.period / 2, |interval| interval * 2)
            / scale;
    invoke();
    loop {
        tokio::select! {
            _ = schedule.tick() => invoke(),
            _ = tokio::time::sleep_until(settle_until) => break,
        }
    }
    let ended = Instant::now();
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    let span = ended.duration_since(started);
    let okta_requests = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/logs")
        .count();

    // Normalizing every event is seconds of CPU: off the runtime's threads, so the runs still
    // going beside this one (the plans run concurrently) keep their timers.
    let events = rig.sim.events();
    let publishable = tokio::task::spawn_blocking(move || publishable_ids(&events))
        .await
        .expect("the publishable ids are computed");
    let persisted: Vec<(String, Instant)> = std::mem::take(&mut *persisted.lock().unwrap())
        .into_iter()
        .filter(|(id, _)| publishable.contains(id))
        .collect();
    let appended = persisted.len();
    let mut latencies: Vec<Duration> = persisted
        .iter()
        .filter_map(|(id, at)| Some(sink.acknowledged_at(id)?.saturating_duration_since(*at)))
        .map(|d| d * scale)
        .collect();
    latencies.sort_unstable();

    let invocations = std::mem::take(&mut *invocations.lock().unwrap());
    let billed: Duration = invocations
        .iter()
        .map(|i| {
            i.ended
                .unwrap_or(ended)
                .min(ended)
                .duration_since(i.started)
        })
        .sum();
    let lease_held = invocations
        .iter()
        .filter(|i| i.outcome == Some(Outcome::LeaseHeld))
        .count();
    if let Ok(rig) = Arc::try_unwrap(rig) {
        rig.shutdown().await;
    }
    LatencyRun {
        appended,
        delivered: latencies.len(),
        latencies,
        invocations: invocations.len(),
        lease_held,
        billed_per_sec: billed.as_secs_f64() / span.as_secs_f64(),
        mean_invocation: billed / (invocations.len().max(1) as u32),
        okta_requests_per_min: okta_requests as f64
            / (span.as_secs_f64() * f64::from(scale) / 60.0),
    }
}

/// The ids of the events the connector publishes (the normalizer's verdict, as in the drain).
fn publishable_ids(events: &[serde_json::Value]) -> std::collections::HashSet<String> {
    let normalizer = Normalizer::new(NormalizerConfig {
        org: "latency.okta.example".into(),
        connector_id: "latency".into(),
        policy: CatalogPolicy::Catalog,
        include_raw: false,
    });
    let now = time::OffsetDateTime::now_utc();
    events
        .iter()
        .filter(|event| normalizer.normalize(&event.to_string(), now).is_ok())
        .filter_map(|event| event["uuid"].as_str().map(str::to_owned))
        .collect()
}
