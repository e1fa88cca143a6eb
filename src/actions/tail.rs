//! Tail mode: a poll that caught up keeps its lease and polls again every interval until its
//! deadline, so events reach the stream seconds after Okta persisted them. Scheduled
//! invocations in between find the lease held and return at once.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::sources::Session;
use super::stream::Drained;
use super::{Connector, Summary};
use crate::cursor::{live_key, CursorStore, Lease};
use crate::drain::{StopReason, StreamKind};
use crate::invocation::ConnectorId;
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

/// How a poll tails.
pub(super) struct TailPlan {
    pub(super) interval: Duration,
    /// The invocation's deadline, and its end of work (the deadline less the safety margin).
    pub(super) deadline: Instant,
    pub(super) work_deadline: Instant,
    /// For a setup backfill started between rounds (see the poll's backfill slice).
    pub(super) first_poll: bool,
    pub(super) poll_started: OffsetDateTime,
}

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Polls the live stream again every `interval` while the lease is held, until the next
    /// round would start past `work_deadline`, the connector is paused, or a round does not
    /// end caught up. Each round checkpoints its pages as usual; between rounds a backfill in
    /// progress gets up to one interval. Returns the rounds' reports added to `drained`.
    pub(super) async fn tail(
        &self,
        id: &ConnectorId,
        lease: &mut Lease,
        mut drained: Drained<F::Source>,
        plan: &TailPlan,
        summary: &mut Summary,
    ) -> Drained<F::Source> {
        let work_deadline = plan.work_deadline;
        let mut rounds = 0u32;
        loop {
            let next_round = Instant::now() + plan.interval;
            if let Some(session) = &drained.session {
                self.backfill_between_rounds(id, session, plan, next_round, summary)
                    .await;
            }
            if next_round >= work_deadline {
                break;
            }
            tokio::time::sleep_until(next_round).await;
            // An operator's disable (or resume-then-disable) is honoured within one interval.
            match self.store.load(&live_key(id.as_str())).await {
                Ok(Some(item)) if item.paused.is_none() => {
                    let round = self
                        .drain_item(id, lease, &item, StreamKind::Live, plan.deadline)
                        .await;
                    rounds += 1;
                    drained.report.absorb(round.report);
                    if round.session.is_some() {
                        drained.session = round.session;
                    }
                    if round.error.is_some() {
                        drained.error = round.error;
                        break;
                    }
                    if drained.report.stop_reason != Some(StopReason::CaughtUp) {
                        break;
                    }
                }
                Ok(_) => {
                    summary.message = Some("stopped tailing: the connector was paused".into());
                    break;
                }
                Err(err) => {
                    // The rounds so far stand; the next scheduled poll carries on.
                    tracing::warn!(connector_id = %id, error = %err, "stopped tailing: the cursor item could not be read");
                    break;
                }
            }
        }
        summary.tail_rounds = Some(rounds);
        drained
    }

    /// Gives a backfill in progress the time until the next round; its failures are recorded
    /// on its own item and do not stop the tail.
    async fn backfill_between_rounds(
        &self,
        id: &ConnectorId,
        session: &Session<F::Source>,
        plan: &TailPlan,
        until: Instant,
        summary: &mut Summary,
    ) {
        let deadline = (until + self.settings.safety_margin).min(plan.deadline);
        let slice = self.backfill_slice(
            id,
            session,
            plan.first_poll,
            plan.poll_started,
            deadline,
            summary,
        );
        if let Err(err) = slice.await {
            tracing::warn!(connector_id = %id, error = %err, "backfill slice failed");
            summary.message = Some(format!("backfill slice failed: {err}"));
        }
    }
}
