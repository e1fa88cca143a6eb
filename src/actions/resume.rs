//! `resume`: clears a pause (the operator's or the connector's own) and the failure count.

use time::OffsetDateTime;

use super::{Connector, RunError, StateView, Summary};
use crate::cursor::{backfill_key, live_key, CursorStore};
use crate::drain::cursor_aged_out;
use crate::invocation::ConnectorId;
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    pub(super) async fn resume(
        &self,
        id: &ConnectorId,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let now = OffsetDateTime::now_utc();
        let item = self
            .store
            .set_pause(&live_key(id.as_str()), None, now)
            .await?;
        // A backfill that paused itself resumes with the connector.
        let backfill_key = backfill_key(id.as_str());
        if let Some(backfill) = self.store.load(&backfill_key).await? {
            if backfill.paused.is_some() || backfill.consecutive_failures > 0 {
                self.store.set_pause(&backfill_key, None, now).await?;
            }
        }
        summary.message = Some(if cursor_aged_out(&item, now) {
            "connector resumed; its cursor is older than Okta's 90-day retention, so the next poll restarts from the oldest retained event (older events are gone)".into()
        } else {
            "connector resumed; the next poll continues from the stored cursor".into()
        });
        summary.state = Some(StateView::from(&item));
        Ok(())
    }
}
