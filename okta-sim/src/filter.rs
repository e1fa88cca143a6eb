//! The subset of Okta's SCIM-style `filter` expressions the simulator understands:
//! `eventType eq "…"` and `eventType sw "…"`, combined with `or`.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Equals(String),
    StartsWith(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventFilter {
    /// Empty means "no filter".
    any_of: Vec<Clause>,
}

impl EventFilter {
    pub(crate) fn parse(expr: &str) -> Option<EventFilter> {
        let mut any_of = Vec::new();
        for part in split_or(expr.trim()) {
            let part = part
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let mut words = part.splitn(3, ' ');
            let (field, op, value) = (words.next()?, words.next()?, words.next()?.trim());
            if field != "eventType" {
                return None;
            }
            let value = value.strip_prefix('"')?.strip_suffix('"')?.to_string();
            any_of.push(match op.to_ascii_lowercase().as_str() {
                "eq" => Clause::Equals(value),
                "sw" => Clause::StartsWith(value),
                _ => return None,
            });
        }
        Some(EventFilter { any_of })
    }

    pub(crate) fn matches(&self, event_type: &str) -> bool {
        self.any_of.is_empty()
            || self.any_of.iter().any(|c| match c {
                Clause::Equals(v) => event_type == v,
                Clause::StartsWith(v) => event_type.starts_with(v.as_str()),
            })
    }
}

fn split_or(expr: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find(" or ").or_else(|| rest.find(" OR ")) {
        parts.push(&rest[..i]);
        rest = &rest[i + 4..];
    }
    parts.push(rest);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_equality_and_prefix_with_or() {
        let f =
            EventFilter::parse(r#"eventType eq "user.session.start" or eventType sw "user.mfa.""#)
                .unwrap();
        assert!(f.matches("user.session.start"));
        assert!(f.matches("user.mfa.factor.activate"));
        assert!(!f.matches("user.session.end"));
    }

    #[test]
    fn unsupported_expressions_are_refused() {
        assert_eq!(EventFilter::parse(r#"actor.id eq "00u1""#), None);
        assert_eq!(EventFilter::parse(r#"eventType gt "a""#), None);
        assert_eq!(EventFilter::parse("eventType eq unquoted"), None);
        assert_eq!(EventFilter::parse("garbage"), None);
    }
}
