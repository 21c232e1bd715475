//! End-to-end tests: the real `tessera` binary, driven over HTTP and through its CLI.
//!
//! One test binary (linking is slow); one module per area. Every test starts its own server
//! (`support::Server`, about 100 ms), so tests never share state and can run in parallel.
// clippy.toml allows these in `#[test]` functions, but not in the helpers they call.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod browser;
mod browser_support;
mod support;

mod admin_api;
mod admin_resources;
mod assertion_limits;
mod audit;
mod authorize_requests;
mod backchannel_logout;
mod backup;
mod cli;
mod cli_remote;
mod client_credentials;
mod client_import;
mod code_flow;
mod completions;
mod config_check;
mod connection_reserve;
mod cors;
mod database_files;
mod device_flow;
mod device_page;
mod dialects_engine;
mod discovery;
mod docs_run;
mod dpop;
mod errors;
mod feed_retention;
mod fuzz;
mod hosts;
mod http_edges;
mod idp_cli;
mod introspection;
mod introspection_jwt;
mod jwt_bearer;
mod key_safety;
mod load;
mod logs;
mod multinode;
mod oidc_client;
mod outage;
mod packaging;
mod packaging_files;
mod page_forms;
mod par;
mod password_prompt;
mod private_key_jwt;
mod product_examples;
mod registration;
mod rotation;
mod sdk_first_use;
mod sdk_token;
mod sso;
mod startup_errors;
mod throttling;
mod tls;
mod token_exchange;
mod token_rules;
mod tracing_otlp;
mod usernames;
mod workfront_journey;
