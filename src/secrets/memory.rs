//! In-memory secret source for tests, with rotation (`set`) and injected outages.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SecretSource, SecretString, SecretsError};

#[derive(Default)]
struct State {
    secrets: HashMap<String, SecretString>,
    fail_next: u32,
    fetches: u32,
}

#[derive(Default)]
pub struct MemorySecretSource {
    state: Mutex<State>,
}

impl MemorySecretSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores (or rotates) the connector's configuration text.
    pub fn set(&self, connector_id: &str, text: &str) {
        self.lock()
            .secrets
            .insert(connector_id.to_owned(), SecretString::new(text.to_owned()));
    }

    /// The next `n` fetches fail with a service error.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next += n;
    }

    /// Fetches made so far, failed ones included.
    pub fn fetches(&self) -> u32 {
        self.lock().fetches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SecretSource for MemorySecretSource {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError> {
        let mut state = self.lock();
        state.fetches += 1;
        let secret_id = format!("memory/{connector_id}");
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(SecretsError::Service {
                secret_id,
                message: "injected fault: ThrottlingException, retry later".into(),
            });
        }
        match state.secrets.get(connector_id) {
            Some(text) if text.expose().trim().is_empty() => Err(SecretsError::Empty { secret_id }),
            Some(text) => Ok(text.clone()),
            None => Err(SecretsError::NotFound { secret_id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_latest_set_value_and_counts_fetches() {
        let source = MemorySecretSource::new();
        assert!(matches!(
            source.fetch("acme").await,
            Err(SecretsError::NotFound { .. })
        ));
        source.set("acme", "v1");
        source.set("acme", "v2");
        assert_eq!(source.fetch("acme").await.unwrap().expose(), "v2");
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn injected_failures_then_recovery() {
        let source = MemorySecretSource::new();
        source.set("acme", "v1");
        source.fail_next(1);
        assert!(matches!(
            source.fetch("acme").await,
            Err(SecretsError::Service { .. })
        ));
        assert_eq!(source.fetch("acme").await.unwrap().expose(), "v1");
    }
}
