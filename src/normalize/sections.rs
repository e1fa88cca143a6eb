//! One TOTAL section at a time, from the Okta LogEvent's matching object: principals, places,
//! Okta's enum spellings, devices, networks, client IP chains and risk.

use std::borrow::Cow;

use super::debug_data;
use super::event::{self, OutcomeResult, Severity};
use crate::okta::model::{self, Text};

pub(super) fn text(value: Option<Text<'_>>) -> Option<Cow<'_, str>> {
    value.map(Text::into_cow).filter(|s| !s.trim().is_empty())
}

pub(super) fn party<'a>(principal: &model::Principal<'a>) -> event::Party<'a> {
    event::Party {
        id: text(principal.id.clone()),
        kind: text(principal.kind.clone()),
        login: text(principal.alternate_id.clone()),
        display_name: text(principal.display_name.clone()),
    }
}

pub(super) fn target(principal: model::Principal<'_>) -> event::Target<'_> {
    event::Target {
        id: text(principal.id),
        kind: text(principal.kind),
        alternate_id: text(principal.alternate_id),
        display_name: text(principal.display_name),
        detail: principal.detail_entry.map(Cow::Borrowed),
    }
}

pub(super) fn geo(context: model::GeographicalContext<'_>) -> event::Geo<'_> {
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
pub(super) fn zone(zone: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
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

pub(super) fn severity(raw: &str) -> Option<Severity> {
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

pub(super) fn outcome_result(raw: &str) -> OutcomeResult {
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

pub(super) fn risk<'a>(
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

pub(super) fn ip_chain(request: Option<model::Request<'_>>) -> Vec<event::IpHop<'_>> {
    request
        .and_then(|r| r.ip_chain)
        .unwrap_or_default()
        .into_iter()
        .map(|hop| event::IpHop {
            ip: text(hop.ip),
            version: text(hop.version),
            source: text(hop.source),
            geo: geo(hop.geographical_context.unwrap_or_default()),
        })
        .collect()
}

pub(super) fn device(d: model::Device<'_>) -> event::Device<'_> {
    event::Device {
        id: text(d.id),
        name: text(d.name),
        os_platform: text(d.os_platform),
        os_version: text(d.os_version),
        managed: d.managed.and_then(|f| f.0),
        registered: d.registered.and_then(|f| f.0),
    }
}

pub(super) fn network(security: model::SecurityContext<'_>) -> event::Network<'_> {
    event::Network {
        asn: security.as_number.and_then(|n| n.0),
        as_org: text(security.as_org),
        isp: text(security.isp),
        domain: text(security.domain),
        is_proxy: security.is_proxy.and_then(|f| f.0),
    }
}

/// The first AppInstance target: the application the event is about.
pub(super) fn application<'a>(targets: &[model::Principal<'a>]) -> Option<event::Application<'a>> {
    targets
        .iter()
        .find(|t| t.kind.as_ref().is_some_and(|k| k.0 == "AppInstance"))
        .map(|app| event::Application {
            id: text(app.id.clone()),
            name: text(app.alternate_id.clone()),
            display_name: text(app.display_name.clone()),
        })
}
