//! `POST /oauth2/par`: pushed authorization requests (RFC 9126 §2). The rules are the
//! core's ([`tessera_core::endpoint::par`]); a failed client authentication counts against
//! the same budget as at the token endpoint ([`super::respond`]). Other methods get `405`
//! (§2.3).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::par;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// Handles a push: `201` with `request_uri` and `expires_in` (RFC 9126 §2.2).
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let result = par::push(&cx, req.basic.as_ref(), &req.params).await;
    let res = respond(&state, &req, result, |r| {
        let body = serde_json::json!({
            "request_uri": r.request_uri,
            "expires_in": r.expires_in,
        });
        json_no_store(StatusCode::CREATED, body.to_string())
    })
    .await;
    crate::routes::with_dpop_nonce(&cx, res)
}
