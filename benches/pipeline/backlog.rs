//! Draining a large backlog end to end: throughput, requests per event and memory, all from the
//! same run. Each size runs in a child process so its peak RSS is its own.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use okta_ingest::okta::ClientOptions;
use okta_ingest::testkit::rig::SSWS_TOKEN;
use okta_sim::Simulator;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::procfs::{cpu_secs, reset_peak_rss, status_kib};
use crate::rig::{settings, sim_config, Rig};
use crate::sinks::CountingSink;

/// The argument that makes the bench binary a backlog child.
pub const CHILD_FLAG: &str = "--backlog-child";
const LINE_PREFIX: &str = "BACKLOG ";
/// A drain that needs more polls than this to catch up is reported as it stands.
const MAX_POLLS: usize = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct BacklogRun {
    pub events: usize,
    pub secs: f64,
    pub cpu_secs: f64,
    pub fetched: u64,
    pub published: u64,
    pub published_bytes: u64,
    pub okta_requests: u64,
    pub okta_throttled: u64,
    pub caught_up: bool,
    /// RSS once the simulator holds the backlog, before draining: the simulator's footprint.
    pub rss_before_kib: u64,
    /// Peak RSS of the whole process (simulator + connector) at the end of the drain.
    pub hwm_after_kib: u64,
    /// The baseline on the same pages: the same backlog served by a fresh simulator to a client
    /// that only follows the next links and drops the bodies.
    pub baseline_secs: f64,
    pub baseline_events: u64,
}

impl BacklogRun {
    /// What the drain itself added on top of the simulator's footprint.
    pub fn growth_kib(&self) -> u64 {
        self.hwm_after_kib.saturating_sub(self.rss_before_kib)
    }
}

/// Runs in the child: build the backlog, drain it with a counting sink, measure.
pub async fn drain_backlog(events: usize) -> BacklogRun {
    let sim = Simulator::start(sim_config(events, None))
        .await
        .expect("the simulator starts on loopback");
    // Building the backlog has a transient peak of its own that grows with the backlog; reset
    // the high-water mark so VmHWM after the drain is the drain's peak alone.
    reset_peak_rss();
    let rss_before_kib = status_kib("VmRSS");
    let sink = Arc::new(CountingSink::default());
    let rig = Rig::over(sim, sink.clone(), settings(ClientOptions::default()));
    let cpu_before = cpu_secs();
    let started = Instant::now();
    let (mut fetched, mut caught_up, mut summary) = (0, false, None);
    for _ in 0..MAX_POLLS {
        let s = rig.poll_within(Duration::from_secs(900)).await;
        let drain = s.drain.as_ref();
        fetched += drain.map_or(0, |d| d.fetched);
        caught_up = drain.is_some_and(|d| d.caught_up);
        summary = Some(s);
        if caught_up {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    let summary = summary.expect("at least one poll ran");
    let run = BacklogRun {
        events,
        secs,
        cpu_secs: cpu,
        fetched,
        published: sink.records(),
        published_bytes: sink.bytes(),
        okta_requests: summary.okta_requests,
        okta_throttled: summary.okta_throttled,
        caught_up,
        rss_before_kib,
        hwm_after_kib: status_kib("VmHWM"),
        baseline_secs: 0.0,
        baseline_events: 0,
    };
    rig.shutdown().await;
    let (baseline_events, baseline_secs) = fetch_only(events).await;
    BacklogRun {
        baseline_events,
        baseline_secs,
        ..run
    }
}

/// Serves the same backlog (same seed, same pages) to a no-op client: GET each page with the
/// connector's first query and page size, follow `next`, count the events, keep nothing.
async fn fetch_only(events: usize) -> (u64, f64) {
    let sim = Simulator::start(sim_config(events, None))
        .await
        .expect("the simulator starts on loopback");
    let client = reqwest::Client::new();
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(15);
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a timestamp formats");
    let mut url = url::Url::parse(&format!("{}/api/v1/logs", sim.base_url())).expect("a URL");
    url.query_pairs_mut()
        .append_pair("since", &since)
        .append_pair("sortOrder", "ASCENDING")
        .append_pair("limit", "1000");
    let mut url = url.to_string();
    let started = Instant::now();
    let mut fetched = 0u64;
    loop {
        let response = client
            .get(&url)
            .header("Authorization", format!("SSWS {SSWS_TOKEN}"))
            .send()
            .await
            .expect("the simulator answers");
        let next = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("rel=\"next\""))
            .and_then(|v| Some(v[v.find('<')? + 1..v.find('>')?].to_owned()));
        let body = response.bytes().await.expect("a page body");
        // Okta pages are JSON arrays of objects, one `"uuid"` each: counting them is all the
        // baseline does with the body.
        let page = body.windows(7).filter(|w| w == b"\"uuid\":").count() as u64;
        fetched += page;
        match next {
            Some(next) if page == 1000 => url = next,
            _ => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    sim.shutdown().await;
    (fetched, secs)
}

pub fn print_for_parent(run: &BacklogRun) {
    println!(
        "{LINE_PREFIX}{}",
        serde_json::to_string(run).expect("plain numbers serialize")
    );
}

/// Runs one backlog size in a fresh copy of this binary.
pub fn run_in_child(events: usize) -> Result<BacklogRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating the bench binary: {e}"))?;
    let output = Command::new(exe)
        .args([CHILD_FLAG, &events.to_string()])
        .output()
        .map_err(|e| format!("starting the backlog child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(LINE_PREFIX))
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| {
            format!(
                "the backlog child ({events} events) reported nothing ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })
}
