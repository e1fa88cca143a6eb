//! Parsers for the map-like strings Okta puts in `debugContext.debugData`:
//! `risk` (`{level=MEDIUM, reasons=Anomalous Device, New Geo-Location}`) and
//! `behaviors` (`{New Geo-Location=NEGATIVE, New Device=POSITIVE}`).
//!
//! Both are Java `Map.toString()` output, so values are unquoted and may contain commas.
//! The parsers never panic; `None` means "not understood" and the caller keeps the raw string.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether Okta saw a behavior as anomalous for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BehaviorSignal {
    /// The behavior was detected (e.g. the geo-location is new for this user).
    Positive,
    /// The behavior was not detected.
    Negative,
    /// Okta lacked the history to decide.
    Unknown,
}

/// The parts of a `risk` string the schema uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedRisk<'a> {
    /// As Okta spells it (`LOW`, `MEDIUM`, `HIGH`), upper-cased.
    pub level: Option<Cow<'a, str>>,
    pub reasons: Vec<Cow<'a, str>>,
}

/// Parses `risk`. Unknown keys are ignored; at least `level` or `reasons` must be present
/// unless the map is empty (`{}`).
pub fn parse_risk<'a>(raw: &Cow<'a, str>) -> Option<ParsedRisk<'a>> {
    let body = map_body(raw)?;
    let mut risk = ParsedRisk::default();
    if body.is_empty() {
        return Some(risk);
    }
    let mut known = false;
    for (key, value) in risk_pairs(body)? {
        if key.eq_ignore_ascii_case("level") {
            known = true;
            if !value.is_empty() {
                risk.level = Some(if value.bytes().any(|b| b.is_ascii_lowercase()) {
                    Cow::Owned(value.to_ascii_uppercase())
                } else {
                    lift(raw, value)
                });
            }
        } else if key.eq_ignore_ascii_case("reasons") {
            known = true;
            risk.reasons = value
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| lift(raw, r))
                .collect();
        }
    }
    known.then_some(risk)
}

/// Parses `behaviors` into name → signal. Every entry must be `name=POSITIVE|NEGATIVE|UNKNOWN`.
pub fn parse_behaviors<'a>(raw: &Cow<'a, str>) -> Option<BTreeMap<Cow<'a, str>, BehaviorSignal>> {
    let body = map_body(raw)?;
    let mut behaviors = BTreeMap::new();
    if body.is_empty() {
        return Some(behaviors);
    }
    for entry in body.split(',') {
        let (name, signal) = entry.split_once('=')?;
        let name = name.trim();
        let signal = signal.trim();
        let signal = if signal.eq_ignore_ascii_case("POSITIVE") {
            BehaviorSignal::Positive
        } else if signal.eq_ignore_ascii_case("NEGATIVE") {
            BehaviorSignal::Negative
        } else if signal.eq_ignore_ascii_case("UNKNOWN") {
            BehaviorSignal::Unknown
        } else {
            return None;
        };
        if name.is_empty() {
            return None;
        }
        behaviors.insert(lift(raw, name), signal);
    }
    Some(behaviors)
}

/// The text between the braces, trimmed. Braces are optional, but must not be unbalanced
/// in a way that hides nesting we do not understand.
fn map_body(raw: &str) -> Option<&str> {
    let text = raw.trim();
    let text = text.strip_prefix('{').unwrap_or(text);
    let text = text.strip_suffix('}').unwrap_or(text);
    if text.contains(['{', '}']) {
        return None;
    }
    Some(text.trim())
}

/// Splits `k1=v1, k2=v2a, v2b` into pairs. A comma-separated piece starts a new pair only if
/// it begins with an identifier followed by `=`; otherwise it continues the previous value
/// (reasons such as `Anomalous Device, New Geo-Location` contain commas).
fn risk_pairs(body: &str) -> Option<Vec<(&str, &str)>> {
    let mut pairs: Vec<(&str, usize, usize)> = Vec::new();
    let mut offset = 0;
    for piece in body.split(',') {
        let end = offset + piece.len();
        match piece.split_once('=') {
            Some((key, _)) if is_identifier(key.trim()) => {
                pairs.push((key.trim(), offset + key.len() + 1, end));
            }
            _ => pairs.last_mut()?.2 = end,
        }
        offset = end + 1;
    }
    Some(
        pairs
            .into_iter()
            .map(|(key, start, end)| (key, body[start..end].trim()))
            .collect(),
    )
}

fn is_identifier(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Re-borrows `piece` (a slice of `source`) for `source`'s lifetime when `source` borrows from
/// the page body; copies it otherwise.
fn lift<'a>(source: &Cow<'a, str>, piece: &str) -> Cow<'a, str> {
    match source {
        Cow::Borrowed(whole) => {
            let start = piece.as_ptr() as usize - whole.as_ptr() as usize;
            Cow::Borrowed(&whole[start..start + piece.len()])
        }
        Cow::Owned(_) => Cow::Owned(piece.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn risk(s: &str) -> Option<ParsedRisk<'_>> {
        parse_risk(&Cow::Borrowed(s))
    }

    fn behaviors(s: &str) -> Option<BTreeMap<Cow<'_, str>, BehaviorSignal>> {
        parse_behaviors(&Cow::Borrowed(s))
    }

    #[test]
    fn risk_reasons_keep_their_commas_as_separate_reasons() {
        let parsed = risk("{level=MEDIUM, reasons=Anomalous Device, New Geo-Location}").unwrap();
        assert_eq!(parsed.level.as_deref(), Some("MEDIUM"));
        assert_eq!(parsed.reasons, ["Anomalous Device", "New Geo-Location"]);
    }

    #[test]
    fn risk_tolerates_missing_braces_spaces_case_and_unknown_keys() {
        let parsed = risk("  level = low ,foo=bar,  reasons=  New IP ,, ").unwrap();
        assert_eq!(parsed.level.as_deref(), Some("LOW"));
        assert_eq!(parsed.reasons, ["New IP"]);
        let parsed = risk("{reasons=Anomalous Location, level=HIGH}").unwrap();
        assert_eq!(parsed.level.as_deref(), Some("HIGH"));
        assert_eq!(parsed.reasons, ["Anomalous Location"]);
    }

    #[test]
    fn risk_with_level_only_or_empty_map_parses() {
        assert_eq!(risk("{level=LOW}").unwrap().reasons.len(), 0);
        assert_eq!(risk("{}").unwrap(), ParsedRisk::default());
        assert_eq!(risk("").unwrap(), ParsedRisk::default());
        assert_eq!(risk("{level=}").unwrap().level, None);
    }

    #[test]
    fn risk_that_is_not_a_map_is_not_understood() {
        assert_eq!(risk("HIGH"), None);
        assert_eq!(risk("{foo=bar}"), None);
        assert_eq!(risk("{level={nested=1}}"), None);
        assert_eq!(risk(", reasons=x"), None);
    }

    #[test]
    fn risk_from_an_owned_string_is_copied() {
        let parsed = parse_risk(&Cow::Owned("{level=HIGH}".to_owned())).unwrap();
        assert!(matches!(parsed.level, Some(Cow::Owned(_))));
    }

    #[test]
    fn behaviors_map_names_to_signals() {
        let parsed = behaviors(
            "{New Geo-Location=NEGATIVE, New Device=POSITIVE, New IP=unknown,Velocity = NEGATIVE}",
        )
        .unwrap();
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed["New Device"], BehaviorSignal::Positive);
        assert_eq!(parsed["New Geo-Location"], BehaviorSignal::Negative);
        assert_eq!(parsed["New IP"], BehaviorSignal::Unknown);
        assert_eq!(parsed["Velocity"], BehaviorSignal::Negative);
    }

    #[test]
    fn behaviors_empty_map_is_empty_and_junk_is_not_understood() {
        assert!(behaviors("{}").unwrap().is_empty());
        assert!(behaviors(" { } ").unwrap().is_empty());
        assert_eq!(behaviors("{New Device=MAYBE}"), None);
        assert_eq!(behaviors("{New Device}"), None);
        assert_eq!(behaviors("{=POSITIVE}"), None);
        assert_eq!(behaviors("New Device=POSITIVE, "), None);
    }

    fn reason() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z -]{0,20}[A-Za-z]"
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_string(s in any::<String>()) {
            let _ = risk(&s);
            let _ = behaviors(&s);
            let _ = parse_risk(&Cow::Owned(s.clone()));
        }

        #[test]
        fn well_formed_risk_round_trips(
            level in "(LOW|MEDIUM|HIGH)",
            reasons in proptest::collection::vec(reason(), 0..4),
        ) {
            let text = format!("{{level={level}, reasons={}}}", reasons.join(", "));
            let parsed = risk(&text).unwrap();
            prop_assert_eq!(parsed.level.as_deref(), Some(level.as_str()));
            prop_assert_eq!(parsed.reasons, reasons);
        }

        #[test]
        fn well_formed_behaviors_round_trip(
            entries in proptest::collection::btree_map(
                reason(),
                prop_oneof![
                    Just(BehaviorSignal::Positive),
                    Just(BehaviorSignal::Negative),
                    Just(BehaviorSignal::Unknown),
                ],
                0..8,
            ),
        ) {
            let text = entries
                .iter()
                .map(|(name, signal)| format!("{name}={}", serde_json::to_value(signal).unwrap().as_str().unwrap()))
                .collect::<Vec<_>>()
                .join(", ");
            let text = format!("{{{text}}}");
            let parsed = behaviors(&text).unwrap();
            let parsed: BTreeMap<String, BehaviorSignal> =
                parsed.into_iter().map(|(k, v)| (k.into_owned(), v)).collect();
            prop_assert_eq!(parsed, entries);
        }
    }
}
