//! Claiming a cursor item's lease before a drain and releasing it with the run's outcome.

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{BackfillProgress, Connector, Outcome, RunError, StateView, Summary, LEASE_MARGIN};
use crate::cursor::{Claim, CursorError, CursorItem, CursorStore, Lease, RunOutcome};
use crate::drain::{DrainReport, StopReason};
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Claims an item's lease; `None` (with the summary filled in) when it is held or paused.
    pub(super) async fn claim(
        &self,
        key: &str,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<Option<(Lease, CursorItem)>, RunError> {
        let claim = self.claim_once(key, &self.lease_owner(), deadline).await?;
        Ok(settle(key, claim, summary))
    }

    /// A fresh owner name for one invocation's leases.
    pub(super) fn lease_owner(&self) -> String {
        match &self.settings.lease_owner_label {
            Some(label) => format!("{label} ({})", uuid::Uuid::new_v4()),
            None => uuid::Uuid::new_v4().to_string(),
        }
    }

    /// One claim attempt by `owner`, with a lease that outlives `deadline` by [`LEASE_MARGIN`].
    pub(super) async fn claim_once(
        &self,
        key: &str,
        owner: &str,
        deadline: Instant,
    ) -> Result<Claim, RunError> {
        let now = OffsetDateTime::now_utc();
        let lease_until = now + deadline.saturating_duration_since(Instant::now()) + LEASE_MARGIN;
        Ok(self.store.claim(key, owner, now, lease_until).await?)
    }

    /// Releases the lease with the run's outcome, cut before the invocation's `deadline`;
    /// returns the failure to report, if any.
    pub(super) async fn finish(
        &self,
        lease: &Lease,
        report: &DrainReport,
        error: Option<RunError>,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<Option<RunError>, RunError> {
        if report.stop_reason == Some(StopReason::LeaseLost) {
            // Someone else owns the item now: there is nothing of ours to release.
            summary.message =
                Some("lease was taken over mid-drain; stopped without writing".into());
            return Ok(None);
        }
        let (outcome, failure) = match error {
            None => (RunOutcome::Success, None),
            // Progress was made and the failure may heal: the stream is not stuck.
            Some(err) if report.checkpoints > 0 && !err.pauses_connector() => {
                summary.message = Some(format!("stopped early after progress: {err}"));
                (RunOutcome::Success, None)
            }
            Some(err) => (
                RunOutcome::Failure {
                    error: err.to_string(),
                    pause_now: err.pauses_connector(),
                },
                Some(err),
            ),
        };
        let now = OffsetDateTime::now_utc();
        let release = self
            .store
            .release(lease, &outcome, self.settings.pause_after_failures, now);
        let item = tokio::time::timeout_at(self.writes_deadline(deadline), release)
            .await
            .map_err(|_| CursorError::Unanswered {
                key: lease.key.clone(),
                operation: "release",
            })??;
        summary.state = Some(StateView::from(&item));
        // A live item has no window: it leaves the progress of a backfill slice in place.
        if let Some(progress) = BackfillProgress::of(&item) {
            summary.backfill = Some(progress);
        }
        Ok(failure)
    }
}

/// The claimed lease, or `None` with the summary saying who holds it or why it is paused.
pub(super) fn settle(
    key: &str,
    claim: Claim,
    summary: &mut Summary,
) -> Option<(Lease, CursorItem)> {
    match claim {
        Claim::Acquired { lease, item } => Some((lease, item)),
        Claim::Held { owner, until } => {
            summary.outcome = Outcome::LeaseHeld;
            summary.message = Some(format!(
                "another invocation ({owner}) holds the lease on {key} until {until}; nothing to do"
            ));
            None
        }
        Claim::Paused(pause) => {
            summary.outcome = Outcome::Paused;
            summary.message = Some(format!(
                "connector is paused by {}: {}",
                pause.by.as_str(),
                pause.reason
            ));
            None
        }
    }
}
