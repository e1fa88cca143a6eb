//! Reading one JSON object of the document: typed members, and refusal of unknown ones.

use serde_json::{Map, Value};

use super::ConfigError;

pub(super) fn field_error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

/// serde_json syntax errors carry only a position, never document content.
pub(super) fn syntax_only(error: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        error.classify(),
        error.line(),
        error.column()
    )
}

/// Reads members of one JSON object, remembering which were used so leftovers can be refused.
pub(super) struct Fields<'a> {
    prefix: &'static str,
    members: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(value: &'a Value, prefix: &'static str) -> Result<Fields<'a>, ConfigError> {
        let members = value.as_object().ok_or_else(|| {
            let name = if prefix.is_empty() {
                "(document)"
            } else {
                prefix
            };
            field_error(name, "must be a JSON object")
        })?;
        Ok(Fields {
            prefix,
            members,
            used: Vec::new(),
        })
    }

    pub(super) fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(super) fn optional(&mut self, name: &'static str) -> Option<&'a Value> {
        self.used.push(name);
        self.members.get(name).filter(|v| !v.is_null())
    }

    pub(super) fn required(&mut self, name: &'static str) -> Result<&'a Value, ConfigError> {
        self.optional(name)
            .ok_or_else(|| field_error(self.path(name), "is missing"))
    }

    pub(super) fn required_str(&mut self, name: &'static str) -> Result<&'a str, ConfigError> {
        self.required(name)?
            .as_str()
            .ok_or_else(|| field_error(self.path(name), "must be a string"))
    }

    pub(super) fn optional_bool(
        &mut self,
        name: &'static str,
    ) -> Result<Option<bool>, ConfigError> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(field_error(self.path(name), "must be true or false")),
        }
    }

    pub(super) fn refuse_unknown(&self) -> Result<(), ConfigError> {
        match self
            .members
            .keys()
            .find(|k| !self.used.contains(&k.as_str()))
        {
            Some(unknown) => Err(field_error(
                self.path(unknown),
                "is not a known setting; remove it or check its spelling",
            )),
            None => Ok(()),
        }
    }
}
