//! Connector configuration from AWS Secrets Manager, one secret per connector.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::{SecretSource, SecretString, SecretsError};

/// Replaced by the connector id in a secret id template.
pub const CONNECTOR_ID_PLACEHOLDER: &str = "{connector_id}";

/// Secret id used when `SECRET_ID_TEMPLATE` is not set.
pub const DEFAULT_SECRET_ID_TEMPLATE: &str = "okta-ingest/{connector_id}";

pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    template: String,
}

impl SecretsManagerSource {
    /// `template` names the secret; `{connector_id}` in it is replaced by the connector id.
    pub fn new(client: aws_sdk_secretsmanager::Client, template: String) -> Self {
        SecretsManagerSource { client, template }
    }

    /// A client for the source: the SDK configuration `aws` with [`crate::aws::call_timeouts`].
    pub fn client(aws: &SdkConfig) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::config::Builder::from(aws)
            .timeout_config(crate::aws::call_timeouts())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    pub fn secret_id(&self, connector_id: &str) -> String {
        self.template
            .replace(CONNECTOR_ID_PLACEHOLDER, connector_id)
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self, connector_id: &str) -> Result<SecretString, SecretsError> {
        let secret_id = self.secret_id(connector_id);
        let output = self
            .client
            .get_secret_value()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    SecretsError::NotFound {
                        secret_id: secret_id.clone(),
                    }
                } else {
                    // Error responses never carry the secret value, only its id and the cause.
                    SecretsError::Service {
                        secret_id: secret_id.clone(),
                        message: DisplayErrorContext(&err).to_string(),
                    }
                }
            })?;
        match output.secret_string {
            Some(text) if !text.trim().is_empty() => Ok(SecretString::new(text)),
            _ => Err(SecretsError::Empty { secret_id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_id_fills_the_connector_into_the_template() {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .build();
        let source = SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::from_conf(config),
            "prod/{connector_id}/okta".into(),
        );
        assert_eq!(source.secret_id("acme"), "prod/acme/okta");
    }
}
