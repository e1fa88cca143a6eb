//! Sinks for measuring: one counts and drops (memory stays flat whatever the backlog), one
//! remembers when each event was first acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use okta_ingest::sink::{EventSink, PublishStats, Record, SinkError};
use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct CountingSink {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl CountingSink {
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventSink for CountingSink {
    async fn publish(
        &self,
        records: &[Record],
        _deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        self.records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(PublishStats {
            calls: 1,
            retried_records: 0,
            dead_lettered: 0,
        })
    }
}

#[derive(Debug, Default)]
pub struct TimingSink {
    first_ack: Mutex<HashMap<String, Instant>>,
}

impl TimingSink {
    pub fn acknowledged_at(&self, event_id: &str) -> Option<Instant> {
        self.first_ack.lock().unwrap().get(event_id).copied()
    }
}

#[async_trait]
impl EventSink for TimingSink {
    async fn publish(
        &self,
        records: &[Record],
        _deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let now = Instant::now();
        let mut first_ack = self.first_ack.lock().unwrap();
        for record in records {
            first_ack.entry(record.event_id.clone()).or_insert(now);
        }
        Ok(PublishStats {
            calls: 1,
            retried_records: 0,
            dead_lettered: 0,
        })
    }
}
