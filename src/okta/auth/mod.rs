//! How requests to Okta are authorized: SSWS API tokens or OAuth 2.0 service-app tokens
//! (optionally DPoP-bound).

mod assertion;
mod credentials;
mod dpop;
pub mod keys;
mod oauth;

pub use credentials::{Credentials, OAuth2Credentials};
pub(crate) use dpop::{asks_for_new_nonce, nonce_in};

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use crate::okta::stats::Counters;
use crate::okta::{OktaError, OrgUrl};
use crate::secrets::SecretString;

pub(crate) use oauth::describe_transport;
use oauth::{AccessToken, OAuthAuth, OAuthSettings};

/// The headers that authorize one request. Debug hides them.
pub(crate) struct RequestAuth {
    pub(crate) authorization: SecretString,
    pub(crate) dpop_proof: Option<String>,
    token: Option<AccessToken>,
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestAuth(<redacted>)")
    }
}

#[derive(Debug)]
pub(crate) enum Authenticator {
    Ssws(SecretString),
    // Boxed: the OAuth state (keys, cache, DPoP signer) dwarfs an SSWS token.
    OAuth(Box<OAuthAuth>),
}

impl Authenticator {
    pub(crate) fn new(
        credentials: &Credentials,
        org: &OrgUrl,
        http: reqwest::Client,
        request_timeout: Duration,
        renew_margin: Duration,
        counters: Arc<Counters>,
    ) -> Result<Authenticator, OktaError> {
        Ok(match credentials {
            Credentials::Ssws { token } => Authenticator::Ssws(token.clone()),
            Credentials::OAuth2(oauth) => Authenticator::OAuth(Box::new(OAuthAuth::new(
                oauth,
                org,
                OAuthSettings {
                    http,
                    request_timeout,
                    renew_margin,
                    counters,
                },
            )?)),
        })
    }

    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Authenticator::Ssws(_) => "ssws",
            Authenticator::OAuth(_) => "oauth2",
        }
    }

    pub(crate) fn key_id(&self) -> Option<String> {
        match self {
            Authenticator::Ssws(_) => None,
            Authenticator::OAuth(oauth) => oauth.key_id(),
        }
    }

    pub(crate) fn uses_dpop(&self) -> bool {
        matches!(self, Authenticator::OAuth(oauth) if oauth.dpop().is_some())
    }

    /// Headers for one request to `url`, renewing the token first if it is close to expiry.
    pub(crate) async fn authorize(
        &self,
        method: &str,
        url: &Url,
        deadline: Instant,
    ) -> Result<RequestAuth, OktaError> {
        match self {
            Authenticator::Ssws(token) => Ok(RequestAuth {
                authorization: SecretString::new(format!("SSWS {}", token.expose())),
                dpop_proof: None,
                token: None,
            }),
            Authenticator::OAuth(oauth) => {
                let token = oauth.access_token(deadline).await?;
                let (scheme, dpop_proof) = match oauth.dpop() {
                    Some(dpop) => (
                        "DPoP",
                        Some(dpop.proof(
                            method,
                            url,
                            Some(token.value.expose()),
                            OffsetDateTime::now_utc(),
                        )?),
                    ),
                    None => ("Bearer", None),
                };
                Ok(RequestAuth {
                    authorization: SecretString::new(format!("{scheme} {}", token.value.expose())),
                    dpop_proof,
                    token: Some(token),
                })
            }
        }
    }

    /// After a 401: drops the refused token so the next `authorize` fetches a new one.
    /// Returns false when there is nothing to renew (an SSWS token is what it is).
    pub(crate) async fn renew_after_rejection(&self, used: &RequestAuth) -> bool {
        match (self, &used.token) {
            (Authenticator::OAuth(oauth), Some(token)) => {
                oauth.invalidate(token).await;
                true
            }
            _ => false,
        }
    }

    /// Takes the nonce a DPoP server asked for. False when DPoP is off.
    pub(crate) fn accept_dpop_nonce(&self, nonce: &str) -> bool {
        match self {
            Authenticator::OAuth(oauth) => match oauth.dpop() {
                Some(dpop) => {
                    dpop.set_nonce(dpop::NonceFor::Api, nonce);
                    true
                }
                None => false,
            },
            Authenticator::Ssws(_) => false,
        }
    }
}
