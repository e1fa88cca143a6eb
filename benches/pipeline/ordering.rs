//! What keeping each person's order costs the Kinesis sink: a PutRecords call holds at most
//! one record per partition key, so a page takes as many calls as its busiest person has
//! records. Counts the calls the sink makes for the simulator's pages, against the calls the
//! Kinesis limits alone would need, and models the publish time at a fixed latency per call.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use okta_ingest::normalize::CatalogPolicy;
use okta_ingest::sink::kinesis::{CallFailure, EntryRejection, KinesisSink, PutRecordsApi};
use okta_ingest::sink::limits::MAX_RECORDS_PER_CALL;
use okta_ingest::sink::{EventSink, Record};
use okta_ingest::testkit::fixtures::fixtures_normalizer;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::normalizer::sim_corpus;

const EVENTS: usize = 20_000;
const PAGE: usize = 1000;
/// A typical in-region PutRecords round trip.
pub const CALL_LATENCY: Duration = Duration::from_millis(20);

pub struct OrderingRun {
    pub pages: usize,
    pub calls: u64,
    /// Calls the 500-record limit alone needs for the same pages.
    pub calls_unordered: u64,
    pub max_calls_per_page: u32,
}

/// Acknowledges everything at once, counting calls.
#[derive(Default)]
struct CountingKinesis {
    calls: AtomicU32,
}

#[async_trait]
impl PutRecordsApi for &CountingKinesis {
    async fn put_records(
        &self,
        _stream: &str,
        records: &[&Record],
    ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(vec![None; records.len()])
    }
}

pub async fn run() -> OrderingRun {
    let events = sim_corpus(EVENTS).await;
    let normalizer = fixtures_normalizer(CatalogPolicy::Catalog, false);
    let now = OffsetDateTime::now_utc();
    let mut run = OrderingRun {
        pages: 0,
        calls: 0,
        calls_unordered: 0,
        max_calls_per_page: 0,
    };
    for page in events.chunks(PAGE) {
        let records: Vec<Record> = page
            .iter()
            .filter_map(|raw| normalizer.normalize(raw, now).ok())
            .map(|n| Record {
                event_id: n.event_id,
                partition_key: n.partition_key,
                data: n.json,
            })
            .collect();
        let api = CountingKinesis::default();
        KinesisSink::with_api(&api, "bench".into())
            .publish(&records, Instant::now() + Duration::from_secs(60))
            .await
            .expect("the counting Kinesis acknowledges everything");
        let calls = api.calls.load(Ordering::Relaxed);
        run.pages += 1;
        run.calls += u64::from(calls);
        run.calls_unordered += records.len().div_ceil(MAX_RECORDS_PER_CALL) as u64;
        run.max_calls_per_page = run.max_calls_per_page.max(calls);
    }
    run
}
