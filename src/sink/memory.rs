//! In-memory event sink for tests: keeps every acknowledged record, and injects the sink
//! failures the drain must survive (a publish dying part way, partial rejections, outages).

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{EventSink, PublishStats, Record, SinkError};

#[derive(Debug, Default)]
struct State {
    records: Vec<Record>,
    /// Records still acknowledged before the injected mid-publish failure.
    fail_after: Option<usize>,
    /// Records rejected once (and accepted on the retry), as in a Kinesis partial failure.
    reject_once: usize,
    /// Publishes that fail before acknowledging anything.
    fail_calls: u32,
}

#[derive(Debug, Default)]
pub struct MemorySink {
    state: Mutex<State>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every acknowledged record, in acknowledgement order (duplicates included).
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// After `k` more records are acknowledged, the publish in progress fails: the records
    /// before the failure stay delivered, the rest are not. One-shot.
    pub fn fail_after(&self, k: usize) {
        self.lock().fail_after = Some(k);
    }

    /// The next `n` records are rejected once and then accepted on a retry, so they arrive after
    /// the later records of other people that were accepted at once, but before the same
    /// person's later records (as with the Kinesis sink).
    pub fn reject_once(&self, n: usize) {
        self.lock().reject_once += n;
    }

    /// The next `n` publishes fail before acknowledging anything.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_calls += n;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventSink for MemorySink {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        if Instant::now() >= deadline {
            return Err(SinkError::Incomplete {
                unacknowledged: records.len(),
                last_error: "the time budget ran out before the records were sent".into(),
            });
        }
        let mut state = self.lock();
        if state.fail_calls > 0 {
            state.fail_calls -= 1;
            return Err(SinkError::Service(
                "injected fault: the sink is unavailable".into(),
            ));
        }
        let rejected = state.reject_once.min(records.len());
        state.reject_once -= rejected;
        let order = retry_order(records, rejected);
        let mut stats = PublishStats {
            calls: 1,
            retried_records: 0,
            dead_lettered: 0,
        };
        if rejected > 0 {
            stats.calls += 1;
            stats.retried_records = u32::try_from(rejected).unwrap_or(u32::MAX);
        }
        for (delivered, record) in order.into_iter().enumerate() {
            if let Some(budget) = state.fail_after {
                if budget == 0 {
                    state.fail_after = None;
                    return Err(SinkError::Service(format!(
                        "injected fault: publish failed after {delivered} of {} records",
                        records.len()
                    )));
                }
                state.fail_after = Some(budget - 1);
            }
            state.records.push(record.clone());
        }
        Ok(stats)
    }
}

/// The order in which records arrive when the first `rejected` are refused once: first the
/// records of people without a refused record, then the refused ones, then the rest.
fn retry_order(records: &[Record], rejected: usize) -> Vec<&Record> {
    let (retried, first_try) = records.split_at(rejected);
    let waiting: HashSet<&str> = retried.iter().map(|r| r.partition_key.as_str()).collect();
    let (held, accepted): (Vec<&Record>, Vec<&Record>) = first_try
        .iter()
        .partition(|r| waiting.contains(r.partition_key.as_str()));
    accepted.into_iter().chain(retried).chain(held).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Records of one person each, keyed by the id's first letter.
    fn records(ids: &[&str]) -> Vec<Record> {
        ids.iter()
            .map(|id| Record {
                event_id: (*id).into(),
                partition_key: format!("00u{}", &id[..1]),
                data: format!("{{\"id\":\"{id}\"}}\n").into_bytes(),
            })
            .collect()
    }

    fn ids(sink: &MemorySink) -> Vec<String> {
        sink.records().into_iter().map(|r| r.event_id).collect()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn acknowledged_records_are_kept_in_order() {
        let sink = MemorySink::new();
        let stats = sink.publish(&records(&["a", "b"]), soon()).await.unwrap();
        sink.publish(&records(&["c"]), soon()).await.unwrap();
        assert_eq!(ids(&sink), ["a", "b", "c"]);
        assert_eq!(
            stats,
            PublishStats {
                calls: 1,
                retried_records: 0,
                dead_lettered: 0,
            }
        );
    }

    #[tokio::test]
    async fn fail_after_k_keeps_the_first_k_and_fails_the_publish() {
        let sink = MemorySink::new();
        sink.fail_after(3);
        sink.publish(&records(&["a", "b"]), soon()).await.unwrap();
        let err = sink
            .publish(&records(&["c", "d", "e"]), soon())
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Service(_)));
        assert_eq!(ids(&sink), ["a", "b", "c"]);
        sink.publish(&records(&["d", "e"]), soon()).await.unwrap();
        assert_eq!(
            ids(&sink),
            ["a", "b", "c", "d", "e"],
            "the fault is one-shot"
        );
    }

    #[tokio::test]
    async fn a_rejected_record_arrives_before_the_same_persons_next_one() {
        let sink = MemorySink::new();
        sink.reject_once(1);
        sink.publish(&records(&["a1", "b1", "a2", "c1"]), soon())
            .await
            .unwrap();
        assert_eq!(ids(&sink), ["b1", "c1", "a1", "a2"]);
    }

    #[tokio::test]
    async fn rejected_records_arrive_after_the_accepted_ones() {
        let sink = MemorySink::new();
        sink.reject_once(1);
        let stats = sink
            .publish(&records(&["a", "b", "c"]), soon())
            .await
            .unwrap();
        assert_eq!(ids(&sink), ["b", "c", "a"]);
        assert_eq!(
            stats,
            PublishStats {
                calls: 2,
                retried_records: 1,
                dead_lettered: 0,
            }
        );
        sink.reject_once(2);
        sink.publish(&records(&["d", "e", "f"]), soon())
            .await
            .unwrap();
        assert_eq!(&ids(&sink)[3..], ["f", "d", "e"]);
    }

    #[tokio::test]
    async fn failed_calls_acknowledge_nothing() {
        let sink = MemorySink::new();
        sink.fail_next(2);
        for _ in 0..2 {
            assert!(sink.publish(&records(&["a"]), soon()).await.is_err());
        }
        assert!(sink.records().is_empty());
        sink.publish(&records(&["a"]), soon()).await.unwrap();
        assert_eq!(ids(&sink), ["a"]);
    }

    #[tokio::test]
    async fn expired_deadline_is_incomplete() {
        let sink = MemorySink::new();
        crate::sink::assert_expired_deadline_is_incomplete(&sink, &records(&["a", "b"])).await;
        assert!(sink.records().is_empty());
    }
}
