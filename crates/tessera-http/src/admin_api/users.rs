//! `/admin/users`: the people who sign in on Tessera's pages, as the admin API manages them.
//!
//! Owns the HTTP shape of [`tessera_core::admin::users`] (where every rule lives): creating a
//! user with a password, reading them a page at a time (by username, optionally filtered), showing one, replacing a password and
//! deleting a user (their sessions end and their tokens are revoked). A user is named in the
//! path by username or by id (the `sub` of their tokens), as [`users::find`] names them.
//! Passwords are accepted in request bodies only, are stored only as Argon2id hashes, and are
//! never answered or logged; no answer carries a password hash. Reading needs `users:read`,
//! changing `users:write`. A user's consents and grants are [`super::grants`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::users::{self, UserSpec, UserView};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{
    paginate, ApiResult, Body, ErrorBody, Need, PageQuery, PathId, Query, UsersRead, UsersWrite,
};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{user}", get(show).delete(delete))
        .route("/admin/users/{user}/password", put(set_password))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(
    paths(create, list, show, set_password, delete),
    components(schemas(NewUser, NewPassword, User, Users, PasswordChanged))
)]
pub struct UsersApi;

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// What they sign in with (prepared as RFC 8265 `UsernameCaseMapped` before it is
    /// stored; a name that looks like an existing one is refused).
    pub username: String,
    /// Their password (stored only as an Argon2id hash; never answered).
    #[schema(format = Password, min_length = 8)]
    pub password: String,
    /// E-mail address (released with the `email` scope).
    #[serde(default)]
    pub email: Option<String>,
    /// Display name (released with the `profile` scope).
    #[serde(default)]
    pub name: Option<String>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The password (stored only as an Argon2id hash; never answered).
    #[schema(format = Password, min_length = 8)]
    pub password: String,
}

/// A user, as answered: never a password or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// Their id (the `sub` of their tokens).
    pub user_id: String,
    /// What they sign in with.
    pub username: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When they were created (Unix seconds).
    pub created_at: i64,
    /// When they were last changed (Unix seconds).
    pub updated_at: i64,
}

impl From<UserView> for User {
    fn from(u: UserView) -> Self {
        Self {
            user_id: u.user_id,
            username: u.username,
            email: u.email,
            name: u.name,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<&tessera_core::model::UserRecord> for User {
    fn from(u: &tessera_core::model::UserRecord) -> Self {
        UserView::from(u).into()
    }
}

/// One page of users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Users {
    /// The users on this page.
    pub users: Vec<User>,
    /// What to pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Which page of users to read, and which users.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Users per page, 1 to 200 [default: 50].
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Where to go on: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only usernames that contain this text (compared as usernames are: case-mapped).
    pub username: Option<String>,
}

/// A password replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    /// The user's username.
    pub username: String,
    /// Always true.
    pub password_changed: bool,
}

/// Creates a user.
#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks users:write", body = ErrorBody),
        (status = 409, description = "A user with that name exists", body = ErrorBody),
    ),
    security(("admin_token" = ["users:write"]))
)]
pub async fn create(
    _: Need<UsersWrite>,
    State(state): State<AppState>,
    Body(body): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let spec = UserSpec {
        username: body.username,
        password: body.password,
        email: body.email,
        name: body.name,
    };
    let user = users::create(state.store(), spec, state.now()).await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))))
}

/// Lists users a page at a time, by username.
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "users",
    params(UserFilter),
    responses(
        (status = 200, description = "A page of users", body = Users),
        (status = 400, description = "A bad limit, cursor or filter", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks users:read", body = ErrorBody),
    ),
    security(("admin_token" = ["users:read"]))
)]
pub async fn list(
    _: Need<UsersRead>,
    State(state): State<AppState>,
    Query(filter): Query<UserFilter>,
) -> ApiResult<Json<Users>> {
    let wanted = filter
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| tessera_core::username::prepare(u).unwrap_or_else(|_| u.to_lowercase()));
    let all: Vec<UserView> = users::list(state.store())
        .await?
        .iter()
        .filter(|u| wanted.as_deref().is_none_or(|w| u.username.contains(w)))
        .map(UserView::from)
        .collect();
    let page = PageQuery {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let (users, next_cursor) = paginate(all, |u| u.username.clone(), &page)?;
    Ok(Json(Users {
        users: users.into_iter().map(User::from).collect(),
        next_cursor,
    }))
}

/// Shows a user.
#[utoipa::path(
    get,
    path = "/admin/users/{user}",
    tag = "users",
    params(("user" = String, Path, description = "Username or user id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks users:read", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["users:read"]))
)]
pub async fn show(
    _: Need<UsersRead>,
    State(state): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<Json<User>> {
    let user = users::find(state.store(), &user).await?;
    Ok(Json(User::from(&user)))
}

/// Replaces a user's password; their sessions end.
#[utoipa::path(
    put,
    path = "/admin/users/{user}/password",
    tag = "users",
    params(("user" = String, Path, description = "Username or user id")),
    request_body = NewPassword,
    responses(
        (status = 200, description = "Replaced", body = PasswordChanged),
        (status = 400, description = "The password breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks users:write", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["users:write"]))
)]
pub async fn set_password(
    _: Need<UsersWrite>,
    State(state): State<AppState>,
    PathId(user): PathId,
    Body(body): Body<NewPassword>,
) -> ApiResult<Json<PasswordChanged>> {
    let user = users::set_password(state.store(), &user, &body.password, state.now()).await?;
    Ok(Json(PasswordChanged {
        username: user.username,
        password_changed: true,
    }))
}

/// Deletes a user: their sessions end and every token issued for them is revoked.
#[utoipa::path(
    delete,
    path = "/admin/users/{user}",
    tag = "users",
    params(("user" = String, Path, description = "Username or user id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks users:write", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("admin_token" = ["users:write"]))
)]
pub async fn delete(
    _: Need<UsersWrite>,
    State(state): State<AppState>,
    PathId(user): PathId,
) -> ApiResult<StatusCode> {
    users::delete(state.store(), &user, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
