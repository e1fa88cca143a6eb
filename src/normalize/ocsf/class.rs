//! Okta event type → OCSF class and activity (the table in docs/ocsf.md).

/// The OCSF classes the mapping emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcsfClass {
    DetectionFinding,
    AccountChange,
    Authentication,
    UserAccessManagement,
    GroupManagement,
    /// The fallback for person-attributable types without a more specific class.
    ApiActivity,
}

impl OcsfClass {
    pub const ALL: [OcsfClass; 6] = [
        OcsfClass::DetectionFinding,
        OcsfClass::AccountChange,
        OcsfClass::Authentication,
        OcsfClass::UserAccessManagement,
        OcsfClass::GroupManagement,
        OcsfClass::ApiActivity,
    ];

    pub fn uid(self) -> u32 {
        u32::from(self.category_uid()) * 1000
            + match self {
                OcsfClass::DetectionFinding => 4,
                OcsfClass::AccountChange => 1,
                OcsfClass::Authentication => 2,
                OcsfClass::UserAccessManagement => 5,
                OcsfClass::GroupManagement => 6,
                OcsfClass::ApiActivity => 3,
            }
    }

    pub fn name(self) -> &'static str {
        match self {
            OcsfClass::DetectionFinding => "Detection Finding",
            OcsfClass::AccountChange => "Account Change",
            OcsfClass::Authentication => "Authentication",
            OcsfClass::UserAccessManagement => "User Access Management",
            OcsfClass::GroupManagement => "Group Management",
            OcsfClass::ApiActivity => "API Activity",
        }
    }

    pub fn category_uid(self) -> u8 {
        match self {
            OcsfClass::DetectionFinding => 2,
            OcsfClass::ApiActivity => 6,
            _ => 3,
        }
    }

    pub fn category_name(self) -> &'static str {
        match self.category_uid() {
            2 => "Findings",
            6 => "Application Activity",
            _ => "Identity & Access Management",
        }
    }

    /// The caption of one of this class's activity ids (99 is "Other").
    pub fn activity_caption(self, activity_id: u8) -> &'static str {
        let captions: &[&str] = match self {
            OcsfClass::DetectionFinding => &["Create", "Update", "Close"],
            OcsfClass::AccountChange => &[
                "Create",
                "Enable",
                "Password Change",
                "Password Reset",
                "Disable",
                "Delete",
                "Attach Policy",
                "Detach Policy",
                "Lock",
                "MFA Factor Enable",
                "MFA Factor Disable",
                "Unlock",
            ],
            OcsfClass::Authentication => &[
                "Logon",
                "Logoff",
                "Authentication Ticket",
                "Service Ticket Request",
                "Service Ticket Renew",
                "Preauth",
                "Account Switch",
            ],
            OcsfClass::UserAccessManagement => &["Assign Privileges", "Revoke Privileges"],
            OcsfClass::GroupManagement => &[
                "Assign Privileges",
                "Revoke Privileges",
                "Add User",
                "Remove User",
                "Delete",
                "Create",
                "Add Subgroup",
                "Remove Subgroup",
            ],
            OcsfClass::ApiActivity => &["Create", "Read", "Update", "Delete"],
        };
        match activity_id {
            0 => "Unknown",
            99 => "Other",
            id => captions
                .get(usize::from(id) - 1)
                .copied()
                .unwrap_or("Other"),
        }
    }
}

/// Activity id 99: the class fits but OCSF names no activity for it; `activity_name` then
/// carries the Okta event type.
pub const OTHER: u8 = 99;

/// Exact event types, checked before the prefix rules.
const EXACT: &[(&str, OcsfClass, u8)] = {
    use OcsfClass::*;
    &[
        ("security.threat.detected", DetectionFinding, 1),
        ("security.request.blocked", DetectionFinding, 1),
        ("user.session.start", Authentication, 1),
        ("user.session.end", Authentication, 2),
        ("user.session.clear", Authentication, 2),
        ("user.session.expire", Authentication, 2),
        ("user.mfa.attempt_bypass", Authentication, OTHER),
        ("user.lifecycle.create", AccountChange, 1),
        ("user.lifecycle.activate", AccountChange, 2),
        ("user.lifecycle.reactivate", AccountChange, 2),
        ("user.lifecycle.unsuspend", AccountChange, 2),
        ("user.lifecycle.deactivate", AccountChange, 5),
        ("user.lifecycle.suspend", AccountChange, 5),
        ("user.lifecycle.delete.initiated", AccountChange, 6),
        ("user.lifecycle.delete.completed", AccountChange, 6),
        ("user.account.update_password", AccountChange, 3),
        ("user.account.reset_password", AccountChange, 4),
        ("user.lifecycle.password_reset", AccountChange, 4),
        ("user.account.lock", AccountChange, 9),
        ("user.account.lock.limit", AccountChange, 9),
        ("user.account.unlock", AccountChange, 12),
        ("user.account.unlock_by_admin", AccountChange, 12),
        ("user.mfa.factor.activate", AccountChange, 10),
        ("user.mfa.factor.unsuspend", AccountChange, 10),
        ("user.mfa.factor.deactivate", AccountChange, 11),
        ("user.mfa.factor.suspend", AccountChange, 11),
        ("user.mfa.factor.reset_all", AccountChange, 11),
        ("user.account.privilege.grant", UserAccessManagement, 1),
        ("user.account.privilege.revoke", UserAccessManagement, 2),
        (
            "app.user_management.assign_user_to_app",
            UserAccessManagement,
            1,
        ),
        (
            "app.user_management.deactivate_user",
            UserAccessManagement,
            2,
        ),
        (
            "app.user_management.unassign_user_from_app",
            UserAccessManagement,
            2,
        ),
        ("application.user_membership.add", UserAccessManagement, 1),
        (
            "application.user_membership.remove",
            UserAccessManagement,
            2,
        ),
        ("application.provision.user.push", UserAccessManagement, 1),
        ("group.user_membership.add", GroupManagement, 3),
        ("group.user_membership.remove", GroupManagement, 4),
        ("group.privilege.grant", GroupManagement, 1),
        ("group.privilege.revoke", GroupManagement, 2),
    ]
};

/// Families of event types: the class fits every member, the activity is Other unless listed.
const PREFIXES: &[(&str, OcsfClass)] = &[
    ("user.authentication.", OcsfClass::Authentication),
    ("user.session.", OcsfClass::Authentication),
    ("user.lifecycle.", OcsfClass::AccountChange),
    ("user.account.", OcsfClass::AccountChange),
    ("user.mfa.factor.", OcsfClass::AccountChange),
    ("user.credential.", OcsfClass::AccountChange),
    ("group.user_membership.", OcsfClass::GroupManagement),
];

/// The class and activity for an event type. Sign-in types (`user.authentication.*`) are all
/// Logon: OCSF has one activity for every step of a sign-in, MFA included (`is_mfa` tells).
pub fn classify(event_type: &str) -> (OcsfClass, u8) {
    if let Some((_, class, activity)) = EXACT.iter().find(|(t, _, _)| *t == event_type) {
        return (*class, *activity);
    }
    if let Some((prefix, class)) = PREFIXES.iter().find(|(p, _)| event_type.starts_with(p)) {
        let activity = if *prefix == "user.authentication." {
            1
        } else {
            OTHER
        };
        return (*class, activity);
    }
    (OcsfClass::ApiActivity, api_activity(event_type))
}

/// API Activity's Create/Read/Update/Delete from the verb Okta ends the type with.
pub fn api_activity(event_type: &str) -> u8 {
    let verb = event_type.rsplit('.').next().unwrap_or_default();
    let has = |words: &[&str]| words.iter().any(|w| verb.contains(w));
    if has(&["create", "add"]) {
        1
    } else if has(&["read", "view", "list", "get"]) {
        2
    } else if has(&["update", "change", "modify"]) {
        3
    } else if has(&["delete", "remove"]) {
        4
    } else {
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::catalog::Catalog;

    #[test]
    fn every_catalog_type_has_a_specific_class_not_the_fallback() {
        for entry in Catalog::builtin().entries() {
            let (class, _) = classify(entry.event_type);
            assert_ne!(class, OcsfClass::ApiActivity, "{}", entry.event_type);
        }
    }

    #[test]
    fn catalog_types_land_in_the_classes_the_docs_name() {
        let cases = [
            ("user.authentication.sso", OcsfClass::Authentication, 1),
            (
                "user.authentication.auth_via_mfa",
                OcsfClass::Authentication,
                1,
            ),
            ("user.session.end", OcsfClass::Authentication, 2),
            ("user.account.lock", OcsfClass::AccountChange, 9),
            ("user.account.unlock", OcsfClass::AccountChange, 12),
            ("user.mfa.factor.deactivate", OcsfClass::AccountChange, 11),
            ("user.mfa.factor.update", OcsfClass::AccountChange, OTHER),
            ("group.user_membership.add", OcsfClass::GroupManagement, 3),
            (
                "user.account.privilege.grant",
                OcsfClass::UserAccessManagement,
                1,
            ),
            (
                "app.user_management.deactivate_user",
                OcsfClass::UserAccessManagement,
                2,
            ),
            ("security.request.blocked", OcsfClass::DetectionFinding, 1),
        ];
        for (event_type, class, activity) in cases {
            assert_eq!(classify(event_type), (class, activity), "{event_type}");
        }
    }

    #[test]
    fn families_outside_the_exact_table_keep_their_class_with_activity_other() {
        assert_eq!(
            classify("user.account.update_profile"),
            (OcsfClass::AccountChange, OTHER)
        );
        assert_eq!(
            classify("user.authentication.authenticate"),
            (OcsfClass::Authentication, 1)
        );
        assert_eq!(
            classify("group.user_membership.rule.evaluated"),
            (OcsfClass::GroupManagement, OTHER)
        );
    }

    #[test]
    fn other_types_fall_back_to_api_activity_by_their_verb() {
        assert_eq!(
            classify("policy.lifecycle.create"),
            (OcsfClass::ApiActivity, 1)
        );
        assert_eq!(classify("policy.rule.update"), (OcsfClass::ApiActivity, 3));
        assert_eq!(classify("zone.delete"), (OcsfClass::ApiActivity, 4));
        assert_eq!(
            classify("app.oauth2.as.token.grant"),
            (OcsfClass::ApiActivity, OTHER)
        );
    }

    #[test]
    fn class_uids_and_captions_follow_ocsf() {
        let uids: Vec<u32> = OcsfClass::ALL.iter().map(|c| c.uid()).collect();
        assert_eq!(uids, [2004, 3001, 3002, 3005, 3006, 6003]);
        assert_eq!(OcsfClass::AccountChange.activity_caption(12), "Unlock");
        assert_eq!(OcsfClass::Authentication.activity_caption(OTHER), "Other");
        assert_eq!(
            OcsfClass::GroupManagement.activity_caption(4),
            "Remove User"
        );
    }
}
