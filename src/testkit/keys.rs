//! Signing keys for tests, as Okta's admin console hands them out (JWKs, PKCS#8 PEM). Never
//! registered anywhere but the local simulator and test fakes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{json, Value};

/// A fixed RSA key pair (PKCS#8 PEM): generating one per test would cost seconds.
pub const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCaHh520GCyXanv\nFLWFZGsJHAiP3jHLwIAygHVR+4QyOPE5SIR1FSaPShIJHZIQixtatDD01bJ7CeDy\n6nGvLgHAjNEgxXjEiLgC6Hf02ko6CaIV4ClKQMzqXOlvpGVF58L2wwhtNuRTFXUA\nFqS3AGaSes7cx9zOKOKIvqd9da9eHug/OiorFSXHeEtOSDOg9y725CclyI1d5I0H\ngBjsJ3wO7zvtUNJrVb0+z8BQaFIFkUJfKmt4qxrUlJZD+z1/kQBczVT5lbBIvuQI\nG3AE/Xiv8VUUBz6OcuZYS2epF4zY/b4WMpMMq0ZTILqH5gq5zP72UuzMnQoCCGaV\nQz9jjGyrAgMBAAECggEAKFgiGXBLH+YtCg0dx6GV83iHNUIxPulRpebCz4dL/+mw\nHBLDufKjeXcmaYR4LCR+MKxi9HTMmDDp1i1RPU6J3uH+DNok1y4DHZ/FZy+NpsvG\nxns709hKzD8uTK94Y2hcPUSo/A4Wjzlau38x90X/k/DaHimjv8QsKSffqJQaKET+\nx/obqKeGI3JxJbgp/+FSAf4+IYZdIbhcPwEOB5kJO6cbE9vlSIzlL/RypLQwlr5i\n4oT0dpCAqNhXSfAwtVYwrv4scKm3l/jy4Bqp6mYkXFpaZr6WNPgttu4tYRK7h47s\n5bA0xYChjBsWvmDq0eWeYOq96i1fvFR2gjn2t1vBAQKBgQDT/8x0lbWGWY3lBmyf\nziH+dmqd/+P5skKxSVH1vA1lPeQkpnvoJwgJUXxmhnM+AnSzPAueuduKzV5T9oDG\nkrthfrdzFJK2hUl5wCLL4u5KPXmILwC3bL7XzqM6FTBxCP1kVlu9ypWb+gh9PuSX\nHRp5ILFl1qI8qJd8zNwLKxTNoQKBgQC6GuLw7nCISTL4g0l3aV/+nQBthCHWGfjp\nx2mSIynk2QlRuey2oWI1nY7/4dmK/ENFpfU2dY9KaY/oYRBM8SX9VdX3KSSEJ14Y\nMexvSy7k3/REff1w7ztUFkhQr2rFOzkqlke5qDBrbSPlSKcRFeqQuDAyqxUYh8Fy\n9uSIqKSeywKBgAm0U++iSsTzpIMvYBmQng2/7fF9nTn45wSmjpHpIdPYmXD0Dgf6\ngWurxz4KOYxFIIJz5TRG3b3k2MSPLCXq4Zj86/jgoDaqs0pXeUBMCwxq8/0/6ZB7\n8eB/HQmznpwOBUtqiJiPhXm2YF0bW+tu8Z9J19UJljOgpA6achgwyKsBAoGBAKzv\n9xs0N1YtzzOnrElOnmmXs6IROvAdynRTXgLysid6l3Jed11usjhoZU3arbC9ojXC\ndg9ZRwI6/gNOzzrwjADSFrZKgShc/M829SKmlrkQc4iCG1UqudL1sdVobKtC0WiF\npbkcVYI+NTEHRlhWKVa6Ee/DkyLsZBNU4iErtW3pAoGATeBx/YnJFls/pAdWeFAA\ngv6If9WtmT/XjEgaTtfnS64wvtu2gyUmR4NuhttCFYuVPSV/lEBpZTeC/pmlRvzO\nixn2dD7P8WVe8Kw9LvxwtX80PE3JJWgyzvacBGHubbfZj4swnizdaRlwhTfpCGE0\nJTdHUdIjZuqN1UWyQh6PNKY=\n-----END PRIVATE KEY-----\n";
/// The modulus of [`RSA_PEM`], base64url.
pub const RSA_N: &str = "mh4edtBgsl2p7xS1hWRrCRwIj94xy8CAMoB1UfuEMjjxOUiEdRUmj0oSCR2SEIsbWrQw9NWyewng8upxry4BwIzRIMV4xIi4Auh39NpKOgmiFeApSkDM6lzpb6RlRefC9sMIbTbkUxV1ABaktwBmknrO3MfczijiiL6nfXWvXh7oPzoqKxUlx3hLTkgzoPcu9uQnJciNXeSNB4AY7Cd8Du877VDSa1W9Ps_AUGhSBZFCXypreKsa1JSWQ_s9f5EAXM1U-ZWwSL7kCBtwBP14r_FVFAc-jnLmWEtnqReM2P2-FjKTDKtGUyC6h-YKucz-9lLszJ0KAghmlUM_Y4xsqw";
/// The `kid` the RSA JWKs carry.
pub const RSA_KID: &str = "rsa-1";

/// The public RSA JWK, as registered with a service app.
pub fn rsa_public_jwk() -> Value {
    json!({"kty": "RSA", "kid": RSA_KID, "alg": "RS256", "e": "AQAB", "n": RSA_N})
}

/// Okta's "Private Key (JSON)": the RSA JWK with all private parts.
pub fn rsa_private_jwk() -> Value {
    let key = rsa_key();
    let primes = key.primes();
    json!({"kty": "RSA", "kid": RSA_KID, "alg": "RS256", "e": b64(&key.e().to_bytes_be()),
        "n": b64(&key.n().to_bytes_be()), "d": b64(&key.d().to_bytes_be()),
        "p": b64(&primes[0].to_bytes_be()), "q": b64(&primes[1].to_bytes_be())})
}

/// Every secret part of the RSA key as it can appear in a secret: the private JWK members and
/// each line of the PEM body (any of them would give a large part of the key away).
pub fn rsa_secret_parts() -> Vec<String> {
    let key = rsa_key();
    let primes = key.primes();
    let mut parts = vec![
        b64(&key.d().to_bytes_be()),
        b64(&primes[0].to_bytes_be()),
        b64(&primes[1].to_bytes_be()),
    ];
    parts.extend(
        RSA_PEM
            .lines()
            .filter(|line| !line.starts_with("-----") && line.len() >= 16)
            .map(str::to_string),
    );
    parts
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).expect("the test RSA key parses")
}

/// A fresh P-256 key (ES256 assertions, DPoP proofs) with its `kid`.
pub struct EcKey {
    pub kid: String,
    secret: p256::SecretKey,
}

impl EcKey {
    pub fn generate(kid: impl Into<String>) -> EcKey {
        EcKey {
            kid: kid.into(),
            secret: p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
        }
    }

    /// The public JWK with its `kid`, as registered with a service app.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.thumbprint_jwk();
        jwk["kid"] = json!(self.kid);
        jwk
    }

    /// The public JWK without `kid` (the form a DPoP proof carries).
    pub fn thumbprint_jwk(&self) -> Value {
        let point = self.secret.public_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256",
               "x": b64(point.x().expect("an uncompressed point")),
               "y": b64(point.y().expect("an uncompressed point"))})
    }

    /// The private JWK (public members plus `d`), as a connector secret holds it.
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.public_jwk();
        jwk["d"] = json!(self.private_scalar());
        jwk
    }

    /// `d`, base64url: the part that must never appear in logs.
    pub fn private_scalar(&self) -> String {
        b64(&self.secret.to_bytes())
    }

    /// For checking signatures made with this key.
    pub fn decoding_key(&self) -> DecodingKey {
        let point = self.secret.public_key().to_encoded_point(false);
        DecodingKey::from_ec_components(
            &b64(point.x().expect("an uncompressed point")),
            &b64(point.y().expect("an uncompressed point")),
        )
        .expect("a P-256 public key")
    }

    /// For signing with this key (assertions and proofs written by hand in tests).
    pub fn encoding_key(&self) -> EncodingKey {
        let der = self
            .secret
            .to_pkcs8_der()
            .expect("a P-256 key encodes as PKCS#8");
        EncodingKey::from_ec_der(der.as_bytes())
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
