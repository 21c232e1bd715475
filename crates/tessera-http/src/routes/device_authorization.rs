//! `POST /oauth2/device_authorization` (RFC 8628 §3.1): parses the request, calls the core
//! ([`tessera_core::endpoint::device_authorization`]) and answers the JSON of §3.2 with
//! `Cache-Control: no-store`. A failed client authentication counts against the client's
//! failure budget at the caller's address, as at the token endpoint ([`respond`]).
//!
//! Each request takes one device authorization from the budget of the client it names at the
//! caller's address ([`throttle::take_device_authorization`], `device_codes_per_client_address`
//! per device code lifetime), so no caller can fill the database with pending authorizations;
//! one that made none gives it back. A spent budget is answered `429` with `Retry-After` and
//! `{"error":"temporarily_unavailable"}`: RFC 8628 gives the device authorization endpoint the
//! errors of RFC 6749 §5.2, none of which means "later"; `slow_down` would be read by a device
//! as the token endpoint's polling instruction (§3.5), so the code RFC 6749 §4.1.2.1 defines
//! for a server that cannot serve a request for now is used, with the status of a rate limit.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::device_authorization;
use tessera_core::OAuthError;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::{presented_client_id, respond};
use crate::state::AppState;
use crate::throttle;

/// Handles a device authorization request.
pub async fn handle(State(state): State<AppState>, host: Host, req: OAuthRequest) -> Response {
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.request = req.meta();
    let client_id = presented_client_id(&req);
    let reservation = match throttle::take_device_authorization(&state, req.peer, &client_id).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(until)) => return too_many(&state, until),
        Err(e) => return crate::error::error_response(OAuthError::from(e)),
    };
    let result = device_authorization::handle(&cx, req.basic.as_ref(), &req.params).await;
    if result.is_err() {
        // Best effort: the answer is the request's error.
        let _ = reservation.give_back(state.store(), state.now()).await;
    }
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

/// `429` with `Retry-After` and `temporarily_unavailable`, for a spent budget.
fn too_many(state: &AppState, until: i64) -> Response {
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "too many pending device authorizations for this client from this address; try again later",
    });
    let mut res = json_no_store(StatusCode::TOO_MANY_REQUESTS, body.to_string());
    let wait = (until - state.now()).max(1);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}
