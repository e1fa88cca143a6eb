//! Normalizer throughput on one core over the simulator's mixed event corpus (every kind of
//! event it generates, including the ones the catalog excludes).

use std::time::{Duration, Instant};

use okta_ingest::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};
use okta_sim::Simulator;
use time::OffsetDateTime;

use crate::rig::sim_config;

const CORPUS_EVENTS: usize = 5_000;
const MEASURE_FOR: Duration = Duration::from_secs(3);

pub struct NormalizerRun {
    pub events: u64,
    pub bytes: u64,
    pub normalized: u64,
    pub secs: f64,
}

/// Compact single-line events, as Okta sends them.
pub async fn corpus() -> Vec<String> {
    let sim = Simulator::start(sim_config(CORPUS_EVENTS, None))
        .await
        .expect("the simulator starts on loopback");
    let corpus = sim.events().iter().map(|e| e.to_string()).collect();
    sim.shutdown().await;
    corpus
}

/// Parse + classify + normalize + serialize, repeated over the corpus for a few seconds.
pub fn measure(corpus: &[String]) -> NormalizerRun {
    let normalizer = Normalizer::new(NormalizerConfig {
        org: "acme.okta.com".to_owned(),
        connector_id: "okta-prod-1".to_owned(),
        policy: CatalogPolicy::Catalog,
        include_raw: false,
    });
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::with_capacity(8192);
    let mut run = NormalizerRun {
        events: 0,
        bytes: 0,
        normalized: 0,
        secs: 0.0,
    };
    let started = Instant::now();
    while started.elapsed() < MEASURE_FOR {
        for raw in corpus {
            out.clear();
            let ok = normalizer.normalize_into(raw, now, &mut out).is_ok();
            run.normalized += u64::from(ok);
            run.bytes += raw.len() as u64;
        }
        run.events += corpus.len() as u64;
    }
    run.secs = started.elapsed().as_secs_f64();
    std::hint::black_box(&out);
    run
}

/// The baseline on the same bytes: a plain `serde_json` parse of each event into a `Value`,
/// repeated over the corpus for as long as [`measure`] runs.
pub fn parse_baseline(corpus: &[String]) -> NormalizerRun {
    let mut run = NormalizerRun {
        events: 0,
        bytes: 0,
        normalized: 0,
        secs: 0.0,
    };
    let started = Instant::now();
    while started.elapsed() < MEASURE_FOR {
        for raw in corpus {
            let value: serde_json::Value = serde_json::from_str(raw).expect("the corpus is JSON");
            std::hint::black_box(&value);
            run.bytes += raw.len() as u64;
        }
        run.events += corpus.len() as u64;
    }
    run.secs = started.elapsed().as_secs_f64();
    run
}
