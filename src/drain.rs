//! The drain loop: fetch a page, normalize it, publish it, and only then move the cursor.
//!
//! It reads like the resilience contract: the cursor only advances after every record of a
//! page was acknowledged by the sink; any failure leaves it where it was, so the next run
//! replays from the last known-good position (at-least-once, duplicates only from replays of
//! unacknowledged pages).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use crate::cursor::{Checkpoint, CursorError, CursorItem, CursorStore, Lease, Window};
use crate::normalize::Normalizer;
use crate::okta::{LogSource, OktaError, Page, PageRequest, MAX_PAGE_LIMIT, RETENTION};
use crate::sink::{EventSink, Record, SinkError};

/// How far before its newest delivered event a connector whose cursor was lost starts again.
const LOST_CURSOR_OVERLAP: Duration = Duration::from_secs(5 * 60);

/// Tunables of the drain.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// Events per Okta page (1..=MAX_PAGE_LIMIT).
    pub page_limit: u32,
    /// How far back the very first poll of a connector starts.
    pub lookback: Duration,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            page_limit: MAX_PAGE_LIMIT,
            lookback: Duration::from_secs(15 * 60),
        }
    }
}

/// What is being drained through one cursor item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The live poll: follows Okta's polling `next` links forever.
    Live,
    /// A bounded historical window; ends when Okta stops sending `next`.
    Backfill(Window),
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordFormat {
    /// TOTAL normalized events (excluded events are counted, not written).
    #[default]
    Normalized,
    /// Okta's raw events, every one of them, keyed by the actor id.
    Raw,
}

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
    #[serde(skip)]
    pub error: Option<DrainError>,
}

impl DrainReport {
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
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
    /// A step before draining failed (secret, configuration), or a failure recorded earlier.
    #[error("{0}")]
    Failed(String),
    #[error("stored cursor of {key} is not a valid URL ({detail}); restore the Okta next link in the item's cursor attribute (deleting it restarts at the look-back window and skips older unread events)")]
    BadStoredCursor { key: String, detail: String },
}

impl DrainError {
    /// Failures retrying cannot heal (revoked or deactivated credentials, missing scope).
    pub fn pauses_connector(&self) -> bool {
        matches!(self, DrainError::Okta(e) if e.pauses_connector())
    }
}

/// Everything one drain needs; generic over the outside systems so tests use twins.
pub struct Drain<'a, L, C, K> {
    pub source: &'a L,
    pub store: &'a C,
    pub sink: &'a K,
    pub normalizer: &'a Normalizer,
    pub settings: &'a DrainSettings,
    pub format: RecordFormat,
}

impl<L: LogSource, C: CursorStore, K: EventSink> Drain<'_, L, C, K> {
    /// Drains pages until caught up, the window ends, the deadline nears or a step fails.
    /// `deadline` already excludes the margin kept for releasing the lease.
    pub async fn run(
        &self,
        lease: &mut Lease,
        item: &CursorItem,
        kind: StreamKind,
        deadline: Instant,
    ) -> DrainReport {
        let mut report = DrainReport::default();
        if matches!(kind, StreamKind::Backfill(_)) && item.cursor.as_deref() == Some(BACKFILL_DONE)
        {
            report.caught_up = true;
            report.stop_reason = Some(StopReason::WindowComplete);
            return report;
        }
        let first = match self.first_request(item, kind, &mut report) {
            Ok(request) => request,
            Err(err) => return fail(report, err),
        };
        let mut page = match self.fetch(&first, deadline).await {
            Ok(page) => page,
            Err(err) => return fail(report, err),
        };
        let mut window_to_record = match kind {
            StreamKind::Backfill(window) if item.window.is_none() => Some(window),
            _ => None,
        };
        let mut position = item.cursor.clone();

        loop {
            report.pages += 1;
            report.fetched += page.events.len() as u64;
            let (records, newest) = self.to_records(&page, &mut report);
            let is_empty = page.events.is_empty();
            let next = page.next.take();
            if next.is_none() && kind == StreamKind::Live {
                let err = OktaError::MalformedResponse(
                    "a polling response came without a rel=\"next\" Link header".into(),
                );
                return fail(report, err.into());
            }

            // Prefetch the following page while this one is published: the cursor still
            // moves only once this page is fully acknowledged.
            let prefetch = match &next {
                Some(url) if !is_empty && Instant::now() < deadline => {
                    Some(PageRequest::Next(url.clone()))
                }
                _ => None,
            };
            let publish = async {
                if records.is_empty() {
                    Ok(())
                } else {
                    self.sink.publish(&records, deadline).await.map(|_| ())
                }
            };
            let fetch_next = async {
                match &prefetch {
                    Some(request) => Some(self.fetch(request, deadline).await),
                    None => None,
                }
            };
            let (published, following) = tokio::join!(publish, fetch_next);
            if let Err(err) = published {
                report.duplicates_replayed += delivered_before_failure(&err, records.len());
                return fail(report, err.into());
            }
            report.published += records.len() as u64;
            if let Some(newest) = newest {
                report.newest_published = report.newest_published.max(Some(newest));
            }

            // A bounded window without `next` is complete: its cursor becomes the terminal
            // marker so a resumed backfill does not read the window again.
            let new_position = next
                .as_ref()
                .map_or_else(|| BACKFILL_DONE.to_string(), Url::to_string);
            if position.as_deref() != Some(new_position.as_str()) || window_to_record.is_some() {
                let update = Checkpoint {
                    cursor: new_position.clone(),
                    newest_published: newest,
                    delivered: records.len() as u64,
                    window: window_to_record.take(),
                };
                let now = OffsetDateTime::now_utc();
                if let Err(err) = self.store.checkpoint(lease, &update, now).await {
                    // The page is in the sink but the cursor did not move: all of it replays.
                    report.duplicates_replayed += records.len() as u64;
                    let lost = matches!(err, CursorError::LeaseLost { .. });
                    let mut report = fail(report, err.into());
                    if lost {
                        report.stop_reason = Some(StopReason::LeaseLost);
                    }
                    return report;
                }
                report.checkpoints += 1;
                report.cursor_advanced = true;
                position = Some(new_position);
            }
            tracing::debug!(
                page = report.pages,
                events = page.events.len(),
                published = records.len(),
                body_bytes = page.body_bytes,
                has_next = next.is_some(),
                "page delivered"
            );

            if next.is_none() {
                report.stop_reason = Some(match kind {
                    StreamKind::Backfill(_) => StopReason::WindowComplete,
                    StreamKind::Live => StopReason::CaughtUp,
                });
                report.caught_up = true;
                return report;
            }
            if is_empty {
                report.caught_up = true;
                report.stop_reason = Some(StopReason::CaughtUp);
                return report;
            }
            match following {
                Some(Ok(following)) => page = following,
                Some(Err(err)) => return fail(report, err),
                None => {
                    report.stop_reason = Some(StopReason::Deadline);
                    return report;
                }
            }
        }
    }

    fn first_request(
        &self,
        item: &CursorItem,
        kind: StreamKind,
        report: &mut DrainReport,
    ) -> Result<PageRequest, DrainError> {
        let now = OffsetDateTime::now_utc();
        let oldest_retained = now - RETENTION + Duration::from_secs(3600);
        let limit = self.settings.page_limit;
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
                    .min(now - self.settings.lookback)
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

    async fn fetch(&self, request: &PageRequest, deadline: Instant) -> Result<Page, DrainError> {
        Ok(self.source.fetch_page(request, deadline).await?)
    }

    /// Turns a page into sink records, counting exclusions; returns the newest `published`.
    fn to_records(
        &self,
        page: &Page,
        report: &mut DrainReport,
    ) -> (Vec<Record>, Option<OffsetDateTime>) {
        let ingested_at = OffsetDateTime::now_utc();
        let mut records = Vec::with_capacity(page.events.len());
        let mut newest = None;
        for raw in &page.events {
            match self.normalizer.normalize(raw.get(), ingested_at) {
                Ok(normalized) => {
                    newest = newest.max(Some(normalized.published));
                    let data = match self.format {
                        RecordFormat::Normalized => normalized.json,
                        RecordFormat::Raw => raw_line(raw.get()),
                    };
                    records.push(Record {
                        event_id: normalized.event_id,
                        partition_key: normalized.partition_key,
                        data,
                    });
                }
                Err(exclusion) => {
                    *report
                        .excluded
                        .entry(exclusion.reason.as_str())
                        .or_default() += 1;
                    tracing::debug!(
                        reason = exclusion.reason.as_str(),
                        event_id = exclusion.event_id.as_deref().unwrap_or("-"),
                        event_type = exclusion.event_type.as_deref().unwrap_or("-"),
                        detail = %exclusion.detail,
                        "event excluded"
                    );
                    if self.format == RecordFormat::Raw {
                        if let Some(id) = exclusion.event_id {
                            records.push(Record {
                                partition_key: id.clone(),
                                event_id: id,
                                data: raw_line(raw.get()),
                            });
                        }
                    }
                }
            }
        }
        (records, newest)
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

/// The cursor value of a backfill whose window has been read completely.
pub const BACKFILL_DONE: &str = "done";

fn parse_cursor(key: &str, cursor: &str) -> Result<PageRequest, DrainError> {
    Url::parse(cursor)
        .map(PageRequest::Next)
        .map_err(|err| DrainError::BadStoredCursor {
            key: key.to_string(),
            detail: err.to_string(),
        })
}

fn raw_line(raw: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(raw.len() + 1);
    line.extend_from_slice(raw.as_bytes());
    line.push(b'\n');
    line
}

/// How many records of a failed publish reached the sink anyway.
fn delivered_before_failure(err: &SinkError, records: usize) -> u64 {
    let delivered = match err {
        // Checked before anything is sent.
        SinkError::OversizeRecord { .. } => 0,
        SinkError::Incomplete { unacknowledged, .. } => records.saturating_sub(*unacknowledged),
        // Unknown: any of them may have landed.
        SinkError::Service(_) => records,
    };
    delivered as u64
}

fn fail(mut report: DrainReport, err: DrainError) -> DrainReport {
    report.stop_reason = Some(StopReason::Failed);
    report.error = Some(err);
    report
}
