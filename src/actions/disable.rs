//! `disable`: an operator pause. Polls and backfills return at once until `resume`.

use time::OffsetDateTime;

use super::{Connector, RunError, StateView, Summary};
use crate::cursor::{live_key, CursorStore, Pause, PausedBy};
use crate::invocation::ConnectorId;
use crate::okta::SourceFactory;
use crate::secrets::SecretSource;
use crate::sink::EventSink;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    pub(super) async fn disable(
        &self,
        id: &ConnectorId,
        reason: &str,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let now = OffsetDateTime::now_utc();
        let pause = Pause {
            reason: reason.to_string(),
            by: PausedBy::Operator,
            at: now,
        };
        let item = self
            .store
            .set_pause(&live_key(id.as_str()), Some(pause), now)
            .await?;
        summary.state = Some(StateView::from(&item));
        summary.message = Some("connector disabled; polls return at once until resumed".into());
        Ok(())
    }
}
