//! The drain loop: fetch a page, turn it into records, publish them, and only then move the
//! cursor.
//!
//! It reads like the resilience contract (docs/resilience.md): the cursor only advances after
//! every record of a page was acknowledged by the sink, and it advances as soon as they were,
//! while the next page is already being fetched; any failure leaves it where it was, so the
//! next run replays from the last known-good position (at-least-once, duplicates only from
//! replays of unacknowledged pages).

mod records;
mod report;
mod start;

pub use records::{Formatted, Normalized, RecordFormat};
pub use report::{DrainError, DrainReport, StopReason};
pub use start::{cursor_aged_out, BACKFILL_DONE};

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use crate::cursor::{Checkpoint, CursorError, CursorItem, CursorStore, Lease, Window};
use crate::normalize::Normalizer;
use crate::okta::{LogSource, OktaError, Page, PageRequest, MAX_PAGE_LIMIT};
use crate::sink::{EventSink, SinkError};
use records::Batch;

/// Tunables of the drain.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// Events per Okta page (1..=1000).
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

/// Everything one drain needs; generic over the outside systems so tests use twins.
pub struct Drain<'a, L, C, K> {
    pub source: &'a L,
    pub store: &'a C,
    pub sink: &'a K,
    pub normalizer: &'a Normalizer,
    pub format: &'a dyn RecordFormat,
    pub settings: &'a DrainSettings,
    /// A checkpoint still unanswered here is cut: the invocation's deadline less the time to
    /// answer (the work deadline comes earlier, by the margin kept for this last write).
    pub writes_deadline: Instant,
}

/// Where one drain stands: what it has done and what its cursor item holds.
struct Progress {
    report: DrainReport,
    /// The cursor the item holds now.
    position: Option<String>,
    /// A backfill's window, written with its first checkpoint.
    window_to_record: Option<Window>,
}

impl<L: LogSource, C: CursorStore, K: EventSink> Drain<'_, L, C, K> {
    /// Drains pages until caught up, the window ends, the deadline nears or a step fails; the
    /// report counts what was done either way, the error says what failed.
    /// `deadline` already excludes the margin kept for releasing the lease.
    pub async fn run(
        &self,
        lease: &mut Lease,
        item: &CursorItem,
        kind: StreamKind,
        deadline: Instant,
    ) -> (DrainReport, Option<DrainError>) {
        let mut progress = Progress {
            report: DrainReport::default(),
            position: item.cursor.clone(),
            window_to_record: match kind {
                StreamKind::Backfill(window) if item.window.is_none() => Some(window),
                _ => None,
            },
        };
        let result = self.drain(lease, item, kind, deadline, &mut progress).await;
        let mut report = progress.report;
        let (stop, error) = match result {
            Ok(stop) => (stop, None),
            Err(err) if err.is_lease_lost() => (StopReason::LeaseLost, Some(err)),
            Err(err) => (StopReason::Failed, Some(err)),
        };
        report.caught_up = matches!(stop, StopReason::CaughtUp | StopReason::WindowComplete);
        report.stop_reason = Some(stop);
        (report, error)
    }

    /// Each page is published and checkpointed while the following one is fetched; the
    /// drain stops at the end of the stream, at the deadline, or at the first failure.
    async fn drain(
        &self,
        lease: &mut Lease,
        item: &CursorItem,
        kind: StreamKind,
        deadline: Instant,
        progress: &mut Progress,
    ) -> Result<StopReason, DrainError> {
        if matches!(kind, StreamKind::Backfill(_)) && item.cursor.as_deref() == Some(BACKFILL_DONE)
        {
            return Ok(StopReason::WindowComplete);
        }
        let first = start::first_request(item, kind, self.settings, &mut progress.report)?;
        let mut limit = requested_limit(&first, self.settings.page_limit);
        let mut page = self.fetch(first, deadline).await?;
        loop {
            progress.report.pages += 1;
            progress.report.fetched += page.events.len() as u64;
            let batch = records::batch(self.normalizer, self.format, &page, &mut progress.report);
            let next = next_link(&mut page, kind)?;
            let stop = end_of_stream(&page, next.as_ref(), kind, limit);
            if let Some(url) = &next {
                limit = requested_limit(&PageRequest::Next(url.clone()), limit);
            }
            let prefetch = async {
                match &next {
                    Some(url) if stop.is_none() && Instant::now() < deadline => {
                        Some(self.fetch(PageRequest::Next(url.clone()), deadline).await)
                    }
                    _ => None,
                }
            };
            let deliver = self.deliver(lease, progress, batch, next.as_ref(), deadline);
            let ((), following) = tokio::try_join!(deliver, async { Ok(prefetch.await) })?;
            tracing::debug!(
                page = progress.report.pages,
                events = page.events.len(),
                body_bytes = page.body_bytes,
                has_next = next.is_some(),
                "page delivered"
            );
            if let Some(stop) = stop {
                return Ok(stop);
            }
            page = match following {
                Some(following) => following?,
                None => return Ok(StopReason::Deadline),
            };
        }
    }

    /// Publishes a page's records and, once the sink acknowledged all of them, checkpoints
    /// the page's `next` link (a completed window's terminal marker when there is none).
    async fn deliver(
        &self,
        lease: &mut Lease,
        progress: &mut Progress,
        batch: Batch,
        next: Option<&Url>,
        deadline: Instant,
    ) -> Result<(), DrainError> {
        let report = &mut progress.report;
        let mut count = batch.records.len() as u64;
        if count > 0 {
            match self.sink.publish(&batch.records, deadline).await {
                Ok(stats) => {
                    report.dead_lettered += u64::from(stats.dead_lettered);
                    count -= u64::from(stats.dead_lettered).min(count);
                }
                Err(err) => {
                    report.duplicates_replayed +=
                        delivered_before_failure(&err, batch.records.len());
                    return Err(err.into());
                }
            }
        }
        report.published += count;
        report.newest_published = report.newest_published.max(batch.newest);

        let cursor = next.map_or_else(|| BACKFILL_DONE.to_string(), Url::to_string);
        if progress.position.as_deref() == Some(cursor.as_str())
            && progress.window_to_record.is_none()
        {
            return Ok(());
        }
        let update = Checkpoint {
            cursor,
            newest_published: batch.newest,
            delivered: count,
            window: progress.window_to_record,
        };
        let written = tokio::time::timeout_at(
            self.writes_deadline,
            self.store
                .checkpoint(lease, &update, OffsetDateTime::now_utc()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(CursorError::Unanswered {
                key: lease.key.clone(),
                operation: "checkpoint",
            })
        });
        if let Err(err) = written {
            // The page is in the sink but the cursor did not move: all of it replays.
            report.duplicates_replayed += count;
            return Err(err.into());
        }
        report.checkpoints += 1;
        report.cursor_advanced = true;
        progress.window_to_record = None;
        progress.position = Some(update.cursor);
        Ok(())
    }

    async fn fetch(&self, request: PageRequest, deadline: Instant) -> Result<Page, DrainError> {
        Ok(self.source.fetch_page(&request, deadline).await?)
    }
}

/// Takes the page's `next` link; a polling page must have one.
fn next_link(page: &mut Page, kind: StreamKind) -> Result<Option<Url>, DrainError> {
    let next = page.next.take();
    if next.is_none() && kind == StreamKind::Live {
        return Err(OktaError::MalformedResponse(
            "a polling response came without a rel=\"next\" Link header".into(),
        )
        .into());
    }
    Ok(next)
}

/// Whether this page ends the stream: a window without `next` is complete. A polling page
/// with fewer events than asked for proves the end was reached when Okta answered: its `next`
/// link is checkpointed and the drain stops without asking for the (empty) page after it;
/// events persisted later arrive through that link on the next poll.
fn end_of_stream(
    page: &Page,
    next: Option<&Url>,
    kind: StreamKind,
    limit: u32,
) -> Option<StopReason> {
    match (next, kind) {
        (None, StreamKind::Backfill(_)) => Some(StopReason::WindowComplete),
        (None, StreamKind::Live) => Some(StopReason::CaughtUp),
        (Some(_), StreamKind::Live) if page.events.len() < limit as usize => {
            Some(StopReason::CaughtUp)
        }
        (Some(_), _) if page.events.is_empty() => Some(StopReason::CaughtUp),
        (Some(_), _) => None,
    }
}

/// The page size a request asks for: its own, or for a `next` link that names none, the
/// previous one.
fn requested_limit(request: &PageRequest, fallback: u32) -> u32 {
    match request {
        PageRequest::Start { limit, .. } => *limit,
        PageRequest::Next(url) => url
            .query_pairs()
            .find(|(key, _)| key == "limit")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(fallback),
    }
    .clamp(1, MAX_PAGE_LIMIT)
}

/// How many records of a failed publish reached the sink anyway.
fn delivered_before_failure(err: &SinkError, records: usize) -> u64 {
    let delivered = match err {
        // All but the refused, which were never written.
        SinkError::Refused { refused, .. } => records.saturating_sub(refused.len()),
        SinkError::Incomplete { unacknowledged, .. } => records.saturating_sub(*unacknowledged),
        // Unknown: any of them may have landed.
        SinkError::Service(_) => records,
    };
    delivered as u64
}

#[cfg(test)]
mod tests;
