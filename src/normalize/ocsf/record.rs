//! The OCSF 1.8.0 record as serialized: only attributes the schema defines, absent rather than
//! null when unknown (OCSF has no nulls), and everything without a home under `unmapped`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};
use serde_with::skip_serializing_none;

/// One OCSF event of any of the classes the mapping emits. Which optional attributes are
/// filled depends on the class; the validation tests hold each class to its schema.
#[skip_serializing_none]
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
    pub status_id: Option<u8>,
    pub status: Option<Cow<'a, str>>,
    pub status_detail: Option<Cow<'a, str>>,
    /// Epoch milliseconds of Okta's `published`.
    pub time: i64,
    pub message: Option<Cow<'a, str>>,
    pub metadata: Metadata<'a>,
    pub actor: Option<Actor<'a>>,
    pub user: Option<User<'a>>,
    pub src_endpoint: Option<Endpoint<'a>>,
    pub http_request: Option<HttpRequest<'a>>,
    pub device: Option<Device<'a>>,
    // Authentication (3002)
    pub session: Option<Session<'a>>,
    pub service: Option<Named<'a>>,
    pub auth_protocol_id: Option<u8>,
    pub auth_protocol: Option<Cow<'a, str>>,
    pub is_mfa: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_factors: Vec<AuthFactor<'a>>,
    // Group Management (3006)
    pub group: Option<Named<'a>>,
    // User Access Management (3005)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Cow<'a, str>>,
    pub resource: Option<Resource<'a>>,
    // API Activity (6003), the fallback
    pub api: Option<Api<'a>>,
    // Detection Finding (2004)
    pub finding_info: Option<FindingInfo<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidences: Vec<Evidence<'a>>,
    pub is_alert: Option<bool>,
    // security_control profile (and Detection Finding)
    pub action_id: Option<u8>,
    pub action: Option<Cow<'a, str>>,
    pub disposition_id: Option<u8>,
    pub disposition: Option<Cow<'a, str>>,
    pub risk_level_id: Option<u8>,
    pub risk_level: Option<Cow<'a, str>>,
    pub risk_details: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub unmapped: Map<String, Value>,
}

#[skip_serializing_none]
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
    pub correlation_uid: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub name: &'static str,
    pub vendor_name: &'static str,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor<'a> {
    pub user: Option<User<'a>>,
    /// A non-person actor (Okta itself, an API client) by name and id.
    pub app_name: Option<Cow<'a, str>>,
    pub app_uid: Option<Cow<'a, str>>,
    pub session: Option<Session<'a>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct User<'a> {
    pub uid: Option<Cow<'a, str>>,
    /// Okta `alternateId`: the login.
    pub name: Option<Cow<'a, str>>,
    pub display_name: Option<Cow<'a, str>>,
    pub email_addr: Option<Cow<'a, str>>,
    pub type_id: Option<u8>,
    #[serde(rename = "type")]
    pub kind: Option<&'static str>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Session<'a> {
    pub uid: Option<Cow<'a, str>>,
    /// Okta's root session id, shared by the sessions of one sign-in.
    pub uid_alt: Option<Cow<'a, str>>,
    pub issuer: Option<Cow<'a, str>>,
}

impl Session<'_> {
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.uid_alt.is_none() && self.issuer.is_none()
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Endpoint<'a> {
    pub ip: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intermediate_ips: Vec<Cow<'a, str>>,
    /// The domain of the client's network (Okta `securityContext.domain`).
    pub domain: Option<Cow<'a, str>>,
    /// The Okta network zone the client matched.
    pub zone: Option<Cow<'a, str>>,
    pub location: Option<Location<'a>>,
    pub autonomous_system: Option<AutonomousSystem<'a>>,
    pub isp: Option<Cow<'a, str>>,
    pub os: Option<Os<'a>>,
}

impl Endpoint<'_> {
    /// OCSF needs one identifying attribute of a network endpoint.
    pub fn is_identified(&self) -> bool {
        self.ip.is_some() || self.domain.is_some()
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Location<'a> {
    pub city: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    /// ISO 3166-1 alpha-2, only when Okta sent a two-letter code.
    pub country: Option<String>,
    /// Okta's country name when it is not a two-letter code.
    pub desc: Option<Cow<'a, str>>,
    pub postal_code: Option<Cow<'a, str>>,
    pub lat: Option<f64>,
    pub long: Option<f64>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct AutonomousSystem<'a> {
    pub number: Option<i64>,
    pub name: Option<Cow<'a, str>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Os<'a> {
    pub name: Cow<'a, str>,
    pub type_id: u16,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: Option<Cow<'a, str>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct HttpRequest<'a> {
    pub uid: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Device<'a> {
    pub type_id: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub uid: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub os: Option<Os<'a>>,
    pub is_managed: Option<bool>,
}

/// An entity by id and name: a service (application), a group.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Named<'a> {
    pub uid: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Resource<'a> {
    pub uid: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct AuthFactor<'a> {
    pub factor_type_id: u8,
    pub factor_type: Cow<'a, str>,
    pub provider: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Api<'a> {
    pub operation: Cow<'a, str>,
    pub service: Named<'a>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct FindingInfo<'a> {
    pub uid: Cow<'a, str>,
    pub title: Cow<'a, str>,
    pub desc: Option<Cow<'a, str>>,
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

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct Evidence<'a> {
    pub actor: Option<Actor<'a>>,
    pub user: Option<User<'a>>,
    pub src_endpoint: Option<Endpoint<'a>>,
    pub http_request: Option<HttpRequest<'a>>,
}
