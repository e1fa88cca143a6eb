//! How `connectors list` and `show` describe a connector: its state from the schedule, the
//! secret and the cursor item, as JSON or as a readable table.

use serde::Serialize;
use time::OffsetDateTime;

use crate::cursor::{CursorItem, PausedBy};
use crate::fleet::scheduler::Schedule;
use crate::fleet::secrets_admin::SecretInfo;

/// Where a connector stands, as an operator needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// Scheduled, with a secret, not paused.
    Active,
    /// Paused by itself after failures or a refusal retrying cannot heal.
    Paused,
    /// Paused by an operator, or its schedule is disabled.
    Disabled,
    /// A secret but no schedule.
    Unscheduled,
    /// A schedule but no secret.
    NoSecret,
}

impl ConnectorState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorState::Active => "active",
            ConnectorState::Paused => "paused",
            ConnectorState::Disabled => "disabled",
            ConnectorState::Unscheduled => "unscheduled",
            ConnectorState::NoSecret => "no secret",
        }
    }
}

/// One connector as `list` and `show` report it.
#[derive(Debug, Serialize)]
pub struct ConnectorView {
    pub id: String,
    pub org: Option<String>,
    pub auth: Option<String>,
    pub state: ConnectorState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub schedule: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Now minus the newest delivered event's `published`.
    pub lag_seconds: Option<i64>,
    pub consecutive_failures: u32,
    pub events_delivered: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillView>,
}

#[derive(Debug, Serialize)]
pub struct BackfillView {
    #[serde(with = "time::serde::rfc3339::option")]
    pub window_start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub window_end: Option<OffsetDateTime>,
    pub events_delivered: u64,
    pub paused: bool,
}

pub(super) fn view(
    id: &str,
    schedule: Option<&Schedule>,
    secret: Option<&SecretInfo>,
    item: Option<&CursorItem>,
    detailed: bool,
) -> ConnectorView {
    let pause = item.and_then(|i| i.paused.as_ref());
    let (state, reason) = match (schedule, pause, secret) {
        (_, Some(p), _) if p.by == PausedBy::Operator => {
            (ConnectorState::Disabled, Some(p.reason.clone()))
        }
        (_, Some(p), _) => (ConnectorState::Paused, Some(p.reason.clone())),
        (Some(s), None, _) if !s.enabled => (
            ConnectorState::Disabled,
            Some("schedule disabled".to_string()),
        ),
        (None, None, _) => (ConnectorState::Unscheduled, None),
        (Some(_), None, None) => (ConnectorState::NoSecret, None),
        (Some(_), None, Some(_)) => (ConnectorState::Active, None),
    };
    let now = OffsetDateTime::now_utc();
    ConnectorView {
        id: id.to_string(),
        org: secret.and_then(|s| s.org.clone()),
        auth: secret.and_then(|s| s.auth.clone()),
        state,
        reason,
        schedule: schedule.map(|s| s.expression.clone()),
        last_success_at: item.and_then(|i| i.last_success_at),
        lag_seconds: item
            .and_then(|i| i.newest_published)
            .map(|newest| (now - newest).whole_seconds().max(0)),
        consecutive_failures: item.map_or(0, |i| i.consecutive_failures),
        events_delivered: item.map_or(0, |i| i.delivered_total),
        last_error: item.and_then(|i| i.last_error.clone()).filter(|_| detailed),
        secret: secret.filter(|_| detailed).map(|s| s.name.clone()),
        backfill: None,
    }
}

/// The readable table of `connectors list`.
pub fn table(views: &[ConnectorView]) -> String {
    let header = [
        "ID",
        "ORG",
        "AUTH",
        "STATE",
        "LAST SUCCESS",
        "LAG",
        "FAILURES",
        "DELIVERED",
    ];
    let rows: Vec<[String; 8]> = views
        .iter()
        .map(|v| {
            [
                v.id.clone(),
                v.org.clone().unwrap_or_else(|| "-".into()),
                v.auth.clone().unwrap_or_else(|| "-".into()),
                match &v.reason {
                    Some(reason) => format!("{}: {reason}", v.state.as_str()),
                    None => v.state.as_str().to_string(),
                },
                v.last_success_at
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "never".into()),
                v.lag_seconds.map_or_else(|| "-".into(), human_duration),
                v.consecutive_failures.to_string(),
                v.events_delivered.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    if views.is_empty() {
        out.push("(no connectors: add one with `okta-ingest connectors add <id> --config connector.json`)".into());
    }
    out.join("\n")
}

fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(5 * 86_400), "5d");
    }

    #[test]
    fn state_says_who_paused_and_why() {
        use crate::cursor::Pause;
        let schedule = Schedule {
            name: "acme".into(),
            expression: "rate(1 minute)".into(),
            input: String::new(),
            target_arn: String::new(),
            role_arn: String::new(),
            flexible_window_minutes: Some(1),
            enabled: true,
            delete_after_completion: false,
        };
        let secret = SecretInfo::default();
        let mut item = CursorItem::default();
        assert_eq!(
            view("a", Some(&schedule), Some(&secret), Some(&item), false).state,
            ConnectorState::Active
        );
        item.paused = Some(Pause {
            reason: "401 from Okta".into(),
            by: PausedBy::Connector,
            at: OffsetDateTime::now_utc(),
        });
        let paused = view("a", Some(&schedule), Some(&secret), Some(&item), false);
        assert_eq!(
            (paused.state, paused.reason.as_deref()),
            (ConnectorState::Paused, Some("401 from Okta"))
        );
        item.paused.as_mut().unwrap().by = PausedBy::Operator;
        assert_eq!(
            view("a", Some(&schedule), Some(&secret), Some(&item), false).state,
            ConnectorState::Disabled
        );
        assert_eq!(
            view("a", None, Some(&secret), None, false).state,
            ConnectorState::Unscheduled
        );
        assert_eq!(
            view("a", Some(&schedule), None, None, false).state,
            ConnectorState::NoSecret
        );
        let text = table(&[paused]);
        assert!(text.lines().next().unwrap().starts_with("ID"));
        assert!(text.contains("paused: 401 from Okta"), "{text}");
    }
}
