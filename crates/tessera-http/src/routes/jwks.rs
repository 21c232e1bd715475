//! `GET /.well-known/jwks.json` (RFC 7517 §5).
//!
//! Served with a `max-age` of at most half the key-rotation lead time, so a verifier that
//! honours it has fetched a new key before that key signs anything.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The JWKS.
pub async fn handle(State(state): State<AppState>) -> impl IntoResponse {
    let max_age = (state.config().key_rotation_lead_time / 2).clamp(0, 300);
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        state.keys().jwks(state.now()).to_string(),
    )
}
