//! The credentials a client authenticates with, as validated at load.

use super::keys::SigningKey;
use crate::secrets::SecretString;

/// How the connector authenticates to Okta.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An API token (`Authorization: SSWS <token>`).
    Ssws { token: SecretString },
    /// A service app using client credentials with `private_key_jwt` (recommended).
    OAuth2(OAuth2Credentials),
}

#[derive(Debug, Clone)]
pub struct OAuth2Credentials {
    pub client_id: String,
    /// Tried in order; several keys allow rotation without downtime.
    pub private_keys: Vec<SigningKey>,
    pub scopes: Vec<String>,
    pub dpop: bool,
}
