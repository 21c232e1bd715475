//! `/admin/tokens`: one token by its value, whoever it was issued to (incident response and
//! debugging).
//!
//! Owns the HTTP shape of [`tessera_core::admin::tokens`] (where the rules live): revoking an
//! access token (either format) or a refresh token (which revokes its whole grant, the access
//! tokens issued under it included, RFC 7009 §2.1), and looking at one as introspection would
//! (RFC 7662 §2.2) without consuming a single-use token. The value travels in the JSON body,
//! never in the URL (RFC 6749 §2.3.1's reasoning: URLs end up in logs), and is never logged.
//! Both need `tokens:write`: a look shows what a live credential carries. Every token of a
//! client is revoked under `/admin/clients`, every token of a user under
//! [`super::grants`].

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::tokens;
use utoipa::{OpenApi, ToSchema};

use super::{ApiResult, Body, ErrorBody, Need, TokensWrite};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tokens/revoke", post(revoke))
        .route("/admin/tokens/introspect", post(introspect))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(
    paths(revoke, introspect),
    components(schemas(TokenValue, Revoked, Introspected))
)]
pub struct TokensApi;

/// A token, by its value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenValue {
    /// The access or refresh token.
    #[schema(format = Password)]
    pub token: String,
}

/// Never the value: it is a live credential.
impl std::fmt::Debug for TokenValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenValue(..)")
    }
}

/// What revoking did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Whether the token was active (for a refresh token: whether its grant still stood) and
    /// is now revoked; false when there was nothing to revoke (unknown, expired, revoked
    /// already), which is not an error (RFC 7009 §2.2).
    pub revoked: bool,
}

/// What a token says, if it is active (RFC 7662 §2.2).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspected {
    /// Whether it is an active access token; the other fields are absent when not.
    pub active: bool,
    /// The client it was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Its scope (space-separated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Its audience (a string or an array of strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub aud: Option<serde_json::Value>,
    /// Its issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// When it was issued (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// When it expires (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `jwt` or `opaque`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The deployment environment it was issued in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Claims it carries from an assertion or a dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether it is single-use (this look did not consume it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
}

/// Revokes a token by its value.
#[utoipa::path(
    post,
    path = "/admin/tokens/revoke",
    tag = "tokens",
    request_body = TokenValue,
    responses(
        (status = 200, description = "Done; `revoked` says whether there was anything to revoke", body = Revoked),
        (status = 400, description = "No token in the body", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks tokens:write", body = ErrorBody),
    ),
    security(("admin_token" = ["tokens:write"]))
)]
pub async fn revoke(
    _: Need<TokensWrite>,
    State(state): State<AppState>,
    Body(body): Body<TokenValue>,
) -> ApiResult<Json<Revoked>> {
    let keys = state.keys();
    let cx = state.cx(&keys);
    let revoked = tokens::revoke(&cx, &body.token).await?;
    Ok(Json(Revoked { revoked }))
}

/// Shows whether a token is active and what it says, without consuming a single-use token.
#[utoipa::path(
    post,
    path = "/admin/tokens/introspect",
    tag = "tokens",
    request_body = TokenValue,
    responses(
        (status = 200, description = "What the token says", body = Introspected),
        (status = 400, description = "No token in the body", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks tokens:write", body = ErrorBody),
    ),
    security(("admin_token" = ["tokens:write"]))
)]
pub async fn introspect(
    _: Need<TokensWrite>,
    State(state): State<AppState>,
    Body(body): Body<TokenValue>,
) -> ApiResult<Json<Introspected>> {
    let keys = state.keys();
    let cx = state.cx(&keys);
    let Some(t) = tokens::inspect(&cx, &body.token).await? else {
        return Ok(Json(Introspected::default()));
    };
    Ok(Json(Introspected {
        active: true,
        client_id: Some(t.client_id),
        sub: Some(t.sub),
        scope: Some(t.scope),
        aud: serde_json::to_value(&t.aud).ok(),
        iss: Some(t.iss),
        iat: Some(t.iat),
        exp: Some(t.exp),
        jti: Some(t.jti),
        format: Some(t.format.as_str().to_owned()),
        env: Some(t.env),
        claims: Some(t.claims),
        single_use: Some(t.single_use),
    }))
}
