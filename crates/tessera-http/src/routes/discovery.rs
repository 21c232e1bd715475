//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tessera_core::endpoint::discovery;

use crate::host::Host;
use crate::state::AppState;

/// The metadata document.
pub async fn handle(State(state): State<AppState>, host: Host) -> impl IntoResponse {
    let keys = state.keys();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        discovery::metadata(state.config_for(host), &keys).to_string(),
    )
}
