//! JWT access tokens (RFC 9068) issued and checked by Tessera itself.
//!
//! Owns [`AccessClaims`], [`encode`] and [`verify`]. Only tokens signed by the server's own
//! keys pass through here: the header must name a published `kid`, the key's own algorithm
//! and `typ: at+jwt`; `alg: none`, HMAC and any algorithm swap are refused (OpenID Connect
//! Core §10, RFC 8725 §3.1), and so is a header with `crit` (RFC 7515 §4.1.11: Tessera
//! signs with none and understands no extension). Assertions from other parties (RFC 7523) are not this module's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, KeySet, SigningKey};

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: crate::resource::Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope, space-delimited.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Token id: random, with the client's token epoch after a dot.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// When the user signed in (RFC 9068 §2.2.1), for tokens issued for a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The user grant the token descends from; revoking it revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The deployment environment the token was issued in (tokens from before environments
    /// existed belong to the default one).
    #[serde(default = "default_env")]
    pub env: String,
    /// A single-use token: the first successful check consumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_use: bool,
    /// Claims carried from a JWT assertion; never one of [`REGISTERED_CLAIMS`].
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Claims Tessera sets itself, which a carried claim may never replace.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "env",
    "single_use",
    "active",
    "token_type",
    "username",
    "typ",
    "cnf",
    "auth_time",
    "gid",
];

fn default_env() -> String {
    crate::environment::DEFAULT_ENV.to_owned()
}

impl AccessClaims {
    /// The client's token epoch the token was issued under, carried in its `jti`.
    pub fn epoch(&self) -> i64 {
        jti_epoch(&self.jti)
    }
}

/// Builds a `jti` that carries the client's token epoch: `<random>.<epoch>`.
pub fn make_jti(epoch: i64) -> String {
    let r = URL_SAFE_NO_PAD.encode(crate::secret::random_bytes::<16>());
    format!("{r}.{epoch}")
}

/// The epoch part of a `jti` made by [`make_jti`] (-1 if absent, which no client has).
pub fn jti_epoch(jti: &str) -> i64 {
    jti.rsplit_once('.')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(-1)
}

/// Why a presented JWT is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// Header names an algorithm, type or key that is not ours.
    #[error("token header not acceptable")]
    Header,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Expired.
    #[error("token expired")]
    Expired,
    /// Issued by someone else.
    #[error("wrong issuer")]
    Issuer,
}

/// Signs claims with `key` as an `at+jwt`.
pub fn encode(key: &SigningKey, claims: &AccessClaims) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Invalid(key.kid.clone()))?;
    sign_parts(key, &key.at_header_b64, &payload)
}

/// Signs arbitrary JSON claims as a plain `JWT` (ID tokens and the like).
pub fn encode_json(key: &SigningKey, claims: &serde_json::Value) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Invalid(key.kid.clone()))?;
    sign_parts(key, &key.id_header_b64, &payload)
}

/// The `typ` of a signed introspection response (RFC 9701 §5, §8.1: it tells the response
/// apart from every other JWT the server signs, access tokens and ID tokens above all).
pub const INTROSPECTION_TYP: &str = "token-introspection+jwt";

/// Signs JSON claims as a `token-introspection+jwt` (RFC 9701 §5).
pub fn encode_introspection(
    key: &SigningKey,
    claims: &serde_json::Value,
) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Invalid(key.kid.clone()))?;
    sign_parts(key, &key.introspection_header_b64, &payload)
}

fn sign_parts(key: &SigningKey, header_b64: &str, payload: &[u8]) -> Result<String, KeyError> {
    let mut out = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 100);
    out.push_str(header_b64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    Ok(out)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Whether the header has `crit` at all (even `null`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for any value: with `#[serde(default)]`, whether a member is present.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// Whether a token has the shape of a JWS compact serialization.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Verifies an access token signed by one of our keys and returns its claims.
pub fn verify(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, JwtError> {
    verify_for(keys, token, |iss| iss == issuer, now)
}

/// [`verify`] for a server known by several issuer names (the main issuer and its hosts,
/// [`crate::config::Config::accepts_issuer`]): `is_ours` says whether an `iss` is one of them.
pub fn verify_for(
    keys: &KeySet,
    token: &str,
    is_ours: impl Fn(&str) -> bool,
    now: i64,
) -> Result<AccessClaims, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.crit {
        return Err(JwtError::Header);
    }
    let kid = header.kid.ok_or(JwtError::Header)?;
    let key = keys.verifier(&kid, now).ok_or(JwtError::Header)?;
    if header.alg != key.alg.as_str() || header.typ.as_deref() != Some("at+jwt") {
        return Err(JwtError::Header);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signed_len = h.len() + 1 + p.len();
    let signed = token.get(..signed_len).ok_or(JwtError::Malformed)?;
    if !key.verify(signed.as_bytes(), &sig) {
        return Err(JwtError::Signature);
    }
    let claims: AccessClaims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if !is_ours(&claims.iss) {
        return Err(JwtError::Issuer);
    }
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, Sealer, SigningAlg};
    use proptest::prelude::*;

    fn setup(alg: SigningAlg) -> KeySet {
        let s = Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        KeySet::load(&[generate_key(alg, &s, 0, 0).unwrap()], &s).unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://issuer".into(),
            sub: "c1".into(),
            aud: crate::resource::Audience::one("https://issuer"),
            client_id: "c1".into(),
            scope: "read".into(),
            jti: make_jti(3),
            iat: 100,
            exp: 200,
            auth_time: None,
            gid: None,
            env: "default".into(),
            single_use: false,
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn round_trips_for_both_algorithms() {
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
            let keys = setup(alg);
            let t = encode(keys.signing_key(100).unwrap(), &claims()).unwrap();
            let c = verify(&keys, &t, "https://issuer", 150).unwrap();
            assert_eq!(c, claims_with_jti(&c.jti));
            assert_eq!(c.epoch(), 3);
        }
    }

    fn claims_with_jti(jti: &str) -> AccessClaims {
        AccessClaims {
            jti: jti.to_owned(),
            ..claims()
        }
    }

    #[test]
    fn carried_claims_round_trip_and_old_tokens_belong_to_the_default_env() {
        let keys = setup(SigningAlg::Es256);
        let mut c = claims();
        c.env = "staging".into();
        c.single_use = true;
        c.extra
            .insert("anyflow_team_id".into(), serde_json::json!("t1"));
        let t = encode(keys.signing_key(100).unwrap(), &c).unwrap();
        let back = verify(&keys, &t, "https://issuer", 150).unwrap();
        assert_eq!(back.env, "staging");
        assert!(back.single_use);
        assert_eq!(back.extra["anyflow_team_id"], "t1");
        assert_eq!(back.extra.len(), 1, "registered claims are not extras");
        let legacy: AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "s", "aud": "a", "client_id": "c", "jti": "j.0",
            "iat": 1, "exp": 2,
        }))
        .unwrap();
        assert_eq!(legacy.env, "default");
        assert!(!legacy.single_use);
        assert!(legacy.extra.is_empty());
        let plain = serde_json::to_value(claims()).unwrap();
        assert!(plain.get("single_use").is_none(), "absent unless set");
    }

    #[test]
    fn expired_wrong_issuer_and_tampered_are_refused() {
        let keys = setup(SigningAlg::Es256);
        let t = encode(keys.signing_key(100).unwrap(), &claims()).unwrap();
        assert_eq!(
            verify(&keys, &t, "https://issuer", 200),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(&keys, &t, "https://other", 150),
            Err(JwtError::Issuer)
        );
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&AccessClaims {
                sub: "admin".into(),
                ..claims()
            })
            .unwrap(),
        );
        parts[1] = &forged;
        assert_eq!(
            verify(&keys, &parts.join("."), "https://issuer", 150),
            Err(JwtError::Signature)
        );
    }

    #[test]
    fn alg_none_and_hmac_swaps_are_refused() {
        let keys = setup(SigningAlg::Es256);
        let t = encode(keys.signing_key(100).unwrap(), &claims()).unwrap();
        let kid = &keys.signing_key(100).unwrap().kid;
        let payload = t.split('.').nth(1).unwrap();
        for alg in ["none", "HS256", "RS256", "EdDSA"] {
            let h = URL_SAFE_NO_PAD
                .encode(serde_json::json!({"alg": alg, "kid": kid, "typ": "at+jwt"}).to_string());
            let forged = format!("{h}.{payload}.");
            assert_eq!(
                verify(&keys, &forged, "https://issuer", 150),
                Err(JwtError::Header),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_crit_header_is_refused() {
        let keys = setup(SigningAlg::Es256);
        let key = keys.signing_key(100).unwrap();
        let kid = &key.kid;
        for crit in [
            serde_json::json!(["exp"]),
            serde_json::json!([]),
            serde_json::Value::Null,
        ] {
            let h = URL_SAFE_NO_PAD.encode(
                serde_json::json!({"alg": "ES256", "kid": kid, "typ": "at+jwt", "crit": crit, "exp": 1})
                    .to_string(),
            );
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
            let signed = format!("{h}.{p}");
            let sig = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()).unwrap());
            assert_eq!(
                verify(&keys, &format!("{signed}.{sig}"), "https://issuer", 150),
                Err(JwtError::Header),
                "{crit}"
            );
        }
    }

    proptest! {
        #[test]
        fn verify_never_panics(s in "\\PC{0,200}") {
            let keys = setup(SigningAlg::EdDsa);
            let _ = verify(&keys, &s, "https://issuer", 0);
        }
    }
}
