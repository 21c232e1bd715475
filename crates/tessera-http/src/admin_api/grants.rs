//! `/admin/users/{user}/consents` and `/admin/users/{user}/grants`: what a user agreed to and
//! granted, and taking it back.
//!
//! Owns the HTTP shape of [`tessera_core::admin::grants`] (where the rules live): listing a
//! user's consents (which client, which scope, since when) and grants (one per authorization,
//! live or revoked and when), revoking one consent (forgotten, so the next authorization
//! request asks again, with every grant of the user to that client), one grant (its access
//! and refresh tokens, RFC 7009 §2.1), or every grant of the user. A revocation is written to
//! the change feed in the same transaction, so every node stops honouring the tokens within
//! its feed interval, not only the node that answered. Reading needs `grants:read`, revoking
//! `grants:write`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tessera_core::admin::grants::{self, ConsentView, GrantView, RevokedConsent, RevokedGrant};
use utoipa::{OpenApi, ToSchema};

use super::{ApiError, ApiResult, ErrorBody, GrantsRead, GrantsWrite, Need, PathId};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users/{user}/consents", get(consents))
        .route(
            "/admin/users/{user}/consents/{client_id}",
            delete(revoke_consent),
        )
        .route("/admin/users/{user}/grants", get(list_grants))
        .route(
            "/admin/users/{user}/grants/{grant_id}",
            delete(revoke_grant),
        )
        .route("/admin/users/{user}/revoke-tokens", post(revoke_tokens))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(
    paths(consents, list_grants, revoke_consent, revoke_grant, revoke_tokens),
    components(schemas(
        Consent,
        Consents,
        Grant,
        Grants,
        ConsentRevoked,
        GrantRevoked,
        TokensRevoked
    ))
)]
pub struct GrantsApi;

/// Two path parameters (the user, then a client or grant id): a malformed one is a 400 in
/// the JSON shape, as [`PathId`] answers for one.
#[derive(Debug)]
pub struct PathPair(pub String, pub String);

impl FromRequestParts<AppState> for PathPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|p| PathPair(p.0 .0, p.0 .1))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A consent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    /// The client consented to.
    pub client_id: String,
    /// The scope consented to (space-separated).
    pub scope: String,
    /// When it was last given or widened (Unix seconds).
    pub granted_at: i64,
}

impl From<ConsentView> for Consent {
    fn from(c: ConsentView) -> Self {
        Self {
            client_id: c.client_id,
            scope: c.scope,
            granted_at: c.granted_at,
        }
    }
}

/// A user's consents, by client id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consents {
    /// The user's id.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// What they consented to.
    pub consents: Vec<Consent>,
}

/// A grant: one authorization and its token family.
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    /// Its id.
    pub grant_id: String,
    /// The client it was given to.
    pub client_id: String,
    /// The scope granted (space-separated).
    pub scope: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When the user signed in for it (Unix seconds).
    pub auth_time: i64,
    /// Until when its refresh tokens may be used (Unix seconds).
    pub refresh_expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl From<GrantView> for Grant {
    fn from(g: GrantView) -> Self {
        Self {
            grant_id: g.grant_id,
            client_id: g.client_id,
            scope: g.scope,
            created_at: g.created_at,
            auth_time: g.auth_time,
            refresh_expires_at: g.refresh_expires_at,
            revoked_at: g.revoked_at,
        }
    }
}

/// A user's grants, oldest first, live and revoked until the purge takes them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Grants {
    /// The user's id.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// What they granted.
    pub grants: Vec<Grant>,
}

/// What revoking a consent did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRevoked {
    /// The user's username.
    pub username: String,
    /// The client.
    pub client_id: String,
    /// Whether a consent was there and is now forgotten.
    pub consent_removed: bool,
    /// How many live grants to the client were revoked.
    pub grants_revoked: u64,
}

impl From<RevokedConsent> for ConsentRevoked {
    fn from(r: RevokedConsent) -> Self {
        Self {
            username: r.username,
            client_id: r.client_id,
            consent_removed: r.consent_removed,
            grants_revoked: r.grants_revoked,
        }
    }
}

/// What revoking a grant did.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantRevoked {
    /// The user's username.
    pub username: String,
    /// The grant.
    pub grant_id: String,
    /// The client it was given to.
    pub client_id: String,
    /// Whether it was live and is now revoked (false: it was revoked already).
    pub revoked: bool,
}

impl From<RevokedGrant> for GrantRevoked {
    fn from(r: RevokedGrant) -> Self {
        Self {
            username: r.username,
            grant_id: r.grant_id,
            client_id: r.client_id,
            revoked: r.revoked,
        }
    }
}

/// What revoking every token of a user did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokensRevoked {
    /// The user's id.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// How many live grants were revoked.
    pub grants_revoked: u64,
}

/// Lists a user's consents.
#[utoipa::path(
    get,
    path = "/admin/users/{user}/consents",
    tag = "grants",
    params(("user" = String, Path, description = "Username or user id")),
    responses(
        (status = 200, description = "The user's consents", body = Consents),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks grants:read", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["grants:read"]))
)]
pub async fn consents(
    _: Need<GrantsRead>,
    State(state): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<Consents>> {
    let listed = grants::list(state.store(), &user).await?;
    Ok(Json(Consents {
        user_id: listed.user_id,
        username: listed.username,
        consents: listed.consents.into_iter().map(Consent::from).collect(),
    }))
}

/// Lists a user's grants.
#[utoipa::path(
    get,
    path = "/admin/users/{user}/grants",
    tag = "grants",
    params(("user" = String, Path, description = "Username or user id")),
    responses(
        (status = 200, description = "The user's grants", body = Grants),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks grants:read", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["grants:read"]))
)]
pub async fn list_grants(
    _: Need<GrantsRead>,
    State(state): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<Grants>> {
    let listed = grants::list(state.store(), &user).await?;
    Ok(Json(Grants {
        user_id: listed.user_id,
        username: listed.username,
        grants: listed.grants.into_iter().map(Grant::from).collect(),
    }))
}

/// Revokes a user's consent to a client, with every grant of theirs to it.
#[utoipa::path(
    delete,
    path = "/admin/users/{user}/consents/{client_id}",
    tag = "grants",
    params(
        ("user" = String, Path, description = "Username or user id"),
        ("client_id" = String, Path, description = "The client"),
    ),
    responses(
        (status = 200, description = "Revoked", body = ConsentRevoked),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks grants:write", body = ErrorBody),
        (status = 404, description = "No such user, or neither a consent nor a live grant", body = ErrorBody),
    ),
    security(("admin_token" = ["grants:write"]))
)]
pub async fn revoke_consent(
    _: Need<GrantsWrite>,
    State(state): State<AppState>,
    PathPair(user, client_id): PathPair,
) -> ApiResult<Json<ConsentRevoked>> {
    let done = grants::revoke_consent(state.store(), &user, &client_id, state.now()).await?;
    Ok(Json(done.into()))
}

/// Revokes one grant of a user: its access and refresh tokens stop working at once.
#[utoipa::path(
    delete,
    path = "/admin/users/{user}/grants/{grant_id}",
    tag = "grants",
    params(
        ("user" = String, Path, description = "Username or user id"),
        ("grant_id" = String, Path, description = "The grant"),
    ),
    responses(
        (status = 200, description = "Revoked (or revoked already)", body = GrantRevoked),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks grants:write", body = ErrorBody),
        (status = 404, description = "No such user, or no such grant of theirs", body = ErrorBody),
    ),
    security(("admin_token" = ["grants:write"]))
)]
pub async fn revoke_grant(
    _: Need<GrantsWrite>,
    State(state): State<AppState>,
    PathPair(user, grant_id): PathPair,
) -> ApiResult<Json<GrantRevoked>> {
    let done = grants::revoke_grant(state.store(), &user, &grant_id, state.now()).await?;
    Ok(Json(done.into()))
}

/// Revokes every access and refresh token of a user; the user and their consents stay.
#[utoipa::path(
    post,
    path = "/admin/users/{user}/revoke-tokens",
    tag = "grants",
    params(("user" = String, Path, description = "Username or user id")),
    responses(
        (status = 200, description = "Revoked", body = TokensRevoked),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks grants:write", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["grants:write"]))
)]
pub async fn revoke_tokens(
    _: Need<GrantsWrite>,
    State(state): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<TokensRevoked>> {
    let (user, n) = grants::revoke_tokens(state.store(), &user, state.now()).await?;
    Ok(Json(TokensRevoked {
        user_id: user.user_id,
        username: user.username,
        grants_revoked: n,
    }))
}
