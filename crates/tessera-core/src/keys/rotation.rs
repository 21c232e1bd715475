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
    store
        .insert_key(&generate_key(alg, sealer, now, now)?)
        .await?;
    Ok(true)
}

/// Rotates the signing key: a new key published now that signs from `now + lead_time`, and
/// every key not yet retired kept published until no token it signed can still be valid.
pub async fn rotate(
    store: &dyn crate::store::KeyStore,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
    lead_time: i64,
    max_token_ttl: i64,
) -> Result<KeyRecord, KeyRotationError> {
    let existing = store.list_keys().await?;
    let new = generate_key(alg, sealer, now, now + lead_time.max(0))?;
    store.insert_key(&new).await?;
    for (kid, until) in retirements(&existing, new.activates_at, max_token_ttl) {
        store.retire_key(&kid, until).await?;
    }
    Ok(new)
}

/// Rotates the signing key if the newest key is at least `interval` old. Several servers may
/// call this at once: the rotation is claimed through the replay store, so exactly one of
/// them rotates. Returns the new key, if this call made one.
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
    let claim = format!("key_rotation:after:{}", newest.kid);
    if !store
        .use_once(&claim, now + config.key_rotation_interval)
        .await?
    {
        return Ok(None);
    }
    let new = rotate(
        store,
        sealer,
        config.signing_alg,
        now,
        config.key_rotation_lead_time,
        config.max_access_token_ttl,
    )
    .await?;
    Ok(Some(new))
}

/// Re-seals every stored key under a new sealing secret: each private key is opened with
/// `old` and sealed with `new`, then all are stored in one transaction. Returns how many.
pub async fn reseal(
    store: &dyn crate::store::KeyStore,
    old: &Sealer,
    new: &Sealer,
) -> Result<usize, KeyRotationError> {
    let mut sealed = Vec::new();
    for k in store.list_keys().await? {
        let plain = old.open(&k.kid, &k.private_sealed)?;
        sealed.push((k.kid.clone(), new.seal(&k.kid, &plain)?));
    }
    store.reseal_keys(&sealed).await?;
    Ok(sealed.len())
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
}
