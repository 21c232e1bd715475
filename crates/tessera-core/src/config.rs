//! Protocol settings.
//!
//! Owns [`Config`]: the settings the protocol core obeys (issuer, token lifetimes, key
//! rotation, assertion limits, the dialects served), typed and validated once at start, and [`SigningAlg`], the
//! algorithm of the signing keys it names. Where they come from (flags, environment, file) is
//! the binary's business. A leaf: settings name values, not the machinery that uses them.

use std::sync::Arc;

use crate::dialect::Dialects;

/// Settings of the protocol core.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2), byte-for-byte the `iss` of every token.
    pub issuer: String,
    /// Default `aud` of access tokens; the issuer unless configured.
    pub default_audience: String,
    /// Access-token lifetime for clients registered without one, seconds.
    pub default_access_token_ttl: i64,
    /// Longest access-token lifetime any client may have, seconds. Decides how long a
    /// superseded signing key stays published.
    pub max_access_token_ttl: i64,
    /// Algorithm of newly made signing keys.
    pub signing_alg: SigningAlg,
    /// How long a new key is published before it signs, seconds: longer than verifiers cache
    /// the JWKS (the JWKS is served with `max-age` of half this).
    pub key_rotation_lead_time: i64,
    /// Rotate the signing key automatically when the newest key is this old, seconds (0: only
    /// by `tessera keys rotate`).
    pub key_rotation_interval: i64,
    /// Lifetime of ID tokens, seconds.
    pub id_token_ttl: i64,
    /// How long a sign-in lasts in the browser, seconds.
    pub session_ttl: i64,
    /// Longest a JWT assertion (RFC 7523: a client assertion or a jwt-bearer grant) may be
    /// valid for, from now or from its `iat`, seconds.
    pub assertion_max_lifetime: i64,
    /// Clock leeway for an assertion's `exp`, `nbf` and `iat`, seconds (RFC 7519 §4.1.4).
    pub assertion_leeway: i64,
    /// The dialects served ([`crate::dialect`]); the presets as they ship unless configured.
    pub dialects: Arc<Dialects>,
}

impl Config {
    /// Defaults for an issuer.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            default_audience: issuer.clone(),
            issuer,
            default_access_token_ttl: 3600,
            max_access_token_ttl: 86_400,
            signing_alg: SigningAlg::Es256,
            key_rotation_lead_time: 600,
            key_rotation_interval: 0,
            id_token_ttl: 3600,
            session_ttl: 12 * 3600,
            assertion_max_lifetime: 3600,
            assertion_leeway: 60,
            dialects: Arc::new(Dialects::presets()),
        }
    }

    /// How long verifiers may cache the JWKS, seconds: the `max-age` of its `Cache-Control`,
    /// half the rotation lead time and at most 300 s. A new key must be published at least
    /// this long before it signs (RFC 7517 §5 leaves caching to HTTP; a verifier honouring
    /// the header then knows every key before it meets a token signed by it).
    pub fn jwks_max_age(&self) -> i64 {
        (self.key_rotation_lead_time / 2).clamp(0, 300)
    }

    /// The URL of an endpoint path under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// A supported JWS signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWS `alg` name (case-insensitive for configuration convenience).
    pub fn parse(s: &str) -> Result<Self, UnsupportedAlg> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(SigningAlg::Es256),
            "EDDSA" | "ED25519" => Ok(SigningAlg::EdDsa),
            _ => Err(UnsupportedAlg(s.to_owned())),
        }
    }
}

/// A signing algorithm Tessera does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm '{0}' (use ES256 or EdDSA)")]
pub struct UnsupportedAlg(pub String);
