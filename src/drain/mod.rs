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

pub use records::{Formatted, Normalized, Ocsf, RecordFormat};
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
    /// Where each page goes, in one format per sink (TOTAL, OCSF, or both into two streams).
    /// The report's exclusions and `published` count the first output's records.
    pub outputs: &'a [Output<'a, K>],
    pub normalizer: &'a Normalizer,
    pub settings: &'a DrainSettings,
    /// A checkpoint still unanswered here is cut: the invocation's deadline less the time to
    /// answer (the work deadline comes earlier, by the margin kept for this last write).
    pub writes_deadline: Instant,
}

/// One sink and the format of its records.
pub struct Output<'a, K> {
    pub sink: &'a K,
    pub format: &'a dyn RecordFormat,
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

    /// Each page is normalized, published and checkpointed while the following one is fetched; the
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
            let deliver = async {
                let batches = self.batches(&page, &mut progress.report);
                self.deliver(lease, progress, batches, next.as_ref(), deadline)
                    .await
            };
            // The next page's request goes out first, so Okta answers it while this page is
            // normalized and published.
            let (following, ()) = tokio::try_join!(biased; async { Ok(prefetch.await) }, deliver)?;
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

    /// A page's records for each output; exclusions are counted once (the first output's).
    fn batches(&self, page: &Page, report: &mut DrainReport) -> Vec<Batch> {
        let mut others = DrainReport::default();
        self.outputs
            .iter()
            .enumerate()
            .map(|(i, output)| {
                let counted = if i == 0 { &mut *report } else { &mut others };
                records::batch(self.normalizer, output.format, page, counted)
            })
            .collect()
    }

    /// Publishes a page's records to every output and, once every sink acknowledged all of
    /// them, checkpoints the page's `next` link (a completed window's terminal marker when
    /// there is none). One output failing fails the page: it replays to all outputs.
    async fn deliver(
        &self,
        lease: &mut Lease,
        progress: &mut Progress,
        batches: Vec<Batch>,
        next: Option<&Url>,
        deadline: Instant,
    ) -> Result<(), DrainError> {
        let report = &mut progress.report;
        let publishes = self
            .outputs
            .iter()
            .zip(&batches)
            .map(|(output, batch)| async move {
                let records = batch.records.len();
                if records == 0 {
                    return Ok((0, 0));
                }
                match output.sink.publish(&batch.records, deadline).await {
                    Ok(stats) => {
                        let kept = u64::from(stats.dead_lettered).min(records as u64);
                        Ok((records as u64 - kept, kept))
                    }
                    Err(err) => Err((delivered_before_failure(&err, records), err)),
                }
            });
        let (mut delivered, mut failure) = (0, None);
        let mut outcomes = Vec::with_capacity(batches.len());
        for result in futures_util::future::join_all(publishes).await {
            match result {
                Ok((published, kept)) => {
                    delivered += published;
                    outcomes.push((published, kept));
                }
                Err((records, err)) => {
                    delivered += records;
                    failure.get_or_insert(err);
                }
            }
        }
        if let Some(err) = failure {
            // What any output acknowledged is published again with the page.
            report.duplicates_replayed += delivered;
            return Err(err.into());
        }
        // The first output's figures are the report's.
        let (count, kept) = outcomes.first().copied().unwrap_or((0, 0));
        report.dead_lettered += kept;
        let newest = batches.iter().filter_map(|b| b.newest).max();
        report.published += count;
        report.newest_published = report.newest_published.max(newest);

        let cursor = next.map_or_else(|| BACKFILL_DONE.to_string(), Url::to_string);
        if progress.position.as_deref() == Some(cursor.as_str())
            && progress.window_to_record.is_none()
        {
            return Ok(());
        }
        let update = Checkpoint {
            cursor,
            newest_published: newest,
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
