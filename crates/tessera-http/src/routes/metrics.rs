//! `GET /metrics`: the Prometheus exposition of [`crate::metrics::Metrics`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tessera_core::secret::SecretHash;
use tessera_core::{ErrorCode, OAuthError};

use crate::state::AppState;

/// `GET /metrics` on the public listener: only with `Authorization: Bearer <metrics_token>`
/// (RFC 6750 §2.1), compared in constant time. The router serves it there only when a token is
/// configured; without one, the metrics are read on the operational listener.
pub async fn render_with_token(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, token)| token.trim());
    let allowed = match (&state.http().metrics_token, presented) {
        (Some(expected), Some(presented)) => SecretHash::of(presented).ct_eq(expected),
        _ => false,
    };
    if !allowed {
        return crate::error::error_response(OAuthError::new(
            ErrorCode::InvalidToken,
            "the metrics need the configured bearer token",
        ));
    }
    render(State(state)).await.into_response()
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
}
