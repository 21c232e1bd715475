//! Rotation: when keys are made, and how long superseded keys stay published.

use super::{generate_key, KeyError, Sealer, SigningAlg};
use crate::model::KeyRecord;

/// Which existing keys a rotation supersedes, and until when each stays published: every key
/// not yet retired stays published until the new key activates plus the longest access-token
/// lifetime (after that no token it signed can still be valid).
pub fn retirements(
    existing: &[KeyRecord],
    new_activates_at: i64,
    max_token_ttl: i64,
) -> Vec<(String, i64)> {
    existing
        .iter()
        .filter(|k| k.retires_at.is_none())
        .map(|k| (k.kid.clone(), new_activates_at + max_token_ttl))
        .collect()
}

/// Proves that `sealer` holds the secret the stored keys are sealed under: every key opens
/// with it and none records another secret's fingerprint. Whatever writes keys calls this
/// first and writes nothing when it fails.
pub fn check_sealed_by(existing: &[KeyRecord], sealer: &Sealer) -> Result<(), KeyRotationError> {
    for k in existing {
        if k.sealed_by
            .as_deref()
            .is_some_and(|fp| fp != sealer.fingerprint())
        {
            return Err(KeyRotationError::SealedElsewhere);
        }
        sealer.open(&k.kid, &k.private_sealed)?;
    }
    Ok(())
}

/// Makes sure a signing key exists; makes one that signs at once if there is none. Returns
/// whether a key was made.
pub async fn ensure_key(
    store: &dyn crate::store::KeyStore,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
) -> Result<bool, KeyRotationError> {
    if !store.list_keys().await?.is_empty() {
        return Ok(false);
    }
    if !store
        .insert_key(&generate_key(alg, sealer, now, now)?)
        .await?
    {
        return Err(KeyRotationError::SealedElsewhere);
    }
    Ok(true)
}

/// Rotates the signing key: a new key published now that signs from `now + lead_time`, and
/// every key not yet retired kept published until no token it signed can still be valid
/// (`config.max_access_token_ttl`). Refused, with nothing written, when the lead time is
/// shorter than verifiers may cache the JWKS ([`Config::jwks_max_age`]), or when the stored
/// keys do not all open with `sealer` ([`check_sealed_by`]).
///
/// [`Config::jwks_max_age`]: crate::config::Config::jwks_max_age
pub async fn rotate(
    store: &dyn crate::store::KeyStore,
    sealer: &Sealer,
    config: &crate::config::Config,
    now: i64,
    lead_time: i64,
) -> Result<KeyRecord, KeyRotationError> {
    let jwks_max_age = config.jwks_max_age();
    if lead_time < jwks_max_age {
        return Err(KeyRotationError::LeadTimeTooShort {
            lead_time,
            jwks_max_age,
        });
    }
    let existing = store.list_keys().await?;
    check_sealed_by(&existing, sealer)?;
    let new = generate_key(config.signing_alg, sealer, now, now + lead_time)?;
    // A `keys reseal` between the check and here makes the insert refuse.
    if !store.insert_key(&new).await? {
        return Err(KeyRotationError::SealedElsewhere);
    }
    for (kid, until) in retirements(&existing, new.activates_at, config.max_access_token_ttl) {
        store.retire_key(&kid, until).await?;
    }
    Ok(new)
}

/// Rotates the signing key if the newest key is at least `interval` old. Several servers may
/// call this at once: the rotation is claimed through the replay store, so exactly one of
/// them rotates. A server whose secret no longer opens the stored keys (they were re-sealed
/// under a new one) refuses before claiming, leaving the rotation to a server that holds the
/// current secret. Returns the new key, if this call made one.
pub async fn rotate_if_due(
    store: &dyn crate::store::Store,
    sealer: &Sealer,
    config: &crate::config::Config,
    now: i64,
) -> Result<Option<KeyRecord>, KeyRotationError> {
    if config.key_rotation_interval <= 0 {
        return Ok(None);
    }
    let keys = store.list_keys().await?;
    let Some(newest) = keys.iter().max_by_key(|k| (k.created_at, k.activates_at)) else {
        return Ok(None);
    };
    if now - newest.created_at < config.key_rotation_interval {
        return Ok(None);
    }
    check_sealed_by(&keys, sealer)?;
    let claim = format!("key_rotation:after:{}", newest.kid);
    if !store
        .use_once(&claim, now + config.key_rotation_interval)
        .await?
    {
        return Ok(None);
    }
    let new = rotate(store, sealer, config, now, config.key_rotation_lead_time).await?;
    Ok(Some(new))
}

/// Re-seals every stored key under a new sealing secret: each private key is opened with
/// `old` (nothing is written unless every one opens) and sealed with `new`, then all are
/// stored in one transaction that also tells running servers (the change feed). A key made
/// meanwhile makes the store refuse; the keys are then read again, a few times at most.
/// Returns how many keys were re-sealed.
pub async fn reseal(
    store: &dyn crate::store::KeyStore,
    old: &Sealer,
    new: &Sealer,
    now: i64,
) -> Result<usize, KeyRotationError> {
    for _ in 0..5 {
        let keys = store.list_keys().await?;
        check_sealed_by(&keys, old)?;
        let mut sealed = Vec::with_capacity(keys.len());
        for k in &keys {
            let plain = old.open(&k.kid, &k.private_sealed)?;
            sealed.push((k.kid.clone(), new.seal(&k.kid, &plain)?));
        }
        if store.reseal_keys(&sealed, new.fingerprint(), now).await? {
            return Ok(sealed.len());
        }
    }
    Err(KeyRotationError::KeysChanged)
}

/// A failure while making or rotating keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyRotationError {
    /// Key material.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Storage.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The stored keys are sealed under another secret than the one this process holds.
    #[error(
        "the stored signing keys are sealed under another sealing secret than this process's \
         (TESSERA_SECRET, secret_file, or the key file beside the database); no key was \
         written: use the secret the servers use (after `tessera keys reseal`, the new one)"
    )]
    SealedElsewhere,
    /// The lead time is shorter than verifiers may cache the JWKS.
    #[error(
        "a lead time of {lead_time} s is shorter than the {jwks_max_age} s verifiers may cache \
         the JWKS (it is served with Cache-Control: max-age={jwks_max_age}, half \
         key_rotation_lead_time and at most 300 s): a token signed by the new key could reach \
         a verifier that does not know the key yet; use a lead time of at least {jwks_max_age} s"
    )]
    LeadTimeTooShort {
        /// The lead time asked for, seconds.
        lead_time: i64,
        /// The `max-age` of the JWKS, seconds.
        jwks_max_age: i64,
    },
    /// Keys kept being added while they were re-sealed.
    #[error(
        "signing keys kept being added while they were re-sealed; nothing was re-sealed: try again"
    )]
    KeysChanged,
}
