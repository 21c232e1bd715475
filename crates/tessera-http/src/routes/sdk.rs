//! `POST /sdk/token` (the Anyflow dialect's path; any dialect's `sdk_token` paths): a
//! vendor-signed JWT exchanged for a short-lived access token.
//!
//! Owns the wire form only; the rules, the body's shape included, are the core's, from the
//! dialect the request came through ([`tessera_core::endpoint::sdk_token`], [`Exchange`],
//! [`SDK_TOKEN`]). The body must be sent with the
//! media type of the body's shape (`Content-Type: application/json`: a page of another origin
//! can send a body without a preflight only as `text/plain`, a form or multipart, so requiring
//! JSON keeps visitors' browsers from being made to post here; anything else is 400
//! `invalid_request`, the token endpoint's answer to a missing or mismatched `Content-Type`);
//! the answers have the token endpoint's response and error shapes. Every assertion is
//! checked; a failed exchange is counted against the budget of that environment's SDK client
//! at the caller's address, like failed client authentication
//! ([`crate::throttle::count_client_auth_failure`]): once it is spent, further failures get
//! `429 slow_down` with `Retry-After`, and a valid assertion is still exchanged. The failure
//! that spends it is a lock-out in the audit trail and the log (`client_locked_out`, the
//! target the environment's SDK client).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::sdk_token::{self, sdk_client_id, Exchange, SDK_TOKEN};
use tessera_core::environment::DEFAULT_ENV;
use tessera_core::{ErrorCode, OAuthError};

use crate::error::{error_response, json_no_store};
use crate::extract::{client_address, read_body};
use crate::host::Host;
use crate::routes::too_many;
use crate::state::AppState;
use crate::throttle::{count_client_auth_failure, Counted};
use crate::through::Through;

/// The path of `/sdk/token`, for a request whose matched route is unknown.
const SDK_PATH: &str = "/sdk/token";

/// Handles an `/sdk/token` request.
pub async fn handle(State(state): State<AppState>, through: Through, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let peer = client_address(&parts, &state.http().trusted_proxies);
    let meta = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    let path = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| SDK_PATH.to_owned(), |p| p.as_str().to_owned());
    let host = state.host(&parts);
    let mut env = None;
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.dialect = through.dialect();
    cx.request = meta.clone();
    let result = exchange(&state, &cx, &through, host, parts, body, &mut env).await;
    let res = respond_sdk(&state, result, peer, started, &meta, &path, env).await;
    crate::routes::with_dpop_nonce(&cx, res)
}

/// The response to an exchange: a refused JWT counts against the address, as a failed
/// client authentication does.
async fn respond_sdk(
    state: &AppState,
    result: Result<tessera_core::grant::TokenResponse, OAuthError>,
    peer: Option<std::net::IpAddr>,
    started: Instant,
    meta: &tessera_core::audit::RequestMeta,
    path: &str,
    env: Option<String>,
) -> Response {
    state
        .metrics()
        .grant(SDK_TOKEN.label, result.is_ok(), started);
    match result {
        Ok(r) => json_no_store(StatusCode::OK, crate::response::token_json(&r)),
        Err(e) if e.code == ErrorCode::InvalidGrant => {
            let client = sdk_client_id(env.as_deref().unwrap_or(DEFAULT_ENV));
            match count_client_auth_failure(state, peer, &client).await {
                Ok(Counted::Refused { until }) => too_many(
                    state,
                    until,
                    "too many failed exchanges from this address; retry later",
                ),
                Ok(Counted::Spent) => {
                    crate::routes::record_lockout(state, meta, path, &client).await;
                    error_response(e)
                }
                Ok(Counted::Within) => error_response(e),
                Err(store) => {
                    tracing::warn!(error = %store, "counting a failed exchange failed");
                    error_response(e)
                }
            }
        }
        Err(e) => error_response(e),
    }
}

async fn exchange(
    state: &AppState,
    cx: &tessera_core::cx::Cx<'_>,
    through: &Through,
    host: Host,
    parts: Parts,
    body: Body,
    env: &mut Option<String>,
) -> Result<tessera_core::grant::TokenResponse, OAuthError> {
    let exchange = Exchange::through(through.dialect());
    let shape = &exchange.body;
    let json_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case(shape.media_type)
        });
    if json_type != Some(true) {
        return Err(OAuthError::invalid_request(format!(
            "the body must be JSON (Content-Type: {})",
            shape.media_type
        )));
    }
    let bytes = read_body(body, state.http().body_limit).await?;
    let request = shape.parse(&bytes)?;
    // A host bound to an environment answers for that one when the request names none.
    let bound = state.config_for(host).host_env.as_ref();
    *env = request.env.clone().or_else(|| bound.cloned());
    sdk_token::handle(cx, &request).await
}
