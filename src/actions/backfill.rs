//! `backfill`: reads a historical window through its own cursor item, separate from the live
//! stream; a poll continues it with the time it has left.

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{BackfillProgress, Connector, Outcome, RunError, StateView, Summary};
use crate::cursor::{backfill_key, live_key, CursorItem, CursorStore, RunOutcome, Window};
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
        let live = self.store.load(&live_key(id.as_str())).await?;
        if let Some(live) = &live {
            if let Some(pause) = &live.paused {
                summary.outcome = Outcome::Paused;
                summary.message = Some(format!("connector is paused: {}", pause.reason));
                summary.state = Some(StateView::from(live));
                return Ok(());
            }
        }
        // The live stream reads everything after its start, so the part of a window past the
        // last backfill's end is delivered by it.
        let live_reads_on = live.is_some_and(|live| live.cursor.is_some());
        // Bad windows are refused before anything is claimed.
        let now = OffsetDateTime::now_utc();
        let requested = request
            .map(|r| r.window(now).map(|window| (window, r.restart)))
            .transpose()?;
        let key = backfill_key(id.as_str());
        // A repeated request for a delivered window is answered from the item, without a lease.
        if let (Some((window, false)), Some(stored)) = (requested, self.store.load(&key).await?) {
            let delivered = stored.cursor.as_deref() == Some(BACKFILL_DONE);
            if let Some(current) = stored.window.filter(|c| covers(c, &window, live_reads_on)) {
                if delivered {
                    summary.message = Some(format!(
                        "already delivered: the backfill of {} .. {} completed and covers this window; send \"restart\": true to read it again",
                        current.start, current.end
                    ));
                    summary.backfill = BackfillProgress::of(&stored);
                    summary.state = Some(StateView::from(&stored));
                    return Ok(());
                }
            }
        }
        let Some((mut lease, stored)) = self.claim(&key, deadline, summary).await? else {
            return Ok(());
        };
        let complete = stored.cursor.as_deref() == Some(BACKFILL_DONE);
        let (item, window) = match (stored.window, requested) {
            // An explicit restart, a finished backfill (a window it does not cover reaches
            // further back) or none yet: the requested window is read from its start.
            (_, Some((window, true))) => (fresh(&stored), window),
            (Some(_), Some((window, false))) if complete => (fresh(&stored), window),
            (None, Some((window, _))) => (fresh(&stored), window),
            (Some(current), requested) => {
                summary.message = match requested {
                    Some((window, _)) if covers(&current, &window, live_reads_on) => Some(format!(
                        "the backfill of {} .. {} in progress covers this window and continues",
                        current.start, current.end
                    )),
                    Some(_) => Some(format!(
                        "a backfill of {} .. {} is in progress and continues; request a new window once it completes, or send \"restart\": true to replace it",
                        current.start, current.end
                    )),
                    None => None,
                };
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
        let drained = self
            .drain_item(
                id,
                &mut lease,
                &item,
                StreamKind::Backfill(window),
                deadline,
            )
            .await;
        let failure = self
            .finish(&lease, &drained.report, drained.error, deadline, summary)
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

/// Whether the backfill of `current` delivers everything `requested` asks for.
fn covers(current: &Window, requested: &Window, live_reads_on: bool) -> bool {
    requested.start >= current.start && (requested.end <= current.end || live_reads_on)
}

/// The item with its window and cursor cleared, for a new window.
fn fresh(item: &CursorItem) -> CursorItem {
    CursorItem {
        cursor: None,
        window: None,
        ..item.clone()
    }
}
