//! Connector secrets as the operator manages them: created or updated with their tags, listed with
//! their tags, scheduled for deletion. The function only ever reads them ([`crate::secrets`]).

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use crate::fleet::scoped::SESSION_TAG;

/// Tags describing the connector, so `connectors list` needs no secret values.
pub const ORG_TAG: &str = "okta-ingest:org";
pub const AUTH_TAG: &str = "okta-ingest:auth";
/// Days Secrets Manager keeps a removed connector's secret restorable.
pub const RECOVERY_WINDOW_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum SecretAdminError {
    #[error("secret {secret_id}: {message}")]
    Service { secret_id: String, message: String },
}

/// What the tags of one connector secret say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub org: Option<String>,
    pub auth: Option<String>,
    /// Set when the secret is scheduled for deletion.
    pub deleted: bool,
}

pub struct SecretsAdmin {
    client: aws_sdk_secretsmanager::Client,
    template: String,
    kms_key_id: Option<String>,
}

impl SecretsAdmin {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        template: String,
        kms_key_id: Option<String>,
    ) -> Self {
        SecretsAdmin {
            client,
            template,
            kms_key_id,
        }
    }

    pub fn secret_id(&self, connector_id: &str) -> String {
        self.template.replace("{connector_id}", connector_id)
    }

    fn error<E>(
        &self,
        secret_id: &str,
        err: aws_sdk_secretsmanager::error::SdkError<E>,
    ) -> SecretAdminError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        SecretAdminError::Service {
            secret_id: secret_id.to_string(),
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    fn tags(connector_id: &str, org: &str, auth: &str) -> Vec<Tag> {
        [
            (SESSION_TAG, connector_id),
            (ORG_TAG, org),
            (AUTH_TAG, auth),
        ]
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
    }

    /// Creates the secret, or puts a new value into the existing one (restoring it first when it was
    /// scheduled for deletion), and tags it with the connector id, org and auth mode. Returns whether it
    /// was created.
    pub async fn put(
        &self,
        connector_id: &str,
        value: &str,
        org: &str,
        auth: &str,
    ) -> Result<bool, SecretAdminError> {
        let secret_id = self.secret_id(connector_id);
        let created = self
            .client
            .create_secret()
            .name(&secret_id)
            .description(format!(
                "okta-ingest connector {connector_id}: org URL and credentials"
            ))
            .set_kms_key_id(self.kms_key_id.clone())
            .secret_string(value)
            .set_tags(Some(Self::tags(connector_id, org, auth)))
            .send()
            .await;
        let err = match created {
            Ok(_) => return Ok(true),
            Err(err) => err,
        };
        let (code, message) = crate::aws::service_code_and_message(&err);
        let exists = code == "ResourceExistsException"
            || (code == "InvalidRequestException" && message.contains("deletion"));
        if !exists {
            return Err(self.error(&secret_id, err));
        }
        // A connector removed earlier left its secret scheduled for deletion: bring it back first.
        if self
            .describe(connector_id)
            .await?
            .is_some_and(|s| s.deleted)
        {
            self.client
                .restore_secret()
                .secret_id(&secret_id)
                .send()
                .await
                .map_err(|e| self.error(&secret_id, e))?;
        }
        self.client
            .put_secret_value()
            .secret_id(&secret_id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| self.error(&secret_id, e))?;
        self.client
            .tag_resource()
            .secret_id(&secret_id)
            .set_tags(Some(Self::tags(connector_id, org, auth)))
            .send()
            .await
            .map_err(|e| self.error(&secret_id, e))?;
        Ok(false)
    }

    /// The connector's secret as its tags describe it; `None` when there is none.
    pub async fn describe(
        &self,
        connector_id: &str,
    ) -> Result<Option<SecretInfo>, SecretAdminError> {
        let secret_id = self.secret_id(connector_id);
        match self
            .client
            .describe_secret()
            .secret_id(&secret_id)
            .send()
            .await
        {
            Ok(output) => {
                let tag = |key: &str| {
                    output
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value().map(str::to_string))
                };
                Ok(Some(SecretInfo {
                    name: secret_id.clone(),
                    org: tag(ORG_TAG),
                    auth: tag(AUTH_TAG),
                    deleted: output.deleted_date().is_some(),
                }))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(self.error(&secret_id, err)),
        }
    }

    /// Every secret tagged with a connector id, by connector id.
    pub async fn list(&self) -> Result<BTreeMap<String, SecretInfo>, SecretAdminError> {
        let mut found = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::TagKey)
                        .values(SESSION_TAG)
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.error("(list)", e))?;
            for secret in output.secret_list() {
                let tag = |key: &str| {
                    secret
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value().map(str::to_string))
                };
                let (Some(id), Some(name)) = (tag(SESSION_TAG), secret.name()) else {
                    continue;
                };
                // Only secrets named by this deployment's template.
                if name != self.secret_id(&id) {
                    continue;
                }
                found.insert(
                    id,
                    SecretInfo {
                        name: name.to_string(),
                        org: tag(ORG_TAG),
                        auth: tag(AUTH_TAG),
                        deleted: secret.deleted_date().is_some(),
                    },
                );
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Schedules the secret's deletion (restorable for [`RECOVERY_WINDOW_DAYS`]). Returns whether one
    /// existed.
    pub async fn schedule_deletion(&self, connector_id: &str) -> Result<bool, SecretAdminError> {
        let secret_id = self.secret_id(connector_id);
        match self
            .client
            .delete_secret()
            .secret_id(&secret_id)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.error(&secret_id, err)),
        }
    }
}
