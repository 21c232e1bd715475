//! Signing in with a username and a password: the sign-in form's [`SignInMethod`].
//!
//! Owns [`PasswordForm`] (what the form presented, the username prepared as users are created,
//! RFC 8265 §3.3, [`crate::username`]) and [`PasswordSignIn`], which finds the user and checks
//! the password against its Argon2id hash ([`crate::password`]). An unknown user costs the
//! same work as a wrong password ([`crate::password::verify_unknown_user`] against a dummy
//! hash) and gets the same answer, [`SignInError::Rejected`], so neither the answer nor its
//! timing tells which usernames exist (OWASP Authentication Cheat Sheet, "Authentication and
//! Error Messages").
//!
//! A check is CPU-heavy (tens of milliseconds, 19 MiB); where it runs is the caller's choice
//! through [`CheckRunner`]: the HTTP layer runs it on a blocking thread, a few at a time, and
//! may refuse it when all its slots are taken ([`SignInError::Busy`]). [`RunHere`] runs it on
//! the calling thread.

use async_trait::async_trait;

use super::{Identity, SignInError, SignInMethod};
use crate::password;
use crate::secret::Secret;
use crate::store::UserStore;
use crate::username;

/// The `amr` value of a password (RFC 8176 §2).
pub const AMR_PASSWORD: &str = "pwd";

/// A password check, to run wherever a [`CheckRunner`] decides: `true` when it matched.
pub type PasswordCheck = Box<dyn FnOnce() -> bool + Send + 'static>;

/// Runs password checks.
#[async_trait]
pub trait CheckRunner: Send + Sync {
    /// Runs `check` and answers its result, or `None` without running it when no check can
    /// be run now.
    async fn run(&self, check: PasswordCheck) -> Option<bool>;
}

/// Runs every check at once on the calling thread (for tools and tests; a server bounds how
/// many run at once).
#[derive(Debug, Default, Clone, Copy)]
pub struct RunHere;

#[async_trait]
impl CheckRunner for RunHere {
    async fn run(&self, check: PasswordCheck) -> Option<bool> {
        Some(check())
    }
}

/// What the sign-in form presented.
#[derive(Debug, Clone)]
pub struct PasswordForm {
    username: String,
    password: Secret,
}

impl PasswordForm {
    /// The form as typed. The username is taken in its prepared form (RFC 8265, as users are
    /// created), or as typed when it has none (only a username stored before usernames were
    /// prepared can then match).
    pub fn new(typed_username: &str, password: &str) -> Self {
        Self {
            username: username::prepare(typed_username)
                .unwrap_or_else(|_| typed_username.to_owned()),
            password: Secret::new(password),
        }
    }

    /// The username that is looked up (the prepared one).
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// Signing in with a [`PasswordForm`], checks run by `R`.
#[derive(Debug)]
pub struct PasswordSignIn<'a, R: ?Sized> {
    checks: &'a R,
}

impl<'a, R: CheckRunner + ?Sized> PasswordSignIn<'a, R> {
    /// Password sign-in whose checks run in `checks`.
    pub fn new(checks: &'a R) -> Self {
        Self { checks }
    }
}

#[async_trait]
impl<R: CheckRunner + ?Sized> SignInMethod for PasswordSignIn<'_, R> {
    type Presented = PasswordForm;

    async fn sign_in<S: UserStore + ?Sized>(
        &self,
        users: &S,
        form: &PasswordForm,
        now: i64,
    ) -> Result<Identity, SignInError> {
        let name = form.username();
        // No name can be stored empty or longer than that: no need to ask.
        let user = if name.is_empty() || name.len() > username::MAX_LEN {
            None
        } else {
            users.find_user(name).await?
        };
        // A user without a password (made by a sign-in through an upstream provider) gets
        // the work of an unknown user's check, and never a match.
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .filter(|h| password::has_password(h));
        let presented = form.password.clone();
        let matched = self
            .checks
            .run(Box::new(move || match stored {
                Some(hash) => password::verify(presented.expose(), &hash),
                None => password::verify_unknown_user(presented.expose()),
            }))
            .await
            .ok_or(SignInError::Busy)?;
        match user.filter(|u| matched && password::has_password(&u.password_hash)) {
            Some(user) => Ok(Identity {
                user,
                auth_time: now,
                amr: vec![AMR_PASSWORD.to_owned()],
            }),
            None => Err(SignInError::Rejected),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::UserRecord;
    use crate::store::memory::MemoryStore;

    const NOW: i64 = 1_700_000_000;

    /// Counts the checks it runs; refuses every one when `refuse`.
    #[derive(Default)]
    struct Counting {
        ran: AtomicUsize,
        refuse: bool,
    }

    #[async_trait]
    impl CheckRunner for Counting {
        async fn run(&self, check: PasswordCheck) -> Option<bool> {
            if self.refuse {
                return None;
            }
            self.ran.fetch_add(1, Ordering::SeqCst);
            Some(check())
        }
    }

    async fn store_with_alice() -> MemoryStore {
        let store = MemoryStore::new();
        store
            .insert_user(&UserRecord {
                user_id: "u-alice".into(),
                username: "alice".into(),
                password_hash: password::hash("correct horse").unwrap(),
                email: None,
                name: None,
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn the_right_password_signs_in_with_the_username_prepared() {
        let store = store_with_alice().await;
        let runner = Counting::default();
        // Typed in another case and width: prepared (RFC 8265) before it is looked up.
        let form = PasswordForm::new("ＡＬＩＣＥ", "correct horse");
        assert_eq!(form.username(), "alice");
        let id = PasswordSignIn::new(&runner)
            .sign_in(&store, &form, NOW)
            .await
            .unwrap();
        assert_eq!(id.user.user_id, "u-alice");
        assert_eq!(id.auth_time, NOW);
        assert_eq!(id.amr, vec!["pwd".to_owned()]);
        assert_eq!(runner.ran.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_unknown_user_get_one_answer_for_the_same_work() {
        let store = store_with_alice().await;
        let runner = Counting::default();
        let method = PasswordSignIn::new(&runner);
        for (name, pw) in [
            ("alice", "correct horsE"),
            ("alice", ""),
            ("bob", "correct horse"),
            ("", "correct horse"),
            (&"a".repeat(300), "correct horse"),
        ] {
            let got = method
                .sign_in(&store, &PasswordForm::new(name, pw), NOW)
                .await;
            assert!(matches!(got, Err(SignInError::Rejected)), "{name:?}");
        }
        // Every attempt, known user or not, cost one Argon2 check.
        assert_eq!(runner.ran.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_check_that_cannot_run_is_busy_not_a_failure() {
        let store = store_with_alice().await;
        let runner = Counting {
            refuse: true,
            ..Counting::default()
        };
        let got = PasswordSignIn::new(&runner)
            .sign_in(&store, &PasswordForm::new("alice", "correct horse"), NOW)
            .await;
        assert!(matches!(got, Err(SignInError::Busy)));
        // Run here, the same attempt succeeds.
        assert!(PasswordSignIn::new(&RunHere)
            .sign_in(&store, &PasswordForm::new("alice", "correct horse"), NOW)
            .await
            .is_ok());
    }

    #[test]
    fn the_form_never_shows_its_password() {
        let form = PasswordForm::new("alice", "hunter2-secret");
        assert!(!format!("{form:?}").contains("hunter2"));
        // A name with no prepared form is kept as typed.
        assert_eq!(
            PasswordForm::new("a\u{200B}b", "x").username(),
            "a\u{200B}b"
        );
    }
}
