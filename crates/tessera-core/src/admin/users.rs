//! Users: the people who sign in on Tessera's pages.
//!
//! Owns the rules of managing them: a new username is prepared (RFC 8265
//! `UsernameCaseMapped`, [`crate::username`]) and refused when it has an invisible or
//! bidirectional control character, mixes Latin with Cyrillic or Greek letters, or looks like
//! an existing one; a user is named by the username as stored or by its prepared form; a
//! password is [`password::MIN_LENGTH`] characters to [`password::MAX_LENGTH`] bytes and is
//! stored only as an Argon2id hash; a new password ends the user's sessions; deleting a user
//! ends their sessions and revokes every grant issued for them.

use serde::Deserialize;

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
/// stored), else by its prepared form.
pub async fn find(store: &dyn UserStore, typed: &str) -> AdminResult<UserRecord> {
    if let Some(u) = store.find_user(typed).await? {
        return Ok(u);
    }
    let found = match username::prepare(typed) {
        Ok(prepared) => store.find_user(&prepared).await?,
        Err(_) => None,
    };
    found.ok_or_else(|| AdminError::not_found("user", typed.escape_default().to_string()))
}

/// Every user, oldest first.
pub async fn list(store: &dyn UserStore) -> AdminResult<Vec<UserRecord>> {
    Ok(store.list_users().await?)
}

/// Replaces the password of the user named `typed`; their sessions end. Returns the user.
pub async fn set_password(
    store: &dyn UserStore,
    typed: &str,
    new_password: &str,
    now: i64,
) -> AdminResult<UserRecord> {
    let user = find(store, typed).await?;
    check_password(new_password)?;
    if !store
        .set_password(&user.user_id, &password::hash(new_password)?, now)
        .await?
    {
        return Err(AdminError::not_found("user", &user.username));
    }
    Ok(user)
}

/// Deletes the user named `typed`: their sessions end and every grant issued for them (with
/// its access and refresh tokens) is revoked. Returns the user as it was.
pub async fn delete(store: &dyn UserStore, typed: &str, now: i64) -> AdminResult<UserRecord> {
    let user = find(store, typed).await?;
    if !store.delete_user(&user.user_id, now).await? {
        return Err(AdminError::not_found("user", &user.username));
    }
    Ok(user)
}
