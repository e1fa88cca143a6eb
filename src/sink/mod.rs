//! Where normalized events go: Kinesis in production, NDJSON files locally, memory in tests.

pub mod dead_letters;
pub mod file;
pub mod kinesis;
pub mod limits;
/// The in-memory twin: test support, so never in the Lambda artifact.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;

use async_trait::async_trait;
use tokio::time::Instant;

/// One record for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The Okta uuid, so errors can name the event.
    pub event_id: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Calls made to the backing service.
    pub calls: u32,
    /// Records sent again after a partial failure or throttling.
    pub retried_records: u32,
    /// Records the stream refused for good, kept as dead letters instead.
    pub dead_lettered: u32,
}

/// A record the stream refused for good: sending it again cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub record: Record,
    /// What the stream objected to, naming the limit or the error code.
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Every record was acknowledged except these, which were never written. Delivery is not
    /// complete: the caller keeps them elsewhere (dead letters) before moving its cursor.
    #[error("{} of the records were refused by the stream for good (first: event {}: {})",
        refused.len(),
        refused.first().map_or("-", |r| r.record.event_id.as_str()),
        refused.first().map_or("-", |r| r.reason.as_str()))]
    Refused {
        refused: Vec<Refusal>,
        stats: PublishStats,
    },
    #[error("{unacknowledged} records were not acknowledged before the time budget ran out (last error: {last_error})")]
    Incomplete {
        unacknowledged: usize,
        last_error: String,
    },
    #[error("event sink failed: {0}")]
    Service(String),
}

/// Publishes records. `Ok` means every record was acknowledged; anything less is an error and
/// the caller must not move its cursor (after [`SinkError::Refused`], only once the refused
/// records are kept elsewhere).
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError>;
}

#[async_trait]
impl<T: EventSink + ?Sized> EventSink for std::sync::Arc<T> {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        (**self).publish(records, deadline).await
    }
}

/// Publishing with a deadline already past sends nothing and reports every record
/// unacknowledged; each sink's test then checks that nothing reached its backing store.
#[cfg(test)]
pub(crate) async fn assert_expired_deadline_is_incomplete(
    sink: &impl EventSink,
    records: &[Record],
) {
    let err = sink.publish(records, Instant::now()).await.unwrap_err();
    assert!(
        matches!(err, SinkError::Incomplete { unacknowledged, .. } if unacknowledged == records.len()),
        "{err}"
    );
}
