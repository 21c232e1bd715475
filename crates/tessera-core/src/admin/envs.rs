//! Deployment environments.
//!
//! Owns their rules: a name is 1 to 64 of `a-z`, `0-9`, `-` and `_`
//! ([`valid_env_name`]); one is created on first use or explicitly (nothing happens if it
//! exists); [`DEFAULT_ENV`] always exists and is never deleted; deleting one removes its
//! trust registrations and its `/sdk/token` client (which revokes that client's tokens) and
//! is refused while other clients are registered in it.

use serde::Deserialize;

use super::{AdminError, AdminResult};
use crate::environment::{valid_env_name, DEFAULT_ENV};
use crate::model::{EnvDeletion, EnvRecord};
use crate::store::Store;

/// A change to an environment's settings; fields not given stay as they were.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EnvPatch {
    /// Every access token issued in it is single-use.
    pub single_use_tokens: Option<bool>,
}

/// Creates an environment if it does not exist; returns it.
pub async fn create(store: &dyn Store, name: &str, now: i64) -> AdminResult<EnvRecord> {
    if !valid_env_name(name) {
        return Err(AdminError::invalid(
            "name",
            "an environment name is 1 to 64 of a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(store.ensure_env(name, now).await?)
}

/// Changes an environment's settings; returns it as stored.
pub async fn update(
    store: &dyn Store,
    name: &str,
    patch: EnvPatch,
    now: i64,
) -> AdminResult<EnvRecord> {
    let Some(once) = patch.single_use_tokens else {
        return Err(AdminError::invalid(
            "single_use_tokens",
            "single_use_tokens: nothing to set (give true or false)",
        ));
    };
    if !store.set_env_single_use(name, once, now).await? {
        return Err(AdminError::not_found("environment", name));
    }
    store
        .get_env(name)
        .await?
        .ok_or_else(|| AdminError::not_found("environment", name))
}

/// Every environment, by name.
pub async fn list(store: &dyn Store) -> AdminResult<Vec<EnvRecord>> {
    Ok(store.list_envs().await?)
}

/// Deletes an environment with its trust registrations and its `/sdk/token` client.
pub async fn delete(store: &dyn Store, name: &str, now: i64) -> AdminResult<()> {
    if name == DEFAULT_ENV {
        return Err(AdminError::Conflict(
            "the default environment cannot be deleted".into(),
        ));
    }
    match store.delete_env(name, now).await? {
        EnvDeletion::Deleted => Ok(()),
        EnvDeletion::NotFound => Err(AdminError::not_found("environment", name)),
        EnvDeletion::InUse(n) => Err(AdminError::Conflict(format!(
            "environment '{name}' still has {n} client(s); delete them first"
        ))),
    }
}
