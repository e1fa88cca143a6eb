//! The actions of one connector, wired to the outside systems: [`Connector::handle`]
//! dispatches an invocation to one of them (one file each: poll, backfill, test_connection,
//! disable, resume). Everything here is generic over the ports, so the Lambda, the local CLI
//! and the tests share it.

mod backfill;
mod disable;
mod lease;
mod poll;
mod redrive;
mod resume;
mod sources;
mod stream;
mod summary;
mod tail;
mod takeover;
mod test_connection;

pub use summary::{BackfillProgress, Outcome, StateView, Summary};

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ConfigError;
use crate::cursor::{CursorError, CursorStore};
use crate::deadletter::DeadLetterStore;
use crate::drain::{DrainError, Normalized, RecordFormat};
use crate::invocation::{Action, Invocation, InvocationError};
use crate::okta::{OktaError, OktaSources, SourceFactory};
use crate::secrets::cache::CachedSecretSource;
use crate::secrets::{SecretSource, SecretsError};
use crate::settings::RunSettings;
use crate::sink::EventSink;
use sources::Sources;

/// A lease outlives the invocation's deadline by this much, so a frozen or killed invocation
/// blocks the next one only briefly.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Kept after the last cursor write to log the summary and answer the runtime.
const ANSWER_TIME: Duration = Duration::from_millis(500);

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Okta(#[from] OktaError),
    #[error(transparent)]
    Drain(#[from] DrainError),
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Invocation(#[from] InvocationError),
    #[error(transparent)]
    DeadLetters(#[from] crate::deadletter::DeadLetterError),
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error(
        "this deployment keeps no dead letters (DEAD_LETTER_BUCKET is not set): nothing to redrive"
    )]
    NoDeadLetterStore,
}

impl RunError {
    /// Failures retrying cannot heal (revoked or deactivated credentials, missing scope).
    pub fn pauses_connector(&self) -> bool {
        match self {
            RunError::Drain(err) => err.pauses_connector(),
            RunError::Okta(err) => err.pauses_connector(),
            _ => false,
        }
    }
}

/// One connector runtime: shared across warm invocations so secrets, OAuth tokens and the
/// rate-limit window are cached between them.
pub struct Connector<S, C, K, F: SourceFactory = OktaSources> {
    secrets: CachedSecretSource<S>,
    store: C,
    sink: K,
    sources: Sources<F>,
    settings: RunSettings,
    format: Arc<dyn RecordFormat>,
    /// Set by [`Connector::with_format`]: the document's `outputs` are not consulted.
    format_fixed: bool,
    /// Where OCSF records go, for connectors whose document asks for them.
    ocsf_sink: Option<K>,
    /// Where events the stream refuses for good are kept; without it they fail their page.
    dead_letters: Option<Arc<dyn DeadLetterStore>>,
}

impl<S: SecretSource, C: CursorStore, K: EventSink> Connector<S, C, K> {
    /// A connector reading Okta over HTTPS.
    pub fn new(secrets: S, store: C, sink: K, settings: RunSettings) -> Self {
        Connector::with_sources(secrets, store, sink, OktaSources, settings)
    }
}

impl<S: SecretSource, C: CursorStore, K: EventSink, F: SourceFactory> Connector<S, C, K, F> {
    /// A connector whose Okta sources come from `sources` (the in-memory twin in tests).
    pub fn with_sources(secrets: S, store: C, sink: K, sources: F, settings: RunSettings) -> Self {
        Connector {
            secrets: CachedSecretSource::new(
                secrets,
                settings.secret_cache_ttl,
                settings.connector_cache_size,
            ),
            store,
            sink,
            sources: Sources::new(sources, settings.connector_cache_size),
            settings,
            format: Arc::new(Normalized),
            format_fixed: false,
            ocsf_sink: None,
            dead_letters: None,
        }
    }

    /// Keeps events the stream refuses for good in `store`, so their page proceeds.
    pub fn with_dead_letters(mut self, store: Arc<dyn DeadLetterStore>) -> Self {
        self.dead_letters = Some(store);
        self
    }

    /// Writes records in another format than normalized TOTAL events (the CLI's raw output).
    /// The document's `outputs` are then ignored: every record goes to the one sink.
    pub fn with_format(mut self, format: Arc<dyn RecordFormat>) -> Self {
        self.format = format;
        self.format_fixed = true;
        self
    }

    /// The sink of OCSF records (the OCSF stream), for documents with `"ocsf"` in `outputs`.
    pub fn with_ocsf_sink(mut self, sink: K) -> Self {
        self.ocsf_sink = Some(sink);
        self
    }

    /// Runs one invocation. `deadline` is when the runtime stops this invocation. The summary
    /// says what happened, failures included (`outcome` `failed`, with the error).
    pub async fn handle(&self, invocation: &Invocation, deadline: Instant) -> Summary {
        let started = Instant::now();
        let id = &invocation.connector_id;
        let requests_before = self.sources.stats(id.as_str());
        let mut summary = Summary::new(id, invocation.action.name());
        let result = match &invocation.action {
            Action::Poll => self.poll(id, deadline, &mut summary).await,
            Action::Backfill(request) => {
                self.backfill(id, Some(*request), deadline, &mut summary)
                    .await
            }
            Action::TestConnection => self.test_connection(id, deadline, &mut summary).await,
            Action::Disable { reason } => self.disable(id, reason, &mut summary).await,
            Action::Resume => self.resume(id, &mut summary).await,
            Action::Redrive => self.redrive(id, deadline, &mut summary).await,
        };
        summary.duration_ms = started.elapsed().as_millis() as u64;
        summary.count_requests(requests_before, self.sources.stats(id.as_str()));
        if let Err(err) = result {
            summary.fail(err);
        }
        summary
    }

    /// The end of the work: the invocation's deadline less the margin kept for the last
    /// checkpoint and the release.
    fn work_deadline(&self, deadline: Instant) -> Instant {
        deadline
            .checked_sub(self.settings.safety_margin)
            .unwrap_or_else(Instant::now)
            .max(Instant::now())
    }

    /// When the last checkpoint and the release are cut, whatever the margin: the invocation's
    /// deadline less the time to answer, so a stalled store never lets the runtime kill it.
    fn writes_deadline(&self, deadline: Instant) -> Instant {
        deadline
            .checked_sub(ANSWER_TIME)
            .unwrap_or_else(Instant::now)
            .max(Instant::now())
    }
}

#[cfg(test)]
mod tests;
