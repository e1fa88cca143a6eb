//! The document's `auth` object: an SSWS token, or an OAuth service app with its keys.

use serde_json::Value;

use super::fields::{field_error, Fields};
use super::ConfigError;
use crate::okta::auth::keys::SigningKey;
use crate::okta::{Credentials, OAuth2Credentials, LOGS_READ_SCOPE};
use crate::secrets::SecretString;

pub(super) fn parse_auth(value: &Value) -> Result<Credentials, ConfigError> {
    let mut fields = Fields::new(value, "auth")?;
    let auth = match fields.required_str("type")? {
        "ssws" => {
            let token = fields.required_str("token")?.trim();
            if token.is_empty() {
                return Err(field_error("auth.token", "is empty; paste the API token"));
            }
            Credentials::Ssws {
                token: SecretString::new(token.to_owned()),
            }
        }
        "oauth2" => {
            let client_id = fields.required_str("client_id")?.trim().to_owned();
            if client_id.is_empty() {
                return Err(field_error(
                    "auth.client_id",
                    "is empty; copy the Client ID from the service app's General tab",
                ));
            }
            let private_keys = parse_keys(fields.required("private_key")?)?;
            let scopes = match fields.optional("scopes") {
                None => vec![LOGS_READ_SCOPE.to_owned()],
                Some(value) => parse_scopes(value)?,
            };
            let dpop = fields.optional_bool("dpop")?.unwrap_or(false);
            Credentials::OAuth2(OAuth2Credentials {
                client_id,
                private_keys,
                scopes,
                dpop,
            })
        }
        other => {
            return Err(field_error(
                "auth.type",
                format!("{other:?} is not supported; use \"oauth2\" or \"ssws\""),
            ))
        }
    };
    fields.refuse_unknown()?;
    Ok(auth)
}

fn parse_keys(value: &Value) -> Result<Vec<SigningKey>, ConfigError> {
    let parse_one = |value: &Value, field: String| match value {
        Value::String(pem) => {
            SigningKey::from_pem(pem).map_err(|source| ConfigError::Key { field, source })
        }
        Value::Object(_) => {
            SigningKey::from_jwk(value).map_err(|source| ConfigError::Key { field, source })
        }
        _ => Err(field_error(
            field,
            "must be a private JWK object or a PEM string",
        )),
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(field_error(
            "auth.private_key",
            "is an empty list; add at least one private key",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_one(item, format!("auth.private_key[{i}]")))
            .collect(),
        single => Ok(vec![parse_one(single, "auth.private_key".to_owned())?]),
    }
}

fn parse_scopes(value: &Value) -> Result<Vec<String>, ConfigError> {
    let scopes: Option<Vec<String>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    match scopes {
        Some(scopes)
            if !scopes.is_empty() && scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')) =>
        {
            Ok(scopes)
        }
        _ => Err(field_error(
            "auth.scopes",
            "must be a non-empty list of scope names, e.g. [\"okta.logs.read\"]",
        )),
    }
}
