//! User passwords: Argon2id.
//!
//! Owns [`hash`] and [`verify`]. Hashes are PHC strings with the OWASP-recommended Argon2id
//! parameters (19 MiB, 2 passes, 1 lane), so they can be raised later and old hashes still
//! verify. [`verify_unknown_user`] spends the same work as a real check, so that a sign-in
//! with an unknown username takes as long as one with a wrong password (no user enumeration
//! by timing). These functions are CPU-heavy (tens of milliseconds): callers on an async
//! runtime run them on a blocking thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::secret::random_bytes;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// Passwords shorter than this are refused when set.
pub const MIN_LENGTH: usize = 8;
/// Passwords longer than this are refused (hashing cost is bounded).
pub const MAX_LENGTH: usize = 1024;

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| PasswordError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Whether `password` matches a stored PHC hash. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the work of one [`verify`] and answers `false`.
pub fn verify_unknown_user(password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default());
    let _ = verify(password, dummy);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password_and_is_salted() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not-a-hash"));
        assert!(!verify_unknown_user("correct horse"));
    }
}
