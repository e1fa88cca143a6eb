//! Sends one call's records until Kinesis has acknowledged all of them: only the rejected
//! entries go again, in their original order, with capped exponential backoff and jitter,
//! until the deadline. Also the one place that decides what is worth retrying.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::BackoffBuilder;
use tokio::time::Instant;

use super::{KinesisSink, PutRecordsApi};
use crate::sink::{PublishStats, Record, Refusal, SinkError};

/// Error codes, of a whole call or of one entry, that heal by sending again: throttling
/// (of the shard, the account or the stream's KMS key) and failures inside Kinesis.
const RETRYABLE_CODES: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Entry error codes that say the stream cannot take any record (its KMS key is disabled,
/// missing or not usable by this function; the stream is gone): no record is to blame.
const STREAM_FAULT_CODES: [&str; 7] = [
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSAccessDeniedException",
    "KMSNotFoundException",
    "KMSOptInRequired",
    "AccessDeniedException",
    "ResourceNotFoundException",
];

/// What a Kinesis error code calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Send the same records again.
    Retry,
    /// A person must fix the stream; the page waits.
    FixTheStream,
    /// This record can never be written: it is refused, the others go on.
    RefuseTheRecord,
}

pub fn remedy(code: &str) -> Remedy {
    if RETRYABLE_CODES.contains(&code) {
        Remedy::Retry
    } else if STREAM_FAULT_CODES.contains(&code) {
        Remedy::FixTheStream
    } else {
        Remedy::RefuseTheRecord
    }
}

/// Whether a Kinesis error code heals by sending the same records again.
pub fn is_retryable_code(code: &str) -> bool {
    remedy(code) == Remedy::Retry
}

impl<A: PutRecordsApi> KinesisSink<A> {
    /// Sends one call's records until all are acknowledged (or refused for good, added to
    /// `refused`) or the deadline is near.
    pub(super) async fn deliver(
        &self,
        call: &[&Record],
        deadline: Instant,
        stats: &mut PublishStats,
        refused: &mut Vec<Refusal>,
    ) -> Result<(), SinkError> {
        let mut pending = call.to_vec();
        let mut delays = self.backoff.build();
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                stats.retried_records = stats.retried_records.saturating_add(count(&pending));
            }
            attempt += 1;
            stats.calls = stats.calls.saturating_add(1);
            let answer =
                tokio::time::timeout_at(deadline, self.api.put_records(&self.stream, &pending))
                    .await;
            let last_error = match answer {
                Err(_) => {
                    return Err(SinkError::Incomplete {
                        unacknowledged: pending.len(),
                        last_error: "PutRecords did not answer before the deadline".into(),
                    })
                }
                Ok(Ok(entries)) if entries.len() != pending.len() => {
                    // Never read a short answer as "the rest were acknowledged".
                    return Err(SinkError::Service(format!(
                        "stream {} answered {} entries for {} records",
                        self.stream,
                        entries.len(),
                        pending.len()
                    )));
                }
                Ok(Ok(entries)) => {
                    let sent = pending.len();
                    let mut rejected = Vec::new();
                    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
                    for (record, entry) in pending.iter().zip(entries) {
                        let Some(rejection) = entry else { continue };
                        match remedy(&rejection.code) {
                            Remedy::Retry => {}
                            Remedy::FixTheStream => {
                                return Err(SinkError::Service(format!(
                                    "stream {} rejected event {}: {}: {}",
                                    self.stream, record.event_id, rejection.code, rejection.message
                                )))
                            }
                            Remedy::RefuseTheRecord => {
                                refused.push(Refusal {
                                    record: (*record).clone(),
                                    reason: format!(
                                        "Kinesis rejected the record: {}: {}",
                                        rejection.code, rejection.message
                                    ),
                                });
                                continue;
                            }
                        }
                        *codes.entry(rejection.code).or_default() += 1;
                        rejected.push(*record);
                    }
                    if rejected.is_empty() {
                        return Ok(());
                    }
                    pending = rejected;
                    let codes: Vec<String> = codes
                        .iter()
                        .map(|(code, n)| format!("{n}× {code}"))
                        .collect();
                    format!(
                        "{} of {sent} records rejected ({})",
                        pending.len(),
                        codes.join(", ")
                    )
                }
                Ok(Err(failure)) if failure.retryable => failure.message,
                Ok(Err(failure)) => {
                    return Err(SinkError::Service(format!(
                        "PutRecords to stream {}: {}",
                        self.stream, failure.message
                    )))
                }
            };
            tracing::debug!(
                stream = %self.stream,
                attempt,
                pending = pending.len(),
                error = %last_error,
                "Kinesis did not acknowledge every record; retrying those"
            );
            let delay = delays.next().unwrap_or(Duration::from_secs(2));
            if Instant::now() + delay >= deadline {
                return Err(SinkError::Incomplete {
                    unacknowledged: pending.len(),
                    last_error,
                });
            }
            tokio::time::sleep(delay).await;
        }
    }
}

fn count(records: &[&Record]) -> u32 {
    u32::try_from(records.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kinesis::fake::{records, soon};
    use crate::sink::kinesis::{CallFailure, EntryRejection};
    use crate::sink::EventSink;
    use async_trait::async_trait;

    /// Answers one entry fewer than it was sent.
    struct ShortAnswer;

    #[async_trait]
    impl PutRecordsApi for ShortAnswer {
        async fn put_records(
            &self,
            _stream: &str,
            records: &[&Record],
        ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
            Ok(vec![None; records.len().saturating_sub(1)])
        }
    }

    #[tokio::test]
    async fn a_short_answer_is_not_taken_as_acknowledgement() {
        let sink = KinesisSink::with_api(ShortAnswer, "events".into());
        let err = sink.publish(&records(3), soon()).await.unwrap_err();
        assert!(
            err.to_string().contains("answered 2 entries for 3 records"),
            "{err}"
        );
    }

    #[test]
    fn throttling_is_retried_stream_faults_wait_anything_else_refuses_the_record() {
        for code in ["ProvisionedThroughputExceededException", "InternalFailure"] {
            assert_eq!(remedy(code), Remedy::Retry, "{code}");
        }
        for code in ["KMSAccessDeniedException", "ResourceNotFoundException"] {
            assert_eq!(remedy(code), Remedy::FixTheStream, "{code}");
        }
        assert_eq!(remedy("ValidationException"), Remedy::RefuseTheRecord);
    }
}
