//! Publishes records to a Kinesis data stream with PutRecords.
//!
//! Records are packed into calls within the Kinesis limits, never two of one partition key in
//! a call ([`plan`]), and calls are made one after the other: a call's records are all
//! acknowledged ([`retry`]) before the next call starts. So a person's records reach their
//! shard in the order they were published, also when Kinesis rejects some of them and they
//! are sent again. The SDK client sits behind the narrow [`PutRecordsApi`] port ([`adapter`]).

mod adapter;
#[cfg(any(test, feature = "testkit"))]
pub mod faults;
mod plan;
mod retry;

#[cfg(test)]
mod fake;

use std::time::Duration;

use async_trait::async_trait;
use backon::ExponentialBuilder;
use tokio::time::Instant;

use super::{EventSink, PublishStats, Record, SinkError};

pub use adapter::{client, CallFailure, EntryRejection, PutRecordsApi};
pub use plan::{plan_calls, Plan};
pub use retry::{is_retryable_code, remedy, Remedy};

/// Publishes to one Kinesis stream.
pub struct KinesisSink<A = aws_sdk_kinesis::Client> {
    api: A,
    stream: String,
    backoff: ExponentialBuilder,
}

impl KinesisSink<aws_sdk_kinesis::Client> {
    pub fn new(client: aws_sdk_kinesis::Client, stream_name: String) -> Self {
        KinesisSink::with_api(client, stream_name)
    }
}

impl<A: PutRecordsApi> KinesisSink<A> {
    /// A sink over any [`PutRecordsApi`], with the default retry schedule
    /// (50 ms doubling to at most 2 s, with jitter, until the deadline).
    pub fn with_api(api: A, stream_name: String) -> Self {
        KinesisSink {
            api,
            stream: stream_name,
            backoff: ExponentialBuilder::new()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(2))
                .with_jitter()
                .with_jitter_seed(rand::random())
                .without_max_times(),
        }
    }

    /// Replaces the delay schedule between retries; the deadline still bounds it.
    pub fn with_backoff(mut self, backoff: ExponentialBuilder) -> Self {
        self.backoff = backoff.without_max_times();
        self
    }
}

#[async_trait]
impl<A: PutRecordsApi> EventSink for KinesisSink<A> {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let plan = plan_calls(records);
        let calls = plan.calls;
        let mut refused = plan.refused;
        let mut stats = PublishStats::default();
        for (index, call) in calls.iter().enumerate() {
            if Instant::now() >= deadline {
                return Err(SinkError::Incomplete {
                    unacknowledged: calls[index..].iter().map(Vec::len).sum(),
                    last_error: "the time budget ran out before the records were sent".into(),
                });
            }
            if let Err(err) = self.deliver(call, deadline, &mut stats, &mut refused).await {
                return Err(match err {
                    SinkError::Incomplete {
                        unacknowledged,
                        last_error,
                    } => SinkError::Incomplete {
                        unacknowledged: unacknowledged
                            + calls[index + 1..].iter().map(Vec::len).sum::<usize>(),
                        last_error,
                    },
                    other => other,
                });
            }
        }
        if refused.is_empty() {
            Ok(stats)
        } else {
            Err(SinkError::Refused { refused, stats })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{record, records, reject, sink, soon, Answer, FakeKinesis};
    use super::*;
    use crate::sink::limits::MAX_RECORD_BYTES;

    /// The stats of a publish that kept nothing as a dead letter.
    fn sent(calls: u32, retried_records: u32) -> PublishStats {
        PublishStats {
            calls,
            retried_records,
            dead_lettered: 0,
        }
    }

    #[tokio::test]
    async fn calls_hold_at_most_500_records() {
        let fake = FakeKinesis::default();
        let stats = sink(&fake).publish(&records(1201), soon()).await.unwrap();
        let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 201]);
        assert_eq!(stats, sent(3, 0));
    }

    #[tokio::test]
    async fn calls_hold_at_most_5_mib() {
        let fake = FakeKinesis::default();
        let big: Vec<Record> = (0..7).map(|n| record(n, 1_000_000)).collect();
        sink(&fake).publish(&big, soon()).await.unwrap();
        let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![5, 2]);
    }

    #[tokio::test]
    async fn an_oversize_record_is_refused_and_the_others_are_published() {
        let fake = FakeKinesis::default();
        let mut batch = records(3);
        batch.insert(1, record(99, MAX_RECORD_BYTES));
        let err = sink(&fake).publish(&batch, soon()).await.unwrap_err();
        let SinkError::Refused { refused, stats } = err else {
            panic!("expected Refused, got {err}");
        };
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].record, batch[1], "kept whole");
        assert!(
            refused[0].reason.contains("record limit"),
            "{}",
            refused[0].reason
        );
        assert_eq!(fake.calls(), [vec!["e0", "e1", "e2"]], "never sent");
        assert_eq!(stats.calls, 1);
    }

    #[tokio::test]
    async fn a_record_kinesis_rejects_for_good_is_refused_once_and_the_rest_delivered() {
        let fake = FakeKinesis::default().then(reject(&["e1"], "ValidationException"));
        let err = sink(&fake).publish(&records(3), soon()).await.unwrap_err();
        let SinkError::Refused { refused, .. } = err else {
            panic!("expected Refused, got {err}");
        };
        assert_eq!(refused[0].record.event_id, "e1");
        assert!(refused[0].reason.contains("ValidationException"));
        assert_eq!(fake.calls().len(), 1, "not sent again");
    }

    #[tokio::test]
    async fn empty_partition_key_is_refused_naming_the_event() {
        let fake = FakeKinesis::default();
        let mut bad = record(5, 10);
        bad.partition_key.clear();
        let err = sink(&fake).publish(&[bad], soon()).await.unwrap_err();
        assert!(err.to_string().contains("e5"), "{err}");
        assert!(matches!(err, SinkError::Refused { .. }), "{err}");
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn partial_failure_resends_only_the_rejected_entries_in_order() {
        let fake = FakeKinesis::default().then(reject(
            &["e7", "e3"],
            "ProvisionedThroughputExceededException",
        ));
        let stats = sink(&fake).publish(&records(501), soon()).await.unwrap();
        let calls = fake.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].len(), 500);
        assert_eq!(
            calls[1],
            vec!["e3", "e7"],
            "only the rejected, in original order"
        );
        assert_eq!(
            calls[2],
            vec!["e500"],
            "the next call waits for the previous one"
        );
        assert_eq!(stats, sent(3, 2));
    }

    #[tokio::test]
    async fn internal_failure_and_kms_throttling_are_retried() {
        let fake = FakeKinesis::default()
            .then(reject(&["e1"], "InternalFailure"))
            .then(reject(&["e1"], "KMSThrottlingException"));
        let stats = sink(&fake).publish(&records(3), soon()).await.unwrap();
        assert_eq!(stats, sent(3, 2));
    }

    #[tokio::test]
    async fn unknown_entry_error_fails_naming_the_event() {
        let fake = FakeKinesis::default().then(reject(&["e2"], "KMSAccessDeniedException"));
        let err = sink(&fake).publish(&records(3), soon()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("e2") && text.contains("KMSAccessDeniedException"),
            "{text}"
        );
        assert_eq!(fake.calls().len(), 1);
    }

    #[tokio::test]
    async fn throttled_call_is_sent_again_whole() {
        let fake = FakeKinesis::default().then(Answer::Fail(CallFailure {
            retryable: true,
            message: "ProvisionedThroughputExceededException".into(),
        }));
        let stats = sink(&fake).publish(&records(4), soon()).await.unwrap();
        let calls = fake.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], calls[1]);
        assert_eq!(stats, sent(2, 4));
    }

    #[tokio::test]
    async fn permanent_call_error_is_not_retried() {
        let fake = FakeKinesis::default().then(Answer::Fail(CallFailure {
            retryable: false,
            message: "ResourceNotFoundException: stream events not found".into(),
        }));
        let err = sink(&fake).publish(&records(4), soon()).await.unwrap_err();
        assert!(matches!(err, SinkError::Service(_)), "{err}");
        assert_eq!(fake.calls().len(), 1);
    }

    #[tokio::test]
    async fn deadline_ends_retries_with_the_unacknowledged_count() {
        let fake = FakeKinesis {
            always_reject: vec!["e1".into()],
            ..FakeKinesis::default()
        };
        let deadline = Instant::now() + Duration::from_millis(100);
        let err = sink(&fake)
            .publish(&records(501), deadline)
            .await
            .unwrap_err();
        match err {
            SinkError::Incomplete {
                unacknowledged,
                last_error,
            } => {
                assert_eq!(unacknowledged, 2, "e1 plus the call never sent");
                assert!(last_error.contains("ProvisionedThroughputExceededException"));
            }
            other => panic!("expected Incomplete, got {other}"),
        }
        assert!(Instant::now() <= deadline + Duration::from_millis(50));
        assert!(
            fake.calls().len() > 2,
            "it kept retrying until the deadline"
        );
    }

    #[tokio::test]
    async fn expired_deadline_sends_nothing() {
        let fake = FakeKinesis::default();
        crate::sink::assert_expired_deadline_is_incomplete(&sink(&fake), &records(2)).await;
        assert!(fake.calls().is_empty());
    }
}
