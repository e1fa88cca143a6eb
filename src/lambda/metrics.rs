//! Per-invocation metrics in CloudWatch Embedded Metric Format (EMF), which CloudWatch
//! extracts from the log stream at no API cost, and the summary's log line.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::actions::{Outcome, Summary};
use crate::drain::DrainReport;

/// Metrics namespace; the alarms in infra/template.yaml read from it.
pub const METRICS_NAMESPACE: &str = "OktaIngest";

/// Logs the invocation summary as one structured line (info), never including event contents.
pub fn log_summary(summary: &Summary) {
    let text = serde_json::to_string(summary).unwrap_or_default();
    if summary.outcome == Outcome::Failed {
        tracing::error!(summary = %text, "invocation failed");
    } else {
        tracing::info!(summary = %text, "invocation finished");
    }
}

/// The EMF document of one invocation.
/// Which dimension sets the metrics are published under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricDimensions {
    /// None: one series per metric for the whole fleet, whatever its size. The connector id is a
    /// property of the log line (Logs Insights), not a dimension.
    Fleet,
    /// The fleet series and one per connector (`ConnectorId`): costs per connector, for small fleets.
    FleetAndConnector,
}

/// The EMF document of one invocation, with fleet metrics only.
pub fn metrics_document(summary: &Summary, now: OffsetDateTime) -> Value {
    metrics_document_with(summary, now, MetricDimensions::Fleet)
}

/// The EMF document of one invocation.
pub fn metrics_document_with(
    summary: &Summary,
    now: OffsetDateTime,
    dimensions: MetricDimensions,
) -> Value {
    let mut values: Vec<(String, f64, &str)> = vec![
        ("Invocations".into(), 1.0, "Count"),
        (
            "Failed".into(),
            f64::from(u8::from(summary.outcome == Outcome::Failed)),
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
    // A poll's backfill slice publishes too: its events count with the live stream's.
    let drains = || drain.into_iter().chain(summary.backfill_drain.as_ref());
    let count = |f: fn(&DrainReport) -> u64| drains().map(|d| f(d) as f64).sum::<f64>();
    values.push(("EventsFetched".into(), count(|d| d.fetched), "Count"));
    values.push(("EventsPublished".into(), count(|d| d.published), "Count"));
    values.push((
        "EventsDeadLettered".into(),
        count(|d| d.dead_lettered),
        "Count",
    ));
    values.push((
        "EventsExcluded".into(),
        count(|d| d.excluded_total()),
        "Count",
    ));
    values.push(("Pages".into(), count(|d| d.pages), "Count"));
    values.push((
        "DuplicatesReplayed".into(),
        count(|d| d.duplicates_replayed),
        "Count",
    ));
    let mut excluded = std::collections::BTreeMap::<&str, u64>::new();
    for drain in drains() {
        for (reason, n) in &drain.excluded {
            *excluded.entry(reason).or_default() += n;
        }
    }
    for (reason, n) in excluded {
        values.push((format!("Excluded_{reason}"), n as f64, "Count"));
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
    } else if summary.outcome == Outcome::Paused {
        // A poll refused at claim time carries no item view; the paused alarm still needs it.
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
                "Dimensions": match dimensions {
                    MetricDimensions::Fleet => json!([[]]),
                    MetricDimensions::FleetAndConnector => json!([[], ["ConnectorId"]]),
                },
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
pub fn emit_metrics(summary: &Summary, dimensions: MetricDimensions) {
    println!(
        "{}",
        metrics_document_with(summary, OffsetDateTime::now_utc(), dimensions)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::actions::StateView;
    use crate::drain::StopReason;
    use crate::invocation::ActionName;

    fn summary(outcome: Outcome) -> Summary {
        Summary {
            connector_id: "acme".into(),
            action: ActionName::Poll,
            outcome,
            message: None,
            drain: None,
            backfill: None,
            connection: None,
            state: None,
            okta_requests: 7,
            okta_throttled: 2,
            rate_limit_remaining: Some(41),
            duration_ms: 1234,
            backfill_drain: None,
            tail_rounds: None,
            error: None,
        }
    }

    fn state(paused: bool, newest: Option<OffsetDateTime>) -> StateView {
        StateView {
            consecutive_failures: 3,
            paused,
            pause_reason: None,
            paused_by: None,
            last_success_at: None,
            newest_published: newest,
            has_cursor: true,
            delivered_total: 10,
        }
    }

    const NOW: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

    fn declared(doc: &Value) -> BTreeMap<String, String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap().to_string(),
                    m["Unit"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_drained_poll_reports_every_metric_of_the_issue_list() {
        let mut summary = summary(Outcome::Ok);
        summary.drain = Some(DrainReport {
            pages: 4,
            fetched: 3000,
            published: 2990,
            dead_lettered: 1,
            excluded: BTreeMap::from([("not_in_catalog", 8), ("malformed_event", 2)]),
            duplicates_replayed: 5,
            stop_reason: Some(StopReason::CaughtUp),
            ..DrainReport::default()
        });
        summary.state = Some(state(false, Some(NOW - time::Duration::seconds(90))));
        let doc = metrics_document(&summary, NOW);

        let expected = [
            ("Invocations", 1.0),
            ("Failed", 0.0),
            ("EventsFetched", 3000.0),
            ("EventsPublished", 2990.0),
            ("EventsDeadLettered", 1.0),
            ("EventsExcluded", 10.0),
            ("Excluded_not_in_catalog", 8.0),
            ("Excluded_malformed_event", 2.0),
            ("DuplicatesReplayed", 5.0),
            ("Pages", 4.0),
            ("OktaRequests", 7.0),
            ("Throttled429", 2.0),
            ("RateLimitRemaining", 41.0),
            ("IngestionLagSeconds", 90.0),
            ("ConsecutiveFailures", 3.0),
            ("Paused", 0.0),
            ("DrainDurationMs", 1234.0),
        ];
        let units = declared(&doc);
        for (name, value) in expected {
            assert_eq!(doc[name].as_f64(), Some(value), "{name}");
            assert!(units.contains_key(name), "{name} is not declared");
        }
        assert_eq!(units.len(), expected.len(), "{units:?}");
        assert_eq!(units["IngestionLagSeconds"], "Seconds");
        assert_eq!(units["DrainDurationMs"], "Milliseconds");
        assert_eq!(doc["StopReason"], "caught_up");
        assert_eq!(doc["ConnectorId"], "acme");
        assert_eq!(doc["Outcome"], "ok");
    }

    #[test]
    fn the_document_is_valid_emf_for_the_alarm_namespace() {
        let doc = metrics_document(&summary(Outcome::Ok), NOW);
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], NOW.unix_timestamp() * 1000);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], METRICS_NAMESPACE);
        // No dimension by default: the cost of metrics does not grow with the fleet.
        assert_eq!(directive["Dimensions"], json!([[]]));
        // Every declared metric and dimension must be a top-level member, or CloudWatch drops it.
        for name in declared(&doc).keys() {
            assert!(doc[name].is_number(), "{name}");
        }
        assert!(doc["ConnectorId"].is_string());
    }

    #[test]
    fn per_connector_dimensions_are_added_only_when_asked() {
        let doc = metrics_document_with(
            &summary(Outcome::Ok),
            NOW,
            MetricDimensions::FleetAndConnector,
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([[], ["ConnectorId"]]));
        assert_eq!(doc["ConnectorId"], "acme");
    }

    #[test]
    fn a_poll_refused_because_paused_emits_paused_one() {
        let doc = metrics_document(&summary(Outcome::Paused), NOW);
        assert_eq!(doc["Paused"].as_f64(), Some(1.0));
        assert!(declared(&doc).contains_key("Paused"));
    }

    #[test]
    fn a_run_that_paused_the_connector_emits_paused_one_and_failed() {
        let mut summary = summary(Outcome::Failed);
        summary.state = Some(state(true, None));
        summary.drain = Some(DrainReport {
            stop_reason: Some(StopReason::Failed),
            ..DrainReport::default()
        });
        let doc = metrics_document(&summary, NOW);
        assert_eq!(doc["Paused"].as_f64(), Some(1.0));
        assert_eq!(doc["Failed"].as_f64(), Some(1.0));
        assert_eq!(doc["StopReason"], "failed");
        assert!(doc.get("IngestionLagSeconds").is_none());
    }

    #[test]
    fn a_polls_backfill_slice_counts_with_the_live_stream() {
        let mut summary = summary(Outcome::Ok);
        summary.drain = Some(DrainReport {
            published: 10,
            pages: 1,
            excluded: BTreeMap::from([("not_in_catalog", 1)]),
            ..DrainReport::default()
        });
        summary.backfill_drain = Some(DrainReport {
            published: 500,
            pages: 2,
            excluded: BTreeMap::from([("not_in_catalog", 4)]),
            ..DrainReport::default()
        });
        let doc = metrics_document(&summary, NOW);
        assert_eq!(doc["EventsPublished"].as_f64(), Some(510.0));
        assert_eq!(doc["Pages"].as_f64(), Some(3.0));
        assert_eq!(doc["Excluded_not_in_catalog"].as_f64(), Some(5.0));
    }

    #[test]
    fn lag_is_never_negative_when_clocks_disagree() {
        let mut summary = summary(Outcome::Ok);
        summary.state = Some(state(false, Some(NOW + time::Duration::seconds(5))));
        let doc = metrics_document(&summary, NOW);
        assert_eq!(doc["IngestionLagSeconds"].as_f64(), Some(0.0));
    }

    #[test]
    fn actions_without_a_drain_report_zero_events_and_no_stop_reason() {
        let mut summary = summary(Outcome::Ok);
        summary.action = ActionName::TestConnection;
        summary.rate_limit_remaining = None;
        let doc = metrics_document(&summary, NOW);
        assert_eq!(doc["EventsFetched"].as_f64(), Some(0.0));
        assert_eq!(doc["DuplicatesReplayed"].as_f64(), Some(0.0));
        assert!(doc.get("StopReason").is_none());
        assert!(doc.get("RateLimitRemaining").is_none());
        assert!(doc.get("Paused").is_none());
    }
}
