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

/// The closing round starts this fraction of an interval before the work ends: long enough
/// for a round of one page to finish (its lease released) before the successor claims.
const CLOSING_LEAD_DIVISOR: u32 = 10;

/// How a poll tails.
pub(super) struct TailPlan {
    pub(super) interval: Duration,
    /// When the poll's own (first) drain started: the first tail round follows it by one interval.
    pub(super) first_round_started: Instant,
    /// The invocation's deadline, and its end of work (the deadline less the safety margin).
    pub(super) deadline: Instant,
    pub(super) work_deadline: Instant,
    /// For a setup backfill started between rounds (see the poll's backfill slice).
    pub(super) first_poll: bool,
    pub(super) poll_started: OffsetDateTime,
}

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Polls the live stream again every `interval` (measured from one round's start to the
    /// next, so the time a round takes does not stretch the gap) while the lease is held. When
    /// the next round would start past `work_deadline`, one closing round runs just before it
    /// instead: the invocation taking over claims at that work end, so the gap across a
    /// handover stays within one interval. The tail stops early when the connector is paused
    /// or a round does not end caught up. Each round checkpoints its pages as usual; between
    /// rounds a backfill in progress gets its time. Returns the rounds' reports added to
    /// `drained`.
    pub(super) async fn tail(
        &self,
        id: &ConnectorId,
        lease: &mut Lease,
        mut drained: Drained<F::Source>,
        plan: &TailPlan,
        summary: &mut Summary,
    ) -> Drained<F::Source> {
        let work_deadline = plan.work_deadline;
        let closing_round = work_deadline
            .checked_sub(plan.interval / CLOSING_LEAD_DIVISOR)
            .unwrap_or(work_deadline);
        let mut round_started = plan.first_round_started;
        let mut rounds = 0u32;
        while let Some(next_round) =
            next_round_at(round_started, plan.interval, closing_round, Instant::now())
        {
            if let Some(session) = &drained.session {
                self.backfill_between_rounds(id, session, plan, next_round, summary)
                    .await;
            }
            tokio::time::sleep_until(next_round).await;
            round_started = Instant::now();
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

/// When the round after one started at `previous` begins: one interval later, or at
/// `closing_round` when that comes first and is still ahead (the last round); `None` once the
/// closing round has run (or its time has passed).
fn next_round_at(
    previous: Instant,
    interval: Duration,
    closing_round: Instant,
    now: Instant,
) -> Option<Instant> {
    let next = (previous + interval).max(now);
    if next < closing_round {
        Some(next)
    } else if previous < closing_round && now < closing_round {
        Some(closing_round)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(30);

    #[test]
    fn rounds_start_one_interval_after_the_previous_round_started() {
        let start = Instant::now();
        let closing = start + Duration::from_secs(280);
        // A round that took 4 s does not push the next one back.
        let now = start + Duration::from_secs(4);
        assert_eq!(
            next_round_at(start, INTERVAL, closing, now),
            Some(start + INTERVAL)
        );
        // A round that overran its interval is followed at once.
        let now = start + Duration::from_secs(35);
        assert_eq!(next_round_at(start, INTERVAL, closing, now), Some(now));
    }

    #[test]
    fn the_last_round_runs_just_before_the_work_ends_then_the_tail_stops() {
        let start = Instant::now();
        let closing = start + Duration::from_secs(20);
        let now = start + Duration::from_secs(1);
        assert_eq!(
            next_round_at(start, INTERVAL, closing, now),
            Some(closing),
            "the next interval ends past the work: a closing round instead"
        );
        assert_eq!(
            next_round_at(
                closing,
                INTERVAL,
                closing,
                closing + Duration::from_millis(300)
            ),
            None,
            "after the closing round, nothing more"
        );
        // Past the closing time already (a long round): no further round.
        let late = closing + Duration::from_secs(1);
        assert_eq!(next_round_at(start, INTERVAL, closing, late), None);
    }
}
