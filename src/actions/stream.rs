//! Draining one cursor item with the connector's credentials.

use tokio::time::Instant;

use super::sources::Session;
use super::{Connector, RunError};
use crate::config::ConfigError;
use crate::cursor::{CursorItem, CursorStore, Lease};
use crate::deadletter::TargetStream;
use crate::drain::{
    Drain, DrainError, DrainReport, Ocsf, Output, RecordFormat, StopReason, StreamKind,
};
use crate::invocation::ConnectorId;
use crate::normalize::outputs::Outputs;
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

impl<L> Drained<L> {
    /// Nothing was drained: a step before the drain failed.
    fn failed(error: RunError, session: Option<Session<L>>) -> Self {
        Drained {
            report: DrainReport {
                stop_reason: Some(StopReason::Failed),
                ..DrainReport::default()
            },
            error: Some(error),
            session,
        }
    }
}

/// One stream a connector publishes to, before its refusals are kept as dead letters.
struct Wanted<'a, K> {
    stream: TargetStream,
    sink: &'a K,
    format: &'a dyn RecordFormat,
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
                Err(err) => return Drained::failed(err, None),
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
            let wanted = match self.outputs(&session.config.outputs) {
                Ok(wanted) => wanted,
                Err(err) => return Drained::failed(err, Some(session)),
            };
            let sinks: Vec<_> = wanted
                .iter()
                .map(|output| {
                    DeadLettering::new(
                        output.sink,
                        self.dead_letters.as_deref(),
                        id.as_str(),
                        output.stream,
                    )
                })
                .collect();
            let outputs: Vec<_> = sinks
                .iter()
                .zip(&wanted)
                .map(|(sink, output)| Output {
                    sink,
                    format: output.format,
                })
                .collect();
            let drain = Drain {
                source: session.source.as_ref(),
                store: &self.store,
                outputs: &outputs,
                normalizer: &normalizer,
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

    /// The sinks and formats the connector document asks for. A local format override (the
    /// CLI's `--format`) writes only that format to the one sink.
    fn outputs(&self, wanted: &Outputs) -> Result<Vec<Wanted<'_, K>>, RunError> {
        let total = Wanted {
            stream: TargetStream::Events,
            sink: &self.sink,
            format: self.format.as_ref(),
        };
        if self.format_fixed {
            return Ok(vec![total]);
        }
        let mut outputs = Vec::with_capacity(2);
        if wanted.total {
            outputs.push(total);
        }
        if wanted.ocsf {
            let Some(sink) = &self.ocsf_sink else {
                return Err(RunError::Config(ConfigError::Field {
                    field: "outputs".to_owned(),
                    problem: "asks for \"ocsf\" but this deployment has no OCSF stream; set \
                              OCSF_STREAM or remove \"ocsf\""
                        .to_owned(),
                }));
            };
            outputs.push(Wanted {
                stream: TargetStream::Ocsf,
                sink,
                format: &Ocsf,
            });
        }
        Ok(outputs)
    }

    /// The connector's credentials and Okta source (cached while the secret is unchanged).
    pub(super) async fn session(&self, id: &ConnectorId) -> Result<Session<F::Source>, RunError> {
        let secret = self.secrets.fetch(id.as_str()).await?;
        self.sources.session(id.as_str(), &secret, &self.settings)
    }
}
