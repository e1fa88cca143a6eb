//! The OCSF 1.8.0 record as serialized: only attributes the schema defines, absent rather than
//! null when unknown (OCSF has no nulls), and everything without a home under `unmapped`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

type Str<'a> = Option<Cow<'a, str>>;

/// One OCSF event of any of the classes the mapping emits. Which optional attributes are
/// filled depends on the class; the validation tests hold each class to its schema.
#[derive(Debug, Clone, Serialize)]
pub struct OcsfEvent<'a> {
    pub activity_id: u8,
    pub activity_name: Cow<'static, str>,
    pub category_uid: u8,
    pub category_name: &'static str,
    pub class_uid: u32,
    pub class_name: &'static str,
    pub type_uid: u64,
    pub type_name: String,
    pub severity_id: u8,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Str<'a>,
    /// Epoch milliseconds of Okta's `published`.
    pub time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Str<'a>,
    pub metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Device<'a>>,
    // Authentication (3002)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Named<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_protocol_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mfa: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_factors: Vec<AuthFactor<'a>>,
    // Group Management (3006)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Named<'a>>,
    // User Access Management (3005)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource<'a>>,
    // API Activity (6003), the fallback
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api<'a>>,
    // Detection Finding (2004)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_info: Option<FindingInfo<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidences: Vec<Evidence<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_alert: Option<bool>,
    // security_control profile (and Detection Finding)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_level_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_details: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub unmapped: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata<'a> {
    pub version: &'static str,
    pub product: Product,
    /// The Okta `uuid`: the dedupe key downstream.
    pub uid: Cow<'a, str>,
    pub event_code: Cow<'a, str>,
    pub log_name: &'static str,
    pub original_time: Cow<'a, str>,
    pub logged_time: i64,
    /// The Okta org (its domain).
    pub tenant_uid: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_uid: Str<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub name: &'static str,
    pub vendor_name: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'a>>,
    /// A non-person actor (Okta itself, an API client) by name and id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    /// Okta `alternateId`: the login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_addr: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_id: Option<u8>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Session<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    /// Okta's root session id, shared by the sessions of one sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid_alt: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Str<'a>,
}

impl Session<'_> {
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.uid_alt.is_none() && self.issuer.is_none()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Str<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intermediate_ips: Vec<Cow<'a, str>>,
    /// The domain of the client's network (Okta `securityContext.domain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Str<'a>,
    /// The Okta network zone the client matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autonomous_system: Option<AutonomousSystem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isp: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Os<'a>>,
}

impl Endpoint<'_> {
    /// OCSF needs one identifying attribute of a network endpoint.
    pub fn is_identified(&self) -> bool {
        self.ip.is_some() || self.domain.is_some()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Str<'a>,
    /// ISO 3166-1 alpha-2, only when Okta sent a two-letter code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Okta's country name when it is not a two-letter code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutonomousSystem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Os<'a> {
    pub name: Cow<'a, str>,
    pub type_id: u16,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Device<'a> {
    pub type_id: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Os<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_managed: Option<bool>,
}

/// An entity by id and name: a service (application), a group.
#[derive(Debug, Clone, Serialize)]
pub struct Named<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resource<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Str<'a>,
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthFactor<'a> {
    pub factor_type_id: u8,
    pub factor_type: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Api<'a> {
    pub operation: Cow<'a, str>,
    pub service: Named<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingInfo<'a> {
    pub uid: Cow<'a, str>,
    pub title: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Str<'a>,
    pub types: Vec<&'static str>,
    pub analytic: Analytic,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analytic {
    pub name: &'static str,
    pub type_id: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evidence<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest<'a>>,
}
