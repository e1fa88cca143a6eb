//! `redrive`: once the cause is fixed, re-publishes the connector's dead-lettered events (in
//! the order they were refused) and forgets each one the stream acknowledged. An event the
//! stream still refuses stays where it is.

use tokio::time::Instant;

use super::{Connector, RunError, Summary};
use crate::cursor::CursorStore;
use crate::invocation::ConnectorId;
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::{EventSink, SinkError};

/// Letters re-published per invocation; the rest wait for the next `redrive`.
const MAX_LETTERS: usize = 500;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    pub(super) async fn redrive(
        &self,
        id: &ConnectorId,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let store = self
            .dead_letters
            .as_deref()
            .ok_or(RunError::NoDeadLetterStore)?;
        let deadline = self.work_deadline(deadline);
        let ids = store.list(id.as_str(), deadline).await?;
        let mut letters = Vec::new();
        for event_id in ids.iter().take(MAX_LETTERS) {
            if let Some(letter) = store.get(id.as_str(), event_id, deadline).await? {
                letters.push(letter);
            }
        }
        letters.sort_by(|a, b| (a.refused_at, &a.event_id).cmp(&(b.refused_at, &b.event_id)));
        let records: Vec<_> = letters.iter().map(|letter| letter.to_record()).collect();
        let still_refused: Vec<String> = if records.is_empty() {
            Vec::new()
        } else {
            match self.sink.publish(&records, deadline).await {
                Ok(_) => Vec::new(),
                Err(SinkError::Refused { refused, .. }) => {
                    refused.into_iter().map(|r| r.record.event_id).collect()
                }
                Err(err) => return Err(err.into()),
            }
        };
        let mut republished = 0;
        for letter in &letters {
            if !still_refused.contains(&letter.event_id) {
                store
                    .delete(id.as_str(), &letter.event_id, deadline)
                    .await?;
                republished += 1;
            }
        }
        let waiting = ids.len().saturating_sub(MAX_LETTERS);
        summary.message = Some(format!(
            "{republished} dead-lettered events re-published; {} still refused; {waiting} left \
             for the next redrive",
            still_refused.len()
        ));
        Ok(())
    }
}
