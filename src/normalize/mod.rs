//! Raw Okta LogEvent → TOTAL normalized event (schema v1, see docs/schema.md).

pub mod catalog;
pub mod debug_data;
pub mod event;
pub mod ocsf;
pub mod outputs;
mod sections;
mod subject;
#[cfg(test)]
mod tests;
mod timestamp;

use std::borrow::Cow;

use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::okta::model::LogEvent;
use crate::sink::limits::MAX_RECORD_DATA_BYTES;
use catalog::{Catalog, CatalogEntry, Classification};
use event::{OutcomeResult, TotalEvent, SCHEMA_VERSION};
use sections::{geo, outcome_result, party, risk, severity, target, text, zone};
pub use subject::partition_key;

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
    /// Kinesis partition key (per-person ordering), see [`partition_key`].
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

/// Turns raw Okta LogEvents into TOTAL v1 events. Cheap to share; holds no per-event state.
#[derive(Debug, Clone)]
pub struct Normalizer {
    config: NormalizerConfig,
    catalog: &'static Catalog,
}

impl Normalizer {
    pub fn new(config: NormalizerConfig) -> Normalizer {
        Normalizer {
            config,
            catalog: Catalog::builtin(),
        }
    }

    /// Normalizes one event (`raw` = one LogEvent's JSON text) into a record ready for the sink.
    pub fn normalize(
        &self,
        raw: &str,
        ingested_at: OffsetDateTime,
    ) -> Result<NormalizedRecord, Exclusion> {
        // The v1 line runs a few hundred bytes longer than compact Okta JSON (fixed shape,
        // explicit nulls); sizing for that avoids a regrow-and-copy per event.
        let mut json = Vec::with_capacity(raw.len() + 1024);
        let (event_id, partition_key, published) =
            self.normalize_into(raw, ingested_at, &mut json)?;
        Ok(NormalizedRecord {
            event_id,
            partition_key,
            published,
            json,
        })
    }

    /// Like [`Normalizer::normalize`] but appends the JSON line to `out` (buffer reuse);
    /// returns the event id, partition key and published time.
    pub fn normalize_into(
        &self,
        raw: &str,
        ingested_at: OffsetDateTime,
        out: &mut Vec<u8>,
    ) -> Result<(String, String, OffsetDateTime), Exclusion> {
        let (mut event, published) = self.to_event(raw, ingested_at)?;
        let keys = (
            event.event_id.clone().into_owned(),
            partition_key(&event.subject, event.subject_resolved),
            published,
        );
        // Writing to a Vec fails only for non-string map keys, which v1 has none of; report
        // rather than panic should that ever change.
        let start = out.len();
        let mut written = serde_json::to_writer(&mut *out, &event);
        if written.is_ok() && event.raw.is_some() && out.len() - start + 1 > MAX_RECORD_DATA_BYTES {
            // The embedded copy would push the record past the stream's record limit and stall
            // the connector on this page; the normalized fields are kept, the copy is not.
            tracing::warn!(event_id = %keys.0, "raw event left out: the record would exceed 1 MiB");
            out.truncate(start);
            event.raw = None;
            written = serde_json::to_writer(&mut *out, &event);
        }
        if let Err(e) = written {
            return Err(Exclusion {
                reason: ExclusionReason::Malformed,
                event_id: Some(keys.0),
                event_type: Some(event.event_type.into_owned()),
                detail: format!("could not serialize the normalized event: {e}"),
            });
        }
        out.push(b'\n');
        Ok(keys)
    }

    /// The typed v1 event (borrowing from `raw`) and its published time.
    pub fn to_event<'a>(
        &'a self,
        raw: &'a str,
        ingested_at: OffsetDateTime,
    ) -> Result<(TotalEvent<'a>, OffsetDateTime), Exclusion> {
        let log: LogEvent<'a> = serde_json::from_str(raw).map_err(|e| Exclusion {
            reason: ExclusionReason::Malformed,
            event_id: None,
            event_type: None,
            detail: format!("not an Okta LogEvent object: {e}"),
        })?;
        let event_id = text(log.uuid.clone());
        let event_type = text(log.event_type.clone());
        let excluded = |reason, detail: String| Exclusion {
            reason,
            event_id: event_id.as_deref().map(str::to_owned),
            event_type: event_type.as_deref().map(str::to_owned),
            detail,
        };
        let (Some(event_id), Some(event_type)) = (event_id.clone(), event_type.clone()) else {
            return Err(excluded(
                ExclusionReason::Malformed,
                "the event has no uuid or no eventType".to_owned(),
            ));
        };
        let published_text = log.published.as_ref().map(|p| p.0.as_ref()).unwrap_or("");
        let Some(published) = timestamp::parse_rfc3339_utc(published_text) else {
            return Err(excluded(
                ExclusionReason::Malformed,
                format!("published {published_text:?} is not an RFC 3339 timestamp"),
            ));
        };
        let Some(ingested) = timestamp::to_utc(ingested_at) else {
            return Err(excluded(
                ExclusionReason::Malformed,
                format!("ingestion time {ingested_at} is outside years 0000-9999"),
            ));
        };
        let entry = self.catalog.get(event_type.as_ref());
        if entry.is_none() && self.config.policy == CatalogPolicy::Catalog {
            return Err(excluded(
                ExclusionReason::NotInCatalog,
                format!("event type {event_type} is outside the catalog (policy `catalog`)"),
            ));
        }
        let raw_value = if self.config.include_raw {
            match serde_json::from_str::<&RawValue>(raw) {
                Ok(value) => Some(Cow::Borrowed(value)),
                Err(e) => return Err(excluded(ExclusionReason::Malformed, e.to_string())),
            }
        } else {
            None
        };
        let Some(event) = build(
            log,
            &self.config,
            entry,
            BuildInput {
                event_id,
                event_type,
                published: timestamp::format_millis(published),
                ingested_at: timestamp::format_millis(ingested),
                raw: raw_value,
            },
        ) else {
            return Err(excluded(
                ExclusionReason::NoHumanIdentity,
                "neither the actor nor any target is a User with an id".to_owned(),
            ));
        };
        Ok((event, published))
    }
}

struct BuildInput<'a> {
    event_id: Cow<'a, str>,
    event_type: Cow<'a, str>,
    published: String,
    ingested_at: String,
    raw: Option<Cow<'a, RawValue>>,
}

/// Maps a validated LogEvent onto v1; `None` when no User can be found.
fn build<'a>(
    log: LogEvent<'a>,
    config: &'a NormalizerConfig,
    entry: Option<&'static CatalogEntry>,
    input: BuildInput<'a>,
) -> Option<TotalEvent<'a>> {
    let rule = entry.map_or_else(
        || subject::uncatalogued_rule(&input.event_type),
        |e| e.subject,
    );
    let actor = log.actor.unwrap_or_default();
    let targets = log.target.unwrap_or_default();
    let subject = subject::choose(rule, &actor, &targets)?;
    let application = sections::application(&targets);
    let auth = log.authentication_context.unwrap_or_default();
    let debug = log
        .debug_context
        .and_then(|d| d.debug_data)
        .unwrap_or_default();
    let client = log.client.unwrap_or_default();
    let user_agent = client.user_agent.unwrap_or_default();
    let security = log.security_context.unwrap_or_default();
    let transaction = log.transaction.unwrap_or_default();
    let outcome = log.outcome.unwrap_or_default();
    let issuer = auth.issuer.unwrap_or_default();
    let credential_type = text(auth.credential_type);
    let in_mfa_group = entry.is_some_and(|e| e.groups.contains(&"mfa"));
    let factor = text(debug.factor).or_else(|| {
        // MFA events name the factor in credentialType when debugData has none.
        in_mfa_group.then(|| credential_type.clone()).flatten()
    });
    Some(TotalEvent {
        schema_version: Cow::Borrowed(SCHEMA_VERSION),
        event_id: input.event_id,
        org: Cow::Borrowed(&config.org),
        connector_id: Cow::Borrowed(&config.connector_id),
        event_type: input.event_type,
        legacy_event_type: text(log.legacy_event_type),
        display_message: text(log.display_message),
        classification: entry.map_or(Classification::Other, |e| e.classification),
        signal_class: entry.map(|e| e.signal_class),
        groups: entry.map_or_else(Vec::new, |e| {
            e.groups.iter().map(|g| Cow::Borrowed(*g)).collect()
        }),
        published: Cow::Owned(input.published),
        ingested_at: Cow::Owned(input.ingested_at),
        severity: log.severity.and_then(|s| severity(&s.0)),
        outcome: event::Outcome {
            result: outcome
                .result
                .as_ref()
                .map_or(OutcomeResult::Unknown, |r| outcome_result(&r.0)),
            raw_result: text(outcome.result),
            reason: text(outcome.reason),
        },
        actor: party(&actor),
        subject: subject.party,
        subject_source: subject.source,
        subject_resolved: subject.resolved,
        targets: targets.into_iter().map(target).collect(),
        application,
        session: event::Session {
            external_session_id: text(auth.external_session_id),
            root_session_id: text(auth.root_session_id).or_else(|| text(debug.root_session_id)),
            transaction_id: text(transaction.id),
            transaction_type: text(transaction.kind),
            request_id: text(debug.request_id),
        },
        authentication: event::Authentication {
            provider: text(auth.authentication_provider),
            credential_type,
            credential_provider: text(auth.credential_provider),
            interface: text(auth.interface),
            step: auth.authentication_step.and_then(|s| s.0),
            issuer_id: text(issuer.id),
            issuer_type: text(issuer.kind),
            factor,
        },
        geo: geo(client.geographical_context.unwrap_or_default()),
        client: event::Client {
            ip: text(client.ip_address),
            ip_chain: sections::ip_chain(log.request),
            user_agent: text(user_agent.raw_user_agent),
            os: text(user_agent.os),
            browser: text(user_agent.browser),
            device: text(client.device),
            zone: zone(text(client.zone)),
            client_id: text(client.id),
        },
        device: log.device.map(sections::device),
        network: sections::network(security),
        risk: risk(
            text(debug.risk),
            text(debug.behaviors),
            debug.threat_suspected.and_then(|f| f.0),
        ),
        raw: input.raw,
    })
}
