//! DPoP proof verification (RFC 9449) for the token endpoint and for API calls.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use url::Url;

/// How far a proof's `iat` may be from the server clock.
const IAT_WINDOW_SECS: i64 = 300;

/// What a proof must be bound to.
pub(crate) struct ProofExpectation<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The access token the proof accompanies (API calls), checked through `ath`.
    pub access_token: Option<&'a str>,
}

/// A proof whose signature and claims checked out.
#[derive(Debug)]
pub(crate) struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's public key.
    pub jkt: String,
    pub nonce: Option<String>,
}

/// The `ath` claim value for an access token.
pub(crate) fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn without_query(url: &str) -> Option<String> {
    let mut u = Url::parse(url).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// Verifies `proof`; `seen_jtis` remembers proof ids so a proof cannot be replayed.
pub(crate) fn verify_proof(
    proof: &str,
    expect: &ProofExpectation<'_>,
    now_s: i64,
    seen_jtis: &mut HashSet<String>,
) -> Result<VerifiedProof, String> {
    let header = jsonwebtoken::decode_header(proof)
        .map_err(|e| format!("DPoP proof is not a valid JWT: {e}"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err("DPoP proof typ must be dpop+jwt".into());
    }
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(format!("DPoP proof alg {:?} is not supported", header.alg));
    }
    let jwk = header
        .jwk
        .as_ref()
        .ok_or("DPoP proof header must carry the public jwk")?;
    if raw_header_has_private_key(proof) {
        return Err("DPoP proof jwk must not contain a private key".into());
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("DPoP proof jwk is unusable: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<serde_json::Value>(proof, &key, &validation)
        .map_err(|e| format!("DPoP proof signature or claims are invalid: {e}"))?
        .claims;
    if claims["htm"].as_str() != Some(expect.method) {
        return Err(format!("DPoP proof htm must be {}", expect.method));
    }
    let htu = claims["htu"].as_str().and_then(without_query);
    if htu.is_none() || htu != without_query(expect.url) {
        return Err(format!("DPoP proof htu must be {}", expect.url));
    }
    let iat = claims["iat"].as_i64().ok_or("DPoP proof lacks iat")?;
    if (iat - now_s).abs() > IAT_WINDOW_SECS {
        return Err("DPoP proof iat is too far from the current time".into());
    }
    if let Some(token) = expect.access_token {
        if claims["ath"].as_str() != Some(access_token_hash(token).as_str()) {
            return Err("DPoP proof ath does not match the access token".into());
        }
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or("DPoP proof lacks jti")?;
    if !seen_jtis.insert(jti.to_string()) {
        return Err("DPoP proof jti was already used".into());
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("DPoP proof jwk has no thumbprint: {e}"))?;
    Ok(VerifiedProof {
        jkt,
        nonce: claims["nonce"].as_str().map(str::to_string),
    })
}

fn raw_header_has_private_key(jwt: &str) -> bool {
    jwt.split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|h| h["jwk"].get("d").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    struct Key {
        encoding: EncodingKey,
        jwk: serde_json::Value,
    }

    /// A P-256 key made for these tests only.
    const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG66ZdnCCW4W6zz76\nTbPuCUTly/8AgcAJXftXHlCxrT+hRANCAAQLiVa0FcwR2QMx/1bdlGdzGTFOzGFM\nxw+05eg275G477mKIn+NWxOxZ6TgkLoVDNE0W+GQss78XX9QQaTyW2MW\n-----END PRIVATE KEY-----\n";

    fn key() -> Key {
        Key {
            encoding: EncodingKey::from_ec_pem(TEST_KEY_PEM.as_bytes()).unwrap(),
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": "C4lWtBXMEdkDMf9W3ZRncxkxTsxhTMcPtOXoNu-RuO8",
                "y": "uYoif41bE7FnpOCQuhUM0TRb4ZCyzvxdf1BBpPJbYxY"}),
        }
    }

    fn proof(k: &Key, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(k.jwk.clone()).unwrap());
        jsonwebtoken::encode(&header, &claims, &k.encoding).unwrap()
    }

    const URL: &str = "http://127.0.0.1:9/api/v1/logs";

    #[test]
    fn valid_proof_yields_the_key_thumbprint_and_cannot_be_replayed() {
        let k = key();
        let p = proof(
            &k,
            serde_json::json!({"htm": "GET", "htu": URL, "iat": 1000, "jti": "a",
            "ath": access_token_hash("tok")}),
        );
        let expect = ProofExpectation {
            method: "GET",
            url: &format!("{URL}?limit=5"),
            access_token: Some("tok"),
        };
        let mut seen = HashSet::new();
        let verified = verify_proof(&p, &expect, 1010, &mut seen).unwrap();
        assert_eq!(verified.jkt.len(), 43);
        assert!(verify_proof(&p, &expect, 1010, &mut seen)
            .unwrap_err()
            .contains("jti"));
    }

    #[test]
    fn proofs_bound_to_something_else_are_refused() {
        let k = key();
        let expect = ProofExpectation {
            method: "GET",
            url: URL,
            access_token: Some("tok"),
        };
        let cases = [
            (
                serde_json::json!({"htm": "POST", "htu": URL, "iat": 1000, "jti": "1", "ath": access_token_hash("tok")}),
                "htm",
            ),
            (
                serde_json::json!({"htm": "GET", "htu": "http://other/x", "iat": 1000, "jti": "2", "ath": access_token_hash("tok")}),
                "htu",
            ),
            (
                serde_json::json!({"htm": "GET", "htu": URL, "iat": 1, "jti": "3", "ath": access_token_hash("tok")}),
                "iat",
            ),
            (
                serde_json::json!({"htm": "GET", "htu": URL, "iat": 1000, "jti": "4", "ath": access_token_hash("other")}),
                "ath",
            ),
        ];
        for (claims, complaint) in cases {
            let err =
                verify_proof(&proof(&k, claims), &expect, 1000, &mut HashSet::new()).unwrap_err();
            assert!(err.contains(complaint), "{err}");
        }
    }
}
