//! Browser sessions: starting one from a sign-in, finding the live one, ending it, and
//! whether it is recent enough for a request.
//!
//! Owns the rules of a [`SessionRecord`]: a session is started from an
//! [`Identity`] whatever method produced it, lasts
//! [`Config::session_ttl`](crate::config::Config::session_ttl) seconds, and is known to the
//! browser only by a random value whose hash is stored ([`crate::secret`]); a sign-in
//! replaces the browser's previous session. [`must_sign_in`] is the rule of OpenID Connect
//! Core §3.1.2.1 for `max_age` and `prompt=login`. [`sid`] is the session's public
//! identifier (OpenID Connect Back-Channel Logout 1.0 §2.1), carried in ID tokens and logout
//! tokens. Carrying the value in a cookie is the HTTP
//! layer's job; time is an input (`now`), never read here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

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

/// The session id (`sid`, OpenID Connect Back-Channel Logout 1.0 §2.1) of a session: a
/// hash of the stored hash under its own label, so it names the session to clients without
/// revealing the value the browser holds or the key it is stored under.
pub fn sid(session: &SessionRecord) -> String {
    let mut input = b"tessera session id\0".to_vec();
    input.extend_from_slice(session.session_hash.as_str().as_bytes());
    let d = ring::digest::digest(&ring::digest::SHA256, &input);
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Whether a session has not expired by `now`.
pub fn is_live(session: &SessionRecord, now: i64) -> bool {
    session.expires_at > now
}

/// Whether the user must sign in (again) for a request (OpenID Connect Core §3.1.2.1): when
/// there is no live session, when its sign-in is older than the request's `max_age` seconds,
/// or when the request says `prompt=login` and the user has not signed in during this very
/// request (`just_signed_in`), so that `prompt=login` is not asked twice. `max_age=0` is
/// `prompt=login` (OpenID Connect Core §3.1.2.1, as corrected by its errata set 2): a sign-in
/// in the same second as the request is not enough unless it was made for this request.
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
    let prompt_login = prompt_login || max_age == Some(0);
    !recent || (prompt_login && !just_signed_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    const NOW: i64 = 1_700_000_000;
    const TTL: i64 = 3600;

    fn user(id: &str) -> UserRecord {
        UserRecord {
            user_id: id.into(),
            username: id.into(),
            password_hash: String::new(),
            email: None,
            name: None,
            created_at: 1,
            updated_at: 1,
        }
    }

    async fn store_with(u: &UserRecord) -> MemoryStore {
        let store = MemoryStore::new();
        store.insert_user(u).await.unwrap();
        store
    }

    fn identity(u: &UserRecord, auth_time: i64) -> Identity {
        Identity {
            user: u.clone(),
            auth_time,
            amr: vec!["pwd".into()],
        }
    }

    #[tokio::test]
    async fn a_session_lasts_its_ttl_and_is_stored_only_as_a_hash() {
        let u = user("u1");
        let store = store_with(&u).await;
        let s = start(&store, &identity(&u, NOW - 5), TTL, NOW, None)
            .await
            .unwrap();
        assert_eq!(s.record.session_hash, SecretHash::of(s.value.expose()));
        assert_eq!(s.record.auth_time, NOW - 5);
        assert_eq!(s.record.expires_at, NOW + TTL);
        let stored = store.get_session(&s.record.session_hash).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&s.record));
        let value = Some(s.value.expose());
        let live = current(&store, value, NOW + TTL - 1).await.unwrap();
        assert_eq!(live, Some((s.record.clone(), u.clone())));
        // Expired at its last second, and never for an unknown or absent value.
        assert_eq!(current(&store, value, NOW + TTL).await.unwrap(), None);
        assert_eq!(current(&store, Some("other"), NOW).await.unwrap(), None);
        assert_eq!(current(&store, None, NOW).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_sign_in_replaces_the_previous_session_and_end_ends_one() {
        let u = user("u1");
        let store = store_with(&u).await;
        let first = start(&store, &identity(&u, NOW), TTL, NOW, None)
            .await
            .unwrap();
        let old = first.value.expose();
        let second = start(&store, &identity(&u, NOW + 10), TTL, NOW + 10, Some(old))
            .await
            .unwrap();
        assert_eq!(current(&store, Some(old), NOW + 10).await.unwrap(), None);
        let new = second.value.expose();
        assert!(current(&store, Some(new), NOW + 10)
            .await
            .unwrap()
            .is_some());
        assert!(end(&store, new).await.unwrap());
        assert!(!end(&store, new).await.unwrap());
        assert_eq!(current(&store, Some(new), NOW + 10).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_sessions_sid_is_stable_distinct_and_reveals_neither_value_nor_hash() {
        let u = user("u1");
        let store = store_with(&u).await;
        let a = start(&store, &identity(&u, NOW), TTL, NOW, None)
            .await
            .unwrap();
        let b = start(&store, &identity(&u, NOW), TTL, NOW, None)
            .await
            .unwrap();
        let sid_a = sid(&a.record);
        assert_eq!(sid_a, sid(&a.record.clone()));
        assert_ne!(sid_a, sid(&b.record));
        assert_eq!(sid_a.len(), 43);
        assert!(!sid_a.contains(a.value.expose()));
        assert_ne!(sid_a, a.record.session_hash.as_str());
        assert_ne!(SecretHash::of(&sid_a), a.record.session_hash);
    }

    #[tokio::test]
    async fn a_session_whose_user_is_gone_is_none() {
        let u = user("u1");
        let store = store_with(&u).await;
        let s = start(&store, &identity(&u, NOW), TTL, NOW, None)
            .await
            .unwrap();
        assert!(store.delete_user("u1", NOW).await.unwrap());
        assert_eq!(
            current(&store, Some(s.value.expose()), NOW).await.unwrap(),
            None
        );
    }

    #[test]
    fn max_age_and_prompt_login_decide_whether_to_sign_in_again() {
        let s = SessionRecord {
            session_hash: SecretHash::of("v"),
            user_id: "u1".into(),
            auth_time: NOW - 100,
            expires_at: NOW + 100,
        };
        let expired = SessionRecord {
            expires_at: NOW,
            ..s.clone()
        };
        let fresh = SessionRecord {
            auth_time: NOW,
            ..s.clone()
        };
        // (session, max_age, prompt=login, just signed in) → must sign in
        type Row<'a> = (Option<&'a SessionRecord>, Option<i64>, bool, bool, bool);
        let table: &[Row<'_>] = &[
            (None, None, false, false, true),
            (None, None, false, true, true),
            (Some(&s), None, false, false, false),
            (Some(&expired), None, false, false, true),
            (Some(&s), Some(100), false, false, false),
            (Some(&s), Some(99), false, false, true),
            (Some(&s), Some(0), false, false, true),
            // max_age=0 is prompt=login: a session signed in this very second is not enough,
            // a sign-in made for this request is.
            (Some(&fresh), Some(0), false, false, true),
            (Some(&fresh), Some(0), false, true, false),
            (Some(&fresh), Some(1), false, false, false),
            (Some(&s), None, true, false, true),
            (Some(&s), None, true, true, false),
            (Some(&expired), None, true, true, true),
        ];
        for (i, (session, max_age, login, just, want)) in table.iter().enumerate() {
            assert_eq!(
                must_sign_in(*session, *max_age, *login, *just, NOW),
                *want,
                "row {i}"
            );
        }
    }
}
