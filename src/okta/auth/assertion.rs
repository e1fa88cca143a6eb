//! The `private_key_jwt` client assertion (RFC 7523) Okta's token endpoint expects.

use jsonwebtoken::Header;
use serde::Serialize;
use time::OffsetDateTime;

use super::keys::SigningKey;
use crate::okta::OktaError;
use crate::secrets::SecretString;

/// Okta refuses assertions valid for more than an hour; five minutes is plenty for one request.
const ASSERTION_LIFETIME_SECS: i64 = 300;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Signs a fresh assertion (new `jti` each time: Okta rejects replays).
pub(crate) fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    token_url: &str,
    now: OffsetDateTime,
) -> Result<SecretString, OktaError> {
    let mut header = Header::new(key.algorithm());
    header.kid = key.kid().map(str::to_owned);
    let iat = now.unix_timestamp();
    let claims = AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: token_url,
        iat,
        exp: iat + ASSERTION_LIFETIME_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&header, &claims, key.encoding_key())
        .map(SecretString::new)
        .map_err(|e| OktaError::Signing(format!("signing the client assertion failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::auth::keys::tests::{rsa_jwk, test_rsa_key};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use rsa::traits::PublicKeyParts;
    use serde_json::Value;

    #[test]
    fn assertion_carries_client_audience_kid_and_five_minute_expiry() {
        let rsa_key = test_rsa_key();
        let key = SigningKey::from_jwk(&rsa_jwk(rsa_key, "kid-7")).unwrap();
        let aud = "https://acme.okta.com/oauth2/v1/token";
        let now = OffsetDateTime::now_utc();
        let first = client_assertion(&key, "0oaclient", aud, now).unwrap();
        let second = client_assertion(&key, "0oaclient", aud, now).unwrap();

        let public = DecodingKey::from_rsa_raw_components(
            &rsa_key.n().to_bytes_be(),
            &rsa_key.e().to_bytes_be(),
        );
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[aud]);
        validation.set_issuer(&["0oaclient"]);
        let decoded = jsonwebtoken::decode::<Value>(first.expose(), &public, &validation).unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some("kid-7"));
        assert_eq!(decoded.header.alg, Algorithm::RS256);
        let claims = decoded.claims;
        assert_eq!(claims["sub"], "0oaclient");
        assert_eq!(claims["iat"], now.unix_timestamp());
        assert_eq!(claims["exp"], now.unix_timestamp() + 300);

        let other = jsonwebtoken::decode::<Value>(second.expose(), &public, &validation).unwrap();
        assert_ne!(
            claims["jti"], other.claims["jti"],
            "every assertion has its own jti"
        );
    }

    #[test]
    fn pem_key_assertion_has_no_kid() {
        let pem = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(test_rsa_key(), Default::default())
            .unwrap();
        let key = SigningKey::from_pem(&pem).unwrap();
        let token = client_assertion(
            &key,
            "c",
            "https://a.okta.com/oauth2/v1/token",
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid, None);
    }
}
