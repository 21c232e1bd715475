//! `/admin/clients`: registering, listing, showing, changing, rotating the secret of,
//! replacing the public keys of (a `private_key_jwt` client's key rotation), revoking every
//! token of, and deleting clients, through [`tessera_core::admin::clients`]
//! (every rule of a registration lives there, the same for the command line).
//!
//! A client's secret is in the answer to its creation or rotation and nowhere else. Bodies
//! refuse unknown fields, so a misspelt setting is an error rather than quietly ignored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::clients::{
    self as core_clients, AuthMethod, ClientPatch, ClientSettings, ClientSpec,
};
use tessera_core::admin::public_keys::{self, KeyDocument, PublicKeys};
use tessera_core::model::ClientRecord;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{
    paginate, ApiError, ApiResult, Body, ClientsRead, ClientsWrite, MaybeBody, Need, PageQuery,
    PathId, Query,
};
use crate::state::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/clients", get(list).post(create))
        .route(
            "/admin/clients/{client_id}",
            get(show).patch(update).delete(remove),
        )
        .route("/admin/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/clients/{client_id}/keys", put(set_keys))
        .route(
            "/admin/clients/{client_id}/revoke-tokens",
            post(revoke_tokens),
        )
}

/// The description of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        create,
        list,
        show,
        update,
        remove,
        rotate_secret,
        set_keys,
        revoke_tokens
    ),
    components(schemas(
        NewClientKeys,
        ClientKeysReplaced,
        NewClient,
        ClientChanges,
        Client,
        CreatedClient,
        ClientPage,
        Rotation,
        RotatedSecret,
        TokensRevoked,
        AuthMethodName,
        TokenFormatName,
        RefreshTokensName
    ))
)]
pub struct ClientsApi;

/// Declares a request body with the settings every client has (the fields of
/// [`ClientSettings`]) after the fields given.
macro_rules! with_client_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Grant types (`client_credentials`, `authorization_code`, `refresh_token`, ...).
            pub grant_types: Option<Vec<String>>,
            /// Redirect URIs, matched exactly.
            pub redirect_uris: Option<Vec<String>>,
            /// Space-delimited scopes the client may ask for (also its default).
            pub scope: Option<String>,
            /// Resources its tokens are for, the `aud` of its tokens (RFC 8707).
            pub audiences: Option<Vec<String>>,
            /// `jwt` or `opaque`.
            #[schema(value_type = Option<TokenFormatName>)]
            pub access_token_format: Option<String>,
            /// Access token lifetime, seconds.
            pub access_token_ttl: Option<i64>,
            /// `always`, `offline_access` or `never`.
            #[schema(value_type = Option<RefreshTokensName>)]
            pub refresh_tokens: Option<String>,
            /// Absolute lifetime of refresh tokens, seconds.
            pub refresh_token_ttl: Option<i64>,
            /// Idle lifetime of a refresh token, seconds (0: none).
            pub refresh_token_idle_ttl: Option<i64>,
            /// Grace period after a refresh-token rotation, seconds (0: off).
            pub refresh_grace_period: Option<i64>,
            /// Lifetime of authorization codes, seconds.
            pub code_ttl: Option<i64>,
            /// Require PKCE from this confidential client too.
            pub require_pkce: Option<bool>,
            /// Accept the `plain` PKCE method.
            pub allow_plain_pkce: Option<bool>,
            /// Where RP-initiated logout may return the user.
            pub post_logout_redirect_uris: Option<Vec<String>>,
            /// A first-party client: users are never asked for consent.
            pub skip_consent: Option<bool>,
            /// Where logout tokens are sent (OpenID Connect Back-Channel Logout 1.0);
            /// empty removes it.
            pub backchannel_logout_uri: Option<String>,
            /// Whether its logout tokens must carry `sid`.
            pub backchannel_logout_session_required: Option<bool>,
            /// Its authorization requests must be pushed first (RFC 9126 §6).
            pub require_pushed_authorization_requests: Option<bool>,
            /// Every access token is DPoP-bound (RFC 9449 §5.2).
            pub dpop_bound_access_tokens: Option<bool>,
            /// Single-use access tokens.
            pub single_use_tokens: Option<bool>,
            /// Audiences the client may get tokens for by token exchange (RFC 8693).
            pub token_exchange_audiences: Option<Vec<String>>,
        }

        impl $name {
            fn settings(&self) -> ClientSettings {
                ClientSettings {
                    grant_types: self.grant_types.clone(),
                    redirect_uris: self.redirect_uris.clone(),
                    scope: self.scope.clone(),
                    audiences: self.audiences.clone(),
                    access_token_format: self.access_token_format.clone(),
                    access_token_ttl: self.access_token_ttl,
                    refresh_tokens: self.refresh_tokens.clone(),
                    refresh_token_ttl: self.refresh_token_ttl,
                    refresh_token_idle_ttl: self.refresh_token_idle_ttl,
                    refresh_grace_period: self.refresh_grace_period,
                    code_ttl: self.code_ttl,
                    require_pkce: self.require_pkce,
                    allow_plain_pkce: self.allow_plain_pkce,
                    post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
                    skip_consent: self.skip_consent,
                    require_pushed_authorization_requests: self
                        .require_pushed_authorization_requests,
                    dpop_bound_access_tokens: self.dpop_bound_access_tokens,
                    single_use_tokens: self.single_use_tokens,
                    backchannel_logout_uri: self.backchannel_logout_uri.clone(),
                    backchannel_logout_session_required: self.backchannel_logout_session_required,
                    token_exchange_audiences: self.token_exchange_audiences.clone(),
                }
            }
        }
    };
}

with_client_settings! {
    /// A client to register. Settings not given take their defaults.
    pub struct NewClient {
        /// A name for people (not empty).
        #[schema(min_length = 1)]
        pub name: String,
        /// Its deployment environment, made if new [default: `default`].
        pub env: Option<String>,
        /// A public client (same as `token_endpoint_auth_method` `none`).
        pub public: Option<bool>,
        /// `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` or `none`.
        #[schema(value_type = Option<AuthMethodName>)]
        pub token_endpoint_auth_method: Option<String>,
        /// For `private_key_jwt`: its public keys, a JWK Set (RFC 7517 §5).
        #[schema(value_type = Option<Object>)]
        pub jwks: Option<serde_json::Value>,
        /// Keep this client id (a client moved from another server): 1 to 128 of `A-Z`,
        /// `a-z`, `0-9`, `-`, `.`, `_`, `~` [default: a generated one].
        #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")]
        pub client_id: Option<String>,
        /// The client's existing secret as the other server stored it: a bcrypt, PBKDF2,
        /// Argon2 or SHA-256 hash in PHC or modular-crypt form, checked in that format. No
        /// secret is generated then, and none is in the answer.
        #[schema(max_length = 512)]
        pub secret_hash: Option<String>,
    }
}

with_client_settings! {
    /// A change to a client: fields not given stay as they were; a list given replaces the
    /// whole list.
    pub struct ClientChanges {
        /// A new name (not empty).
        #[schema(min_length = 1)]
        pub name: Option<String>,
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, ToSchema)]
#[schema(as = TokenEndpointAuthMethod)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum AuthMethodName {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// The format of a client's access tokens.
#[derive(Debug, ToSchema)]
#[schema(as = AccessTokenFormat)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum TokenFormatName {
    Jwt,
    Opaque,
}

/// When a client is given refresh tokens.
#[derive(Debug, ToSchema)]
#[schema(as = RefreshTokens)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum RefreshTokensName {
    Always,
    OfflineAccess,
    Never,
}

/// A client as shown: never its secret or the secret's hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Client {
    /// Its id.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Whether it is public (no credentials).
    pub public: bool,
    /// Its grant types.
    pub grant_types: Vec<String>,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Its scopes, space-delimited.
    pub scope: String,
    /// Its audiences.
    pub audiences: Vec<String>,
    /// How it authenticates.
    pub token_endpoint_auth_method: String,
    /// `jwt` or `opaque`.
    pub access_token_format: String,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Its deployment environment.
    pub env: String,
    /// Single-use access tokens.
    pub single_use_tokens: bool,
    /// Until when (Unix seconds) the previous secret still works after a rotation.
    pub old_secret_valid_until: Option<i64>,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it is given refresh tokens.
    pub refresh_tokens: String,
    /// Absolute lifetime of refresh tokens, seconds.
    pub refresh_token_ttl: i64,
    /// Idle lifetime of a refresh token, seconds.
    pub refresh_token_idle_ttl: i64,
    /// Grace period after a rotation, seconds.
    pub refresh_grace_period: i64,
    /// Lifetime of authorization codes, seconds.
    pub code_ttl: i64,
    /// Whether PKCE is required.
    pub require_pkce: bool,
    /// Whether `plain` PKCE is accepted.
    pub allow_plain_pkce: bool,
    /// Where logout may return the user.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether consent is skipped.
    pub skip_consent: bool,
    /// Where logout tokens are sent (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// Whether its logout tokens carry `sid`.
    pub backchannel_logout_session_required: bool,
    /// Audiences it may get tokens for by token exchange (RFC 8693).
    pub token_exchange_audiences: Vec<String>,
    /// Whether its authorization requests must be pushed first (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Whether every access token is DPoP-bound (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// The `kid`s of its public keys (`private_key_jwt`).
    pub kids: Option<Vec<Option<String>>>,
}

impl From<&ClientRecord> for Client {
    fn from(c: &ClientRecord) -> Self {
        Client {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.public,
            grant_types: c.grant_types.clone(),
            redirect_uris: c.redirect_uris.clone(),
            scope: c.scopes.to_string(),
            audiences: c.audiences.clone(),
            token_endpoint_auth_method: AuthMethod::of(c).as_str().to_owned(),
            access_token_format: c.access_token_format.as_str().to_owned(),
            access_token_ttl: c.access_token_ttl,
            env: c.env.clone(),
            single_use_tokens: c.single_use_tokens,
            old_secret_valid_until: c.old_secret_expires_at,
            created_at: c.created_at,
            refresh_tokens: c.user_flow.refresh_tokens.as_str().to_owned(),
            refresh_token_ttl: c.user_flow.refresh_token_ttl,
            refresh_token_idle_ttl: c.user_flow.refresh_token_idle_ttl,
            refresh_grace_period: c.user_flow.refresh_grace_period,
            code_ttl: c.user_flow.code_ttl,
            require_pkce: c.public || c.user_flow.require_pkce,
            allow_plain_pkce: c.user_flow.allow_plain_pkce,
            post_logout_redirect_uris: c.user_flow.post_logout_redirect_uris.clone(),
            skip_consent: c.user_flow.skip_consent,
            backchannel_logout_uri: c.user_flow.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.user_flow.backchannel_logout_session_required,
            token_exchange_audiences: c.user_flow.token_exchange_audiences.clone(),
            require_pushed_authorization_requests: c.user_flow.require_par,
            dpop_bound_access_tokens: c.user_flow.dpop_bound_access_tokens,
            kids: c.jwks.as_deref().map(public_keys::kids),
        }
    }
}

/// A client just registered, with its secret (shown this once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: Client,
    /// Its secret, for a client that authenticates with one.
    pub client_secret: Option<String>,
}

/// One page of clients.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientPage {
    /// The clients, oldest first.
    pub items: Vec<Client>,
    /// The `cursor` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which clients to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientFilter {
    /// Only clients whose name contains this (any case).
    pub name: Option<String>,
    /// Only clients registered for this grant type.
    pub grant_type: Option<String>,
    /// Only clients of this environment.
    pub env: Option<String>,
    /// Items per page, 1 to 200 [default: 50].
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Seconds the old secret keeps working beside the new one (no token is revoked then).
    /// Without it the old secret stops at once and every token issued before is revoked.
    #[schema(minimum = 1)]
    pub keep_old_secret_for: Option<i64>,
}

/// A new secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// The client.
    pub client_id: String,
    /// The new secret, shown this once.
    pub client_secret: String,
    /// Until when (Unix seconds) the old secret still works, if it does.
    pub old_secret_valid_until: Option<i64>,
}

/// Every token of a client was revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokensRevoked {
    /// The client.
    pub client_id: String,
    /// Always true.
    pub tokens_revoked: bool,
}

/// Registers a client.
#[utoipa::path(
    post,
    path = "/admin/clients",
    tag = "clients",
    request_body = NewClient,
    security(("admin_token" = ["clients:write"])),
    responses((status = 201, description = "Registered; the secret is shown this once.", body = CreatedClient))
)]
async fn create(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    Body(body): Body<NewClient>,
) -> ApiResult<Response> {
    if body.name.trim().is_empty() {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    let settings = body.settings();
    let keys = PublicKeys {
        jwks: body.jwks.as_ref().map(|v| KeyDocument {
            source: Some("jwks".into()),
            text: v.to_string(),
        }),
        pems: Vec::new(),
    };
    let spec = ClientSpec {
        name: body.name,
        env: body.env,
        public: body.public.unwrap_or(false),
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        keys,
        client_id: body.client_id,
        secret_hash: body.secret_hash,
        settings,
    };
    let made = core_clients::create(state.store(), state.config(), spec, state.now()).await?;
    let out = CreatedClient {
        client: Client::from(&made.client),
        client_secret: made.secret.as_ref().map(|s| s.expose().to_owned()),
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Lists clients, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/admin/clients",
    tag = "clients",
    params(ClientFilter),
    security(("admin_token" = ["clients:read"])),
    responses((status = 200, description = "A page of clients.", body = ClientPage))
)]
async fn list(
    _: Need<ClientsRead>,
    State(state): State<AppState>,
    Query(filter): Query<ClientFilter>,
) -> ApiResult<Json<ClientPage>> {
    let name = filter.name.as_deref().map(str::to_lowercase);
    let all: Vec<ClientRecord> = core_clients::list(state.store())
        .await?
        .into_iter()
        .filter(|c| {
            name.as_deref()
                .is_none_or(|n| c.name.to_lowercase().contains(n))
                && filter
                    .grant_type
                    .as_deref()
                    .is_none_or(|g| c.grant_types.iter().any(|x| x == g))
                && filter.env.as_deref().is_none_or(|e| c.env == e)
        })
        .collect();
    let page = PageQuery {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let (items, next_cursor) = paginate(
        all,
        |c| format!("{:020}/{}", c.created_at.max(0), c.client_id),
        &page,
    )?;
    Ok(Json(ClientPage {
        items: items.iter().map(Client::from).collect(),
        next_cursor,
    }))
}

/// Shows a client.
#[utoipa::path(
    get,
    path = "/admin/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    security(("admin_token" = ["clients:read"])),
    responses((status = 200, description = "The client.", body = Client))
)]
async fn show(
    _: Need<ClientsRead>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<Client>> {
    let c = core_clients::get(state.store(), &id).await?;
    Ok(Json(Client::from(&c)))
}

/// Changes what a client is registered for.
#[utoipa::path(
    patch,
    path = "/admin/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    request_body = ClientChanges,
    security(("admin_token" = ["clients:write"])),
    responses((status = 200, description = "The client as stored.", body = Client))
)]
async fn update(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
    Body(body): Body<ClientChanges>,
) -> ApiResult<Json<Client>> {
    if body.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    let patch = ClientPatch {
        name: body.name.clone(),
        settings: body.settings(),
    };
    let c = core_clients::update(state.store(), state.config(), &id, patch, state.now()).await?;
    Ok(Json(Client::from(&c)))
}

/// Deletes a client; its tokens stop working.
#[utoipa::path(
    delete,
    path = "/admin/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    security(("admin_token" = ["clients:write"])),
    responses((status = 204, description = "Deleted."))
)]
async fn remove(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    core_clients::delete(state.store(), &id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new secret, optionally keeping the old one working for a while.
#[utoipa::path(
    post,
    path = "/admin/clients/{client_id}/secret",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    request_body(content = Option<Rotation>, description = "Optional; an empty body rotates without overlap."),
    security(("admin_token" = ["clients:write"])),
    responses((status = 200, description = "The new secret, shown this once.", body = RotatedSecret))
)]
async fn rotate_secret(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
    MaybeBody(body): MaybeBody<Rotation>,
) -> ApiResult<Json<RotatedSecret>> {
    let r = core_clients::rotate_secret(state.store(), &id, body.keep_old_secret_for, state.now())
        .await?;
    Ok(Json(RotatedSecret {
        client_id: id,
        client_secret: r.secret.expose().to_owned(),
        old_secret_valid_until: r.old_valid_until,
    }))
}

/// Replacement public keys of a `private_key_jwt` client: a JWK Set, PEM public keys, or
/// both (at most ten keys in all).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientKeys {
    /// A JWK Set (RFC 7517 §5), as an object or as its JSON text.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// PEM public keys (SubjectPublicKeyInfo); each one's `kid` is its RFC 7638
    /// thumbprint.
    #[serde(default)]
    pub pems: Vec<String>,
}

/// A client's public keys replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKeysReplaced {
    /// The client.
    pub client_id: String,
    /// Always true.
    pub keys_replaced: bool,
    /// The `kid` of each key now registered (`null` for one without).
    pub kids: Vec<Option<String>>,
}

/// Replaces a `private_key_jwt` client's public keys (its key rotation: register the new
/// key alongside the old one first, then the new one alone).
#[utoipa::path(
    put,
    path = "/admin/clients/{client_id}/keys",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    request_body = NewClientKeys,
    security(("admin_token" = ["clients:write"])),
    responses((status = 200, description = "Replaced.", body = ClientKeysReplaced))
)]
async fn set_keys(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
    Body(body): Body<NewClientKeys>,
) -> ApiResult<Json<ClientKeysReplaced>> {
    let keys = PublicKeys {
        jwks: body.jwks.map(|v| KeyDocument {
            source: Some("jwks".into()),
            text: match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
        }),
        pems: body
            .pems
            .into_iter()
            .enumerate()
            .map(|(i, text)| KeyDocument {
                source: Some(format!("pems[{i}]")),
                text,
            })
            .collect(),
    };
    let stored = core_clients::set_keys(state.store(), &id, &keys, state.now()).await?;
    Ok(Json(ClientKeysReplaced {
        client_id: id,
        keys_replaced: true,
        kids: public_keys::kids(&stored),
    }))
}

/// Revokes every token issued to a client so far, keeping its secret.
#[utoipa::path(
    post,
    path = "/admin/clients/{client_id}/revoke-tokens",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id.")),
    security(("admin_token" = ["clients:write"])),
    responses((status = 200, description = "Revoked.", body = TokensRevoked))
)]
async fn revoke_tokens(
    _: Need<ClientsWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<TokensRevoked>> {
    core_clients::revoke_tokens(state.store(), &id, state.now()).await?;
    Ok(Json(TokensRevoked {
        client_id: id,
        tokens_revoked: true,
    }))
}
