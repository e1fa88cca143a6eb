//! The actions of one connector (poll, test_connection, backfill, disable, resume), wired to
//! the outside systems. Everything here is generic over the cursor store, the secret source and
//! the sink, so the Lambda, the local CLI and the tests share it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::{ConfigError, ConnectorConfig, ValidationOptions};
use crate::cursor::{Claim, CursorItem, CursorStore, Lease, Pause, PausedBy, RunOutcome};
use crate::drain::{
    cursor_aged_out, Drain, DrainError, DrainReport, RecordFormat, StopReason, StreamKind,
    BACKFILL_DONE,
};
use crate::invocation::{Action, BackfillRequest, ConnectorId, Invocation};
use crate::normalize::{Normalizer, NormalizerConfig};
use crate::okta::ConnectionReport;
use crate::okta::OktaClient;
use crate::okta::OktaError;
use crate::secrets::cache::CachedSecretSource;
use crate::secrets::{SecretSource, SecretString, SecretsError};
use crate::settings::RunSettings;
use crate::sink::EventSink;

/// A lease outlives the invocation's deadline by this much, so a frozen or killed invocation
/// blocks the next one only briefly.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Below this much remaining time, a poll does not start backfill work.
const MIN_BACKFILL_SLICE: Duration = Duration::from_secs(5);

/// Why an action could not run at all.
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
    Cursor(#[from] crate::cursor::CursorError),
    #[error(transparent)]
    Invocation(#[from] crate::invocation::InvocationError),
}

/// The JSON result of an invocation (also logged as one line).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub connector_id: String,
    pub action: &'static str,
    /// `ok`, `lease_held`, `paused` or `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillProgress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateView>,
    pub okta_requests: u64,
    pub okta_throttled: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<u32>,
    pub duration_ms: u64,
}

/// What operators need to see of a cursor item.
#[derive(Debug, Serialize)]
pub struct StateView {
    pub consecutive_failures: u32,
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest_published: Option<OffsetDateTime>,
    pub has_cursor: bool,
    pub delivered_total: u64,
}

impl From<&CursorItem> for StateView {
    fn from(item: &CursorItem) -> Self {
        StateView {
            consecutive_failures: item.consecutive_failures,
            paused: item.paused.is_some(),
            pause_reason: item.paused.as_ref().map(|p| p.reason.clone()),
            paused_by: item.paused.as_ref().map(|p| p.by.as_str()),
            last_success_at: item.last_success_at,
            newest_published: item.newest_published,
            has_cursor: item.cursor.is_some(),
            delivered_total: item.delivered_total,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BackfillProgress {
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    /// Share of the window's time span read so far (0.0 ..= 1.0).
    pub done_fraction: f64,
    pub complete: bool,
    pub events_delivered: u64,
}

impl BackfillProgress {
    fn of(item: &CursorItem) -> Option<BackfillProgress> {
        let window = item.window?;
        let complete = item.cursor.as_deref() == Some(BACKFILL_DONE);
        let span = (window.end - window.start).as_seconds_f64();
        let done = item
            .newest_published
            .map_or(0.0, |newest| (newest - window.start).as_seconds_f64());
        let done_fraction = if complete {
            1.0
        } else {
            (done / span).clamp(0.0, 1.0)
        };
        Some(BackfillProgress {
            window_start: window.start,
            window_end: window.end,
            done_fraction,
            complete,
            events_delivered: item.delivered_total,
        })
    }
}

/// One connector runtime: shared across warm invocations so secrets and OAuth tokens are
/// cached between them.
pub struct Connector<S, C, K> {
    secrets: CachedSecretSource<S>,
    store: C,
    sink: K,
    settings: RunSettings,
    format: RecordFormat,
    clients: Mutex<HashMap<String, CachedClient>>,
}

struct CachedClient {
    fingerprint: [u8; 32],
    client: Arc<OktaClient>,
    config: Arc<ConnectorConfig>,
}

/// A connector's credentials, parsed and ready.
struct Session {
    client: Arc<OktaClient>,
    config: Arc<ConnectorConfig>,
}

impl<S: SecretSource, C: CursorStore, K: EventSink> Connector<S, C, K> {
    pub fn new(secrets: S, store: C, sink: K, settings: RunSettings) -> Self {
        Connector {
            secrets: CachedSecretSource::new(secrets, settings.secret_cache_ttl),
            store,
            sink,
            settings,
            format: RecordFormat::Normalized,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Write Okta's raw events instead of normalized ones (the local CLI's `--format raw`).
    pub fn with_format(mut self, format: RecordFormat) -> Self {
        self.format = format;
        self
    }

    /// Runs one invocation. `deadline` is when the runtime stops this invocation.
    pub async fn handle(
        &self,
        invocation: &Invocation,
        deadline: Instant,
    ) -> Result<Summary, Summary> {
        let started = Instant::now();
        let id = &invocation.connector_id;
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
        };
        summary.duration_ms = started.elapsed().as_millis() as u64;
        if let Some(client) = self.cached_client(id) {
            let stats = client.stats();
            summary.okta_requests = stats.requests;
            summary.okta_throttled = stats.throttled_429;
            summary.rate_limit_remaining = stats.last_rate_limit.map(|r| r.remaining);
        }
        match result {
            Ok(()) => Ok(summary),
            Err(err) => {
                summary.outcome = "failed";
                summary.message = Some(err.to_string());
                Err(summary)
            }
        }
    }

    async fn poll(
        &self,
        id: &ConnectorId,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let poll_started = OffsetDateTime::now_utc();
        let Some((mut lease, item)) = self.claim(&id.live_key(), deadline, summary).await? else {
            return Ok(());
        };
        let work_deadline = self.work_deadline(deadline);
        let (report, session) = self
            .drain(id, &mut lease, &item, StreamKind::Live, work_deadline)
            .await;
        let failure = self.finish(&lease, &report, summary).await?;
        summary.drain = Some(report);
        if let Some(err) = failure {
            return Err(err);
        }

        let Some(session) = session else {
            return Ok(());
        };
        if work_deadline.saturating_duration_since(Instant::now()) > MIN_BACKFILL_SLICE {
            // Live work is done: the rest of the budget goes to the backfill. Its failures are
            // recorded on the backfill's own item and do not fail the poll.
            let first_poll = item.cursor.is_none();
            let slice =
                self.backfill_slice(id, &session, first_poll, poll_started, deadline, summary);
            if let Err(err) = slice.await {
                tracing::warn!(connector_id = %id, error = %err, "backfill slice failed");
                summary.message = Some(format!("live poll done; backfill slice failed: {err}"));
            }
        }
        Ok(())
    }

    /// Continues a backfill in progress, or starts the one `backfill_on_setup` asks for until
    /// it has recorded its window (a failed first attempt is retried by the next poll).
    async fn backfill_slice(
        &self,
        id: &ConnectorId,
        session: &Session,
        first_poll: bool,
        poll_started: OffsetDateTime,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let stored = self.store.load(&id.backfill_key()).await?;
        let request = match stored {
            Some(backfill) if backfill.window.is_some() => {
                if backfill.cursor.as_deref() == Some(BACKFILL_DONE) {
                    return Ok(());
                }
                None
            }
            _ if session.config.backfill_on_setup => {
                // The first poll's live stream starts at poll start - lookback: end a minute
                // later so the two overlap instead of leaving a gap (dedupe is by uuid). A later
                // retry ends now, overlapping everything the live stream has read since.
                let end = if first_poll {
                    poll_started - self.settings.drain.lookback + Duration::from_secs(60)
                } else {
                    OffsetDateTime::now_utc()
                };
                Some(BackfillRequest {
                    end: Some(end),
                    ..Default::default()
                })
            }
            _ => return Ok(()),
        };
        let mut slice = Summary::new(id, "backfill");
        let result = self.backfill(id, request, deadline, &mut slice).await;
        summary.backfill = slice.backfill;
        result
    }

    /// Runs (or continues) the backfill. `request` is `None` when a poll continues one.
    async fn backfill(
        &self,
        id: &ConnectorId,
        request: Option<BackfillRequest>,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        // An operator pause stops the backfill as well as the live poll.
        if let Some(live) = self.store.load(&id.live_key()).await? {
            if let Some(pause) = &live.paused {
                summary.outcome = "paused";
                summary.message = Some(format!("connector is paused: {}", pause.reason));
                summary.state = Some(StateView::from(&live));
                return Ok(());
            }
        }
        // Bad windows are refused before anything is claimed.
        let now = OffsetDateTime::now_utc();
        let requested = request.map(|r| r.window(now)).transpose()?;
        let Some((mut lease, stored)) = self.claim(&id.backfill_key(), deadline, summary).await?
        else {
            return Ok(());
        };
        let complete = stored.cursor.as_deref() == Some(BACKFILL_DONE);
        let (item, window) = match (stored.window, requested) {
            // A finished backfill (or none yet) makes room for the requested window.
            (Some(_), Some(window)) if complete => (fresh(&stored), window),
            (None, Some(window)) => (fresh(&stored), window),
            (Some(current), requested) => {
                if requested.is_some_and(|w| w != current) {
                    summary.message = Some(format!(
                        "a backfill of {} .. {} is in progress and continues; request a new window once it completes",
                        current.start, current.end
                    ));
                }
                (stored.clone(), current)
            }
            (None, None) => {
                let outcome = RunOutcome::Success;
                let pause_after = self.settings.pause_after_failures;
                self.store
                    .release(&lease, &outcome, pause_after, now)
                    .await?;
                summary.message = Some("no backfill has been requested".into());
                return Ok(());
            }
        };
        let work_deadline = self.work_deadline(deadline);
        let (report, _) = self
            .drain(
                id,
                &mut lease,
                &item,
                StreamKind::Backfill(window),
                work_deadline,
            )
            .await;
        let failure = self.finish(&lease, &report, summary).await?;
        if summary.drain.is_none() {
            summary.drain = Some(report);
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    async fn test_connection(
        &self,
        id: &ConnectorId,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let session = self.session(id).await?;
        let report = session
            .client
            .test_connection(OffsetDateTime::now_utc(), self.work_deadline(deadline))
            .await?;
        summary.connection = Some(report);
        Ok(())
    }

    async fn disable(
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
            .set_pause(&id.live_key(), Some(pause), now)
            .await?;
        summary.state = Some(StateView::from(&item));
        summary.message = Some("connector disabled; polls return at once until resumed".into());
        Ok(())
    }

    async fn resume(&self, id: &ConnectorId, summary: &mut Summary) -> Result<(), RunError> {
        let now = OffsetDateTime::now_utc();
        let item = self.store.set_pause(&id.live_key(), None, now).await?;
        // A backfill that paused itself resumes with the connector.
        let backfill_key = id.backfill_key();
        if let Some(backfill) = self.store.load(&backfill_key).await? {
            if backfill.paused.is_some() || backfill.consecutive_failures > 0 {
                self.store.set_pause(&backfill_key, None, now).await?;
            }
        }
        let aged_out = cursor_aged_out(&item, now);
        summary.message = Some(if aged_out {
            "connector resumed; its cursor is older than Okta's 90-day retention, so the next poll restarts from the oldest retained event (older events are gone)".into()
        } else {
            "connector resumed; the next poll continues from the stored cursor".into()
        });
        summary.state = Some(StateView::from(&item));
        Ok(())
    }

    /// Claims an item's lease; `None` (with the summary filled in) when it is held or paused.
    async fn claim(
        &self,
        key: &str,
        deadline: Instant,
        summary: &mut Summary,
    ) -> Result<Option<(Lease, CursorItem)>, RunError> {
        let now = OffsetDateTime::now_utc();
        let owner = uuid::Uuid::new_v4().to_string();
        let lease_until = now + deadline.saturating_duration_since(Instant::now()) + LEASE_MARGIN;
        match self.store.claim(key, &owner, now, lease_until).await? {
            Claim::Acquired { lease, item } => Ok(Some((lease, item))),
            Claim::Held { until, .. } => {
                summary.outcome = "lease_held";
                summary.message = Some(format!(
                    "another invocation holds {key} until {until}; nothing to do"
                ));
                Ok(None)
            }
            Claim::Paused(pause) => {
                summary.outcome = "paused";
                summary.message = Some(format!(
                    "connector is paused by {}: {}",
                    pause.by.as_str(),
                    pause.reason
                ));
                Ok(None)
            }
        }
    }

    /// Releases the lease with the run's outcome; returns the error to report, if any.
    async fn finish(
        &self,
        lease: &Lease,
        report: &DrainReport,
        summary: &mut Summary,
    ) -> Result<Option<RunError>, RunError> {
        if report.stop_reason == Some(StopReason::LeaseLost) {
            // Someone else owns the item now: there is nothing of ours to release.
            summary.message =
                Some("lease was taken over mid-drain; stopped without writing".into());
            return Ok(None);
        }
        let outcome = match &report.error {
            None => RunOutcome::Success,
            // Progress was made and the failure may heal: the stream is not stuck.
            Some(err) if report.checkpoints > 0 && !err.pauses_connector() => RunOutcome::Success,
            Some(err) => RunOutcome::Failure {
                error: err.to_string(),
                pause_now: err.pauses_connector(),
            },
        };
        let now = OffsetDateTime::now_utc();
        let item = self
            .store
            .release(lease, &outcome, self.settings.pause_after_failures, now)
            .await?;
        summary.state = Some(StateView::from(&item));
        summary.backfill = BackfillProgress::of(&item);
        if let Some(err) = &report.error {
            if matches!(outcome, RunOutcome::Success) {
                summary.message = Some(format!("stopped early after progress: {err}"));
            }
        }
        Ok(match outcome {
            RunOutcome::Success => None,
            RunOutcome::Failure { error, .. } => Some(RunError::Drain(DrainError::Failed(error))),
        })
    }

    /// Reads credentials and drains; re-reads the secret once after an auth failure so a
    /// rotated key is picked up without a redeploy.
    async fn drain(
        &self,
        id: &ConnectorId,
        lease: &mut Lease,
        item: &CursorItem,
        kind: StreamKind,
        deadline: Instant,
    ) -> (DrainReport, Option<Session>) {
        let mut retried = false;
        loop {
            let session = match self.session(id).await {
                Ok(session) => session,
                Err(err) => return (failed_report(err), None),
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
            let drain = Drain {
                source: session.client.as_ref(),
                store: &self.store,
                sink: &self.sink,
                normalizer: &normalizer,
                settings: &self.settings.drain,
                format: self.format,
            };
            let report = drain.run(lease, item, kind, deadline).await;
            let auth_failed = matches!(
                &report.error,
                Some(DrainError::Okta(OktaError::AuthRejected { .. }))
            );
            if auth_failed && !retried && report.checkpoints == 0 {
                retried = true;
                self.secrets.invalidate(id.as_str());
                tracing::warn!(connector_id = %id, "Okta rejected the credentials; re-reading the secret once");
                continue;
            }
            return (report, Some(session));
        }
    }

    async fn session(&self, id: &ConnectorId) -> Result<Session, RunError> {
        let secret = self.secrets.fetch(id.as_str()).await?;
        let fingerprint = fingerprint(&secret, self.settings.allow_insecure_loopback);
        if let Some(cached) = self.clients.lock().expect("client cache").get(id.as_str()) {
            if cached.fingerprint == fingerprint {
                return Ok(Session {
                    client: cached.client.clone(),
                    config: cached.config.clone(),
                });
            }
        }
        let options = ValidationOptions {
            allow_insecure_loopback: self.settings.allow_insecure_loopback,
        };
        let config = Arc::new(ConnectorConfig::from_json(secret.expose(), options)?);
        let client = Arc::new(OktaClient::new(
            &config.org_url,
            &config.auth,
            self.settings.okta.clone(),
        )?);
        self.clients.lock().expect("client cache").insert(
            id.as_str().to_string(),
            CachedClient {
                fingerprint,
                client: client.clone(),
                config: config.clone(),
            },
        );
        Ok(Session { client, config })
    }

    fn cached_client(&self, id: &ConnectorId) -> Option<Arc<OktaClient>> {
        self.clients
            .lock()
            .expect("client cache")
            .get(id.as_str())
            .map(|c| c.client.clone())
    }

    fn work_deadline(&self, deadline: Instant) -> Instant {
        deadline
            .checked_sub(self.settings.safety_margin)
            .unwrap_or_else(Instant::now)
            .max(Instant::now())
    }
}

impl Summary {
    fn new(id: &ConnectorId, action: &'static str) -> Summary {
        Summary {
            connector_id: id.to_string(),
            action,
            outcome: "ok",
            message: None,
            drain: None,
            backfill: None,
            connection: None,
            state: None,
            okta_requests: 0,
            okta_throttled: 0,
            rate_limit_remaining: None,
            duration_ms: 0,
        }
    }
}

fn fresh(item: &CursorItem) -> CursorItem {
    CursorItem {
        cursor: None,
        window: None,
        ..item.clone()
    }
}

fn failed_report(err: RunError) -> DrainReport {
    DrainReport {
        stop_reason: Some(StopReason::Failed),
        error: Some(match err {
            RunError::Drain(err) => err,
            other => DrainError::Failed(other.to_string()),
        }),
        ..DrainReport::default()
    }
}

fn fingerprint(secret: &SecretString, insecure: bool) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([u8::from(insecure)]);
    hasher.update(secret.expose().as_bytes());
    hasher.finalize().into()
}
