//! The admin API: the management operations of [`tessera_core::admin`] over HTTP, on a
//! listener of its own (`admin_listen`), under `/admin`. The public listener never serves it.
//!
//! Owns the frame every resource module plugs into:
//!
//! - **Authentication** ([`Need`]): `Authorization: Bearer` (RFC 6750 §2.1) with either the
//!   bootstrap token an operator configures (`TESSERA_ADMIN_TOKEN`, compared by hash in
//!   constant time, scope `admin`) or an admin token
//!   ([`tessera_core::admin::admin_tokens`]: found by its id, its hash compared in constant
//!   time, neither revoked nor expired). Each route names the scope it needs as a type
//!   parameter (`Need<ClientsWrite>`), checked before the body is read. No credential, or a
//!   bad one: `401` with `WWW-Authenticate: Bearer` (RFC 6750 §3.1 `invalid_token`); too
//!   little scope: `403 insufficient_scope`.
//! - **Errors** ([`ApiError`]): every failure, [`AdminError`] included, becomes
//!   `{"error", "error_description"}` with its status here and nowhere else: 400 invalid
//!   input, 401, 403, 404, 405, 409 conflict, 413 body too large, 415 not JSON, 500 (a
//!   fixed text; the cause is logged), 503 with `Retry-After` while the database is away.
//! - **Bodies** ([`Body`], [`MaybeBody`]): JSON only, within the body limit, unknown fields
//!   refused by each request type.
//! - **Request ids**: `X-Request-Id` is taken from the request when it is a plain token of
//!   at most 64 characters, else made, and echoed on the response.
//! - **Who acted** ([`AdminActor`]): the admin token's id (or `bootstrap`), the request id and
//!   the source address, for the audit trail.
//! - **Paging** ([`PageQuery`], [`paginate`]): `limit` and an opaque `cursor`.
//! - **The OpenAPI 3.1 description** ([`openapi`]), served at `/admin/openapi.json` without
//!   a credential (it describes the API and holds no data), and checked into the repository
//!   as `docs/admin-openapi.json`.
//!
//! A resource module adds its routes with one line in [`admin_app`] and its description with
//! one line in [`openapi`].

pub mod admin_tokens;
pub mod audit;
pub mod clients;
pub mod envs;
pub mod grants;
pub mod idps;
pub mod keys;
pub mod tokens;
pub mod trust;
pub mod users;

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tessera_core::admin::admin_tokens::{self as core_tokens, AdminPrincipal, Refused};
use tessera_core::admin::AdminError;
use tessera_core::store::StoreError;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::UNAVAILABLE_RETRY_AFTER;
use crate::state::AppState;

/// The admin API's router, for its own listener.
pub fn admin_app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/admin/openapi.json", get(openapi_json))
        .merge(clients::routes())
        .merge(admin_tokens::routes())
        .merge(users::routes())
        .merge(grants::routes())
        .merge(trust::routes())
        .merge(envs::routes())
        .merge(keys::routes())
        .merge(tokens::routes())
        .merge(idps::routes())
        .merge(audit::routes());
    let app = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record_changes,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(request_id))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.http().request_timeout,
        ));
    crate::access_log::around(app, state.http().access_log).with_state(state)
}

/// The OpenAPI 3.1 description of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(clients::ClientsApi::openapi());
    doc.merge(admin_tokens::AdminTokensApi::openapi());
    doc.merge(users::UsersApi::openapi());
    doc.merge(grants::GrantsApi::openapi());
    doc.merge(trust::TrustApi::openapi());
    doc.merge(envs::EnvsApi::openapi());
    doc.merge(keys::KeysApi::openapi());
    doc.merge(tokens::TokensApi::openapi());
    doc.merge(idps::IdpsApi::openapi());
    doc.merge(audit::AuditApi::openapi());
    add_error_responses(&mut doc);
    doc
}

/// The description as served and as checked into the repository: pretty JSON, one trailing
/// newline.
pub fn openapi_text() -> String {
    let mut text = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera admin API",
        description = "Management of a Tessera authorization server: clients, admin tokens \
                       and the other resources of its command line. Every operation needs \
                       `Authorization: Bearer` with an admin token holding the scope it names \
                       (`RESOURCE:read`, `RESOURCE:write` which implies read, or `admin`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecurityAddon),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The name of the bearer security scheme in the description.
pub const SECURITY_SCHEME: &str = "admin_token";

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token (`tessera admin-token create`) or the bootstrap token \
                         (`TESSERA_ADMIN_TOKEN`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the error answers every operation may give, so that each module documents only its
/// successes and the errors particular to it.
fn add_error_responses(doc: &mut utoipa::openapi::OpenApi) {
    let errors: &[(&str, &str)] = &[
        ("400", "Invalid input (`invalid_request`)."),
        (
            "401",
            "No admin token, or one that is unknown, expired or revoked (`invalid_token`).",
        ),
        (
            "403",
            "The admin token lacks the scope this operation needs (`insufficient_scope`).",
        ),
        ("404", "No such record (`not_found`)."),
        ("405", "Method not allowed (`method_not_allowed`)."),
        (
            "409",
            "The operation clashes with what is stored (`conflict`).",
        ),
        (
            "413",
            "The body is larger than allowed (`invalid_request`).",
        ),
        ("415", "The body is not JSON (`invalid_request`)."),
        (
            "503",
            "The database cannot be reached; retry later (`temporarily_unavailable`).",
        ),
    ];
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            // Operation ids are unique across modules: `<tag>_<function>`.
            if let (Some(tag), Some(id)) =
                (op.tags.as_ref().and_then(|t| t.first()), &op.operation_id)
            {
                let prefix = format!("{}_", tag.replace('-', "_"));
                if !id.starts_with(&prefix) {
                    op.operation_id = Some(format!("{prefix}{id}"));
                }
            }
            for (code, description) in errors {
                op.responses
                    .responses
                    .entry((*code).to_owned())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(*description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                            "ErrorBody",
                                        )))
                                        .build(),
                                )
                                .build(),
                        )
                    });
            }
        }
    }
}

/// Every error body of the admin API.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A code: `invalid_request`, `invalid_token`, `insufficient_scope`, `not_found`,
    /// `method_not_allowed`, `conflict`, `server_error`, `temporarily_unavailable`.
    pub error: String,
    /// A sentence for people.
    pub error_description: String,
}

/// A failed admin request, answered in the JSON error shape.
#[derive(Debug)]
pub enum ApiError {
    /// No `Authorization: Bearer` credential.
    NoCredential,
    /// A credential that is not accepted.
    Refused(Refused),
    /// A credential without the scope needed.
    Forbidden(&'static str),
    /// Refused by the application layer.
    Admin(AdminError),
    /// A malformed request (400), with why.
    BadRequest(String),
    /// A body over the limit.
    TooLarge,
    /// A body that is not JSON.
    NotJson,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        ApiError::Admin(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Admin(AdminError::Store(e))
    }
}

/// A result of an admin route.
pub type ApiResult<T> = Result<T, ApiError>;

const REALM: &str = "Bearer realm=\"tessera-admin\"";

fn error_body(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NoCredential => {
                let mut res = error_body(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "an admin token is required (Authorization: Bearer)",
                );
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
                res
            }
            ApiError::Refused(why) => {
                let mut res =
                    error_body(StatusCode::UNAUTHORIZED, "invalid_token", &why.to_string());
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"tessera-admin\", error=\"invalid_token\"",
                    ),
                );
                res
            }
            ApiError::Forbidden(scope) => {
                let mut res = error_body(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    &format!("this operation needs an admin token with the scope '{scope}'"),
                );
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{REALM}, error=\"insufficient_scope\", scope=\"{scope}\""
                )) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
            ApiError::BadRequest(why) => {
                error_body(StatusCode::BAD_REQUEST, "invalid_request", &why)
            }
            ApiError::TooLarge => error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is larger than allowed",
            ),
            ApiError::NotJson => error_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "the request body must be JSON (Content-Type: application/json)",
            ),
            ApiError::Admin(e) => admin_error_response(e),
        }
    }
}

/// The one mapping of [`AdminError`] to a response.
fn admin_error_response(e: AdminError) -> Response {
    use tessera_core::keys::KeyRotationError;
    match e {
        AdminError::Invalid { reason, .. } => {
            error_body(StatusCode::BAD_REQUEST, "invalid_request", &reason)
        }
        e @ AdminError::NotFound { .. } => {
            error_body(StatusCode::NOT_FOUND, "not_found", &e.to_string())
        }
        AdminError::Conflict(why) => error_body(StatusCode::CONFLICT, "conflict", &why),
        AdminError::Keys(
            e @ (KeyRotationError::SealedElsewhere | KeyRotationError::KeysChanged),
        ) => error_body(StatusCode::CONFLICT, "conflict", &e.to_string()),
        AdminError::Store(StoreError::Conflict) => error_body(
            StatusCode::CONFLICT,
            "conflict",
            "a record with this key already exists",
        ),
        AdminError::Store(e) if StoreError::is_unavailable_cause(&e) => {
            let mut res = error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the database cannot be reached; try again shortly",
            );
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
            );
            res
        }
        e => {
            tracing::error!(error = %e, "admin request failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the server failed to answer this request",
            )
        }
    }
}

async fn not_found() -> Response {
    error_body(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

async fn method_not_allowed() -> Response {
    error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this admin endpoint does not take that method",
    )
}

/// The request id of an admin request (a middleware of [`admin_app`] sets it on every
/// request, from `X-Request-Id` or new).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest request id taken from a request.
const MAX_REQUEST_ID: usize = 64;

fn acceptable_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_REQUEST_ID
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Gives every request an id (`X-Request-Id`: the caller's when acceptable, else a new one)
/// and echoes it on the response.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map_or_else(tessera_core::secret::generate_id, str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// Who made an admin request: what the audit trail records of it.
#[derive(Debug, Clone)]
pub struct AdminActor {
    /// The credential and its scopes.
    pub principal: AdminPrincipal,
    /// The request's id.
    pub request_id: String,
    /// The client's address (behind a trusted proxy, the one it saw).
    pub source: Option<IpAddr>,
}

impl AdminActor {
    /// The admin token's id, or `bootstrap`.
    pub fn token_id(&self) -> &str {
        self.principal.token_id.as_deref().unwrap_or("bootstrap")
    }

    /// How the audit trail names it (`admin-token:<id>`, `admin-token:bootstrap`).
    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

/// A scope a route needs (see [`Need`]).
pub trait Scope: Send + Sync + 'static {
    /// Its name, from [`tessera_core::admin::admin_tokens::SCOPES`].
    const NAME: &'static str;
}

macro_rules! scopes {
    ($($ty:ident = $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("The scope `", $name, "`.")]
            #[derive(Debug)]
            pub struct $ty;
            impl Scope for $ty {
                const NAME: &'static str = $name;
            }
        )*
        /// Every scope a route may need, for the test that each is an admin token scope.
        #[cfg(test)]
        const ROUTE_SCOPES: &[&str] = &[$($name),*];
    };
}

scopes!(
    ClientsRead = "clients:read",
    ClientsWrite = "clients:write",
    UsersRead = "users:read",
    UsersWrite = "users:write",
    TrustRead = "trust:read",
    TrustWrite = "trust:write",
    EnvsRead = "envs:read",
    EnvsWrite = "envs:write",
    KeysRead = "keys:read",
    KeysWrite = "keys:write",
    IdpsRead = "idps:read",
    IdpsWrite = "idps:write",
    TokensWrite = "tokens:write",
    GrantsRead = "grants:read",
    GrantsWrite = "grants:write",
    AuditRead = "audit:read",
    Admin = "admin",
);

/// An authenticated admin request whose credential holds the scope `S`: a route's first
/// argument. Checked before the body is read.
#[derive(Debug)]
pub struct Need<S: Scope>(pub AdminActor, pub PhantomData<S>);

impl<S: Scope> FromRequestParts<AppState> for Need<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let actor = authenticate(parts, state).await?;
        if !actor.principal.may(S::NAME) {
            audit::record_refused(state, Some(&actor), parts, "insufficient_scope").await;
            return Err(ApiError::Forbidden(S::NAME));
        }
        if let Some(slot) = parts.extensions.get::<audit::ActorSlot>() {
            slot.set(&actor);
        }
        audit::record_used(state, &actor, parts, S::NAME).await;
        Ok(Need(actor, PhantomData))
    }
}

/// The bearer credential of a request; `None` when there is none. A header that is not
/// `Bearer` is treated as none (RFC 6750 §3.1: no error code is due then).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<AdminActor> {
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map_or_else(String::new, |r| r.0.clone());
    let source = crate::extract::client_address(parts, &state.http().trusted_proxies);
    let Some(token) = bearer(parts) else {
        audit::record_refused(state, None, parts, "no credential").await;
        return Err(ApiError::NoCredential);
    };
    match core_tokens::authenticate(
        state.store(),
        token,
        state.http().admin_token.as_ref(),
        state.now(),
    )
    .await?
    {
        Ok(principal) => Ok(AdminActor {
            principal,
            request_id,
            source,
        }),
        Err(why) => {
            audit::record_refused(state, None, parts, &why.to_string()).await;
            Err(ApiError::Refused(why))
        }
    }
}

/// A JSON request body of type `T`: `application/json`, within the body limit, parsed with
/// `T`'s rules (unknown fields are refused by each request type).
#[derive(Debug)]
pub struct Body<T>(pub T);

/// Like [`Body`], but an empty body, or `null`, is `T::default()`.
#[derive(Debug)]
pub struct MaybeBody<T>(pub T);

async fn read_body(req: Request, state: &AppState) -> ApiResult<bytes::Bytes> {
    let limit = state.http().body_limit;
    let body = req.into_body();
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(_) => Err(ApiError::TooLarge),
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json")
                || (m.len() > 5 && m.to_ascii_lowercase().ends_with("+json"))
        })
}

/// Parses a body that must be a JSON object (serde would also read a struct from an array
/// of its fields in order, which no request type means to accept).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".to_owned(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("the body: {e}")))
}

/// Whether a body is the JSON `null` (taken as no body by [`MaybeBody`]).
fn is_null(bytes: &[u8]) -> bool {
    bytes.trim_ascii() == b"null"
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        if !is_json(&req) {
            return Err(ApiError::NotJson);
        }
        let bytes = read_body(req, state).await?;
        Ok(Body(parse_json(&bytes)?))
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for MaybeBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let json = is_json(&req);
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(MaybeBody(T::default()));
        }
        if !json {
            return Err(ApiError::NotJson);
        }
        if is_null(&bytes) {
            return Ok(MaybeBody(T::default()));
        }
        Ok(MaybeBody(parse_json(&bytes)?))
    }
}

/// A path parameter, as text: a malformed one is a 400 in the JSON shape.
#[derive(Debug)]
pub struct PathId(pub String);

impl FromRequestParts<AppState> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A query string of type `T`: a malformed one is a 400 in the JSON shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> ApiResult<Self> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Query)
            .map_err(|e| ApiError::BadRequest(format!("the query string: {e}")))
    }
}

/// Default number of items a page holds.
pub const DEFAULT_PAGE: u32 = 50;
/// Most items a page may hold.
pub const MAX_PAGE: u32 = 200;

/// Paging of a list: at most `limit` items after the one `cursor` names.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 [default: 50].
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Where to go on: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of `items` (already filtered): sorted by `key`, those after the cursor, at most
/// `limit` of them; and the cursor of the next page, if there are more. `key` must order the
/// items the way they should be listed and be unique per item.
pub fn paginate<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    page: &PageQuery,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave".into()))?,
        ),
    };
    items.sort_by_key(|i| key(i));
    let mut rest: Vec<T> = match &after {
        Some(a) => items.into_iter().filter(|i| key(i) > *a).collect(),
        None => items,
    };
    let limit = limit as usize;
    let next = if rest.len() > limit {
        rest.truncate(limit);
        rest.last()
            .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(last)))
    } else {
        None
    };
    Ok((rest, next))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_route_scope_is_an_admin_token_scope() {
        for s in ROUTE_SCOPES {
            assert!(core_tokens::SCOPES.contains(s), "{s}");
        }
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let items: Vec<u32> = (0..7).rev().collect();
        let key = |i: &u32| format!("{i:04}");
        let mut q = PageQuery {
            limit: Some(3),
            cursor: None,
        };
        let mut seen = Vec::new();
        loop {
            let (page, next) = paginate(items.clone(), key, &q).unwrap();
            assert!(page.len() <= 3);
            seen.extend(page);
            match next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn bad_paging_is_a_bad_request() {
        for q in [
            PageQuery {
                limit: Some(0),
                cursor: None,
            },
            PageQuery {
                limit: Some(MAX_PAGE + 1),
                cursor: None,
            },
            PageQuery {
                limit: None,
                cursor: Some("%%%".into()),
            },
        ] {
            assert!(matches!(
                paginate(vec![1], |i: &i32| i.to_string(), &q),
                Err(ApiError::BadRequest(_))
            ));
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        #[serde(default)]
        a: Option<i64>,
    }

    #[test]
    fn bodies_are_json_objects() {
        assert_eq!(parse_json::<Optional>(b" {\"a\": 1}").unwrap().a, Some(1));
        for bad in [
            &b"[]"[..],
            b"[1]",
            b"null",
            b"1",
            b"\"a\"",
            b"",
            b"{\"b\": 1}",
            b"{",
        ] {
            assert!(
                matches!(parse_json::<Optional>(bad), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(is_null(b" null\n") && !is_null(b"{}"));
    }

    #[test]
    fn request_ids_from_callers_are_plain_and_short() {
        assert!(acceptable_request_id("abc-123_x.y:z"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id("a b"));
        assert!(!acceptable_request_id("a\nb"));
        assert!(!acceptable_request_id(&"a".repeat(65)));
    }
}
