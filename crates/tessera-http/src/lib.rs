//! Tessera's HTTP layer: the only crate that knows HTTP.
//!
//! - [`router::app`] builds the axum router (tests call it with `oneshot`).
//! - [`state`]: shared state and background work; [`cache`]: caches kept true by the change
//!   feed; [`throttle`]: sign-in and client-authentication budgets and the password-check
//!   budget; [`signin`]: password sign-in with device cookies.
//! - [`extract`]: bodies parsed once at the edge; [`error`]: protocol errors to responses.
//! - [`remote_keys`]: trusted issuers' JWKS fetched by URL, cached.
//! - [`routes`]: one module per endpoint; [`metrics`]: Prometheus.
#![warn(missing_docs)]

pub mod cache;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod metrics;
pub mod pages;
pub mod pending;
pub mod remote_keys;
pub mod revoked;
pub mod router;
pub mod routes;
pub mod signin;
pub mod state;
pub mod throttle;

pub use router::{app, oauth_app, ops_app};
pub use state::{AppState, HttpConfig, StartError};
