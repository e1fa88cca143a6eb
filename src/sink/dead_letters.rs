//! Keeps the records a stream refuses for good as dead letters, so one poison event does not
//! hold its connector's cursor back: the publish counts as delivered once every refused record
//! is kept. Without a dead-letter store a refusal still fails the publish, and the page waits.

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::{EventSink, PublishStats, Record, SinkError};
use crate::deadletter::{DeadLetter, DeadLetterStore, TargetStream};

/// Publishes through `sink`, the connector's `stream`.
pub struct DeadLettering<'a, K> {
    sink: &'a K,
    store: Option<&'a dyn DeadLetterStore>,
    connector_id: &'a str,
    stream: TargetStream,
}

impl<'a, K: EventSink> DeadLettering<'a, K> {
    pub fn new(
        sink: &'a K,
        store: Option<&'a dyn DeadLetterStore>,
        connector_id: &'a str,
        stream: TargetStream,
    ) -> Self {
        DeadLettering {
            sink,
            store,
            connector_id,
            stream,
        }
    }
}

#[async_trait]
impl<K: EventSink> EventSink for DeadLettering<'_, K> {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let (refused, mut stats) = match self.sink.publish(records, deadline).await {
            Err(SinkError::Refused { refused, stats }) => (refused, stats),
            other => return other,
        };
        let Some(store) = self.store else {
            return Err(SinkError::Refused { refused, stats });
        };
        let now = OffsetDateTime::now_utc();
        for refusal in &refused {
            let kept = match DeadLetter::new(
                self.connector_id,
                self.stream,
                &refusal.record,
                refusal.reason.clone(),
                now,
            ) {
                Ok(letter) => store.put(&letter, deadline).await,
                Err(err) => Err(err),
            };
            if let Err(err) = kept {
                return Err(SinkError::Service(format!(
                    "event {} was refused by the stream ({}) and could not be kept as a dead \
                     letter: {err}",
                    refusal.record.event_id, refusal.reason
                )));
            }
            tracing::warn!(
                connector_id = %self.connector_id,
                event_id = %refusal.record.event_id,
                reason = %refusal.reason,
                "event kept as a dead letter; the stream refused it"
            );
        }
        stats.dead_lettered = stats
            .dead_lettered
            .saturating_add(u32::try_from(refused.len()).unwrap_or(u32::MAX));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::memory::MemoryDeadLetters;
    use std::time::Duration;

    /// Acknowledges every record except those whose id starts with "poison".
    struct Picky;

    #[async_trait]
    impl EventSink for Picky {
        async fn publish(
            &self,
            records: &[Record],
            _deadline: Instant,
        ) -> Result<PublishStats, SinkError> {
            let refused: Vec<super::super::Refusal> = records
                .iter()
                .filter(|r| r.event_id.starts_with("poison"))
                .map(|r| super::super::Refusal {
                    record: r.clone(),
                    reason: "too big".into(),
                })
                .collect();
            let stats = PublishStats {
                calls: 1,
                ..PublishStats::default()
            };
            if refused.is_empty() {
                Ok(stats)
            } else {
                Err(SinkError::Refused { refused, stats })
            }
        }
    }

    fn batch() -> Vec<Record> {
        ["a", "poison-1", "b"]
            .iter()
            .map(|id| Record {
                event_id: (*id).into(),
                partition_key: "00u1".into(),
                data: format!("{{\"event_id\":\"{id}\"}}\n").into_bytes(),
            })
            .collect()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_refused_record_is_kept_whole_and_the_publish_succeeds() {
        let store = MemoryDeadLetters::new();
        let sink = DeadLettering::new(&Picky, Some(&store), "acme", TargetStream::Events);
        let records = batch();
        let stats = sink.publish(&records, soon()).await.unwrap();
        assert_eq!(stats.dead_lettered, 1);
        let letters = store.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].connector_id, "acme");
        assert_eq!(letters[0].to_record(), records[1]);
    }

    #[tokio::test]
    async fn without_a_store_or_when_it_fails_the_publish_fails() {
        let records = batch();
        let bare = DeadLettering::new(&Picky, None, "acme", TargetStream::Events);
        assert!(matches!(
            bare.publish(&records, soon()).await,
            Err(SinkError::Refused { .. })
        ));
        let store = MemoryDeadLetters::new();
        store.fail_next_puts(1);
        let sink = DeadLettering::new(&Picky, Some(&store), "acme", TargetStream::Events);
        let err = sink.publish(&records, soon()).await.unwrap_err();
        assert!(err.to_string().contains("poison-1"), "{err}");
        assert!(store.letters().is_empty());
    }
}
