//! The access log: one line per request, when the `access_log` setting is on.
//!
//! Owns the middleware [`log`] and the response extension [`AuthenticatedClient`] through
//! which a handler names the client a request authenticated. A line is a `tracing` event at
//! info level with target `access` (so it goes wherever the server's log goes, text or JSON)
//! and these fields:
//!
//! - `request_id`: the request's id, as the response's `X-Request-Id` names it
//!   ([`crate::request_id`]);
//! - `method`: the request method, from the closed set the metrics use (`other` for any
//!   method outside RFC 9110 §9 and PATCH);
//! - `route`: the matched route template (`/oauth2/token`, `/oauth2/register/{client_id}`),
//!   or `unmatched`, never the path as sent nor its query string, which can carry a token or
//!   a secret (RFC 6750 §5.3 warns against bearer tokens in URLs, which logs keep);
//! - `status`: the response status;
//! - `latency_us`: microseconds from the request reaching the router to the response;
//! - `client_id`: the client the request authenticated (client authentication, RFC 6749
//!   §2.3), when it did; absent otherwise.
//!
//! [`around`] puts the layer around a router (the public one, the operational one and the
//! admin API's), outside every other layer: it sees the time the others take and the
//! request id they gave. Off by default: the layer is not installed at all then, so a
//! server without an access log pays nothing for it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

/// The client a request authenticated, set by the handler on its response for [`log`].
#[derive(Debug, Clone)]
pub struct AuthenticatedClient(pub String);

/// `router` with the access log around it when `on`, else `router` as it is.
pub fn around<S: Clone + Send + Sync + 'static>(router: Router<S>, on: bool) -> Router<S> {
    if on {
        router.layer(axum::middleware::from_fn(log))
    } else {
        router
    }
}

/// Middleware: lets the request through, then logs its line.
pub async fn log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = crate::metrics::method_label(req.method());
    let res = next.run(req).await;
    let request_id = crate::request_id::of(res.headers());
    let client_id = res
        .extensions()
        .get::<AuthenticatedClient>()
        .map(|c| c.0.as_str());
    tracing::info!(
        target: "access",
        request_id = request_id.as_deref(),
        method,
        route = %route,
        status = res.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        client_id,
        "request"
    );
    res
}
