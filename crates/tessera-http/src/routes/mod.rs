//! Routes: one module per URL family.

pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::OAuthError;

use crate::error::error_response;

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
