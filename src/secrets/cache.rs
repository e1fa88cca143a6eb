//! Caches connector configurations across warm Lambda invocations. Entries expire after a short
//! TTL and can be dropped early, so a rotated key is picked up without a redeploy; at most
//! `capacity` connectors are kept (the least recently used go first), so a container serving
//! many connectors holds the same memory however many it has seen.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lru::LruCache;
use tokio::time::Instant;

use super::{SecretSource, SecretString, SecretsError};

/// How long a fetched configuration is reused.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(5 * 60);

pub struct CachedSecretSource<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<LruCache<String, (SecretString, Instant)>>,
}

impl<S: SecretSource> CachedSecretSource<S> {
    pub fn new(inner: S, ttl: Duration, capacity: NonZeroUsize) -> Self {
        CachedSecretSource {
            inner,
            ttl,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// Forgets the connector's cached configuration: the next fetch reads the source again
    /// (after an auth failure, in case the key was rotated).
    pub fn invalidate(&self, connector_id: &str) {
        self.lock().pop(connector_id);
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, (SecretString, Instant)>> {
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
            .put(connector_id.to_owned(), (value.clone(), Instant::now()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::memory::MemorySecretSource;

    fn cached(ttl: Duration) -> CachedSecretSource<MemorySecretSource> {
        cached_with(ttl, 16)
    }

    fn cached_with(ttl: Duration, capacity: usize) -> CachedSecretSource<MemorySecretSource> {
        let source = MemorySecretSource::new();
        source.set("acme", "v1");
        source.set("globex", "g1");
        source.set("initech", "i1");
        CachedSecretSource::new(source, ttl, NonZeroUsize::new(capacity).unwrap())
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
    async fn keeps_at_most_its_capacity_dropping_the_least_recently_used() {
        let cache = cached_with(DEFAULT_SECRET_TTL, 2);
        cache.fetch("acme").await.unwrap();
        cache.fetch("globex").await.unwrap();
        cache.fetch("acme").await.unwrap();
        cache.fetch("initech").await.unwrap();
        assert_eq!(cache.lock().len(), 2);
        assert_eq!(cache.inner().fetches(), 3);
        // acme was used more recently than globex, so globex is the one read again.
        cache.fetch("acme").await.unwrap();
        assert_eq!(cache.inner().fetches(), 3);
        cache.fetch("globex").await.unwrap();
        assert_eq!(cache.inner().fetches(), 4);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let cache = cached(DEFAULT_SECRET_TTL);
        cache.inner().fail_next(1);
        assert!(cache.fetch("acme").await.is_err());
        assert_eq!(cache.fetch("acme").await.unwrap().expose(), "v1");
    }
}
