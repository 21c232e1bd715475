//! `GET|POST /userinfo` (OpenID Connect Core §5.3), with the bearer token of RFC 6750 §2.1
//! or in a header an enabled dialect names ([`crate::extract::access_token`]).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::endpoint::userinfo;

use crate::error::{error_response, json_no_store};
use crate::host::Host;
use crate::state::AppState;
use crate::through::Through;

/// Answers a userinfo request.
pub async fn handle(
    State(state): State<AppState>,
    through: Through,
    host: Host,
    req: Request,
) -> Response {
    let bearer = match crate::extract::access_token(req.headers(), &state.config().dialects) {
        Ok(t) => t,
        Err(e) => return error_response(e),
    };
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.dialect = through.dialect();
    // A certificate-bound token is checked against the request's certificate (RFC 8705 §3).
    let (parts, _) = req.into_parts();
    cx.request.client_cert = crate::extract::client_certificate(&parts, &state);
    match userinfo::handle(&cx, bearer.as_deref()).await {
        Ok(claims) => json_no_store(
            StatusCode::OK,
            serde_json::Value::Object(claims).to_string(),
        ),
        Err(e) => error_response(e),
    }
}
