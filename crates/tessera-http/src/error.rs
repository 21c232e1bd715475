//! Turning protocol errors into HTTP responses: the only place that does.
//!
//! Owns the status and headers of every error (RFC 6749 §5.2: 400 by default, 401 for
//! `invalid_client` with `WWW-Authenticate: Basic` when Basic was tried; RFC 6750 §3.1 for
//! `invalid_token` and `insufficient_scope`). A `server_error` sends a fixed text and logs its
//! cause. Every response carries `Cache-Control: no-store` and `Pragma: no-cache`.
//!
//! A request that failed because the database cannot be reached
//! ([`StoreError::Unavailable`]) is answered 503 with `Retry-After` (RFC 9110 §10.2.3; RFC
//! 7009 §2.2.1 asks the same of a revocation endpoint), keeping its RFC 6749 code
//! (`server_error`; the token endpoint has no `temporarily_unavailable`, which RFC 6749
//! §4.1.2.1 defines for the authorization endpoint only). It is not logged per request: the
//! store logs once when the database goes away and once when it is back.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::store::StoreError;
use tessera_core::{ErrorCode, OAuthError};

/// What `Retry-After` says while the database cannot be reached, seconds.
pub const UNAVAILABLE_RETRY_AFTER: &str = "2";

/// The code of an error response, left in the response extensions for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorLabel(pub ErrorCode);

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PushTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        // RFC 9449 §5 and §8: 400 from the authorization server (a protected resource
        // answers 401 with a challenge, `routes::userinfo`).
        ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A JSON body with the no-store headers of RFC 6749 §5.1.
pub fn json_no_store(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// Whether an error comes from a database that cannot be reached.
pub fn is_unavailable(err: &OAuthError) -> bool {
    err.source
        .as_deref()
        .is_some_and(|cause| StoreError::is_unavailable_cause(cause))
}

/// The response for a protocol error.
pub fn error_response(err: OAuthError) -> Response {
    let unavailable = is_unavailable(&err);
    if unavailable {
        tracing::debug!(
            error = err.code.as_str(),
            "refused: the database is unavailable"
        );
    } else if err.code == ErrorCode::ServerError {
        match &err.source {
            Some(cause) => tracing::error!(error = %cause, "request failed"),
            None => tracing::error!("request failed"),
        }
    } else {
        // Descriptions are written to be safe to send, so they are safe to log.
        tracing::debug!(error = err.code.as_str(), description = %err.description, "request refused");
    }
    let body = serde_json::json!({
        "error": err.code.as_str(),
        "error_description": err.description,
    })
    .to_string();
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        status_of(err.code)
    };
    let mut res = json_no_store(status, body);
    let h = res.headers_mut();
    if unavailable || err.code == ErrorCode::TemporarilyUnavailable {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER),
        );
    }
    match err.code {
        ErrorCode::InvalidToken => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        ErrorCode::InsufficientScope => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
            );
        }
        ErrorCode::SlowDown => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        _ => {}
    }
    res.extensions_mut().insert(ErrorLabel(err.code));
    res
}

/// The response to a request whose client authentication may have failed: as
/// [`error_response`], and an `invalid_client` answer to a client that tried HTTP Basic
/// authentication is 401 with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
pub fn client_error_response(err: OAuthError, basic_attempted: bool) -> Response {
    let challenge = basic_attempted && err.code == ErrorCode::InvalidClient;
    let mut res = error_response(err);
    if challenge {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
        );
    }
    res
}

/// Lets handlers return `Result<_, HttpError>` with `?`.
#[derive(Debug)]
pub struct HttpError {
    /// The protocol error.
    pub error: OAuthError,
    /// Whether the request tried HTTP Basic client authentication.
    pub basic_attempted: bool,
}

impl HttpError {
    /// An error of a request that tried HTTP Basic client authentication.
    pub fn basic(error: OAuthError) -> Self {
        Self {
            error,
            basic_attempted: true,
        }
    }
}

impl From<OAuthError> for HttpError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            basic_attempted: false,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        client_error_response(self.error, self.basic_attempted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_outage_is_503_with_retry_after_in_the_rfc_shape() {
        let err: OAuthError = StoreError::Unavailable("connection refused".into()).into();
        let res = error_response(err);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER))
        );
        assert_eq!(
            res.extensions().get::<ErrorLabel>().map(|l| l.0),
            Some(ErrorCode::ServerError)
        );
    }

    #[test]
    fn other_storage_failures_stay_500() {
        let err: OAuthError = StoreError::Corrupt("bad row".into()).into();
        let res = error_response(err);
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn only_a_client_that_tried_basic_is_challenged() {
        let basic = client_error_response(OAuthError::invalid_client("bad secret"), true);
        assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
        let challenge = basic.headers().get(header::WWW_AUTHENTICATE).unwrap();
        assert!(challenge.to_str().unwrap().starts_with("Basic "));
        let post = client_error_response(OAuthError::invalid_client("bad secret"), false);
        assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
        assert!(post.headers().get(header::WWW_AUTHENTICATE).is_none());
        // Another error of a request that tried Basic is not a challenge.
        let grant = client_error_response(OAuthError::invalid_grant("used code"), true);
        assert!(grant.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
