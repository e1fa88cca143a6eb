//! Raw Okta LogEvent → TOTAL normalized event (schema v1).

use time::OffsetDateTime;

/// Which event types are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogPolicy {
    /// Only the event types of the catalog.
    #[default]
    Catalog,
    /// Everything attributable to a person; types outside the catalog are classified `Other`.
    All,
}

#[derive(Debug, Clone)]
pub struct NormalizerConfig {
    pub org: String,
    pub connector_id: String,
    pub policy: CatalogPolicy,
    /// Embed the raw Okta event in each normalized event.
    pub include_raw: bool,
}

/// A normalized event, serialized and ready for the sink.
#[derive(Debug, Clone)]
pub struct NormalizedRecord {
    /// The Okta `uuid`: the dedupe key downstream.
    pub event_id: String,
    /// The subject's Okta user id: Kinesis partition key (per-person ordering).
    pub partition_key: String,
    pub published: OffsetDateTime,
    /// One JSON object followed by `\n`.
    pub json: Vec<u8>,
}

/// Why an event is not published. Counted in metrics, never dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionReason {
    /// Event type outside the catalog under the `catalog` policy.
    NotInCatalog,
    /// No User in actor or targets (system-level event).
    NoHumanIdentity,
    /// Valid JSON but not a LogEvent (e.g. no uuid, eventType or published).
    Malformed,
}

impl ExclusionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionReason::NotInCatalog => "not_in_catalog",
            ExclusionReason::NoHumanIdentity => "no_human_identity",
            ExclusionReason::Malformed => "malformed_event",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Exclusion {
    pub reason: ExclusionReason,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub detail: String,
}
