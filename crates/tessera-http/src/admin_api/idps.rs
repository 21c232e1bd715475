//! `/admin/idps`: upstream OpenID providers users may sign in through.
//!
//! Owns the HTTP shape of [`tessera_core::admin::idps`] (where the rules live): adding a
//! provider (its issuer, Tessera's client id and secret there, its e-mail domains, whether a
//! first sign-in may link to an existing user by verified e-mail), listing them and removing
//! one. The client secret is accepted in the request body only, sealed with the server's
//! sealing key before it is stored, never answered and never logged (the body type's `Debug`
//! leaves it out). Reading needs `idps:read`, changing `idps:write`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::idps::{self, IdpSpec, IdpView};
use tessera_core::secret::Secret;
use utoipa::{OpenApi, ToSchema};

use super::{ApiResult, Body, ErrorBody, IdpsRead, IdpsWrite, Need, PathId};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/idps", get(list).post(add))
        .route("/admin/idps/{name}", delete(remove))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(paths(add, list, remove), components(schemas(NewIdp, Idp)))]
pub struct IdpsApi;

/// A provider to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdp {
    /// Its name (1 to 64 of `a-z`, `0-9`, `-`), in URLs of the sign-in flow.
    pub name: String,
    /// What the sign-in page shows [default: the name].
    #[serde(default)]
    pub display_name: Option<String>,
    /// The upstream's issuer URL (https; its discovery document is read from it).
    pub issuer: String,
    /// Tessera's client id at the upstream.
    pub client_id: String,
    /// Tessera's client secret at the upstream (sealed when stored; never answered).
    #[schema(format = Password)]
    pub client_secret: String,
    /// E-mail domains whose users are sent to this provider.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Whether a first sign-in may link to an existing user by a verified e-mail address.
    #[serde(default)]
    pub link_by_email: bool,
}

/// Never the client secret.
impl std::fmt::Debug for NewIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIdp")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A provider, as answered: never its client secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Idp {
    /// Its name.
    pub name: String,
    /// What the sign-in page shows.
    pub display_name: String,
    /// The upstream's issuer URL.
    pub issuer: String,
    /// Tessera's client id at the upstream.
    pub client_id: String,
    /// Its e-mail domains.
    pub email_domains: Vec<String>,
    /// Whether a first sign-in may link to an existing user by a verified e-mail address.
    pub link_by_email: bool,
    /// When it was added (Unix seconds).
    pub created_at: i64,
}

impl From<IdpView> for Idp {
    fn from(v: IdpView) -> Self {
        Self {
            name: v.name,
            display_name: v.display_name,
            issuer: v.issuer,
            client_id: v.client_id,
            email_domains: v.email_domains,
            link_by_email: v.link_by_email,
            created_at: v.created_at,
        }
    }
}

/// Adds a provider.
#[utoipa::path(
    post,
    path = "/admin/idps",
    tag = "idps",
    request_body = NewIdp,
    responses(
        (status = 201, description = "Added", body = Idp),
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks idps:write", body = ErrorBody),
        (status = 409, description = "The name or an e-mail domain is taken", body = ErrorBody),
    ),
    security(("admin_token" = ["idps:write"]))
)]
pub async fn add(
    _: Need<IdpsWrite>,
    State(state): State<AppState>,
    Body(body): Body<NewIdp>,
) -> ApiResult<(StatusCode, Json<Idp>)> {
    let spec = IdpSpec {
        name: body.name,
        display_name: body.display_name,
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: Some(Secret::new(body.client_secret)),
        email_domains: body.email_domains,
        link_by_email: body.link_by_email,
    };
    let view = idps::add(state.store(), state.sealer(), spec, state.now()).await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Lists providers, by name.
#[utoipa::path(
    get,
    path = "/admin/idps",
    tag = "idps",
    responses(
        (status = 200, description = "The providers", body = Vec<Idp>),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks idps:read", body = ErrorBody),
    ),
    security(("admin_token" = ["idps:read"]))
)]
pub async fn list(_: Need<IdpsRead>, State(state): State<AppState>) -> ApiResult<Json<Vec<Idp>>> {
    let listed = idps::list(state.store()).await?;
    Ok(Json(listed.into_iter().map(Idp::from).collect()))
}

/// Removes a provider; its users keep their accounts and links.
#[utoipa::path(
    delete,
    path = "/admin/idps/{name}",
    tag = "idps",
    params(("name" = String, Path, description = "The provider")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks idps:write", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
    ),
    security(("admin_token" = ["idps:write"]))
)]
pub async fn remove(
    _: Need<IdpsWrite>,
    State(state): State<AppState>,
    PathId(name): PathId,
) -> ApiResult<StatusCode> {
    idps::remove(state.store(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
