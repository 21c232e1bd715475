//! `/admin/keys`: the server's signing keys.
//!
//! Owns the HTTP shape of [`tessera_core::admin::keys`] (where the rules live): listing the
//! keys (public parts only: id, algorithm, dates, state) and rotating (a new key published in
//! the JWKS at once and signing after a lead time, at least the JWKS cache lifetime, so that
//! no relying party meets a token signed by a key it cannot fetch yet). The node that
//! answers reloads its keys at once; the others learn of the new key through the change
//! feed. Re-sealing is not offered here: it takes the new sealing secret, which should not
//! travel over a network, and every server must restart with it afterwards (the command
//! line's `tessera keys reseal` does it next to the database). Reading needs `keys:read`,
//! rotating `keys:write`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::keys;
use tessera_core::admin::AdminError;
use utoipa::{OpenApi, ToSchema};

use super::{ApiResult, ErrorBody, KeysRead, KeysWrite, MaybeBody, Need};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list))
        .route("/admin/keys/rotate", post(rotate))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(paths(list, rotate), components(schemas(Key, Rotation, Rotated)))]
pub struct KeysApi;

/// A signing key, public parts only.
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    /// Its key id (`kid`).
    pub kid: String,
    /// Its JWS algorithm.
    pub alg: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
    /// When it signs from (Unix seconds).
    pub activates_at: i64,
    /// When it stops being published, once superseded (Unix seconds).
    pub retires_at: Option<i64>,
    /// Which sealing secret seals it (a fingerprint, not the secret).
    pub sealed_by: Option<String>,
    /// `pending`, `active`, `superseded` or `retired`.
    pub state: String,
}

/// A rotation to make.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Seconds before the new key signs [default: the configured
    /// `key_rotation_lead_time`]; at least the JWKS cache lifetime.
    #[serde(default)]
    pub lead_time: Option<i64>,
}

/// A key made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// Its key id.
    pub kid: String,
    /// Its JWS algorithm.
    pub alg: String,
    /// When it signs from (Unix seconds).
    pub activates_at: i64,
}

/// Lists the signing keys, oldest first.
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "keys",
    responses(
        (status = 200, description = "The keys", body = Vec<Key>),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks keys:read", body = ErrorBody),
    ),
    security(("admin_token" = ["keys:read"]))
)]
pub async fn list(_: Need<KeysRead>, State(state): State<AppState>) -> ApiResult<Json<Vec<Key>>> {
    let listed = keys::list(state.store(), state.now()).await?;
    Ok(Json(
        listed
            .iter()
            .map(|(k, s)| Key {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                created_at: k.created_at,
                activates_at: k.activates_at,
                retires_at: k.retires_at,
                sealed_by: k.sealed_by.clone(),
                state: s.as_str().to_owned(),
            })
            .collect(),
    ))
}

/// Makes a new signing key.
#[utoipa::path(
    post,
    path = "/admin/keys/rotate",
    tag = "keys",
    request_body = Rotation,
    responses(
        (status = 201, description = "Made", body = Rotated),
        (status = 400, description = "A lead time shorter than the JWKS cache lifetime", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks keys:write", body = ErrorBody),
        (status = 409, description = "The stored keys changed meanwhile or are sealed by another secret", body = ErrorBody),
    ),
    security(("admin_token" = ["keys:write"]))
)]
pub async fn rotate(
    _: Need<KeysWrite>,
    State(state): State<AppState>,
    MaybeBody(body): MaybeBody<Rotation>,
) -> ApiResult<(StatusCode, Json<Rotated>)> {
    let key = keys::rotate(
        state.store(),
        state.sealer(),
        state.config(),
        body.lead_time,
        state.now(),
    )
    .await?;
    // This node publishes the new key now; a failure to reload is the store's, and the
    // background loop reloads on the feed anyway.
    state
        .reload_keys()
        .await
        .map_err(|e| AdminError::Internal(format!("the key was made; reloading keys: {e}")))?;
    Ok((
        StatusCode::CREATED,
        Json(Rotated {
            kid: key.kid,
            alg: key.alg,
            activates_at: key.activates_at,
        }),
    ))
}
