//! The TOTAL normalized event, schema v1 (documented in docs/schema.md, enforced by
//! docs/schema/total-event-v1.json).
//!
//! Fixed shape: every field is always serialized, in declaration order, and an unknown value is
//! `null` (never omitted). Arrays are empty, not null, when Okta sent none.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::catalog::{Classification, SignalClass};
use super::debug_data::BehaviorSignal;

/// Value of [`TotalEvent::schema_version`]. Additive changes keep it; breaking ones bump it.
pub const SCHEMA_VERSION: &str = "1";

type Str<'a> = Option<Cow<'a, str>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalEvent<'a> {
    #[serde(borrow)]
    pub schema_version: Cow<'a, str>,
    /// Okta `uuid`: the dedupe key.
    #[serde(borrow)]
    pub event_id: Cow<'a, str>,
    #[serde(borrow)]
    pub org: Cow<'a, str>,
    #[serde(borrow)]
    pub connector_id: Cow<'a, str>,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub legacy_event_type: Str<'a>,
    #[serde(borrow)]
    pub display_message: Str<'a>,
    pub classification: Classification,
    pub signal_class: Option<SignalClass>,
    /// Catalog groups (`authentication`, `mfa`, `lifecycle`, ...); empty outside the catalog.
    #[serde(borrow)]
    pub groups: Vec<Cow<'a, str>>,
    /// RFC 3339 UTC with milliseconds: `2024-05-01T12:00:00.123Z`.
    #[serde(borrow)]
    pub published: Cow<'a, str>,
    #[serde(borrow)]
    pub ingested_at: Cow<'a, str>,
    pub severity: Option<Severity>,
    #[serde(borrow)]
    pub outcome: Outcome<'a>,
    #[serde(borrow)]
    pub actor: Party<'a>,
    /// The person the event is about; always a User.
    #[serde(borrow)]
    pub subject: Party<'a>,
    /// Where the subject came from.
    pub subject_source: SubjectSource,
    /// False when Okta could not resolve the subject to a user (`subject.id` is `"unknown"`,
    /// e.g. a failed sign-in with a username that does not exist); `subject.login` is then the
    /// name as typed.
    pub subject_resolved: bool,
    #[serde(borrow)]
    pub targets: Vec<Target<'a>>,
    /// The application involved (first `AppInstance` target).
    #[serde(borrow)]
    pub application: Option<Application<'a>>,
    #[serde(borrow)]
    pub session: Session<'a>,
    #[serde(borrow)]
    pub authentication: Authentication<'a>,
    #[serde(borrow)]
    pub client: Client<'a>,
    #[serde(borrow)]
    pub device: Option<Device<'a>>,
    #[serde(borrow)]
    pub geo: Geo<'a>,
    #[serde(borrow)]
    pub network: Network<'a>,
    #[serde(borrow)]
    pub risk: Risk<'a>,
    /// The Okta event verbatim, only when the connector is configured to include it.
    #[serde(borrow)]
    pub raw: Option<Cow<'a, RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeResult {
    Success,
    Failure,
    Skipped,
    Allow,
    Deny,
    Challenge,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome<'a> {
    pub result: OutcomeResult,
    /// `outcome.result` as Okta sent it.
    #[serde(borrow)]
    pub raw_result: Str<'a>,
    #[serde(borrow)]
    pub reason: Str<'a>,
}

/// An actor or the subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    /// Okta `alternateId` (the login for users).
    #[serde(borrow)]
    pub login: Str<'a>,
    #[serde(borrow)]
    pub display_name: Str<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectSource {
    Actor,
    Target,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
    /// Okta `alternateId` (a login, an app name, a group name...).
    #[serde(borrow)]
    pub alternate_id: Str<'a>,
    #[serde(borrow)]
    pub display_name: Str<'a>,
    /// Okta `detailEntry`, verbatim.
    #[serde(borrow)]
    pub detail: Option<Cow<'a, RawValue>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow)]
    pub display_name: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session<'a> {
    #[serde(borrow)]
    pub external_session_id: Str<'a>,
    #[serde(borrow)]
    pub root_session_id: Str<'a>,
    #[serde(borrow)]
    pub transaction_id: Str<'a>,
    #[serde(borrow)]
    pub transaction_type: Str<'a>,
    #[serde(borrow)]
    pub request_id: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authentication<'a> {
    #[serde(borrow)]
    pub provider: Str<'a>,
    #[serde(borrow)]
    pub credential_type: Str<'a>,
    #[serde(borrow)]
    pub credential_provider: Str<'a>,
    #[serde(borrow)]
    pub interface: Str<'a>,
    pub step: Option<i64>,
    #[serde(borrow)]
    pub issuer_id: Str<'a>,
    #[serde(borrow)]
    pub issuer_type: Str<'a>,
    /// The factor used or changed, where the event reveals it.
    #[serde(borrow)]
    pub factor: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client<'a> {
    #[serde(borrow)]
    pub ip: Str<'a>,
    #[serde(borrow)]
    pub ip_chain: Vec<IpHop<'a>>,
    #[serde(borrow)]
    pub user_agent: Str<'a>,
    #[serde(borrow)]
    pub os: Str<'a>,
    #[serde(borrow)]
    pub browser: Str<'a>,
    #[serde(borrow)]
    pub device: Str<'a>,
    #[serde(borrow)]
    pub zone: Str<'a>,
    /// OAuth client id of the calling app, when Okta records one.
    #[serde(borrow)]
    pub client_id: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpHop<'a> {
    #[serde(borrow)]
    pub ip: Str<'a>,
    #[serde(borrow)]
    pub version: Str<'a>,
    #[serde(borrow)]
    pub source: Str<'a>,
    #[serde(borrow)]
    pub geo: Geo<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow)]
    pub os_platform: Str<'a>,
    #[serde(borrow)]
    pub os_version: Str<'a>,
    pub managed: Option<bool>,
    pub registered: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geo<'a> {
    #[serde(borrow)]
    pub city: Str<'a>,
    #[serde(borrow)]
    pub state: Str<'a>,
    #[serde(borrow)]
    pub country: Str<'a>,
    #[serde(borrow)]
    pub postal_code: Str<'a>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network<'a> {
    pub asn: Option<i64>,
    #[serde(borrow)]
    pub as_org: Str<'a>,
    #[serde(borrow)]
    pub isp: Str<'a>,
    #[serde(borrow)]
    pub domain: Str<'a>,
    pub is_proxy: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk<'a> {
    #[serde(borrow)]
    pub level: Str<'a>,
    #[serde(borrow)]
    pub reasons: Vec<Cow<'a, str>>,
    /// `null` when Okta sent no behaviors or they could not be parsed.
    #[serde(borrow)]
    pub behaviors: Option<BTreeMap<Cow<'a, str>, BehaviorSignal>>,
    pub threat_suspected: Option<bool>,
    /// `debugData.risk` verbatim when it could not be parsed, else `null`.
    #[serde(borrow)]
    pub unparsed_risk: Str<'a>,
    /// `debugData.behaviors` verbatim when it could not be parsed, else `null`.
    #[serde(borrow)]
    pub unparsed_behaviors: Str<'a>,
}
