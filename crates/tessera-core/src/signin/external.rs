//! Who a user signing in through an upstream OpenID provider is here.
//!
//! Owns the linking of an upstream identity to a local user. An upstream user is its `iss`
//! and `sub` (OpenID Connect Core §5.7: the only claims that identify it stably; an e-mail
//! address may change hands and is only as good as the upstream's `email_verified`). The
//! first sign-in of an identity links it:
//!
//! - to an existing user with the same e-mail address, only when the operator allowed it for
//!   the provider (`link_by_email`), the upstream says the address is verified, the address
//!   is in one of the provider's e-mail domains (when it has any: an upstream speaks only for
//!   its own domains) and exactly one user has it;
//! - otherwise to a new user, named by its verified e-mail address when that name is free and
//!   `<idp>-<n>` else, with no password ([`crate::password::NO_PASSWORD`]: the password form
//!   never signs them in) and the e-mail address only if verified (an unverified one stored
//!   on an account would let a later link by e-mail through another provider land in it).
//!
//! Concurrent first sign-ins of one identity make one link: the store refuses the second
//! (`Conflict`), and the loser removes the user it made and answers the winner's.
//!
//! The OpenID client that obtains the claims (code exchange, ID token validation) is not
//! here; it calls [`resolve_user`] with what it validated.

use crate::model::{ExternalIdentityRecord, IdpRecord, UserRecord};
use crate::password::NO_PASSWORD;
use crate::secret;
use crate::signin::SignInError;
use crate::store::{Store, StoreError};
use crate::username;

/// How an upstream authentication method is named in `amr` (RFC 8176 §2 has none for a
/// federated sign-in; `ext` is not registered, so the upstream's own `amr` are not passed on).
pub const AMR_EXTERNAL: &str = "ext";

/// Longest `sub` taken (OpenID Connect Core §2: at most 255 ASCII characters); the longest
/// `iss` is that of a provider ([`crate::admin::idps::MAX_ISSUER_LEN`]).
pub const MAX_SUBJECT_LEN: usize = 255;
/// Longest e-mail address (RFC 5321 §4.5.3.1.3, a path of 256 octets with its brackets) and
/// display name kept from the upstream's claims; longer ones are dropped.
const MAX_CLAIM_LEN: usize = 254;

/// Most names `<idp>-<n>` tried for a new user before a random suffix is used.
const NUMBERED_TRIES: u32 = 20;

/// What a validated ID token (and UserInfo response) said about the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified` (false when absent).
    pub email_verified: bool,
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username` (never trusted to name a local user: OpenID Connect Core §5.1
    /// says it is not unique and may be any string).
    pub preferred_username: Option<String>,
}

/// The local user of an external identity: linked, else (link_by_email and a verified email
/// equal to an existing user's email) linked to that user, else a new user (no password:
/// the password form never signs them in). Concurrent first sign-ins make one user.
pub async fn resolve_user(
    store: &dyn Store,
    idp: &IdpRecord,
    claims: &ExternalClaims,
    now: i64,
) -> Result<UserRecord, SignInError> {
    let bounded = |v: &str, max: usize| !v.is_empty() && v.len() <= max;
    if !bounded(&claims.issuer, crate::admin::idps::MAX_ISSUER_LEN)
        || !bounded(&claims.subject, MAX_SUBJECT_LEN)
    {
        return Err(SignInError::Rejected);
    }
    // The client checked `iss` against the provider (OpenID Connect Core §3.1.3.7 step 2);
    // an identity of another issuer is not this provider's to link.
    if claims.issuer != idp.issuer {
        return Err(SignInError::Rejected);
    }
    if let Some(user) = linked_user(store, claims).await? {
        return Ok(user);
    }
    let link = |user_id: &str| ExternalIdentityRecord {
        issuer: claims.issuer.clone(),
        subject: claims.subject.clone(),
        idp: idp.name.clone(),
        user_id: user_id.to_owned(),
        created_at: now,
    };
    if let Some(existing) = user_to_link_by_email(store, idp, claims).await? {
        return match store
            .insert_external_identity(&link(&existing.user_id))
            .await
        {
            Ok(()) => Ok(existing),
            Err(StoreError::Conflict) => winner(store, claims).await,
            Err(e) => Err(e.into()),
        };
    }
    let user = create_user(store, idp, claims, now).await?;
    match store.insert_external_identity(&link(&user.user_id)).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict) => {
            // Another first sign-in of the same identity linked first: ours is not needed.
            store.delete_user(&user.user_id, now).await?;
            winner(store, claims).await
        }
        Err(e) => {
            // Best effort: a user nobody can sign in to is harmless, but need not stay.
            let _ = store.delete_user(&user.user_id, now).await;
            Err(e.into())
        }
    }
}

/// The provider an email address's domain is configured for.
pub async fn idp_for_email(
    store: &dyn Store,
    email: &str,
) -> Result<Option<IdpRecord>, StoreError> {
    let Some(domain) = email_domain(email) else {
        return Ok(None);
    };
    Ok(store
        .list_idps()
        .await?
        .into_iter()
        .find(|p| p.email_domains.contains(&domain)))
}

/// The lowercased domain of an e-mail address (after its last `@`), if it has one.
fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

/// The user the identity is linked to. A link whose user is gone (removed between the two
/// reads) counts as none.
async fn linked_user(
    store: &dyn Store,
    claims: &ExternalClaims,
) -> Result<Option<UserRecord>, StoreError> {
    match store
        .find_external_identity(&claims.issuer, &claims.subject)
        .await?
    {
        Some(link) => store.get_user(&link.user_id).await,
        None => Ok(None),
    }
}

/// The user a concurrent first sign-in linked the identity to.
async fn winner(store: &dyn Store, claims: &ExternalClaims) -> Result<UserRecord, SignInError> {
    linked_user(store, claims)
        .await?
        .ok_or_else(|| SignInError::Store(StoreError::Conflict))
}

/// The existing user a first sign-in links to by e-mail address, if the rules allow one.
async fn user_to_link_by_email(
    store: &dyn Store,
    idp: &IdpRecord,
    claims: &ExternalClaims,
) -> Result<Option<UserRecord>, StoreError> {
    if !idp.link_by_email || !claims.email_verified {
        return Ok(None);
    }
    let Some(email) = claims.email.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let Some(domain) = email_domain(email) else {
        return Ok(None);
    };
    if !idp.email_domains.is_empty() && !idp.email_domains.contains(&domain) {
        return Ok(None);
    }
    let mut matching = store.list_users().await?.into_iter().filter(|u| {
        u.email
            .as_deref()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
    });
    match (matching.next(), matching.next()) {
        (Some(user), None) => Ok(Some(user)),
        // None, or several users with that address: which one is meant is not known.
        _ => Ok(None),
    }
}

/// Makes a user for a first sign-in, with a free username and no password.
async fn create_user(
    store: &dyn Store,
    idp: &IdpRecord,
    claims: &ExternalClaims,
    now: i64,
) -> Result<UserRecord, SignInError> {
    let email = claims
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| claims.email_verified && e.len() <= MAX_CLAIM_LEN && email_domain(e).is_some())
        .map(str::to_owned);
    let name = claims
        .name
        .as_deref()
        .filter(|n| {
            !n.trim().is_empty()
                && n.len() <= MAX_CLAIM_LEN
                && username::check_display_name(n).is_ok()
        })
        .map(str::to_owned);
    let mut candidates: Vec<String> = Vec::new();
    if let Some(e) = &email {
        candidates.push(e.clone());
    }
    candidates.extend((1..=NUMBERED_TRIES).map(|n| format!("{}-{n}", idp.name)));
    let mut existing: Option<Vec<String>> = None;
    for candidate in candidates
        .into_iter()
        .chain(std::iter::repeat_with(|| random_name(idp)).take(3))
    {
        let Ok(prepared) = username::prepare(&candidate) else {
            continue;
        };
        if existing.is_none() {
            existing = Some(
                store
                    .list_users()
                    .await?
                    .into_iter()
                    .map(|u| u.username)
                    .collect(),
            );
        }
        let taken = existing.as_deref().unwrap_or_default();
        if username::check_new(&prepared, taken.iter().map(String::as_str)).is_err() {
            continue;
        }
        let user = UserRecord {
            user_id: secret::generate_id(),
            username: prepared,
            password_hash: NO_PASSWORD.to_owned(),
            email: email.clone(),
            name: name.clone(),
            created_at: now,
            updated_at: now,
        };
        match store.insert_user(&user).await {
            Ok(()) => return Ok(user),
            // Taken meanwhile: read the names again and try the next one.
            Err(StoreError::Conflict) => existing = None,
            Err(e) => return Err(e.into()),
        }
    }
    Err(SignInError::Store(StoreError::Conflict))
}

/// `<idp>-<random>`, when every numbered name was taken.
fn random_name(idp: &IdpRecord) -> String {
    let id = secret::generate_id();
    format!("{}-{}", idp.name, id.get(..12).unwrap_or(&id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::signin::password::{PasswordForm, PasswordSignIn, RunHere};
    use crate::signin::SignInMethod;
    use crate::store::memory::MemoryStore;
    use crate::store::{IdpStore, UserStore};

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://login.corp.example";

    fn corp(link_by_email: bool, domains: &[&str]) -> IdpRecord {
        IdpRecord {
            name: "corp".into(),
            display_name: "Corp".into(),
            issuer: ISS.into(),
            client_id: "tessera".into(),
            client_secret_sealed: vec![1, 2, 3],
            email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            link_by_email,
            created_at: 1,
        }
    }

    fn claims(sub: &str, email: Option<&str>, verified: bool) -> ExternalClaims {
        ExternalClaims {
            issuer: ISS.into(),
            subject: sub.into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: Some("Upstream Name".into()),
            preferred_username: Some("admin".into()),
        }
    }

    /// A store with the user `admin` (a password, the e-mail address admin@corp.example).
    async fn store_with_admin() -> (MemoryStore, UserRecord) {
        let store = MemoryStore::new();
        let admin = UserRecord {
            user_id: "u-admin".into(),
            username: "admin".into(),
            password_hash: crate::password::hash("admin password").unwrap(),
            email: Some("Admin@Corp.Example".into()),
            name: None,
            created_at: 1,
            updated_at: 1,
        };
        store.insert_user(&admin).await.unwrap();
        (store, admin)
    }

    #[tokio::test]
    async fn a_linked_identity_signs_in_to_its_user() {
        let (store, admin) = store_with_admin().await;
        store
            .insert_external_identity(&ExternalIdentityRecord {
                issuer: ISS.into(),
                subject: "sub-admin".into(),
                idp: "corp".into(),
                user_id: admin.user_id.clone(),
                created_at: 1,
            })
            .await
            .unwrap();
        // Whatever the upstream now says about the e-mail address: the link decides.
        let user = resolve_user(
            &store,
            &corp(false, &[]),
            &claims("sub-admin", Some("someone@else.example"), false),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(user, admin);
        assert_eq!(store.list_users().await.unwrap().len(), 1);
        // The same subject at another issuer is another identity.
        let other = ExternalClaims {
            issuer: "https://other.example".into(),
            ..claims("sub-admin", None, false)
        };
        let other_idp = IdpRecord {
            name: "other".into(),
            issuer: "https://other.example".into(),
            ..corp(false, &[])
        };
        let user = resolve_user(&store, &other_idp, &other, NOW).await.unwrap();
        assert_ne!(user.user_id, admin.user_id);
        // Claims of one issuer are not linked through a provider of another.
        assert!(matches!(
            resolve_user(&store, &corp(false, &[]), &other, NOW).await,
            Err(SignInError::Rejected)
        ));
    }

    #[tokio::test]
    async fn a_first_sign_in_makes_a_user_without_a_password_named_by_a_verified_email() {
        let (store, _) = store_with_admin().await;
        let idp = corp(false, &[]);
        let user = resolve_user(
            &store,
            &idp,
            &claims("sub-1", Some("Jane.Doe@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(user.username, "jane.doe@corp.example");
        assert_eq!(user.email.as_deref(), Some("Jane.Doe@corp.example"));
        assert_eq!(user.name.as_deref(), Some("Upstream Name"));
        assert_eq!(user.password_hash, crate::password::NO_PASSWORD);
        assert_eq!(user.created_at, NOW);
        let link = store
            .find_external_identity(ISS, "sub-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (link.user_id.as_str(), link.idp.as_str()),
            (user.user_id.as_str(), "corp")
        );
        // The second sign-in finds the same user.
        let again = resolve_user(&store, &idp, &claims("sub-1", None, false), NOW + 5)
            .await
            .unwrap();
        assert_eq!(again, user);

        // The e-mail name is taken: numbered after the provider. An unverified address names
        // nobody and is not stored.
        let second = resolve_user(
            &store,
            &idp,
            &claims("sub-2", Some("jane.doe@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(second.username, "corp-1");
        let third = resolve_user(
            &store,
            &idp,
            &claims("sub-3", Some("new@corp.example"), false),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(third.username, "corp-2");
        assert_eq!(third.email, None);
        // preferred_username never names a user ("admin" was asked for every time).
        assert_eq!(
            store.find_user("admin").await.unwrap().unwrap().user_id,
            "u-admin"
        );
        assert_eq!(store.list_users().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn the_password_form_never_signs_in_a_user_made_by_an_upstream() {
        let (store, _) = store_with_admin().await;
        let user = resolve_user(
            &store,
            &corp(false, &[]),
            &claims("sub-1", Some("jane@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        let method = PasswordSignIn::new(&RunHere);
        // Not with the marker stored in place of a hash, nor anything else.
        for pw in [crate::password::NO_PASSWORD, "", "!", "none", "password"] {
            let got = method
                .sign_in(&store, &PasswordForm::new(&user.username, pw), NOW)
                .await;
            assert!(matches!(got, Err(SignInError::Rejected)), "{pw}: {got:?}");
        }
        // The admin still signs in with their password.
        let id = method
            .sign_in(&store, &PasswordForm::new("admin", "admin password"), NOW)
            .await
            .unwrap();
        assert_eq!(id.user.user_id, "u-admin");
    }

    #[tokio::test]
    async fn a_verified_email_links_to_its_user_only_when_the_operator_allowed_it() {
        // Allowed, verified, in the provider's domain: linked to the existing user (the
        // address compared without regard to ASCII case).
        let (store, admin) = store_with_admin().await;
        let user = resolve_user(
            &store,
            &corp(true, &["corp.example"]),
            &claims("sub-a", Some("admin@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(user, admin);
        assert_eq!(
            store
                .find_external_identity(ISS, "sub-a")
                .await
                .unwrap()
                .unwrap()
                .user_id,
            admin.user_id
        );
        assert_eq!(store.list_users().await.unwrap().len(), 1);

        // Not allowed for the provider: a new user, however verified the address.
        let (store, admin) = store_with_admin().await;
        let user = resolve_user(
            &store,
            &corp(false, &["corp.example"]),
            &claims("sub-a", Some("admin@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_ne!(user.user_id, admin.user_id);
    }

    #[tokio::test]
    async fn a_hostile_upstream_cannot_take_over_an_account_by_its_email() {
        let idp = corp(true, &["corp.example"]);
        // An unverified address equal to the admin's.
        let (store, admin) = store_with_admin().await;
        let user = resolve_user(
            &store,
            &idp,
            &claims("attacker", Some("admin@corp.example"), false),
            NOW,
        )
        .await
        .unwrap();
        assert_ne!(user.user_id, admin.user_id);
        assert_eq!(user.email, None);
        assert_ne!(user.username, "admin");
        let link = store
            .find_external_identity(ISS, "attacker")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(link.user_id, user.user_id);

        // A verified address outside the provider's domains: it does not speak for them.
        let (store, admin) = store_with_admin().await;
        let admin2 = UserRecord {
            user_id: "u-ops".into(),
            username: "ops".into(),
            email: Some("ops@bank.example".into()),
            ..admin.clone()
        };
        store.insert_user(&admin2).await.unwrap();
        let user = resolve_user(
            &store,
            &idp,
            &claims("attacker", Some("ops@bank.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_ne!(user.user_id, admin2.user_id);

        // Two users with the address: which one is not known, so neither.
        let (store, admin) = store_with_admin().await;
        let twin = UserRecord {
            user_id: "u-twin".into(),
            username: "twin".into(),
            ..admin.clone()
        };
        store.insert_user(&twin).await.unwrap();
        let user = resolve_user(
            &store,
            &idp,
            &claims("attacker", Some("admin@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert!(user.user_id != admin.user_id && user.user_id != twin.user_id);

        // A huge name or address from the upstream is not kept.
        let store = MemoryStore::new();
        let user = resolve_user(
            &store,
            &idp,
            &ExternalClaims {
                name: Some("n".repeat(10_000)),
                ..claims(
                    "big",
                    Some(&format!("{}@corp.example", "a".repeat(10_000))),
                    true,
                )
            },
            NOW,
        )
        .await
        .unwrap();
        assert_eq!((user.name, user.email), (None, None));
        assert_eq!(user.username, "corp-1");

        // Pre-hijacking: an account made through one upstream with an unverified address
        // does not carry that address, so a later verified sign-in through a provider that
        // links by e-mail does not land in the attacker's account.
        let store = MemoryStore::new();
        let lax = IdpRecord {
            name: "lax".into(),
            issuer: "https://lax.example".into(),
            ..corp(false, &[])
        };
        let planted = resolve_user(
            &store,
            &lax,
            &ExternalClaims {
                issuer: "https://lax.example".into(),
                ..claims("attacker", Some("victim@corp.example"), false)
            },
            NOW,
        )
        .await
        .unwrap();
        let victim = resolve_user(
            &store,
            &idp,
            &claims("victim", Some("victim@corp.example"), true),
            NOW,
        )
        .await
        .unwrap();
        assert_ne!(victim.user_id, planted.user_id);
        assert_eq!(victim.username, "victim@corp.example");

        // An empty or overlong issuer or subject identifies nobody.
        let (store, _) = store_with_admin().await;
        for bad in [
            claims("", Some("admin@corp.example"), true),
            claims(&"s".repeat(256), Some("admin@corp.example"), true),
            ExternalClaims {
                issuer: String::new(),
                ..claims("sub", Some("admin@corp.example"), true)
            },
            ExternalClaims {
                issuer: format!("https://{}", "i".repeat(250)),
                ..claims("sub", Some("admin@corp.example"), true)
            },
        ] {
            assert!(matches!(
                resolve_user(&store, &idp, &bad, NOW).await,
                Err(SignInError::Rejected)
            ));
        }
    }

    #[tokio::test]
    async fn concurrent_first_sign_ins_of_one_identity_make_one_user() {
        let store = MemoryStore::new();
        let idp = corp(false, &[]);
        let c = claims("sub-race", Some("racer@corp.example"), true);
        let results = futures_join_all((0..6).map(|_| resolve_user(&store, &idp, &c, NOW))).await;
        let ids: Vec<String> = results.into_iter().map(|r| r.unwrap().user_id).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let users = store.list_users().await.unwrap();
        assert_eq!(users.len(), 1, "{users:?}");
        assert_eq!(users[0].user_id, ids[0]);
    }

    #[tokio::test]
    async fn concurrent_first_sign_ins_linking_by_email_make_one_link() {
        let (store, admin) = store_with_admin().await;
        let idp = corp(true, &[]);
        let c = claims("sub-race", Some("admin@corp.example"), true);
        let results = futures_join_all((0..4).map(|_| resolve_user(&store, &idp, &c, NOW))).await;
        for r in results {
            assert_eq!(r.unwrap().user_id, admin.user_id);
        }
        assert_eq!(store.list_users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_provider_is_found_by_the_domain_of_an_address() {
        let store = MemoryStore::new();
        store
            .insert_idp(&corp(false, &["corp.example", "corp.example.org"]))
            .await
            .unwrap();
        for (email, found) in [
            ("jane@corp.example", true),
            ("Jane@CORP.Example.ORG", true),
            ("weird@name@corp.example", true),
            ("jane@sub.corp.example", false),
            ("jane@corp.example.evil", false),
            ("corp.example", false),
            ("@corp.example", false),
            ("jane@", false),
            ("", false),
        ] {
            let got = idp_for_email(&store, email).await.unwrap();
            assert_eq!(
                got.map(|p| p.name).as_deref(),
                found.then_some("corp"),
                "{email}"
            );
        }
    }

    /// A tiny join_all, so the core needs no futures dependency.
    async fn futures_join_all<F: std::future::Future>(
        futs: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
                if slot.is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => *slot = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(Option::unwrap).collect()
    }
}
