//! The `connectors` commands: add, list, show, disable, resume and remove connectors of a deployed
//! fleet, with the operator's own AWS credentials. Each command checks its input and the deployment
//! before it changes anything.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::{ConnectorConfig, ValidationOptions};
use crate::cursor::dynamodb::DynamoCursorStore;
use crate::cursor::{backfill_key, live_key, CursorItem, CursorStore, Pause, PausedBy};
use crate::fleet::scheduler::{
    flexible_window_minutes, validate_expression, Schedule, Scheduler, SchedulerError,
};
use crate::fleet::secrets_admin::{SecretInfo, SecretsAdmin};
use crate::fleet::view::{view, BackfillView, ConnectorView};
use crate::invocation::ConnectorId;
use crate::normalize::outputs::Outputs;
use crate::okta::{LogSource, OktaSources, SourceFactory};
use crate::settings::RunSettings;

/// Why a `connectors` command failed. Input, deployment and connection failures change nothing;
/// an AWS failure part way says what was already done.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// An argument or the connector document is wrong.
    #[error("{0}")]
    Input(String),
    /// The id names no connector of this deployment.
    #[error("unknown connector {id}: no schedule in group {group} and no secret {secret}; `okta-ingest connectors list` shows the connectors")]
    UnknownConnector {
        id: String,
        group: String,
        secret: String,
    },
    /// The deployment's resources are missing or not usable.
    #[error("{0}")]
    Deployment(String),
    /// Okta refused the credentials (or could not be reached) in the test connection.
    #[error("test connection failed, nothing was created: {0}")]
    ConnectionFailed(String),
    /// An AWS call failed.
    #[error("{0}")]
    Aws(String),
}

impl From<SchedulerError> for FleetError {
    fn from(err: SchedulerError) -> FleetError {
        match err {
            SchedulerError::GroupNotFound { .. } => FleetError::Deployment(err.to_string()),
            SchedulerError::Invalid { .. } => FleetError::Input(err.to_string()),
            SchedulerError::Service(_) => FleetError::Aws(err.to_string()),
        }
    }
}

impl FleetError {
    fn aws(err: impl std::fmt::Display) -> FleetError {
        FleetError::Aws(err.to_string())
    }

    /// The process exit code: 2 for what the operator must correct, 1 for a failed call.
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::Input(_)
            | FleetError::UnknownConnector { .. }
            | FleetError::Deployment(_)
            | FleetError::ConnectionFailed(_) => 2,
            FleetError::Aws(_) => 1,
        }
    }
}

/// Budget of the test connection `add` runs before creating anything.
const TEST_CONNECTION_BUDGET: Duration = Duration::from_secs(60);
/// One-off schedules are named `<id>.<action>`: a dot never appears in a connector id.
const BACKFILL_SUFFIX: &str = ".backfill";
const REDRIVE_SUFFIX: &str = ".redrive";

/// The deployment the commands act on: the stack's resources, from the environment or flags.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub cursor_table: String,
    pub event_stream: String,
    /// The OCSF stream, when the stack has one; `add` refuses an OCSF connector without it.
    pub ocsf_stream: Option<String>,
    pub secret_id_template: String,
    pub schedule_group: String,
    pub function_arn: String,
    pub scheduler_role_arn: String,
    /// KMS key new secrets are encrypted with; `None`: Secrets Manager's default key.
    pub secret_kms_key_id: Option<String>,
}

pub struct Fleet<S> {
    pub deployment: Deployment,
    scheduler: S,
    secrets: SecretsAdmin,
    store: DynamoCursorStore,
    dynamodb: aws_sdk_dynamodb::Client,
    kinesis: aws_sdk_kinesis::Client,
    run: RunSettings,
}

impl<S: Scheduler> Fleet<S> {
    pub fn new(
        deployment: Deployment,
        scheduler: S,
        aws: &aws_config::SdkConfig,
        run: RunSettings,
    ) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(aws);
        Fleet {
            secrets: SecretsAdmin::new(
                aws_sdk_secretsmanager::Client::new(aws),
                deployment.secret_id_template.clone(),
                deployment.secret_kms_key_id.clone(),
            ),
            store: DynamoCursorStore::new(dynamodb.clone(), deployment.cursor_table.clone()),
            dynamodb,
            kinesis: aws_sdk_kinesis::Client::new(aws),
            scheduler,
            deployment,
            run,
        }
    }

    /// Validates everything, tests the credentials, then writes the secret and the schedule.
    pub async fn add(
        &self,
        id: &str,
        config_text: &str,
        expression: &str,
        backfill_days: Option<u32>,
    ) -> Result<String, FleetError> {
        let id = parse_id(id)?;
        validate_expression(expression).map_err(FleetError::Input)?;
        if let Some(days) = backfill_days {
            if !(1..=90).contains(&days) {
                return Err(FleetError::Input(format!(
                    "--backfill-days must be between 1 and 90 (Okta keeps 90 days), got {days}"
                )));
            }
        }
        let options = ValidationOptions {
            allow_insecure_loopback: self.run.allow_insecure_loopback,
        };
        let config = ConnectorConfig::from_json(config_text, options).map_err(|e| {
            FleetError::Input(format!("the connector configuration is not valid: {e}"))
        })?;
        self.check_deployment(config.outputs).await?;
        let connection = self.test_connection(&config).await?;

        let org = config
            .org_url
            .as_url()
            .host_str()
            .unwrap_or_default()
            .to_string();
        let auth = auth_mode(&config);
        let created = self
            .secrets
            .put(id.as_str(), config_text, &org, auth)
            .await
            .map_err(|e| FleetError::Aws(format!("writing the connector secret failed: {e}")))?;
        self.scheduler
            .put(&self.poll_schedule(&id, expression, true))
            .await
            .map_err(|e| {
                FleetError::Aws(format!(
                    "the secret {} was written, but the schedule was not: {e}; run the same add again",
                    self.secrets.secret_id(id.as_str())
                ))
            })?;
        let mut lines = vec![format!(
            "connector {id} {}: org {org} ({auth}), secret {}, schedule {expression} in {} ({connection})",
            if created { "added" } else { "updated" },
            self.secrets.secret_id(id.as_str()),
            self.deployment.schedule_group
        )];
        if let Some(days) = backfill_days {
            self.scheduler
                .put(&self.backfill_schedule(&id, days))
                .await
                .map_err(|e| {
                    FleetError::Aws(format!(
                        "the connector was added, but its backfill was not scheduled: {e}"
                    ))
                })?;
            lines.push(format!(
                "backfill of the last {days} days requested; it runs within two minutes and continues with each poll"
            ));
        }
        if self.deployment.secret_kms_key_id.is_none() && created {
            lines.push(
                "SECRET_KMS_KEY_ID is not set: the secret is encrypted with Secrets Manager's default key".into(),
            );
        }
        Ok(lines.join("\n"))
    }

    pub async fn list(&self) -> Result<Vec<ConnectorView>, FleetError> {
        let scheduled: Vec<String> = self
            .scheduler
            .list()
            .await
            .map_err(FleetError::from)?
            .into_iter()
            .filter(|name| !name.contains('.'))
            .collect();
        let secrets = self.secrets.list().await.map_err(FleetError::aws)?;
        let mut ids: Vec<String> = scheduled.clone();
        ids.extend(secrets.keys().filter(|id| !scheduled.contains(id)).cloned());
        ids.sort();
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            let schedule = if scheduled.contains(&id) {
                self.scheduler.get(&id).await.map_err(FleetError::from)?
            } else {
                None
            };
            let item = self.load(&id).await?;
            views.push(view(
                &id,
                schedule.as_ref(),
                secrets.get(&id),
                item.as_ref(),
                false,
            ));
        }
        Ok(views)
    }

    pub async fn show(&self, id: &str) -> Result<ConnectorView, FleetError> {
        let id = parse_id(id)?;
        let (schedule, secret) = self.known(&id).await?;
        let item = self.load(id.as_str()).await?;
        let mut view = view(
            id.as_str(),
            schedule.as_ref(),
            secret.as_ref(),
            item.as_ref(),
            true,
        );
        let backfill = self
            .store
            .load(&backfill_key(id.as_str()))
            .await
            .map_err(FleetError::aws)?;
        view.backfill = backfill.map(|b| BackfillView {
            window_start: b.window.map(|w| w.start),
            window_end: b.window.map(|w| w.end),
            events_delivered: b.delivered_total,
            paused: b.paused.is_some(),
        });
        Ok(view)
    }

    /// Pauses the connector (polls stop at their next claim) and disables its schedule.
    pub async fn disable(&self, id: &str, reason: Option<&str>) -> Result<String, FleetError> {
        let id = parse_id(id)?;
        let (schedule, _) = self.known(&id).await?;
        let reason = reason.unwrap_or("disabled by an operator").to_string();
        let now = OffsetDateTime::now_utc();
        let pause = Pause {
            reason: reason.clone(),
            by: PausedBy::Operator,
            at: now,
        };
        self.store
            .set_pause(&live_key(id.as_str()), Some(pause), now)
            .await
            .map_err(FleetError::aws)?;
        if let Some(mut schedule) = schedule {
            schedule.enabled = false;
            self.scheduler
                .put(&schedule)
                .await
                .map_err(FleetError::from)?;
        }
        Ok(format!(
            "connector {id} disabled ({reason}); its cursor is kept"
        ))
    }

    /// Clears any pause (operator's or the connector's own, and its backfill's) and enables the schedule.
    pub async fn resume(&self, id: &str) -> Result<String, FleetError> {
        let id = parse_id(id)?;
        let (schedule, _) = self.known(&id).await?;
        let now = OffsetDateTime::now_utc();
        self.store
            .set_pause(&live_key(id.as_str()), None, now)
            .await
            .map_err(FleetError::aws)?;
        let backfill = self
            .store
            .load(&backfill_key(id.as_str()))
            .await
            .map_err(FleetError::aws)?;
        if backfill.is_some_and(|b| b.paused.is_some() || b.consecutive_failures > 0) {
            self.store
                .set_pause(&backfill_key(id.as_str()), None, now)
                .await
                .map_err(FleetError::aws)?;
        }
        match schedule {
            Some(mut schedule) => {
                schedule.enabled = true;
                self.scheduler.put(&schedule).await.map_err(FleetError::from)?;
                Ok(format!("connector {id} resumed; the next poll continues from its cursor"))
            }
            None => Ok(format!(
                "connector {id} resumed, but it has no schedule: run `okta-ingest connectors add {id} --config ...`"
            )),
        }
    }

    /// Deletes the schedules, schedules the secret's deletion and (unless kept) deletes the cursor items.
    pub async fn remove(&self, id: &str, keep_cursor: bool) -> Result<String, FleetError> {
        let id = parse_id(id)?;
        self.known(&id).await?;
        self.scheduler
            .delete(id.as_str())
            .await
            .map_err(FleetError::from)?;
        for suffix in [BACKFILL_SUFFIX, REDRIVE_SUFFIX] {
            self.scheduler
                .delete(&format!("{id}{suffix}"))
                .await
                .map_err(FleetError::from)?;
        }
        self.secrets
            .schedule_deletion(id.as_str())
            .await
            .map_err(FleetError::aws)?;
        let mut message = format!(
            "connector {id} removed: schedule deleted, secret {} scheduled for deletion ({} days to restore)",
            self.secrets.secret_id(id.as_str()),
            crate::fleet::secrets_admin::RECOVERY_WINDOW_DAYS
        );
        if keep_cursor {
            message.push_str("; cursor items kept");
        } else {
            for key in [live_key(id.as_str()), backfill_key(id.as_str())] {
                self.dynamodb
                    .delete_item()
                    .table_name(&self.deployment.cursor_table)
                    .key(
                        "connector_id",
                        aws_sdk_dynamodb::types::AttributeValue::S(key.clone()),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        FleetError::Aws(format!(
                            "deleting cursor item {key} failed: {}",
                            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                        ))
                    })?;
            }
            message.push_str("; cursor items deleted");
        }
        Ok(message)
    }

    /// Asks the function, through a one-off schedule, to re-publish the connector's dead letters:
    /// the redrive runs under the connector's own session, so the operator needs no access to
    /// the dead letters or the stream.
    pub async fn redrive(&self, id: &str) -> Result<String, FleetError> {
        let id = parse_id(id)?;
        self.known(&id).await?;
        self.check_targets()?;
        let schedule = self.one_off_schedule(
            &id,
            REDRIVE_SUFFIX,
            serde_json::json!({"connector_id": id.as_str(), "action": "redrive"}),
        );
        self.scheduler
            .put(&schedule)
            .await
            .map_err(FleetError::from)?;
        Ok(format!(
            "redrive of connector {id} requested: the function runs it within two minutes; its \
             summary line (action redrive) says how many dead-lettered events were re-published \
             and how many are still refused"
        ))
    }

    /// The connector's schedule and secret; an error when it has neither.
    async fn known(
        &self,
        id: &ConnectorId,
    ) -> Result<(Option<Schedule>, Option<SecretInfo>), FleetError> {
        let schedule = self
            .scheduler
            .get(id.as_str())
            .await
            .map_err(FleetError::from)?;
        let secret = self
            .secrets
            .describe(id.as_str())
            .await
            .map_err(FleetError::aws)?
            .filter(|s| !s.deleted);
        if schedule.is_none() && secret.is_none() {
            return Err(FleetError::UnknownConnector {
                id: id.to_string(),
                group: self.scheduler.group().to_string(),
                secret: self.secrets.secret_id(id.as_str()),
            });
        }
        Ok((schedule, secret))
    }

    async fn load(&self, id: &str) -> Result<Option<CursorItem>, FleetError> {
        self.store.load(id).await.map_err(FleetError::aws)
    }

    /// The deployment's resources, and the OCSF stream when the connector asks for it, exist
    /// (nothing is created before this holds).
    async fn check_deployment(&self, outputs: Outputs) -> Result<(), FleetError> {
        let d = &self.deployment;
        if outputs.ocsf && d.ocsf_stream.is_none() {
            return Err(FleetError::Deployment(
                "the connector asks for \"ocsf\" in `outputs`, but OCSF_STREAM is not set: deploy \
                 the stack with OcsfStream=Enabled and export its OCSF_STREAM (the ShellExports \
                 output prints it), or pass --ocsf-stream; nothing was created"
                    .to_owned(),
            ));
        }
        self.scheduler.check().await.map_err(FleetError::from)?;
        self.dynamodb
            .describe_table()
            .table_name(&d.cursor_table)
            .send()
            .await
            .map_err(|e| {
                FleetError::Deployment(format!(
                    "cursor table {} is not usable (CURSOR_TABLE): {}",
                    d.cursor_table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ))
            })?;
        self.kinesis
            .describe_stream_summary()
            .stream_name(&d.event_stream)
            .send()
            .await
            .map_err(|e| {
                FleetError::Deployment(format!(
                    "event stream {} is not usable (EVENT_STREAM): {}",
                    d.event_stream,
                    aws_sdk_kinesis::error::DisplayErrorContext(&e)
                ))
            })?;
        if let Some(stream) = d.ocsf_stream.as_ref().filter(|_| outputs.ocsf) {
            self.kinesis
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .map_err(|e| {
                    FleetError::Deployment(format!(
                        "OCSF stream {stream} is not usable (OCSF_STREAM): {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(&e)
                    ))
                })?;
        }
        self.check_targets()
    }

    /// The schedules' target and role are ARNs of the right kind.
    fn check_targets(&self) -> Result<(), FleetError> {
        let d = &self.deployment;
        if !(d.function_arn.starts_with("arn:") && d.function_arn.contains(":function:")) {
            return Err(FleetError::Deployment(format!(
                "FUNCTION_ARN {:?} is not a Lambda function ARN (the stack output ExportFunctionArn)",
                d.function_arn
            )));
        }
        if !(d.scheduler_role_arn.starts_with("arn:") && d.scheduler_role_arn.contains(":role/")) {
            return Err(FleetError::Deployment(format!(
                "SCHEDULER_ROLE_ARN {:?} is not an IAM role ARN (the stack output ExportSchedulerRoleArn)",
                d.scheduler_role_arn
            )));
        }
        Ok(())
    }

    /// Runs the connector's own test connection on the document, touching no AWS resource.
    async fn test_connection(&self, config: &ConnectorConfig) -> Result<String, FleetError> {
        let refused = |err: &dyn std::fmt::Display| FleetError::ConnectionFailed(err.to_string());
        let source = OktaSources
            .source(&config.org_url, &config.auth, &self.run.okta)
            .map_err(|e| refused(&e))?;
        let report = source
            .test_connection(
                OffsetDateTime::now_utc(),
                Instant::now() + TEST_CONNECTION_BUDGET,
            )
            .await
            .map_err(|e| refused(&e))?;
        Ok(format!(
            "test connection ok, {}{} events in the last 24 hours",
            if report.count_is_lower_bound {
                "at least "
            } else {
                ""
            },
            report.events_last_24h
        ))
    }

    fn poll_schedule(&self, id: &ConnectorId, expression: &str, enabled: bool) -> Schedule {
        Schedule {
            name: id.to_string(),
            expression: expression.trim().to_string(),
            input: serde_json::json!({"connector_id": id.as_str(), "action": "poll"}).to_string(),
            target_arn: self.deployment.function_arn.clone(),
            role_arn: self.deployment.scheduler_role_arn.clone(),
            flexible_window_minutes: Some(flexible_window_minutes(expression)),
            enabled,
            delete_after_completion: false,
        }
    }

    /// A one-off schedule a minute from now that asks the function for the backfill, then deletes itself.
    fn backfill_schedule(&self, id: &ConnectorId, days: u32) -> Schedule {
        self.one_off_schedule(
            id,
            BACKFILL_SUFFIX,
            serde_json::json!({"connector_id": id.as_str(), "action": "backfill", "days": days}),
        )
    }

    /// A schedule `<id><suffix>` that invokes the function with `input` once, a minute from now,
    /// then deletes itself.
    fn one_off_schedule(
        &self,
        id: &ConnectorId,
        suffix: &str,
        input: serde_json::Value,
    ) -> Schedule {
        let at = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        Schedule {
            name: format!("{id}{suffix}"),
            expression: format!("at({})", at.format(&format).unwrap_or_default()),
            input: input.to_string(),
            target_arn: self.deployment.function_arn.clone(),
            role_arn: self.deployment.scheduler_role_arn.clone(),
            flexible_window_minutes: None,
            enabled: true,
            delete_after_completion: true,
        }
    }
}

fn parse_id(id: &str) -> Result<ConnectorId, FleetError> {
    ConnectorId::parse(id).map_err(|e| FleetError::Input(e.to_string()))
}

fn auth_mode(config: &ConnectorConfig) -> &'static str {
    match config.auth {
        crate::okta::Credentials::Ssws { .. } => "ssws",
        _ => "oauth",
    }
}
