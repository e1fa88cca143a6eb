//! Whose event it is: the subject chosen from the actor and the targets by the catalog's rule,
//! and the partition key that keeps one person's events in order.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::catalog::SubjectRule;
use super::event::{self, SubjectSource};
use super::sections::party;
use crate::okta::model::Principal;
use crate::sink::limits::MAX_PARTITION_KEY_BYTES;

/// The person an event is about.
pub(super) struct Subject<'a> {
    pub party: event::Party<'a>,
    pub source: SubjectSource,
    /// False when Okta could not resolve the user (e.g. a sign-in with an unknown username).
    pub resolved: bool,
}

/// The subject under `rule`: the actor when the rule says so and the actor is a User (or no
/// target is), else the first User target; `None` when no User can be found.
pub(super) fn choose<'a>(
    rule: SubjectRule,
    actor: &Principal<'a>,
    targets: &[Principal<'a>],
) -> Option<Subject<'a>> {
    let first_user_target = targets.iter().find(|t| t.is_user());
    let (party, source) = match (rule, actor.is_user(), first_user_target) {
        (SubjectRule::Actor, true, _) | (SubjectRule::Target, true, None) => {
            (party(actor), SubjectSource::Actor)
        }
        (_, _, Some(target)) => (party(target), SubjectSource::Target),
        (_, false, None) => return None,
    };
    let resolved = !party
        .id
        .as_deref()
        .is_some_and(|id| id.trim().eq_ignore_ascii_case(UNRESOLVED_USER_ID));
    Some(Subject {
        party,
        source,
        resolved,
    })
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
    capped(key)
}

/// `key`, or `sha256:<hex>` of it when it is over the Kinesis limit.
pub(super) fn capped(key: String) -> String {
    if key.len() <= MAX_PARTITION_KEY_BYTES {
        return key;
    }
    let mut short = String::with_capacity(7 + 64);
    short.push_str("sha256:");
    for byte in Sha256::digest(key.as_bytes()) {
        // Writing to a String cannot fail.
        let _ = write!(short, "{byte:02x}");
    }
    short
}

/// The subject rule of a type outside the catalog (used under the `all` policy).
pub(super) fn uncatalogued_rule(event_type: &str) -> SubjectRule {
    if USER_DIRECTED_PREFIXES
        .iter()
        .any(|prefix| event_type.starts_with(prefix))
    {
        SubjectRule::Target
    } else {
        SubjectRule::Actor
    }
}
