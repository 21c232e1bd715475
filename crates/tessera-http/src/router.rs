//! The router.
//!
//! Owns which handler serves each endpoint, and the layers around them. The paths, methods and
//! CORS flags are the core's endpoint table ([`tessera_core::endpoint::ENDPOINTS`]): a route
//! for every path of every row, CORS only on the rows a browser client may call (never on a
//! page, never on operational endpoints), a request timeout, per-endpoint metrics and, when
//! it is on, the access log ([`crate::access_log`]). The
//! body limit is enforced by the body extractor.
//!
//! The health probes are on whichever listener the operational endpoints use, so that load
//! balancers reach them. `/metrics` is not public: on a separate operational listener it is
//! served as is; on the public one only with the configured bearer token, and not at all
//! without one.

use axum::http::{header, HeaderValue};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use tessera_core::endpoint::{self, Endpoint, EndpointId, Method, ENDPOINTS};

use crate::routes::{
    self, assets, authorize, device_authorization, discovery, health, introspect, jwks, logout,
    register, revoke, sdk, sso, token, userinfo,
};
use crate::state::AppState;
use crate::through::Through;

/// Builds the application: the OAuth endpoints and the health probes on one router, and
/// `/metrics` behind its bearer token when one is configured.
pub fn app(state: AppState) -> Router {
    let mut routes = oauth_routes(&state).merge(health_routes());
    if state.http().metrics_token.is_some() {
        routes = routes.route("/metrics", get(routes::metrics::render_with_token));
    }
    finish(routes, state)
}

/// The OAuth endpoints only, for a server whose operational endpoints listen elsewhere.
pub fn oauth_app(state: AppState) -> Router {
    finish(oauth_routes(&state), state)
}

/// The operational endpoints only (`/health/*`, `/metrics`), for a separate listener.
pub fn ops_app(state: AppState) -> Router {
    finish(ops_routes(), state)
}

/// Every path of every row of the endpoint table ([`ENDPOINTS`]), with the row's methods,
/// and every extra path of every enabled dialect, with the methods of the row of the
/// endpoint it serves ([`tessera_core::dialect`]); each route knows the dialect it is
/// reached through ([`Through`]: a dialect path's own, or on the table's paths the dialect
/// with `standard_paths`). The rows a browser may call get the CORS layer, pages never do.
fn oauth_routes(state: &AppState) -> Router<AppState> {
    let mut api = Router::new();
    let mut pages = Router::new();
    let dialects = state.config().dialects.clone();
    let standard = Through(dialects.on_standard_paths().cloned());
    let mut add = |endpoint: &Endpoint, path: &str, through: Through| {
        let Some(route) = method_router(endpoint) else {
            // Unreachable while every row has a handler (see the test below).
            tracing::error!(endpoint = ?endpoint.id, "an endpoint of the table has no handler");
            return;
        };
        let route = route.layer(Extension(through));
        if endpoint.cors && !endpoint.page {
            api = std::mem::take(&mut api).route(path, route);
        } else {
            pages = std::mem::take(&mut pages).route(path, route);
        }
    };
    let registration = state.config().dynamic_registration.enabled();
    for endpoint in ENDPOINTS {
        if endpoint.id == EndpointId::Register && !registration {
            // Off: 404, and discovery does not name it.
            continue;
        }
        for path in endpoint.paths {
            add(endpoint, path, standard.clone());
        }
    }
    for (dialect, id, path) in dialects.routes() {
        // Every endpoint a dialect may name has a row (the dialect's validation names them).
        if let Some(endpoint) = endpoint::find(id) {
            add(endpoint, path, Through(Some(dialect.clone())));
        }
    }
    if registration {
        // RFC 7592 §2: one registration, at the registration endpoint's path plus its client
        // id (the endpoint table has no path parameters).
        let path = format!("{}/{{client_id}}", endpoint::path(EndpointId::Register));
        pages = std::mem::take(&mut pages).route(
            &path,
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        );
    }
    let api = match cors_layer(
        &state.http().cors_allowed_origins,
        &dialects.token_headers(),
    ) {
        Some(cors) => api.layer(cors),
        None => api,
    };
    api.merge(pages)
}

/// The handlers of a row: one per method it takes. An endpoint that takes only `POST`
/// answers any other method with `405` in the JSON error shape (RFC 6749 §3.2).
fn method_router(endpoint: &Endpoint) -> Option<MethodRouter<AppState>> {
    let mut route = MethodRouter::new();
    for method in endpoint.methods {
        route = route.merge(handler(endpoint.id, *method)?);
    }
    if endpoint.methods == [Method::Post] {
        route = route.fallback(routes::post_only);
    }
    Some(route)
}

/// The handler of an endpoint for one method, if it takes that method.
fn handler(id: EndpointId, method: Method) -> Option<MethodRouter<AppState>> {
    use Method::{Get, Post};
    Some(match (id, method) {
        (EndpointId::Token, Post) => post(token::handle),
        (EndpointId::Introspect, Post) => post(introspect::handle),
        (EndpointId::Revoke, Post) => post(revoke::handle),
        (EndpointId::DeviceAuthorization, Post) => post(device_authorization::handle),
        (EndpointId::SdkToken, Post) => post(sdk::handle),
        (EndpointId::Discovery, Get) => get(discovery::handle),
        (EndpointId::Jwks, Get) => get(jwks::handle),
        (EndpointId::Userinfo, Get) => get(userinfo::handle),
        (EndpointId::Userinfo, Post) => post(userinfo::handle),
        (EndpointId::Authorize, Get) => get(authorize::get),
        (EndpointId::Authorize, Post) => post(authorize::post),
        (EndpointId::Logout, Get) => get(logout::get),
        (EndpointId::Logout, Post) => post(logout::post),
        (EndpointId::DeviceVerification, Get) => get(routes::device::get),
        (EndpointId::DeviceVerification, Post) => post(routes::device::post),
        (EndpointId::Stylesheet, Get) => get(assets::css),
        (EndpointId::SsoCallback, Get) => get(sso::callback),
        (EndpointId::Register, Post) => post(register::create),
        (EndpointId::PushedAuthorization, Post) => post(routes::par::handle),
        (
            EndpointId::Token
            | EndpointId::Introspect
            | EndpointId::Revoke
            | EndpointId::DeviceAuthorization
            | EndpointId::SdkToken
            | EndpointId::Discovery
            | EndpointId::Jwks
            | EndpointId::Stylesheet
            | EndpointId::SsoCallback
            | EndpointId::Register
            | EndpointId::PushedAuthorization,
            _,
        ) => return None,
    })
}

fn ops_routes() -> Router<AppState> {
    health_routes().route("/metrics", get(routes::metrics::render))
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/health/alive", get(health::alive))
        .route("/health/ready", get(health::ready))
}

/// The layers every router gets: HSTS behind an https issuer, metrics, the request timeout,
/// the access log when it is on, the request id.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let mut app = routes.fallback(routes::not_found);
    // RFC 6797: behind an https issuer, browsers must not fall back to plain http.
    if state.config().issuer.starts_with("https://") {
        app = app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    app = app
        .layer(axum::middleware::from_fn_with_state(
            state.metrics_handle(),
            crate::metrics::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.http().request_timeout,
        ));
    app = app.layer(axum::middleware::from_fn(crate::request_id::assign));
    crate::access_log::around(app, state.http().access_log).with_state(state)
}

/// CORS for the configured origins: `GET` and `POST`, with `Authorization`, `Content-Type`
/// and the headers enabled dialects let carry an access token (`token_headers`).
fn cors_layer(origins: &[String], token_headers: &[&str]) -> Option<CorsLayer> {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers(
                [header::AUTHORIZATION, header::CONTENT_TYPE]
                    .into_iter()
                    .chain(
                        token_headers
                            .iter()
                            .filter_map(|h| header::HeaderName::from_bytes(h.as_bytes()).ok()),
                    )
                    .collect::<Vec<_>>(),
            )
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_of_every_endpoint_has_a_handler_and_no_other_does() {
        for endpoint in ENDPOINTS {
            for method in [Method::Get, Method::Post] {
                assert_eq!(
                    handler(endpoint.id, method).is_some(),
                    endpoint.methods.contains(&method),
                    "{:?} {}",
                    endpoint.id,
                    method.as_str()
                );
            }
            assert!(method_router(endpoint).is_some(), "{:?}", endpoint.id);
        }
    }
}
