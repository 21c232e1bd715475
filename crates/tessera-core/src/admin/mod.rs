//! The application layer: what an operator may do to clients, users, trusted issuers,
//! environments, signing keys and tokens, with every rule checked once, here.
//!
//! Owns the management operations that the command line calls today and that an admin HTTP
//! API or dynamic client registration (RFC 7591) will call the same way: each takes plain
//! input (serde-deserializable structs, `Option` fields where an update leaves a field as it
//! was), the storage as `&dyn Store`, the settings where a rule reads them and the time as an
//! input; each answers a typed result or an [`AdminError`] whose variant says how a caller
//! should answer (a status code, an exit message). Nothing here prints, reads files or the
//! clock.
//!
//! - [`admin_tokens`]: the credentials of the admin API and their scopes.
//! - [`clients`]: registration (grant, redirect URI and authentication-method consistency,
//!   defaults, scopes, audiences, token format and lifetimes), secrets and their rotation,
//!   `private_key_jwt` keys, revoking every token of a client, deletion.
//! - [`public_keys`]: the public keys of a `private_key_jwt` client or a trusted issuer.
//! - [`users`]: usernames (RFC 8265), passwords, deletion.
//! - [`grants`]: a user's consents and grants: listing them, revoking a consent (with its
//!   grants' tokens) or every token of a user.
//! - [`trust`]: trusted issuers of JWT assertions (RFC 7523).
//! - [`idps`]: upstream OpenID providers users may sign in through.
//! - [`envs`]: deployment environments.
//! - [`keys`]: the server's signing keys (rotation, re-sealing, their state).
//! - [`tokens`]: revoking one token by its value, whoever it was issued to.
//! - [`audit`]: listing the audit trail with its filters and paging.

pub mod admin_tokens;
pub mod audit;
pub mod clients;
pub mod envs;
pub mod grants;
pub mod idps;
pub mod keys;
pub mod public_keys;
pub mod tokens;
pub mod trust;
pub mod users;

#[cfg(test)]
mod tests;

use crate::keys::KeyRotationError;
use crate::store::StoreError;

/// Why a management operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// An input breaks a rule (an API answers 400). `reason` is a sentence that stands alone
    /// and begins with the name of `field` when it is about that field alone.
    #[error("{reason}")]
    Invalid {
        /// The input field at fault (its name in the input structs).
        field: &'static str,
        /// Why, for people.
        reason: String,
    },
    /// The record named does not exist (an API answers 404).
    #[error("no {kind} '{id}'")]
    NotFound {
        /// What was looked for: `client`, `user`, `consent`, `trust registration`,
        /// `environment`.
        kind: &'static str,
        /// How it was named.
        id: String,
    },
    /// The operation clashes with what is stored: a duplicate, a record in use, or a record
    /// the operation does not apply to as it is (an API answers 409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed (an API answers 500, or 503 when the database is unavailable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing keys could not be made or re-sealed (an API answers 500; 409 for
    /// [`KeyRotationError::SealedElsewhere`] and [`KeyRotationError::KeysChanged`]).
    #[error(transparent)]
    Keys(KeyRotationError),
    /// Something that is no caller's fault, such as password hashing (an API answers 500).
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// An [`AdminError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        AdminError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// An [`AdminError::NotFound`].
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        AdminError::NotFound {
            kind,
            id: id.into(),
        }
    }
}

impl From<KeyRotationError> for AdminError {
    fn from(e: KeyRotationError) -> Self {
        match e {
            KeyRotationError::LeadTimeTooShort { .. } => {
                AdminError::invalid("lead_time", e.to_string())
            }
            KeyRotationError::Store(s) => AdminError::Store(s),
            e => AdminError::Keys(e),
        }
    }
}

impl From<crate::password::PasswordError> for AdminError {
    fn from(e: crate::password::PasswordError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

/// A result of this module.
pub type AdminResult<T> = Result<T, AdminError>;
