//! Users: the people who sign in on Tessera's pages.
//!
//! Owns the rules of managing them: a new username is prepared (RFC 8265
//! `UsernameCaseMapped`, [`crate::username`]) and refused when it has an invisible or
//! bidirectional control character, mixes Latin with Cyrillic or Greek letters, or looks like
//! an existing one; a user is named by the username as stored, by its prepared form, or by
//! their id (the `sub` of their tokens); a list is read a page at a time; a
//! password is [`password::MIN_LENGTH`] characters to [`password::MAX_LENGTH`] bytes and is
//! stored only as an Argon2id hash; a new password ends the user's sessions; deleting a user
//! ends their sessions and revokes every grant issued for them.

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

/// The most users one page holds.
pub const MAX_PAGE: usize = 200;

/// The users one page holds unless asked otherwise.
pub const DEFAULT_PAGE: usize = 50;

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

/// One page of users, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserPage {
    /// The users on it.
    pub users: Vec<UserView>,
    /// What to pass as `cursor` for the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// Which page of users to read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserQuery {
    /// At most this many (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]).
    pub limit: Option<usize>,
    /// The `next_cursor` of the page before (none: the first page).
    pub cursor: Option<String>,
    /// Only usernames that contain this text (after preparing it as a username is).
    pub username: Option<String>,
}

/// A page of users. The cursor is the id of the last user of the page before, so a user
/// created or deleted meanwhile neither repeats one nor skips one; a cursor naming no user
/// (deleted meanwhile, or made up) is refused rather than restarting the list.
pub async fn list_page(store: &dyn UserStore, query: UserQuery) -> AdminResult<UserPage> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AdminError::invalid(
            "limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let filter = match query.username.as_deref() {
        None | Some("") => None,
        Some(typed) => Some(username::prepare(typed).unwrap_or_else(|_| typed.to_lowercase())),
    };
    let all = store.list_users().await?;
    let start = match query.cursor.as_deref() {
        None => 0,
        Some(c) => {
            all.iter().position(|u| u.user_id == c).ok_or_else(|| {
                AdminError::invalid("cursor", "cursor: not a cursor of this list (start again)")
            })? + 1
        }
    };
    let mut matching = all
        .iter()
        .skip(start)
        .filter(|u| filter.as_deref().is_none_or(|f| u.username.contains(f)));
    let users: Vec<UserView> = matching.by_ref().take(limit).map(UserView::from).collect();
    let next_cursor = match (matching.next(), users.last()) {
        (Some(_), Some(last)) => Some(last.user_id.clone()),
        _ => None,
    };
    Ok(UserPage { users, next_cursor })
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

    fn page(limit: Option<usize>, cursor: Option<&str>, username: Option<&str>) -> UserQuery {
        UserQuery {
            limit,
            cursor: cursor.map(str::to_owned),
            username: username.map(str::to_owned),
        }
    }

    fn names(p: &UserPage) -> Vec<&str> {
        p.users.iter().map(|u| u.username.as_str()).collect()
    }

    #[tokio::test]
    async fn users_are_read_a_page_at_a_time_oldest_first() {
        let store = store_with(&["ann", "bob", "cy", "dee", "eve"]).await;
        let first = list_page(&store, page(Some(2), None, None)).await.unwrap();
        assert_eq!(names(&first), ["ann", "bob"]);
        let second = list_page(&store, page(Some(2), first.next_cursor.as_deref(), None))
            .await
            .unwrap();
        assert_eq!(names(&second), ["cy", "dee"]);
        let last = list_page(&store, page(Some(2), second.next_cursor.as_deref(), None))
            .await
            .unwrap();
        assert_eq!(names(&last), ["eve"]);
        assert_eq!(last.next_cursor, None);
        // A page that ends exactly at the end has no next page either.
        let all = list_page(&store, page(Some(5), None, None)).await.unwrap();
        assert_eq!((all.users.len(), all.next_cursor.as_deref()), (5, None));
        // The default page holds them all here.
        assert_eq!(
            list_page(&store, UserQuery::default())
                .await
                .unwrap()
                .users
                .len(),
            5
        );
        // Never a password hash in what is listed.
        let json = serde_json::to_string(&all).unwrap();
        assert!(
            !json.contains("argon2") && !json.contains("password"),
            "{json}"
        );
    }

    #[tokio::test]
    async fn a_page_is_filtered_by_username_and_bad_paging_is_refused() {
        let store = store_with(&["alice", "malik", "bob", "alina"]).await;
        let p = list_page(&store, page(None, None, Some("ALI")))
            .await
            .unwrap();
        assert_eq!(names(&p), ["alice", "malik", "alina"]);
        let p = list_page(&store, page(Some(1), None, Some("ali")))
            .await
            .unwrap();
        let p2 = list_page(&store, page(Some(5), p.next_cursor.as_deref(), Some("ali")))
            .await
            .unwrap();
        assert_eq!(names(&p2), ["malik", "alina"]);
        for (limit, cursor, field) in [
            (Some(0), None, "limit"),
            (Some(MAX_PAGE + 1), None, "limit"),
            (None, Some("made-up"), "cursor"),
            (None, Some("../../etc/passwd"), "cursor"),
        ] {
            let r = list_page(&store, page(limit, cursor, None)).await;
            assert!(
                matches!(&r, Err(AdminError::Invalid { field: f, .. }) if *f == field),
                "{limit:?} {cursor:?}: {r:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_user_is_found_by_username_prepared_form_or_id() {
        let store = store_with(&["alice"]).await;
        let alice = find(&store, "alice").await.unwrap();
        assert_eq!(find(&store, "ALICE").await.unwrap(), alice);
        assert_eq!(find(&store, &alice.user_id).await.unwrap(), alice);
        assert!(matches!(
            find(&store, "nobody").await,
            Err(AdminError::NotFound { kind: "user", .. })
        ));
    }
}
