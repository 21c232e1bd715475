//! Signing a user in: one interface, one implementation per way of proving who one is.
//!
//! Owns [`SignInMethod`], what every way of signing in provides: it takes what the user
//! presented (its own [`SignInMethod::Presented`] type) and answers with an [`Identity`] or a
//! typed [`SignInError`]. The password form is one implementation ([`password`]); an upstream
//! OpenID provider (OpenID Connect Core §3.1.3: a code redeemed at its token endpoint, its ID
//! token verified) is another ([`upstream`], linking the upstream identity to a local user
//! through [`external`]), with the same output. What a method answers is all the rest of the flow uses:
//! [`crate::session::start`] starts a browser session from an [`Identity`], whatever method
//! produced it.
//!
//! What is not here: throttling sign-in attempts and the cookies of the browser (session,
//! device) are the HTTP layer's; so is where the CPU-heavy part of a check runs
//! ([`password::CheckRunner`]).

use async_trait::async_trait;

use crate::model::UserRecord;
use crate::store::{StoreError, UserStore};

pub mod external;
pub mod password;
pub mod upstream;

/// Who signed in, as a method of signing in vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user (their `user_id` is the `sub` of their tokens).
    pub user: UserRecord,
    /// When they authenticated (OpenID Connect Core §2 `auth_time`), Unix seconds: now for a
    /// password; an upstream provider may report an earlier time.
    pub auth_time: i64,
    /// How they authenticated (OpenID Connect Core §2 `amr`, values of RFC 8176 §2, such as
    /// `pwd`).
    pub amr: Vec<String>,
}

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// What was presented does not identify a user: an unknown user and a wrong password
    /// are one answer, so that nobody learns which usernames exist.
    #[error("the credentials presented do not identify a user")]
    Rejected,
    /// What was presented could not be checked now (every check slot is taken): neither a
    /// success nor a failure; the user may try again shortly.
    #[error("the sign-in could not be checked now")]
    Busy,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One way of signing in.
#[async_trait]
pub trait SignInMethod: Send + Sync {
    /// What the user presents to this method (a username and password; an upstream
    /// provider's authorization response).
    type Presented: Send + Sync;

    /// Checks what the user presented at `now` and names the user it proves, reading users
    /// from `users`.
    async fn sign_in<S: UserStore + ?Sized>(
        &self,
        users: &S,
        presented: &Self::Presented,
        now: i64,
    ) -> Result<Identity, SignInError>;
}
