//! Token revocation (RFC 7009).
//!
//! Owns the revocation rules: the caller authenticates; a token it does not own, or that is
//! unknown or invalid, is answered with success and left alone (§2.2); a JWT is revoked by
//! recording its `jti` until it expires; an opaque token is marked revoked; a refresh token
//! revokes its whole grant, the access tokens issued under it included (§2.1). Looking a
//! token up here never consumes a single-use token: the owner's revocation ends it anyway,
//! and anyone else's request must leave it as it was.

use crate::audit::{self, Actor, AuditEvent, AuditKind};
use crate::client_auth::{self, BasicCredentials};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::refresh_token;
use crate::inspect::look;
use crate::model::{ClientRecord, TokenFormat};
use crate::params::Params;

/// Handles a revocation request; `Ok(())` is HTTP 200 with an empty body.
pub async fn handle(
    cx: &Cx<'_>,
    basic: Option<&BasicCredentials>,
    params: &Params,
) -> Result<(), OAuthError> {
    params.reject_duplicates()?;
    let (caller, method) = client_auth::authenticate(cx, basic, params).await?;
    crate::profile::check_client_auth(&caller, method, params, &cx.config.issuer)?;
    let token = params.require("token")?;
    if revoke_value(cx, token, Some(&caller)).await? {
        let kind = if token.starts_with(crate::opaque::REFRESH_PREFIX) {
            "refresh_token"
        } else {
            "access_token"
        };
        let event = AuditEvent::new(
            cx.now,
            AuditKind::TokenRevoked,
            Actor::Client(caller.client_id.clone()),
        )
        .target(caller.client_id.clone())
        .request(&cx.request)
        .detail(serde_json::json!({ "endpoint": "revoke", "token_type": kind }));
        audit::record(cx.store, event).await;
    }
    Ok(())
}

/// Revokes the token `token` by these rules, when `owner` is given only if it was issued to
/// that client (`None`: whoever it was issued to, for an operator). Returns whether something
/// was revoked: `false` for a token unknown, invalid, not active, already revoked, or another
/// client's.
pub async fn revoke_value(
    cx: &Cx<'_>,
    token: &str,
    owner: Option<&ClientRecord>,
) -> Result<bool, OAuthError> {
    if token.starts_with(crate::opaque::REFRESH_PREFIX) {
        let issued_to;
        let owner = match owner {
            Some(c) => c,
            None => {
                let Some(id) = crate::opaque::refresh_selector(token) else {
                    return Ok(false);
                };
                let Some(rec) = cx.store.get_refresh_token(id).await? else {
                    return Ok(false);
                };
                let Some(client) = cx.store.get_client(&rec.client_id).await? else {
                    return Ok(false);
                };
                issued_to = client;
                &issued_to
            }
        };
        return match refresh_token::find(cx, owner, token).await? {
            Some(rec) => Ok(cx.store.revoke_grant(&rec.grant_id, cx.now).await?),
            None => Ok(false),
        };
    }
    // RFC 7009 §2.1: an unknown token_type_hint is ignored, as the server searches anyway.
    let Some(t) = look(cx, token, None).await? else {
        return Ok(false);
    };
    // RFC 7009 §2.1: the server verifies that the token was issued to the requesting client.
    if owner.is_some_and(|c| t.client_id != c.client_id) {
        return Ok(false);
    }
    match (t.format, &t.token_id) {
        (TokenFormat::Opaque, Some(id)) => {
            cx.store.revoke_token(id, &t.client_id, cx.now).await?;
        }
        _ => {
            cx.store
                .revoke_jti(&t.jti, &t.client_id, t.exp, cx.now)
                .await?
        }
    }
    Ok(true)
}
