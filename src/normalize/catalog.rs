//! The event catalog: which Okta event types are published and how each is classified.
//!
//! The table lives in `catalog.tsv` beside this file (one place to change it) and is parsed once.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const CATALOG_TSV: &str = include_str!("catalog.tsv");

/// TOTAL classification of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Authentication,
    Admin,
    Alert,
    /// Outside the catalog (published only under the `all` policy).
    Other,
}

/// TOTAL signal class of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalClass {
    CoreIam,
    MfaDeviceTrust,
}

/// Whose event it is, before falling back (see `catalog.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectRule {
    /// The actor when it is a User.
    Actor,
    /// The first User target: an admin or Okta acted on this person.
    Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub event_type: &'static str,
    pub groups: Vec<&'static str>,
    pub classification: Classification,
    pub signal_class: SignalClass,
    pub subject: SubjectRule,
    pub description: &'static str,
}

/// Why the catalog table could not be read: a build-time data error, caught by the unit tests.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("catalog.tsv line {line}: {problem}; fix the row in src/normalize/catalog.tsv")]
pub struct CatalogError {
    pub line: usize,
    pub problem: String,
}

#[derive(Debug)]
pub struct Catalog {
    entries: HashMap<&'static str, CatalogEntry>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::parse(CATALOG_TSV).unwrap_or_else(|e| panic!("embedded event catalog is invalid: {e}"))
});

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> &'static Catalog {
        &CATALOG
    }

    pub fn get(&self, event_type: &str) -> Option<&CatalogEntry> {
        self.entries.get(event_type)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }

    /// Parses the table: `#` comments, one header row, then tab-separated rows of
    /// event_type, group (comma-separated), classification, signal_class, subject, description.
    pub fn parse(tsv: &'static str) -> Result<Catalog, CatalogError> {
        let mut entries = HashMap::new();
        let rows = tsv
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .skip(1);
        for (line, row) in rows {
            let problem = |problem: String| CatalogError { line, problem };
            let cols: Vec<&'static str> = row.split('\t').map(str::trim).collect();
            let [event_type, group, classification, signal_class, subject, description] = cols[..]
            else {
                return Err(problem(format!("expected 6 columns, found {}", cols.len())));
            };
            let entry = CatalogEntry {
                event_type,
                groups: group.split(',').map(str::trim).collect(),
                classification: match classification {
                    "Authentication" => Classification::Authentication,
                    "Admin" => Classification::Admin,
                    "Alert" => Classification::Alert,
                    other => return Err(problem(format!("unknown classification {other:?}"))),
                },
                signal_class: match signal_class {
                    "Core IAM" => SignalClass::CoreIam,
                    "MFA & Device Trust" => SignalClass::MfaDeviceTrust,
                    other => return Err(problem(format!("unknown signal class {other:?}"))),
                },
                subject: match subject {
                    "actor" => SubjectRule::Actor,
                    "target" => SubjectRule::Target,
                    other => return Err(problem(format!("unknown subject rule {other:?}"))),
                },
                description,
            };
            if entry.event_type.is_empty() || entry.groups.iter().any(|g| g.is_empty()) {
                return Err(problem("empty event type or group".to_owned()));
            }
            if entries.insert(event_type, entry).is_some() {
                return Err(problem(format!("event type {event_type} listed twice")));
            }
        }
        Ok(Catalog { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_32_types_each_fully_classified() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.len(), 32);
        for entry in catalog.entries() {
            assert!(!entry.groups.is_empty(), "{}", entry.event_type);
            assert_ne!(entry.classification, Classification::Other);
            assert!(!entry.description.is_empty());
        }
    }

    #[test]
    fn builtin_catalog_matches_the_spec_classification() {
        let catalog = Catalog::builtin();
        let lock = catalog.get("user.account.lock").unwrap();
        assert_eq!(lock.classification, Classification::Authentication);
        let mfa = catalog.get("user.authentication.auth_via_mfa").unwrap();
        assert_eq!(mfa.groups, ["authentication", "mfa"]);
        assert_eq!(mfa.signal_class, SignalClass::MfaDeviceTrust);
        let threat = catalog.get("security.threat.detected").unwrap();
        assert_eq!(threat.classification, Classification::Alert);
        assert_eq!(threat.signal_class, SignalClass::CoreIam);
        assert_eq!(threat.subject, SubjectRule::Target);
        let sso = catalog.get("user.authentication.sso").unwrap();
        assert_eq!(sso.subject, SubjectRule::Actor);
        assert!(catalog.get("policy.lifecycle.update").is_none());
    }

    #[test]
    fn admin_acts_on_someone_types_resolve_the_subject_from_targets() {
        let catalog = Catalog::builtin();
        for event_type in [
            "user.lifecycle.create",
            "group.user_membership.add",
            "user.account.privilege.grant",
            "app.user_management.assign_user_to_app",
            "application.provision.user.push",
            "user.mfa.factor.reset_all",
            "security.request.blocked",
        ] {
            assert_eq!(
                catalog.get(event_type).unwrap().subject,
                SubjectRule::Target
            );
        }
    }

    #[test]
    fn row_with_unknown_classification_is_refused_with_its_line() {
        let tsv = "# c\nevent_type\tgroup\tclassification\tsignal_class\tsubject\tdescription\n\
                   a.b\tg\tNope\tCore IAM\tactor\td\n";
        let err = Catalog::parse(tsv).err().unwrap();
        assert_eq!(err.line, 3);
        assert!(err.problem.contains("Nope"));
    }

    #[test]
    fn duplicate_and_short_rows_are_refused() {
        let header = "event_type\tgroup\tclassification\tsignal_class\tsubject\tdescription\n";
        let row = "a.b\tg\tAdmin\tCore IAM\tactor\td\n";
        assert!(Catalog::parse(Box::leak(format!("{header}{row}{row}").into_boxed_str())).is_err());
        assert!(Catalog::parse(Box::leak(format!("{header}a.b\tg\n").into_boxed_str())).is_err());
    }
}
