//! Tessera's HTTP layer: the only crate that knows HTTP.
//!
//! - [`admin_api`]: the admin API, on a listener of its own.
//! - [`router::app`] builds the axum router (tests call it with `oneshot`).
//! - [`state`]: shared state (a `tessera-node` node and what HTTP needs beside it);
//!   [`throttle`]: sign-in and client-authentication budgets; [`password_checks`]: the
//!   budget of Argon2 checks; [`signin`]: password sign-in with device cookies.
//! - [`host`]: which public base URL (the issuer, a custom domain, a data centre) a request
//!   is answered as.
//! - [`extract`]: bodies parsed once at the edge; [`error`]: protocol errors to responses;
//!   [`response`]: the JSON bodies of token and introspection responses.
//! - [`remote_keys`]: trusted issuers' JWKS fetched by URL, cached; [`backchannel`]: logout
//!   tokens delivered to clients from the outbox.
//! - [`request_id`]: the id of each request (`X-Request-Id`), for logs and the audit trail;
//!   [`otel`]: the request span of OpenTelemetry tracing, child of an incoming `traceparent`.
//! - [`routes`]: one module per endpoint; [`metrics`]: Prometheus; [`through`]: the dialect a
//!   request came through.
#![warn(missing_docs)]

pub mod access_log;
pub mod admin_api;
pub mod backchannel;
pub mod backchannel_target;
pub mod error;
pub mod extract;
pub mod host;
pub mod i18n;
pub mod metrics;
pub mod otel;
pub mod pages;
pub mod password_checks;
pub mod pending;
pub mod remote_keys;
pub mod request_id;
pub mod response;
pub mod router;
pub mod routes;
pub mod signin;
pub mod sso;
pub mod state;
pub mod throttle;
pub mod through;

pub use admin_api::admin_app;
pub use router::{app, oauth_app, ops_app};
pub use state::{AppState, HttpConfig, StartError};
