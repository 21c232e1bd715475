//! The server's signing keys, as an operator manages them.
//!
//! Owns the operator's view of [`crate::keys`]: rotating (a new key published at once and
//! signing after a lead time, by default the configured one), re-sealing every key under a
//! new sealing secret, and the state of each key at a given time. Both writes first prove
//! that the sealer given opens every stored key and write nothing otherwise
//! ([`crate::keys::check_sealed_by`]).

use serde::Serialize;

use super::{AdminError, AdminResult};
use crate::config::Config;
use crate::keys::{self, Sealer};
use crate::model::KeyRecord;
use crate::store::Store;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not signing yet.
    Pending,
    /// The key that signs.
    Active,
    /// Replaced by a newer key; published until its retirement.
    Superseded,
    /// No longer published.
    Retired,
}

impl KeyState {
    /// The state of `key` at `now`.
    pub fn of(key: &KeyRecord, now: i64) -> Self {
        if key.retires_at.is_some_and(|r| r <= now) {
            KeyState::Retired
        } else if key.activates_at > now {
            KeyState::Pending
        } else if key.retires_at.is_some() {
            KeyState::Superseded
        } else {
            KeyState::Active
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Superseded => "superseded",
            KeyState::Retired => "retired",
        }
    }
}

/// The longest lead time an operator may ask for: a key published a month before it signs
/// is already more than any JWKS cache needs, and a longer one is a typing error (and must
/// not overflow the time it activates at).
pub const MAX_LEAD_TIME: i64 = 30 * 86_400;

/// Makes a new signing key that signs from `now + lead_time` (default: the configured
/// `key_rotation_lead_time`, at most [`MAX_LEAD_TIME`]); returns it.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    config: &Config,
    lead_time: Option<i64>,
    now: i64,
) -> AdminResult<KeyRecord> {
    if lead_time.is_some_and(|l| l > MAX_LEAD_TIME) {
        return Err(AdminError::invalid(
            "lead_time",
            format!("lead_time must be at most {MAX_LEAD_TIME} seconds (30 days)"),
        ));
    }
    let lead = lead_time.unwrap_or(config.key_rotation_lead_time);
    Ok(keys::rotate(store, sealer, config, now, lead).await?)
}

/// Re-seals every signing key under `new`; returns how many.
pub async fn reseal(store: &dyn Store, old: &Sealer, new: &Sealer, now: i64) -> AdminResult<usize> {
    Ok(keys::reseal(store, old, new, now).await?)
}

/// Every key with its state at `now`, oldest first.
pub async fn list(store: &dyn Store, now: i64) -> AdminResult<Vec<(KeyRecord, KeyState)>> {
    Ok(store
        .list_keys()
        .await?
        .into_iter()
        .map(|k| {
            let state = KeyState::of(&k, now);
            (k, state)
        })
        .collect())
}
