//! Tessera's protocol core: the rules of OAuth 2.0, with no HTTP and no database.
//!
//! A map of the crate:
//! - [`error`]: [`OAuthError`], the one protocol error (RFC 6749 §5.2).
//! - [`params`]: request parameters parsed once at the edge, duplicates refused.
//! - [`client_auth`]: who is calling (RFC 6749 §2.3); [`client_assertion`] and
//!   [`client_keys`]: `private_key_jwt` and the registered keys and signature checks behind it.
//! - [`endpoint`]: one module per endpoint and [`endpoint::ENDPOINTS`], the one table of
//!   Tessera's URLs, read by discovery and the HTTP router.
//! - [`grant`]: one module per grant type and [`grant::GRANTS`], the one table of grant
//!   types, through which the token endpoint dispatches (client credentials; authorization
//!   code; refresh token; JWT bearer, RFC 7523, from issuers trusted per deployment
//!   environment).
//! - [`issue`], [`inspect`]: minting access tokens and deciding whether one is active.
//! - [`jwt`], [`keys`]: RFC 9068 JWTs and the signing keys behind them.
//! - [`secret`], [`scope`]: secrets (generation, hashing, constant-time comparison), scopes.
//! - [`model`], [`store`]: stored records (a leaf) and the storage traits each database
//!   implements; [`audience`], [`environment`]: audiences of tokens, environment names.
//! - [`signin`], [`session`], [`consent`]: signing a user in behind one interface (a password
//!   form is one implementation), their browser sessions, and the consent they gave.
//! - [`config`], [`clock`], [`cx`]: settings, time as an input, and the handler context;
//!   [`dialect`]: presets of endpoint behaviour for clients written against other products.
//! - [`admin`]: the application layer: managing clients, users, trusted issuers,
//!   environments, signing keys and tokens, every rule checked once, for the CLI and any API.
#![warn(missing_docs)]

pub mod admin;
pub mod audience;
pub mod audit;
pub mod backchannel_logout;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod clock;
pub mod config;
pub mod confirmation;
pub mod consent;
pub mod cx;
pub mod dialect;
pub mod dpop;
pub mod endpoint;
pub mod environment;
pub mod error;
pub mod grant;
pub mod id_token;
pub mod imported_secret;
pub mod inspect;
pub mod issue;
pub mod jwt;
pub mod keys;
pub mod model;
pub mod opaque;
pub mod params;
pub mod password;
pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod scope;
pub mod secret;
pub mod sender;
pub mod session;
pub mod signin;
pub mod store;
pub mod username;

pub use error::{ErrorCode, OAuthError};
