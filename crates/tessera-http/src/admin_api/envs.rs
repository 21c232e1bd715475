//! `/admin/envs`: deployment environments.
//!
//! Owns the HTTP shape of [`tessera_core::admin::envs`] (where the rules live): creating an
//! environment (201 when made, 200 when it existed: creating is idempotent), changing its
//! settings, listing them and deleting one (with its trust registrations and its
//! `/sdk/token` client; refused with 409 while other clients are registered in it, and always
//! for `default`). Reading needs `envs:read`, changing `envs:write`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::envs::{self, EnvPatch};
use tessera_core::model::EnvRecord;
use utoipa::{OpenApi, ToSchema};

use super::{ApiResult, Body, EnvsRead, EnvsWrite, ErrorBody, Need, PathId};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/envs", get(list).post(create))
        .route("/admin/envs/{name}", patch(update).delete(delete))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(
    paths(create, list, update, delete),
    components(schemas(NewEnv, EnvChange, Env))
)]
pub struct EnvsApi;

/// An environment to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnv {
    /// Its name: 1 to 64 of `a-z`, `0-9`, `-` and `_`.
    pub name: String,
}

/// A change to an environment's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvChange {
    /// Every access token issued in it is single-use.
    pub single_use_tokens: Option<bool>,
}

/// An environment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Env {
    /// Its name.
    pub name: String,
    /// Whether every access token issued in it is single-use.
    pub single_use_tokens: bool,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

impl From<&EnvRecord> for Env {
    fn from(e: &EnvRecord) -> Self {
        Self {
            name: e.name.clone(),
            single_use_tokens: e.single_use_tokens,
            created_at: e.created_at,
        }
    }
}

/// Creates an environment (nothing changes if it exists).
#[utoipa::path(
    post,
    path = "/admin/envs",
    tag = "envs",
    request_body = NewEnv,
    responses(
        (status = 201, description = "Created", body = Env),
        (status = 200, description = "It existed already", body = Env),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks envs:write", body = ErrorBody),
    ),
    security(("admin_token" = ["envs:write"]))
)]
pub async fn create(
    _: Need<EnvsWrite>,
    State(state): State<AppState>,
    Body(body): Body<NewEnv>,
) -> ApiResult<(StatusCode, Json<Env>)> {
    let existed = envs::list(state.store())
        .await?
        .iter()
        .any(|e| e.name == body.name);
    let env = envs::create(state.store(), &body.name, state.now()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(Env::from(&env))))
}

/// Lists environments, by name.
#[utoipa::path(
    get,
    path = "/admin/envs",
    tag = "envs",
    responses(
        (status = 200, description = "The environments", body = Vec<Env>),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks envs:read", body = ErrorBody),
    ),
    security(("admin_token" = ["envs:read"]))
)]
pub async fn list(_: Need<EnvsRead>, State(state): State<AppState>) -> ApiResult<Json<Vec<Env>>> {
    let listed = envs::list(state.store()).await?;
    Ok(Json(listed.iter().map(Env::from).collect()))
}

/// Changes an environment's settings.
#[utoipa::path(
    patch,
    path = "/admin/envs/{name}",
    tag = "envs",
    params(("name" = String, Path, description = "The environment")),
    request_body = EnvChange,
    responses(
        (status = 200, description = "Changed", body = Env),
        (status = 400, description = "Nothing to change", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks envs:write", body = ErrorBody),
        (status = 404, description = "No such environment", body = ErrorBody),
    ),
    security(("admin_token" = ["envs:write"]))
)]
pub async fn update(
    _: Need<EnvsWrite>,
    State(state): State<AppState>,
    PathId(name): PathId,
    Body(body): Body<EnvChange>,
) -> ApiResult<Json<Env>> {
    let patch = EnvPatch {
        single_use_tokens: body.single_use_tokens,
    };
    let env = envs::update(state.store(), &name, patch, state.now()).await?;
    Ok(Json(Env::from(&env)))
}

/// Deletes an environment with its trust registrations and its `/sdk/token` client.
#[utoipa::path(
    delete,
    path = "/admin/envs/{name}",
    tag = "envs",
    params(("name" = String, Path, description = "The environment")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks envs:write", body = ErrorBody),
        (status = 404, description = "No such environment", body = ErrorBody),
        (status = 409, description = "The default environment, or clients still in it", body = ErrorBody),
    ),
    security(("admin_token" = ["envs:write"]))
)]
pub async fn delete(
    _: Need<EnvsWrite>,
    State(state): State<AppState>,
    PathId(name): PathId,
) -> ApiResult<StatusCode> {
    envs::delete(state.store(), &name, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
