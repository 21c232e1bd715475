//! `GET|POST /userinfo` (OpenID Connect Core §5.3), with the bearer token of RFC 6750 §2.1.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use tessera_core::endpoint::userinfo;

use crate::error::{error_response, json_no_store};
use crate::host::Host;
use crate::state::AppState;

/// Answers a userinfo request.
pub async fn handle(State(state): State<AppState>, host: Host, req: Request) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .map(|_| v.get(7..).unwrap_or("").trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let keys = state.keys();
    let cx = state.cx_for(&host, &keys);
    match userinfo::handle(&cx, bearer.as_deref()).await {
        Ok(claims) => json_no_store(
            StatusCode::OK,
            serde_json::Value::Object(claims).to_string(),
        ),
        Err(e) => error_response(e),
    }
}
