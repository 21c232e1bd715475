//! `GET /health/alive` (the process answers) and `GET /health/ready` (the database answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tessera_core::store::Maintenance;

use crate::state::AppState;

/// Liveness.
pub async fn alive() -> impl IntoResponse {
    ([("content-type", "application/json")], r#"{"status":"ok"}"#)
}

/// Readiness: checks the database.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"status":"ok"}"#,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                r#"{"status":"unavailable","error":"database"}"#,
            )
        }
    }
}
