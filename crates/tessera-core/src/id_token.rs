//! OpenID Connect ID tokens and the user claims they share with userinfo.
//!
//! Owns [`issue`] (OpenID Connect Core §2: `iss`, `sub`, `aud`, `exp`, `iat`, `auth_time`,
//! `nonce`, `at_hash`, `sid` of OpenID Connect Back-Channel Logout 1.0 §2.1, plus the user's
//! claims by scope), [`user_claims`] (what the `profile`
//! and `email` scopes release, also served by userinfo) and [`verify_hint`] (an
//! `id_token_hint` at logout: our signature and issuer, expiry ignored as §3.1.2.1 allows).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::keys::{KeySet, SigningAlg};
use crate::model::UserRecord;
use crate::scope::ScopeSet;

/// What an ID token is about.
#[derive(Debug)]
pub struct IdTokenFor<'a> {
    /// The user.
    pub user: &'a UserRecord,
    /// The client (the audience).
    pub client_id: &'a str,
    /// The `nonce` of the authorization request.
    pub nonce: Option<&'a str>,
    /// When the user signed in.
    pub auth_time: i64,
    /// Granted scope.
    pub scope: &'a ScopeSet,
    /// The access token issued with it, for `at_hash`.
    pub access_token: &'a str,
    /// The session id of the sign-in session (OpenID Connect Back-Channel Logout 1.0 §2.1),
    /// when the grant came from one.
    pub sid: Option<&'a str>,
}

/// The claims the granted scope releases about a user (OpenID Connect Core §5.4).
pub fn user_claims(user: &UserRecord, scope: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.user_id));
    if scope.contains("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
    }
    if scope.contains("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            // Tessera does not verify addresses; the operator entered it.
            claims.insert("email_verified".into(), json!(false));
        }
    }
    claims
}

/// `at_hash`: the left half of the hash of the access token, with the hash of the signing
/// algorithm (SHA-256 for ES256; SHA-512 for EdDSA over Ed25519).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let (algorithm, half) = match alg {
        SigningAlg::Es256 => (&digest::SHA256, 16),
        SigningAlg::EdDsa => (&digest::SHA512, 32),
    };
    let d = digest::digest(algorithm, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref().get(..half).unwrap_or_default())
}

/// Signs an ID token.
pub fn issue(cx: &Cx<'_>, t: &IdTokenFor<'_>) -> Result<String, OAuthError> {
    let key = cx
        .keys
        .signing_key(cx.now)
        .map_err(OAuthError::server_error)?;
    let mut claims = user_claims(t.user, t.scope);
    claims.insert("iss".into(), json!(cx.config.issuer));
    claims.insert("aud".into(), json!(t.client_id));
    claims.insert("azp".into(), json!(t.client_id));
    claims.insert("iat".into(), json!(cx.now));
    claims.insert("exp".into(), json!(cx.now + cx.config.id_token_ttl));
    claims.insert("auth_time".into(), json!(t.auth_time));
    claims.insert("at_hash".into(), json!(at_hash(key.alg, t.access_token)));
    if let Some(nonce) = t.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = t.sid {
        claims.insert("sid".into(), json!(sid));
    }
    crate::jwt::encode_json(key, &Value::Object(claims)).map_err(OAuthError::server_error)
}

/// The `sub` and `aud` of an ID token we signed, whatever its expiry, with an `iss` that is
/// one of this server's names ([`Config::accepts_issuer`]: the main issuer or any configured
/// host); `None` otherwise.
pub fn verify_hint(
    keys: &KeySet,
    token: &str,
    config: &Config,
    now: i64,
) -> Option<(String, String)> {
    let mut parts = token.splitn(3, '.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let key = keys.verifier(header.get("kid")?.as_str()?, now)?;
    if header.get("alg")?.as_str()? != key.alg.as_str() {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
    let signed = token.get(..h.len() + 1 + p.len())?;
    if !key.verify(signed.as_bytes(), &sig) {
        return None;
    }
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    if !config.accepts_issuer(claims.get("iss")?.as_str()?) {
        return None;
    }
    Some((
        claims.get("sub")?.as_str()?.to_owned(),
        claims.get("aud")?.as_str()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        // with RS256 (SHA-256) gives "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            at_hash(
                SigningAlg::Es256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDsa, "x").len(), 43);
    }

    #[test]
    fn claims_follow_the_scope() {
        let user = UserRecord {
            user_id: "u1".into(),
            username: "alice".into(),
            password_hash: String::new(),
            email: Some("a@example.com".into()),
            name: Some("Alice".into()),
            created_at: 0,
            updated_at: 0,
        };
        let only_openid = user_claims(&user, &ScopeSet::parse("openid").unwrap_or_default());
        assert_eq!(only_openid.len(), 1);
        let all = user_claims(
            &user,
            &ScopeSet::parse("openid profile email").unwrap_or_default(),
        );
        assert_eq!(all.get("name"), Some(&json!("Alice")));
        assert_eq!(all.get("email"), Some(&json!("a@example.com")));
    }

    #[test]
    fn a_hint_issued_as_any_host_verifies_everywhere_and_nothing_else_does() {
        use crate::config::Host;
        use crate::keys::{generate_key, Sealer};
        let sealer = Sealer::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let keys = KeySet::load(
            &[generate_key(SigningAlg::Es256, &sealer, 0, 0).unwrap()],
            &sealer,
        )
        .unwrap();
        let main = Config::new("https://auth.example.com").with_hosts(vec![Host::parse(
            "https://api.customer.com",
            Some("prod".into()),
        )
        .unwrap()]);
        let custom = main.for_host(&main.hosts[0]);
        let hint = |iss: &str| {
            let claims = json!({"iss": iss, "sub": "u1", "aud": "c1", "exp": 1});
            crate::jwt::encode_json(keys.signing_key(10).unwrap(), &claims).unwrap()
        };
        for iss in ["https://auth.example.com", "https://api.customer.com"] {
            for config in [&main, &custom] {
                assert_eq!(
                    verify_hint(&keys, &hint(iss), config, 10),
                    Some(("u1".into(), "c1".into())),
                    "{iss} at {}",
                    config.issuer
                );
            }
        }
        for other in ["https://evil.example", "https://api.customer.com/", ""] {
            assert_eq!(
                verify_hint(&keys, &hint(other), &custom, 10),
                None,
                "{other}"
            );
        }
        // Without the host configured, its tokens are someone else's.
        let alone = Config::new("https://auth.example.com");
        assert_eq!(
            verify_hint(&keys, &hint("https://api.customer.com"), &alone, 10),
            None
        );
    }
}
