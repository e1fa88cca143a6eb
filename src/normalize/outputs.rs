//! Which schemas a connector publishes: TOTAL (the default), OCSF, or both, each into its own
//! stream.

use serde_json::Value;

/// The outputs named in a connector document's `outputs` (e.g. `["total", "ocsf"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outputs {
    /// TOTAL v1 events into the event stream.
    pub total: bool,
    /// OCSF 1.8.0 records into the OCSF stream.
    pub ocsf: bool,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            total: true,
            ocsf: false,
        }
    }
}

impl Outputs {
    /// Reads the document's `outputs` value; the error says what is accepted.
    pub fn from_value(value: &Value) -> Result<Outputs, String> {
        const EXPECTED: &str =
            "must be a non-empty list of \"total\" and \"ocsf\", e.g. [\"total\", \"ocsf\"]";
        let names = value.as_array().ok_or(EXPECTED)?;
        let mut outputs = Outputs {
            total: false,
            ocsf: false,
        };
        for name in names {
            match name.as_str() {
                Some("total") => outputs.total = true,
                Some("ocsf") => outputs.ocsf = true,
                _ => return Err(format!("{EXPECTED}; {name} is not an output")),
            }
        }
        if !(outputs.total || outputs.ocsf) {
            return Err(EXPECTED.to_owned());
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_are_total_ocsf_or_both() {
        assert_eq!(
            Outputs::default(),
            Outputs {
                total: true,
                ocsf: false
            }
        );
        let both = Outputs::from_value(&json!(["total", "ocsf"])).unwrap();
        assert!(both.total && both.ocsf);
        let ocsf = Outputs::from_value(&json!(["ocsf"])).unwrap();
        assert!(!ocsf.total && ocsf.ocsf);
    }

    #[test]
    fn unknown_empty_or_non_list_outputs_are_refused() {
        for bad in [json!([]), json!(["parquet"]), json!("ocsf"), json!([1])] {
            let err = Outputs::from_value(&bad).unwrap_err();
            assert!(err.contains("\"total\" and \"ocsf\""), "{bad}: {err}");
        }
    }
}
