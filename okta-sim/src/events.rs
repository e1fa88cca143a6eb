//! Realistic Okta LogEvents, rendered deterministically. An event is stored as its kind and a
//! per-event seed and rendered on demand: a million-event backlog costs a few dozen bytes per event.

use super::clock::write_timestamp;
use super::json::JsonOut;
use super::kinds::{kinds, Kind, Shape};
use super::rng::SplitMix;
use super::world::{
    City, Persona, UserAgent, World, CITIES, FOREIGN_CITIES, HOSTILE_AGENT, USER_AGENTS,
};

pub(crate) fn uuid_for(seed: u64) -> String {
    let mut rng = SplitMix::new(seed ^ 0x005E_ED0F_0001);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

const FAILED_SIGN_IN_REASONS: &[&str] =
    &["INVALID_CREDENTIALS", "VERIFICATION_ERROR", "LOCKED_OUT"];
const FACTORS: &[(&str, &str, &str)] = &[
    ("OKTA_VERIFY_PUSH", "OKTA_CREDENTIAL_PROVIDER", "OTP"),
    ("FIDO_WEBAUTHN", "OKTA_CREDENTIAL_PROVIDER", "WEBAUTHN"),
    ("GOOGLE_OTP", "GOOGLE", "OTP"),
    ("SMS_FACTOR", "OKTA_CREDENTIAL_PROVIDER", "SMS"),
];
const PRIVILEGES: &[&str] = &[
    "Super administrator",
    "Application administrator",
    "Help Desk administrator",
    "Read-only administrator",
];

/// Everything the renderer decided about one event before writing it.
struct Scene<'w> {
    world: &'w World,
    kind: &'static Kind,
    user: &'w Persona,
    admin: &'w Persona,
    city: &'static City,
    agent: &'static UserAgent,
    ip: String,
    away: bool,
    failure: Option<&'static str>,
    factor: (&'static str, &'static str, &'static str),
    app: usize,
    group: usize,
    session: String,
    transaction: String,
}

/// Renders the event of `kind` generated from `seed` as Okta's LogEvent JSON into `buf`.
pub(crate) fn render(world: &World, kind: u16, seed: u64, published_ms: i64, buf: &mut String) {
    let kind = &kinds()[kind as usize];
    let mut rng = SplitMix::new(seed);
    let user = &world.users[rng.below(world.users.len())];
    let admin = &world.users[*rng.pick(&world.admins)];
    let is_threat = kind.shape == Shape::Threat;
    let away = is_threat || rng.chance(0.03);
    let (city, ip) = if away {
        let c = rng.pick(FOREIGN_CITIES);
        (
            c,
            format!(
                "{}.{}.{}",
                c.ip_prefix,
                rng.below(254) + 1,
                rng.below(254) + 1
            ),
        )
    } else {
        let acting = if acts_as_admin(kind.shape) {
            admin
        } else {
            user
        };
        (&CITIES[acting.home], acting.ip.clone())
    };
    let agent = if is_threat {
        &HOSTILE_AGENT
    } else if acts_as_admin(kind.shape) {
        &USER_AGENTS[admin.agent]
    } else {
        &USER_AGENTS[user.agent]
    };
    let failure = match kind.shape {
        Shape::SignIn | Shape::SessionStart if rng.chance(if away { 0.3 } else { 0.05 }) => {
            Some(*rng.pick(FAILED_SIGN_IN_REASONS))
        }
        Shape::Mfa if rng.chance(0.08) => Some("VERIFICATION_ERROR"),
        Shape::PushDenied => Some("User rejected Okta push verify"),
        Shape::Provision if rng.chance(0.05) => {
            Some("Unable to push user profile: 503 Service Unavailable")
        }
        _ => None,
    };
    let scene = Scene {
        world,
        kind,
        user,
        admin,
        city,
        agent,
        ip,
        away,
        failure,
        factor: *rng.pick(FACTORS),
        app: rng.below(world.apps.len()),
        group: rng.below(world.groups.len()),
        session: rng.okta_id("102", 25),
        transaction: rng.okta_id("Zh", 27),
    };
    let mut out = JsonOut::new(buf);
    out.begin_object();
    write_actor(&mut out, &scene);
    write_client(&mut out, &scene);
    write_device(&mut out, &scene, &mut rng);
    write_authentication_context(&mut out, &scene, &mut rng);
    out.field_str("displayMessage", kind.display)
        .field_str("eventType", kind.event_type);
    write_outcome(&mut out, &scene);
    let mut published = String::with_capacity(24);
    write_timestamp(&mut published, published_ms);
    out.field_str("published", &published)
        .field_str("severity", severity(&scene));
    write_security_context(&mut out, &scene);
    write_debug_context(&mut out, &scene, &mut rng);
    out.field_opt("legacyEventType", kind.legacy);
    out.key("transaction")
        .begin_object()
        .field_str("type", if is_job(kind.shape) { "JOB" } else { "WEB" })
        .field_str("id", &scene.transaction)
        .key("detail")
        .begin_object()
        .end_object()
        .end_object();
    out.field_str("uuid", &uuid_for(seed))
        .field_str("version", "0");
    write_request(&mut out, &scene);
    write_targets(&mut out, &scene);
    out.end_object();
}

fn acts_as_admin(shape: Shape) -> bool {
    matches!(
        shape,
        Shape::AdminOnUser | Shape::Group | Shape::Privilege | Shape::AppAssign
    )
}

fn is_job(shape: Shape) -> bool {
    matches!(shape, Shape::Provision | Shape::System | Shape::Threat)
}

fn has_client_context(shape: Shape) -> bool {
    !matches!(shape, Shape::Provision | Shape::System)
}

fn severity(scene: &Scene<'_>) -> &'static str {
    match (scene.kind.shape, scene.failure) {
        (Shape::Provision, Some(_)) => "ERROR",
        (_, Some(_)) => "WARN",
        (Shape::Threat, _) => "WARN",
        (_, None) if scene.kind.event_type == "user.account.lock" => "WARN",
        (_, None) if scene.kind.event_type == "system.org.rate_limit.warning" => "WARN",
        (Shape::System, None) => "INFO",
        (Shape::SessionEnd, None) => "DEBUG",
        _ => "INFO",
    }
}

fn write_persona(out: &mut JsonOut<'_>, p: &Persona, kind: &str) {
    out.begin_object()
        .field_str("id", &p.id)
        .field_str("type", kind)
        .field_str("alternateId", &p.login)
        .field_str("displayName", &p.display_name)
        .field_null("detailEntry")
        .end_object();
}

fn write_actor(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    out.key("actor");
    match s.kind.shape {
        Shape::System if s.kind.event_type == "application.lifecycle.update" => {
            out.begin_object()
                .field_str("id", &s.world.workflow_client_id)
                .field_str("type", "PublicClientApp")
                .field_str("alternateId", &s.world.workflow_client_id)
                .field_str("displayName", "Okta Workflows")
                .field_null("detailEntry")
                .end_object();
        }
        Shape::Threat | Shape::Provision | Shape::System => {
            out.begin_object()
                .field_str("id", &s.world.org_id)
                .field_str("type", "SystemPrincipal")
                .field_str("alternateId", "system@okta.com")
                .field_str("displayName", "Okta System")
                .field_null("detailEntry")
                .end_object();
        }
        shape if acts_as_admin(shape) => write_persona(out, s.admin, "User"),
        _ => write_persona(out, s.user, "User"),
    }
}

fn write_geo(out: &mut JsonOut<'_>, c: &City) {
    out.begin_object()
        .field_str("city", c.city)
        .field_str("state", c.state)
        .field_str("country", c.country)
        .field_str("postalCode", c.postal)
        .key("geolocation")
        .begin_object()
        .key("lat")
        .float(c.lat)
        .key("lon")
        .float(c.lon)
        .end_object()
        .end_object();
}

fn write_client(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    out.key("client").begin_object();
    if has_client_context(s.kind.shape) {
        out.key("userAgent")
            .begin_object()
            .field_str("rawUserAgent", s.agent.raw)
            .field_str("os", s.agent.os)
            .field_str("browser", s.agent.browser)
            .end_object()
            .field_str("zone", "null")
            .field_str(
                "device",
                match s.agent.os {
                    "iOS" | "Android" => "Mobile",
                    "Unknown" => "Unknown",
                    _ => "Computer",
                },
            )
            .field_null("id")
            .field_str("ipAddress", &s.ip)
            .key("geographicalContext");
        write_geo(out, s.city);
    } else {
        for key in [
            "userAgent",
            "zone",
            "device",
            "id",
            "ipAddress",
            "geographicalContext",
        ] {
            out.field_null(key);
        }
    }
    out.end_object();
}

fn write_device(out: &mut JsonOut<'_>, s: &Scene<'_>, rng: &mut SplitMix) {
    out.key("device");
    let signs_in = matches!(
        s.kind.shape,
        Shape::SignIn | Shape::SessionStart | Shape::Mfa
    );
    if signs_in && !s.away && rng.chance(0.3) {
        out.begin_object()
            .field_str("id", &s.user.device_id)
            .field_str("name", &s.user.device_name)
            .field_str("os_platform", s.agent.os)
            .field_str("os_version", "14.4.1")
            .key("managed")
            .bool(true)
            .key("registered")
            .bool(true)
            .field_null("device_integrator")
            .field_str("disk_encryption_type", "ALL_INTERNAL_VOLUMES")
            .field_str("screen_lock_type", "BIOMETRIC")
            .key("jailbreak")
            .null()
            .key("secure_hardware_present")
            .bool(true)
            .end_object();
    } else {
        out.null();
    }
}

fn write_authentication_context(out: &mut JsonOut<'_>, s: &Scene<'_>, rng: &mut SplitMix) {
    let (provider, credential_provider, credential_type, issuer): (
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Option<&str>,
    ) = match (s.kind.shape, s.kind.event_type) {
        (_, "user.authentication.auth_via_IDP") => {
            (Some("FEDERATION"), None, Some("ASSERTION"), Some("SAML2"))
        }
        (_, "user.authentication.auth_via_social") => {
            (Some("SOCIAL"), None, Some("OAUTH2"), Some("GOOGLE"))
        }
        (_, "user.authentication.auth_via_radius") => {
            (Some("ACTIVE_DIRECTORY"), None, Some("PASSWORD"), None)
        }
        (_, "app.oauth2.as.token.grant") => (None, None, Some("JWT"), None),
        (Shape::SessionStart, _) => (
            Some("OKTA_AUTHENTICATION_PROVIDER"),
            Some("OKTA_CREDENTIAL_PROVIDER"),
            Some("PASSWORD"),
            None,
        ),
        (Shape::Mfa | Shape::PushDenied, _) => (
            Some("FACTOR_PROVIDER"),
            Some(s.factor.1),
            Some(s.factor.2),
            None,
        ),
        _ => (None, None, None, None),
    };
    out.key("authenticationContext")
        .begin_object()
        .field_opt("authenticationProvider", provider)
        .field_opt("credentialProvider", credential_provider)
        .field_opt("credentialType", credential_type);
    out.key("issuer");
    match issuer {
        Some(kind) => {
            out.begin_object()
                .field_str("id", &s.world.apps[s.app].id)
                .field_str("type", kind)
                .end_object();
        }
        None => {
            out.null();
        }
    }
    out.field_opt(
        "interface",
        matches!(s.kind.shape, Shape::Mfa | Shape::PushDenied).then_some("Okta Verify"),
    )
    .key("authenticationStep")
    .int(0);
    if has_client_context(s.kind.shape) && s.kind.shape != Shape::Threat {
        out.field_str("externalSessionId", &s.session);
        if rng.chance(0.5) {
            out.key("rootSessionId").str(&s.session[..20]);
        }
    } else {
        out.field_str("externalSessionId", "unknown");
    }
    out.end_object();
}

fn write_outcome(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    let result = match (s.kind.event_type, s.failure) {
        ("security.request.blocked", _) | ("user.mfa.attempt_bypass", _) => "DENY",
        ("security.threat.detected", _) => "SUCCESS",
        (_, Some(_)) => "FAILURE",
        _ => "SUCCESS",
    };
    let reason = match s.kind.event_type {
        "security.request.blocked" => Some("Blocked by ThreatInsight: high risk IP"),
        "security.threat.detected" => Some("Password Spray"),
        _ => s.failure,
    };
    out.key("outcome")
        .begin_object()
        .field_str("result", result)
        .field_opt("reason", reason)
        .end_object();
}

fn write_security_context(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    out.key("securityContext").begin_object();
    if has_client_context(s.kind.shape) {
        out.key("asNumber")
            .int(s.city.as_number)
            .field_str("asOrg", s.city.as_org)
            .field_str("isp", s.city.isp)
            .field_str("domain", s.city.domain)
            .key("isProxy")
            .bool(s.kind.shape == Shape::Threat);
    } else {
        for key in ["asNumber", "asOrg", "isp", "domain", "isProxy"] {
            out.field_null(key);
        }
    }
    out.end_object();
}

fn write_debug_context(out: &mut JsonOut<'_>, s: &Scene<'_>, rng: &mut SplitMix) {
    let uri = match s.kind.shape {
        Shape::SignIn => "/app/sso/saml",
        Shape::SessionStart => "/idp/idx/identify",
        Shape::SessionEnd => "/login/signout",
        Shape::Mfa | Shape::PushDenied => "/idp/idx/challenge/answer",
        Shape::SelfService => "/idp/myaccount/authenticators",
        Shape::AdminOnUser | Shape::Privilege => "/api/v1/users",
        Shape::Group => "/api/v1/groups",
        Shape::AppAssign | Shape::Provision => "/api/v1/apps",
        Shape::Threat => "/api/v1/authn",
        Shape::System => "/api/v1/policies",
    };
    out.key("debugContext")
        .begin_object()
        .key("debugData")
        .begin_object();
    out.field_str("requestId", &s.transaction)
        .field_str("requestUri", uri)
        .field_str("url", uri);
    let human_sign_in = matches!(
        s.kind.shape,
        Shape::SignIn | Shape::SessionStart | Shape::Mfa
    );
    out.field_str(
        "threatSuspected",
        if s.kind.shape == Shape::Threat {
            "true"
        } else {
            "false"
        },
    );
    if s.kind.shape == Shape::Threat || (human_sign_in && (s.away || rng.chance(0.4))) {
        out.field_str(
            "risk",
            if s.away {
                "{level=HIGH, reasons=Anomalous Geo-Distance, New Country}"
            } else {
                "{level=LOW, reasons=}"
            },
        );
    }
    if human_sign_in && (s.away || rng.chance(0.5)) {
        out.field_str(
            "behaviors",
            if s.away {
                "{New Geo-Location=POSITIVE, New Device=POSITIVE, New IP=POSITIVE, New State=POSITIVE, New Country=POSITIVE, Velocity=POSITIVE, New City=POSITIVE}"
            } else {
                "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, New State=NEGATIVE, New Country=NEGATIVE, Velocity=NEGATIVE, New City=NEGATIVE}"
            },
        );
    }
    if matches!(
        s.kind.shape,
        Shape::Mfa | Shape::PushDenied | Shape::SelfService
    ) {
        out.field_str("factor", s.factor.0);
    }
    out.end_object().end_object();
}

fn write_request(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    out.key("request")
        .begin_object()
        .key("ipChain")
        .begin_array();
    if has_client_context(s.kind.shape) {
        out.begin_object()
            .field_str("ip", &s.ip)
            .key("geographicalContext");
        write_geo(out, s.city);
        out.field_str("version", "V4")
            .field_null("source")
            .end_object();
    }
    out.end_array().end_object();
}

fn write_app(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    let app = &s.world.apps[s.app];
    out.begin_object()
        .field_str("id", &app.id)
        .field_str("type", "AppInstance")
        .field_str("alternateId", app.label)
        .field_str("displayName", app.label)
        .key("detailEntry")
        .begin_object()
        .field_str("signOnModeType", "SAML_2_0")
        .field_str("appName", app.name)
        .end_object()
        .end_object();
}

fn write_app_user(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    write_persona(out, s.user, "AppUser");
}

fn write_targets(out: &mut JsonOut<'_>, s: &Scene<'_>) {
    out.key("target");
    match s.kind.shape {
        Shape::SessionStart | Shape::SessionEnd => {
            out.null();
            return;
        }
        Shape::System if s.kind.event_type == "system.org.rate_limit.warning" => {
            out.null();
            return;
        }
        _ => {}
    }
    out.begin_array();
    match s.kind.shape {
        Shape::SignIn => {
            write_app(out, s);
            write_app_user(out, s);
        }
        Shape::Mfa
        | Shape::PushDenied
        | Shape::SelfService
        | Shape::AdminOnUser
        | Shape::Threat => {
            write_persona(out, s.user, "User");
        }
        Shape::Group => {
            write_persona(out, s.user, "User");
            let g = &s.world.groups[s.group];
            out.begin_object()
                .field_str("id", &g.id)
                .field_str("type", "UserGroup")
                .field_str("alternateId", "unknown")
                .field_str("displayName", g.name)
                .field_null("detailEntry")
                .end_object();
        }
        Shape::Privilege => {
            out.begin_object()
                .field_str("id", &s.user.id)
                .field_str("type", "User")
                .field_str("alternateId", &s.user.login)
                .field_str("displayName", &s.user.display_name)
                .key("detailEntry")
                .begin_object()
                .field_str("privilegeGranted", PRIVILEGES[s.group % PRIVILEGES.len()])
                .end_object()
                .end_object();
        }
        Shape::AppAssign => {
            write_app_user(out, s);
            write_app(out, s);
            write_persona(out, s.user, "User");
        }
        Shape::Provision => {
            write_app(out, s);
            write_app_user(out, s);
        }
        Shape::System if s.kind.event_type == "policy.lifecycle.update" => {
            out.begin_object()
                .field_str("id", &s.world.auth_server_id)
                .field_str("type", "PolicyEntity")
                .field_str("alternateId", "unknown")
                .field_str("displayName", "Default Sign-On Policy")
                .field_null("detailEntry")
                .end_object();
        }
        Shape::System => write_app(out, s),
        Shape::SessionStart | Shape::SessionEnd => {}
    }
    out.end_array();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{KindPicker, Origin};
    use serde_json::Value;

    fn render_value(world: &World, kind: u16, seed: u64) -> Value {
        let mut buf = String::new();
        render(world, kind, seed, 1_700_000_000_000, &mut buf);
        serde_json::from_str(&buf).unwrap_or_else(|e| panic!("kind {kind}: {e}\n{buf}"))
    }

    #[test]
    fn every_kind_renders_a_complete_log_event() {
        let world = World::new(5);
        for kind in 0..kinds().len() as u16 {
            for seed in 0..20 {
                let v = render_value(&world, kind, seed);
                for field in [
                    "uuid",
                    "published",
                    "eventType",
                    "version",
                    "severity",
                    "legacyEventType",
                    "displayMessage",
                    "actor",
                    "client",
                    "device",
                    "authenticationContext",
                    "outcome",
                    "securityContext",
                    "debugContext",
                    "transaction",
                    "request",
                    "target",
                ] {
                    assert!(
                        v.get(field).is_some(),
                        "{} lacks {field}",
                        kinds()[kind as usize].event_type
                    );
                }
                assert_eq!(v["eventType"], kinds()[kind as usize].event_type);
                assert_eq!(v["published"], "2023-11-14T22:13:20.000Z");
                assert_eq!(v["uuid"], uuid_for(seed));
            }
        }
    }

    #[test]
    fn system_events_have_no_user_actor_or_target() {
        let world = World::new(5);
        for (i, k) in kinds()
            .iter()
            .enumerate()
            .filter(|(_, k)| k.origin == Origin::System)
        {
            let v = render_value(&world, i as u16, 3);
            assert_ne!(v["actor"]["type"], "User", "{}", k.event_type);
            let users = v["target"]
                .as_array()
                .map_or(0, |t| t.iter().filter(|t| t["type"] == "User").count());
            assert_eq!(users, 0, "{}", k.event_type);
        }
    }

    #[test]
    fn threat_events_come_from_the_system_principal_and_target_a_user() {
        let world = World::new(5);
        let i = kinds()
            .iter()
            .position(|k| k.event_type == "security.threat.detected")
            .unwrap();
        let v = render_value(&world, i as u16, 11);
        assert_eq!(v["actor"]["type"], "SystemPrincipal");
        assert_eq!(v["target"][0]["type"], "User");
        assert_eq!(v["debugContext"]["debugData"]["threatSuspected"], "true");
    }

    #[test]
    fn picker_honours_the_system_share_and_produces_failures() {
        let picker = KindPicker::new(0.2, 0.1);
        let mut rng = SplitMix::new(4);
        let world = World::new(4);
        let picked: Vec<u16> = (0..5000).map(|_| picker.pick(&mut rng)).collect();
        let system = picked
            .iter()
            .filter(|&&k| kinds()[k as usize].origin == Origin::System)
            .count();
        assert!((800..1200).contains(&system), "system events: {system}");
        let failures = picked
            .iter()
            .enumerate()
            .filter(|(seed, &k)| {
                render_value(&world, k, *seed as u64)["outcome"]["result"] == "FAILURE"
            })
            .count();
        assert!(failures > 20, "failures: {failures}");
    }

    #[test]
    fn same_seed_renders_identical_json() {
        let world = World::new(2);
        let (mut a, mut b) = (String::new(), String::new());
        render(&world, 0, 99, 1, &mut a);
        render(&world, 0, 99, 1, &mut b);
        assert_eq!(a, b);
    }
}
