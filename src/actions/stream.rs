//! Draining one cursor item with the connector's credentials.

use tokio::time::Instant;

use super::sources::Session;
use super::{Connector, RunError};
use crate::cursor::{CursorItem, CursorStore, Lease};
use crate::drain::{Drain, DrainError, DrainReport, StopReason, StreamKind};
use crate::invocation::ConnectorId;
use crate::normalize::{Normalizer, NormalizerConfig};
use crate::okta::{OktaError, SourceFactory};
use crate::secrets::SecretSource;
use crate::sink::dead_letters::DeadLettering;
use crate::sink::EventSink;

/// What draining a leased item did.
pub(super) struct Drained<L> {
    pub(super) report: DrainReport,
    pub(super) error: Option<RunError>,
    /// The credentials used, when they could be read.
    pub(super) session: Option<Session<L>>,
}

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// Reads credentials and drains until the work deadline of the invocation that ends at
    /// `deadline`; re-reads the secret once after an auth failure so a rotated key is picked
    /// up without a redeploy.
    pub(super) async fn drain_item(
        &self,
        id: &ConnectorId,
        lease: &mut Lease,
        item: &CursorItem,
        kind: StreamKind,
        deadline: Instant,
    ) -> Drained<F::Source> {
        let mut retried = false;
        loop {
            let session = match self.session(id).await {
                Ok(session) => session,
                Err(err) => {
                    return Drained {
                        report: DrainReport {
                            stop_reason: Some(StopReason::Failed),
                            ..DrainReport::default()
                        },
                        error: Some(err),
                        session: None,
                    }
                }
            };
            let normalizer = Normalizer::new(NormalizerConfig {
                org: session
                    .config
                    .org_url
                    .as_url()
                    .host_str()
                    .unwrap_or_default()
                    .to_string(),
                connector_id: id.to_string(),
                policy: session.config.event_policy,
                include_raw: session.config.include_raw,
            });
            let sink = DeadLettering::new(&self.sink, self.dead_letters.as_deref(), id.as_str());
            let drain = Drain {
                source: session.source.as_ref(),
                store: &self.store,
                sink: &sink,
                normalizer: &normalizer,
                format: self.format.as_ref(),
                settings: &self.settings.drain,
                writes_deadline: self.writes_deadline(deadline),
            };
            let work_deadline = self.work_deadline(deadline);
            let (report, error) = drain.run(lease, item, kind, work_deadline).await;
            let auth_failed = matches!(
                &error,
                Some(DrainError::Okta(OktaError::AuthRejected { .. }))
            );
            if auth_failed && !retried && report.checkpoints == 0 {
                retried = true;
                self.secrets.invalidate(id.as_str());
                tracing::warn!(connector_id = %id, "Okta rejected the credentials; re-reading the secret once");
                continue;
            }
            return Drained {
                report,
                error: error.map(RunError::Drain),
                session: Some(session),
            };
        }
    }

    /// The connector's credentials and Okta source (cached while the secret is unchanged).
    pub(super) async fn session(&self, id: &ConnectorId) -> Result<Session<F::Source>, RunError> {
        let secret = self.secrets.fetch(id.as_str()).await?;
        self.sources.session(id.as_str(), &secret, &self.settings)
    }
}
