//! Publishes records to a Kinesis data stream with PutRecords.
//!
//! Records are packed into calls within the Kinesis limits, and calls are made one after the
//! other: a call's records are all acknowledged before the next call starts. A partial failure
//! resends only the rejected entries, in their original order, with capped exponential backoff
//! and jitter. Kinesis itself only orders records per shard as they arrive, so a rejected
//! record sent again lands after records of the same partition key that were accepted in the
//! same call; consumers deduplicate and order by the event id and `published`, never by arrival.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use super::{EventSink, PublishStats, Record, SinkError};

/// PutRecords accepts at most this many records per call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// PutRecords accepts at most this many bytes (data plus partition keys) per call.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// One record's data plus partition key may not exceed this.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis partition keys are 1 to 256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// Per-entry error codes that heal by sending the entry again.
const RETRYABLE_ENTRY_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "KMSThrottlingException",
];

/// Whole-call error codes that heal by sending the call again.
const RETRYABLE_CALL_CODES: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "LimitExceededException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Why Kinesis rejected one entry of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRejection {
    pub code: String,
    pub message: String,
}

/// Why a whole PutRecords call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// Throttling, a 5xx or a transport failure: sending again may succeed.
    pub retryable: bool,
    pub message: String,
}

/// The one Kinesis call the sink makes. Implemented for the SDK client, and by fakes in tests,
/// since no local emulator returns partial failures.
#[async_trait]
pub trait PutRecordsApi: Send + Sync {
    /// Sends `records` in one call. The answer has one entry per record, in order: `None` when
    /// the record was acknowledged.
    async fn put_records(
        &self,
        stream: &str,
        records: &[&Record],
    ) -> Result<Vec<Option<EntryRejection>>, CallFailure>;
}

#[async_trait]
impl PutRecordsApi for aws_sdk_kinesis::Client {
    async fn put_records(
        &self,
        stream: &str,
        records: &[&Record],
    ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
        let entries = records
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(record.data.clone()))
                    .partition_key(&record.partition_key)
                    .build()
                    .expect("data and partition key are always set")
            })
            .collect();
        let output = self
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(call_failure)?;
        if output.records().len() != records.len() {
            return Err(CallFailure {
                retryable: true,
                message: format!(
                    "PutRecords answered {} entries for {} records",
                    output.records().len(),
                    records.len()
                ),
            });
        }
        Ok(output
            .records()
            .iter()
            .map(|entry| {
                entry.error_code().map(|code| EntryRejection {
                    code: code.to_owned(),
                    message: entry.error_message().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }
}

fn call_failure(err: SdkError<PutRecordsError, HttpResponse>) -> CallFailure {
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service
                    .err()
                    .code()
                    .is_some_and(|code| RETRYABLE_CALL_CODES.contains(&code))
        }
        _ => false,
    };
    CallFailure {
        retryable,
        message: DisplayErrorContext(&err).to_string(),
    }
}

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

    /// Sends one call's records until all are acknowledged or the deadline is near.
    async fn deliver(
        &self,
        call: &[&Record],
        deadline: Instant,
        stats: &mut PublishStats,
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
                        if !RETRYABLE_ENTRY_CODES.contains(&rejection.code.as_str()) {
                            return Err(SinkError::Service(format!(
                                "stream {} rejected event {}: {}: {}",
                                self.stream, record.event_id, rejection.code, rejection.message
                            )));
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

/// Bytes a record counts against the Kinesis limits.
fn record_bytes(record: &Record) -> usize {
    record.data.len() + record.partition_key.len()
}

/// Splits records into calls within the Kinesis limits, keeping their order. Checks every
/// record first, so an invalid record fails the publish before anything is sent.
pub fn plan_calls(records: &[Record]) -> Result<Vec<Vec<&Record>>, SinkError> {
    for record in records {
        let size = record_bytes(record);
        if size > MAX_RECORD_BYTES {
            return Err(SinkError::OversizeRecord {
                event_id: record.event_id.clone(),
                size,
                limit: MAX_RECORD_BYTES,
            });
        }
        let key_chars = record.partition_key.chars().count();
        if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
            return Err(SinkError::Service(format!(
                "event {} has a partition key of {key_chars} characters; Kinesis needs 1 to \
                 {MAX_PARTITION_KEY_CHARS}",
                record.event_id
            )));
        }
    }
    let mut calls: Vec<Vec<&Record>> = Vec::new();
    let mut current: Vec<&Record> = Vec::new();
    let mut current_bytes = 0;
    for record in records {
        let size = record_bytes(record);
        if current.len() == MAX_RECORDS_PER_CALL || current_bytes + size > MAX_BYTES_PER_CALL {
            calls.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(record);
        current_bytes += size;
    }
    if !current.is_empty() {
        calls.push(current);
    }
    Ok(calls)
}

#[async_trait]
impl<A: PutRecordsApi> EventSink for KinesisSink<A> {
    async fn publish(
        &self,
        records: &[Record],
        deadline: Instant,
    ) -> Result<PublishStats, SinkError> {
        let calls = plan_calls(records)?;
        let mut stats = PublishStats::default();
        for (index, call) in calls.iter().enumerate() {
            if Instant::now() >= deadline {
                return Err(SinkError::Incomplete {
                    unacknowledged: calls[index..].iter().map(Vec::len).sum(),
                    last_error: "the time budget ran out before the records were sent".into(),
                });
            }
            if let Err(err) = self.deliver(call, deadline, &mut stats).await {
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
        Ok(stats)
    }
}

/// Kinesis faults that no local emulator produces, injected in front of a real
/// [`PutRecordsApi`] (e.g. the SDK client against moto). Test support only.
#[cfg(any(test, feature = "simulator"))]
pub mod faults {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::{CallFailure, EntryRejection, PutRecordsApi, Record};

    #[derive(Debug, Default)]
    struct Budget {
        /// Entries still to reject, with the code to reject them with.
        rejections: Vec<&'static str>,
        throttled_calls: u32,
    }

    /// Forwards calls to `inner`, except for injected rejections: a rejected entry is never
    /// sent, exactly as when Kinesis refuses it.
    pub struct FaultyPutRecords<A> {
        inner: A,
        budget: Mutex<Budget>,
    }

    impl<A: PutRecordsApi> FaultyPutRecords<A> {
        pub fn new(inner: A) -> Self {
            FaultyPutRecords {
                inner,
                budget: Mutex::new(Budget::default()),
            }
        }

        /// The next `n` entries at odd positions of a call (or alone in it) are rejected with
        /// `code`: a partial failure, with accepted entries around the rejected ones.
        pub fn reject_entries(&self, n: usize, code: &'static str) {
            let mut budget = self.lock();
            budget.rejections.extend(std::iter::repeat_n(code, n));
        }

        /// The next `n` calls fail whole with throttling, sending nothing.
        pub fn throttle_calls(&self, n: u32) {
            self.lock().throttled_calls += n;
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
            self.budget.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[async_trait]
    impl<A: PutRecordsApi> PutRecordsApi for FaultyPutRecords<A> {
        async fn put_records(
            &self,
            stream: &str,
            records: &[&Record],
        ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
            let rejected: Vec<Option<&'static str>> = {
                let mut budget = self.lock();
                if budget.throttled_calls > 0 {
                    budget.throttled_calls -= 1;
                    return Err(CallFailure {
                        retryable: true,
                        message: "injected fault: ProvisionedThroughputExceededException".into(),
                    });
                }
                records
                    .iter()
                    .enumerate()
                    .map(|(i, _)| {
                        let eligible = i % 2 == 1 || records.len() == 1;
                        eligible.then(|| budget.rejections.pop()).flatten()
                    })
                    .collect()
            };
            let forwarded: Vec<&Record> = records
                .iter()
                .zip(&rejected)
                .filter(|(_, code)| code.is_none())
                .map(|(record, _)| *record)
                .collect();
            let mut answers = if forwarded.is_empty() {
                Vec::new()
            } else {
                self.inner.put_records(stream, &forwarded).await?
            }
            .into_iter();
            Ok(rejected
                .into_iter()
                .map(|code| match code {
                    Some(code) => Some(EntryRejection {
                        code: code.into(),
                        message: "injected fault".into(),
                    }),
                    None => answers.next().flatten(),
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    /// What the fake answers to one call.
    enum Answer {
        /// Reject these event ids with this code; acknowledge the rest.
        Reject(HashMap<String, &'static str>),
        Fail(CallFailure),
    }

    #[derive(Default)]
    struct FakeKinesis {
        script: Mutex<VecDeque<Answer>>,
        /// Rejects these ids on every call, to exhaust the deadline.
        always_reject: Vec<String>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl FakeKinesis {
        fn then(self, answer: Answer) -> Self {
            self.script.lock().unwrap().push_back(answer);
            self
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl PutRecordsApi for &FakeKinesis {
        async fn put_records(
            &self,
            _stream: &str,
            records: &[&Record],
        ) -> Result<Vec<Option<EntryRejection>>, CallFailure> {
            let ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
            self.calls.lock().unwrap().push(ids.clone());
            let rejected = match self.script.lock().unwrap().pop_front() {
                Some(Answer::Fail(failure)) => return Err(failure),
                Some(Answer::Reject(rejected)) => rejected,
                None => HashMap::new(),
            };
            Ok(ids
                .iter()
                .map(|id| {
                    let code = rejected.get(id).copied().or_else(|| {
                        self.always_reject
                            .contains(id)
                            .then_some("ProvisionedThroughputExceededException")
                    })?;
                    Some(EntryRejection {
                        code: code.into(),
                        message: "Rate exceeded for shard".into(),
                    })
                })
                .collect())
        }
    }

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

    fn record(n: usize, data_bytes: usize) -> Record {
        Record {
            event_id: format!("e{n}"),
            partition_key: format!("00u{}", n % 7),
            data: vec![b'x'; data_bytes],
        }
    }

    fn records(count: usize) -> Vec<Record> {
        (0..count).map(|n| record(n, 100)).collect()
    }

    fn sink(fake: &FakeKinesis) -> KinesisSink<&FakeKinesis> {
        KinesisSink::with_api(fake, "events".into())
            .with_backoff(ExponentialBuilder::new().with_min_delay(Duration::from_millis(1)))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn reject(ids: &[&str], code: &'static str) -> Answer {
        Answer::Reject(ids.iter().map(|id| (id.to_string(), code)).collect())
    }

    #[tokio::test]
    async fn calls_hold_at_most_500_records() {
        let fake = FakeKinesis::default();
        let stats = sink(&fake).publish(&records(1201), soon()).await.unwrap();
        let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 201]);
        assert_eq!(
            stats,
            PublishStats {
                calls: 3,
                retried_records: 0
            }
        );
    }

    #[tokio::test]
    async fn calls_hold_at_most_5_mib() {
        let fake = FakeKinesis::default();
        let big: Vec<Record> = (0..7).map(|n| record(n, 1_000_000)).collect();
        sink(&fake).publish(&big, soon()).await.unwrap();
        let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![5, 2]);
    }

    #[test]
    fn a_record_of_exactly_the_limit_is_accepted() {
        let mut exact = record(1, 0);
        exact.data = vec![b'x'; MAX_RECORD_BYTES - exact.partition_key.len()];
        assert_eq!(plan_calls(std::slice::from_ref(&exact)).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn oversize_record_is_named_before_anything_is_sent() {
        let fake = FakeKinesis::default();
        let mut batch = records(3);
        batch.push(record(99, MAX_RECORD_BYTES));
        let err = sink(&fake).publish(&batch, soon()).await.unwrap_err();
        match err {
            SinkError::OversizeRecord {
                event_id,
                size,
                limit,
            } => {
                assert_eq!(event_id, "e99");
                assert!(size > limit);
            }
            other => panic!("expected OversizeRecord, got {other}"),
        }
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn empty_partition_key_is_refused_naming_the_event() {
        let fake = FakeKinesis::default();
        let mut bad = record(5, 10);
        bad.partition_key.clear();
        let err = sink(&fake).publish(&[bad], soon()).await.unwrap_err();
        assert!(err.to_string().contains("e5"), "{err}");
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
        assert_eq!(
            stats,
            PublishStats {
                calls: 3,
                retried_records: 2
            }
        );
    }

    #[tokio::test]
    async fn internal_failure_and_kms_throttling_are_retried() {
        let fake = FakeKinesis::default()
            .then(reject(&["e1"], "InternalFailure"))
            .then(reject(&["e1"], "KMSThrottlingException"));
        let stats = sink(&fake).publish(&records(3), soon()).await.unwrap();
        assert_eq!(
            stats,
            PublishStats {
                calls: 3,
                retried_records: 2
            }
        );
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
        assert_eq!(
            stats,
            PublishStats {
                calls: 2,
                retried_records: 4
            }
        );
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
        let err = sink(&fake)
            .publish(&records(2), Instant::now())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SinkError::Incomplete {
                unacknowledged: 2,
                ..
            }
        ));
        assert!(fake.calls().is_empty());
    }
}
