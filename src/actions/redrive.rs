//! `redrive`: once the cause is fixed, re-publishes the connector's dead-lettered events to the
//! stream each was refused by (in the order they were refused) and forgets each one the stream
//! acknowledged. An event the stream still refuses stays where it is.

use tokio::time::Instant;

use super::{Connector, RunError, Summary};
use crate::cursor::CursorStore;
use crate::deadletter::{DeadLetterStore, TargetStream};
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
        let (mut republished, mut still_refused, mut waiting) = (0, 0, 0);
        let mut budget = MAX_LETTERS;
        for stream in TargetStream::ALL {
            let ids = store.list(id.as_str(), stream, deadline).await?;
            if ids.is_empty() {
                continue;
            }
            let sink = match stream {
                TargetStream::Events => Some(&self.sink),
                TargetStream::Ocsf => self.ocsf_sink.as_ref(),
            };
            let Some(sink) = sink else {
                // Kept until a deployment with that stream redrives them.
                tracing::warn!(connector_id = %id, letters = ids.len(), ?stream, "dead letters for a stream this deployment does not have");
                waiting += ids.len();
                continue;
            };
            let taken = ids.len().min(budget);
            budget -= taken;
            waiting += ids.len() - taken;
            let done = redrive_stream(store, sink, id, stream, &ids[..taken], deadline).await?;
            republished += done.republished;
            still_refused += done.still_refused;
        }
        summary.message = Some(format!(
            "{republished} dead-lettered events re-published; {still_refused} still refused; \
             {waiting} left for the next redrive"
        ));
        Ok(())
    }
}

struct Redriven {
    republished: usize,
    still_refused: usize,
}

/// Re-publishes the letters `ids` of one stream in the order they were refused and forgets
/// each one the stream acknowledged.
async fn redrive_stream<K: EventSink>(
    store: &dyn DeadLetterStore,
    sink: &K,
    id: &ConnectorId,
    stream: TargetStream,
    ids: &[String],
    deadline: Instant,
) -> Result<Redriven, RunError> {
    let mut letters = Vec::with_capacity(ids.len());
    for event_id in ids {
        if let Some(letter) = store.get(id.as_str(), stream, event_id, deadline).await? {
            letters.push(letter);
        }
    }
    letters.sort_by(|a, b| (a.refused_at, &a.event_id).cmp(&(b.refused_at, &b.event_id)));
    let records: Vec<_> = letters.iter().map(|letter| letter.to_record()).collect();
    let still_refused: Vec<String> = if records.is_empty() {
        Vec::new()
    } else {
        match sink.publish(&records, deadline).await {
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
                .delete(id.as_str(), stream, &letter.event_id, deadline)
                .await?;
            republished += 1;
        }
    }
    Ok(Redriven {
        republished,
        still_refused: still_refused.len(),
    })
}
