//! The request span of OpenTelemetry tracing.
//!
//! Owns [`traced`], the layer that gives every request a `tracing` span named and shaped as
//! the OpenTelemetry semantic conventions for an HTTP server span describe
//! (`http.request.method`, `http.route`, `http.response.status_code`, `client.address`), and
//! makes it the child of the caller's span when the request carries a W3C Trace Context
//! `traceparent` header (<https://www.w3.org/TR/trace-context/>, §3.2): the trace id is kept
//! and the caller's span id becomes the parent span id.
//!
//! Health probes (`/health/*`) and metrics scrapes (`/metrics`) get no span. The span carries
//! the route template, never the request's URL, query, headers or body, so that no
//! credential, token or code can reach a trace. Storage calls made while answering are its
//! children (`tessera_node::traced::Traced`).
//!
//! The binary adds this layer only when tracing is configured: without it a request makes no
//! span and reads no header beyond what it did before.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The `tracing` target of request spans.
pub const TARGET: &str = "tessera::request";

/// Wraps every route of `router` (and its fallback) in [`request_span`].
pub fn traced(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(request_span))
}

/// Middleware: runs the request inside its span, then records the response's status and
/// request id on it; a health probe or a metrics scrape runs without one.
pub async fn request_span(req: Request, next: Next) -> Response {
    // Probes and scrapes, every few seconds, would bury the requests worth a trace.
    let path = req.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route.as_deref(),
        http.response.status_code = Empty,
        client.address = client.as_deref(),
        tessera.request_id = Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
    if parent.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer, when there is nothing to link.
        let _ = span.set_parent(parent);
    }
    let res = next.run(req).instrument(span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(res.status().as_u16()),
    );
    if res.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(id) = res
        .headers()
        .get(&crate::request_id::HEADER)
        .and_then(|v| v.to_str().ok())
    {
        span.record("tessera.request_id", id);
    }
    res
}

/// A request's headers, as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
