//! Normalizer throughput on one core over the simulator's mixed event corpus (every kind of
//! event it generates, including the ones the catalog excludes).

use std::time::{Duration, Instant};

use okta_ingest::normalize::CatalogPolicy;
use okta_ingest::testkit::fixtures::fixtures_normalizer;
use okta_sim::Simulator;
use time::OffsetDateTime;

use crate::rig::sim_config;

const CORPUS_EVENTS: usize = 5_000;
const MEASURE_FOR: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct NormalizerRun {
    pub events: u64,
    pub bytes: u64,
    pub normalized: u64,
    pub secs: f64,
}

/// Compact single-line events, as Okta sends them.
pub async fn corpus() -> Vec<String> {
    sim_corpus(CORPUS_EVENTS).await
}

/// The simulator's first `events` events as compact single-line JSON.
pub async fn sim_corpus(events: usize) -> Vec<String> {
    let sim = Simulator::start(sim_config(events, None))
        .await
        .expect("the simulator starts on loopback");
    let corpus = sim.events().iter().map(|e| e.to_string()).collect();
    sim.shutdown().await;
    corpus
}

/// Runs `per_event` over the corpus, again and again for `MEASURE_FOR`; `per_event` says
/// whether it normalized the event.
fn repeat_over(corpus: &[String], mut per_event: impl FnMut(&str) -> bool) -> NormalizerRun {
    let mut run = NormalizerRun::default();
    let started = Instant::now();
    while started.elapsed() < MEASURE_FOR {
        for raw in corpus {
            run.normalized += u64::from(per_event(raw));
            run.bytes += raw.len() as u64;
        }
        run.events += corpus.len() as u64;
    }
    run.secs = started.elapsed().as_secs_f64();
    run
}

/// Parse + classify + normalize + serialize, repeated over the corpus for a few seconds.
pub fn measure(corpus: &[String]) -> NormalizerRun {
    let normalizer = fixtures_normalizer(CatalogPolicy::Catalog, false);
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::with_capacity(8192);
    let run = repeat_over(corpus, |raw| {
        out.clear();
        normalizer.normalize_into(raw, now, &mut out).is_ok()
    });
    std::hint::black_box(&out);
    run
}

/// The baseline on the same bytes: a plain `serde_json` parse of each event into a `Value`,
/// repeated over the corpus for as long as [`measure`] runs.
pub fn parse_baseline(corpus: &[String]) -> NormalizerRun {
    repeat_over(corpus, |raw| {
        let value: serde_json::Value = serde_json::from_str(raw).expect("the corpus is JSON");
        std::hint::black_box(&value);
        false
    })
}
