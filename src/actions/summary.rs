//! The JSON result of an invocation and the views of cursor items it shows operators.

use serde::Serialize;
use time::OffsetDateTime;

use super::RunError;
use crate::cursor::CursorItem;
use crate::drain::{DrainReport, BACKFILL_DONE};
use crate::invocation::{ActionName, ConnectorId};
use crate::okta::{ConnectionReport, RequestStats};

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Another invocation holds the lease; nothing was done.
    LeaseHeld,
    /// The connector is paused; nothing was done.
    Paused,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::LeaseHeld => "lease_held",
            Outcome::Paused => "paused",
            Outcome::Failed => "failed",
        }
    }
}

/// The JSON result of an invocation (also logged as one line).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub connector_id: String,
    pub action: ActionName,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillProgress>,
    /// What a poll's backfill slice drained (a `backfill` action reports in `drain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill_drain: Option<DrainReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateView>,
    /// System Log requests this invocation made (retries included).
    pub okta_requests: u64,
    /// 429 answers this invocation received.
    pub okta_throttled: u64,
    /// `X-Rate-Limit-Remaining` of this invocation's last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<u32>,
    pub duration_ms: u64,
    /// Tail mode: how many times the poll polled again after catching up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail_rounds: Option<u32>,
    /// Why the invocation failed (`outcome` is `failed` exactly when this is set).
    #[serde(skip)]
    pub error: Option<RunError>,
}

impl Summary {
    pub(super) fn new(id: &ConnectorId, action: ActionName) -> Summary {
        Summary {
            connector_id: id.to_string(),
            action,
            outcome: Outcome::Ok,
            message: None,
            drain: None,
            backfill: None,
            backfill_drain: None,
            connection: None,
            state: None,
            okta_requests: 0,
            okta_throttled: 0,
            rate_limit_remaining: None,
            duration_ms: 0,
            tail_rounds: None,
            error: None,
        }
    }

    pub(super) fn fail(&mut self, err: RunError) {
        self.outcome = Outcome::Failed;
        self.message = Some(err.to_string());
        self.error = Some(err);
    }

    /// Records what the Okta source did between two snapshots of its counters.
    pub(super) fn count_requests(&mut self, before: RequestStats, after: RequestStats) {
        self.okta_requests = after.requests.saturating_sub(before.requests);
        self.okta_throttled = after.throttled_429.saturating_sub(before.throttled_429);
        // An answer of an earlier invocation says nothing about this one.
        self.rate_limit_remaining = after
            .last_rate_limit
            .filter(|_| self.okta_requests > 0)
            .map(|r| r.remaining);
    }
}

/// What operators need to see of a cursor item.
#[derive(Debug, Serialize)]
pub struct StateView {
    pub consecutive_failures: u32,
    pub paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest_published: Option<OffsetDateTime>,
    pub has_cursor: bool,
    pub delivered_total: u64,
}

impl From<&CursorItem> for StateView {
    fn from(item: &CursorItem) -> Self {
        StateView {
            consecutive_failures: item.consecutive_failures,
            paused: item.paused.is_some(),
            pause_reason: item.paused.as_ref().map(|p| p.reason.clone()),
            paused_by: item.paused.as_ref().map(|p| p.by.as_str()),
            last_success_at: item.last_success_at,
            newest_published: item.newest_published,
            has_cursor: item.cursor.is_some(),
            delivered_total: item.delivered_total,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BackfillProgress {
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    /// Share of the window's time span read so far (0.0 ..= 1.0).
    pub done_fraction: f64,
    pub complete: bool,
    pub events_delivered: u64,
}

impl BackfillProgress {
    pub(super) fn of(item: &CursorItem) -> Option<BackfillProgress> {
        let window = item.window?;
        let complete = item.cursor.as_deref() == Some(BACKFILL_DONE);
        let span = (window.end - window.start).as_seconds_f64();
        let done = item
            .newest_published
            .map_or(0.0, |newest| (newest - window.start).as_seconds_f64());
        let done_fraction = if complete {
            1.0
        } else {
            (done / span).clamp(0.0, 1.0)
        };
        Some(BackfillProgress {
            window_start: window.start,
            window_end: window.end,
            done_fraction,
            complete,
            events_delivered: item.delivered_total,
        })
    }
}
