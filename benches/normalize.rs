//! Normalizer throughput: parse raw JSON + classify + normalize + serialize, one core, as TOTAL
//! events and as OCSF records.
//! Corpus: the Okta fixtures that publish, varied across users, IPs and ids.
//! Run: `cargo bench --bench normalize -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Bencher, Criterion, Throughput};
use okta_ingest::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};
use okta_ingest::okta::model::LogEvent;
use serde_json::Value;
use time::OffsetDateTime;

const CORPUS_SIZE: usize = 5_000;

fn normalizer() -> Normalizer {
    Normalizer::new(NormalizerConfig {
        org: "acme.okta.com".to_owned(),
        connector_id: "okta-prod-1".to_owned(),
        policy: CatalogPolicy::Catalog,
        include_raw: false,
    })
}

/// Compact single-line events, as Okta sends them.
fn corpus(normalizer: &Normalizer, now: OffsetDateTime) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta");
    let mut templates: Vec<Value> = std::fs::read_dir(dir)
        .expect("tests/fixtures/okta exists")
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .filter(|raw| normalizer.normalize(raw, now).is_ok())
        .map(|raw| serde_json::from_str(&raw).unwrap())
        .collect();
    templates.sort_by_key(|t| t["uuid"].as_str().map(str::to_owned));
    (0..CORPUS_SIZE)
        .map(|i| {
            let mut event = templates[i % templates.len()].clone();
            let user = i % 257;
            event["uuid"] = format!("9b1d{i:04x}-8c1d-11ef-9a3b-0242ac120002").into();
            event["published"] = format!(
                "2024-05-01T{:02}:{:02}:{:02}.{:03}Z",
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60,
                i % 1000
            )
            .into();
            if event["actor"]["type"] == "User" {
                event["actor"]["id"] = format!("00u{user:017}").into();
                event["actor"]["alternateId"] = format!("user{user}@acme.example").into();
            }
            if event["client"].is_object() {
                event["client"]["ipAddress"] = format!("198.51.{}.{}", i % 251, user % 251).into();
            }
            event.to_string()
        })
        .collect()
}

/// Times `write` of every corpus event into one buffer, cleared and reused for each.
fn write_each<T, E>(
    b: &mut Bencher,
    corpus: &[String],
    write: impl Fn(&str, &mut Vec<u8>) -> Result<T, E>,
) {
    let mut out = Vec::with_capacity(4096);
    b.iter(|| {
        for raw in corpus {
            out.clear();
            black_box(write(black_box(raw), &mut out).ok());
        }
    })
}

fn bench_normalize(c: &mut Criterion) {
    let normalizer = normalizer();
    let now = OffsetDateTime::now_utc();
    let corpus = corpus(&normalizer, now);
    let bytes: usize = corpus.iter().map(String::len).sum();
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("events", |b| {
        b.iter(|| {
            for raw in &corpus {
                black_box(normalizer.normalize(black_box(raw), now).ok());
            }
        })
    });
    // The same events as OCSF 1.8.0 records (docs/ocsf.md): parse, normalize, map, serialize.
    group.bench_function("ocsf_events", |b| {
        write_each(b, &corpus, |raw, out| {
            normalizer.normalize_ocsf_into(raw, now, out)
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("input_bytes", |b| {
        write_each(b, &corpus, |raw, out| {
            normalizer.normalize_into(raw, now, out)
        })
    });
    group.finish();

    // Where the time goes: parsing alone, then parse + classify + map without serializing.
    let mut stages = c.benchmark_group("normalize_stages");
    stages.throughput(Throughput::Elements(corpus.len() as u64));
    stages.bench_function("parse", |b| {
        b.iter(|| {
            for raw in &corpus {
                black_box(serde_json::from_str::<LogEvent>(black_box(raw)).ok());
            }
        })
    });
    stages.bench_function("to_event", |b| {
        b.iter(|| {
            for raw in &corpus {
                black_box(normalizer.to_event(black_box(raw), now).ok());
            }
        })
    });
    stages.finish();
}

criterion_group!(benches, bench_normalize);
criterion_main!(benches);
