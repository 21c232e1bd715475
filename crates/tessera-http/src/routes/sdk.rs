//! `POST /sdk/token` (seed 000): a vendor-signed JWT exchanged for a 5-minute access token.
//!
//! Owns the wire form: a JSON body `{"jwt": "...", "env": "..."}` sent with
//! `Content-Type: application/json` (required: a page of another origin can send a body
//! without a preflight only as `text/plain`, a form or multipart, so requiring JSON keeps
//! visitors' browsers from being made to post here; anything else is 400 `invalid_request`,
//! the token endpoint's answer to a missing or mismatched `Content-Type`), no client
//! credentials, and the token endpoint's response and error shapes. The rules are the core's
//! ([`tessera_core::endpoint::sdk_token`]). Every assertion is checked; a failed exchange is
//! counted against the budget of that environment's SDK client at the caller's address, like
//! failed client authentication ([`crate::throttle::client_auth_failed`]): once it is spent,
//! further failures get `429 slow_down` with `Retry-After`, and a valid assertion is still
//! exchanged.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::sdk_token::{self, SdkTokenRequest};
use tessera_core::model::{sdk_client_id, DEFAULT_ENV};
use tessera_core::{ErrorCode, OAuthError};

use crate::error::{error_response, json_no_store};
use crate::extract::{client_address, read_body};
use crate::routes::too_many;
use crate::state::AppState;
use crate::throttle::client_auth_failed;

/// Handles an `/sdk/token` request.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let peer = client_address(&parts, &state.http().trusted_proxies);
    let mut env = None;
    let result = exchange(&state, parts, body, &mut env).await;
    state.metrics().grant("sdk_token", result.is_ok(), started);
    match result {
        Ok(r) => json_no_store(StatusCode::OK, crate::response::token_json(&r)),
        Err(e) if e.code == ErrorCode::InvalidGrant => {
            let client = sdk_client_id(env.as_deref().unwrap_or(DEFAULT_ENV));
            match client_auth_failed(&state, peer, &client).await {
                Ok(Some(until)) => too_many(
                    &state,
                    until,
                    "too many failed exchanges from this address; retry later",
                ),
                Ok(None) => error_response(e),
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
    parts: Parts,
    body: Body,
    env: &mut Option<String>,
) -> Result<tessera_core::grant::TokenResponse, OAuthError> {
    let json_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if json_type != Some(true) {
        return Err(OAuthError::invalid_request(
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = read_body(body, state.http().body_limit).await?;
    let request = SdkTokenRequest::from_json(&bytes)?;
    env.clone_from(&request.env);
    let keys = state.keys();
    let cx = state.cx(&keys);
    sdk_token::handle(&cx, &request).await
}
