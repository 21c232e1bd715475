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
    if claims.issuer.is_empty() || claims.subject.is_empty() {
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
        .filter(|e| claims.email_verified && email_domain(e).is_some())
        .map(str::to_owned);
    let name = claims
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty() && username::check_display_name(n).is_ok())
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
