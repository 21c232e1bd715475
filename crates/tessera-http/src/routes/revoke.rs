//! `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_core::endpoint::revoke;
use tessera_core::{ErrorCode, OAuthError};

use crate::error::error_response;
use crate::extract::OAuthRequest;
use crate::state::AppState;

/// Handles a revocation request: 200 with an empty body on success (RFC 7009 §2.2).
pub async fn handle(State(state): State<AppState>, req: OAuthRequest) -> Response {
    if state.throttled(req.peer) {
        return error_response(OAuthError::slow_down(
            "too many failed client authentications from this address; retry later",
        ));
    }
    let keys = state.keys();
    let cx = state.cx(&keys);
    match revoke::handle(&cx, req.basic.as_ref(), &req.params).await {
        Ok(()) => (
            StatusCode::OK,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
        )
            .into_response(),
        Err(e) => {
            if e.code == ErrorCode::InvalidClient {
                state.auth_failed(req.peer);
            }
            error_response(e)
        }
    }
}
