//! Client authentication with a signed JWT: `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID
//! Connect Core §9).
//!
//! Owns the checks of a client assertion: the signature by one of the client's registered
//! public keys, with an algorithm from an allow-list (never `none`, never an HMAC, and only
//! the algorithm of the key that verifies it); `iss` and `sub` both the client id; `aud`
//! naming the token endpoint or the issuer; `exp` required and not too far ahead; `nbf` and
//! `iat` honoured with a small leeway; and `jti` required and accepted once, in storage every
//! node shares. Every failure is `invalid_client` (RFC 7523 §3.2). Time comes from the
//! context, not from the JWT library.
//!
//! The key handling ([`ClientKeys`], [`ClientKeys::verify_signature`]) is shared with the
//! JWT-bearer grant ([`crate::grant::jwt_bearer`]), whose trusted issuers register keys the
//! same way; the leeway and the longest lifetime are the configuration's
//! (`assertion_leeway`, `assertion_max_lifetime`).
//!
//! `client_secret_jwt` is not offered: it needs the client secret itself on the server,
//! and Tessera keeps only hashes of secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::Config;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::model::ClientRecord;
use crate::resource::Audience;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted for client assertions.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// The registered keys of a client, as stored: a JWKS plus PEM-encoded public keys.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
pub struct ClientKeys {
    /// JWKs.
    #[serde(default)]
    pub keys: Vec<Jwk>,
    /// PEM public keys (SubjectPublicKeyInfo).
    #[serde(default)]
    pub pems: Vec<String>,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// Not a compact JWS with a JSON header.
    Malformed,
    /// `alg` is not on the allow-list.
    Algorithm,
    /// The stored keys cannot be used.
    Keys,
    /// No key verifies it.
    Signature,
}

/// A usable verification key.
struct Key {
    kid: Option<String>,
    algs: &'static [Algorithm],
    key: DecodingKey,
}

impl ClientKeys {
    /// Parses the stored form, checking that every key is usable.
    pub fn parse(stored: &str) -> Result<Self, String> {
        let keys: ClientKeys =
            serde_json::from_str(stored).map_err(|e| format!("not a key set: {e}"))?;
        let usable = keys.decoding_keys()?;
        if usable.is_empty() {
            return Err("no public key given".into());
        }
        Ok(keys)
    }

    /// Builds a key set from a JWKS document (`{"keys": [...]}`).
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys = ClientKeys {
            keys: set.keys,
            pems: Vec::new(),
        };
        keys.decoding_keys()?;
        Ok(keys)
    }

    /// The usable signing keys of a JWKS published by a third party: keys for encryption,
    /// symmetric keys and unsupported types are left out rather than refused; anything
    /// unreadable gives an empty set.
    pub fn from_published_jwks(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Published {
            keys: Vec<serde_json::Value>,
        }
        let keys = serde_json::from_str::<Published>(text)
            .map(|doc| doc.keys)
            .unwrap_or_default()
            .into_iter()
            // Each key alone: one this library cannot read does not hide the others.
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter(|jwk| {
                !matches!(
                    jwk.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                )
            })
            .filter(|jwk| {
                ClientKeys {
                    keys: vec![jwk.clone()],
                    pems: Vec::new(),
                }
                .decoding_keys()
                .is_ok()
            })
            .collect();
        ClientKeys {
            keys,
            pems: Vec::new(),
        }
    }

    /// Adds a PEM public key.
    pub fn add_pem(&mut self, pem: &str) -> Result<(), String> {
        pem_key(pem)?;
        self.pems.push(pem.to_owned());
        Ok(())
    }

    /// Verifies the signature of a compact JWS with one of these keys: an algorithm from
    /// [`ALGORITHMS`] (never `none`, never an HMAC, which a public key must not key), only
    /// with a key of that algorithm's type, and with the key the header's `kid` names when
    /// both have one. Claims are not looked at.
    pub fn verify_signature(&self, jws: &str) -> Result<(), SignatureError> {
        let keys = self.decoding_keys().map_err(|_| SignatureError::Keys)?;
        let header: Header = decode_part(jws.split('.').next())
            .map_err(|_: OAuthError| SignatureError::Malformed)?;
        // The allow-list: `none` and HMAC are never accepted.
        if !ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(SignatureError::Algorithm);
        }
        let alg: Algorithm = header.alg.parse().map_err(|_| SignatureError::Algorithm)?;
        let mut validation = Validation::new(alg);
        // Claims are checked by the caller against the context's clock; the library checks
        // the signature only.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let verified = keys
            .iter()
            .filter(|k| k.algs.contains(&alg))
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .any(|k| jsonwebtoken::decode::<serde_json::Value>(jws, &k.key, &validation).is_ok());
        if verified {
            Ok(())
        } else {
            Err(SignatureError::Signature)
        }
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn decoding_keys(&self) -> Result<Vec<Key>, String> {
        let mut out = Vec::new();
        for jwk in &self.keys {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                return Err("symmetric keys are not accepted".into());
            }
            let algs = jwk_algorithms(jwk).ok_or("unsupported key type")?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad JWK: {e}"))?;
            out.push(Key {
                kid: jwk.common.key_id.clone(),
                algs,
                key,
            });
        }
        for pem in &self.pems {
            let (algs, key) = pem_key(pem)?;
            out.push(Key {
                kid: None,
                algs,
                key,
            });
        }
        Ok(out)
    }
}

fn jwk_algorithms(jwk: &Jwk) -> Option<&'static [Algorithm]> {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(&[Algorithm::ES256]),
            EllipticCurve::P384 => Some(&[Algorithm::ES384]),
            _ => None,
        },
        AlgorithmParameters::RSA(_) => Some(&[Algorithm::RS256, Algorithm::PS256]),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(&[Algorithm::EdDSA])
        }
        _ => None,
    }
}

fn pem_key(pem: &str) -> Result<(&'static [Algorithm], DecodingKey), String> {
    // Only public keys: a private key handed in by mistake must not be stored.
    let label_ok = pem.trim_start().starts_with("-----BEGIN PUBLIC KEY-----")
        || pem
            .trim_start()
            .starts_with("-----BEGIN RSA PUBLIC KEY-----");
    if !label_ok || pem.contains("PRIVATE KEY") {
        return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    let bytes = pem.as_bytes();
    if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
        // The PEM does not say the curve to jsonwebtoken; P-256 is what ES256 needs.
        return Ok((&[Algorithm::ES256, Algorithm::ES384], k));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
        return Ok((&[Algorithm::RS256, Algorithm::PS256], k));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
        return Ok((&[Algorithm::EdDSA], k));
    }
    Err("not a PEM EC, RSA or Ed25519 public key".into())
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

fn failed(why: &'static str) -> OAuthError {
    OAuthError::invalid_client(why)
}

fn decode_part<T: serde::de::DeserializeOwned>(part: Option<&str>) -> Result<T, OAuthError> {
    part.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| failed("the client assertion is not a well-formed JWT"))
}

/// The client an assertion claims to come from (its `sub`, which must equal `iss`), read
/// before anything is verified: only to find the client's keys.
pub fn asserted_client_id(assertion: &str) -> Result<String, OAuthError> {
    let claims: Claims = decode_part(assertion.split('.').nth(1))?;
    match (claims.iss, claims.sub) {
        (Some(iss), Some(sub)) if iss == sub && !iss.is_empty() => Ok(sub),
        _ => Err(failed(
            "the client assertion's iss and sub must both be the client_id",
        )),
    }
}

/// Verifies a client assertion of `client`.
pub async fn verify(cx: &Cx<'_>, client: &ClientRecord, assertion: &str) -> Result<(), OAuthError> {
    let stored = client
        .jwks
        .as_deref()
        .ok_or_else(|| failed("client authentication failed"))?;
    let keys = ClientKeys::parse(stored).map_err(|_| failed("client authentication failed"))?;
    match keys.verify_signature(assertion) {
        Ok(()) => {}
        Err(SignatureError::Malformed) => {
            return Err(failed("the client assertion is not a well-formed JWT"))
        }
        Err(SignatureError::Algorithm) => {
            return Err(failed("the client assertion's algorithm is not accepted"))
        }
        Err(SignatureError::Keys | SignatureError::Signature) => {
            return Err(failed("the client assertion's signature does not verify"))
        }
    }
    let claims: Claims = decode_part(assertion.split('.').nth(1))?;
    check_claims(cx.config, cx.now, &client.client_id, &claims)?;
    let (Some(jti), Some(exp)) = (claims.jti.as_deref(), claims.exp) else {
        return Err(failed("the client assertion has no jti"));
    };
    // RFC 7523 §3 item 7: a jti is accepted once, until the assertion would have expired.
    let key = format!("client_assertion:{}:{jti}", client.client_id);
    if !cx
        .store
        .use_once(&key, exp.saturating_add(cx.config.assertion_leeway))
        .await?
    {
        return Err(failed("the client assertion was already used"));
    }
    Ok(())
}

/// The claim rules of RFC 7523 §3, at time `now`.
fn check_claims(config: &Config, now: i64, id: &str, c: &Claims) -> Result<(), OAuthError> {
    if c.iss.as_deref() != Some(id) || c.sub.as_deref() != Some(id) {
        return Err(failed(
            "the client assertion's iss and sub must both be the client_id",
        ));
    }
    let token_endpoint = config.endpoint("/oauth2/token");
    let aud_ok = c
        .aud
        .as_ref()
        .is_some_and(|a| a.contains(&token_endpoint) || a.contains(&config.issuer));
    if !aud_ok {
        return Err(failed(
            "the client assertion's aud must name the token endpoint or the issuer",
        ));
    }
    let Some(exp) = c.exp else {
        return Err(failed("the client assertion has no exp"));
    };
    let (leeway, max_lifetime) = (config.assertion_leeway, config.assertion_max_lifetime);
    if exp.saturating_add(leeway) <= now {
        return Err(failed("the client assertion has expired"));
    }
    if exp.saturating_sub(now) > max_lifetime.saturating_add(leeway) {
        return Err(failed("the client assertion is valid for too long"));
    }
    if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(failed("the client assertion is not valid yet"));
    }
    if let Some(iat) = c.iat {
        if iat > now.saturating_add(leeway) {
            return Err(failed("the client assertion was issued in the future"));
        }
        if now.saturating_sub(iat) > max_lifetime.saturating_add(leeway) {
            return Err(failed("the client assertion is too old"));
        }
    }
    if c.jti.as_deref().is_none_or(str::is_empty) {
        return Err(failed("the client assertion has no jti"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(f: impl FnOnce(&mut serde_json::Value)) -> Claims {
        let mut v = serde_json::json!({
            "iss": "c1", "sub": "c1", "aud": "https://issuer/oauth2/token",
            "exp": 1_000 + 300, "iat": 1_000, "jti": "j1",
        });
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn claim_rules_of_rfc_7523() {
        let config = Config::new("https://issuer");
        let ok = |c: &Claims| check_claims(&config, 1_000, "c1", c);
        assert!(ok(&claims(|_| {})).is_ok());
        assert!(
            ok(&claims(|v| v["aud"] = "https://issuer".into())).is_ok(),
            "issuer as aud"
        );
        assert!(ok(&claims(
            |v| v["aud"] = serde_json::json!(["x", "https://issuer"])
        ))
        .is_ok());
        assert!(
            ok(&claims(|v| v["exp"] = (1_000 - 30).into())).is_ok(),
            "within leeway"
        );
        assert!(
            ok(&claims(|v| v["nbf"] = (1_000 + 30).into())).is_ok(),
            "within leeway"
        );
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let bad: [(&str, Edit); 13] = [
            (
                "exp at the end of time",
                Box::new(|v| v["exp"] = i64::MAX.into()),
            ),
            (
                "iat at the start of time",
                Box::new(|v| v["iat"] = i64::MIN.into()),
            ),
            ("other iss", Box::new(|v| v["iss"] = "c2".into())),
            ("other sub", Box::new(|v| v["sub"] = "c2".into())),
            (
                "no sub",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("sub");
                }),
            ),
            (
                "wrong aud",
                Box::new(|v| v["aud"] = "https://other/oauth2/token".into()),
            ),
            (
                "no aud",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("aud");
                }),
            ),
            (
                "no exp",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("exp");
                }),
            ),
            ("expired", Box::new(|v| v["exp"] = (1_000 - 61).into())),
            (
                "too long",
                Box::new(|v| v["exp"] = (1_000 + 3_600 + 61).into()),
            ),
            ("not yet", Box::new(|v| v["nbf"] = (1_000 + 61).into())),
            (
                "stale iat",
                Box::new(|v| v["iat"] = (1_000 - 3_600 - 61).into()),
            ),
            (
                "no jti",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("jti");
                }),
            ),
        ];
        for (case, f) in bad {
            let e = ok(&claims(f)).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidClient, "{case}");
        }
    }

    #[test]
    fn symmetric_keys_are_refused_at_registration() {
        let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(ClientKeys::from_jwks(jwks).is_err());
        assert!(ClientKeys::parse(r#"{"keys":[],"pems":[]}"#).is_err());
        assert!(ClientKeys::default().add_pem("not a pem").is_err());
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert!(ClientKeys::default().add_pem(private).is_err());
    }

    #[test]
    fn a_published_jwks_keeps_only_usable_signing_keys() {
        let ec = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        let mut enc = ec.clone();
        enc["use"] = "enc".into();
        enc["kid"] = "enc".into();
        let doc = serde_json::json!({"keys": [
            ec, enc, {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-256", "x": "bad"},
        ]});
        let keys = ClientKeys::from_published_jwks(&doc.to_string());
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].common.key_id.as_deref(), Some("sig"));
        assert!(ClientKeys::from_published_jwks("not json").keys.is_empty());
    }

    #[test]
    fn asserted_client_id_needs_iss_equal_to_sub() {
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let t = |claims| {
            format!(
                "{}.{}.x",
                enc(serde_json::json!({"alg":"ES256"})),
                enc(claims)
            )
        };
        assert_eq!(
            asserted_client_id(&t(serde_json::json!({"iss":"a","sub":"a"}))).unwrap(),
            "a"
        );
        assert!(asserted_client_id(&t(serde_json::json!({"iss":"a","sub":"b"}))).is_err());
        assert!(asserted_client_id("garbage").is_err());
    }
}
