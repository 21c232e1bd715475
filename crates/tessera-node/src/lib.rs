//! One Tessera node's running state, below HTTP and above the database.
//!
//! - [`cache`]: [`cache::CachedStore`], a [`tessera_core::store::Store`] that answers the hot
//!   reads of the token path from memory, kept true across nodes by the change feed;
//!   [`revoked`]: the fixed-size filter of revoked JWT ids it uses.
//! - [`node`]: [`Node`], what a serving process holds (settings, the cached store, the loaded
//!   signing keys, the sealer, the verified-token cache, the clock) and its background loop:
//!   polling the change feed, purging expired rows, rotating the signing key when due.
//! - [`traced`]: [`traced::Traced`], a store that makes a span of every storage call, for
//!   OpenTelemetry tracing.
//!
//! The HTTP crate wraps a [`Node`] in its application state; the core's handlers see it
//! through [`tessera_core::cx::Cx`].
#![warn(missing_docs)]

pub mod cache;
pub mod node;
pub mod revoked;
pub mod traced;

pub use node::{Node, NodeError, PURGE_INTERVAL, STALE_CACHE_LIMIT, SYNC_INTERVAL};
