//! Trusted issuers of JWT assertions (RFC 7523 §3), per deployment environment.
//!
//! Owns the rules of a registration: the environment's name; the issuer (1 to 256
//! characters, once per environment); its public keys given, a JWKS URL (https, or plain
//! http on a loopback address for development), or both; a non-empty subject claim; carried
//! claims that are not claims Tessera sets itself ([`REGISTERED_CLAIMS`]); its scopes. The
//! environment is created on first use.

use serde::Deserialize;

use super::public_keys::PublicKeys;
use super::{AdminError, AdminResult};
use crate::client_assertion::ClientKeys;
use crate::environment::{valid_env_name, DEFAULT_ENV};
use crate::jwt::REGISTERED_CLAIMS;
use crate::model::TrustRecord;
use crate::scope::ScopeSet;
use crate::secret;
use crate::store::{Store, StoreError};

/// Longest issuer identifier.
pub const MAX_ISSUER_LEN: usize = 256;

/// A trusted issuer to register.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TrustSpec {
    /// The issuer, as its JWTs' `iss` claim says it.
    pub issuer: String,
    /// Its public keys (none when `jwks_url` is given alone).
    pub keys: PublicKeys,
    /// Where it publishes its JWKS, fetched by the server.
    pub jwks_url: Option<String>,
    /// The claim that names the end user [default: `sub`].
    pub subject_claim: Option<String>,
    /// Claims copied from the JWT into the access token.
    pub claims: Vec<String>,
    /// The environment [default: `default`].
    pub env: Option<String>,
    /// Space-delimited scopes its assertions may obtain (also their default).
    pub scope: String,
}

/// Registers a trusted issuer.
pub async fn add(store: &dyn Store, spec: TrustSpec, now: i64) -> AdminResult<TrustRecord> {
    let env = spec.env.unwrap_or_else(|| DEFAULT_ENV.to_owned());
    if !valid_env_name(&env) {
        return Err(AdminError::invalid(
            "env",
            "env must be 1 to 64 of a-z, 0-9, '-' and '_'",
        ));
    }
    if spec.issuer.is_empty() || spec.issuer.len() > MAX_ISSUER_LEN {
        return Err(AdminError::invalid(
            "issuer",
            format!("issuer must be 1 to {MAX_ISSUER_LEN} characters"),
        ));
    }
    if !spec.keys.given() && spec.jwks_url.is_none() {
        return Err(AdminError::invalid(
            "keys",
            "give the issuer's public keys (PEM keys, a JWKS) or its jwks_url",
        ));
    }
    if let Some(url) = &spec.jwks_url {
        check_jwks_url(url)?;
    }
    let subject_claim = spec.subject_claim.unwrap_or_else(|| "sub".to_owned());
    if subject_claim.is_empty() {
        return Err(AdminError::invalid(
            "subject_claim",
            "subject_claim must not be empty",
        ));
    }
    for c in &spec.claims {
        if REGISTERED_CLAIMS.contains(&c.as_str()) {
            return Err(AdminError::invalid(
                "claims",
                format!("claims: {c} is a claim Tessera sets itself; it cannot be carried"),
            ));
        }
    }
    let keys = if spec.keys.given() {
        spec.keys.load()?
    } else {
        ClientKeys::default().to_stored()
    };
    let scopes =
        ScopeSet::parse(&spec.scope).map_err(|e| AdminError::invalid("scope", e.to_string()))?;
    let record = TrustRecord {
        id: secret::generate_id(),
        env,
        issuer: spec.issuer,
        keys,
        jwks_uri: spec.jwks_url,
        subject_claim,
        claims: spec.claims,
        scopes,
        created_at: now,
    };
    store.ensure_env(&record.env, now).await?;
    match store.insert_trust(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
            "environment '{}' already trusts issuer '{}': remove it first",
            record.env, record.issuer
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Every registration, of one environment or of all, oldest first.
pub async fn list(store: &dyn Store, env: Option<&str>) -> AdminResult<Vec<TrustRecord>> {
    Ok(store.list_trust(env).await?)
}

/// Replaces the public keys of a registration (the issuer's key rotation: register the new
/// key alongside the old one first, then the new one alone); returns the stored form.
pub async fn set_keys(
    store: &dyn Store,
    id: &str,
    keys: &PublicKeys,
    now: i64,
) -> AdminResult<String> {
    if !keys.given() {
        return Err(AdminError::invalid(
            "keys",
            "give the issuer's public keys (PEM keys or a JWKS)",
        ));
    }
    let stored = keys.load()?;
    if !store.set_trust_keys(id, &stored, now).await? {
        return Err(AdminError::not_found("trust registration", id));
    }
    Ok(stored)
}

/// Stops trusting an issuer (by registration id).
pub async fn remove(store: &dyn Store, id: &str, now: i64) -> AdminResult<()> {
    if !store.delete_trust(id, now).await? {
        return Err(AdminError::not_found("trust registration", id));
    }
    Ok(())
}

/// A JWKS URL must be https, or plain http on a loopback address (development).
pub fn check_jwks_url(url: &str) -> AdminResult<()> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if loopback {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "jwks_url",
            "jwks_url must be an https URL (plain http only on a loopback address)",
        ))
    }
}
