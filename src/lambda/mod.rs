//! The AWS Lambda entry point: settings and clients are built once per container (cold
//! start) and reused by every warm invocation; each invocation's summary is logged and
//! emitted as metrics, and its failure becomes the Lambda diagnostic.

pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use crate::actions::{Connector, RunError};
use crate::fleet::scoped::{DeadLetterBucket, ScopedAccess};
use crate::invocation::{Invocation, InvocationError};
use crate::settings::Settings;
use crate::sink::kinesis::KinesisSink;
use crate::telemetry;

/// Why an invocation failed, as the Lambda runtime reports it.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The payload was refused before anything ran.
    #[error(transparent)]
    InvalidInvocation(#[from] InvocationError),
    /// The action ran and failed; its summary was logged and emitted.
    #[error(transparent)]
    RunFailed(#[from] RunError),
}

impl From<LambdaError> for Diagnostic {
    fn from(err: LambdaError) -> Diagnostic {
        let error_type = match err {
            LambdaError::InvalidInvocation(_) => "InvalidInvocation",
            LambdaError::RunFailed(_) => "ConnectorRunFailed",
        };
        Diagnostic {
            error_type: error_type.to_string(),
            error_message: err.to_string(),
        }
    }
}

/// A runtime deadline further away than this is not real (Lambda's maximum is 15 minutes).
const MAX_LAMBDA_RUN: Duration = Duration::from_secs(15 * 60);

/// Secrets and cursors go through per-connector scoped credentials; the shared stream through the
/// function's own.
pub type LambdaConnector = Connector<Arc<ScopedAccess>, Arc<ScopedAccess>, KinesisSink>;

/// Builds the connector with the AWS configuration of the environment (`AWS_ENDPOINT_URL`
/// points it at a local emulator).
pub async fn init(settings: &Settings) -> LambdaConnector {
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::https_client())
        .load()
        .await;
    connector(settings, &aws)
}

pub fn connector(settings: &Settings, aws: &aws_config::SdkConfig) -> LambdaConnector {
    let mut access = ScopedAccess::new(
        aws.clone(),
        settings.connector_access_role_arn.clone(),
        settings.secret_id_template.clone(),
        settings.cursor_table.clone(),
        settings.run.connector_cache_size,
    );
    if let Some(bucket) = &settings.dead_letter_bucket {
        access = access.with_dead_letters(DeadLetterBucket {
            bucket: bucket.clone(),
            kms_key: settings.dead_letter_kms_key.clone(),
        });
    }
    let access = Arc::new(access);
    let kinesis = crate::sink::kinesis::client(aws);
    let mut connector = Connector::new(
        access.clone(),
        access.clone(),
        KinesisSink::new(kinesis.clone(), settings.event_stream.clone()),
        settings.run.clone(),
    );
    if let Some(stream) = &settings.ocsf_stream {
        connector = connector.with_ocsf_sink(KinesisSink::new(kinesis, stream.clone()));
    }
    match settings.dead_letter_bucket {
        Some(_) => connector.with_dead_letters(access),
        None => connector,
    }
}

pub async fn run() -> Result<(), lambda_runtime::Error> {
    telemetry::init_tracing(true);
    let started = Instant::now();
    let settings = Settings::from_env()?;
    let connector = init(&settings).await;
    match &settings.connector_access_role_arn {
        Some(role) => tracing::info!(
            role = %role,
            "each invocation assumes the connector-access role with its connector_id session tag"
        ),
        None => tracing::warn!(
            "CONNECTOR_ACCESS_ROLE_ARN is not set: every connector uses the function's own credentials, \
             so IAM does not keep connectors apart (fine for local runs and tests, not for a fleet)"
        ),
    }
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "initialised"
    );
    let connector = &connector;
    let settings = &settings;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(connector, settings, event).await
    }))
    .await
}

/// One invocation: parse strictly (nothing is touched on bad input), run, log, emit metrics.
pub async fn handle(
    connector: &LambdaConnector,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let request_id = event.context.request_id.clone();
    // Entered before parsing so even a refused payload is logged with its request id.
    let span = tracing::info_span!(
        "invocation",
        %request_id,
        connector_id = tracing::field::Empty
    );
    let invocation = {
        let _entered = span.enter();
        Invocation::parse(&event.payload, settings.default_connector_id.as_deref()).map_err(
            |err| {
                tracing::warn!(error = %err, "invocation payload refused");
                LambdaError::from(err)
            },
        )?
    };
    span.record(
        "connector_id",
        tracing::field::display(&invocation.connector_id),
    );
    let deadline = deadline_from_epoch_ms(event.context.deadline, settings.run.fallback_budget);
    async move {
        let mut summary = connector.handle(&invocation, deadline).await;
        metrics::log_summary(&summary);
        metrics::emit_metrics(
            &summary,
            if settings.per_connector_metrics {
                metrics::MetricDimensions::FleetAndConnector
            } else {
                metrics::MetricDimensions::Fleet
            },
        );
        match summary.error.take() {
            None => Ok(serde_json::to_value(summary).unwrap_or(Value::Null)),
            Some(err) => Err(LambdaError::from(err).into()),
        }
    }
    .instrument(span)
    .await
}

/// The runtime's deadline (epoch ms) as an `Instant`; local emulators send none or nonsense,
/// in which case the fallback budget applies.
pub fn deadline_from_epoch_ms(deadline_ms: u64, fallback: Duration) -> Instant {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let remaining = i128::from(deadline_ms) - now_ms;
    if remaining <= 0 || remaining > MAX_LAMBDA_RUN.as_millis() as i128 {
        Instant::now() + fallback
    } else {
        Instant::now() + Duration::from_millis(remaining as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_secretsmanager::config::{Credentials, Region, SharedCredentialsProvider};
    use lambda_runtime::Context;
    use tracing_subscriber::EnvFilter;

    use super::*;
    use crate::telemetry::test_capture::Captured;

    /// AWS clients aimed at a closed local port: every call fails at once, without retries.
    fn unreachable_aws() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDTEST", "test", None, None, "test",
            )))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build()
    }

    fn lambda_event(payload: Value, request_id: &str) -> LambdaEvent<Value> {
        let mut context = Context::default();
        context.request_id = request_id.to_string();
        LambdaEvent::new(payload, context)
    }

    #[tokio::test]
    async fn every_log_line_of_an_invocation_names_its_request_and_connector() {
        let vars: HashMap<String, String> = [("CURSOR_TABLE", "t"), ("EVENT_STREAM", "s")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut settings = Settings::from_vars(&vars).unwrap();
        settings.run.fallback_budget = Duration::from_secs(5);
        let connector = connector(&settings, &unreachable_aws());
        let logs = Captured::default();
        let _guard = tracing::subscriber::set_default(telemetry::json_subscriber(
            EnvFilter::new("debug"),
            logs.clone(),
        ));

        let failed = handle(
            &connector,
            &settings,
            lambda_event(
                serde_json::json!({"connector_id": "acme", "action": "poll"}),
                "req-1",
            ),
        )
        .await;
        assert!(failed.is_err());
        let refused = handle(
            &connector,
            &settings,
            lambda_event(
                serde_json::json!({"connector_id": "bad id!", "action": "poll"}),
                "req-2",
            ),
        )
        .await;
        assert_eq!(refused.unwrap_err().error_type, "InvalidInvocation");

        let text = logs.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .filter(|line: &Value| {
                line["target"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("okta_ingest")
            })
            .collect();
        assert!(lines.len() >= 2, "{text}");
        for line in &lines {
            let span = &line["span"];
            match span["request_id"].as_str() {
                Some("req-1") => assert_eq!(span["connector_id"], "acme", "{line}"),
                Some("req-2") => assert_eq!(line["level"], "WARN", "{line}"),
                _ => panic!("log line without request id: {line}"),
            }
        }
        assert!(
            lines.iter().any(|l| l["message"] == "invocation failed"),
            "one summary line per invocation: {text}"
        );
    }

    #[test]
    fn absurd_deadlines_fall_back_to_the_budget() {
        let budget = Duration::from_secs(42);
        for deadline in [0, u64::MAX] {
            let left = deadline_from_epoch_ms(deadline, budget) - Instant::now();
            assert!(
                left > Duration::from_secs(41) && left <= budget,
                "{deadline}: {left:?}"
            );
        }
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
        let left = deadline_from_epoch_ms(now_ms + 90_000, budget) - Instant::now();
        assert!(
            left > Duration::from_secs(88) && left <= Duration::from_secs(90),
            "{left:?}"
        );
    }
}
