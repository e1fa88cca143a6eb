//! The Okta source of each connector, built once per configuration and reused by warm
//! invocations, so OAuth tokens and the rate-limit window carry over between them.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

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
    /// Bounded: a warm container serving many connectors keeps only the most recently used.
    cache: Mutex<LruCache<String, Cached<F::Source>>>,
}

impl<F: SourceFactory> Sources<F> {
    pub(super) fn new(factory: F, capacity: NonZeroUsize) -> Self {
        Sources {
            factory,
            cache: Mutex::new(LruCache::new(capacity)),
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
        self.lock().put(
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

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Cached<F::Source>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fingerprint(secret: &SecretString, insecure: bool) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([u8::from(insecure)]);
    hasher.update(secret.expose().as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::okta::memory::MemoryLogSource;
    use crate::okta::{ClientOptions, Credentials, OktaError, OrgUrl};

    /// Builds a fresh source per call and remembers which org each was built for.
    #[derive(Default)]
    struct CountingFactory {
        built: AtomicUsize,
        orgs: Mutex<Vec<String>>,
    }

    impl SourceFactory for &CountingFactory {
        type Source = MemoryLogSource;

        fn source(
            &self,
            org: &OrgUrl,
            _: &Credentials,
            _: &ClientOptions,
        ) -> Result<MemoryLogSource, OktaError> {
            self.built.fetch_add(1, Ordering::SeqCst);
            self.orgs.lock().unwrap().push(org.to_string());
            Ok(MemoryLogSource::new())
        }
    }

    fn secret(org: &str) -> SecretString {
        SecretString::new(
            serde_json::json!({"org_url": format!("https://{org}.okta.com"),
                "auth": {"type": "ssws", "token": format!("00{org}-token-0123456789abcdef")}})
            .to_string(),
        )
    }

    #[test]
    fn sessions_are_per_connector_and_the_least_recently_used_is_dropped() {
        let factory = CountingFactory::default();
        let sources = Sources::new(&factory, NonZeroUsize::new(2).unwrap());
        let settings = RunSettings::default();
        let acme = sources.session("acme", &secret("acme"), &settings).unwrap();
        let globex = sources
            .session("globex", &secret("globex"), &settings)
            .unwrap();
        assert!(!Arc::ptr_eq(&acme.source, &globex.source));
        assert_eq!(globex.config.org_url.to_string(), "https://globex.okta.com");
        let again = sources.session("acme", &secret("acme"), &settings).unwrap();
        assert!(
            Arc::ptr_eq(&acme.source, &again.source),
            "cached while recent"
        );
        assert_eq!(factory.built.load(Ordering::SeqCst), 2);

        // A third connector evicts globex (least recently used), never acme's session.
        sources
            .session("initech", &secret("initech"), &settings)
            .unwrap();
        assert_eq!(sources.lock().len(), 2);
        let rebuilt = sources
            .session("globex", &secret("globex"), &settings)
            .unwrap();
        assert!(!Arc::ptr_eq(&globex.source, &rebuilt.source));
        assert_eq!(
            rebuilt.config.org_url.to_string(),
            "https://globex.okta.com"
        );
        assert_eq!(factory.built.load(Ordering::SeqCst), 4);
        // A connector presenting another's secret gets a session built from that secret, not the
        // cached one of its own id: the cache key is the id and the secret's fingerprint together.
        let swapped = sources
            .session("globex", &secret("acme"), &settings)
            .unwrap();
        assert_eq!(swapped.config.org_url.to_string(), "https://acme.okta.com");
        assert!(!Arc::ptr_eq(&swapped.source, &acme.source));
    }
}
