//! `test_connection`: proves the credentials work and tells how busy the System Log is,
//! without touching the cursor.

use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Connector, RunError, Summary};
use crate::cursor::CursorStore;
use crate::invocation::ConnectorId;
use crate::okta::{LogSource, SourceFactory};
use crate::secrets::SecretSource;
use crate::sink::EventSink;

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    pub(super) async fn test_connection(
        &self,
        id: &ConnectorId,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let session = self.session(id).await?;
        let report = session
            .source
            .test_connection(OffsetDateTime::now_utc(), self.work_deadline(deadline))
            .await?;
        summary.connection = Some(report);
        Ok(())
    }
}
