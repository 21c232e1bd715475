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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretHash;
    use crate::store::memory::MemoryStore;
    use crate::store::testsuite;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn merging_keeps_what_was_given_and_adds_what_is_new() {
        assert_eq!(merge(None, &scopes("openid profile")), "openid profile");
        assert_eq!(
            merge(Some("openid  profile"), &scopes("profile email")),
            "openid profile email"
        );
        assert_eq!(
            merge(Some("openid email"), &scopes("openid")),
            "openid email"
        );
        assert_eq!(merge(Some(""), &scopes("")), "");
    }

    #[test]
    fn consent_covers_a_request_only_for_every_scope_it_asks() {
        let given = scopes("openid profile");
        assert!(covers(Some(&given), &scopes("openid")));
        assert!(covers(Some(&given), &scopes("profile openid")));
        assert!(covers(Some(&given), &scopes("")));
        assert!(!covers(Some(&given), &scopes("openid email")));
        assert!(!covers(None, &scopes("openid")));
        assert!(!covers(None, &scopes("")));
    }

    #[test]
    fn consent_is_remembered_only_where_the_redirect_uri_names_the_client() {
        let mut c = testsuite::client(&SecretHash::of("s"));
        assert!(remembered_for(&c, "http://127.0.0.1:5000/cb"));
        c.public = true;
        assert!(remembered_for(&c, "https://app.example.com/cb"));
        assert!(!remembered_for(&c, "http://127.0.0.1:5000/cb"));
        assert!(!remembered_for(&c, "com.example.app:/cb"));
    }

    #[tokio::test]
    async fn remembered_consent_grows_per_user_and_client() {
        let store = MemoryStore::new();
        for id in ["u1", "u2"] {
            store
                .insert_user(&crate::model::UserRecord {
                    user_id: id.into(),
                    username: id.into(),
                    password_hash: String::new(),
                    email: None,
                    name: None,
                    created_at: 1,
                    updated_at: 1,
                })
                .await
                .unwrap();
        }
        assert_eq!(granted(&store, "u1", "c1").await.unwrap(), None);
        remember(&store, "u1", "c1", &scopes("openid profile"), 10)
            .await
            .unwrap();
        remember(&store, "u1", "c1", &scopes("email openid"), 20)
            .await
            .unwrap();
        let got = granted(&store, "u1", "c1").await.unwrap();
        assert_eq!(got, Some(scopes("openid profile email")));
        assert!(covers(got.as_ref(), &scopes("email profile")));
        // Another client, another user: nothing given.
        assert_eq!(granted(&store, "u1", "c2").await.unwrap(), None);
        assert_eq!(granted(&store, "u2", "c1").await.unwrap(), None);
        // A record that is not a scope string counts as none.
        store
            .put_consent("u2", "c1", "bad\"scope", 30)
            .await
            .unwrap();
        assert_eq!(granted(&store, "u2", "c1").await.unwrap(), None);
    }
}
