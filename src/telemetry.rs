//! Logs and metrics: JSON logs through `tracing`, and per-invocation metrics in CloudWatch
//! Embedded Metric Format (EMF), which CloudWatch extracts from the log stream at no API cost.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tracing_subscriber::EnvFilter;

use crate::connector::Summary;

/// Metrics namespace; the alarms in infra/template.yaml read from it.
pub const METRICS_NAMESPACE: &str = "OktaIngest";

/// JSON logs for the Lambda (one object per line); readable text for the CLI. `RUST_LOG`
/// overrides the level (default info).
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// Logs the invocation summary as one structured line (info), never including event contents.
pub fn log_summary(summary: &Summary) {
    let text = serde_json::to_string(summary).unwrap_or_default();
    if summary.outcome == "failed" {
        tracing::error!(summary = %text, "invocation failed");
    } else {
        tracing::info!(summary = %text, "invocation finished");
    }
}

/// The EMF document of one invocation.
pub fn metrics_document(summary: &Summary, now: OffsetDateTime) -> Value {
    let mut values: Vec<(String, f64, &str)> = vec![
        ("Invocations".into(), 1.0, "Count"),
        (
            "Failed".into(),
            f64::from(u8::from(summary.outcome == "failed")),
            "Count",
        ),
        ("OktaRequests".into(), summary.okta_requests as f64, "Count"),
        (
            "Throttled429".into(),
            summary.okta_throttled as f64,
            "Count",
        ),
        (
            "DrainDurationMs".into(),
            summary.duration_ms as f64,
            "Milliseconds",
        ),
    ];
    let drain = summary.drain.as_ref();
    let count = |f: fn(&crate::drain::DrainReport) -> u64| drain.map_or(0.0, |d| f(d) as f64);
    values.push(("EventsFetched".into(), count(|d| d.fetched), "Count"));
    values.push(("EventsPublished".into(), count(|d| d.published), "Count"));
    values.push((
        "EventsExcluded".into(),
        count(|d| d.excluded_total()),
        "Count",
    ));
    values.push(("Pages".into(), count(|d| d.pages), "Count"));
    if let Some(drain) = drain {
        for (reason, n) in &drain.excluded {
            values.push((format!("Excluded_{reason}"), *n as f64, "Count"));
        }
    }
    if let Some(remaining) = summary.rate_limit_remaining {
        values.push(("RateLimitRemaining".into(), f64::from(remaining), "Count"));
    }
    if let Some(state) = &summary.state {
        values.push((
            "ConsecutiveFailures".into(),
            f64::from(state.consecutive_failures),
            "Count",
        ));
        values.push(("Paused".into(), f64::from(u8::from(state.paused)), "Count"));
        if let Some(newest) = state.newest_published {
            let lag = (now - newest).as_seconds_f64().max(0.0);
            values.push(("IngestionLagSeconds".into(), lag, "Seconds"));
        }
    } else if summary.outcome == "paused" {
        values.push(("Paused".into(), 1.0, "Count"));
    }

    let mut doc = Map::new();
    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": (now.unix_timestamp_nanos() / 1_000_000) as i64,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["ConnectorId"]],
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert("ConnectorId".into(), json!(summary.connector_id));
    doc.insert("Action".into(), json!(summary.action));
    doc.insert("Outcome".into(), json!(summary.outcome));
    if let Some(reason) = drain.and_then(|d| d.stop_reason) {
        doc.insert("StopReason".into(), json!(reason));
    }
    for (name, value, _) in values {
        doc.insert(name, json!(value));
    }
    Value::Object(doc)
}

/// Writes the EMF line to stdout, where the Lambda runtime ships it to CloudWatch Logs.
pub fn emit_metrics(summary: &Summary) {
    println!("{}", metrics_document(summary, OffsetDateTime::now_utc()));
}
