//! A scripted Kinesis for the sink's unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use backon::ExponentialBuilder;
use tokio::time::Instant;

use super::{CallFailure, EntryRejection, KinesisSink, PutRecordsApi};
use crate::sink::Record;

/// What the fake answers to one call.
pub enum Answer {
    /// Reject these event ids with this code; acknowledge the rest.
    Reject(HashMap<String, &'static str>),
    Fail(CallFailure),
}

#[derive(Default)]
pub struct FakeKinesis {
    pub script: Mutex<VecDeque<Answer>>,
    /// Rejects these ids on every call, to exhaust the deadline.
    pub always_reject: Vec<String>,
    pub calls: Mutex<Vec<Vec<String>>>,
}

impl FakeKinesis {
    pub fn then(self, answer: Answer) -> Self {
        self.script.lock().unwrap().push_back(answer);
        self
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
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

pub fn record(n: usize, data_bytes: usize) -> Record {
    Record {
        event_id: format!("e{n}"),
        partition_key: format!("00u{n}"),
        data: vec![b'x'; data_bytes],
    }
}

pub fn records(count: usize) -> Vec<Record> {
    (0..count).map(|n| record(n, 100)).collect()
}

pub fn sink(fake: &FakeKinesis) -> KinesisSink<&FakeKinesis> {
    KinesisSink::with_api(fake, "events".into())
        .with_backoff(ExponentialBuilder::new().with_min_delay(Duration::from_millis(1)))
}

pub fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

pub fn reject(ids: &[&str], code: &'static str) -> Answer {
    Answer::Reject(ids.iter().map(|id| (id.to_string(), code)).collect())
}
