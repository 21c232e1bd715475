//! Deciding whether an access token presented to Tessera is active.
//!
//! Owns [`inspect`]: the one place that answers "is this token valid now, and what does it
//! say", used by introspection, revocation and (later) every endpoint that accepts a bearer
//! token. A token is active when it verifies (JWT) or is found by hash (opaque), has not
//! expired, was not revoked, its client still exists, the client's token epoch has not
//! moved past it (a secret rotation revokes everything issued before), and, for a token
//! issued for a user, its grant was not revoked.
//!
//! A single-use token is consumed by [`consume`]: one atomic
//! [`crate::store::ReplayStore::use_once`] on its `jti` in the database every node shares,
//! after every cached step, so no cache can answer "active" twice. [`look`] runs every check
//! without consuming (a consumed token is inactive for it): each endpoint looks, then runs its
//! own rules (the caller's environment, ownership, the token's audience and type), and only a
//! request that passed all of them consumes the token. A caller with no right to the token
//! (another client revoking it, a client-credentials token at `/userinfo`) or an operator's
//! look (`tessera token introspect`) never uses it up.

use std::sync::Arc;

use ring::digest;

use crate::cx::Cx;
use crate::error::OAuthError;
use crate::jwt::{self, AccessClaims};
use crate::model::TokenFormat;
use crate::opaque;
use crate::secret::SecretHash;

/// What an active token says.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveToken {
    /// The client it was issued to.
    pub client_id: String,
    /// Subject.
    pub sub: String,
    /// Granted scope.
    pub scope: String,
    /// Audience.
    pub aud: crate::resource::Audience,
    /// The issuer it was issued as: the main issuer or the host it was asked at.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Its format.
    pub format: TokenFormat,
    /// The stored id of an opaque token.
    pub token_id: Option<String>,
    /// The user grant it descends from.
    pub grant_id: Option<String>,
    /// When the user signed in, for a token issued for a user.
    pub auth_time: Option<i64>,
    /// The deployment environment it was issued in.
    pub env: String,
    /// Claims carried from a JWT assertion.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Whether it was single-use (and this check consumed it).
    pub single_use: bool,
}

/// Looks a token up, checks it and consumes it if single-use; `None` when it is not active
/// for any reason. For a caller with no further rules to apply than [`look`]'s.
pub async fn inspect(cx: &Cx<'_>, token: &str) -> Result<Option<ActiveToken>, OAuthError> {
    inspect_in_env(cx, token, None).await
}

/// [`inspect`] for a caller of one deployment environment: a token of another environment
/// is not active for it, and a single-use one is not consumed by it.
pub async fn inspect_in_env(
    cx: &Cx<'_>,
    token: &str,
    env: Option<&str>,
) -> Result<Option<ActiveToken>, OAuthError> {
    let Some(found) = look(cx, token, env).await? else {
        return Ok(None);
    };
    Ok(consume(cx, &found).await?.then_some(found))
}

/// Accepts a token [`look`] found active: for a single-use token, the one atomic use that
/// exactly one check, on any node, wins; `false` when another check used it first. Call it
/// only once every rule of the endpoint has passed.
pub async fn consume(cx: &Cx<'_>, token: &ActiveToken) -> Result<bool, OAuthError> {
    if !token.single_use {
        return Ok(true);
    }
    Ok(cx
        .store
        .use_once(&single_use_key(&token.jti), token.exp)
        .await?)
}

fn single_use_key(jti: &str) -> String {
    format!("access_token:{jti}")
}

/// Every check of [`inspect`] (for a caller of environment `env`, when given), without
/// consuming anything: a single-use token already consumed is inactive, an unused one stays
/// unused.
pub async fn look(
    cx: &Cx<'_>,
    token: &str,
    env: Option<&str>,
) -> Result<Option<ActiveToken>, OAuthError> {
    let found = if jwt::looks_like_jwt(token) {
        let Some(claims) = verified_claims(cx, token) else {
            return Ok(None);
        };
        if cx.store.is_jti_revoked(&claims.jti).await? {
            return Ok(None);
        }
        ActiveToken {
            client_id: claims.client_id.clone(),
            sub: claims.sub.clone(),
            scope: claims.scope.clone(),
            aud: claims.aud.clone(),
            iss: claims.iss.clone(),
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti.clone(),
            format: TokenFormat::Jwt,
            token_id: None,
            grant_id: claims.gid.clone(),
            auth_time: claims.auth_time,
            env: claims.env.clone(),
            claims: claims.extra.clone(),
            single_use: claims.single_use,
        }
    } else {
        let Some(id) = opaque::selector(token) else {
            return Ok(None);
        };
        let Some(rec) = cx.store.get_token(id).await? else {
            return Ok(None);
        };
        if !rec.token_hash.ct_eq(&SecretHash::of(token)) {
            return Ok(None);
        }
        if rec.revoked_at.is_some() || rec.expires_at <= cx.now {
            return Ok(None);
        }
        let mut claims: serde_json::Map<String, serde_json::Value> = rec
            .claims
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        // Stored among the claims only when it was not the main issuer (`issue`): no carried
        // claim is ever named `iss` (`jwt::REGISTERED_CLAIMS`).
        let iss = match claims.remove("iss") {
            Some(serde_json::Value::String(iss)) => iss,
            _ => cx.config.main_issuer().to_owned(),
        };
        ActiveToken {
            client_id: rec.client_id,
            sub: rec.subject,
            scope: rec.scope,
            aud: rec.audience,
            iss,
            iat: rec.issued_at,
            exp: rec.expires_at,
            jti: rec.jti,
            format: TokenFormat::Opaque,
            token_id: Some(rec.token_id),
            grant_id: rec.grant_id,
            auth_time: None,
            env: rec.env,
            claims,
            single_use: rec.single_use,
        }
    };
    // Deleting a client or rotating its secret revokes its tokens.
    let Some(client) = cx.store.get_client(&found.client_id).await? else {
        return Ok(None);
    };
    if jwt::jti_epoch(&found.jti) != client.token_epoch {
        return Ok(None);
    }
    // A token issued for a user dies with its grant (revocation, refresh-token reuse, code
    // replay, the user's deletion).
    if let Some(grant_id) = &found.grant_id {
        match cx.store.get_grant(grant_id).await? {
            Some(g) if g.revoked_at.is_none() => {}
            _ => return Ok(None),
        }
    }
    if env.is_some_and(|e| e != found.env) {
        return Ok(None);
    }
    // A single-use token some check already consumed.
    if found.single_use && cx.store.was_used(&single_use_key(&found.jti)).await? {
        return Ok(None);
    }
    Ok(Some(found))
}

/// The verified claims of a JWT signed by us and not expired, from the cache when possible.
pub fn verified_claims(cx: &Cx<'_>, token: &str) -> Option<Arc<AccessClaims>> {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    if let Some(claims) = cx.verified.get(&key) {
        return (claims.exp > cx.now).then_some(claims);
    }
    let claims = Arc::new(
        jwt::verify_for(cx.keys, token, |iss| cx.config.accepts_issuer(iss), cx.now).ok()?,
    );
    cx.verified.insert(key, claims.clone());
    Some(claims)
}
