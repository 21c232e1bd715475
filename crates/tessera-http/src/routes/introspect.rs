//! `POST /oauth2/introspect` (RFC 7662).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::introspect;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// Handles an introspection request.
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let result = introspect::handle(&cx, req.basic.as_ref(), &req.params).await;
    respond(&state, &req, result, |r| {
        json_no_store(StatusCode::OK, crate::response::introspection_json(&r))
    })
    .await
}
