//! The router.
//!
//! Owns which URL goes to which route, and the layers around them: CORS only on the endpoints
//! a browser client may call (token, `/sdk/token`, introspection, revocation, JWKS,
//! discovery; never on operational endpoints), a request timeout, and per-endpoint metrics.
//! The body limit is enforced by the body extractor.
//!
//! The health probes are on whichever listener the operational endpoints use, so that load
//! balancers reach them. `/metrics` is not public: on a separate operational listener it is
//! served as is; on the public one only with the configured bearer token, and not at all
//! without one.

use axum::http::{header, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::routes::{
    self, assets, authorize, discovery, health, introspect, jwks, logout, revoke, sdk, token,
    userinfo,
};
use crate::state::AppState;

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

fn oauth_routes(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route(
            "/oauth2/token",
            post(token::handle).fallback(routes::post_only),
        )
        .route(
            "/oauth2/introspect",
            post(introspect::handle).fallback(routes::post_only),
        )
        .route(
            "/oauth2/revoke",
            post(revoke::handle).fallback(routes::post_only),
        )
        .route("/sdk/token", post(sdk::handle).fallback(routes::post_only))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::handle),
        )
        .route("/.well-known/openid-configuration", get(discovery::handle))
        .route("/.well-known/jwks.json", get(jwks::handle))
        .route("/userinfo", get(userinfo::handle).post(userinfo::handle));
    let api = match cors_layer(&state.http().cors_allowed_origins) {
        Some(cors) => api.layer(cors),
        None => api,
    };
    // Pages for people: never CORS.
    let pages = Router::new()
        .route(
            "/oauth2/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/oauth2/logout", get(logout::get).post(logout::post))
        .route("/assets/tessera.css", get(assets::css));
    api.merge(pages)
}

fn ops_routes() -> Router<AppState> {
    health_routes().route("/metrics", get(routes::metrics::render))
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/health/alive", get(health::alive))
        .route("/health/ready", get(health::ready))
}

/// The layers every router gets: HSTS behind an https issuer, metrics, the request timeout.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let mut app = routes.fallback(routes::not_found);
    // RFC 6797: behind an https issuer, browsers must not fall back to plain http.
    if state.config().issuer.starts_with("https://") {
        app = app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    app.layer(axum::middleware::from_fn_with_state(
        state.metrics_handle(),
        crate::metrics::track,
    ))
    .layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        state.http().request_timeout,
    ))
    .with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
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
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
