//! Okta's authorization side: the OAuth token endpoint (client credentials with
//! `private_key_jwt`, optional DPoP with nonces) and the credential check on `/api/v1/logs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::config::ClientRegistration;
use super::dpop::{verify_proof, ProofExpectation};

pub(crate) const LOGS_SCOPE: &str = "okta.logs.read";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Okta refuses client assertions that stay valid for longer than an hour.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
const CLOCK_SKEW_SECS: u64 = 30;

/// The form posted to `/oauth2/v1/token`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenForm {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// An OAuth error answer of the token endpoint.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// Sent as the `DPoP-Nonce` header (with `use_dpop_nonce`).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            dpop_nonce: None,
        }
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::new(401, "invalid_client", description)
    }
}

/// A granted access token, as the token endpoint answers it.
#[derive(Debug)]
pub(crate) struct Grant {
    pub token_type: &'static str,
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
}

/// Why a call to `/api/v1/logs` was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401 E0000011, with the scheme for `WWW-Authenticate`.
    InvalidToken {
        scheme: &'static str,
        description: String,
    },
    /// 403 E0000006: the token works but lacks `okta.logs.read`.
    InsufficientScope { scheme: &'static str },
}

struct IssuedToken {
    client_id: String,
    scopes: Vec<String>,
    /// Thumbprint of the key a DPoP-bound token is tied to.
    jkt: Option<String>,
    expires_at: Instant,
}

pub(crate) struct AuthState {
    clients: HashMap<String, ClientRegistration>,
    ssws_tokens: HashSet<String>,
    tokens: HashMap<String, IssuedToken>,
    assertion_jtis: HashSet<String>,
    proof_jtis: HashSet<String>,
    dpop_nonce: String,
    token_ttl: Duration,
}

impl AuthState {
    pub(crate) fn new(
        clients: Vec<ClientRegistration>,
        ssws_tokens: Vec<String>,
        token_ttl: Duration,
    ) -> Self {
        AuthState {
            clients: clients
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            ssws_tokens: ssws_tokens.into_iter().collect(),
            tokens: HashMap::new(),
            assertion_jtis: HashSet::new(),
            proof_jtis: HashSet::new(),
            dpop_nonce: random_token(),
            token_ttl,
        }
    }

    pub(crate) fn register_client(&mut self, client: ClientRegistration) {
        self.clients.insert(client.client_id.clone(), client);
    }

    /// Deactivating an app also invalidates the tokens it was issued.
    pub(crate) fn set_client_active(&mut self, client_id: &str, active: bool) {
        if let Some(c) = self.clients.get_mut(client_id) {
            c.active = active;
        }
        if !active {
            self.tokens.retain(|_, t| t.client_id != client_id);
        }
    }

    pub(crate) fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Handles a client-credentials token request posted to `token_url`.
    pub(crate) fn grant(
        &mut self,
        form: &TokenForm,
        dpop_proof: Option<&str>,
        token_url: &str,
        now_s: i64,
    ) -> Result<Grant, OAuthError> {
        if form.grant_type.as_deref() != Some("client_credentials") {
            return Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ));
        }
        if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let assertion = form
            .client_assertion
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_client("client_assertion is required"))?;
        let client_id = form
            .client_id
            .clone()
            .or_else(|| unverified_claim(assertion, "iss"))
            .ok_or_else(|| OAuthError::invalid_client("client_assertion has no iss"))?;
        let client = self.clients.get(&client_id).ok_or_else(|| {
            OAuthError::invalid_client(format!("The client_id {client_id} is not registered"))
        })?;
        if !client.active {
            return Err(OAuthError::invalid_client(format!(
                "The client {client_id} is deactivated"
            )));
        }
        let jti = verify_assertion(client, assertion, token_url, now_s)
            .map_err(OAuthError::invalid_client)?;
        if self.assertion_jtis.contains(&jti) {
            return Err(OAuthError::invalid_client(
                "The client_assertion jti was already used (replay)",
            ));
        }
        let requested: Vec<String> = form
            .scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let refused: Vec<&str> = requested
            .iter()
            .filter(|s| !client.scopes.contains(s))
            .map(String::as_str)
            .collect();
        if requested.is_empty() || !refused.is_empty() {
            self.assertion_jtis.insert(jti);
            return Err(OAuthError::new(
                400,
                "invalid_scope",
                format!(
                    "The following scopes are not granted to the client: {}",
                    if requested.is_empty() {
                        "(none requested)".to_string()
                    } else {
                        refused.join(" ")
                    }
                ),
            ));
        }
        let jkt = match (dpop_proof, client.require_dpop) {
            (None, true) => {
                self.assertion_jtis.insert(jti);
                return Err(OAuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "The DPoP proof JWT header is missing",
                ));
            }
            (None, false) => None,
            (Some(proof), _) => {
                let expect = ProofExpectation {
                    method: "POST",
                    url: token_url,
                    access_token: None,
                };
                let verified = verify_proof(proof, &expect, now_s, &mut self.proof_jtis)
                    .map_err(|e| OAuthError::new(400, "invalid_dpop_proof", e))?;
                if verified.nonce.as_deref() != Some(self.dpop_nonce.as_str()) {
                    // The client retries with the nonce; its assertion stays usable for that.
                    return Err(OAuthError {
                        dpop_nonce: Some(self.dpop_nonce.clone()),
                        ..OAuthError::new(
                            400,
                            "use_dpop_nonce",
                            "Authorization server requires nonce in DPoP proof.",
                        )
                    });
                }
                Some(verified.jkt)
            }
        };
        self.assertion_jtis.insert(jti);
        let access_token = random_token();
        let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
        self.tokens.insert(
            access_token.clone(),
            IssuedToken {
                client_id,
                scopes: requested.clone(),
                jkt,
                expires_at: Instant::now() + self.token_ttl,
            },
        );
        Ok(Grant {
            token_type,
            access_token,
            expires_in: self.token_ttl.as_secs_f64().ceil() as u64,
            scope: requested.join(" "),
        })
    }

    /// Checks the credentials of an `/api/v1/logs` call to `url`.
    pub(crate) fn authorize_logs(
        &mut self,
        authorization: Option<&str>,
        dpop_proof: Option<&str>,
        url: &str,
        now_s: i64,
    ) -> Result<(), Refusal> {
        let invalid = |scheme: &'static str, description: &str| Refusal::InvalidToken {
            scheme,
            description: description.to_string(),
        };
        let authorization =
            authorization.ok_or_else(|| invalid("Bearer", "No credentials were sent"))?;
        let (scheme, credential) = authorization
            .split_once(' ')
            .map(|(s, c)| (s.to_ascii_lowercase(), c.trim()))
            .ok_or_else(|| invalid("Bearer", "The Authorization header is malformed"))?;
        match scheme.as_str() {
            "ssws" => {
                if self.ssws_tokens.contains(credential) {
                    Ok(())
                } else {
                    Err(invalid("SSWS", "The API token is not valid"))
                }
            }
            "bearer" => {
                let token = self.live_token(credential).ok_or_else(|| {
                    invalid("Bearer", "The access token is invalid, expired or revoked")
                })?;
                if token.jkt.is_some() {
                    return Err(invalid(
                        "Bearer",
                        "A DPoP-bound access token must be sent as DPoP",
                    ));
                }
                has_logs_scope(token, "Bearer")
            }
            "dpop" => {
                let token_jkt = {
                    let token = self.live_token(credential).ok_or_else(|| {
                        invalid("DPoP", "The access token is invalid, expired or revoked")
                    })?;
                    has_logs_scope(token, "DPoP")?;
                    token.jkt.clone()
                }
                .ok_or_else(|| invalid("DPoP", "The access token is not DPoP-bound"))?;
                let proof = dpop_proof
                    .ok_or_else(|| invalid("DPoP", "The DPoP proof header is missing"))?;
                let expect = ProofExpectation {
                    method: "GET",
                    url,
                    access_token: Some(credential),
                };
                let verified = verify_proof(proof, &expect, now_s, &mut self.proof_jtis)
                    .map_err(|e| invalid("DPoP", &e))?;
                if verified.jkt != token_jkt {
                    return Err(invalid(
                        "DPoP",
                        "The DPoP proof key is not the key the token is bound to",
                    ));
                }
                Ok(())
            }
            _ => Err(invalid("Bearer", "Unsupported authorization scheme")),
        }
    }

    fn live_token(&self, token: &str) -> Option<&IssuedToken> {
        self.tokens
            .get(token)
            .filter(|t| t.expires_at > Instant::now())
    }
}

fn has_logs_scope(token: &IssuedToken, scheme: &'static str) -> Result<(), Refusal> {
    if token.scopes.iter().any(|s| s == LOGS_SCOPE) {
        Ok(())
    } else {
        Err(Refusal::InsufficientScope { scheme })
    }
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn unverified_claim(jwt: &str, claim: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims[claim].as_str().map(str::to_string)
}

/// Verifies a client assertion against the client's registered keys; returns its `jti`.
fn verify_assertion(
    client: &ClientRegistration,
    assertion: &str,
    token_url: &str,
    now_s: i64,
) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| format!("client_assertion is not a valid JWT: {e}"))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(format!(
            "client_assertion alg {:?} is not supported (use RS256 or ES256)",
            header.alg
        ));
    }
    let candidates: Vec<&serde_json::Value> = client
        .public_jwks
        .iter()
        .filter(|k| header.kid.is_none() || k["kid"].as_str() == header.kid.as_deref())
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "No registered key of client {} has kid {:?}",
            client.client_id, header.kid
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = CLOCK_SKEW_SECS;
    let mut last_error = String::from("client_assertion could not be verified");
    for jwk in candidates {
        let Ok(jwk) = serde_json::from_value::<Jwk>(jwk.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation) {
            Ok(data) => {
                let exp = data.claims["exp"].as_i64().unwrap_or(i64::MAX);
                if exp - now_s > MAX_ASSERTION_LIFETIME_SECS + CLOCK_SKEW_SECS as i64 {
                    return Err("client_assertion exp must be at most one hour away".into());
                }
                return data.claims["jti"]
                    .as_str()
                    .filter(|j| !j.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| "client_assertion must carry a jti".to_string());
            }
            Err(e) => {
                last_error = match e.kind() {
                    ErrorKind::InvalidAudience => {
                        format!("The audience (aud) of client_assertion must be {token_url}")
                    }
                    ErrorKind::ExpiredSignature => "client_assertion has expired".into(),
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => format!(
                        "client_assertion iss and sub must both be the client_id {}",
                        client.client_id
                    ),
                    ErrorKind::MissingRequiredClaim(c) => {
                        format!("client_assertion lacks the {c} claim")
                    }
                    _ => "The client_assertion signature does not match any registered key".into(),
                };
            }
        }
    }
    Err(last_error)
}
