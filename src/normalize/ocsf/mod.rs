//! The TOTAL event → OCSF 1.8.0 (docs/ocsf.md has the class table and the field mapping).
//!
//! The mapping starts from the TOTAL event, so subject resolution, risk parsing, geo and network
//! cleaning are the normalizer's and the two outputs never disagree about them.

pub mod class;
pub mod record;
mod values;

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::event::{self, SubjectSource, TotalEvent};
use super::subject::capped;
use super::{partition_key, Exclusion, ExclusionReason, NormalizedRecord, Normalizer};
use class::{OcsfClass, OTHER};
use record::*;

/// `metadata.version` of every record.
pub const OCSF_VERSION: &str = "1.8.0";

/// OCSF's "Base Event" (class 0): the last resort for an event that cannot meet the
/// requirements of API Activity (no identifiable actor or source).
const BASE_EVENT_UID: u32 = 0;

impl Normalizer {
    /// Normalizes one Okta event into an OCSF record (one JSON line). The partition key is
    /// `<class_uid>:<TOTAL partition key>`, so a consumer splits by class from the key alone.
    pub fn normalize_ocsf(
        &self,
        raw: &str,
        ingested_at: OffsetDateTime,
    ) -> Result<NormalizedRecord, Exclusion> {
        let mut json = Vec::with_capacity(raw.len() + 512);
        let (event_id, partition_key, published) =
            self.normalize_ocsf_into(raw, ingested_at, &mut json)?;
        Ok(NormalizedRecord {
            event_id,
            partition_key,
            published,
            json,
        })
    }

    /// Like [`Normalizer::normalize_ocsf`] but appends the JSON line to `out`.
    pub fn normalize_ocsf_into(
        &self,
        raw: &str,
        ingested_at: OffsetDateTime,
        out: &mut Vec<u8>,
    ) -> Result<(String, String, OffsetDateTime), Exclusion> {
        let (event, published) = self.to_event(raw, ingested_at)?;
        let event_id = event.event_id.clone().into_owned();
        let event_type = event.event_type.clone().into_owned();
        let (record, key) = to_ocsf(event, published, ingested_at);
        if let Err(e) = serde_json::to_writer(&mut *out, &record) {
            return Err(Exclusion {
                reason: ExclusionReason::Malformed,
                event_id: Some(event_id),
                event_type: Some(event_type),
                detail: format!("could not serialize the OCSF record: {e}"),
            });
        }
        out.push(b'\n');
        Ok((event_id, key, published))
    }
}

/// The OCSF partition key: the class, then the subject's TOTAL key (per-person order holds
/// within a class), capped at the Kinesis limit like the TOTAL key.
pub fn ocsf_partition_key(class_uid: u32, total_key: &str) -> String {
    capped(format!("{class_uid}:{total_key}"))
}

/// Maps a TOTAL event onto OCSF; returns the record and its partition key.
pub fn to_ocsf<'a>(
    event: TotalEvent<'a>,
    published: OffsetDateTime,
    ingested_at: OffsetDateTime,
) -> (OcsfEvent<'a>, String) {
    let total_key = partition_key(&event.subject, event.subject_resolved);
    let record = Mapper::new(event, published, ingested_at).build();
    let key = ocsf_partition_key(record.class_uid, &total_key);
    (record, key)
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn user<'a>(party: &event::Party<'a>) -> User<'a> {
    let email = party
        .login
        .as_ref()
        .filter(|login| values::is_email(login))
        .cloned();
    User {
        uid: party.id.clone(),
        name: party.login.clone(),
        display_name: party.display_name.clone(),
        email_addr: email,
        type_id: Some(1),
        kind: Some("User"),
    }
}

/// The actor as OCSF sees it: a user, or an application (Okta itself, an API client).
fn actor<'a>(party: &event::Party<'a>) -> Option<Actor<'a>> {
    let is_user = party
        .kind
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case("User"));
    if is_user && party.id.is_some() {
        return Some(Actor {
            user: Some(user(party)),
            ..Actor::default()
        });
    }
    let name = party.display_name.clone().or_else(|| party.login.clone());
    (party.id.is_some() || name.is_some()).then(|| Actor {
        app_uid: party.id.clone(),
        app_name: name,
        ..Actor::default()
    })
}

fn is_ip(text: &str) -> bool {
    text.trim().parse::<IpAddr>().is_ok()
}

fn is_kind(target: &event::Target<'_>, kinds: &[&str]) -> bool {
    target
        .kind
        .as_deref()
        .is_some_and(|k| kinds.iter().any(|want| k.eq_ignore_ascii_case(want)))
}

/// The application's sign-on mode (`SAML_2_0`, `OPENID_CONNECT`...) from its target detail.
fn sign_on_mode(targets: &[event::Target<'_>]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail {
        sign_on_mode_type: Option<String>,
    }
    let app = targets.iter().find(|t| is_kind(t, &["AppInstance"]))?;
    let detail: Detail = serde_json::from_str(app.detail.as_ref()?.get()).ok()?;
    detail.sign_on_mode_type
}

struct Mapper<'a> {
    event: TotalEvent<'a>,
    published: OffsetDateTime,
    ingested_at: OffsetDateTime,
    unmapped: Map<String, Value>,
    profiles: Vec<&'static str>,
}

impl<'a> Mapper<'a> {
    fn new(event: TotalEvent<'a>, published: OffsetDateTime, ingested_at: OffsetDateTime) -> Self {
        Mapper {
            event,
            published,
            ingested_at,
            unmapped: Map::new(),
            profiles: Vec::new(),
        }
    }

    fn keep(&mut self, key: &str, value: impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        if !value.is_null() {
            self.unmapped.insert(key.to_owned(), value);
        }
    }

    fn profile(&mut self, name: &'static str) {
        if !self.profiles.contains(&name) {
            self.profiles.push(name);
        }
    }

    fn src_endpoint(&mut self) -> Option<Endpoint<'a>> {
        let ip = match self.event.client.ip.clone() {
            Some(text) if is_ip(&text) => Some(Cow::Owned(text.trim().to_owned())),
            Some(text) => {
                self.keep("client_ip", text);
                None
            }
            None => None,
        };
        let intermediate_ips = self
            .event
            .client
            .ip_chain
            .iter()
            .filter_map(|hop| hop.ip.clone())
            .filter(|hop| is_ip(hop) && Some(hop.trim()) != ip.as_deref())
            .map(|hop| Cow::Owned(hop.trim().to_owned()))
            .collect();
        let geo = self.event.geo.clone();
        let country_code = geo
            .country
            .as_deref()
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase);
        let country_name = geo.country.clone().filter(|_| country_code.is_none());
        let mut location = Location {
            city: geo.city,
            region: geo.state,
            country: country_code,
            desc: None,
            postal_code: geo.postal_code,
            lat: geo.lat,
            long: geo.lon,
        };
        let located = location.city.is_some()
            || location.region.is_some()
            || location.country.is_some()
            || location.postal_code.is_some();
        if located {
            location.desc = country_name;
        } else {
            self.keep("geo_country", country_name);
        }
        let network = self.event.network.clone();
        let autonomous_system =
            (network.asn.is_some() || network.as_org.is_some()).then(|| AutonomousSystem {
                number: network.asn,
                name: network.as_org.clone(),
            });
        let os = self
            .event
            .client
            .os
            .clone()
            .and_then(|name| match values::os_type(&name) {
                Some((type_id, kind)) => Some(Os {
                    name,
                    type_id,
                    kind,
                    version: None,
                }),
                None => {
                    self.keep("client_os", name);
                    None
                }
            });
        let endpoint = Endpoint {
            ip,
            intermediate_ips,
            domain: self.event.network.domain.clone(),
            zone: self.event.client.zone.clone(),
            location: located.then_some(location),
            autonomous_system,
            isp: self.event.network.isp.clone(),
            os,
        };
        endpoint.is_identified().then_some(endpoint)
    }

    fn http_request(&self) -> Option<HttpRequest<'a>> {
        let request = HttpRequest {
            uid: self.event.session.request_id.clone(),
            user_agent: self.event.client.user_agent.clone(),
        };
        (request.uid.is_some() || request.user_agent.is_some()).then_some(request)
    }

    fn session(&self) -> Option<Session<'a>> {
        let session = Session {
            uid: self.event.session.external_session_id.clone(),
            uid_alt: self.event.session.root_session_id.clone(),
            issuer: self.event.authentication.issuer_id.clone(),
        };
        (!session.is_empty()).then_some(session)
    }

    fn device(&mut self) -> Option<Device<'a>> {
        let device = self.event.device.clone()?;
        let os = device.os_platform.clone().and_then(|platform| {
            values::os_type(&platform).map(|(type_id, kind)| Os {
                name: platform,
                type_id,
                kind,
                version: device.os_version.clone(),
            })
        });
        let Some(os) = os else {
            // OCSF needs a device type; without a known platform there is none to give.
            self.keep("device", &device);
            return None;
        };
        self.profile("host");
        let (type_id, kind) = values::device_type(os.type_id);
        if let Some(registered) = device.registered {
            self.keep("device_registered", registered);
        }
        Some(Device {
            type_id,
            kind,
            uid: device.id,
            name: device.name,
            os: Some(os),
            is_managed: device.managed,
        })
    }

    fn auth_factor(&self) -> Option<AuthFactor<'a>> {
        let factor = self.event.authentication.factor.clone()?;
        let id = values::factor_type(&factor);
        Some(AuthFactor {
            factor_type_id: id,
            factor_type: values::factor_caption(id).map_or(factor, Cow::Borrowed),
            provider: self.event.authentication.credential_provider.clone(),
        })
    }

    /// The first target of one of `kinds`, by id and name.
    fn target(&self, kinds: &[&str]) -> Option<Named<'a>> {
        self.event
            .targets
            .iter()
            .find(|t| is_kind(t, kinds) && (t.id.is_some() || t.display_name.is_some()))
            .map(|t| Named {
                uid: t.id.clone(),
                name: t.display_name.clone().or_else(|| t.alternate_id.clone()),
            })
    }

    /// The privileges a User Access Management event grants or revokes: the roles it names,
    /// or access to the application it names; `None` when it names neither.
    fn privileges(&self) -> Option<(Vec<Cow<'a, str>>, Option<Resource<'a>>)> {
        let roles: Vec<Cow<'a, str>> = self
            .event
            .targets
            .iter()
            .filter(|t| is_kind(t, &["ROLE", "Role", "AdminRole"]))
            .filter_map(|t| t.display_name.clone().or_else(|| t.alternate_id.clone()))
            .collect();
        if !roles.is_empty() {
            return Some((roles, None));
        }
        let app = self.event.application.clone()?;
        let name = app.display_name.clone().or_else(|| app.name.clone());
        if app.id.is_none() && name.is_none() {
            return None;
        }
        Some((
            vec![Cow::Borrowed("Application access")],
            Some(Resource {
                uid: app.id,
                name,
                kind: Cow::Borrowed("Application"),
            }),
        ))
    }

    fn risk(&mut self, record: &mut OcsfEvent<'a>) {
        let risk = &self.event.risk;
        if let Some(level) = &risk.level {
            let (id, caption) = values::risk_level(level);
            record.risk_level_id = Some(id);
            record.risk_level = Some(caption);
        }
        if !risk.reasons.is_empty() {
            record.risk_details = Some(risk.reasons.join(", "));
        }
        if record.risk_level_id.is_some() || record.risk_details.is_some() {
            self.profile("security_control");
        }
    }

    /// Everything of the TOTAL event with no OCSF attribute, under `unmapped`.
    fn keep_leftovers(&mut self) {
        let e = &self.event;
        let leftovers: [(&str, Value); 20] = [
            ("connector_id", Value::from(e.connector_id.as_ref())),
            ("legacy_event_type", json(&e.legacy_event_type)),
            ("transaction_type", json(&e.session.transaction_type)),
            ("authentication_provider", json(&e.authentication.provider)),
            ("credential_type", json(&e.authentication.credential_type)),
            (
                "credential_provider",
                json(&e.authentication.credential_provider),
            ),
            (
                "authentication_interface",
                json(&e.authentication.interface),
            ),
            ("authentication_step", json(&e.authentication.step)),
            ("issuer_type", json(&e.authentication.issuer_type)),
            ("client_id", json(&e.client.client_id)),
            ("client_device", json(&e.client.device)),
            ("browser", json(&e.client.browser)),
            ("is_proxy", json(&e.network.is_proxy)),
            ("threat_suspected", json(&e.risk.threat_suspected)),
            ("behaviors", json(&e.risk.behaviors)),
            ("unparsed_risk", json(&e.risk.unparsed_risk)),
            ("unparsed_behaviors", json(&e.risk.unparsed_behaviors)),
            (
                "subject_source",
                Value::from(match e.subject_source {
                    SubjectSource::Actor => "actor",
                    SubjectSource::Target => "target",
                }),
            ),
            ("subject_resolved", Value::from(e.subject_resolved)),
            (
                "targets",
                if e.targets.is_empty() {
                    Value::Null
                } else {
                    json(&e.targets)
                },
            ),
        ];
        for (key, value) in leftovers {
            if !value.is_null() {
                self.unmapped.insert(key.to_owned(), value);
            }
        }
    }

    fn build(mut self) -> OcsfEvent<'a> {
        let (mut class, mut activity) = class::classify(&self.event.event_type);
        let privileges = match class {
            OcsfClass::UserAccessManagement => self.privileges(),
            _ => None,
        };
        let group = match class {
            OcsfClass::GroupManagement => self.target(&["UserGroup", "Group"]),
            _ => None,
        };
        // A class whose required attribute has no source in this event gives way to the fallback.
        let unmet = (class == OcsfClass::UserAccessManagement && privileges.is_none())
            || (class == OcsfClass::GroupManagement && group.is_none());
        if unmet {
            class = OcsfClass::ApiActivity;
            activity = class::api_activity(&self.event.event_type);
        }
        let src_endpoint = self.src_endpoint();
        let actor = actor(&self.event.actor);
        let base_event =
            class == OcsfClass::ApiActivity && (src_endpoint.is_none() || actor.is_none());
        let (class_uid, class_name, category_uid, category_name) = if base_event {
            activity = OTHER;
            (BASE_EVENT_UID, "Base Event", 0, "Uncategorized")
        } else {
            (
                class.uid(),
                class.name(),
                class.category_uid(),
                class.category_name(),
            )
        };
        let activity_name: Cow<'static, str> = if activity == OTHER {
            Cow::Owned(self.event.event_type.clone().into_owned())
        } else {
            Cow::Borrowed(class.activity_caption(activity))
        };
        let (severity_id, severity) = values::severity(self.event.severity);
        let outcome = self.event.outcome.clone();
        let (status_id, status) = values::status(outcome.result, outcome.raw_result.as_ref());
        let published_text = self.event.published.clone();
        let mut record = OcsfEvent {
            activity_id: activity,
            type_name: format!("{class_name}: {activity_name}"),
            activity_name,
            category_uid,
            category_name,
            class_uid,
            class_name,
            type_uid: u64::from(class_uid) * 100 + u64::from(activity),
            severity_id,
            severity,
            status_id: Some(status_id),
            status: Some(status),
            status_detail: outcome.reason.clone(),
            time: millis(self.published),
            message: self.event.display_message.clone(),
            metadata: Metadata {
                version: OCSF_VERSION,
                product: Product {
                    name: "Okta System Log",
                    vendor_name: "Okta",
                },
                uid: self.event.event_id.clone(),
                event_code: self.event.event_type.clone(),
                log_name: "System Log",
                original_time: published_text,
                logged_time: millis(self.ingested_at),
                tenant_uid: self.event.org.clone(),
                correlation_uid: self.event.session.transaction_id.clone(),
                profiles: Vec::new(),
            },
            actor: None,
            user: None,
            src_endpoint: None,
            http_request: self.http_request(),
            device: None,
            session: None,
            service: None,
            auth_protocol_id: None,
            auth_protocol: None,
            is_mfa: None,
            auth_factors: Vec::new(),
            group: None,
            privileges: Vec::new(),
            resource: None,
            api: None,
            finding_info: None,
            evidences: Vec::new(),
            is_alert: None,
            action_id: None,
            action: None,
            disposition_id: None,
            disposition: None,
            risk_level_id: None,
            risk_level: None,
            risk_details: None,
            unmapped: Map::new(),
        };
        let subject = user(&self.event.subject);
        let session = self.session();
        if base_event {
            // Base Event has no user or endpoint attributes: they stay readable under `unmapped`.
            self.profile("host");
            record.actor = actor;
            self.keep("user", &subject);
            self.keep("src_endpoint", &src_endpoint);
            self.keep("session", &session);
            self.keep("http_request", record.http_request.take());
            let device = self.event.device.clone();
            self.keep("device", device);
        } else if class == OcsfClass::DetectionFinding {
            self.profile("security_control");
            let reason = self.event.outcome.reason.clone();
            record.finding_info = Some(FindingInfo {
                uid: self.event.event_id.clone(),
                title: reason
                    .or_else(|| self.event.display_message.clone())
                    .unwrap_or_else(|| self.event.event_type.clone()),
                desc: self.event.display_message.clone(),
                types: vec!["Okta ThreatInsight"],
                analytic: Analytic {
                    name: "Okta ThreatInsight",
                    type_id: 99,
                    kind: "IP Reputation",
                },
            });
            // A finding's status is the finding's own: new.
            record.status_id = Some(1);
            record.status = Some(Cow::Borrowed("New"));
            let ((action_id, action), (disposition_id, disposition)) =
                values::action_and_disposition(outcome.result, outcome.raw_result.as_ref());
            record.action_id = Some(action_id);
            record.action = Some(action);
            record.disposition_id = Some(disposition_id);
            record.disposition = Some(disposition);
            record.is_alert = Some(true);
            record.evidences = vec![Evidence {
                actor: actor.map(|mut a| {
                    a.session = session;
                    a
                }),
                user: Some(subject),
                src_endpoint,
                http_request: record.http_request.take(),
            }];
            self.risk(&mut record);
        } else {
            record.src_endpoint = src_endpoint;
            record.device = self.device();
            self.risk(&mut record);
            match class {
                OcsfClass::Authentication => {
                    record.actor = actor;
                    record.session = session;
                    record.user = Some(subject);
                    let application = self.event.application.clone();
                    record.service = Some(match application {
                        Some(app) => Named {
                            uid: app.id,
                            name: app.display_name.or(app.name),
                        },
                        None => Named {
                            uid: None,
                            name: Some(Cow::Borrowed("Okta")),
                        },
                    });
                    let (protocol_id, protocol) = values::auth_protocol(
                        &self.event.event_type,
                        self.event.authentication.credential_type.as_deref(),
                        sign_on_mode(&self.event.targets).as_deref(),
                    );
                    record.auth_protocol_id = Some(protocol_id);
                    record.auth_protocol = Some(Cow::Borrowed(protocol));
                    let mfa_sign_in = self.event.event_type.starts_with("user.authentication.")
                        && self.event.groups.iter().any(|g| g == "mfa");
                    if mfa_sign_in {
                        record.is_mfa = Some(true);
                    }
                    record.auth_factors = self.auth_factor().into_iter().collect();
                }
                OcsfClass::AccountChange => {
                    record.actor = with_session(actor, session);
                    record.user = Some(subject);
                    if self.event.event_type.starts_with("user.mfa.") {
                        record.auth_factors = self.auth_factor().into_iter().collect();
                    }
                }
                OcsfClass::UserAccessManagement => {
                    record.actor = with_session(actor, session);
                    record.user = Some(subject);
                    let (privileges, resource) = privileges.unwrap_or_default();
                    record.privileges = privileges;
                    record.resource = resource;
                }
                OcsfClass::GroupManagement => {
                    record.actor = with_session(actor, session);
                    record.user = Some(subject);
                    record.group = group;
                }
                OcsfClass::ApiActivity | OcsfClass::DetectionFinding => {
                    record.actor = with_session(actor, session);
                    record.api = Some(Api {
                        operation: self.event.event_type.clone(),
                        service: Named {
                            uid: None,
                            name: Some(Cow::Borrowed("Okta")),
                        },
                    });
                    self.keep("user", &subject);
                }
            }
        }
        self.keep_leftovers();
        record.metadata.profiles = std::mem::take(&mut self.profiles);
        record.unmapped = std::mem::take(&mut self.unmapped);
        record
    }
}

fn with_session<'a>(actor: Option<Actor<'a>>, session: Option<Session<'a>>) -> Option<Actor<'a>> {
    match (actor, session) {
        (Some(mut actor), session) => {
            actor.session = session;
            Some(actor)
        }
        (None, Some(session)) => Some(Actor {
            session: Some(session),
            ..Actor::default()
        }),
        (None, None) => None,
    }
}

fn json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests;
