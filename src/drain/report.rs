//! What a drain reports: counts for the summary and metrics, why it stopped, and its error.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cursor::CursorError;
use crate::okta::OktaError;
use crate::sink::SinkError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An empty polling page: nothing newer is available.
    CaughtUp,
    /// A backfill window has been fully read.
    WindowComplete,
    /// The time budget ran out with more to read.
    Deadline,
    /// Another invocation took the lease over; nothing more was written.
    LeaseLost,
    /// A step failed; the cursor stays at the last acknowledged page.
    Failed,
}

/// The outcome of one drain, also when it failed part-way.
#[derive(Debug, Default, Serialize)]
pub struct DrainReport {
    pub pages: u64,
    pub fetched: u64,
    pub published: u64,
    /// Events the stream refused for good, kept as dead letters (the cursor moved past them).
    pub dead_lettered: u64,
    pub excluded: BTreeMap<&'static str, u64>,
    pub checkpoints: u64,
    pub cursor_advanced: bool,
    pub caught_up: bool,
    pub stop_reason: Option<StopReason>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub newest_published: Option<OffsetDateTime>,
    /// The drain restarted from the oldest retained event because its cursor had aged out.
    pub restarted_beyond_retention: bool,
    /// Records of the failed page that already reached the sink without the cursor moving
    /// past them: the next run publishes them again. Exact when the sink says how many records
    /// it acknowledged, otherwise the whole page (an upper bound).
    pub duplicates_replayed: u64,
}

impl DrainReport {
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
    }

    /// Adds a later drain of the same item (a tail round): counts add up, the later one says
    /// where the stream stands and why it stopped.
    pub fn absorb(&mut self, later: DrainReport) {
        self.pages += later.pages;
        self.fetched += later.fetched;
        self.published += later.published;
        for (reason, n) in later.excluded {
            *self.excluded.entry(reason).or_default() += n;
        }
        self.checkpoints += later.checkpoints;
        self.cursor_advanced |= later.cursor_advanced;
        self.caught_up = later.caught_up;
        self.stop_reason = later.stop_reason;
        self.newest_published = self.newest_published.max(later.newest_published);
        self.restarted_beyond_retention |= later.restarted_beyond_retention;
        self.duplicates_replayed += later.duplicates_replayed;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(transparent)]
    Okta(#[from] OktaError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error("stored cursor of {key} is not a valid URL ({detail}); restore the Okta next link in the item's cursor attribute (deleting it restarts at the look-back window and skips older unread events)")]
    BadStoredCursor { key: String, detail: String },
}

impl DrainError {
    /// Failures retrying cannot heal (revoked or deactivated credentials, missing scope).
    pub fn pauses_connector(&self) -> bool {
        matches!(self, DrainError::Okta(e) if e.pauses_connector())
    }

    /// Another invocation owns the item now.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, DrainError::Cursor(CursorError::LeaseLost { .. }))
    }
}
