//! Kinesis faults that no local emulator produces, injected in front of a real
//! [`PutRecordsApi`] (e.g. the SDK client against moto). Test support only.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{CallFailure, EntryRejection, PutRecordsApi};
use crate::sink::Record;

#[derive(Debug, Default)]
struct Budget {
    /// Entries still to reject, with the code to reject them with.
    rejections: Vec<&'static str>,
    /// Events rejected the next time they are sent, with the code.
    rejected_events: Vec<(String, &'static str)>,
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

    /// The next time the record of `event_id` is sent, it is rejected with `code`.
    pub fn reject_event(&self, event_id: &str, code: &'static str) {
        self.lock()
            .rejected_events
            .push((event_id.to_owned(), code));
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
                .map(|(i, record)| {
                    let named = budget
                        .rejected_events
                        .iter()
                        .position(|(id, _)| *id == record.event_id);
                    if let Some(at) = named {
                        return Some(budget.rejected_events.remove(at).1);
                    }
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
