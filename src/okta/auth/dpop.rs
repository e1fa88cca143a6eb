//! DPoP (RFC 9449): proof-of-possession JWTs bound to an ephemeral P-256 key of this client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use super::keys::ec_encoding_key;
use crate::okta::error::USE_DPOP_NONCE;
use crate::okta::OktaError;

/// The nonce a server wants later proofs to carry (its `DPoP-Nonce` header).
pub(crate) fn nonce_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether a 401 says only the proof's nonce was wrong (`WWW-Authenticate: DPoP
/// error="use_dpop_nonce"`), not the token.
pub(crate) fn asks_for_new_nonce(headers: &HeaderMap) -> bool {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(USE_DPOP_NONCE))
}

/// Signs DPoP proofs and remembers the latest server nonce. Debug hides the key.
pub(crate) struct DpopSigner {
    key: EncodingKey,
    public_jwk: Jwk,
    /// Latest nonces of the token endpoint and of the API: each server rotates its own, so one
    /// must not overwrite the other.
    token_nonce: std::sync::Mutex<Option<String>>,
    api_nonce: std::sync::Mutex<Option<String>>,
}

/// Which server a nonce (and a proof) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceFor {
    TokenEndpoint,
    Api,
}

impl std::fmt::Debug for DpopSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopSigner(<redacted>)")
    }
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    htm: &'a str,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl DpopSigner {
    /// A fresh key pair per client: tokens are bound to it, so it lives as long as the token cache.
    pub(crate) fn generate() -> Result<DpopSigner, OktaError> {
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let key = ec_encoding_key(&secret)
            .map_err(|e| OktaError::Signing(format!("creating the DPoP key failed: {e}")))?;
        let point = secret.public_key().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            URL_SAFE_NO_PAD.encode(c.map(|b| &b[..]).unwrap_or_default())
        };
        let public_jwk = Jwk {
            common: CommonParameters::default(),
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: coordinate(point.x()),
                y: coordinate(point.y()),
            }),
        };
        Ok(DpopSigner {
            key,
            public_jwk,
            token_nonce: std::sync::Mutex::new(None),
            api_nonce: std::sync::Mutex::new(None),
        })
    }

    /// Remembers the nonce a server asked for; later proofs carry it.
    pub(crate) fn set_nonce(&self, server: NonceFor, nonce: &str) {
        *self.slot(server).lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce.to_owned());
    }

    fn current_nonce(&self, server: NonceFor) -> Option<String> {
        self.slot(server)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn slot(&self, server: NonceFor) -> &std::sync::Mutex<Option<String>> {
        match server {
            NonceFor::TokenEndpoint => &self.token_nonce,
            NonceFor::Api => &self.api_nonce,
        }
    }

    /// A proof for one request. `access_token` is given on API calls (bound via `ath`, with the
    /// API's nonce); without it the proof is for the token endpoint and carries that nonce.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, OktaError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.public_jwk.clone());
        let claims = ProofClaims {
            htm: method,
            htu: htu.to_string(),
            iat: now.unix_timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            nonce: self.current_nonce(if access_token.is_some() {
                NonceFor::Api
            } else {
                NonceFor::TokenEndpoint
            }),
            ath: access_token.map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes()))),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| OktaError::Signing(format!("signing the DPoP proof failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::Value;

    fn verify(proof: &str) -> (Header, Value) {
        let header = jsonwebtoken::decode_header(proof).unwrap();
        let public = DecodingKey::from_jwk(header.jwk.as_ref().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(proof, &public, &validation)
            .unwrap()
            .claims;
        (header, claims)
    }

    #[test]
    fn token_request_proof_has_typ_jwk_htm_htu_and_no_ath() {
        let signer = DpopSigner::generate().unwrap();
        let url = Url::parse("https://acme.okta.com/oauth2/v1/token").unwrap();
        let now = OffsetDateTime::now_utc();
        let (header, claims) = verify(&signer.proof("POST", &url, None, now).unwrap());
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(header.alg, Algorithm::ES256);
        let jwk = serde_json::to_value(header.jwk.unwrap()).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none(), "only the public key travels");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://acme.okta.com/oauth2/v1/token");
        assert_eq!(claims["iat"], now.unix_timestamp());
        assert!(claims["jti"].as_str().is_some());
        assert!(claims.get("ath").is_none());
        assert!(claims.get("nonce").is_none());
    }

    #[test]
    fn api_proof_strips_query_and_binds_token_and_nonce() {
        let signer = DpopSigner::generate().unwrap();
        signer.set_nonce(NonceFor::Api, "n-123");
        let url = Url::parse("https://acme.okta.com/api/v1/logs?after=abc&limit=5#frag").unwrap();
        let (_, claims) = verify(
            &signer
                .proof("GET", &url, Some("token-1"), OffsetDateTime::now_utc())
                .unwrap(),
        );
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://acme.okta.com/api/v1/logs");
        assert_eq!(claims["nonce"], "n-123");
        let expected_ath = URL_SAFE_NO_PAD.encode(Sha256::digest(b"token-1"));
        assert_eq!(claims["ath"], expected_ath.as_str());
    }

    #[test]
    fn token_endpoint_and_api_nonces_are_kept_apart() {
        let signer = DpopSigner::generate().unwrap();
        signer.set_nonce(NonceFor::TokenEndpoint, "token-nonce");
        signer.set_nonce(NonceFor::Api, "api-nonce");
        let now = OffsetDateTime::now_utc();
        let token_url = Url::parse("https://acme.okta.com/oauth2/v1/token").unwrap();
        let api_url = Url::parse("https://acme.okta.com/api/v1/logs").unwrap();
        let (_, token_claims) = verify(&signer.proof("POST", &token_url, None, now).unwrap());
        let (_, api_claims) = verify(&signer.proof("GET", &api_url, Some("t"), now).unwrap());
        assert_eq!(token_claims["nonce"], "token-nonce");
        assert_eq!(api_claims["nonce"], "api-nonce");
    }
}
