//! `poll`: the scheduled run. Drains the live stream, then gives the rest of the budget to a
//! backfill in progress (or the one `backfill_on_setup` asks for).

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::sources::Session;
use super::tail::TailPlan;
use super::{Connector, RunError, Summary};
use crate::cursor::{backfill_key, live_key, CursorStore};
use crate::drain::{StopReason, StreamKind, BACKFILL_DONE};
use crate::invocation::{ActionName, BackfillRequest, ConnectorId};
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

/// Below this much remaining time, a poll does not start backfill work.
const MIN_BACKFILL_SLICE: Duration = Duration::from_secs(5);

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    pub(super) async fn poll(
        &self,
        id: &ConnectorId,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let poll_started = OffsetDateTime::now_utc();
        let Some((mut lease, item)) = self
            .claim_or_take_over(&live_key(id.as_str()), deadline, summary)
            .await?
        else {
            return Ok(());
        };
        let work_deadline = self.work_deadline(deadline);
        let first_round_started = Instant::now();
        let mut drained = self
            .drain_item(id, &mut lease, &item, StreamKind::Live, deadline)
            .await;
        let first_poll = item.cursor.is_none();
        let tail_interval = drained
            .session
            .as_ref()
            .and_then(|session| self.settings.tail_interval.or(session.config.tail_interval));
        let caught_up = drained.report.stop_reason == Some(StopReason::CaughtUp);
        if let Some(interval) = tail_interval.filter(|_| caught_up && drained.error.is_none()) {
            let plan = TailPlan {
                interval,
                first_round_started,
                deadline,
                work_deadline,
                first_poll,
                poll_started,
            };
            drained = self.tail(id, &mut lease, drained, &plan, summary).await;
        }
        let failure = self
            .finish(&lease, &drained.report, drained.error, deadline, summary)
            .await?;
        summary.drain = Some(drained.report);
        if let Some(err) = failure {
            return Err(err);
        }

        let Some(session) = drained.session else {
            return Ok(());
        };
        if work_deadline.saturating_duration_since(Instant::now()) > MIN_BACKFILL_SLICE {
            // Live work is done: the rest of the budget goes to the backfill. Its failures are
            // recorded on the backfill's own item and do not fail the poll.
            let slice =
                self.backfill_slice(id, &session, first_poll, poll_started, deadline, summary);
            if let Err(err) = slice.await {
                tracing::warn!(connector_id = %id, error = %err, "backfill slice failed");
                summary.message = Some(format!("live poll done; backfill slice failed: {err}"));
            }
        }
        Ok(())
    }

    /// Continues a backfill in progress, or starts the one `backfill_on_setup` asks for until
    /// it has recorded its window (a failed first attempt is retried by the next poll).
    pub(super) async fn backfill_slice(
        &self,
        id: &ConnectorId,
        session: &Session<F::Source>,
        first_poll: bool,
        poll_started: OffsetDateTime,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let stored = self.store.load(&backfill_key(id.as_str())).await?;
        let request = match stored {
            Some(backfill) if backfill.window.is_some() => {
                if backfill.cursor.as_deref() == Some(BACKFILL_DONE) {
                    return Ok(());
                }
                None
            }
            _ if session.config.backfill_on_setup => {
                // The first poll's live stream starts at poll start - lookback: end a minute
                // later so the two overlap instead of leaving a gap (dedupe is by uuid). A later
                // retry ends now, overlapping everything the live stream has read since.
                let end = if first_poll {
                    poll_started - self.settings.drain.lookback + Duration::from_secs(60)
                } else {
                    OffsetDateTime::now_utc()
                };
                Some(BackfillRequest {
                    end: Some(end),
                    ..Default::default()
                })
            }
            _ => return Ok(()),
        };
        let mut slice = Summary::new(id, ActionName::Backfill);
        let result = self.backfill(id, request, deadline, &mut slice).await;
        summary.backfill = slice.backfill.or(summary.backfill.take());
        match (&mut summary.backfill_drain, slice.drain) {
            (Some(earlier), Some(drain)) => earlier.absorb(drain),
            (earlier, drain) => *earlier = earlier.take().or(drain),
        }
        result
    }
}
