//! `POST /oauth2/device_authorization` (RFC 8628 §3.1): parses the request, calls the core
//! ([`tessera_core::endpoint::device_authorization`]) and answers the JSON of §3.2 with
//! `Cache-Control: no-store`. A failed client authentication counts against the client's
//! failure budget at the caller's address, as at the token endpoint ([`respond`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::device_authorization;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;

/// Handles a device authorization request.
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let result = device_authorization::handle(&cx, req.basic.as_ref(), &req.params).await;
    respond(&state, &req, result, |d| {
        let body = serde_json::json!({
            "device_code": d.device_code.expose(),
            "user_code": d.user_code,
            "verification_uri": d.verification_uri,
            "verification_uri_complete": d.verification_uri_complete,
            "expires_in": d.expires_in,
            "interval": d.interval,
        });
        json_no_store(StatusCode::OK, body.to_string())
    })
    .await
}
