//! Browser sessions: starting one from a sign-in, finding the live one, ending it, and
//! whether it is recent enough for a request.
//!
//! Owns the rules of a [`SessionRecord`]: a session is started from an
//! [`Identity`](crate::signin::Identity) whatever method produced it, lasts
//! [`Config::session_ttl`](crate::config::Config::session_ttl) seconds, and is known to the
//! browser only by a random value whose hash is stored ([`crate::secret`]); a sign-in
//! replaces the browser's previous session. [`must_sign_in`] is the rule of OpenID Connect
//! Core §3.1.2.1 for `max_age` and `prompt=login`. Carrying the value in a cookie is the HTTP
//! layer's job; time is an input (`now`), never read here.

use crate::model::{SessionRecord, UserRecord};
use crate::secret::{self, Secret, SecretHash};
use crate::signin::Identity;
use crate::store::{StoreError, UserStore};

/// A session just started.
#[derive(Debug, Clone)]
pub struct Started {
    /// The value the browser presents to resume it: handed out once, stored only as a hash.
    pub value: Secret,
    /// The stored session.
    pub record: SessionRecord,
}

/// Starts a session for `identity` lasting `ttl` seconds from `now`, ending the browser's
/// previous session (`replacing`, the value it presented) once the new one is stored.
pub async fn start<S: UserStore + ?Sized>(
    store: &S,
    identity: &Identity,
    ttl: i64,
    now: i64,
    replacing: Option<&str>,
) -> Result<Started, StoreError> {
    let value = secret::generate("");
    let record = SessionRecord {
        session_hash: value.hash(),
        user_id: identity.user.user_id.clone(),
        auth_time: identity.auth_time,
        expires_at: now.saturating_add(ttl),
    };
    store.insert_session(&record).await?;
    if let Some(old) = replacing {
        end(store, old).await?;
    }
    Ok(Started { value, record })
}

/// The live session a browser presented (`value`) and its user: none when the value is
/// unknown, the session has expired by `now`, or its user is gone.
pub async fn current<S: UserStore + ?Sized>(
    store: &S,
    value: Option<&str>,
    now: i64,
) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(s) = store.get_session(&SecretHash::of(value)).await? else {
        return Ok(None);
    };
    if !is_live(&s, now) {
        return Ok(None);
    }
    Ok(store.get_user(&s.user_id).await?.map(|u| (s, u)))
}

/// Ends the session a browser presented (`value`); whether there was one.
pub async fn end<S: UserStore + ?Sized>(store: &S, value: &str) -> Result<bool, StoreError> {
    store.delete_session(&SecretHash::of(value)).await
}

/// Whether a session has not expired by `now`.
pub fn is_live(session: &SessionRecord, now: i64) -> bool {
    session.expires_at > now
}

/// Whether the user must sign in (again) for a request (OpenID Connect Core §3.1.2.1): when
/// there is no live session, when its sign-in is older than the request's `max_age` seconds,
/// or when the request says `prompt=login` and the user has not signed in during this very
/// request (`just_signed_in`), so that `prompt=login` is not asked twice.
pub fn must_sign_in(
    session: Option<&SessionRecord>,
    max_age: Option<i64>,
    prompt_login: bool,
    just_signed_in: bool,
    now: i64,
) -> bool {
    let recent = session.is_some_and(|s| {
        is_live(s, now) && max_age.is_none_or(|max| now.saturating_sub(s.auth_time) <= max)
    });
    !recent || (prompt_login && !just_signed_in)
}
