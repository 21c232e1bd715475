//! `GET /.well-known/jwks.json` (RFC 7517 §5).
//!
//! Served with a `max-age` of [`Config::jwks_max_age`] (at most half the key-rotation lead
//! time), so a verifier that honours it has fetched a new key before that key signs anything;
//! a rotation with a shorter lead time is refused (`keys::rotate`).
//!
//! [`Config::jwks_max_age`]: tessera_core::config::Config::jwks_max_age

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The JWKS.
pub async fn handle(State(state): State<AppState>) -> impl IntoResponse {
    let max_age = state.config().jwks_max_age();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        state.keys().jwks(state.now()).to_string(),
    )
}
