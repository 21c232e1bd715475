//! Routes: one module per URL family.

pub mod assets;
pub mod authorize;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod revoke;
pub mod sdk;
pub mod token;
pub mod userinfo;

use std::net::IpAddr;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::{ErrorCode, OAuthError};

use crate::error::error_response;
use crate::state::AppState;

/// For endpoints where a client authenticates (SECURITY row 25): the answer to an address
/// that failed too often, if this one did.
pub fn refuse_if_throttled(state: &AppState, peer: Option<IpAddr>) -> Option<Response> {
    state.throttled(peer).then(|| {
        error_response(OAuthError::slow_down(
            "too many failed client authentications from this address; retry later",
        ))
    })
}

/// Turns an endpoint's result into a response, counting a failed client authentication
/// against the caller's address.
pub fn respond<T>(
    state: &AppState,
    peer: Option<IpAddr>,
    result: Result<T, OAuthError>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    match result {
        Ok(v) => ok(v),
        Err(e) => {
            if e.code == ErrorCode::InvalidClient {
                state.auth_failed(peer);
            }
            error_response(e)
        }
    }
}

/// 405 for a method an endpoint does not take (RFC 6749 §3.2: the token endpoint is POST only).
pub async fn post_only() -> Response {
    let mut res = error_response(OAuthError::invalid_request(
        "this endpoint accepts only POST",
    ));
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

/// 404 in the same JSON shape.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not_found","error_description":"no such endpoint"}"#,
    )
        .into_response()
}
