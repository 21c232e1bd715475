//! Handler-level tests of every grant and endpoint module of the protocol core, against the
//! in-memory store with a fixed clock: each table row is a request and the outcome the
//! module must give (an error code, or the fields of a success). Time-dependent rules (code,
//! token, session and refresh expiry, assertion lifetimes) are checked by moving the clock,
//! never by waiting. One test binary, one module per grant or endpoint.
// Table rows are tuples spelled out where the table is written.
#![allow(
    clippy::type_complexity,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

mod audit;
mod client_import;
mod dialects;
mod endpoint_authorize;
mod endpoint_device_verification;
mod endpoint_discovery;
mod endpoint_introspect;
mod endpoint_par;
mod endpoint_register;
mod endpoint_revoke;
mod endpoint_sdk_token;
mod endpoint_token;
mod endpoint_userinfo;
mod grant_authorization_code;
mod grant_client_credentials;
mod grant_device_code;
mod grant_jwt_bearer;
mod grant_refresh_token;
mod grant_token_exchange;
mod hosts;
mod mtls;
mod profile_fapi2;
