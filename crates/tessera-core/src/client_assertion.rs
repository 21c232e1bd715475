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
//! The keys and the signature check are [`crate::client_keys`]' (shared with the JWT-bearer
//! grant, [`crate::grant::jwt_bearer`]); this module adds [`ClientKeys::verify_signature_in`],
//! which runs the check where the context says. The leeway and the longest lifetime are the
//! configuration's (`assertion_leeway`, `assertion_max_lifetime`).
//!
//! An assertion naming an unknown client, or a client without keys, or a `kid` naming no
//! key, costs one signature check all the same, against a stand-in key of the kind its `alg`
//! needs, and an unknown client gets the refusal a forged signature gets
//! ([`refuse_unknown`]): neither the answer nor its time tells registered client ids apart.
//!
//! `client_secret_jwt` is not offered: it needs the client secret itself on the server,
//! and Tessera keeps only hashes of secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::audience::Audience;
use crate::client_keys::stand_in_keys;
pub use crate::client_keys::{
    jwk_thumbprint, pem_jwk, ClientKeys, SignatureError, ALGORITHMS, MAX_KEYS, MAX_RSA_BITS,
    MIN_RSA_BITS,
};
use crate::config::Config;
use crate::cx::Cx;
use crate::endpoint::{self, EndpointId};
use crate::error::OAuthError;
use crate::model::ClientRecord;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl ClientKeys {
    /// [`ClientKeys::verify_signature`], run where the context's
    /// [`crate::cx::RemoteKeys::check_signature`] runs signature checks (off the serving
    /// threads, in the server), or here when it has none.
    pub async fn verify_signature_in(self, cx: &Cx<'_>, jws: &str) -> Result<(), SignatureError> {
        match cx.remote_keys {
            Some(remote) => {
                let jws = jws.to_owned();
                remote
                    .check_signature(Box::new(move || self.verify_signature(&jws)))
                    .await
            }
            None => self.verify_signature(jws),
        }
    }
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
    let keys = client
        .jwks
        .as_deref()
        .and_then(|stored| ClientKeys::parse(stored).ok());
    let Some(keys) = keys else {
        // A client without usable keys is refused as an unknown one is.
        return Err(refuse_unknown(cx, assertion).await);
    };
    keys.verify_signature_in(cx, assertion)
        .await
        .map_err(signature_refusal)?;
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

/// The refusal of an assertion naming a client that does not exist (or has no usable key),
/// after the same work as for a known client: the assertion's signature is checked against a
/// stand-in key of the kind its `alg` needs ([`stand_in_keys`]), which nothing verifies
/// against, so neither the time taken nor the answer tells registered client ids from others
/// (the secret path does the same with a stand-in hash, see [`crate::password`]).
pub async fn refuse_unknown(cx: &Cx<'_>, assertion: &str) -> OAuthError {
    match stand_in_keys(assertion)
        .verify_signature_in(cx, assertion)
        .await
    {
        Ok(()) => signature_refusal(SignatureError::Signature),
        Err(e) => signature_refusal(e),
    }
    .because("unknown client")
}

/// The `invalid_client` refusal of a signature check that failed.
fn signature_refusal(e: SignatureError) -> OAuthError {
    match e {
        SignatureError::Malformed => failed("the client assertion is not a well-formed JWT"),
        SignatureError::Algorithm => failed("the client assertion's algorithm is not accepted"),
        SignatureError::Keys | SignatureError::Signature => {
            failed("the client assertion's signature does not verify")
        }
        SignatureError::KidRequired => failed(
            "the client has more than one key: the client assertion must name its key with kid",
        ),
        SignatureError::CritMalformed => {
            failed("the client assertion's crit header is malformed (RFC 7515 §4.1.11)")
        }
        SignatureError::CritUnsupported => failed(
            "the client assertion's crit header names an extension this server does not \
             understand (RFC 7515 §4.1.11)",
        ),
    }
}

/// The claim rules of RFC 7523 §3, at time `now`.
fn check_claims(config: &Config, now: i64, id: &str, c: &Claims) -> Result<(), OAuthError> {
    if c.iss.as_deref() != Some(id) || c.sub.as_deref() != Some(id) {
        return Err(failed(
            "the client assertion's iss and sub must both be the client_id",
        ));
    }
    let token_endpoint = config.endpoint(endpoint::path(EndpointId::Token));
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
