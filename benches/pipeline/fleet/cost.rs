//! What a fleet costs per connector-month: the measured calls, log volume and metric series of
//! one poll, at the template's defaults, priced with AWS's published us-east-1 list prices.
//! docs/performance.md lists the same prices with the date they were taken.

use super::calls::CallKind;
use super::template::Deployment;
use super::Step;

/// Hours AWS bills a month as.
const HOURS_PER_MONTH: f64 = 730.0;

/// us-east-1 list prices (USD), recorded 2026-12-01.
pub mod price {
    /// Lambda, arm64, per GB-second and per request.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// EventBridge Scheduler, per invocation (past the 14 million free a month).
    pub const SCHEDULER_INVOCATION: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand, per write and read request unit (items ≤ 1 KB written, ≤ 4 KB read).
    pub const DYNAMODB_WRITE: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ: f64 = 0.125 / 1e6;
    /// Secrets Manager, per secret-month and per API call.
    pub const SECRET_MONTH: f64 = 0.40;
    pub const SECRETS_API_CALL: f64 = 0.05 / 1e4;
    /// KMS, per customer managed key-month and per request.
    pub const KMS_KEY_MONTH: f64 = 1.00;
    pub const KMS_REQUEST: f64 = 0.03 / 1e4;
    /// CloudWatch: custom metric-month (first 10,000), standard alarm-month, log ingestion and
    /// storage per GB.
    pub const METRIC_MONTH: f64 = 0.30;
    pub const ALARM_MONTH: f64 = 0.10;
    pub const LOG_INGEST_GB: f64 = 0.50;
    pub const LOG_STORAGE_GB_MONTH: f64 = 0.03;
    /// Kinesis Data Streams on-demand, per stream-hour.
    pub const KINESIS_STREAM_HOUR: f64 = 0.04;
}

/// A Lambda invocation of an empty poll, sized as the template's reserved concurrency is
/// (docs: about 0.5 s with real network round trips to STS, Secrets Manager, DynamoDB and
/// Okta); the locally measured duration is used when it is longer.
pub const MODELLED_POLL_SECS: f64 = 0.5;

pub struct CostLine {
    pub item: &'static str,
    pub usd: f64,
    /// How the quantity was obtained.
    pub basis: String,
}

/// Monthly cost per connector at `connectors`, every poll like `poll` (its calls per poll).
pub fn per_connector_month(
    deployment: &Deployment,
    poll: &Step,
    metric_series: usize,
    connectors: f64,
) -> Vec<CostLine> {
    let polls = HOURS_PER_MONTH * 3600.0 / deployment.schedule_period.as_secs_f64();
    let per_poll = |kind| poll.per_poll(kind);
    let measured_secs = poll.mean_ms() / 1000.0;
    let secs = measured_secs.max(MODELLED_POLL_SECS);
    let log_gb = poll.log_bytes_per_poll() * polls / 1e9;
    let sessions = per_poll(CallKind::Sts);
    let secret_reads = per_poll(CallKind::SecretsManager);
    // Lambda and the Scheduler each charge every invocation: one per poll.
    let per_invocation = |item, usd_each: f64| CostLine {
        item,
        usd: polls * usd_each,
        basis: format!("{polls:.0} invocations (one per poll)"),
    };
    vec![
        per_invocation("Lambda requests", price::LAMBDA_REQUEST),
        CostLine {
            item: "Lambda duration",
            usd: polls * secs * deployment.memory_gb() * price::LAMBDA_GB_SECOND,
            basis: format!(
                "modelled {secs:.2} s a poll at {} MB (measured here {:.0} ms)",
                deployment.memory_mb,
                measured_secs * 1000.0
            ),
        },
        per_invocation("EventBridge Scheduler", price::SCHEDULER_INVOCATION),
        CostLine {
            item: "DynamoDB writes",
            usd: polls * per_poll(CallKind::DynamoWrite) * price::DYNAMODB_WRITE,
            basis: format!(
                "measured {:.2} a poll, 1 WRU each",
                per_poll(CallKind::DynamoWrite)
            ),
        },
        CostLine {
            item: "DynamoDB reads",
            usd: polls * per_poll(CallKind::DynamoRead) * price::DYNAMODB_READ,
            basis: format!(
                "measured {:.2} a poll, 1 RRU each",
                per_poll(CallKind::DynamoRead)
            ),
        },
        CostLine {
            item: "Secrets Manager secret",
            usd: price::SECRET_MONTH,
            basis: "one secret per connector".into(),
        },
        CostLine {
            item: "Secrets Manager API",
            usd: polls * secret_reads * price::SECRETS_API_CALL,
            basis: format!("measured {secret_reads:.2} GetSecretValue a poll"),
        },
        CostLine {
            item: "KMS requests",
            usd: polls * (secret_reads + sessions) * price::KMS_REQUEST,
            basis: format!(
                "modelled: one Decrypt per secret read and one per new session (DynamoDB table key): {:.2} a poll",
                secret_reads + sessions
            ),
        },
        CostLine {
            item: "KMS key",
            usd: price::KMS_KEY_MONTH / connectors,
            basis: "one key shared by the fleet".into(),
        },
        CostLine {
            item: "STS AssumeRole",
            usd: 0.0,
            basis: format!("measured {sessions:.2} a poll; STS is free"),
        },
        CostLine {
            item: "CloudWatch Logs",
            usd: log_gb * (price::LOG_INGEST_GB + price::LOG_STORAGE_GB_MONTH),
            basis: format!(
                "measured {:.0} bytes a poll (EMF + JSON log lines), ingested and kept a month",
                poll.log_bytes_per_poll()
            ),
        },
        CostLine {
            item: "CloudWatch metrics and alarms",
            usd: (metric_series as f64 * price::METRIC_MONTH
                + deployment.alarms as f64 * price::ALARM_MONTH)
                / connectors,
            basis: format!(
                "measured {metric_series} metric series for the whole fleet, {} alarms",
                deployment.alarms
            ),
        },
        CostLine {
            item: "Kinesis stream-hours",
            usd: HOURS_PER_MONTH * price::KINESIS_STREAM_HOUR / connectors,
            basis: "one on-demand stream shared by the fleet (data per GB is per event, not fixed)"
                .into(),
        },
        CostLine {
            item: "S3 (dead letters)",
            usd: 0.0,
            basis: format!(
                "measured {:.2} calls a poll",
                per_poll(CallKind::S3)
            ),
        },
    ]
}

pub fn total(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.usd).sum()
}
