//! Okta values → OCSF enum ids and their captions.

use std::borrow::Cow;

use crate::normalize::event::{OutcomeResult, Severity};

/// `severity_id` and its caption. Okta's WARN is what it uses for lockouts and threats.
pub fn severity(severity: Option<Severity>) -> (u8, &'static str) {
    match severity {
        None => (0, "Unknown"),
        Some(Severity::Debug | Severity::Info) => (1, "Informational"),
        Some(Severity::Warn) => (3, "Medium"),
        Some(Severity::Error) => (4, "High"),
    }
}

/// `status_id` and `status` of an event from Okta's outcome: SUCCESS/ALLOW succeeded,
/// FAILURE/DENY failed, anything else (SKIPPED, CHALLENGE, a new value) is Other with Okta's word.
pub fn status<'a>(result: OutcomeResult, raw: Option<&Cow<'a, str>>) -> (u8, Cow<'a, str>) {
    match result {
        OutcomeResult::Success | OutcomeResult::Allow => (1, Cow::Borrowed("Success")),
        OutcomeResult::Failure | OutcomeResult::Deny => (2, Cow::Borrowed("Failure")),
        _ => match raw {
            Some(raw) => (99, raw.clone()),
            None => (0, Cow::Borrowed("Unknown")),
        },
    }
}

/// `action_id`/`action` and `disposition_id`/`disposition` of a security control's decision.
pub fn action_and_disposition<'a>(
    result: OutcomeResult,
    raw: Option<&Cow<'a, str>>,
) -> ((u8, Cow<'a, str>), (u8, Cow<'a, str>)) {
    let other = || raw.cloned().unwrap_or(Cow::Borrowed("Unknown"));
    match result {
        OutcomeResult::Allow | OutcomeResult::Success => {
            ((1, Cow::Borrowed("Allowed")), (1, Cow::Borrowed("Allowed")))
        }
        OutcomeResult::Deny | OutcomeResult::Failure => {
            ((2, Cow::Borrowed("Denied")), (2, Cow::Borrowed("Blocked")))
        }
        OutcomeResult::Unknown if raw.is_none() => {
            ((0, Cow::Borrowed("Unknown")), (0, Cow::Borrowed("Unknown")))
        }
        _ => ((99, other()), (99, other())),
    }
}

/// `risk_level_id` and `risk_level` from Okta's level (LOW, MEDIUM, HIGH, upper-cased).
pub fn risk_level<'a>(level: &Cow<'a, str>) -> (u8, Cow<'a, str>) {
    match level.as_ref() {
        "LOW" => (1, Cow::Borrowed("Low")),
        "MEDIUM" => (2, Cow::Borrowed("Medium")),
        "HIGH" => (3, Cow::Borrowed("High")),
        "CRITICAL" => (4, Cow::Borrowed("Critical")),
        _ => (99, level.clone()),
    }
}

/// `auth_protocol_id` and `auth_protocol` of a sign-in, from what Okta records of it.
pub fn auth_protocol(
    event_type: &str,
    credential_type: Option<&str>,
    sign_on_mode: Option<&str>,
) -> (u8, &'static str) {
    let mode = sign_on_mode.unwrap_or_default().to_ascii_uppercase();
    let credential = credential_type.unwrap_or_default().to_ascii_uppercase();
    if event_type.ends_with("auth_via_radius") {
        (10, "RADIUS")
    } else if mode.starts_with("SAML") || credential == "ASSERTION" {
        (5, "SAML")
    } else if mode.starts_with("OPENID") || mode == "OIDC" {
        (4, "OpenID")
    } else if credential == "OAUTH2" || credential == "JWT" {
        (6, "OAUTH 2.0")
    } else if credential == "IWA" {
        (2, "Kerberos")
    } else {
        (0, "Unknown")
    }
}

/// `factor_type_id` of an Okta factor name (`OKTA_VERIFY_PUSH`, `token:software:totp`, `SMS`...).
pub fn factor_type(factor: &str) -> u8 {
    let f = factor.to_ascii_uppercase();
    let has = |word: &str| f.contains(word);
    if has("PUSH") {
        5
    } else if has("SMS") {
        1
    } else if has("CALL") || has("VOICE") {
        3
    } else if has("QUESTION") {
        2
    } else if has("WEBAUTHN") || has("FIDO") {
        10
    } else if has("U2F") {
        9
    } else if has("HARDWARE") || has("YUBIKEY") || has("RSA") || has("SYMANTEC") {
        6
    } else if has("OTP") || has("TOKEN") {
        7
    } else if has("EMAIL") {
        8
    } else if has("PASSWORD") {
        11
    } else if has("BIOMETRIC") || has("FASTPASS") || has("SIGNED_NONCE") {
        4
    } else {
        99
    }
}

/// OCSF's caption of a `factor_type_id`; `None` for Other, which keeps Okta's name.
pub fn factor_caption(id: u8) -> Option<&'static str> {
    Some(match id {
        1 => "SMS",
        2 => "Security Question",
        3 => "Phone Call",
        4 => "Biometric",
        5 => "Push Notification",
        6 => "Hardware Token",
        7 => "OTP",
        8 => "Email",
        9 => "U2F",
        10 => "WebAuthn",
        11 => "Password",
        _ => return None,
    })
}

/// `os.type_id` and its caption for an Okta OS or platform name; `None` when OCSF has no id
/// for it (the name then stays in `unmapped`).
pub fn os_type(name: &str) -> Option<(u16, &'static str)> {
    let n = name.to_ascii_lowercase();
    let has = |word: &str| n.contains(word);
    Some(if has("ipad") {
        (302, "iPadOS")
    } else if has("ios") || has("iphone") {
        (301, "iOS")
    } else if has("android") {
        (201, "Android")
    } else if has("windows phone") || has("windows mobile") {
        (101, "Windows Mobile")
    } else if has("windows") {
        (100, "Windows")
    } else if has("mac") || has("os x") || has("osx") {
        (300, "macOS")
    } else if has("linux") || has("ubuntu") || has("chrome os") || has("chromeos") {
        (200, "Linux")
    } else {
        return None;
    })
}

/// `device.type_id` from the device's OS: phones and tablets are Mobile, the rest Desktop.
pub fn device_type(os_type_id: u16) -> (u8, &'static str) {
    match os_type_id {
        101 | 201 | 301 => (5, "Mobile"),
        302 => (4, "Tablet"),
        _ => (2, "Desktop"),
    }
}

/// Whether `text` has the shape OCSF's `email_t` accepts (checked before use as `email_addr`).
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+,-./=?^_`{|}~".contains(&b));
    let domain_ok = domain.split_once('.').is_some_and(|(host, rest)| {
        !host.is_empty()
            && !rest.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_factor_names_map_to_ocsf_factor_types() {
        for (okta, id) in [
            ("OKTA_VERIFY_PUSH", 5),
            ("SMS_FACTOR", 1),
            ("token:software:totp", 7),
            ("GOOGLE_OTP", 7),
            ("token:hardware", 6),
            ("WEBAUTHN", 10),
            ("u2f", 9),
            ("EMAIL_FACTOR", 8),
            ("PASSWORD_AS_FACTOR", 11),
            ("call", 3),
            ("security_question", 2),
            ("SIGNED_NONCE", 4),
            ("something new", 99),
        ] {
            assert_eq!(factor_type(okta), id, "{okta}");
        }
        assert_eq!(factor_caption(99), None);
        assert_eq!(factor_caption(5), Some("Push Notification"));
    }

    #[test]
    fn outcomes_map_to_status_and_unknown_words_are_kept() {
        assert_eq!(status(OutcomeResult::Deny, None).0, 2);
        let challenge = Cow::Borrowed("CHALLENGE");
        assert_eq!(
            status(OutcomeResult::Challenge, Some(&challenge)),
            (99, Cow::Borrowed("CHALLENGE"))
        );
        assert_eq!(status(OutcomeResult::Unknown, None).0, 0);
        let ((action, _), (disposition, _)) = action_and_disposition(OutcomeResult::Deny, None);
        assert_eq!((action, disposition), (2, 2));
    }

    #[test]
    fn email_check_follows_the_ocsf_shape() {
        assert!(is_email("alice.nguyen@acme.example"));
        assert!(!is_email("alice"));
        assert!(!is_email("alice@localhost"));
        assert!(!is_email("al ice@acme.example"));
        assert!(!is_email("@acme.example"));
    }

    #[test]
    fn protocols_follow_the_sign_on_mode_then_the_credential() {
        assert_eq!(
            auth_protocol("user.authentication.sso", None, Some("SAML_2_0")).0,
            5
        );
        assert_eq!(
            auth_protocol("user.authentication.sso", None, Some("OPENID_CONNECT")).0,
            4
        );
        assert_eq!(
            auth_protocol("user.authentication.auth_via_radius", None, None).0,
            10
        );
        assert_eq!(
            auth_protocol("user.session.start", Some("PASSWORD"), None).0,
            0
        );
    }

    #[test]
    fn os_names_map_to_ocsf_types() {
        assert_eq!(os_type("Mac OS X"), Some((300, "macOS")));
        assert_eq!(os_type("Windows 10"), Some((100, "Windows")));
        assert_eq!(os_type("iOS"), Some((301, "iOS")));
        assert_eq!(os_type("OSX"), Some((300, "macOS")));
        assert_eq!(os_type("Unknown"), None);
        assert_eq!(device_type(301), (5, "Mobile"));
    }
}
