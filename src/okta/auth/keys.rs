//! Private keys for client assertions: Okta's "Private Key (JSON)" (a JWK) or a PEM file,
//! converted into a `jsonwebtoken` signing key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Okta refuses shorter RSA keys, and the signing backend does too.
const MIN_RSA_BITS: usize = 2048;

/// Why a private key could not be used. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported key type (kty) {0:?}: use an RSA or EC P-256 private key")]
    UnsupportedKty(String),
    #[error("unsupported curve {0:?}: only EC keys on P-256 are supported")]
    UnsupportedCurve(String),
    #[error("unsupported alg {alg:?} for a {kty} key: use {expected}")]
    UnsupportedAlg {
        alg: String,
        kty: &'static str,
        expected: &'static str,
    },
    #[error("the JWK has no private part `d`: this is a public key; paste the private key (JSON) Okta showed when the key was created")]
    MissingPrivatePart,
    #[error("the JWK has no `{0}` member")]
    MissingMember(&'static str),
    #[error("JWK member `{0}` is not valid base64url")]
    BadBase64(&'static str),
    #[error("the JWK must be a JSON object")]
    NotAnObject,
    #[error("the RSA key is invalid ({0}); paste the key exactly as Okta generated it")]
    InvalidRsa(String),
    #[error("the RSA key has {0} bits; use a key of at least 2048 bits")]
    RsaTooShort(usize),
    #[error("the EC key is invalid ({0}); paste the key exactly as Okta generated it")]
    InvalidEc(String),
    #[error("this PEM is a public key; paste the private key")]
    PemPublicKey,
    #[error("encrypted PEM keys are not supported; export the key unencrypted (PKCS#8 or PKCS#1)")]
    PemEncrypted,
    #[error("not a usable PEM private key ({0}); expected PKCS#8 (RSA or EC P-256) or PKCS#1 RSA")]
    InvalidPem(String),
}

/// A private key ready to sign client assertions. Debug never shows key material.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// Reads a private JWK (`kty` RSA or EC P-256, with `d`).
    pub fn from_jwk(jwk: &Value) -> Result<SigningKey, KeyError> {
        let members = jwk.as_object().ok_or(KeyError::NotAnObject)?;
        let kty = string_member(members, "kty")?;
        let kid = members
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let alg = members.get("alg").and_then(Value::as_str);
        let (algorithm, key) = match kty {
            "RSA" => {
                check_alg(alg, "RSA", "RS256")?;
                (Algorithm::RS256, rsa_from_jwk(members)?)
            }
            "EC" => {
                check_alg(alg, "EC", "ES256")?;
                (Algorithm::ES256, ec_from_jwk(members)?)
            }
            other => return Err(KeyError::UnsupportedKty(other.to_owned())),
        };
        Ok(SigningKey {
            alg: algorithm,
            kid,
            key,
        })
    }

    /// Reads a PEM private key: PKCS#8 (RSA or EC P-256), PKCS#1 RSA or SEC1 EC. PEM keys have no kid.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let pem = pem.trim();
        let (alg, key) = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            let key = RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| KeyError::InvalidPem(e.to_string()))?;
            (Algorithm::RS256, rsa_encoding_key(&key)?)
        } else if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            let key = p256::SecretKey::from_sec1_pem(pem)
                .map_err(|e| KeyError::InvalidPem(e.to_string()))?;
            (Algorithm::ES256, ec_encoding_key(&key)?)
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
                (Algorithm::RS256, rsa_encoding_key(&key)?)
            } else {
                let key = p256::SecretKey::from_pkcs8_pem(pem).map_err(|_| {
                    KeyError::InvalidPem("PKCS#8 key is neither RSA nor EC P-256".into())
                })?;
                (Algorithm::ES256, ec_encoding_key(&key)?)
            }
        } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(KeyError::PemEncrypted);
        } else if pem.starts_with("-----BEGIN PUBLIC KEY-----")
            || pem.starts_with("-----BEGIN RSA PUBLIC KEY-----")
        {
            return Err(KeyError::PemPublicKey);
        } else {
            return Err(KeyError::InvalidPem("no PEM private key header".into()));
        };
        Ok(SigningKey {
            alg,
            kid: None,
            key,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The JWK `kid`, sent in the assertion header so Okta can pick the matching public key.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

fn check_alg(alg: Option<&str>, kty: &'static str, expected: &'static str) -> Result<(), KeyError> {
    match alg {
        None => Ok(()),
        Some(alg) if alg == expected => Ok(()),
        Some(alg) => Err(KeyError::UnsupportedAlg {
            alg: alg.to_owned(),
            kty,
            expected,
        }),
    }
}

fn string_member<'a>(
    members: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, KeyError> {
    members
        .get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::MissingMember(name))
}

fn bytes_member(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = string_member(members, name)?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map(Zeroizing::new)
        .map_err(|_| KeyError::BadBase64(name))
}

fn optional_uint(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<BigUint>, KeyError> {
    if members.contains_key(name) {
        Ok(Some(BigUint::from_bytes_be(&bytes_member(members, name)?)))
    } else {
        Ok(None)
    }
}

fn rsa_from_jwk(members: &Map<String, Value>) -> Result<EncodingKey, KeyError> {
    if !members.contains_key("d") {
        return Err(KeyError::MissingPrivatePart);
    }
    let n = BigUint::from_bytes_be(&bytes_member(members, "n")?);
    let e = BigUint::from_bytes_be(&bytes_member(members, "e")?);
    let d = BigUint::from_bytes_be(&bytes_member(members, "d")?);
    // p and q are optional: the rsa crate recovers them from n, e and d; dp/dq/qi are
    // recomputed from the primes, so they are not needed either.
    let primes = match (optional_uint(members, "p")?, optional_uint(members, "q")?) {
        (Some(p), Some(q)) => vec![p, q],
        _ => Vec::new(),
    };
    let key = RsaPrivateKey::from_components(n, e, d, primes)
        .map_err(|e| KeyError::InvalidRsa(e.to_string()))?;
    rsa_encoding_key(&key)
}

fn rsa_encoding_key(key: &RsaPrivateKey) -> Result<EncodingKey, KeyError> {
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooShort(bits));
    }
    key.validate()
        .map_err(|e| KeyError::InvalidRsa(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| KeyError::InvalidRsa(e.to_string()))?;
    Ok(EncodingKey::from_rsa_der(der.as_bytes()))
}

fn ec_from_jwk(members: &Map<String, Value>) -> Result<EncodingKey, KeyError> {
    let crv = string_member(members, "crv")?;
    if crv != "P-256" {
        return Err(KeyError::UnsupportedCurve(crv.to_owned()));
    }
    if !members.contains_key("d") {
        return Err(KeyError::MissingPrivatePart);
    }
    let d = bytes_member(members, "d")?;
    let x = bytes_member(members, "x")?;
    let y = bytes_member(members, "y")?;
    let key = p256::SecretKey::from_slice(&d).map_err(|e| KeyError::InvalidEc(e.to_string()))?;
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key(), false);
    if point.x().map(|v| &v[..]) != Some(x.as_slice())
        || point.y().map(|v| &v[..]) != Some(y.as_slice())
    {
        return Err(KeyError::InvalidEc(
            "x and y do not belong to the private part d".into(),
        ));
    }
    ec_encoding_key(&key)
}

pub(crate) fn ec_encoding_key(key: &p256::SecretKey) -> Result<EncodingKey, KeyError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::InvalidEc(e.to_string()))?;
    Ok(EncodingKey::from_ec_der(der.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use rsa::traits::PrivateKeyParts;
    use serde_json::json;
    use std::sync::OnceLock;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// RSA key generation is slow in debug builds: one key serves every test.
    pub(crate) fn test_rsa_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate RSA key")
        })
    }

    pub(crate) fn rsa_jwk(key: &RsaPrivateKey, kid: &str) -> Value {
        let primes = key.primes();
        json!({
            "kty": "RSA", "kid": kid, "use": "sig",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
            "d": b64(&key.d().to_bytes_be()),
            "p": b64(&primes[0].to_bytes_be()), "q": b64(&primes[1].to_bytes_be()),
        })
    }

    pub(crate) fn ec_jwk(key: &p256::SecretKey, kid: &str) -> Value {
        let point = key.public_key().to_encoded_point(false);
        json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
            "d": b64(&key.to_bytes()),
        })
    }

    fn rsa_decoding_key(key: &RsaPrivateKey) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be())
    }

    fn ec_decoding_key(key: &p256::SecretKey) -> DecodingKey {
        let point = key.public_key().to_encoded_point(false);
        DecodingKey::from_ec_components(&b64(point.x().unwrap()), &b64(point.y().unwrap())).unwrap()
    }

    /// Signs a tiny token and verifies it with the public key: proves the conversion kept the key.
    fn signs_verifiably(signing: &SigningKey, public: &DecodingKey) {
        let header = jsonwebtoken::Header::new(signing.algorithm());
        let claims = json!({"sub": "probe", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(&header, &claims, signing.encoding_key()).unwrap();
        let mut validation = Validation::new(signing.algorithm());
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(&token, public, &validation).expect("signature verifies");
    }

    #[test]
    fn rsa_jwk_signs_rs256_with_its_kid() {
        let key = test_rsa_key();
        let signing = SigningKey::from_jwk(&rsa_jwk(key, "k1")).unwrap();
        assert_eq!(signing.algorithm(), Algorithm::RS256);
        assert_eq!(signing.kid(), Some("k1"));
        signs_verifiably(&signing, &rsa_decoding_key(key));
    }

    #[test]
    fn rsa_jwk_without_primes_recovers_them() {
        let key = test_rsa_key();
        let mut jwk = rsa_jwk(key, "k1");
        jwk.as_object_mut().unwrap().remove("p");
        jwk.as_object_mut().unwrap().remove("q");
        let signing = SigningKey::from_jwk(&jwk).unwrap();
        signs_verifiably(&signing, &rsa_decoding_key(key));
    }

    #[test]
    fn ec_jwk_signs_es256() {
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let signing = SigningKey::from_jwk(&ec_jwk(&key, "ec1")).unwrap();
        assert_eq!(signing.algorithm(), Algorithm::ES256);
        assert_eq!(signing.kid(), Some("ec1"));
        signs_verifiably(&signing, &ec_decoding_key(&key));
    }

    #[test]
    fn pem_keys_of_every_supported_form_sign() {
        let rsa_key = test_rsa_key();
        let ec_key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let le = rsa::pkcs8::LineEnding::LF;
        let pkcs1 = rsa_key.to_pkcs1_pem(le).unwrap();
        let pkcs8_rsa = rsa_key.to_pkcs8_pem(le).unwrap();
        let pkcs8_ec = ec_key.to_pkcs8_pem(le).unwrap();
        let sec1_ec = ec_key.to_sec1_pem(le).unwrap();
        for (pem, public) in [
            (pkcs1.as_str(), rsa_decoding_key(rsa_key)),
            (pkcs8_rsa.as_str(), rsa_decoding_key(rsa_key)),
            (pkcs8_ec.as_str(), ec_decoding_key(&ec_key)),
            (sec1_ec.as_str(), ec_decoding_key(&ec_key)),
        ] {
            let signing = SigningKey::from_pem(pem).unwrap();
            assert_eq!(signing.kid(), None);
            signs_verifiably(&signing, &public);
        }
    }

    #[test]
    fn unusable_jwks_are_refused_with_the_reason() {
        let ec_key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let mut public_only = ec_jwk(&ec_key, "e");
        public_only.as_object_mut().unwrap().remove("d");
        let mut bad_b64 = ec_jwk(&ec_key, "e");
        bad_b64["d"] = json!("not*base64");
        let mut wrong_alg = ec_jwk(&ec_key, "e");
        wrong_alg["alg"] = json!("ES384");
        let mut wrong_curve = ec_jwk(&ec_key, "e");
        wrong_curve["crv"] = json!("P-384");
        let cases = [
            (public_only, KeyError::MissingPrivatePart),
            (bad_b64, KeyError::BadBase64("d")),
            (
                wrong_alg,
                KeyError::UnsupportedAlg {
                    alg: "ES384".into(),
                    kty: "EC",
                    expected: "ES256",
                },
            ),
            (wrong_curve, KeyError::UnsupportedCurve("P-384".into())),
            (
                json!({"kty": "oct", "k": "abc"}),
                KeyError::UnsupportedKty("oct".into()),
            ),
            (json!("a string"), KeyError::NotAnObject),
            (
                json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                KeyError::MissingPrivatePart,
            ),
        ];
        for (jwk, expected) in cases {
            assert_eq!(SigningKey::from_jwk(&jwk).unwrap_err(), expected, "{jwk}");
        }
    }

    #[test]
    fn public_and_encrypted_pems_are_refused() {
        let ec_key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let public = p256::pkcs8::EncodePublicKey::to_public_key_pem(
            &ec_key.public_key(),
            rsa::pkcs8::LineEnding::LF,
        )
        .unwrap();
        assert_eq!(
            SigningKey::from_pem(&public).unwrap_err(),
            KeyError::PemPublicKey
        );
        assert_eq!(
            SigningKey::from_pem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n").unwrap_err(),
            KeyError::PemEncrypted
        );
        assert!(matches!(
            SigningKey::from_pem("hello").unwrap_err(),
            KeyError::InvalidPem(_)
        ));
    }

    #[test]
    fn debug_hides_key_material() {
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let jwk = ec_jwk(&key, "ec1");
        let shown = format!("{:?}", SigningKey::from_jwk(&jwk).unwrap());
        assert!(!shown.contains(jwk["d"].as_str().unwrap()));
        assert!(shown.contains("<redacted>"));
    }
}
