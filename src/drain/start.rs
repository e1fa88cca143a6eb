//! Where a drain starts: the stored cursor, or a position derived from the look-back window,
//! the backfill window or Okta's retention.

use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use super::{DrainError, DrainReport, DrainSettings, StreamKind};
use crate::cursor::CursorItem;
use crate::okta::{PageRequest, RETENTION};

/// The cursor value of a backfill whose window has been read completely.
pub const BACKFILL_DONE: &str = "done";

/// How far before its newest delivered event a connector whose cursor was lost starts again.
const LOST_CURSOR_OVERLAP: Duration = Duration::from_secs(5 * 60);

pub(super) fn first_request(
    item: &CursorItem,
    kind: StreamKind,
    settings: &DrainSettings,
    report: &mut DrainReport,
) -> Result<PageRequest, DrainError> {
    let now = OffsetDateTime::now_utc();
    let oldest_retained = now - RETENTION + Duration::from_secs(3600);
    let limit = settings.page_limit;
    let stale = cursor_aged_out(item, now);
    match (&item.cursor, kind) {
        (Some(cursor), StreamKind::Live) if !stale => parse_cursor(&item.key, cursor),
        (Some(_), StreamKind::Live) => {
            tracing::warn!(
                key = %item.key,
                "stored cursor is older than Okta's 90-day retention; restarting from the oldest retained event"
            );
            report.restarted_beyond_retention = true;
            Ok(PageRequest::Start {
                since: oldest_retained,
                until: None,
                limit,
            })
        }
        // A new connector starts at the look-back window. An item that delivered events
        // but lost its cursor (edited by hand) starts a little before the newest event it
        // delivered instead, so nothing in between is skipped (the overlap is deduped).
        (None, StreamKind::Live) => Ok(PageRequest::Start {
            since: item
                .newest_published
                .map_or(now, |newest| newest - LOST_CURSOR_OVERLAP)
                .min(now - settings.lookback)
                .max(oldest_retained),
            until: None,
            limit,
        }),
        (Some(cursor), StreamKind::Backfill(_)) => parse_cursor(&item.key, cursor),
        (None, StreamKind::Backfill(window)) => Ok(PageRequest::Start {
            since: window.start.max(oldest_retained),
            until: Some(window.end),
            limit,
        }),
    }
}

/// Whether the item's cursor points before Okta's retention: the events right after it are
/// gone. Judged by the last successful run (every successful run reads on from the cursor,
/// whatever it publishes), or before any, by the last write; pauses and resumes change neither.
pub fn cursor_aged_out(item: &CursorItem, now: OffsetDateTime) -> bool {
    item.cursor.is_some()
        && item
            .last_success_at
            .or(item.updated_at)
            .is_some_and(|at| at < now - RETENTION)
}

fn parse_cursor(key: &str, cursor: &str) -> Result<PageRequest, DrainError> {
    Url::parse(cursor)
        .map(PageRequest::Next)
        .map_err(|err| DrainError::BadStoredCursor {
            key: key.to_string(),
            detail: err.to_string(),
        })
}
