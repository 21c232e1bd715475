//! The context every endpoint handler is given.
//!
//! Owns [`Cx`]: borrowed access to the configuration, the storage, the keys, the verified-token
//! cache, the fetcher of remote key sets, and the current time (an input, never read from the
//! system here), the dialect the request came through, and the request's id and address (for the audit
//! trail). Owns [`RemoteKeys`], the one I/O the core asks for besides storage: fetching a
//! trusted issuer's JWKS from its URL, which the HTTP layer implements (with, alongside, the
//! place where signature checks of other parties' assertions run).

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::audit::RequestMeta;
use crate::client_keys::SignatureError;
use crate::config::Config;
use crate::dialect::Dialect;
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

/// Fetches JWKS documents by URL for trusted issuers registered with one (RFC 7517 §5).
#[async_trait::async_trait]
pub trait RemoteKeys: Send + Sync {
    /// The JWKS document at `uri`, from a cache while fresh. With `refresh`, a fresh fetch
    /// unless one happened very recently (an unknown `kid` asks for it: the issuer may have
    /// rotated its key). `Err` carries a description safe to log.
    async fn jwks(&self, uri: &str, refresh: bool) -> Result<String, String>;

    /// Runs a signature check of an assertion from another party
    /// ([`crate::client_keys::ClientKeys::verify_signature`]): CPU work that anyone can
    /// ask for by sending a forged assertion, which the HTTP layer runs off its serving
    /// threads, a few at a time, so that it cannot starve other requests. By default, here.
    async fn check_signature(&self, check: SignatureCheck) -> Result<(), SignatureError> {
        check()
    }
}

/// A signature check, to run wherever [`RemoteKeys::check_signature`] decides.
pub type SignatureCheck = Box<dyn FnOnce() -> Result<(), SignatureError> + Send + 'static>;

/// What a handler may use.
#[derive(Clone)]
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
    /// Fetches trusted issuers' JWKS by URL; `None` where nothing may be fetched.
    pub remote_keys: Option<&'a dyn RemoteKeys>,
    /// The current time, Unix seconds.
    pub now: i64,
    /// The dialect the request came through ([`crate::dialect`]), if any: one of
    /// `config.dialects`, chosen by the HTTP layer from the request's path.
    pub dialect: Option<&'a Dialect>,
    /// The request being handled (its id and source address), for the audit trail
    /// ([`crate::audit`]); empty outside HTTP.
    pub request: RequestMeta,
    /// The key every access token minted for this request is bound to
    /// ([`crate::confirmation`]): set by the token endpoint from a DPoP proof or a client
    /// certificate, `None` for bearer tokens.
    pub confirmation: Option<crate::confirmation::Confirmation>,
}
