//! `POST /oauth2/token` (RFC 6749 §3.2), and the token paths of dialects.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use tessera_core::dialect::BodyStyle;
use tessera_core::endpoint::token;

use crate::error::json_no_store;
use crate::extract::OAuthRequest;
use crate::host::Host;
use crate::routes::respond;
use crate::state::AppState;
use crate::through::Through;

/// Handles a token request, through the dialect of its path if any: a body style the dialect
/// does not accept is `invalid_request`.
pub async fn handle(
    State(state): State<AppState>,
    through: Through,
    host: Host,
    headers: HeaderMap,
    req: OAuthRequest,
) -> Response {
    let started = Instant::now();
    let grant = token::grant_label(req.params.get("grant_type").ok().flatten());
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.dialect = through.dialect();
    cx.request = req.meta();
    let style = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(BodyStyle::of_content_type);
    let result = match through.dialect().map(|d| d.check_style(style)) {
        Some(Err(e)) => Err(e),
        _ => token::handle(&cx, req.basic.as_ref(), &req.params).await,
    };
    state.metrics().grant(grant, result.is_ok(), started);
    let res = respond(&state, &req, result, |r| {
        json_no_store(StatusCode::OK, crate::response::token_json(&r))
    })
    .await;
    crate::routes::with_dpop_nonce(&cx, res)
}
