//! The JWT-bearer authorization grant (RFC 7523 §2.1 and §3).
//!
//! Owns [`verify_assertion`], the checks of a JWT signed by a trusted issuer (a vendor's
//! backend vouching for one of its end users), shared with `/sdk/token`
//! ([`crate::endpoint::sdk_token`]), and the grant at the token endpoint ([`handle`]):
//! - the issuer must be registered in the deployment environment (see
//!   [`crate::model::TrustRecord`]), and the signature must verify with one of its keys under
//!   an allowed algorithm (never `none`, never an HMAC keyed with a public key;
//!   [`crate::client_assertion::ClientKeys::verify_signature`]);
//! - `aud` must name the token endpoint or the issuer (§3 item 3; optional at `/sdk/token`,
//!   whose JWTs name no audience, but checked when present; [`crate::endpoint::sdk_token::SDK_TOKEN`]);
//! - `exp` is required and at most `assertion_max_lifetime` ahead; `nbf` and `iat` are
//!   honoured with `assertion_leeway`; a stale `iat` is refused (§3 items 4 to 6);
//! - `jti` is required and accepted once per issuer until the assertion would have expired,
//!   recorded in the database every node shares (§3 item 7);
//! - the subject is the registration's subject claim (`sub` unless configured): a string,
//!   copied as is into the token's `sub`, or an integer (no fraction, no exponent, within
//!   the range of i64 or u64), printed in decimal; any other number is refused;
//! - the registration's carried claims are copied into the token, each at most
//!   [`MAX_CARRIED_CLAIM_BYTES`] and all together at most [`MAX_CARRIED_CLAIMS_BYTES`] of
//!   JSON, so that an issuer cannot make tokens (and introspection answers) of any size;
//! - the header follows RFC 7515: with more than one key the assertion names its key with
//!   `kid`, and a `crit` is refused (see [`crate::client_assertion`]).
//!
//! Every failure is `invalid_grant` (§3.1) with a description that names the rule and never
//! the assertion's content. At the token endpoint the client must be authenticated,
//! confidential and allowed this grant; the token belongs to the client's environment.

use serde_json::{Map, Value};

use crate::client_keys::{ClientKeys, SignatureError};
use crate::cx::Cx;
use crate::endpoint::{self, EndpointId};
use crate::error::OAuthError;
use crate::grant::types;
use crate::grant::TokenResponse;
use crate::issue::{issue_access_token_with, Extras};
use crate::model::{ClientRecord, TrustRecord};
use crate::params::Params;
use crate::resource;
use crate::scope::ScopeSet;

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::JWT_BEARER;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "jwt_bearer",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: false,
    public_clients: false,
    acts_for_user: true,
};

/// Largest carried claim: bytes of its value serialized as JSON.
pub const MAX_CARRIED_CLAIM_BYTES: usize = 1024;
/// Largest total of the carried claims: bytes of their names and JSON values together.
pub const MAX_CARRIED_CLAIMS_BYTES: usize = 4096;

/// Whether an assertion must carry `aud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceRule {
    /// RFC 7523 §3 item 3: required.
    Required,
    /// The anyflow dialect's vendor JWTs (docs/dialects/anyflow.toml) name none: checked
    /// only when present.
    Optional,
}

/// The path of the JSON exchange the request came through, or the Anyflow dialect's
/// `/sdk/token`: an audience an assertion may name.
fn sdk_path<'a>(cx: &Cx<'a>) -> &'a str {
    cx.dialect
        .and_then(|d| d.paths.iter().find(|(id, _)| *id == EndpointId::SdkToken))
        .map_or(crate::dialect::presets::ANYFLOW_SDK_PATH, |(_, p)| {
            p.as_str()
        })
}

/// What a verified assertion says.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    /// The registration of its issuer.
    pub trust: TrustRecord,
    /// The end user: the value of the registration's subject claim.
    pub subject: String,
    /// The registration's carried claims that the assertion has.
    pub claims: Map<String, Value>,
    /// The assertion's `may_act` claim (RFC 8693 §4.4), read by token exchange whether or
    /// not the registration carries it.
    pub may_act: Option<Value>,
    /// The key its `cnf` claim binds it to (RFC 7800 §3.1: `jkt`, RFC 9449 §6; `x5t#S256`,
    /// RFC 8705 §3.1), read by token exchange, which then asks for proof of that key.
    pub confirmation: Option<crate::confirmation::Confirmation>,
}

/// Issues an access token to an authenticated client for the end user a trusted issuer's
/// assertion names.
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    check_grant_allowed(client)?;
    let assertion = params.require("assertion")?;
    let verified = verify_assertion(cx, &client.env, assertion, AudienceRule::Required).await?;
    let scope = validate_scope(&verified.trust, client, params)?;
    let audience = resource::resolve(params, client, cx.config)?;
    let extras = Extras {
        claims: verified.claims,
        ..Extras::default()
    };
    let token =
        issue_access_token_with(cx, client, &verified.subject, &scope, audience, extras).await?;
    Ok(TokenResponse::access_only(token))
}

fn check_grant_allowed(client: &ClientRecord) -> Result<(), OAuthError> {
    if client.public || !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the jwt-bearer grant",
        ));
    }
    Ok(())
}

/// Allowed: what both the client and the trust registration allow; none asked = all of it.
fn validate_scope(
    trust: &TrustRecord,
    client: &ClientRecord,
    params: &Params,
) -> Result<ScopeSet, OAuthError> {
    let both: Vec<&str> = trust
        .scopes
        .iter()
        .filter(|s| client.scopes.contains(s))
        .collect();
    let allowed = ScopeSet::parse(&both.join(" "))?;
    match params.get("scope")? {
        None => Ok(allowed),
        Some(s) => {
            let asked = ScopeSet::parse(s)?;
            asked.check_within(&allowed)?;
            Ok(asked)
        }
    }
}

fn failed(why: &'static str) -> OAuthError {
    OAuthError::invalid_grant(why)
}

/// Verifies an assertion from an issuer trusted in `env` and records its `jti` as used.
pub async fn verify_assertion(
    cx: &Cx<'_>,
    env: &str,
    assertion: &str,
    audience: AudienceRule,
) -> Result<VerifiedAssertion, OAuthError> {
    let claims = unverified_claims(assertion)?;
    let Some(issuer) = claims.get("iss").and_then(Value::as_str) else {
        return Err(failed("the assertion has no iss"));
    };
    let trust = cx
        .store
        .find_trust(env, issuer)
        .await?
        .ok_or_else(|| failed("the assertion's issuer is not trusted in this environment"))?;
    verify_signature(cx, &trust, assertion)
        .await
        .map_err(|e| match e {
            SignatureError::Malformed => failed("the assertion is not a well-formed JWT"),
            SignatureError::Algorithm => failed("the assertion's algorithm is not accepted"),
            SignatureError::Keys => failed("the assertion's issuer has no usable key"),
            SignatureError::Signature => failed("the assertion's signature does not verify"),
            SignatureError::KidRequired => failed(
                "the assertion's issuer has more than one key: the assertion must name its key \
                 with kid",
            ),
            SignatureError::CritMalformed => {
                failed("the assertion's crit header is malformed (RFC 7515 §4.1.11)")
            }
            SignatureError::CritUnsupported => failed(
                "the assertion's crit header names an extension this server does not \
                 understand (RFC 7515 §4.1.11)",
            ),
        })?;
    let rules = Rules {
        now: cx.now,
        leeway: cx.config.assertion_leeway,
        max_lifetime: cx.config.assertion_max_lifetime,
        audiences: [
            cx.config.endpoint(endpoint::path(EndpointId::Token)),
            cx.config.issuer.clone(),
            cx.config.endpoint(sdk_path(cx)),
        ],
        audience,
    };
    let (jti, exp) = rules.check(&claims)?;
    let subject = subject(&claims, &trust.subject_claim)?;
    let carried = carried_claims(&claims, &trust.claims)?;
    // RFC 7523 §3 item 7: once per issuer (whatever the environment), until it would expire.
    let key = format!("jwt_bearer:{issuer}:{jti}");
    if !cx
        .store
        .use_once(&key, exp.saturating_add(rules.leeway))
        .await?
    {
        return Err(failed("the assertion was already used"));
    }
    Ok(VerifiedAssertion {
        trust,
        subject,
        claims: carried,
        may_act: claims.get("may_act").cloned(),
        confirmation: crate::confirmation::Confirmation::of_claims(&claims),
    })
}

/// Verifies the signature with the registration's stored keys and, when it has a
/// `jwks_uri`, the keys published there; a signature that none verifies makes one fresh
/// fetch (the issuer may have rotated its key since the cached copy).
async fn verify_signature(
    cx: &Cx<'_>,
    trust: &TrustRecord,
    assertion: &str,
) -> Result<(), SignatureError> {
    let stored: ClientKeys = serde_json::from_str(&trust.keys).map_err(|_| SignatureError::Keys)?;
    let Some(uri) = trust.jwks_uri.as_deref() else {
        return stored.verify_signature_in(cx, assertion).await;
    };
    let Some(remote) = cx.remote_keys else {
        return stored.verify_signature_in(cx, assertion).await;
    };
    let keys_from = |fetched: Result<String, String>| match fetched {
        Ok(text) => {
            let mut keys = ClientKeys::from_published_jwks(&text);
            keys.keys.extend(stored.keys.iter().cloned());
            keys.pems.extend(stored.pems.iter().cloned());
            Ok(keys)
        }
        Err(_) if stored.keys.is_empty() && stored.pems.is_empty() => Err(SignatureError::Keys),
        Err(_) => Ok(ClientKeys {
            keys: stored.keys.clone(),
            pems: stored.pems.clone(),
        }),
    };
    let first = match keys_from(remote.jwks(uri, false).await) {
        Ok(keys) => keys.verify_signature_in(cx, assertion).await,
        Err(e) => Err(e),
    };
    if matches!(first, Err(SignatureError::Signature | SignatureError::Keys)) {
        return keys_from(remote.jwks(uri, true).await)?
            .verify_signature_in(cx, assertion)
            .await;
    }
    first
}

/// The claims of a JWT, not yet verified: only to find the issuer's keys.
fn unverified_claims(assertion: &str) -> Result<Map<String, Value>, OAuthError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let mut parts = assertion.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(failed("the assertion is not a well-formed JWT"));
    };
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| failed("the assertion is not a well-formed JWT"))
}

/// The registration's carried claims that the assertion has (never a registered claim),
/// within [`MAX_CARRIED_CLAIM_BYTES`] each and [`MAX_CARRIED_CLAIMS_BYTES`] together.
fn carried_claims(
    claims: &Map<String, Value>,
    names: &[String],
) -> Result<Map<String, Value>, OAuthError> {
    let mut carried = Map::new();
    let mut total = 0usize;
    for name in names {
        if crate::jwt::REGISTERED_CLAIMS.contains(&name.as_str()) {
            continue;
        }
        let Some(value) = claims.get(name) else {
            continue;
        };
        let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
        if size > MAX_CARRIED_CLAIM_BYTES {
            return Err(OAuthError::invalid_grant(format!(
                "a carried claim of the assertion is larger than {MAX_CARRIED_CLAIM_BYTES} bytes"
            )));
        }
        total = total.saturating_add(name.len()).saturating_add(size);
        if total > MAX_CARRIED_CLAIMS_BYTES {
            return Err(OAuthError::invalid_grant(format!(
                "the carried claims of the assertion are larger than \
                 {MAX_CARRIED_CLAIMS_BYTES} bytes together"
            )));
        }
        carried.insert(name.clone(), value.clone());
    }
    Ok(carried)
}

/// The end user an assertion names, in canonical form: a non-empty string as is, or an
/// integer within the range of i64 or u64, written as a JSON integer (no fraction, no
/// exponent) and printed in decimal. Any other number (`1.5`, `-0.0`, `1e+300`, even `1.0`)
/// is refused: a float has no single decimal spelling, and two spellings of one user would
/// be two users.
fn subject(claims: &Map<String, Value>, claim: &str) -> Result<String, OAuthError> {
    let value = match claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (_, Some(u)) => u.to_string(),
            (Some(i), None) => i.to_string(),
            (None, None) => {
                return Err(failed(
                    "the assertion's subject is a number that is not an integer within the \
                     range of a 64-bit integer",
                ))
            }
        },
        _ => return Err(failed("the assertion does not name its subject")),
    };
    if value.len() > 255 {
        return Err(failed("the assertion's subject is too long"));
    }
    Ok(value)
}

/// The time and audience rules of RFC 7523 §3.
struct Rules {
    now: i64,
    leeway: i64,
    max_lifetime: i64,
    audiences: [String; 3],
    audience: AudienceRule,
}

fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OAuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| failed("a time claim of the assertion is not a number")),
    }
}

impl Rules {
    /// Checks the claims; returns the `jti` and `exp`.
    fn check(&self, claims: &Map<String, Value>) -> Result<(String, i64), OAuthError> {
        let now = self.now;
        let aud_ok = match claims.get("aud") {
            None => self.audience == AudienceRule::Optional,
            Some(Value::String(a)) => self.audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audiences.iter().any(|ok| ok == a)),
            Some(_) => false,
        };
        if !aud_ok {
            return Err(failed(
                "the assertion's aud must name the token endpoint or the issuer",
            ));
        }
        let Some(exp) = seconds(claims, "exp")? else {
            return Err(failed("the assertion has no exp"));
        };
        if exp.saturating_add(self.leeway) <= now {
            return Err(failed("the assertion has expired"));
        }
        if exp.saturating_sub(now) > self.max_lifetime.saturating_add(self.leeway) {
            return Err(failed("the assertion is valid for too long"));
        }
        if seconds(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(failed("the assertion is not valid yet"));
        }
        if let Some(iat) = seconds(claims, "iat")? {
            if iat > now.saturating_add(self.leeway) {
                return Err(failed("the assertion was issued in the future"));
            }
            if now.saturating_sub(iat) > self.max_lifetime.saturating_add(self.leeway) {
                return Err(failed("the assertion is too old"));
            }
        }
        match claims.get("jti").and_then(Value::as_str) {
            Some(jti) if !jti.is_empty() && jti.len() <= 255 => Ok((jti.to_owned(), exp)),
            Some(jti) if !jti.is_empty() => Err(failed("the assertion's jti is too long")),
            _ => Err(failed("the assertion has no jti")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn rules(audience: AudienceRule) -> Rules {
        Rules {
            now: 1_000,
            leeway: 60,
            max_lifetime: 3_600,
            audiences: [
                "https://issuer/oauth2/token".into(),
                "https://issuer".into(),
                "https://issuer/sdk/token".into(),
            ],
            audience,
        }
    }

    /// A named edit of the claims.
    type Case = (&'static str, fn(&mut Map<String, Value>));

    fn claims(f: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut v = serde_json::json!({
            "iss": "vendor", "sub": "u1", "aud": "https://issuer/oauth2/token",
            "exp": 1_300, "iat": 1_000, "jti": "j1",
        });
        let m = v.as_object_mut().unwrap();
        f(m);
        m.clone()
    }

    #[test]
    fn claim_rules_of_rfc_7523_section_3() {
        let ok = |c: &Map<String, Value>| rules(AudienceRule::Required).check(c);
        assert_eq!(ok(&claims(|_| {})).unwrap(), ("j1".to_owned(), 1_300));
        let fine: [Case; 5] = [
            ("issuer as aud", |m| {
                m.insert("aud".into(), "https://issuer".into());
            }),
            ("aud list", |m| {
                m.insert("aud".into(), serde_json::json!(["x", "https://issuer"]));
            }),
            ("expired within leeway", |m| {
                m.insert("exp".into(), (1_000 - 30).into());
            }),
            ("nbf within leeway", |m| {
                m.insert("nbf".into(), (1_000 + 30).into());
            }),
            ("float exp", |m| {
                m.insert("exp".into(), 1_300.5.into());
            }),
        ];
        for (case, f) in fine {
            assert!(ok(&claims(f)).is_ok(), "{case}");
        }
        let bad: [Case; 11] = [
            ("wrong aud", |m| {
                m.insert("aud".into(), "https://other/oauth2/token".into());
            }),
            ("no aud", |m| {
                m.remove("aud");
            }),
            ("aud not a string", |m| {
                m.insert("aud".into(), 5.into());
            }),
            ("no exp", |m| {
                m.remove("exp");
            }),
            ("exp not a number", |m| {
                m.insert("exp".into(), "soon".into());
            }),
            ("expired", |m| {
                m.insert("exp".into(), (1_000 - 61).into());
            }),
            ("too long-lived", |m| {
                m.insert("exp".into(), (1_000 + 3_600 + 61).into());
            }),
            ("not yet valid", |m| {
                m.insert("nbf".into(), (1_000 + 61).into());
            }),
            ("issued in the future", |m| {
                m.insert("iat".into(), (1_000 + 61).into());
            }),
            ("stale iat", |m| {
                m.insert("iat".into(), (1_000 - 3_600 - 61).into());
            }),
            ("no jti", |m| {
                m.remove("jti");
            }),
        ];
        for (case, f) in bad {
            let e = ok(&claims(f)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{case}");
        }
    }

    #[test]
    fn extreme_times_are_refused_without_overflow() {
        let r = rules(AudienceRule::Required);
        for (name, value) in [
            ("exp", Value::from(i64::MAX)),
            ("exp", Value::from(i64::MIN)),
            ("exp", Value::from(1e300)),
            ("exp", Value::from(u64::MAX)),
            ("nbf", Value::from(i64::MAX)),
            ("iat", Value::from(i64::MIN)),
            ("iat", Value::from(i64::MAX)),
        ] {
            let c = claims(|m| {
                m.insert(name.into(), value.clone());
            });
            assert!(r.check(&c).is_err(), "{name} = {value}");
        }
    }

    proptest::proptest! {
        #[test]
        fn claim_checks_never_panic(
            exp in proptest::num::i64::ANY,
            nbf in proptest::num::i64::ANY,
            iat in proptest::num::i64::ANY,
            now in proptest::num::i64::ANY,
            leeway in 0i64..=600,
        ) {
            let r = Rules { now, leeway, ..rules(AudienceRule::Optional) };
            let c = claims(|m| {
                m.insert("exp".into(), exp.into());
                m.insert("nbf".into(), nbf.into());
                m.insert("iat".into(), iat.into());
            });
            let _ = r.check(&c);
        }

        #[test]
        fn reading_any_assertion_never_panics(s in "\\PC{0,200}") {
            let _ = unverified_claims(&s);
        }
    }

    #[test]
    fn audience_is_optional_only_when_the_rule_says_so_and_checked_when_present() {
        let optional = rules(AudienceRule::Optional);
        assert!(optional
            .check(&claims(|m| {
                m.remove("aud");
            }))
            .is_ok());
        assert!(optional
            .check(&claims(|m| {
                m.insert("aud".into(), "https://issuer/sdk/token".into());
            }))
            .is_ok());
        assert!(optional
            .check(&claims(|m| {
                m.insert("aud".into(), "https://elsewhere".into());
            }))
            .is_err());
    }

    #[test]
    fn subject_comes_from_the_configured_claim() {
        let c = claims(|m| {
            m.insert("anyflow_user_id".into(), 42.into());
        });
        assert_eq!(subject(&c, "sub").unwrap(), "u1");
        assert_eq!(subject(&c, "anyflow_user_id").unwrap(), "42");
        assert!(subject(&c, "missing").is_err());
        let empty = claims(|m| {
            m.insert("sub".into(), "".into());
        });
        assert!(subject(&empty, "sub").is_err());
    }

    /// The subject of an assertion whose payload has `"uid": <text>`, exactly as written.
    fn subject_of(text: &str) -> Result<String, OAuthError> {
        let claims: Map<String, Value> =
            serde_json::from_str(&format!(r#"{{"uid": {text}}}"#)).unwrap();
        subject(&claims, "uid")
    }

    #[test]
    fn numeric_subjects_are_integers_in_canonical_decimal_form() {
        for (text, canonical) in [
            ("42", "42"),
            ("0", "0"),
            ("-7", "-7"),
            ("9223372036854775807", "9223372036854775807"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("18446744073709551615", "18446744073709551615"),
        ] {
            assert_eq!(subject_of(text).unwrap(), canonical, "{text}");
        }
        for text in [
            "1.5",
            "-0.0",
            "-0",
            "1.0",
            "1e+300",
            "1e2",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            let e = subject_of(text).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{text}");
            assert!(e.description.contains("not an integer"), "{text}: {e:?}");
        }
        for text in ["true", "null", "[1]", "{}"] {
            assert!(subject_of(text).is_err(), "{text}");
        }
    }

    #[test]
    fn carried_claims_are_bounded_each_and_together() {
        let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
        let with = |f: &dyn Fn(&mut Map<String, Value>)| {
            let c = claims(|m| f(m));
            carried_claims(&c, &names)
        };
        // A string of n characters is n + 2 bytes of JSON.
        let fits = "x".repeat(MAX_CARRIED_CLAIM_BYTES - 2);
        let carried = with(&|m| {
            m.insert("c0".into(), fits.clone().into());
            m.insert("iss".into(), "ignored".into());
        })
        .unwrap();
        assert_eq!(carried.len(), 1);
        let e = with(&|m| {
            m.insert("c0".into(), format!("{fits}x").into());
        })
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("larger than 1024 bytes"), "{e:?}");
        let e = with(&|m| {
            m.insert("c1".into(), serde_json::json!({"deep": vec!["y"; 300]}));
        })
        .unwrap_err();
        assert!(e.description.contains("larger than 1024 bytes"), "{e:?}");
        // Five claims of 1022 bytes each fit one by one, not together.
        let e = with(&|m| {
            for i in 0..5 {
                m.insert(
                    format!("c{i}"),
                    "x".repeat(MAX_CARRIED_CLAIM_BYTES - 4).into(),
                );
            }
        })
        .unwrap_err();
        assert!(
            e.description.contains("larger than 4096 bytes together"),
            "{e:?}"
        );
        let registered = vec!["sub".to_owned(), "c0".to_owned()];
        let c = claims(|m| {
            m.insert("c0".into(), 1.into());
        });
        let carried = carried_claims(&c, &registered).unwrap();
        assert_eq!(carried.len(), 1, "a registered claim is never carried");
    }

    #[test]
    fn malformed_assertions_are_invalid_grant() {
        for bad in ["", "a.b", "a.b.c.d", "a.!!!.c", "a.e30.c.d"] {
            let e = unverified_claims(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{bad}");
        }
        assert!(unverified_claims("a.e30.c").unwrap().is_empty());
    }
}
