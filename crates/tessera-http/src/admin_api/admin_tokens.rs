//! `/admin/admin-tokens`: the admin API's own credentials, made, listed and revoked over it
//! (scope `admin`). A token's value is in the answer to its creation and nowhere else; it
//! is stored only as its hash ([`tessera_core::admin::admin_tokens`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::admin_tokens::{self, AdminTokenSpec, AdminTokenView};
use utoipa::{OpenApi, ToSchema};

use super::{Admin, ApiResult, Body, Need, PathId};
use crate::state::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/admin-tokens", get(list).post(create))
        .route("/admin/admin-tokens/{id}", delete(revoke))
}

/// The description of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(create, list, revoke),
    components(schemas(NewAdminToken, AdminToken, CreatedAdminToken, AdminTokenList))
)]
pub struct AdminTokensApi;

/// An admin token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdminToken {
    /// A name for people (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Its scopes: `RESOURCE:read`, `RESOURCE:write` (implies read) or `admin`.
    #[schema(min_items = 1)]
    pub scopes: Vec<String>,
    /// Seconds until it expires [default: never].
    #[schema(minimum = 1)]
    pub expires_in: Option<i64>,
}

/// An admin token as listed: never its value or hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminToken {
    /// Its id (not secret).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it expires (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it was last accepted, if ever.
    pub last_used_at: Option<i64>,
}

impl From<AdminTokenView> for AdminToken {
    fn from(v: AdminTokenView) -> Self {
        AdminToken {
            id: v.id,
            name: v.name,
            scopes: v.scopes,
            expires_at: v.expires_at,
            created_at: v.created_at,
            revoked_at: v.revoked_at,
            last_used_at: v.last_used_at,
        }
    }
}

/// A token just made, with its value (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedAdminToken {
    /// The token.
    #[serde(flatten)]
    pub token: AdminToken,
    /// Its value, for `Authorization: Bearer`.
    pub value: String,
}

/// Every admin token, revoked ones too, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminTokenList {
    /// The tokens.
    pub items: Vec<AdminToken>,
}

/// Makes an admin token.
#[utoipa::path(
    post,
    path = "/admin/admin-tokens",
    tag = "admin-tokens",
    request_body = NewAdminToken,
    security(("admin_token" = ["admin"])),
    responses((status = 201, description = "Made; the value is shown this once.", body = CreatedAdminToken))
)]
async fn create(
    _: Need<Admin>,
    state: axum::extract::State<AppState>,
    Body(body): Body<NewAdminToken>,
) -> ApiResult<Response> {
    let made = admin_tokens::create(
        state.store(),
        AdminTokenSpec {
            name: body.name,
            scopes: body.scopes,
            expires_in: body.expires_in,
        },
        state.now(),
    )
    .await?;
    let out = CreatedAdminToken {
        token: AdminTokenView::from(&made.record).into(),
        value: made.token.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Lists the admin tokens.
#[utoipa::path(
    get,
    path = "/admin/admin-tokens",
    tag = "admin-tokens",
    security(("admin_token" = ["admin"])),
    responses((status = 200, description = "Every token, oldest first.", body = AdminTokenList))
)]
async fn list(
    _: Need<Admin>,
    state: axum::extract::State<AppState>,
) -> ApiResult<Json<AdminTokenList>> {
    let all = admin_tokens::list(state.store()).await?;
    Ok(Json(AdminTokenList {
        items: all.iter().map(|r| AdminTokenView::from(r).into()).collect(),
    }))
}

/// Revokes an admin token: it is refused from now on, on every node.
#[utoipa::path(
    delete,
    path = "/admin/admin-tokens/{id}",
    tag = "admin-tokens",
    params(("id" = String, Path, description = "The token's id.")),
    security(("admin_token" = ["admin"])),
    responses((status = 204, description = "Revoked."))
)]
async fn revoke(
    _: Need<Admin>,
    state: axum::extract::State<AppState>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    admin_tokens::revoke(state.store(), &id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
