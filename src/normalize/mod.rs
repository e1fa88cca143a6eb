//! Raw Okta LogEvent → TOTAL normalized event (schema v1, see docs/schema.md).

pub mod catalog;
pub mod debug_data;
pub mod event;
pub mod ocsf;
pub mod outputs;
mod timestamp;

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::okta::model::{self, LogEvent, Text};
use crate::sink::limits::{MAX_PARTITION_KEY_BYTES, MAX_RECORD_DATA_BYTES};
use catalog::{Catalog, CatalogEntry, Classification, SubjectRule};
use event::{OutcomeResult, Severity, SubjectSource, TotalEvent, SCHEMA_VERSION};

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

/// Okta's `id` for a User it could not resolve, e.g. a sign-in with a username that does not exist.
const UNRESOLVED_USER_ID: &str = "unknown";

/// Non-catalog event types where an admin or Okta acts on a user: the user target is the subject.
const USER_DIRECTED_PREFIXES: [&str; 6] = [
    "user.account.",
    "user.lifecycle.",
    "user.mfa.factor.",
    "application.user_membership.",
    "group.user_membership.",
    "user.session.clear",
];

/// The subject's Okta user id. Unresolved users are keyed by their typed login instead, so a
/// password spray spreads over shards (and baselines) rather than piling onto one "unknown" key.
/// Keys over the Kinesis limit become `sha256:<hex>`: deterministic, so ordering still holds.
pub fn partition_key(subject: &event::Party<'_>, subject_resolved: bool) -> String {
    let key = if subject_resolved {
        subject.id.as_deref().unwrap_or_default().to_owned()
    } else {
        match subject.login.as_deref().map(str::trim) {
            Some(login) if !login.is_empty() => {
                format!("{UNRESOLVED_USER_ID}:{}", login.to_lowercase())
            }
            _ => UNRESOLVED_USER_ID.to_owned(),
        }
    };
    if key.len() <= MAX_PARTITION_KEY_BYTES {
        return key;
    }
    cap_partition_key(key)
}

/// `sha256:<hex>` of a key over the Kinesis limit.
fn cap_partition_key(key: String) -> String {
    let mut short = String::with_capacity(7 + 64);
    short.push_str("sha256:");
    for byte in Sha256::digest(key.as_bytes()) {
        // Writing to a String cannot fail.
        let _ = write!(short, "{byte:02x}");
    }
    short
}

/// The subject rule of a type outside the catalog (used under the `all` policy).
fn uncatalogued_rule(event_type: &str) -> SubjectRule {
    if USER_DIRECTED_PREFIXES
        .iter()
        .any(|prefix| event_type.starts_with(prefix))
    {
        SubjectRule::Target
    } else {
        SubjectRule::Actor
    }
}

fn text(value: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    value.map(Text::into_cow).filter(|s| !s.trim().is_empty())
}

/// Maps a validated LogEvent onto v1; `None` when no User can be found.
fn build<'a>(
    log: LogEvent<'a>,
    config: &'a NormalizerConfig,
    entry: Option<&'static CatalogEntry>,
    input: BuildInput<'a>,
) -> Option<TotalEvent<'a>> {
    let rule = entry.map_or_else(|| uncatalogued_rule(&input.event_type), |e| e.subject);
    let actor = log.actor.unwrap_or_default();
    let targets = log.target.unwrap_or_default();
    let first_user_target = targets.iter().find(|t| t.is_user());
    let (subject, subject_source) = match (rule, actor.is_user(), first_user_target) {
        (SubjectRule::Actor, true, _) | (SubjectRule::Target, true, None) => {
            (party(&actor), SubjectSource::Actor)
        }
        (_, _, Some(target)) => (party(target), SubjectSource::Target),
        (_, false, None) => return None,
    };
    let subject_resolved = !subject
        .id
        .as_deref()
        .is_some_and(|id| id.trim().eq_ignore_ascii_case(UNRESOLVED_USER_ID));
    let application = targets
        .iter()
        .find(|t| t.kind.as_ref().is_some_and(|k| k.0 == "AppInstance"))
        .map(|app| event::Application {
            id: text(app.id.clone()),
            name: text(app.alternate_id.clone()),
            display_name: text(app.display_name.clone()),
        });
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
        subject,
        subject_source,
        subject_resolved,
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
            ip_chain: log
                .request
                .and_then(|r| r.ip_chain)
                .unwrap_or_default()
                .into_iter()
                .map(|hop| event::IpHop {
                    ip: text(hop.ip),
                    version: text(hop.version),
                    source: text(hop.source),
                    geo: geo(hop.geographical_context.unwrap_or_default()),
                })
                .collect(),
            user_agent: text(user_agent.raw_user_agent),
            os: text(user_agent.os),
            browser: text(user_agent.browser),
            device: text(client.device),
            zone: zone(text(client.zone)),
            client_id: text(client.id),
        },
        device: log.device.map(|d| event::Device {
            id: text(d.id),
            name: text(d.name),
            os_platform: text(d.os_platform),
            os_version: text(d.os_version),
            managed: d.managed.and_then(|f| f.0),
            registered: d.registered.and_then(|f| f.0),
        }),
        network: event::Network {
            asn: security.as_number.and_then(|n| n.0),
            as_org: text(security.as_org),
            isp: text(security.isp),
            domain: text(security.domain),
            is_proxy: security.is_proxy.and_then(|f| f.0),
        },
        risk: risk(
            text(debug.risk),
            text(debug.behaviors),
            debug.threat_suspected.and_then(|f| f.0),
        ),
        raw: input.raw,
    })
}

fn party<'a>(principal: &model::Principal<'a>) -> event::Party<'a> {
    event::Party {
        id: text(principal.id.clone()),
        kind: text(principal.kind.clone()),
        login: text(principal.alternate_id.clone()),
        display_name: text(principal.display_name.clone()),
    }
}

fn target(principal: model::Principal<'_>) -> event::Target<'_> {
    event::Target {
        id: text(principal.id),
        kind: text(principal.kind),
        alternate_id: text(principal.alternate_id),
        display_name: text(principal.display_name),
        detail: principal.detail_entry.map(Cow::Borrowed),
    }
}

fn geo(context: model::GeographicalContext<'_>) -> event::Geo<'_> {
    let location = context.geolocation.unwrap_or_default();
    event::Geo {
        city: text(context.city),
        state: text(context.state),
        country: text(context.country),
        postal_code: text(context.postal_code),
        // Out-of-range coordinates would place the user nowhere; unknown is safer for travel checks.
        lat: location
            .lat
            .and_then(|f| f.0)
            .filter(|lat| (-90.0..=90.0).contains(lat)),
        lon: location
            .lon
            .and_then(|f| f.0)
            .filter(|lon| (-180.0..=180.0).contains(lon)),
    }
}

/// Okta writes the string `"null"` when the client is in no network zone.
fn zone(zone: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    zone.filter(|z| !z.eq_ignore_ascii_case("null"))
}

/// Case-insensitive lookup of an Okta enum spelling.
fn okta_enum<T: Copy>(raw: &str, names: &[(&str, T)]) -> Option<T> {
    let raw = raw.trim();
    names
        .iter()
        .find(|(name, _)| raw.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

fn severity(raw: &str) -> Option<Severity> {
    okta_enum(
        raw,
        &[
            ("DEBUG", Severity::Debug),
            ("INFO", Severity::Info),
            ("WARN", Severity::Warn),
            ("ERROR", Severity::Error),
        ],
    )
}

fn outcome_result(raw: &str) -> OutcomeResult {
    okta_enum(
        raw,
        &[
            ("SUCCESS", OutcomeResult::Success),
            ("FAILURE", OutcomeResult::Failure),
            ("SKIPPED", OutcomeResult::Skipped),
            ("ALLOW", OutcomeResult::Allow),
            ("DENY", OutcomeResult::Deny),
            ("CHALLENGE", OutcomeResult::Challenge),
        ],
    )
    .unwrap_or(OutcomeResult::Unknown)
}

fn risk<'a>(
    risk: Option<Cow<'a, str>>,
    behaviors: Option<Cow<'a, str>>,
    threat_suspected: Option<bool>,
) -> event::Risk<'a> {
    let (level, reasons, unparsed_risk) = match risk {
        None => (None, Vec::new(), None),
        Some(raw) => match debug_data::parse_risk(&raw) {
            Some(parsed) => (parsed.level, parsed.reasons, None),
            None => (None, Vec::new(), Some(raw)),
        },
    };
    let (behaviors, unparsed_behaviors) = match behaviors {
        None => (None, None),
        Some(raw) => match debug_data::parse_behaviors(&raw) {
            Some(parsed) => (Some(parsed), None),
            None => (None, Some(raw)),
        },
    };
    event::Risk {
        level,
        reasons,
        behaviors,
        threat_suspected,
        unparsed_risk,
        unparsed_behaviors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const INGESTED: OffsetDateTime = datetime!(2024-05-01 12:00:30.5 UTC);

    fn normalizer(policy: CatalogPolicy) -> Normalizer {
        Normalizer::new(NormalizerConfig {
            org: "acme.okta.com".to_owned(),
            connector_id: "conn-1".to_owned(),
            policy,
            include_raw: false,
        })
    }

    fn raw(event_type: &str, actor: &str, targets: &str) -> String {
        format!(
            r#"{{"uuid":"u-1","published":"2024-05-01T12:00:00.1Z","eventType":"{event_type}",
                "actor":{actor},"target":{targets}}}"#
        )
    }

    const ALICE: &str = r#"{"id":"00u-alice","type":"User","alternateId":"alice@acme.com"}"#;
    const ADMIN: &str = r#"{"id":"00u-admin","type":"User","alternateId":"admin@acme.com"}"#;
    const SYSTEM: &str = r#"{"id":"0oa-system","type":"SystemPrincipal"}"#;
    const APP: &str = r#"{"id":"0oa-app","type":"AppInstance","alternateId":"Slack"}"#;

    #[test]
    fn user_actor_is_the_subject_of_their_own_sign_in() {
        let raw = raw("user.authentication.sso", ALICE, &format!("[{APP}]"));
        let n = normalizer(CatalogPolicy::Catalog);
        let (event, _) = n.to_event(&raw, INGESTED).unwrap();
        assert_eq!(event.subject.id.as_deref(), Some("00u-alice"));
        assert_eq!(event.subject_source, SubjectSource::Actor);
        assert_eq!(event.application.unwrap().name.as_deref(), Some("Slack"));
    }

    #[test]
    fn admin_granting_privilege_is_actor_and_the_grantee_is_subject() {
        let raw = raw("user.account.privilege.grant", ADMIN, &format!("[{ALICE}]"));
        let record = normalizer(CatalogPolicy::Catalog)
            .normalize(&raw, INGESTED)
            .unwrap();
        assert_eq!(record.partition_key, "00u-alice");
        let n = normalizer(CatalogPolicy::Catalog);
        let (event, _) = n.to_event(&raw, INGESTED).unwrap();
        assert_eq!(event.actor.id.as_deref(), Some("00u-admin"));
        assert_eq!(event.subject.login.as_deref(), Some("alice@acme.com"));
        assert_eq!(event.subject_source, SubjectSource::Target);
    }

    #[test]
    fn target_rule_falls_back_to_a_user_actor_without_user_targets() {
        let raw = raw("user.lifecycle.create", ADMIN, "null");
        let record = normalizer(CatalogPolicy::Catalog)
            .normalize(&raw, INGESTED)
            .unwrap();
        assert_eq!(record.partition_key, "00u-admin");
    }

    #[test]
    fn system_principal_actor_resolves_to_the_first_user_target() {
        let raw = raw(
            "user.session.clear",
            SYSTEM,
            &format!("[{APP},{ALICE},{ADMIN}]"),
        );
        let record = normalizer(CatalogPolicy::Catalog)
            .normalize(&raw, INGESTED)
            .unwrap();
        assert_eq!(record.partition_key, "00u-alice");
    }

    #[test]
    fn event_with_no_user_anywhere_is_excluded_as_no_human_identity() {
        let blocked = raw("security.request.blocked", SYSTEM, &format!("[{APP}]"));
        let excluded = normalizer(CatalogPolicy::Catalog)
            .normalize(&blocked, INGESTED)
            .unwrap_err();
        assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
        assert_eq!(excluded.event_id.as_deref(), Some("u-1"));
        let null_actor = raw("user.session.start", "null", "null");
        let excluded = normalizer(CatalogPolicy::Catalog)
            .normalize(&null_actor, INGESTED)
            .unwrap_err();
        assert_eq!(excluded.reason, ExclusionReason::NoHumanIdentity);
    }

    #[test]
    fn type_outside_the_catalog_depends_on_the_policy() {
        let raw = raw("policy.lifecycle.update", ADMIN, "[]");
        let excluded = normalizer(CatalogPolicy::Catalog)
            .normalize(&raw, INGESTED)
            .unwrap_err();
        assert_eq!(excluded.reason, ExclusionReason::NotInCatalog);
        assert_eq!(
            excluded.event_type.as_deref(),
            Some("policy.lifecycle.update")
        );
        let all = normalizer(CatalogPolicy::All);
        let (event, _) = all.to_event(&raw, INGESTED).unwrap();
        assert_eq!(event.classification, Classification::Other);
        assert_eq!(event.signal_class, None);
        assert!(event.groups.is_empty());
        assert_eq!(event.subject.id.as_deref(), Some("00u-admin"));
    }

    #[test]
    fn missing_identity_fields_or_bad_published_are_malformed() {
        let n = normalizer(CatalogPolicy::Catalog);
        for raw in [
            r#"{"published":"2024-05-01T12:00:00Z","eventType":"user.session.start"}"#,
            r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"  "}"#,
            r#"{"uuid":"u","eventType":"user.session.start"}"#,
            r#"{"uuid":"u","published":"last tuesday","eventType":"user.session.start"}"#,
            r#"[1,2]"#,
            r#"{"uuid":"u""#,
        ] {
            let excluded = n.normalize(raw, INGESTED).unwrap_err();
            assert_eq!(excluded.reason, ExclusionReason::Malformed, "{raw}");
        }
    }

    #[test]
    fn record_is_one_json_line_with_utc_millisecond_times() {
        let raw = raw("user.session.start", ALICE, "[]");
        let record = normalizer(CatalogPolicy::Catalog)
            .normalize(&raw, INGESTED)
            .unwrap();
        assert_eq!(record.event_id, "u-1");
        assert_eq!(record.published, datetime!(2024-05-01 12:00:00.1 UTC));
        let text = std::str::from_utf8(&record.json).unwrap();
        assert!(text.starts_with(r#"{"schema_version":"1","event_id":"u-1","#));
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
        assert!(text.contains(r#""published":"2024-05-01T12:00:00.100Z""#));
        assert!(text.contains(r#""ingested_at":"2024-05-01T12:00:30.500Z""#));
        assert!(text.contains(r#""raw":null"#));
    }

    #[test]
    fn normalize_into_appends_one_line_per_event_to_the_buffer() {
        let n = normalizer(CatalogPolicy::Catalog);
        let mut out = Vec::new();
        let first = raw("user.session.start", ALICE, "[]");
        let second = raw("user.account.privilege.grant", ADMIN, &format!("[{ALICE}]"));
        let (id, key, _) = n.normalize_into(&first, INGESTED, &mut out).unwrap();
        assert_eq!((id.as_str(), key.as_str()), ("u-1", "00u-alice"));
        n.normalize_into(&second, INGESTED, &mut out).unwrap();
        let blocked = raw("security.request.blocked", SYSTEM, "[]");
        assert!(n.normalize_into(&blocked, INGESTED, &mut out).is_err());
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["actor"]["id"], "00u-admin");
    }

    #[test]
    fn raw_event_is_embedded_only_when_configured() {
        let raw = raw("user.session.start", ALICE, "[]");
        let mut config = normalizer(CatalogPolicy::Catalog).config;
        config.include_raw = true;
        let record = Normalizer::new(config).normalize(&raw, INGESTED).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(value["raw"]["actor"]["id"], "00u-alice");
    }

    #[test]
    fn raw_copy_that_would_overflow_a_stream_record_is_left_out() {
        let event = raw("user.session.start", ALICE, "[]");
        // A field the normalized event does not carry, large enough to overflow the record.
        let huge = format!(
            r#"{{"padding":"{}",{}"#,
            "x".repeat(1024 * 1024),
            &event[1..]
        );
        let mut config = normalizer(CatalogPolicy::Catalog).config;
        config.include_raw = true;
        let record = Normalizer::new(config).normalize(&huge, INGESTED).unwrap();
        assert!(
            record.json.len() < MAX_RECORD_DATA_BYTES,
            "{}",
            record.json.len()
        );
        let value: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(value["raw"], serde_json::Value::Null);
        assert_eq!(
            value["actor"]["id"], "00u-alice",
            "the normalized fields are kept"
        );
    }

    #[test]
    fn unparsable_risk_is_kept_raw_and_parsed_behaviors_are_a_map() {
        let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.session.start",
            "actor":{"id":"00u1","type":"User"},
            "debugContext":{"debugData":{"risk":"HIGH!","behaviors":"{New IP=POSITIVE}","threatSuspected":"false"}}}"#;
        let n = normalizer(CatalogPolicy::Catalog);
        let (event, _) = n.to_event(raw, INGESTED).unwrap();
        assert_eq!(event.risk.unparsed_risk.as_deref(), Some("HIGH!"));
        assert_eq!(event.risk.level, None);
        assert_eq!(event.risk.unparsed_behaviors, None);
        let behaviors = event.risk.behaviors.unwrap();
        assert_eq!(behaviors["New IP"], debug_data::BehaviorSignal::Positive);
        assert_eq!(event.risk.threat_suspected, Some(false));
    }

    #[test]
    fn mfa_event_without_debug_factor_takes_the_credential_type() {
        let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.authentication.auth_via_mfa",
            "actor":{"id":"00u1","type":"User"},"authenticationContext":{"credentialType":"OTP"}}"#;
        let n = normalizer(CatalogPolicy::Catalog);
        let (event, _) = n.to_event(raw, INGESTED).unwrap();
        assert_eq!(event.authentication.factor.as_deref(), Some("OTP"));
    }

    #[test]
    fn drifted_scalar_types_are_null_and_the_event_is_kept() {
        let raw = r#"{"uuid":"u","published":"2024-05-01T12:00:00Z","eventType":"user.session.start",
            "actor":{"id":"00u1","type":"User","alternateId":{"login":"x"}},
            "authenticationContext":{"authenticationStep":"n/a"},
            "client":{"ipAddress":"198.51.100.1","geographicalContext":{"geolocation":{"lat":"unknown","lon":[]}}}}"#;
        let n = normalizer(CatalogPolicy::Catalog);
        let (event, _) = n.to_event(raw, INGESTED).unwrap();
        assert_eq!(event.subject.id.as_deref(), Some("00u1"));
        assert_eq!(event.subject.login, None);
        assert_eq!(event.authentication.step, None);
        assert_eq!((event.geo.lat, event.geo.lon), (None, None));
        assert_eq!(event.client.ip.as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn unresolved_user_is_published_and_keyed_by_the_lowercased_typed_name() {
        const UNKNOWN: &str = r#"{"id":"unknown","type":"User","alternateId":" Bob@Acme.com ","displayName":"unknown"}"#;
        let raw = raw("user.session.start", UNKNOWN, "[]");
        let n = normalizer(CatalogPolicy::Catalog);
        let record = n.normalize(&raw, INGESTED).unwrap();
        assert_eq!(record.partition_key, "unknown:bob@acme.com");
        let (event, _) = n.to_event(&raw, INGESTED).unwrap();
        assert!(!event.subject_resolved);
        assert_eq!(event.subject.id.as_deref(), Some("unknown"));
        let nameless = raw_nameless();
        assert_eq!(
            n.normalize(&nameless, INGESTED).unwrap().partition_key,
            "unknown"
        );
        let alice = raw_alice();
        let (resolved, _) = n.to_event(&alice, INGESTED).unwrap();
        assert!(resolved.subject_resolved);
    }

    fn raw_nameless() -> String {
        raw(
            "user.session.start",
            r#"{"id":"UNKNOWN","type":"User"}"#,
            "[]",
        )
    }

    fn raw_alice() -> String {
        raw("user.session.start", ALICE, "[]")
    }

    #[test]
    fn partition_key_longer_than_256_bytes_is_its_sha256() {
        let party = |id: String| event::Party {
            id: Some(Cow::Owned(id)),
            kind: Some(Cow::Borrowed("User")),
            login: None,
            display_name: None,
        };
        let at_limit = "a".repeat(MAX_PARTITION_KEY_BYTES);
        assert_eq!(partition_key(&party(at_limit.clone()), true), at_limit);
        let over = "a".repeat(MAX_PARTITION_KEY_BYTES + 1);
        let key = partition_key(&party(over.clone()), true);
        let digest: String = Sha256::digest(over.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(key, format!("sha256:{digest}"));
        assert!(key.len() <= MAX_PARTITION_KEY_BYTES);
        assert_eq!(partition_key(&party(over), true), key);
    }

    #[test]
    fn all_policy_attributes_user_directed_types_outside_the_catalog_to_the_user_target() {
        let n = normalizer(CatalogPolicy::All);
        let update = raw("user.account.update_profile", ADMIN, &format!("[{ALICE}]"));
        let (event, _) = n.to_event(&update, INGESTED).unwrap();
        assert_eq!(event.subject.id.as_deref(), Some("00u-alice"));
        assert_eq!(event.subject_source, SubjectSource::Target);
        assert_eq!(event.actor.id.as_deref(), Some("00u-admin"));
        let other = raw("policy.rule.update", ADMIN, &format!("[{ALICE}]"));
        let (event, _) = n.to_event(&other, INGESTED).unwrap();
        assert_eq!(event.subject.id.as_deref(), Some("00u-admin"));
        assert_eq!(event.subject_source, SubjectSource::Actor);
    }
}
