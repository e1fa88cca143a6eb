//! Caches connector configurations across warm Lambda invocations. Entries expire after a short
//! TTL and can be dropped early, so a rotated key is picked up without a redeploy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{SecretSource, SecretString, SecretsError};

/// How long a fetched configuration is reused.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(5 * 60);

pub struct CachedSecretSource<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl<S: SecretSource> CachedSecretSource<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        CachedSecretSource {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets the connector's cached configuration: the next fetch reads the source again
    /// (after an auth failure, in case the key was rotated).
    pub fn invalidate(&self, connector_id: &str) {
        self.lock().remove(connector_id);
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SecretString, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl<S: SecretSource> SecretSource for CachedSecretSource<S> {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError> {
        if let Some((value, fetched_at)) = self.lock().get(connector_id) {
            if fetched_at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        // Failures are not cached: the next invocation tries the source again.
        let value = self.inner.fetch(connector_id).await?;
        self.lock()
            .insert(connector_id.to_owned(), (value.clone(), Instant::now()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::memory::MemorySecretSource;

    fn cached(ttl: Duration) -> CachedSecretSource<MemorySecretSource> {
        let source = MemorySecretSource::new();
        source.set("acme", "v1");
        source.set("globex", "g1");
        CachedSecretSource::new(source, ttl)
    }

    #[tokio::test]
    async fn serves_from_cache_within_the_ttl() {
        let cache = cached(DEFAULT_SECRET_TTL);
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v1");
        cache.inner().set("acme", "v2");
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v1");
        assert_eq!(cache.inner().fetches(), 1);
    }

    #[tokio::test]
    async fn rereads_after_the_ttl() {
        let cache = cached(Duration::from_millis(30));
        cache.fetch("acme").await.unwrap();
        cache.inner().set("acme", "v2");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v2");
        assert_eq!(cache.inner().fetches(), 2);
    }

    #[tokio::test]
    async fn invalidate_rereads_only_that_connector() {
        let cache = cached(DEFAULT_SECRET_TTL);
        cache.fetch("acme").await.unwrap();
        cache.fetch("globex").await.unwrap();
        cache.inner().set("acme", "v2");
        cache.inner().set("globex", "g2");
        cache.invalidate("acme");
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v2");
        assert_eq!(cache.fetch("globex").await.unwrap().expose(), "g1");
        assert_eq!(cache.inner().fetches(), 3);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let cache = cached(DEFAULT_SECRET_TTL);
        cache.inner().fail_next(1);
        assert!(cache.fetch("acme").await.is_err());
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v1");
    }
}
