//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).
//!
//! Owns the exchange of a refresh token: found by its public id, compared by hash in constant
//! time, bound to its client; rotated on every use in one atomic step, so that of concurrent
//! uses exactly one wins. A rotated-out token presented again means it was copied: the whole
//! grant (every access and refresh token of the family) is revoked, unless the client has a
//! grace period and the successor is still unused, in which case the same successor is
//! returned (for clients retrying over bad networks). Rotation never extends the family's
//! absolute lifetime, counted from the user's sign-in.
//!
//! A client of the FAPI 2.0 profile is not rotated ([`profile::rotates_refresh_tokens`],
//! FAPI 2.0 §5.3.2.1 item 9): its refresh token is checked as above and stays valid, the
//! response carries no new one, and its expiry moves on with an idle lifetime as a successor's
//! would (never past the family's end). It is never marked used, so presenting it again is
//! not a reuse; a token rotated out before the client took the profile still is one.

use crate::audit::{self, Actor, AuditEvent, AuditKind};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::types;
use crate::grant::user_tokens::{narrowed_scope, respond, FromCode};
use crate::grant::TokenResponse;
use crate::model::{ClientRecord, GrantRecord, RefreshPolicy, RefreshRecord};
use crate::opaque;
use crate::params::Params;
use crate::profile;
use crate::resource;
use crate::scope::ScopeSet;
use crate::secret::{Secret, SecretHash};

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::REFRESH_TOKEN;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "refresh_token",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: false,
    public_clients: true,
    acts_for_user: true,
};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

/// Exchanges a refresh token for new tokens.
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !may_refresh(client) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the refresh_token grant",
        ));
    }
    // A dialect that gives no refresh tokens takes none either.
    if cx.dialect.and_then(|d| d.refresh_tokens) == Some(RefreshPolicy::Never) {
        return Err(OAuthError::unauthorized_client(
            "refresh tokens are not offered at this token endpoint",
        ));
    }
    let presented = params.require("refresh_token")?;
    let asked_scope = params.get("scope")?;
    let rec = find(cx, client, presented).await?.ok_or_else(invalid)?;
    let grant = standing_grant(cx, client, &rec.grant_id)
        .await?
        .ok_or_else(invalid)?;
    // RFC 9449 §5: a public client's family is bound to the key that started it.
    crate::sender::check_refresh_binding(cx, grant.dpop_jkt.as_deref())?;
    crate::mtls::check_refresh_binding(cx, grant.x5t_s256.as_deref())?;
    if rec.used_at.is_some() {
        return reuse(cx, client, &grant, &rec, params, asked_scope).await;
    }
    if rec.expires_at <= cx.now {
        return Err(invalid());
    }
    let flow = &client.user_flow;
    // The absolute lifetime of the dialect the request came through, counted from the
    // sign-in, caps the family's as well.
    let family_end = match cx.dialect.and_then(|d| d.refresh_token_ttl) {
        Some(ttl) => grant
            .refresh_expires_at
            .min(grant.auth_time.saturating_add(ttl)),
        None => grant.refresh_expires_at,
    };
    let exp = if flow.refresh_token_idle_ttl > 0 {
        family_end.min(cx.now.saturating_add(flow.refresh_token_idle_ttl))
    } else {
        family_end
    };
    if exp <= cx.now {
        return Err(invalid());
    }
    let granted = ScopeSet::parse(&rec.scope)?;
    let scope = narrowed_scope(asked_scope, &granted)?;
    let audience = resource::resolve(params, client, cx.config)?;
    if !profile::rotates_refresh_tokens(client) {
        // An idle lifetime counts from the last use: the token that stays moves on with it.
        if flow.refresh_token_idle_ttl > 0
            && exp > rec.expires_at
            && !cx.store.extend_refresh_token(&rec.token_id, exp).await?
        {
            return Err(invalid());
        }
        let from_code = FromCode::refresh(&grant);
        return respond(cx, client, &grant, &scope, audience, None, from_code).await;
    }
    let (value, token_id) = opaque::mint_refresh(exp);
    let successor = RefreshRecord {
        token_id,
        token_hash: value.hash(),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        // RFC 6749 §6: the new refresh token has the scope of the old one.
        scope: rec.scope.clone(),
        issued_at: cx.now,
        expires_at: exp,
        used_at: None,
        successor_sealed: None,
    };
    let sealed = if flow.refresh_grace_period > 0 {
        Some(
            cx.sealer
                .seal(&rec.token_id, value.expose().as_bytes())
                .map_err(OAuthError::server_error)?,
        )
    } else {
        None
    };
    let rotated = cx
        .store
        .rotate_refresh_token(&rec.token_id, &successor, sealed.as_deref(), cx.now)
        .await?;
    if !rotated {
        // Another request rotated it first: this one is a second use of the same token.
        let now_used = cx
            .store
            .get_refresh_token(&rec.token_id)
            .await?
            .ok_or_else(invalid)?;
        return reuse(cx, client, &grant, &now_used, params, asked_scope).await;
    }
    respond(
        cx,
        client,
        &grant,
        &scope,
        audience,
        Some(value),
        FromCode::refresh(&grant),
    )
    .await
}

/// Whether `client` is registered for the refresh token grant (RFC 6749 §5.2
/// `unauthorized_client` otherwise): its registration names `refresh_token`, or it names
/// `authorization_code`, whose refresh tokens the client's refresh policy governs (a client
/// registered for the code flow gets refresh tokens by that policy, as documented); and the
/// policy is not `never`. A client registered for neither (client credentials or JWT bearer
/// only, or taken off the code flow since) may not refresh, whatever tokens it still holds.
pub fn may_refresh(client: &ClientRecord) -> bool {
    (client.allows_grant(GRANT_TYPE) || client.allows_grant(types::AUTHORIZATION_CODE))
        && client.user_flow.refresh_tokens != RefreshPolicy::Never
}

/// The stored refresh token `presented` is, if it is one of `client`'s: found by its public
/// id, compared by hash in constant time. Used or not, expired or not.
pub async fn find(
    cx: &Cx<'_>,
    client: &ClientRecord,
    presented: &str,
) -> Result<Option<RefreshRecord>, OAuthError> {
    let Some(id) = opaque::refresh_selector(presented) else {
        return Ok(None);
    };
    Ok(cx.store.get_refresh_token(id).await?.filter(|r| {
        r.token_hash.ct_eq(&SecretHash::of(presented)) && r.client_id == client.client_id
    }))
}

/// The grant a refresh token of `client` belongs to, if it still stands (not revoked, and
/// the client's secret was not rotated since).
pub async fn standing_grant(
    cx: &Cx<'_>,
    client: &ClientRecord,
    grant_id: &str,
) -> Result<Option<GrantRecord>, OAuthError> {
    Ok(cx
        .store
        .get_grant(grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none() && g.token_epoch == client.token_epoch))
}

/// A rotated-out token was presented again.
async fn reuse(
    cx: &Cx<'_>,
    client: &ClientRecord,
    grant: &GrantRecord,
    rec: &RefreshRecord,
    params: &Params,
    asked_scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let grace = client.user_flow.refresh_grace_period;
    if let (Some(used_at), Some(sealed)) = (rec.used_at, &rec.successor_sealed) {
        if grace > 0 && cx.now - used_at <= grace {
            if let Some(successor) = unused_successor(cx, rec, sealed).await? {
                let granted = ScopeSet::parse(&rec.scope)?;
                let scope = narrowed_scope(asked_scope, &granted)?;
                let audience = resource::resolve(params, client, cx.config)?;
                return respond(
                    cx,
                    client,
                    grant,
                    &scope,
                    audience,
                    Some(successor),
                    FromCode::refresh(grant),
                )
                .await;
            }
        }
    }
    cx.store.revoke_grant(&grant.grant_id, cx.now).await?;
    let event = AuditEvent::new(
        cx.now,
        AuditKind::RefreshTokenReplayed,
        Actor::Client(client.client_id.clone()),
    )
    .target(client.client_id.clone())
    .failed()
    .request(&cx.request)
    .detail(serde_json::json!({
        "grant_id": grant.grant_id,
        "user_id": grant.user_id,
        "grant_revoked": true,
    }));
    audit::record(cx.store, event).await;
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; every token of its grant is revoked",
    ))
}

/// The successor of a rotated token, if it has not been used itself.
async fn unused_successor(
    cx: &Cx<'_>,
    rec: &RefreshRecord,
    sealed: &[u8],
) -> Result<Option<Secret>, OAuthError> {
    let Ok(plain) = cx.sealer.open(&rec.token_id, sealed) else {
        return Ok(None);
    };
    let Ok(value) = String::from_utf8(plain) else {
        return Ok(None);
    };
    let Some(id) = opaque::refresh_selector(&value) else {
        return Ok(None);
    };
    let unused = cx
        .store
        .get_refresh_token(id)
        .await?
        .is_some_and(|s| s.used_at.is_none() && s.expires_at > cx.now);
    Ok(unused.then(|| Secret::new(value)))
}
