//! The Okta source of each connector, built once per configuration and reused by warm
//! invocations, so OAuth tokens and the rate-limit window carry over between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::RunError;
use crate::config::{ConnectorConfig, ValidationOptions};
use crate::okta::{LogSource, RequestStats, SourceFactory};
use crate::secrets::SecretString;
use crate::settings::RunSettings;

/// A connector's credentials, parsed, with the source they open.
pub(super) struct Session<L> {
    pub(super) source: Arc<L>,
    pub(super) config: Arc<ConnectorConfig>,
}

struct Cached<L> {
    /// Of the secret text: a changed secret builds a new source.
    fingerprint: [u8; 32],
    session: Session<L>,
}

impl<L> Clone for Session<L> {
    fn clone(&self) -> Self {
        Session {
            source: self.source.clone(),
            config: self.config.clone(),
        }
    }
}

pub(super) struct Sources<F: SourceFactory> {
    factory: F,
    cache: Mutex<HashMap<String, Cached<F::Source>>>,
}

impl<F: SourceFactory> Sources<F> {
    pub(super) fn new(factory: F) -> Self {
        Sources {
            factory,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The session for this secret: the cached one while the secret is unchanged.
    pub(super) fn session(
        &self,
        connector_id: &str,
        secret: &SecretString,
        settings: &RunSettings,
    ) -> Result<Session<F::Source>, RunError> {
        let fingerprint = fingerprint(secret, settings.allow_insecure_loopback);
        if let Some(cached) = self.lock().get(connector_id) {
            if cached.fingerprint == fingerprint {
                return Ok(cached.session.clone());
            }
        }
        let options = ValidationOptions {
            allow_insecure_loopback: settings.allow_insecure_loopback,
        };
        let config = Arc::new(ConnectorConfig::from_json(secret.expose(), options)?);
        let source = Arc::new(self.factory.source(
            &config.org_url,
            &config.auth,
            &settings.okta,
        )?);
        let session = Session { source, config };
        self.lock().insert(
            connector_id.to_string(),
            Cached {
                fingerprint,
                session: session.clone(),
            },
        );
        Ok(session)
    }

    /// The counters of the connector's current source (zero before it has one).
    pub(super) fn stats(&self, connector_id: &str) -> RequestStats {
        self.lock()
            .get(connector_id)
            .map(|cached| cached.session.source.stats())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached<F::Source>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fingerprint(secret: &SecretString, insecure: bool) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([u8::from(insecure)]);
    hasher.update(secret.expose().as_bytes());
    hasher.finalize().into()
}
