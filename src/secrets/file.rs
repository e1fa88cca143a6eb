//! Connector configuration from a local file (the CLI's `--config FILE`).

use std::path::PathBuf;

use async_trait::async_trait;

use super::{SecretSource, SecretString, SecretsError};

/// Reads the file on every fetch, so edits apply to the next run without a restart.
pub struct FileSecretSource {
    path: PathBuf,
}

impl FileSecretSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSecretSource { path: path.into() }
    }
}

#[async_trait]
impl SecretSource for FileSecretSource {
    /// The file holds one connector's configuration, whatever the connector id.
    async fn fetch(&self, _connector_id: &str) -> Result<SecretString, SecretsError> {
        let secret_id = self.path.display().to_string();
        match tokio::fs::read_to_string(&self.path).await {
            Ok(text) if text.trim().is_empty() => Err(SecretsError::Empty { secret_id }),
            Ok(text) => Ok(SecretString::new(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SecretsError::NotFound { secret_id })
            }
            Err(e) => Err(SecretsError::Service {
                secret_id,
                message: format!("cannot read the config file: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.json");
        std::fs::write(&path, "{\"org_url\":\"https://acme.okta.com\"}").unwrap();
        let text = FileSecretSource::new(&path).fetch("acme").await.unwrap();
        assert_eq!(text.expose(), "{\"org_url\":\"https://acme.okta.com\"}");
    }

    #[tokio::test]
    async fn missing_and_blank_files_are_distinct_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(matches!(
            FileSecretSource::new(&missing).fetch("acme").await,
            Err(SecretsError::NotFound { secret_id }) if secret_id.ends_with("missing.json")
        ));
        let blank = dir.path().join("blank.json");
        std::fs::write(&blank, " \n").unwrap();
        assert!(matches!(
            FileSecretSource::new(&blank).fetch("acme").await,
            Err(SecretsError::Empty { .. })
        ));
    }
}
