//! The context every endpoint handler is given.
//!
//! Owns [`Cx`]: borrowed access to the configuration, the storage, the keys, the verified-token
//! cache, and the current time (an input, never read from the system here).

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::config::Config;
use crate::jwt::AccessClaims;
use crate::keys::{KeySet, Sealer};
use crate::store::Store;

/// JWTs whose signature was already verified, by SHA-256 of the token text. Holding the
/// verified claims keyed by a hash of the exact bytes is sound: any other bytes hash
/// elsewhere. Expiry, revocation and the client's epoch are still checked on every use.
pub type VerifiedTokens = Cache<[u8; 32], Arc<AccessClaims>>;

/// Makes a verified-token cache holding at most `capacity` entries.
pub fn verified_tokens(capacity: usize) -> VerifiedTokens {
    Cache::new(capacity)
}

/// What a handler may use.
pub struct Cx<'a> {
    /// Protocol settings.
    pub config: &'a Config,
    /// Storage (usually a caching layer over a database).
    pub store: &'a dyn Store,
    /// Signing keys.
    pub keys: &'a KeySet,
    /// Verified JWTs.
    pub verified: &'a VerifiedTokens,
    /// Seals values at rest and tags values handed out (shared by every node).
    pub sealer: &'a Sealer,
    /// The current time, Unix seconds.
    pub now: i64,
}
