//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5).
//!
//! Owns the exchange of a code: spent atomically (a second use is refused and revokes every
//! token issued from the code, RFC 6749 §4.1.2), bound to the client, the redirect URI and the
//! PKCE challenge it was issued with (a replay is recorded in the audit trail,
//! [`crate::audit`]); then a new user grant (token family) is stored, with a
//! refresh token when the client's policy gives one (through a dialect, the dialect's refresh
//! rules, [`crate::dialect`]), and the tokens are issued, the access token carrying the
//! authorization-request parameters the code's dialect kept ([`crate::dialect::carried_claims`]).

use crate::audit::{self, Actor, AuditEvent, AuditKind};
use crate::cx::Cx;
use crate::error::OAuthError;
use crate::grant::types;
use crate::grant::user_tokens::{first_refresh, narrowed_scope, respond, wants_refresh, FromCode};
use crate::grant::TokenResponse;
use crate::model::{ClientRecord, CodeRecord, CodeUse, GrantRecord, RefreshPolicy};
use crate::params::Params;
use crate::pkce;
use crate::resource;
use crate::scope::ScopeSet;
use crate::secret::SecretHash;

/// The grant type this module handles.
pub const GRANT_TYPE: &str = types::AUTHORIZATION_CODE;

/// This grant's row in [`crate::grant::GRANTS`].
pub const GRANT: crate::grant::Grant = crate::grant::Grant {
    grant_type: GRANT_TYPE,
    label: "authorization_code",
    handle: |cx, client, params| Box::pin(handle(cx, client, params)),
    needs_redirect_uri: true,
    public_clients: true,
    acts_for_user: true,
};

/// Exchanges a code for tokens.
pub async fn handle(
    cx: &Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization_code grant",
        ));
    }
    let code = params.require("code")?;
    let redirect_uri = params.get("redirect_uri")?;
    let verifier = params.get("code_verifier")?;
    let asked_scope = params.get("scope")?;
    let invalid = || OAuthError::invalid_grant("the authorization code is invalid or expired");
    let rec = match cx.store.use_code(&SecretHash::of(code), cx.now).await? {
        CodeUse::Unknown => return Err(invalid()),
        CodeUse::Replayed(rec) => {
            // RFC 6749 §4.1.2: deny, and revoke the tokens already issued from the code; but
            // only for the client it was issued to, proving the PKCE verifier when the code
            // has a challenge (a public client is otherwise just a client_id anyone can
            // send). Anyone else holding the code gets the same answer as for an unknown one
            // and cannot revoke another client's grant with it.
            let by_its_client = replay_is_by_its_client(&rec, client, verifier);
            if by_its_client {
                cx.store.revoke_grant(&rec.grant_id, cx.now).await?;
            }
            let event = AuditEvent::new(
                cx.now,
                AuditKind::CodeReplayed,
                Actor::Client(client.client_id.clone()),
            )
            .target(rec.client_id.clone())
            .failed()
            .request(&cx.request)
            .detail(serde_json::json!({
                "grant_id": rec.grant_id,
                "grant_revoked": by_its_client,
            }));
            audit::record(cx.store, event).await;
            if !by_its_client {
                return Err(invalid());
            }
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; tokens issued from it are revoked",
            ));
        }
        CodeUse::Fresh(rec) => rec,
    };
    if rec.client_id != client.client_id || rec.expires_at <= cx.now {
        return Err(invalid());
    }
    check_redirect_uri(&rec, client, redirect_uri)?;
    match (&rec.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            let method = rec.code_challenge_method.as_deref().unwrap_or(pkce::PLAIN);
            if !pkce::verify(challenge, method, v) {
                return Err(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required: the authorization request sent a code_challenge",
            ))
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is an attack
        // (PKCE downgrade).
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    crate::sender::check_code_binding(cx, dpop_jkt_of(&rec.extra).as_deref())?;
    let granted = crate::dialect::exchange_scope(
        cx.dialect,
        ScopeSet::parse(&rec.scope)?,
        asked_scope,
        &client.scopes,
    )?;
    let scope = narrowed_scope(asked_scope, &granted)?;
    let audience = resource::resolve(params, client, cx.config)?;
    let carried = crate::dialect::carried_claims(&rec.extra);
    let flow = &client.user_flow;
    // Through a dialect, its refresh rules: its absolute lifetime and its policy, except
    // that a client whose policy is `never` gets no refresh token whatever the dialect says.
    let refresh_ttl = cx
        .dialect
        .and_then(|d| d.refresh_token_ttl)
        .unwrap_or(flow.refresh_token_ttl);
    let policy = match (
        flow.refresh_tokens,
        cx.dialect.and_then(|d| d.refresh_tokens),
    ) {
        (RefreshPolicy::Never, _) | (_, None) => flow.refresh_tokens,
        (_, Some(dialect)) => dialect,
    };
    let refresh_end = rec.auth_time.saturating_add(refresh_ttl);
    let wants_refresh = wants_refresh(policy, &granted, refresh_end, cx.now);
    let grant = GrantRecord {
        grant_id: rec.grant_id.clone(),
        client_id: client.client_id.clone(),
        user_id: rec.user_id.clone(),
        scope: granted.to_string(),
        auth_time: rec.auth_time,
        nonce: rec.nonce.clone(),
        token_epoch: client.token_epoch,
        created_at: cx.now,
        refresh_expires_at: if wants_refresh { refresh_end } else { cx.now },
        // Kept until the last access token that names it has expired.
        expires_at: (if wants_refresh { refresh_end } else { cx.now })
            .saturating_add(cx.config.max_access_token_ttl),
        revoked_at: None,
        // Carried into every token of the family, refreshed ones included.
        claims: (!carried.is_empty())
            .then(|| serde_json::Value::Object(carried.clone()).to_string()),
        sid: rec.sid.clone(),
        dpop_jkt: crate::sender::refresh_binding(cx, client),
    };
    let refresh = wants_refresh.then(|| first_refresh(cx, client, &grant, refresh_end));
    cx.store
        .insert_grant(&grant, refresh.as_ref().map(|(_, r)| r))
        .await?;
    respond(
        cx,
        client,
        &grant,
        &scope,
        audience,
        refresh.map(|(v, _)| v),
        FromCode {
            nonce: rec.nonce.as_deref(),
            carried,
        },
    )
    .await
}

/// RFC 6749 §4.1.3: `redirect_uri` is required at the token endpoint when the authorization
/// request included it, and must be identical. A code whose request left it out (a client
/// with one registered URI; the code records an empty URI) may be exchanged without it, or
/// with that one registered URI.
fn check_redirect_uri(
    rec: &CodeRecord,
    client: &ClientRecord,
    redirect_uri: Option<&str>,
) -> Result<(), OAuthError> {
    let differs =
        || OAuthError::invalid_grant("redirect_uri differs from the authorization request");
    match (rec.redirect_uri.as_str(), redirect_uri) {
        ("", None) => Ok(()),
        ("", Some(uri)) if client.redirect_uris.as_slice() == [uri] => Ok(()),
        ("", Some(_)) => Err(differs()),
        (named, Some(uri)) if uri == named => Ok(()),
        (_, Some(_)) => Err(differs()),
        (_, None) => Err(OAuthError::invalid_request(
            "redirect_uri is required: the authorization request included it (RFC 6749 §4.1.3)",
        )),
    }
}

/// Whether a replayed code is presented by the client it was issued to: the same client id
/// (authenticated, for a confidential client) and, for a code bound to a PKCE challenge, the
/// verifier that matches it.
fn replay_is_by_its_client(
    rec: &CodeRecord,
    client: &ClientRecord,
    verifier: Option<&str>,
) -> bool {
    if rec.client_id != client.client_id {
        return false;
    }
    match (&rec.code_challenge, verifier) {
        (None, _) => true,
        (Some(challenge), Some(v)) => {
            let method = rec.code_challenge_method.as_deref().unwrap_or(pkce::PLAIN);
            pkce::verify(challenge, method, v)
        }
        (Some(_), None) => false,
    }
}

/// The `dpop_jkt` of the authorization request a code came from (RFC 9449 §10), kept among
/// its extra parameters.
fn dpop_jkt_of(extra: &str) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(extra).ok()?;
    map.get("dpop_jkt")?.as_str().map(str::to_owned)
}
