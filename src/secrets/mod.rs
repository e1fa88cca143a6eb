//! Where connector credentials come from: Secrets Manager in production, a file locally.

pub mod cache;
pub mod file;
/// The in-memory twin: test support, so never in the Lambda artifact.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod secrets_manager;

use async_trait::async_trait;
use zeroize::Zeroizing;

/// Secret text that never shows in Debug output and is wiped from memory on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {secret_id} does not exist")]
    NotFound { secret_id: String },
    #[error("secret {secret_id} has no string value (binary or empty)")]
    Empty { secret_id: String },
    #[error("reading secret {secret_id} failed: {message}")]
    Service { secret_id: String, message: String },
}

/// Returns the connector's configuration document (JSON, see [`crate::config`]).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError>;
}

#[async_trait]
impl<T: SecretSource + ?Sized> SecretSource for std::sync::Arc<T> {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError> {
        (**self).fetch(connector_id).await
    }
}
