//! The event types the simulator generates (okta-sim/src/kinds.tsv, checked against the
//! product's catalog) and the picker that chooses them with the configured shares.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::rng::SplitMix;

/// Where an event type comes from, which decides how often the generator emits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A type of the product's event catalog.
    Catalog,
    /// Attributable to a person but outside the catalog.
    HumanOther,
    /// Not attributable to a person (policies, apps, org-wide warnings).
    System,
}

/// How an event's actor, client, context and targets are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    SignIn,
    SessionStart,
    SessionEnd,
    Mfa,
    PushDenied,
    SelfService,
    AdminOnUser,
    Group,
    Privilege,
    AppAssign,
    Provision,
    Threat,
    System,
}

impl Shape {
    fn parse(name: &str) -> Option<Shape> {
        Some(match name {
            "sign_in" => Shape::SignIn,
            "session_start" => Shape::SessionStart,
            "session_end" => Shape::SessionEnd,
            "mfa" => Shape::Mfa,
            "push_denied" => Shape::PushDenied,
            "self_service" => Shape::SelfService,
            "admin_on_user" => Shape::AdminOnUser,
            "group" => Shape::Group,
            "privilege" => Shape::Privilege,
            "app_assign" => Shape::AppAssign,
            "provision" => Shape::Provision,
            "threat" => Shape::Threat,
            "system" => Shape::System,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Kind {
    pub event_type: &'static str,
    pub origin: Origin,
    pub legacy: Option<&'static str>,
    pub display: &'static str,
    pub shape: Shape,
    /// Relative frequency within its origin.
    pub weight: u32,
}

/// The product's event catalog: its first column is the set of types the connector publishes.
const EVENT_CATALOG_TSV: &str = include_str!("../../src/normalize/catalog.tsv");
/// How each generated type is rendered (see the header of the file).
const KINDS_TSV: &str = include_str!("kinds.tsv");

static KINDS: LazyLock<Vec<Kind>> = LazyLock::new(|| {
    parse_kinds(KINDS_TSV, &catalog_types(EVENT_CATALOG_TSV))
        .unwrap_or_else(|e| panic!("okta-sim/src/kinds.tsv is invalid: {e}"))
});

/// Every event type the simulator generates, in table order (an event stores its index).
pub(crate) fn kinds() -> &'static [Kind] {
    &KINDS
}

fn data_rows(tsv: &'static str) -> impl Iterator<Item = (usize, &'static str)> {
    tsv.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .skip(1) // the header row
}

fn catalog_types(tsv: &'static str) -> HashSet<&'static str> {
    data_rows(tsv)
        .filter_map(|(_, line)| line.split('\t').next())
        .collect()
}

fn parse_kinds(tsv: &'static str, catalog: &HashSet<&'static str>) -> Result<Vec<Kind>, String> {
    let mut kinds: Vec<Kind> = Vec::new();
    for (line_no, line) in data_rows(tsv) {
        let bad = |what: String| format!("line {line_no}: {what}");
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [event_type, legacy, display, shape, weight] = cols[..] else {
            return Err(bad(format!(
                "expected 5 tab-separated columns, found {}",
                cols.len()
            )));
        };
        let shape = Shape::parse(shape).ok_or_else(|| bad(format!("unknown shape {shape:?}")))?;
        let weight: u32 = weight
            .parse()
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| bad(format!("weight {weight:?} is not a positive integer")))?;
        if kinds.iter().any(|k| k.event_type == event_type) {
            return Err(bad(format!("{event_type} appears twice")));
        }
        let origin = if catalog.contains(event_type) {
            Origin::Catalog
        } else if shape == Shape::System {
            Origin::System
        } else {
            Origin::HumanOther
        };
        kinds.push(Kind {
            event_type,
            origin,
            legacy: (legacy != "-").then_some(legacy),
            display,
            shape,
            weight,
        });
    }
    if let Some(missing) = catalog
        .iter()
        .find(|t| !kinds.iter().any(|k| k.event_type == **t))
    {
        return Err(format!(
            "catalog type {missing} has no row: every published type must be generated"
        ));
    }
    Ok(kinds)
}

/// Picks event kinds with the configured shares of system and non-catalog events.
pub(crate) struct KindPicker {
    system_ratio: f64,
    non_catalog_ratio: f64,
    catalog: Vec<(u16, u32)>,
    human_other: Vec<(u16, u32)>,
    system: Vec<(u16, u32)>,
}

impl KindPicker {
    pub(crate) fn new(system_ratio: f64, non_catalog_ratio: f64) -> Self {
        let of = |origin: Origin| -> Vec<(u16, u32)> {
            kinds()
                .iter()
                .enumerate()
                .filter(|(_, k)| k.origin == origin)
                .map(|(i, k)| (i as u16, k.weight))
                .collect()
        };
        KindPicker {
            system_ratio: system_ratio.clamp(0.0, 1.0),
            non_catalog_ratio: non_catalog_ratio.clamp(0.0, 1.0),
            catalog: of(Origin::Catalog),
            human_other: of(Origin::HumanOther),
            system: of(Origin::System),
        }
    }

    pub(crate) fn pick(&self, rng: &mut SplitMix) -> u16 {
        let roll = rng.unit();
        let pool = if roll < self.system_ratio {
            &self.system
        } else if roll < self.system_ratio + self.non_catalog_ratio {
            &self.human_other
        } else {
            &self.catalog
        };
        let total: u32 = pool.iter().map(|(_, w)| w).sum();
        let mut ticket = rng.below(total as usize) as u32;
        for &(kind, weight) in pool {
            if ticket < weight {
                return kind;
            }
            ticket -= weight;
        }
        pool[pool.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_kinds_are_exactly_the_event_catalog() {
        let catalog = catalog_types(EVENT_CATALOG_TSV);
        assert!(catalog.len() >= 30, "catalog read as {catalog:?}");
        let ours: HashSet<&str> = kinds()
            .iter()
            .filter(|k| k.origin == Origin::Catalog)
            .map(|k| k.event_type)
            .collect();
        assert_eq!(ours, catalog);
        assert!(kinds().iter().any(|k| k.origin == Origin::HumanOther));
        assert!(kinds().iter().any(|k| k.origin == Origin::System));
    }

    #[test]
    fn a_kinds_table_missing_a_catalog_type_or_malformed_is_refused() {
        let header = "event_type\tlegacy_event_type\tdisplay_message\tshape\tweight\n";
        let catalog: HashSet<&'static str> = ["user.session.start"].into_iter().collect();
        let leak =
            |body: &str| -> &'static str { Box::leak(format!("{header}{body}").into_boxed_str()) };
        let ok = parse_kinds(
            leak("user.session.start\t-\tUser login to Okta\tsession_start\t1\n"),
            &catalog,
        )
        .unwrap();
        assert_eq!(ok[0].origin, Origin::Catalog);
        assert_eq!(ok[0].legacy, None);
        let missing = parse_kinds(
            leak("policy.lifecycle.update\t-\tUpdate policy\tsystem\t1\n"),
            &catalog,
        )
        .unwrap_err();
        assert!(
            missing.contains("user.session.start has no row"),
            "{missing}"
        );
        for (body, problem) in [
            ("user.session.start\t-\tx\tsideways\t1\n", "unknown shape"),
            (
                "user.session.start\t-\tx\tmfa\t0\n",
                "not a positive integer",
            ),
            ("user.session.start\t-\tx\tmfa\n", "expected 5"),
            (
                "user.session.start\t-\tx\tmfa\t1\nuser.session.start\t-\tx\tmfa\t1\n",
                "appears twice",
            ),
        ] {
            let err = parse_kinds(leak(body), &catalog).unwrap_err();
            assert!(
                err.contains(problem) && err.starts_with("line "),
                "{body:?}: {err}"
            );
        }
    }
}
