//! `/admin/trust`: trusted issuers of JWT assertions (RFC 7523 §3), per environment.
//!
//! Owns the HTTP shape of [`tessera_core::admin::trust`] (where the rules live): registering
//! an issuer with its public keys (a JWKS, PEM keys, or both) and/or the URL of its JWKS,
//! listing registrations (of one environment or all), replacing a registration's keys (the
//! issuer's key rotation) and removing one. Public keys are public: a registration is
//! answered with how many keys it holds and their `kid`s. Reading needs `trust:read`,
//! changing `trust:write`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::admin::public_keys::{self, KeyDocument, PublicKeys};
use tessera_core::admin::trust::{self, TrustSpec};
use tessera_core::model::TrustRecord;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{ApiResult, Body, ErrorBody, Need, PathId, Query, TrustRead, TrustWrite};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/trust", get(list).post(add))
        .route("/admin/trust/{id}", delete(remove))
        .route("/admin/trust/{id}/keys", put(set_keys))
}

/// The OpenAPI description of this module's routes.
#[derive(OpenApi)]
#[openapi(
    paths(add, list, set_keys, remove),
    components(schemas(NewTrust, NewKeys, Trust, KeysReplaced))
)]
pub struct TrustApi;

/// A trusted issuer to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrust {
    /// The issuer, as its JWTs' `iss` claim says it (1 to 256 characters, once per
    /// environment).
    pub issuer: String,
    /// Its public keys as a JWKS document (RFC 7517 §5).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Its public keys as PEM documents.
    #[serde(default)]
    pub pems: Vec<String>,
    /// Where it publishes its JWKS (https, or http on a loopback address), fetched by the
    /// server; needed when no key is given.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The claim that names the end user [default: `sub`].
    #[serde(default)]
    pub subject_claim: Option<String>,
    /// Claims copied from the assertion into the access token.
    #[serde(default)]
    pub claims: Vec<String>,
    /// The environment [default: `default`]; created on first use.
    #[serde(default)]
    pub env: Option<String>,
    /// Space-delimited scopes its assertions may obtain (also their default).
    #[serde(default)]
    pub scope: String,
}

/// Replacement public keys.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeys {
    /// A JWKS document (RFC 7517 §5).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// PEM public keys.
    #[serde(default)]
    pub pems: Vec<String>,
}

/// A registration, as answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trust {
    /// Its id.
    pub id: String,
    /// Its environment.
    pub env: String,
    /// The issuer.
    pub issuer: String,
    /// The claim that names the end user.
    pub subject_claim: String,
    /// Claims carried into access tokens.
    pub claims: Vec<String>,
    /// The scopes its assertions may obtain.
    pub scope: String,
    /// How many public keys are registered.
    pub keys: usize,
    /// Where its JWKS is fetched from, if anywhere.
    pub jwks_url: Option<String>,
    /// The `kid` of each registered key (null for a key without one).
    pub kids: Vec<Option<String>>,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
}

impl From<&TrustRecord> for Trust {
    fn from(t: &TrustRecord) -> Self {
        Self {
            id: t.id.clone(),
            env: t.env.clone(),
            issuer: t.issuer.clone(),
            subject_claim: t.subject_claim.clone(),
            claims: t.claims.clone(),
            scope: t.scopes.to_string(),
            keys: public_keys::count(&t.keys),
            jwks_url: t.jwks_uri.clone(),
            kids: public_keys::kids(&t.keys),
            created_at: t.created_at,
        }
    }
}

/// Keys replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysReplaced {
    /// The registration.
    pub id: String,
    /// Always true.
    pub keys_replaced: bool,
    /// The `kid` of each key now registered.
    pub kids: Vec<Option<String>>,
}

/// Which registrations to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrustFilter {
    /// Only those of this environment.
    pub env: Option<String>,
}

fn keys_of(jwks: Option<serde_json::Value>, pems: Vec<String>) -> PublicKeys {
    PublicKeys {
        jwks: jwks.map(|j| KeyDocument {
            source: Some("jwks".into()),
            text: match j {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
        }),
        pems: pems
            .into_iter()
            .enumerate()
            .map(|(i, text)| KeyDocument {
                source: Some(format!("pems[{i}]")),
                text,
            })
            .collect(),
    }
}

/// Registers a trusted issuer.
#[utoipa::path(
    post,
    path = "/admin/trust",
    tag = "trust",
    request_body = NewTrust,
    responses(
        (status = 201, description = "Registered", body = Trust),
        (status = 400, description = "A field breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks trust:write", body = ErrorBody),
        (status = 409, description = "The environment trusts that issuer already", body = ErrorBody),
    ),
    security(("admin_token" = ["trust:write"]))
)]
pub async fn add(
    _: Need<TrustWrite>,
    State(state): State<AppState>,
    Body(body): Body<NewTrust>,
) -> ApiResult<(StatusCode, Json<Trust>)> {
    let spec = TrustSpec {
        issuer: body.issuer,
        keys: keys_of(body.jwks, body.pems),
        jwks_url: body.jwks_url,
        subject_claim: body.subject_claim,
        claims: body.claims,
        env: body.env,
        scope: body.scope,
    };
    let record = trust::add(state.store(), spec, state.now()).await?;
    Ok((StatusCode::CREATED, Json(Trust::from(&record))))
}

/// Lists registrations, oldest first.
#[utoipa::path(
    get,
    path = "/admin/trust",
    tag = "trust",
    params(TrustFilter),
    responses(
        (status = 200, description = "The registrations", body = Vec<Trust>),
        (status = 400, description = "An unknown query parameter", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks trust:read", body = ErrorBody),
    ),
    security(("admin_token" = ["trust:read"]))
)]
pub async fn list(
    _: Need<TrustRead>,
    State(state): State<AppState>,
    Query(filter): Query<TrustFilter>,
) -> ApiResult<Json<Vec<Trust>>> {
    let listed = trust::list(state.store(), filter.env.as_deref()).await?;
    Ok(Json(listed.iter().map(Trust::from).collect()))
}

/// Replaces a registration's public keys.
#[utoipa::path(
    put,
    path = "/admin/trust/{id}/keys",
    tag = "trust",
    params(("id" = String, Path, description = "The registration")),
    request_body = NewKeys,
    responses(
        (status = 200, description = "Replaced", body = KeysReplaced),
        (status = 400, description = "No key, or a key breaks a rule", body = ErrorBody),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks trust:write", body = ErrorBody),
        (status = 404, description = "No such registration", body = ErrorBody),
    ),
    security(("admin_token" = ["trust:write"]))
)]
pub async fn set_keys(
    _: Need<TrustWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
    Body(body): Body<NewKeys>,
) -> ApiResult<Json<KeysReplaced>> {
    let keys = keys_of(body.jwks, body.pems);
    let stored = trust::set_keys(state.store(), &id, &keys, state.now()).await?;
    Ok(Json(KeysReplaced {
        id,
        keys_replaced: true,
        kids: public_keys::kids(&stored),
    }))
}

/// Stops trusting an issuer.
#[utoipa::path(
    delete,
    path = "/admin/trust/{id}",
    tag = "trust",
    params(("id" = String, Path, description = "The registration")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid admin credential", body = ErrorBody),
        (status = 403, description = "The credential lacks trust:write", body = ErrorBody),
        (status = 404, description = "No such registration", body = ErrorBody),
    ),
    security(("admin_token" = ["trust:write"]))
)]
pub async fn remove(
    _: Need<TrustWrite>,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    trust::remove(state.store(), &id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
