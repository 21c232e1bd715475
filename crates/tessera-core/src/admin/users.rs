//! Users: the people who sign in on Tessera's pages.
//!
//! Owns the rules of managing them: a new username is prepared (RFC 8265
//! `UsernameCaseMapped`, [`crate::username`]) and refused when it has an invisible or
//! bidirectional control character, mixes Latin with Cyrillic or Greek letters, or looks like
//! an existing one; a user is named by the username as stored, by its prepared form, or by
//! their id (the `sub` of their tokens); a
//! password is [`password::MIN_LENGTH`] characters to [`password::MAX_LENGTH`] bytes and is
//! stored only as an Argon2id hash; a new password ends the user's sessions; deleting a user
//! ends their sessions and revokes every grant issued for them.

use crate::backchannel_logout::{ending, Ending};
use serde::{Deserialize, Serialize};

use super::{AdminError, AdminResult};
use crate::model::UserRecord;
use crate::password;
use crate::secret;
use crate::store::{StoreError, UserStore};
use crate::username;

/// A user to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserSpec {
    /// What they sign in with, as typed (it is prepared before it is stored).
    pub username: String,
    /// Their password, in clear (hashed here, never stored or logged).
    pub password: String,
    /// E-mail address (released with the `email` scope).
    pub email: Option<String>,
    /// Display name (released with the `profile` scope).
    pub name: Option<String>,
}

/// Longest display name of a user, characters.
pub const MAX_DISPLAY_NAME: usize = 200;

/// Longest e-mail address (RFC 5321 §4.5.3.1.3 allows a path of 256 octets, the address 254).
pub const MAX_EMAIL: usize = 254;

/// Checks an e-mail address about to be stored (it is released in ID tokens and userinfo,
/// and matched to upstream providers' domains): at most [`MAX_EMAIL`] bytes, one `@` with
/// text on both sides, no whitespace or control character. Whether it reaches anyone is not
/// checked here.
pub fn check_email(email: &str) -> AdminResult<()> {
    let shaped = email.len() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if shaped {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "email",
            format!(
                "email must be an address like name@example.com, at most {MAX_EMAIL} characters"
            ),
        ))
    }
}

/// Checks a password about to be set.
pub fn check_password(pw: &str) -> AdminResult<()> {
    if pw.chars().count() < password::MIN_LENGTH {
        return Err(AdminError::invalid(
            "password",
            format!(
                "the password must be at least {} characters",
                password::MIN_LENGTH
            ),
        ));
    }
    if pw.len() > password::MAX_LENGTH {
        return Err(AdminError::invalid(
            "password",
            format!(
                "the password must be at most {} bytes",
                password::MAX_LENGTH
            ),
        ));
    }
    Ok(())
}

/// A new username, prepared, or why it is refused.
pub async fn new_username(store: &dyn UserStore, typed: &str) -> AdminResult<String> {
    let invalid = |e: username::NameError| AdminError::invalid("username", e.to_string());
    let prepared = username::prepare(typed).map_err(invalid)?;
    let users = store.list_users().await?;
    username::check_new(
        &prepared,
        users
            .iter()
            .map(|u| u.username.as_str())
            .filter(|u| *u != prepared),
    )
    .map_err(invalid)?;
    Ok(prepared)
}

/// Creates a user.
pub async fn create(store: &dyn UserStore, spec: UserSpec, now: i64) -> AdminResult<UserRecord> {
    let username = new_username(store, &spec.username).await?;
    if let Some(name) = &spec.name {
        username::check_display_name(name)
            .map_err(|e| AdminError::invalid("name", e.to_string()))?;
        if name.chars().count() > MAX_DISPLAY_NAME {
            return Err(AdminError::invalid(
                "name",
                format!("name must be at most {MAX_DISPLAY_NAME} characters"),
            ));
        }
    }
    if let Some(email) = &spec.email {
        check_email(email)?;
    }
    check_password(&spec.password)?;
    let user = UserRecord {
        user_id: secret::generate_id(),
        username,
        password_hash: password::hash(&spec.password)?,
        email: spec.email,
        name: spec.name,
        created_at: now,
        updated_at: now,
    };
    match store.insert_user(&user).await {
        Err(StoreError::Conflict) => Err(AdminError::Conflict(format!(
            "a user named '{}' already exists",
            user.username
        ))),
        r => {
            r?;
            Ok(user)
        }
    }
}

/// The user named `typed`: stored exactly so (every username created now is stored
/// prepared; one stored before and left as it was, say `Alice` beside `alice`, is named as
/// stored), else by its prepared form, else by their id (a username wins over an id, so a
/// name always means the same user).
pub async fn find(store: &dyn UserStore, typed: &str) -> AdminResult<UserRecord> {
    if let Some(u) = store.find_user(typed).await? {
        return Ok(u);
    }
    let found = match username::prepare(typed) {
        Ok(prepared) => store.find_user(&prepared).await?,
        Err(_) => None,
    };
    let found = match found {
        Some(u) => Some(u),
        None => store.get_user(typed).await?,
    };
    found.ok_or_else(|| AdminError::not_found("user", typed.escape_default().to_string()))
}

/// Every user, oldest first.
pub async fn list(store: &dyn UserStore) -> AdminResult<Vec<UserRecord>> {
    Ok(store.list_users().await?)
}

/// A user as listed or shown: never their password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// Their id (the `sub` of their tokens).
    pub user_id: String,
    /// What they sign in with.
    pub username: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// When they were created (Unix seconds).
    pub created_at: i64,
    /// When they were last changed (Unix seconds).
    pub updated_at: i64,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            user_id: u.user_id.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// Replaces the password of the user named `typed`; their sessions end, and each client with
/// a back-channel logout URI that holds a live grant of theirs is sent a logout token
/// ([`crate::backchannel_logout`]). Returns the user.
pub async fn set_password(
    store: &dyn crate::store::Store,
    typed: &str,
    new_password: &str,
    now: i64,
) -> AdminResult<UserRecord> {
    let user = find(store, typed).await?;
    check_password(new_password)?;
    let hash = password::hash(new_password)?;
    ending(store, Ending::User(&user.user_id), now, async {
        if !store.set_password(&user.user_id, &hash, now).await? {
            return Err(AdminError::not_found("user", &user.username));
        }
        Ok(())
    })
    .await?;
    Ok(user)
}

/// Deletes the user named `typed`: their sessions end and every grant issued for them (with
/// its access and refresh tokens) is revoked, and the clients that held a live one are sent
/// logout tokens ([`crate::backchannel_logout`]). Returns the user as it was.
pub async fn delete(
    store: &dyn crate::store::Store,
    typed: &str,
    now: i64,
) -> AdminResult<UserRecord> {
    let user = find(store, typed).await?;
    ending(store, Ending::User(&user.user_id), now, async {
        if !store.delete_user(&user.user_id, now).await? {
            return Err(AdminError::not_found("user", &user.username));
        }
        Ok(())
    })
    .await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    const NOW: i64 = 1_700_000_000;

    async fn store_with(names: &[&str]) -> MemoryStore {
        let store = MemoryStore::new();
        for (i, name) in names.iter().enumerate() {
            let spec = UserSpec {
                username: (*name).into(),
                password: "correct horse battery".into(),
                ..UserSpec::default()
            };
            create(&store, spec, NOW + i as i64).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn a_display_name_and_an_email_are_bounded_and_shaped() {
        let store = MemoryStore::new();
        let spec = |name: Option<String>, email: Option<&str>| UserSpec {
            username: "alice".into(),
            password: "correct horse battery".into(),
            name,
            email: email.map(str::to_owned),
        };
        for (name, email, field) in [
            (Some("x".repeat(MAX_DISPLAY_NAME + 1)), None, "name"),
            (None, Some("no-at-sign"), "email"),
            (None, Some("@example.com"), "email"),
            (None, Some("alice@"), "email"),
            (None, Some("a@b@c"), "email"),
            (None, Some("alice @example.com"), "email"),
            (None, Some("alice@example.com\nBcc: x@y"), "email"),
        ] {
            let long = format!("{}@example.com", "a".repeat(MAX_EMAIL));
            let r = create(&store, spec(name.clone(), email), NOW).await;
            assert!(
                matches!(&r, Err(AdminError::Invalid { field: f, .. }) if *f == field),
                "{email:?}: {r:?}"
            );
            let r = create(&store, spec(None, Some(&long)), NOW).await;
            assert!(matches!(
                &r,
                Err(AdminError::Invalid { field: "email", .. })
            ));
        }
        assert!(
            list(&store).await.unwrap().is_empty(),
            "nothing refused was stored"
        );
        let ok = create(
            &store,
            spec(
                Some("x".repeat(MAX_DISPLAY_NAME)),
                Some("alice@example.com"),
            ),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(ok.email.as_deref(), Some("alice@example.com"));
    }

    #[tokio::test]
    async fn a_user_is_found_by_username_prepared_form_or_id() {
        let store = store_with(&["alice"]).await;
        let alice = find(&store, "alice").await.unwrap();
        assert_eq!(find(&store, "ALICE").await.unwrap(), alice);
        assert_eq!(find(&store, &alice.user_id).await.unwrap(), alice);
        // What is shown of a user never carries the password hash.
        let shown = serde_json::to_string(&UserView::from(&alice)).unwrap();
        assert!(alice.password_hash.starts_with("$argon2"));
        assert!(
            !shown.contains("argon2") && !shown.contains("password"),
            "{shown}"
        );
        assert!(matches!(
            find(&store, "nobody").await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }
}
