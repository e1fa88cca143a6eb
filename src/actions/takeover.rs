//! Taking the live lease over from an invocation that is about to end.
//!
//! A tailing poll (or a long backlog drain) holds the live lease until shortly before its
//! deadline. Were every scheduled invocation in between to give up at once, nobody would poll
//! from that release until the next schedule tick. So the last scheduled invocation before the
//! holder's end waits for it and carries on; invocations earlier than that answer `lease_held`
//! at once.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::lease::settle;
use super::{Connector, RunError, Summary, LEASE_MARGIN};
use crate::cursor::{Claim, CursorItem, CursorStore, Lease};
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

/// Between claim attempts once the holder's run should have ended (its last round may still be
/// checkpointing).
const RETRY_EVERY: Duration = Duration::from_millis(250);

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Claims the lease, or, when its holder's work ends within the takeover horizon and
    /// well before this invocation's own, waits for that end and claims it then.
    pub(super) async fn claim_or_take_over(
        &self,
        key: &str,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<Option<(Lease, CursorItem)>, RunError> {
        let owner = self.lease_owner();
        let mut claim = self.claim_once(key, &owner, deadline).await?;
        if let Claim::Held {
            owner: holder,
            until,
        } = &claim
        {
            let holder = holder.clone();
            if let Some(handover) = self.handover_at(*until, deadline) {
                tracing::info!(key, holder = %holder, wait_ms = handover.saturating_duration_since(Instant::now()).as_millis() as u64,
                    "the lease holder's run ends soon: waiting to take over");
                tokio::time::sleep_until(handover).await;
                // The holder releases at the end of its last round at the latest, and its
                // deadline (the safety margin later) ends it for sure.
                let give_up =
                    (handover + self.settings.safety_margin).min(self.work_deadline(deadline));
                loop {
                    claim = self.claim_once(key, &owner, deadline).await?;
                    let still_the_holder =
                        matches!(&claim, Claim::Held { owner, .. } if *owner == holder);
                    if !still_the_holder || Instant::now() + RETRY_EVERY >= give_up {
                        break;
                    }
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                if matches!(claim, Claim::Acquired { .. }) {
                    summary.message = Some(format!("took the lease over from {holder}"));
                }
            }
        }
        Ok(settle(key, claim, summary))
    }

    /// When a holder whose lease runs `until` ends its work, if this invocation should wait
    /// for it.
    fn handover_at(&self, until: OffsetDateTime, deadline: Instant) -> Option<Instant> {
        let now = Instant::now();
        let wait = handover_wait(
            until,
            OffsetDateTime::now_utc(),
            self.work_deadline(deadline).saturating_duration_since(now),
            self.settings.safety_margin,
            self.settings.takeover_horizon,
        )?;
        Some(now + wait)
    }
}

/// How long to wait for a holder whose lease runs `until` (its deadline plus the lease margin)
/// to end its work, given `work_left` of this invocation's own: only when that end is within
/// `horizon` and at least one horizon of work is left after it (a holder ending with this
/// invocation's own budget is left to the next one).
fn handover_wait(
    until: OffsetDateTime,
    now: OffsetDateTime,
    work_left: Duration,
    safety_margin: Duration,
    horizon: Duration,
) -> Option<Duration> {
    let holder_work_end = until - LEASE_MARGIN - safety_margin;
    // Past its work end, the holder is releasing (or gone): try at once.
    let wait = Duration::try_from(holder_work_end - now).unwrap_or(Duration::ZERO);
    let left = work_left.saturating_sub(wait);
    (wait <= horizon && left >= horizon.max(RETRY_EVERY)).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_secs(20);
    const HORIZON: Duration = Duration::from_secs(60);

    /// The lease of a holder whose work ends `secs` from `now`.
    fn ending_in(now: OffsetDateTime, secs: i64) -> OffsetDateTime {
        now + time::Duration::seconds(secs) + LEASE_MARGIN + MARGIN
    }

    #[test]
    fn the_last_invocation_before_the_holders_end_waits_for_it() {
        let now = OffsetDateTime::now_utc();
        let work_left = Duration::from_secs(280);
        assert_eq!(
            handover_wait(ending_in(now, 40), now, work_left, MARGIN, HORIZON),
            Some(Duration::from_secs(40))
        );
        // One schedule period earlier, a later invocation will still come: stand back.
        assert_eq!(
            handover_wait(ending_in(now, 100), now, work_left, MARGIN, HORIZON),
            None
        );
    }

    #[test]
    fn a_holder_past_its_work_end_is_taken_over_at_once() {
        let now = OffsetDateTime::now_utc();
        let wait = handover_wait(
            ending_in(now, -5),
            now,
            Duration::from_secs(280),
            MARGIN,
            HORIZON,
        );
        assert_eq!(wait, Some(Duration::ZERO));
    }

    #[test]
    fn a_holder_ending_about_when_this_invocation_does_is_not_waited_for() {
        let now = OffsetDateTime::now_utc();
        // Two overlapping invocations with the same budget: nothing would be left.
        let wait = handover_wait(
            ending_in(now, 30),
            now,
            Duration::from_secs(30),
            MARGIN,
            HORIZON,
        );
        assert_eq!(wait, None);
        // Less than a horizon left after the wait.
        let wait = handover_wait(
            ending_in(now, 30),
            now,
            Duration::from_secs(80),
            MARGIN,
            HORIZON,
        );
        assert_eq!(wait, None);
    }

    #[test]
    fn a_zero_horizon_never_waits_for_a_live_holder() {
        let now = OffsetDateTime::now_utc();
        let wait = handover_wait(
            ending_in(now, 1),
            now,
            Duration::from_secs(280),
            MARGIN,
            Duration::ZERO,
        );
        assert_eq!(wait, None);
    }
}
