//! `GET /health/alive` (the process answers) and `GET /health/ready` (the database answers).
//!
//! Readiness is a load balancer's probe: it answers within [`READY_TIMEOUT`] whatever the
//! database does, 503 when the database does not answer in that time or is known to be down.
//! A failed check is logged at debug level only: the store logs an outage once, and a probe
//! every second must not fill the log.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::store::{Maintenance, StoreError};

use crate::state::AppState;

/// Longest the readiness check waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_millis(500);

/// Liveness.
pub async fn alive() -> impl IntoResponse {
    ([("content-type", "application/json")], r#"{"status":"ok"}"#)
}

/// Readiness: checks the database, within [`READY_TIMEOUT`].
pub async fn ready(State(state): State<AppState>) -> Response {
    let answer = tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await;
    let failure = match answer {
        Ok(Ok(())) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"status":"ok"}"#,
            )
                .into_response()
        }
        Ok(Err(StoreError::Unavailable(e))) => format!("unavailable: {e}"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    tracing::debug!(error = %failure, "readiness check failed");
    let mut res = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"unavailable","error":"database"}"#,
    )
        .into_response();
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(crate::error::UNAVAILABLE_RETRY_AFTER),
    );
    res
}
