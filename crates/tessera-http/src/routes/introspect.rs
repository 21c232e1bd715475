//! `POST /oauth2/introspect` (RFC 7662).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::introspect;
use tessera_core::{ErrorCode, OAuthError};

use crate::error::{error_response, json_no_store};
use crate::extract::OAuthRequest;
use crate::state::AppState;

/// Handles an introspection request.
pub async fn handle(State(state): State<AppState>, req: OAuthRequest) -> Response {
    if state.throttled(req.peer) {
        return error_response(OAuthError::slow_down(
            "too many failed client authentications from this address; retry later",
        ));
    }
    let keys = state.keys();
    let cx = state.cx(&keys);
    match introspect::handle(&cx, req.basic.as_ref(), &req.params).await {
        Ok(r) => json_no_store(StatusCode::OK, r.to_json()),
        Err(e) => {
            if e.code == ErrorCode::InvalidClient {
                state.auth_failed(req.peer);
            }
            error_response(e)
        }
    }
}
