//! In-memory dead-letter store for tests and the local CLI.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{object_key, DeadLetter, DeadLetterError, DeadLetterStore, TargetStream};

#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<BTreeMap<String, DeadLetter>>,
    /// Writes that fail before keeping anything.
    failing_puts: Mutex<u32>,
}

impl MemoryDeadLetters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every letter kept, in name order.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.lock().values().cloned().collect()
    }

    /// The next `n` writes fail.
    pub fn fail_next_puts(&self, n: u32) {
        *self.failing_puts.lock().unwrap_or_else(|e| e.into_inner()) += n;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DeadLetter>> {
        self.letters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetters {
    async fn put(&self, letter: &DeadLetter, _deadline: Instant) -> Result<(), DeadLetterError> {
        {
            let mut failing = self.failing_puts.lock().unwrap_or_else(|e| e.into_inner());
            if *failing > 0 {
                *failing -= 1;
                return Err(DeadLetterError::Service(
                    "injected fault: the dead-letter store is unavailable".into(),
                ));
            }
        }
        self.lock().insert(
            object_key(&letter.connector_id, letter.stream, &letter.event_id),
            letter.clone(),
        );
        Ok(())
    }

    async fn list(
        &self,
        connector_id: &str,
        stream: TargetStream,
        _deadline: Instant,
    ) -> Result<Vec<String>, DeadLetterError> {
        Ok(self
            .lock()
            .values()
            .filter(|letter| letter.connector_id == connector_id && letter.stream == stream)
            .map(|letter| letter.event_id.clone())
            .collect())
    }

    async fn get(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        _deadline: Instant,
    ) -> Result<Option<DeadLetter>, DeadLetterError> {
        Ok(self
            .lock()
            .get(&object_key(connector_id, stream, event_id))
            .cloned())
    }

    async fn delete(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        _deadline: Instant,
    ) -> Result<(), DeadLetterError> {
        self.lock()
            .remove(&object_key(connector_id, stream, event_id));
        Ok(())
    }
}
