//! The Okta event fixtures under `tests/fixtures/okta/`, shared by the TOTAL and OCSF tests.

use std::path::{Path, PathBuf};

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
