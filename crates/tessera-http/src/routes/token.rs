//! `POST /oauth2/token` (RFC 6749 §3.2).

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::token;
use tessera_core::{ErrorCode, OAuthError};

use crate::error::{error_response, json_no_store};
use crate::extract::OAuthRequest;
use crate::state::AppState;

/// Handles a token request.
pub async fn handle(State(state): State<AppState>, req: OAuthRequest) -> Response {
    let started = Instant::now();
    if state.throttled(req.peer) {
        return error_response(OAuthError::slow_down(
            "too many failed client authentications from this address; retry later",
        ));
    }
    let grant = token::grant_label(req.params.get("grant_type").ok().flatten());
    let keys = state.keys();
    let cx = state.cx(&keys);
    let result = token::handle(&cx, req.basic.as_ref(), &req.params).await;
    state.metrics().grant(grant, result.is_ok(), started);
    match result {
        Ok(r) => json_no_store(StatusCode::OK, r.to_json()),
        Err(e) => {
            if e.code == ErrorCode::InvalidClient {
                state.auth_failed(req.peer);
            }
            error_response(e)
        }
    }
}
