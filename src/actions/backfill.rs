//! `backfill`: reads a historical window through its own cursor item, separate from the live
//! stream; a poll continues it with the time it has left.

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Connector, Outcome, RunError, StateView, Summary};
use crate::cursor::{backfill_key, live_key, CursorItem, CursorStore, RunOutcome};
use crate::drain::{StreamKind, BACKFILL_DONE};
use crate::invocation::{BackfillRequest, ConnectorId};
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Runs (or continues) the backfill. `request` is `None` when a poll continues one.
    pub(super) async fn backfill(
        &self,
        id: &ConnectorId,
        request: Option<BackfillRequest>,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        // An operator pause stops the backfill as well as the live poll.
        if let Some(live) = self.store.load(&live_key(id.as_str())).await? {
            if let Some(pause) = &live.paused {
                summary.outcome = Outcome::Paused;
                summary.message = Some(format!("connector is paused: {}", pause.reason));
                summary.state = Some(StateView::from(&live));
                return Ok(());
            }
        }
        // Bad windows are refused before anything is claimed.
        let now = OffsetDateTime::now_utc();
        let requested = request.map(|r| r.window(now)).transpose()?;
        let key = backfill_key(id.as_str());
        let Some((mut lease, stored)) = self.claim(&key, deadline, summary).await? else {
            return Ok(());
        };
        let complete = stored.cursor.as_deref() == Some(BACKFILL_DONE);
        let (item, window) = match (stored.window, requested) {
            // A finished backfill (or none yet) makes room for the requested window.
            (Some(_), Some(window)) if complete => (fresh(&stored), window),
            (None, Some(window)) => (fresh(&stored), window),
            (Some(current), requested) => {
                if requested.is_some_and(|w| w != current) {
                    summary.message = Some(format!(
                        "a backfill of {} .. {} is in progress and continues; request a new window once it completes",
                        current.start, current.end
                    ));
                }
                (stored.clone(), current)
            }
            (None, None) => {
                let pause_after = self.settings.pause_after_failures;
                self.store
                    .release(&lease, &RunOutcome::Success, pause_after, now)
                    .await?;
                summary.message = Some("no backfill has been requested".into());
                return Ok(());
            }
        };
        let work_deadline = self.work_deadline(deadline);
        let drained = self
            .drain_item(
                id,
                &mut lease,
                &item,
                StreamKind::Backfill(window),
                work_deadline,
            )
            .await;
        let failure = self
            .finish(&lease, &drained.report, drained.error, summary)
            .await?;
        if summary.drain.is_none() {
            summary.drain = Some(drained.report);
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// The item with its window and cursor cleared, for a new window.
fn fresh(item: &CursorItem) -> CursorItem {
    CursorItem {
        cursor: None,
        window: None,
        ..item.clone()
    }
}
