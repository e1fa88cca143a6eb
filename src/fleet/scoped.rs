//! Per-connector credentials: every secret read, cursor write and dead letter of an invocation goes
//! through AWS clients whose credentials come from assuming the connector-access role with the
//! session tag `connector_id`, so IAM (not only this code) keeps one connector away from another's
//! secret, cursor items and dead letters. Clients, and with them the credentials, are cached per connector in a bounded LRU
//! and refreshed before they expire.
//!
//! Without a role (`CONNECTOR_ACCESS_ROLE_ARN` unset: local runs, tests) every connector shares
//! clients with the function's own credentials.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::config::SharedCredentialsProvider;
use lru::LruCache;
use time::OffsetDateTime;

use crate::cursor::dynamodb::DynamoCursorStore;
use crate::cursor::{
    Checkpoint, Claim, CursorError, CursorItem, CursorStore, Lease, Pause, RunOutcome,
};
use crate::deadletter::s3::S3DeadLetterStore;
use crate::deadletter::{DeadLetter, DeadLetterError, DeadLetterStore, TargetStream};
use crate::secrets::secrets_manager::SecretsManagerSource;
use crate::secrets::{SecretSource, SecretString, SecretsError};
use tokio::time::Instant;

/// The session tag IAM conditions read (`${aws:PrincipalTag/connector_id}`).
pub const SESSION_TAG: &str = "connector_id";
/// Assumed-role sessions last this long; the clients renew them shortly before.
const SESSION_LENGTH: Duration = Duration::from_secs(3600);

/// The AWS clients one connector's invocations use.
pub struct ConnectorClients {
    /// The configuration the clients were built from (its credentials are the connector's session).
    pub config: SdkConfig,
    pub secrets: SecretsManagerSource,
    pub cursors: DynamoCursorStore,
    /// Built on the first refused event: most connectors never have one, and a cached
    /// connector should not hold an S3 client it does not use.
    dead_letters: OnceLock<Arc<S3DeadLetterStore>>,
}

/// Where refused events are kept: the bucket and the KMS key objects are encrypted with.
#[derive(Debug, Clone)]
pub struct DeadLetterBucket {
    pub bucket: String,
    pub kms_key: Option<String>,
}

/// Secret source and cursor store that act, for each call, with the credentials of the connector the
/// call is for.
pub struct ScopedAccess {
    base: SdkConfig,
    role_arn: Option<String>,
    secret_id_template: String,
    cursor_table: String,
    dead_letter_bucket: Option<DeadLetterBucket>,
    /// Shared clients on the function's own credentials (no role) .
    unscoped: Option<Arc<ConnectorClients>>,
    cache: Mutex<LruCache<String, Arc<ConnectorClients>>>,
}

impl ScopedAccess {
    /// `role_arn` `None`: the function's own credentials for every connector. Every call of the
    /// clients (and of STS for their sessions) is bounded by [`crate::aws::call_timeouts`].
    pub fn new(
        base: SdkConfig,
        role_arn: Option<String>,
        secret_id_template: String,
        cursor_table: String,
        cache_size: NonZeroUsize,
    ) -> Self {
        // One HTTPS client for every connector's session: requests are signed per connector,
        // so sharing TLS setup and pooled connections to the same endpoints shares no credentials.
        let base = crate::aws::with_shared_https(base)
            .into_builder()
            .timeout_config(crate::aws::call_timeouts())
            .build();
        ScopedAccess {
            base,
            role_arn,
            secret_id_template,
            cursor_table,
            dead_letter_bucket: None,
            unscoped: None,
            cache: Mutex::new(LruCache::new(cache_size)),
        }
        .with_unscoped_clients()
    }

    /// Dead letters go to `bucket`, under each connector's own prefix and credentials.
    pub fn with_dead_letters(mut self, bucket: DeadLetterBucket) -> Self {
        self.dead_letter_bucket = Some(bucket);
        self.with_unscoped_clients()
    }

    fn with_unscoped_clients(mut self) -> Self {
        self.unscoped = self
            .role_arn
            .is_none()
            .then(|| Arc::new(self.build_clients(self.base.clone())));
        self
    }

    fn build_clients(&self, config: SdkConfig) -> ConnectorClients {
        ConnectorClients {
            secrets: SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&config),
                self.secret_id_template.clone(),
            ),
            cursors: DynamoCursorStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                self.cursor_table.clone(),
            ),
            dead_letters: OnceLock::new(),
            config,
        }
    }

    pub fn is_scoped(&self) -> bool {
        self.role_arn.is_some()
    }

    /// Connectors whose clients are cached now.
    pub fn cached_connectors(&self) -> usize {
        self.lock().len()
    }

    /// The clients for `connector_id`, built (with a fresh assumed-role session) on first use and
    /// after eviction.
    pub async fn clients(&self, connector_id: &str) -> Arc<ConnectorClients> {
        let Some(role_arn) = &self.role_arn else {
            return self
                .unscoped
                .clone()
                .expect("unscoped clients exist without a role");
        };
        if let Some(clients) = self.lock().get(connector_id) {
            return clients.clone();
        }
        let provider = AssumeRoleProvider::builder(role_arn)
            .session_name(session_name(connector_id))
            .session_length(SESSION_LENGTH)
            .tags([(SESSION_TAG, connector_id)])
            .configure(&self.base)
            .build()
            .await;
        // A cache of its own: the connector's secret and cursor clients share one session, and nothing
        // cached for this connector can serve another.
        let config = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .identity_cache(IdentityCache::lazy().build())
            .build();
        let clients = Arc::new(self.build_clients(config));
        self.lock().put(connector_id.to_string(), clients.clone());
        clients
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<ConnectorClients>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `okta-ingest-<id>`, within STS's 64 characters (the tag, not the name, is what IAM checks).
fn session_name(connector_id: &str) -> String {
    let mut name = format!("okta-ingest-{connector_id}");
    name.truncate(64);
    name
}

/// The connector a cursor key belongs to (`<id>` or `<id>#backfill`).
fn connector_of(key: &str) -> &str {
    key.split('#').next().unwrap_or(key)
}

#[async_trait]
impl SecretSource for ScopedAccess {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError> {
        self.clients(connector_id)
            .await
            .secrets
            .fetch(connector_id)
            .await
    }
}

#[async_trait]
impl CursorStore for ScopedAccess {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError> {
        self.clients(connector_of(key))
            .await
            .cursors
            .load(key)
            .await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError> {
        let clients = self.clients(connector_of(key)).await;
        clients.cursors.claim(key, owner, now, lease_until).await
    }

    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError> {
        let clients = self.clients(connector_of(&lease.key)).await;
        clients.cursors.checkpoint(lease, update, now).await
    }

    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        let clients = self.clients(connector_of(&lease.key)).await;
        clients
            .cursors
            .release(lease, outcome, pause_after, now)
            .await
    }

    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        let clients = self.clients(connector_of(key)).await;
        clients.cursors.set_pause(key, pause, now).await
    }
}

impl ScopedAccess {
    async fn dead_letters_of(
        &self,
        connector_id: &str,
    ) -> Result<Arc<S3DeadLetterStore>, DeadLetterError> {
        let target = self.dead_letter_bucket.as_ref().ok_or_else(|| {
            DeadLetterError::Service(
                "no dead-letter bucket is configured (set DEAD_LETTER_BUCKET)".into(),
            )
        })?;
        let clients = self.clients(connector_id).await;
        let store = clients.dead_letters.get_or_init(|| {
            Arc::new(S3DeadLetterStore::new(
                crate::deadletter::s3::client(&clients.config),
                target.bucket.clone(),
                target.kms_key.clone(),
            ))
        });
        Ok(store.clone())
    }
}

#[async_trait]
impl DeadLetterStore for ScopedAccess {
    async fn put(&self, letter: &DeadLetter, deadline: Instant) -> Result<(), DeadLetterError> {
        self.dead_letters_of(&letter.connector_id)
            .await?
            .put(letter, deadline)
            .await
    }

    async fn list(
        &self,
        connector_id: &str,
        stream: TargetStream,
        deadline: Instant,
    ) -> Result<Vec<String>, DeadLetterError> {
        self.dead_letters_of(connector_id)
            .await?
            .list(connector_id, stream, deadline)
            .await
    }

    async fn get(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<Option<DeadLetter>, DeadLetterError> {
        self.dead_letters_of(connector_id)
            .await?
            .get(connector_id, stream, event_id, deadline)
            .await
    }

    async fn delete(
        &self,
        connector_id: &str,
        stream: TargetStream,
        event_id: &str,
        deadline: Instant,
    ) -> Result<(), DeadLetterError> {
        self.dead_letters_of(connector_id)
            .await?
            .delete(connector_id, stream, event_id, deadline)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keys_name_their_connector() {
        assert_eq!(connector_of("acme"), "acme");
        assert_eq!(connector_of("acme#backfill"), "acme");
    }

    #[test]
    fn session_names_stay_within_sts_limits() {
        assert_eq!(session_name("acme"), "okta-ingest-acme");
        assert_eq!(session_name(&"a".repeat(64)).len(), 64);
    }
}
