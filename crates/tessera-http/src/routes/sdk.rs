//! `POST /sdk/token` (seed 000): a vendor-signed JWT exchanged for a 5-minute access token.
//!
//! Owns the wire form: a JSON body `{"jwt": "...", "env": "..."}` (a `Content-Type`, when
//! given, must be JSON), no client credentials, and the token endpoint's response and error
//! shapes. The rules are the core's ([`tessera_core::endpoint::sdk_token`]).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::sdk_token::{self, SdkTokenRequest};
use tessera_core::OAuthError;

use crate::error::{error_response, json_no_store};
use crate::extract::read_body;
use crate::state::AppState;

/// Handles an `/sdk/token` request.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let result = exchange(&state, req).await;
    state.metrics().grant("sdk_token", result.is_ok(), started);
    match result {
        Ok(r) => json_no_store(StatusCode::OK, r.to_json()),
        Err(e) => error_response(e),
    }
}

async fn exchange(
    state: &AppState,
    req: Request,
) -> Result<tessera_core::grant::TokenResponse, OAuthError> {
    let (parts, body) = req.into_parts();
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
