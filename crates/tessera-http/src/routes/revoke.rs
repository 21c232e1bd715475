//! `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::endpoint::revoke;

use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// Handles a revocation request: 200 with an empty body on success (RFC 7009 §2.2).
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let result = revoke::handle(&cx, req.basic.as_ref(), &req.params).await;
    respond(&state, &req, result, |()| {
        (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
    })
    .await
}
