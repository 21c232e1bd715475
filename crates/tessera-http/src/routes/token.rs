//! `POST /oauth2/token` (RFC 6749 §3.2).

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::token;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// Handles a token request.
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let started = Instant::now();
    let grant = token::grant_label(req.params.get("grant_type").ok().flatten());
    let keys = state.keys();
    let cx = state.cx_for(&host, &keys);
    let result = token::handle(&cx, req.basic.as_ref(), &req.params).await;
    state.metrics().grant(grant, result.is_ok(), started);
    respond(&state, &req, result, |r| {
        json_no_store(StatusCode::OK, crate::response::token_json(&r))
    })
    .await
}
