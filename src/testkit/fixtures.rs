//! The Okta event fixtures under `tests/fixtures/okta/`, shared by the TOTAL and OCSF tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::normalize::{CatalogPolicy, Normalizer, NormalizerConfig};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// (name, raw text) of every Okta fixture, sorted by name.
pub fn okta_fixtures() -> Vec<(String, String)> {
    let mut fixtures: Vec<(String, String)> = std::fs::read_dir(fixtures_dir().join("okta"))
        .unwrap_or_else(|e| panic!("tests/fixtures/okta is unreadable: {e}"))
        .map(|entry| entry.expect("a fixture directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{} is unreadable: {e}", path.display()));
            (name, text)
        })
        .collect();
    fixtures.sort();
    fixtures
}

/// The normalizer the fixtures' goldens were written with: org `acme.okta.com`, connector
/// `okta-prod-1`.
pub fn fixtures_normalizer(policy: CatalogPolicy, include_raw: bool) -> Normalizer {
    Normalizer::new(NormalizerConfig {
        org: "acme.okta.com".to_owned(),
        connector_id: "okta-prod-1".to_owned(),
        policy,
        include_raw,
    })
}

/// Compares `actual` with the reviewed golden `tests/fixtures/<kind>/<name>.json` and describes
/// the difference, so a test can report every mismatch at once. With `UPDATE_GOLDEN` set it
/// writes `actual` as the new golden instead, for review in the diff.
pub fn golden_mismatch(kind: &str, name: &str, actual: &Value) -> Option<String> {
    let golden = fixtures_dir().join(kind).join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&golden, text).unwrap();
        return None;
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", golden.display())),
    )
    .unwrap();
    (*actual != expected).then(|| format!("{name}:\n  expected {expected}\n  actual   {actual}"))
}
