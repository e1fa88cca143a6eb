//! A page's events as sink records, with exclusions counted rather than dropped silently.

use time::OffsetDateTime;

use super::DrainReport;
use crate::normalize::{Exclusion, NormalizedRecord, Normalizer};
use crate::okta::Page;
use crate::sink::Record;

/// How one Okta event becomes a sink record. The connector writes normalized TOTAL events
/// ([`Normalized`]); other formats (the local CLI's raw output) plug in here.
pub trait RecordFormat: Send + Sync {
    /// The record for one raw event, or why it is not published.
    fn format(
        &self,
        normalizer: &Normalizer,
        raw: &str,
        ingested_at: OffsetDateTime,
    ) -> Result<Formatted, Exclusion>;
}

/// One event ready for the sink.
#[derive(Debug, Clone)]
pub struct Formatted {
    pub record: Record,
    /// The event's `published`, when known; the newest one is recorded with the checkpoint.
    pub published: Option<OffsetDateTime>,
}

/// TOTAL normalized events; excluded events are counted, not written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Normalized;

impl RecordFormat for Normalized {
    fn format(
        &self,
        normalizer: &Normalizer,
        raw: &str,
        ingested_at: OffsetDateTime,
    ) -> Result<Formatted, Exclusion> {
        normalizer.normalize(raw, ingested_at).map(Formatted::from)
    }
}

impl From<NormalizedRecord> for Formatted {
    fn from(normalized: NormalizedRecord) -> Self {
        Formatted {
            record: Record {
                event_id: normalized.event_id,
                partition_key: normalized.partition_key,
                data: normalized.json,
            },
            published: Some(normalized.published),
        }
    }
}

/// OCSF 1.8.0 records (docs/ocsf.md); the same events as TOTAL are published and excluded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ocsf;

impl RecordFormat for Ocsf {
    fn format(
        &self,
        normalizer: &Normalizer,
        raw: &str,
        ingested_at: OffsetDateTime,
    ) -> Result<Formatted, Exclusion> {
        normalizer
            .normalize_ocsf(raw, ingested_at)
            .map(Formatted::from)
    }
}

/// The records of one page and the newest `published` among them.
pub(super) struct Batch {
    pub(super) records: Vec<Record>,
    pub(super) newest: Option<OffsetDateTime>,
}

pub(super) fn batch(
    normalizer: &Normalizer,
    format: &dyn RecordFormat,
    page: &Page,
    report: &mut DrainReport,
) -> Batch {
    let ingested_at = OffsetDateTime::now_utc();
    let mut batch = Batch {
        records: Vec::with_capacity(page.events.len()),
        newest: None,
    };
    for raw in &page.events {
        match format.format(normalizer, raw.get(), ingested_at) {
            Ok(formatted) => {
                batch.newest = batch.newest.max(formatted.published);
                batch.records.push(formatted.record);
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
            }
        }
    }
    batch
}
