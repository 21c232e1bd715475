//! A user's consents and grants, as an operator (and, later, the user) sees them: which
//! clients, which scopes, since when; and taking them back.
//!
//! Owns the rules of listing and revoking them. A consent is the scope a user agreed to let a
//! client ask for without asking again (OpenID Connect Core §3.1.2.4, [`crate::consent`]); a
//! grant is one authorization the user gave a client (a token family: the access and refresh
//! tokens issued from one authorization code, RFC 6749 §4.1). Revoking a consent forgets it,
//! so that the next authorization request asks again, and revokes every grant of the user to
//! that client, so that their access and refresh tokens stop working at once (on every node:
//! each revocation is in the change feed). Revoking one grant revokes its token family alone
//! and keeps the consent (the client may ask again without a consent page). Revoking a user's
//! tokens revokes all their grants and keeps their consents. A user is named as
//! [`super::users::find`] names them.

use crate::backchannel_logout::{ending, Ending};
use serde::Serialize;

use super::{users, AdminError, AdminResult};
use crate::model::{ConsentRecord, GrantRecord, UserRecord};
use crate::store::Store;

/// A consent, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// The client consented to.
    pub client_id: String,
    /// The scope consented to (space-separated).
    pub scope: String,
    /// When it was last given or widened (Unix seconds).
    pub granted_at: i64,
}

impl From<ConsentRecord> for ConsentView {
    fn from(c: ConsentRecord) -> Self {
        Self {
            client_id: c.client_id,
            scope: c.scope,
            granted_at: c.granted_at,
        }
    }
}

/// A grant, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// Its id (carried by every token of the family).
    pub grant_id: String,
    /// The client it was given to.
    pub client_id: String,
    /// The scope granted (space-separated).
    pub scope: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When the user signed in for it.
    pub auth_time: i64,
    /// Until when its refresh tokens may be used.
    pub refresh_expires_at: i64,
    /// When it was revoked, if it was (its tokens no longer work).
    pub revoked_at: Option<i64>,
}

impl From<GrantRecord> for GrantView {
    fn from(g: GrantRecord) -> Self {
        Self {
            grant_id: g.grant_id,
            client_id: g.client_id,
            scope: g.scope,
            created_at: g.created_at,
            auth_time: g.auth_time,
            refresh_expires_at: g.refresh_expires_at,
            revoked_at: g.revoked_at,
        }
    }
}

/// A user's consents (by client id) and grants (oldest first, live and revoked until the
/// purge takes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserGrants {
    /// The user's id (the `sub` of their tokens).
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// What they consented to.
    pub consents: Vec<ConsentView>,
    /// What they granted.
    pub grants: Vec<GrantView>,
}

/// What revoking a consent did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedConsent {
    /// The user's username.
    pub username: String,
    /// The client.
    pub client_id: String,
    /// Whether a consent was there and is now forgotten.
    pub consent_removed: bool,
    /// How many live grants to the client were revoked.
    pub grants_revoked: u64,
}

/// What revoking one grant did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedGrant {
    /// The user's username.
    pub username: String,
    /// The grant.
    pub grant_id: String,
    /// The client it was given to.
    pub client_id: String,
    /// Whether it was live and is now revoked (`false`: it was revoked already).
    pub revoked: bool,
}

/// The consents and grants of the user named `typed`.
pub async fn list(store: &dyn Store, typed: &str) -> AdminResult<UserGrants> {
    let user = users::find(store, typed).await?;
    let consents = store.list_consents(&user.user_id).await?;
    let grants = store.list_user_grants(&user.user_id).await?;
    Ok(UserGrants {
        user_id: user.user_id,
        username: user.username,
        consents: consents.into_iter().map(ConsentView::from).collect(),
        grants: grants.into_iter().map(GrantView::from).collect(),
    })
}

/// Revokes the consent of the user named `typed` to `client_id`, and every grant of theirs
/// to that client. [`AdminError::NotFound`] (kind `consent`) when there was neither a
/// consent nor a live grant.
pub async fn revoke_consent(
    store: &dyn Store,
    typed: &str,
    client_id: &str,
    now: i64,
) -> AdminResult<RevokedConsent> {
    let user = users::find(store, typed).await?;
    // The client is told the user's sign-ins to it ended (Back-Channel Logout).
    let who = Ending::UserClient(&user.user_id, client_id);
    let (grants_revoked, consent_removed) = ending(store, who, now, async {
        // Counted first; the consent's removal revokes in the same transaction whatever was
        // granted since, so nothing issued under the consent survives it.
        let grants_revoked = store
            .revoke_user_grants(&user.user_id, Some(client_id), now)
            .await?;
        let consent_removed = store.delete_consent(&user.user_id, client_id, now).await?;
        Ok::<_, AdminError>((grants_revoked, consent_removed))
    })
    .await?;
    if !consent_removed && grants_revoked == 0 {
        return Err(AdminError::not_found(
            "consent",
            format!("of {} to {}", user.username, client_id.escape_default()),
        ));
    }
    Ok(RevokedConsent {
        username: user.username,
        client_id: client_id.to_owned(),
        consent_removed,
        grants_revoked,
    })
}

/// Revokes the grant `grant_id` of the user named `typed`: its access and refresh tokens stop
/// working at once (RFC 7009 §2.1: a revoked grant takes its whole token family), on every
/// node through the change feed. [`AdminError::NotFound`] (kind `grant`) when the user has no
/// grant with that id, so that one user's grants are not reached through another's name.
/// Revoking a grant revoked already changes nothing and says so.
pub async fn revoke_grant(
    store: &dyn Store,
    typed: &str,
    grant_id: &str,
    now: i64,
) -> AdminResult<RevokedGrant> {
    let user = users::find(store, typed).await?;
    let not_found = || {
        AdminError::not_found(
            "grant",
            format!("{} of {}", grant_id.escape_default(), user.username),
        )
    };
    let grant = store
        .get_grant(grant_id)
        .await?
        .filter(|g| g.user_id == user.user_id)
        .ok_or_else(not_found)?;
    // Its client is told, if the grant was live (Back-Channel Logout).
    let revoked = ending(store, Ending::Grant(grant_id), now, async {
        Ok::<_, AdminError>(grant.revoked_at.is_none() && store.revoke_grant(grant_id, now).await?)
    })
    .await?;
    Ok(RevokedGrant {
        username: user.username,
        grant_id: grant.grant_id,
        client_id: grant.client_id,
        revoked,
    })
}

/// Revokes every grant of the user named `typed` (with their access and refresh tokens),
/// keeping the user, their sessions and their consents, and queues a logout token for each
/// client with a back-channel logout URI that held one of the live grants
/// ([`crate::backchannel_logout`]). Returns the user and how many grants were live and are
/// now revoked.
pub async fn revoke_tokens(
    store: &dyn Store,
    typed: &str,
    now: i64,
) -> AdminResult<(UserRecord, u64)> {
    let user = users::find(store, typed).await?;
    let n = ending(store, Ending::User(&user.user_id), now, async {
        Ok::<_, AdminError>(store.revoke_user_grants(&user.user_id, None, now).await?)
    })
    .await?;
    Ok((user, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::users::UserSpec;
    use crate::store::memory::MemoryStore;
    use crate::store::{GrantStore, UserStore};

    const NOW: i64 = 1_700_000_000;

    fn grant(grant_id: &str, user_id: &str, client_id: &str, created_at: i64) -> GrantRecord {
        GrantRecord {
            grant_id: grant_id.into(),
            client_id: client_id.into(),
            user_id: user_id.into(),
            scope: "openid offline_access".into(),
            auth_time: created_at,
            nonce: None,
            token_epoch: 0,
            created_at,
            refresh_expires_at: NOW + 3_600,
            expires_at: NOW + 3_600,
            revoked_at: None,
            claims: None,
            sid: None,
            dpop_jkt: None,
        }
    }

    /// A store with `alice` (consents to `app` and `tool`, two grants to `app`, one to
    /// `tool`) and `bob` (one grant to `app`); returns it with the two users' ids.
    async fn fixture() -> (MemoryStore, String, String) {
        let store = MemoryStore::new();
        let mut ids = Vec::new();
        for name in ["alice", "bob"] {
            let spec = UserSpec {
                username: name.into(),
                password: "correct horse battery".into(),
                ..UserSpec::default()
            };
            ids.push(users::create(&store, spec, NOW).await.unwrap().user_id);
        }
        let (alice, bob) = (ids[0].clone(), ids[1].clone());
        store
            .put_consent(&alice, "tool", "openid", NOW - 50)
            .await
            .unwrap();
        store
            .put_consent(&alice, "app", "openid offline_access", NOW - 100)
            .await
            .unwrap();
        for g in [
            grant("g-app-2", &alice, "app", NOW - 10),
            grant("g-app-1", &alice, "app", NOW - 100),
            grant("g-tool", &alice, "tool", NOW - 50),
            grant("g-bob", &bob, "app", NOW - 5),
        ] {
            store.insert_grant(&g, None).await.unwrap();
        }
        (store, alice, bob)
    }

    async fn revoked_at(store: &MemoryStore, grant_id: &str) -> Option<i64> {
        store.get_grant(grant_id).await.unwrap().unwrap().revoked_at
    }

    #[tokio::test]
    async fn a_users_consents_and_grants_are_listed_by_client_and_oldest_first() {
        let (store, alice, _) = fixture().await;
        // Named by the prepared form of the username, as everywhere else.
        let listed = list(&store, "ALICE").await.unwrap();
        assert_eq!(listed.user_id, alice);
        assert_eq!(listed.username, "alice");
        assert_eq!(
            listed.consents,
            vec![
                ConsentView {
                    client_id: "app".into(),
                    scope: "openid offline_access".into(),
                    granted_at: NOW - 100,
                },
                ConsentView {
                    client_id: "tool".into(),
                    scope: "openid".into(),
                    granted_at: NOW - 50,
                },
            ]
        );
        let ids: Vec<&str> = listed.grants.iter().map(|g| g.grant_id.as_str()).collect();
        assert_eq!(ids, ["g-app-1", "g-tool", "g-app-2"]);
        assert!(listed.grants.iter().all(|g| g.revoked_at.is_none()));
        // The view serializes with the names an API answers with.
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json["consents"][0]["client_id"], "app");
        assert_eq!(json["grants"][0]["revoked_at"], serde_json::Value::Null);
        assert!(matches!(
            list(&store, "carol").await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }

    #[tokio::test]
    async fn revoking_a_consent_forgets_it_and_revokes_that_clients_grants_only() {
        let (store, alice, _) = fixture().await;
        let done = revoke_consent(&store, "alice", "app", NOW).await.unwrap();
        assert_eq!(
            done,
            RevokedConsent {
                username: "alice".into(),
                client_id: "app".into(),
                consent_removed: true,
                grants_revoked: 2,
            }
        );
        assert_eq!(store.get_consent(&alice, "app").await.unwrap(), None);
        assert!(store.get_consent(&alice, "tool").await.unwrap().is_some());
        assert_eq!(revoked_at(&store, "g-app-1").await, Some(NOW));
        assert_eq!(revoked_at(&store, "g-app-2").await, Some(NOW));
        assert_eq!(revoked_at(&store, "g-tool").await, None);
        assert_eq!(revoked_at(&store, "g-bob").await, None, "another user's");
        // The list shows what was revoked, and when.
        let listed = list(&store, "alice").await.unwrap();
        assert_eq!(listed.consents.len(), 1);
        assert_eq!(listed.grants[0].revoked_at, Some(NOW));
        // Nothing left to revoke: refused, naming the consent.
        let again = revoke_consent(&store, "alice", "app", NOW + 1).await;
        assert!(
            matches!(&again, Err(AdminError::NotFound { kind: "consent", id })
                if id == "of alice to app"),
            "{again:?}"
        );
        assert!(matches!(
            revoke_consent(&store, "carol", "app", NOW).await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }

    #[tokio::test]
    async fn a_grant_without_a_consent_is_revoked_with_its_client() {
        let (store, alice, _) = fixture().await;
        store
            .insert_grant(&grant("g-old", &alice, "legacy", NOW - 500), None)
            .await
            .unwrap();
        let done = revoke_consent(&store, "alice", "legacy", NOW)
            .await
            .unwrap();
        assert!(!done.consent_removed);
        assert_eq!(done.grants_revoked, 1);
        assert_eq!(revoked_at(&store, "g-old").await, Some(NOW));
    }

    #[tokio::test]
    async fn revoking_one_grant_revokes_it_alone_and_keeps_the_consent() {
        let (store, alice, _) = fixture().await;
        let done = revoke_grant(&store, "alice", "g-app-1", NOW).await.unwrap();
        assert_eq!(
            done,
            RevokedGrant {
                username: "alice".into(),
                grant_id: "g-app-1".into(),
                client_id: "app".into(),
                revoked: true,
            }
        );
        assert_eq!(revoked_at(&store, "g-app-1").await, Some(NOW));
        assert_eq!(revoked_at(&store, "g-app-2").await, None, "same client");
        assert!(store.get_consent(&alice, "app").await.unwrap().is_some());
        // Again: found, nothing changed, and the first revocation time kept.
        let again = revoke_grant(&store, "alice", "g-app-1", NOW + 5)
            .await
            .unwrap();
        assert!(!again.revoked);
        assert_eq!(revoked_at(&store, "g-app-1").await, Some(NOW));
        // Another user's grant is not reached through alice's name, nor an unknown id.
        for id in ["g-bob", "no-such-grant", "../g-app-2"] {
            let r = revoke_grant(&store, "alice", id, NOW).await;
            assert!(
                matches!(&r, Err(AdminError::NotFound { kind: "grant", .. })),
                "{id}: {r:?}"
            );
        }
        assert_eq!(revoked_at(&store, "g-bob").await, None);
        assert!(matches!(
            revoke_grant(&store, "carol", "g-app-2", NOW).await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }

    #[tokio::test]
    async fn revoking_a_users_tokens_revokes_every_grant_and_keeps_the_consents() {
        let (store, alice, _) = fixture().await;
        let (user, n) = revoke_tokens(&store, "alice", NOW).await.unwrap();
        assert_eq!((user.user_id.as_str(), n), (alice.as_str(), 3));
        for id in ["g-app-1", "g-app-2", "g-tool"] {
            assert_eq!(revoked_at(&store, id).await, Some(NOW), "{id}");
        }
        assert_eq!(revoked_at(&store, "g-bob").await, None);
        assert_eq!(list(&store, "alice").await.unwrap().consents.len(), 2);
        assert!(store.get_user(&alice).await.unwrap().is_some());
        // Nothing live is left: none revoked, and not an error.
        assert_eq!(revoke_tokens(&store, "alice", NOW + 1).await.unwrap().1, 0);
        assert!(matches!(
            revoke_tokens(&store, "carol", NOW).await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }
}
