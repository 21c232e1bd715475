//! Consent: what a user allowed a client, remembered to ask only for what is new.
//!
//! Owns the rules of the consent record (one scope string per user and client, kept by
//! [`UserStore::put_consent`]): consent given to a request is merged into what was given
//! before ([`merge`], [`remember`]), never narrowing it; a request is covered when every
//! scope it asks for was consented to ([`covers`]); and consent is remembered only for a
//! client whose identity its redirect URI assures ([`remembered_for`], RFC 8252 §8.6; see
//! [`crate::endpoint::authorize`]). Whether to ask is decided by
//! [`crate::endpoint::authorize::next_step`], from these.

use crate::model::ClientRecord;
use crate::scope::ScopeSet;
use crate::store::{StoreError, UserStore};

/// Whether consent given to `client` answered at `redirect_uri` may be remembered and used
/// again without asking: not for a public client answered at a loopback or private-use-scheme
/// redirect URI, which cannot be told from another app on the same device (RFC 8252 §8.6).
pub fn remembered_for(client: &ClientRecord, redirect_uri: &str) -> bool {
    !client.public || redirect_uri.starts_with("https://")
}

/// The consent record after `granted` was consented to on top of `previous`: every scope of
/// `previous`, in order, then those of `granted` it lacked.
pub fn merge(previous: Option<&str>, granted: &ScopeSet) -> String {
    let mut scopes: Vec<&str> = previous
        .unwrap_or("")
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect();
    for s in granted.iter() {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes.join(" ")
}

/// Whether consent to `consented` covers every scope of `requested`.
pub fn covers(consented: Option<&ScopeSet>, requested: &ScopeSet) -> bool {
    consented.is_some_and(|c| requested.check_within(c).is_ok())
}

/// The scope `user_id` consented to for `client_id`, if any (a record that is not a scope
/// string counts as none).
pub async fn granted<S: UserStore + ?Sized>(
    store: &S,
    user_id: &str,
    client_id: &str,
) -> Result<Option<ScopeSet>, StoreError> {
    Ok(store
        .get_consent(user_id, client_id)
        .await?
        .and_then(|c| ScopeSet::parse(&c).ok()))
}

/// Remembers that `user_id` consented to `scope` for `client_id` at `now`, merged into what
/// they consented to before.
pub async fn remember<S: UserStore + ?Sized>(
    store: &S,
    user_id: &str,
    client_id: &str,
    scope: &ScopeSet,
    now: i64,
) -> Result<(), StoreError> {
    let previous = store.get_consent(user_id, client_id).await?;
    let merged = merge(previous.as_deref(), scope);
    store.put_consent(user_id, client_id, &merged, now).await
}
