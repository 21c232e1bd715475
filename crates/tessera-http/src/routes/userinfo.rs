//! `GET|POST /userinfo` (OpenID Connect Core §5.3), with the bearer token of RFC 6750 §2.1
//! or in a header an enabled dialect names ([`crate::extract::access_token`]), or a
//! DPoP-bound token with the `DPoP` scheme and a proof (RFC 9449 §7.1).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_core::dpop;
use tessera_core::endpoint::userinfo::{self, Scheme};
use tessera_core::error::ErrorCode;

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
    let presented = match presented_token(req.headers(), &state) {
        Ok(t) => t,
        Err(e) => return error_response(e),
    };
    let keys = state.keys();
    let mut cx = state.cx_for(&host, &keys);
    cx.dialect = through.dialect();
    let (parts, _body) = req.into_parts();
    cx.request = crate::extract::request_meta(&parts, &state.http().trusted_proxies);
    let presented = presented.as_ref().map(|(t, s)| (t.as_str(), *s));
    match userinfo::handle(&cx, presented).await {
        Ok(claims) => json_no_store(
            StatusCode::OK,
            serde_json::Value::Object(claims).to_string(),
        ),
        Err(refusal) => refused(&cx, refusal),
    }
}

/// The access token and its scheme: `Authorization: DPoP <token>` (RFC 9449 §7.1), else a
/// bearer token as [`crate::extract::access_token`] finds it.
fn presented_token(
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Result<Option<(String, Scheme)>, tessera_core::OAuthError> {
    let authorization: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
    if let [one] = authorization.as_slice() {
        let v = one.as_bytes();
        if let Some((scheme, rest)) = v.split_at_checked(5) {
            if !scheme.eq_ignore_ascii_case(b"dpop ") {
                return Ok(
                    crate::extract::access_token(headers, &state.config().dialects)?
                        .map(|t| (t, Scheme::Bearer)),
                );
            }
            let token = std::str::from_utf8(rest)
                .map_err(|_| {
                    tessera_core::OAuthError::invalid_request(
                        "the Authorization header is not text",
                    )
                })?
                .trim();
            return Ok((!token.is_empty()).then(|| (token.to_owned(), Scheme::Dpop)));
        }
    }
    Ok(
        crate::extract::access_token(headers, &state.config().dialects)?
            .map(|t| (t, Scheme::Bearer)),
    )
}

/// The answer to a refused request: a DPoP refusal is 401 with a `DPoP` challenge naming
/// the error and the algorithms taken (RFC 9449 §7.1), and a fresh nonce when one is asked
/// for (§9); any other names the `DPoP` scheme beside its own challenge, so that a client
/// learns both are accepted (§7.2).
fn refused(cx: &tessera_core::cx::Cx<'_>, refusal: userinfo::Refusal) -> Response {
    let code = refusal.error.code;
    let dpop_error = matches!(
        code,
        ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce
    );
    let mut res = error_response(refusal.error);
    let h = res.headers_mut();
    if refusal.dpop && dpop_error {
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&dpop::challenge(Some(code.as_str()))) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if code == ErrorCode::UseDpopNonce || cx.config.dpop_nonce {
            if let Ok(v) = HeaderValue::from_str(&dpop::nonce(cx)) {
                h.insert("dpop-nonce", v);
            }
        }
    } else if let Ok(v) = HeaderValue::from_str(&dpop::challenge(None)) {
        h.append(header::WWW_AUTHENTICATE, v);
    }
    res
}
