//! Routes: one module per URL family.

pub mod assets;
pub mod authorize;
pub mod device;
pub mod device_authorization;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod metrics;
pub mod par;
pub mod register;
pub mod revoke;
pub mod sdk;
pub mod sso;
pub mod token;
pub mod userinfo;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::audit::{self, Actor, AuditEvent, AuditKind, RequestMeta};
use tessera_core::{ErrorCode, OAuthError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::{client_error_response, error_response};
use crate::extract::OAuthRequest;
use crate::state::AppState;
use crate::throttle;

/// The client id a request presents, for the client-authentication budget: from
/// `Authorization: Basic`, else the `client_id` parameter, else the `iss` of a
/// `client_assertion` (read without verifying: it only names the budget). Empty when none.
pub fn presented_client_id(req: &OAuthRequest) -> String {
    if let Some(b) = &req.basic {
        return b.client_id.clone();
    }
    if let Ok(Some(id)) = req.params.get("client_id") {
        return id.to_owned();
    }
    req.params
        .get("client_assertion")
        .ok()
        .flatten()
        .and_then(|jwt| jwt.split('.').nth(1))
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|claims| claims.get("iss")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `429 slow_down` with `Retry-After`, for a budget spent until `until`.
pub fn too_many(state: &AppState, until: i64, description: &'static str) -> Response {
    let mut res = error_response(OAuthError::slow_down(description));
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let wait = (until - state.now()).max(1);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// Turns an endpoint's result into a response. A failed client authentication is counted
/// against the budget of the presented client id at the caller's address
/// ([`throttle::count_client_auth_failure`]) and recorded in the audit trail; once that budget is
/// spent, further failures get `429 slow_down` instead of `401`. A success is never refused
/// and never recorded here.
pub async fn respond<T>(
    state: &AppState,
    req: &OAuthRequest,
    result: Result<T, OAuthError>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    let basic = req.basic.is_some();
    match result {
        Ok(v) => {
            let mut res = ok(v);
            // The endpoints answered here authenticate the client first: on success the
            // client id presented is the one that authenticated (for the access log).
            if state.http().access_log {
                let client_id = presented_client_id(req);
                if !client_id.is_empty() {
                    res.extensions_mut()
                        .insert(crate::access_log::AuthenticatedClient(client_id));
                }
            }
            res
        }
        Err(e) if e.code == ErrorCode::InvalidClient => {
            let client_id = presented_client_id(req);
            let counted = throttle::count_client_auth_failure(state, req.peer, &client_id).await;
            if !matches!(counted, Ok(throttle::Counted::Refused { .. })) {
                record_client_auth_failure(state, req, &client_id, &e).await;
            }
            if matches!(counted, Ok(throttle::Counted::Spent)) {
                record_lockout(state, &req.meta(), &req.path, &client_id).await;
            }
            match counted {
                Ok(throttle::Counted::Refused { until }) => too_many(
                    state,
                    until,
                    "too many failed authentications by this client from this address; \
                     retry later",
                ),
                Ok(throttle::Counted::Within | throttle::Counted::Spent) => {
                    client_error_response(e, basic)
                }
                Err(store) => {
                    // The answer is the authentication's, whatever the counter did.
                    tracing::warn!(error = %store, "counting a failed client authentication failed");
                    client_error_response(e, basic)
                }
            }
        }
        Err(e) => error_response(e),
    }
}

/// Records a failed client authentication in the audit trail (and so in the log at info
/// level): the client id presented (the target; empty when none), the path, the request and
/// its address, and the reason (unknown client, wrong secret, …: a fixed text from
/// [`OAuthError::log_reason`], never a value of the request); never the credential.
/// Failures refused by a spent budget are not recorded one by one: the failure that spent
/// it is, followed by the lock-out ([`record_lockout`]).
async fn record_client_auth_failure(
    state: &AppState,
    req: &OAuthRequest,
    client_id: &str,
    e: &OAuthError,
) {
    let mut event = AuditEvent::new(state.now(), AuditKind::ClientAuthFailed, Actor::Anonymous)
        .failed()
        .request(&req.meta())
        .detail(serde_json::json!({
            "path": req.path,
            "method": auth_method(req),
            "reason": e.log_reason(),
        }));
    if !client_id.is_empty() {
        event = event.target(client_id.chars().take(256).collect::<String>());
    }
    audit::record(state.store(), event).await;
}

/// Records that a failure at `path` spent the client-authentication budget of `client_id`
/// at the request's address ([`throttle::count_client_auth_failure`]): from now until the
/// window ends, failures there are answered `429`.
pub async fn record_lockout(state: &AppState, meta: &RequestMeta, path: &str, client_id: &str) {
    let mut event = AuditEvent::new(state.now(), AuditKind::ClientLockedOut, Actor::Anonymous)
        .failed()
        .request(meta)
        .detail(serde_json::json!({
            "path": path,
            "failures": state.http().auth_failures_per_minute,
            "window_seconds": throttle::CLIENT_AUTH_WINDOW,
        }));
    if !client_id.is_empty() {
        event = event.target(client_id.chars().take(256).collect::<String>());
    }
    audit::record(state.store(), event).await;
}

/// The client authentication method a request tried, by what it carries.
fn auth_method(req: &OAuthRequest) -> &'static str {
    if req.basic.is_some() {
        "client_secret_basic"
    } else if matches!(req.params.get("client_assertion"), Ok(Some(_))) {
        "private_key_jwt"
    } else if matches!(req.params.get("client_secret"), Ok(Some(_))) {
        "client_secret_post"
    } else {
        "none"
    }
}

/// 405 for a method an endpoint does not take (RFC 6749 §3.2: the token endpoint is POST only).
pub async fn post_only() -> Response {
    let mut res = error_response(OAuthError::invalid_request(
        "this endpoint accepts only POST",
    ));
    *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

/// 404 in the same JSON shape.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not_found","error_description":"no such endpoint"}"#,
    )
        .into_response()
}

/// A response of an endpoint that takes DPoP proofs, with the nonce proofs must carry in
/// `DPoP-Nonce` while the server asks for nonces (RFC 9449 §8: on any response, so that a
/// client always holds a fresh one).
pub fn with_dpop_nonce(cx: &tessera_core::cx::Cx<'_>, mut res: Response) -> Response {
    if cx.config.dpop_nonce {
        if let Ok(v) = axum::http::HeaderValue::from_str(&tessera_core::dpop::nonce(cx)) {
            res.headers_mut().insert("dpop-nonce", v);
        }
    }
    res
}
