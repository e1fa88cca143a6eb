//! What an invocation asks for: parsed from the Lambda payload (EventBridge Scheduler input,
//! the "Scheduled Event" envelope, or an operator's action), strictly and before anything runs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::cursor::Window;
use crate::okta::RETENTION;

/// A connector id names a secret and a cursor item, so it is restricted to a plain token: no
/// separators that could reach another connector's secret or item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorId(String);

impl ConnectorId {
    pub fn parse(value: &str) -> Result<ConnectorId, InvocationError> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(ConnectorId(value.to_string()))
        } else {
            Err(InvocationError::BadConnectorId(
                value.chars().take(80).collect(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnectorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Poll,
    TestConnection,
    /// Pull a historical window (default: the whole 90-day retention).
    Backfill(BackfillRequest),
    Disable {
        reason: String,
    },
    Resume,
    /// Re-publish the connector's dead-lettered events.
    Redrive,
}

/// An action without its arguments, as summaries and metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    Poll,
    TestConnection,
    Backfill,
    Disable,
    Resume,
    Redrive,
}

impl ActionName {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::Poll => "poll",
            ActionName::TestConnection => "test_connection",
            ActionName::Backfill => "backfill",
            ActionName::Disable => "disable",
            ActionName::Resume => "resume",
            ActionName::Redrive => "redrive",
        }
    }
}

impl Action {
    pub fn name(&self) -> ActionName {
        match self {
            Action::Poll => ActionName::Poll,
            Action::TestConnection => ActionName::TestConnection,
            Action::Backfill(_) => ActionName::Backfill,
            Action::Disable { .. } => ActionName::Disable,
            Action::Resume => ActionName::Resume,
            Action::Redrive => ActionName::Redrive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackfillRequest {
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
    pub days: Option<u32>,
    /// Read the window again even if a backfill already delivered (or is delivering) it.
    pub restart: bool,
}

impl BackfillRequest {
    /// The window to pull, clamped to what Okta still retains and ending no later than `now`.
    pub fn window(&self, now: OffsetDateTime) -> Result<Window, InvocationError> {
        let oldest = now - RETENTION;
        let end = self.end.unwrap_or(now).min(now);
        let start = match (self.start, self.days) {
            (Some(_), Some(_)) => {
                return Err(InvocationError::Malformed(
                    "backfill takes either window.start or days, not both".into(),
                ))
            }
            (Some(start), None) => start,
            (None, Some(days)) if (1..=90).contains(&days) => {
                end - time::Duration::days(i64::from(days))
            }
            (None, Some(days)) => {
                return Err(InvocationError::Malformed(format!(
                    "backfill days must be between 1 and 90 (Okta's retention), got {days}"
                )))
            }
            (None, None) => oldest,
        }
        .max(oldest);
        if start >= end {
            return Err(InvocationError::Malformed(format!(
                "backfill window is empty: start {start} is not before end {end}"
            )));
        }
        Ok(Window { start, end })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub connector_id: ConnectorId,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("invalid connector_id {0:?}: use 1-64 letters, digits, '-' or '_'")]
    BadConnectorId(String),
    #[error("unknown action {0:?}: expected poll, test_connection, backfill, disable, resume or redrive")]
    UnknownAction(String),
    #[error("a scheduled event names no connector and DEFAULT_CONNECTOR_ID is not set")]
    NoDefaultConnector,
    #[error("malformed invocation: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionPayload {
    connector_id: String,
    action: String,
    #[serde(default)]
    window: Option<WindowPayload>,
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    restart: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowPayload {
    #[serde(default, with = "time::serde::rfc3339::option")]
    start: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    end: Option<OffsetDateTime>,
}

impl Invocation {
    /// Parses a Lambda payload. `default_connector` serves EventBridge's "Scheduled Event"
    /// envelope, which carries no connector of its own.
    pub fn parse(
        payload: &Value,
        default_connector: Option<&str>,
    ) -> Result<Invocation, InvocationError> {
        if is_scheduled_event(payload) {
            let id = default_connector.ok_or(InvocationError::NoDefaultConnector)?;
            return Ok(Invocation {
                connector_id: ConnectorId::parse(id)?,
                action: Action::Poll,
            });
        }
        let body: ActionPayload = serde_json::from_value(payload.clone())
            .map_err(|err| InvocationError::Malformed(err.to_string()))?;
        let connector_id = ConnectorId::parse(&body.connector_id)?;
        let only = |allowed: bool, field: &str| {
            if allowed {
                Ok(())
            } else {
                Err(InvocationError::Malformed(format!(
                    "field {field} does not apply to action {}",
                    body.action
                )))
            }
        };
        let is = |name: &str| body.action == name;
        only(body.window.is_none() || is("backfill"), "window")?;
        only(body.days.is_none() || is("backfill"), "days")?;
        only(body.reason.is_none() || is("disable"), "reason")?;
        only(body.restart.is_none() || is("backfill"), "restart")?;
        let action = match body.action.as_str() {
            "poll" => Action::Poll,
            "test_connection" => Action::TestConnection,
            "backfill" => Action::Backfill(BackfillRequest {
                start: body.window.as_ref().and_then(|w| w.start),
                end: body.window.as_ref().and_then(|w| w.end),
                days: body.days,
                restart: body.restart.unwrap_or(false),
            }),
            "disable" => Action::Disable {
                reason: body
                    .reason
                    .unwrap_or_else(|| "disabled by an operator".to_string()),
            },
            "resume" => Action::Resume,
            "redrive" => Action::Redrive,
            other => {
                return Err(InvocationError::UnknownAction(
                    other.chars().take(40).collect(),
                ))
            }
        };
        Ok(Invocation {
            connector_id,
            action,
        })
    }
}

fn is_scheduled_event(payload: &Value) -> bool {
    payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && payload.get("source").and_then(Value::as_str) == Some("aws.events")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduler_input_is_a_poll_of_its_connector() {
        let inv =
            Invocation::parse(&json!({"connector_id": "acme", "action": "poll"}), None).unwrap();
        assert_eq!(inv.connector_id.as_str(), "acme");
        assert_eq!(inv.action, Action::Poll);
    }

    #[test]
    fn redrive_is_an_action_of_its_own() {
        let inv =
            Invocation::parse(&json!({"connector_id": "acme", "action": "redrive"}), None).unwrap();
        assert_eq!(inv.action, Action::Redrive);
        assert_eq!(inv.action.name().as_str(), "redrive");
    }

    #[test]
    fn scheduled_event_envelope_polls_the_default_connector() {
        let envelope = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-26T05:00:00Z",
            "region": "us-east-1", "resources": [], "detail": {}});
        let inv = Invocation::parse(&envelope, Some("acme")).unwrap();
        assert_eq!(inv.action, Action::Poll);
        assert!(matches!(
            Invocation::parse(&envelope, None),
            Err(InvocationError::NoDefaultConnector)
        ));
    }

    #[test]
    fn bad_payloads_are_refused_with_the_reason() {
        let cases = [
            (
                json!({"connector_id": "acme", "action": "explode"}),
                "unknown action",
            ),
            (json!({"connector_id": "acme"}), "missing field `action`"),
            (
                json!({"connector_id": "../other", "action": "poll"}),
                "invalid connector_id",
            ),
            (
                json!({"connector_id": "acme#backfill", "action": "poll"}),
                "invalid connector_id",
            ),
            (
                json!({"connector_id": "", "action": "poll"}),
                "invalid connector_id",
            ),
            (
                json!({"connector_id": "acme", "action": "poll", "days": 3}),
                "days does not apply",
            ),
            (
                json!({"connector_id": "acme", "action": "poll", "extra": 1}),
                "unknown field `extra`",
            ),
            (json!([1, 2]), "malformed invocation"),
            (json!("poll"), "malformed invocation"),
        ];
        for (payload, expected) in cases {
            let err = Invocation::parse(&payload, Some("acme"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{payload}: {err}");
        }
    }

    #[test]
    fn backfill_window_defaults_to_retention_and_is_clamped() {
        let now = OffsetDateTime::now_utc();
        let window = BackfillRequest::default().window(now).unwrap();
        assert_eq!(window.end, now);
        assert_eq!(window.start, now - RETENTION);
        let old = BackfillRequest {
            start: Some(now - time::Duration::days(400)),
            ..Default::default()
        };
        assert_eq!(old.window(now).unwrap().start, now - RETENTION);
        let week = BackfillRequest {
            days: Some(7),
            ..Default::default()
        };
        assert_eq!(
            week.window(now).unwrap().start,
            now - time::Duration::days(7)
        );
        assert!(BackfillRequest {
            days: Some(91),
            ..Default::default()
        }
        .window(now)
        .is_err());
        let inverted = BackfillRequest {
            start: Some(now - time::Duration::days(1)),
            end: Some(now - time::Duration::days(2)),
            ..Default::default()
        };
        assert!(inverted.window(now).is_err());
    }

    #[test]
    fn backfill_payload_carries_its_window() {
        let inv = Invocation::parse(
            &json!({"connector_id": "acme", "action": "backfill",
                    "window": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-08T00:00:00Z"}}),
            None,
        )
        .unwrap();
        let Action::Backfill(request) = inv.action else {
            panic!("not a backfill")
        };
        assert_eq!(request.start.unwrap().day(), 1);
        assert_eq!(request.end.unwrap().day(), 8);
    }
}
