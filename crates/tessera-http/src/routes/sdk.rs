//! `POST /sdk/token` (seed 000): a vendor-signed JWT exchanged for a 5-minute access token.
//!
//! Owns the wire form: a JSON body `{"jwt": "...", "env": "..."}` (a `Content-Type`, when
//! given, must be JSON), no client credentials, and the token endpoint's response and error
//! shapes. The rules are the core's ([`tessera_core::endpoint::sdk_token`]). Failed
//! exchanges count against the caller's address like failed client authentication does: past
//! the limit the address gets `429 slow_down` for the rest of the minute (SECURITY row 25).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::sdk_token::{self, SdkTokenRequest};
use tessera_core::{ErrorCode, OAuthError};

use crate::error::{error_response, json_no_store};
use crate::extract::{client_address, read_body};
use crate::routes::refuse_if_throttled;
use crate::state::AppState;

/// Handles an `/sdk/token` request.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let peer = client_address(&parts, &state.http().trusted_proxies);
    if let Some(refused) = refuse_if_throttled(&state, peer) {
        return refused;
    }
    let result = exchange(&state, parts, body).await;
    state.metrics().grant("sdk_token", result.is_ok(), started);
    match result {
        Ok(r) => json_no_store(StatusCode::OK, r.to_json()),
        Err(e) => {
            if e.code == ErrorCode::InvalidGrant {
                state.auth_failed(peer);
            }
            error_response(e)
        }
    }
}

async fn exchange(
    state: &AppState,
    parts: Parts,
    body: Body,
) -> Result<tessera_core::grant::TokenResponse, OAuthError> {
    let json_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if json_type == Some(false) {
        return Err(OAuthError::invalid_request(
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = read_body(body, state.http().body_limit).await?;
    let request = SdkTokenRequest::from_json(&bytes)?;
    let keys = state.keys();
    let cx = state.cx(&keys);
    sdk_token::handle(&cx, &request).await
}
