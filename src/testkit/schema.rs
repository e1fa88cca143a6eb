//! Validation of normalized events against docs/schema/total-event-v1.json.

use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/schema/total-event-v1.json"
        );
        let text = std::fs::read_to_string(path).expect("read docs/schema/total-event-v1.json");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::draft202012::new(&schema).expect("schema compiles")
    })
}

/// Panics with every violation when `json` is not a valid TOTAL v1 event.
pub fn assert_valid_total_event(json: &serde_json::Value) {
    let errors: Vec<String> = validator()
        .iter_errors(json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "event violates total-event-v1.json:\n{}\nevent: {json}",
        errors.join("\n")
    );
}
